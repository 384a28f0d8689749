// Split activations (CQwenGemm.h): ~16-bit activations in two 8-bit parts, for the Q5_0 integer
// kernels of decode and prefill. The fast versions are the C helpers; the plain scalar Swift
// twins below define what they compute, for the tests.

import CQwenKernels

public enum SplitActivations {
    /// Bytes of one pair of 32-value blocks in the split layout.
    public static let pairBytes = Int(QK_SPLIT_BYTES)

    /// True when this build has the AVX-512 VNNI split kernels.
    public static var available: Bool { qk_gemm_available() != 0 }

    /// Bytes of one token of `cols` values (`cols` a multiple of 64).
    public static func rowBytes(cols: Int) -> Int { cols / 64 * pairBytes }

    /// Quantizes `cols` floats (a multiple of 64) into the split layout (fast C helper).
    @inline(__always)
    public static func quantize(_ x: UnsafePointer<Float>, cols: Int, into dst: UnsafeMutableRawPointer) {
        qk_quantize_split(x, dst, Int32(cols / 32))
    }

    /// Plain scalar twin of ``quantize(_:cols:into:)``: identical bytes.
    public static func quantizeReference(_ x: UnsafePointer<Float>, cols: Int, into dst: UnsafeMutableRawPointer) {
        precondition(cols % 64 == 0)
        for pair in 0..<(cols / 64) {
            let o = dst + pair * pairBytes
            for k in 0..<2 {
                let xb = x + 64 * pair + 32 * k
                var amax: Float = 0
                for j in 0..<32 { amax = max(amax, abs(xb[j])) }
                let d = amax / 127, id: Float = amax != 0 ? 127 / amax : 0, id256 = id * 256
                var sh: Int32 = 0, sl: Int32 = 0
                for j in 0..<32 {
                    let h = min(max((xb[j] * id).rounded(.toNearestOrEven), -127), 127)
                    let r = xb[j] - h * d
                    let l = min(max((r * id256).rounded(.toNearestOrEven), -127), 127)
                    o.storeBytes(of: Int8(h), toByteOffset: 32 * k + j, as: Int8.self)
                    o.storeBytes(of: Int8(l), toByteOffset: 64 + 32 * k + j, as: Int8.self)
                    sh += Int32(h)
                    sl += Int32(l)
                }
                o.storeBytes(of: d * (1 / 256), toByteOffset: 128 + 4 * k, as: Float.self)
                o.storeBytes(of: -16 * (256 * sh + sl), toByteOffset: 136 + 4 * k, as: Int32.self)
            }
        }
    }

    /// `out[t * outStride + r]` = Q5_0 row r · split token t, for r < rows (1...4) and t < tokens
    /// (1...4); `blocks` (even) Q5_0 blocks per row. Fast C micro-kernel.
    @inline(__always)
    public static func gemmQ5_0(_ w: UnsafeRawPointer, rowBytes: Int, rows: Int, _ a: UnsafeRawPointer, aStride: Int,
                                tokens: Int, blocks: Int, _ out: UnsafeMutablePointer<Float>, outStride: Int) {
        switch tokens {
        case 1: qk_gemm_q5_0_split_4x1(w, rowBytes, Int32(rows), a, aStride, 1, Int32(blocks), out, outStride)
        case 2: qk_gemm_q5_0_split_4x2(w, rowBytes, Int32(rows), a, aStride, 2, Int32(blocks), out, outStride)
        default: qk_gemm_q5_0_split_4x4(w, rowBytes, Int32(rows), a, aStride, Int32(tokens), Int32(blocks), out, outStride)
        }
    }

    /// Plain scalar twin of ``gemmQ5_0(_:rowBytes:rows:_:aStride:tokens:blocks:_:outStride:)``:
    /// integer block sums are exact, so only the float summation order differs.
    public static func gemmQ5_0Reference(_ w: UnsafeRawPointer, rowBytes: Int, rows: Int, _ a: UnsafeRawPointer,
                                         aStride: Int, tokens: Int, blocks: Int, _ out: UnsafeMutablePointer<Float>,
                                         outStride: Int) {
        for t in 0..<tokens {
            for r in 0..<rows {
                var sum: Float = 0
                for b in 0..<blocks {
                    let x = w + r * rowBytes + b * 22
                    let p = a + t * aStride + (b / 2) * pairBytes, k = b % 2
                    let qh = x.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
                    var s: Int32 = 0
                    for j in 0..<32 {
                        let byte = Int32(x.load(fromByteOffset: 6 + j % 16, as: UInt8.self))
                        let q = (j < 16 ? byte & 0xF : byte >> 4) | Int32((qh >> UInt32(j)) & 1) << 4
                        let v = 256 * Int32(p.load(fromByteOffset: 32 * k + j, as: Int8.self))
                            + Int32(p.load(fromByteOffset: 64 + 32 * k + j, as: Int8.self))
                        s += (q - 16) * v
                    }
                    let d = Float(Float16(bitPattern: x.loadUnaligned(as: UInt16.self)))
                    let e = p.loadUnaligned(fromByteOffset: 128 + 4 * k, as: Float.self)
                    sum += Float(s) * (d * e)
                }
                out[t * outStride + r] = sum
            }
        }
    }
}
