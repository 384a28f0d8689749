// Quantized weight row · quantized activations (llama.cpp's vec_dot_<w>_<a>), integer SIMD.
//
// The fast path is the C kernels (CQwenKernels.h): one loop per weight type with its block helper
// inlined, compiled per instruction-set level and chosen at run time. `dotQuantizedReference` is a
// plain scalar Swift twin with ggml's generic-C semantics, used by the tests.

import CQwenKernels

@inline(__always)
private func checkShapes(_ weight: GGMLType, _ count: Int) -> (blocks: Int, act: GGMLType) {
    guard let act = activationType(for: weight) else {
        preconditionFailure("dotQuantized: \(weight) has no integer dot product")
    }
    precondition(count >= 0 && count % weight.blockSize == 0, "count must be a whole number of blocks")
    precondition(count / weight.blockSize <= Int(Int32.max), "row too long")
    return (count / weight.blockSize, act)
}

/// One weight row · quantized activations: `count` weights of type `weight` at `row`, against
/// `count` activations quantized by `quantizeActivations(_:count:as:into:)` in
/// `activationType(for: weight)` format at `xq`. No allocation.
public func dotQuantized(_ weight: GGMLType, _ row: UnsafeRawPointer, _ xq: UnsafeRawPointer, count: Int) -> Float {
    let (nb, _) = checkShapes(weight, count)
    return qk_dot_row(Int32(weight.rawValue), Int32(nb), row, xq)
}

// MARK: - Several activation rows per weight row (prefill)

/// One weight row · `rows` quantized activation rows, for prefill: reads each weight block once
/// (from memory) for up to 4 activation rows at a time.
///
/// Activation row `r` starts at `xq + r * xqStride` (bytes; each row as written by
/// `quantizeActivations` for `count` values in `activationType(for: weight)` format), and its
/// result goes to `out[r * outStride]`. Each result equals `dotQuantized(weight, row, xq_r,
/// count: count)` up to float summation order. No allocation.
public func dotQuantizedRows(_ weight: GGMLType, _ row: UnsafeRawPointer, _ xq: UnsafeRawPointer,
                             xqStride: Int, rows: Int, count: Int,
                             into out: UnsafeMutablePointer<Float>, outStride: Int = 1) {
    let (nb, act) = checkShapes(weight, count)
    precondition(rows >= 0 && rows <= Int(Int32.max) && xqStride >= act.bytesPerBlock * nb, "activation rows overlap")
    qk_dot_rows(Int32(weight.rawValue), Int32(nb), row, xq, xqStride, Int32(rows), out, outStride)
}

// MARK: - Scalar reference (ggml's generic C semantics)

@inline(__always) private func f16(_ p: UnsafeRawPointer, _ o: Int) -> Float {
    floatFromHalfBits(p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
}
@inline(__always) private func u8(_ p: UnsafeRawPointer, _ o: Int) -> Int32 {
    Int32(p.load(fromByteOffset: o, as: UInt8.self))
}
@inline(__always) private func i8(_ p: UnsafeRawPointer, _ o: Int) -> Int32 {
    Int32(p.load(fromByteOffset: o, as: Int8.self))
}
@inline(__always) private func i16(_ p: UnsafeRawPointer, _ o: Int) -> Int32 {
    Int32(p.loadUnaligned(fromByteOffset: o, as: Int16.self))
}

/// Plain scalar Swift twin of `dotQuantized` (ggml's generic C reference semantics), for tests.
public func dotQuantizedReference(_ weight: GGMLType, _ row: UnsafeRawPointer, _ xq: UnsafeRawPointer, count: Int) -> Float {
    let (nb, act) = checkShapes(weight, count)
    var sumf: Float = 0
    for i in 0..<nb {
        let x = row + i * weight.bytesPerBlock
        let y = xq + i * act.bytesPerBlock
        switch weight {
        case .q8_0:
            var s: Int32 = 0
            for j in 0..<32 { s += i8(x, 2 + j) * i8(y, 2 + j) }
            sumf += Float(s) * (f16(x, 0) * f16(y, 0))
        case .q4_0:
            var s: Int32 = 0
            for j in 0..<16 {
                s += ((u8(x, 2 + j) & 0xF) - 8) * i8(y, 2 + j)
                s += ((u8(x, 2 + j) >> 4) - 8) * i8(y, 18 + j)
            }
            sumf += Float(s) * (f16(x, 0) * f16(y, 0))
        case .q5_0:
            let qh = x.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            var s: Int32 = 0
            for j in 0..<16 {
                let h0 = Int32((qh >> UInt32(j)) & 1) << 4, h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
                s += (((u8(x, 6 + j) & 0xF) | h0) - 16) * i8(y, 2 + j)
                s += (((u8(x, 6 + j) >> 4) | h1) - 16) * i8(y, 18 + j)
            }
            sumf += Float(s) * (f16(x, 0) * f16(y, 0))
        case .q4_1:
            var s: Int32 = 0
            for j in 0..<16 {
                s += (u8(x, 4 + j) & 0xF) * i8(y, 4 + j)
                s += (u8(x, 4 + j) >> 4) * i8(y, 20 + j)
            }
            sumf += Float(s) * (f16(x, 0) * f16(y, 0)) + f16(x, 2) * f16(y, 2)
        case .q5_1:
            let qh = x.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            var s: Int32 = 0
            for j in 0..<16 {
                let h0 = Int32((qh >> UInt32(j)) & 1) << 4, h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
                s += ((u8(x, 8 + j) & 0xF) | h0) * i8(y, 4 + j)
                s += ((u8(x, 8 + j) >> 4) | h1) * i8(y, 20 + j)
            }
            sumf += Float(s) * (f16(x, 0) * f16(y, 0)) + f16(x, 2) * f16(y, 2)
        case .q2_K:
            // [scales 16][qs 64][d][dmin]
            var summs: Int32 = 0
            for j in 0..<16 { summs += i16(y, 260 + 2 * j) * (u8(x, j) >> 4) }
            var isum: Int32 = 0
            var sIdx = 0
            for h in 0..<2 {
                for shift in stride(from: 0, to: 8, by: 2) {
                    let q8 = 4 + 128 * h + 16 * shift  // 32 activations per shift
                    for half in 0..<2 {
                        let d = u8(x, sIdx) & 0xF
                        sIdx += 1
                        var s: Int32 = 0
                        for l in 0..<16 {
                            s += i8(y, q8 + 16 * half + l) * ((u8(x, 16 + 32 * h + 16 * half + l) >> Int32(shift)) & 3)
                        }
                        isum += d * s
                    }
                }
            }
            let yd = y.loadUnaligned(as: Float.self)
            sumf += yd * f16(x, 80) * Float(isum) - yd * f16(x, 82) * Float(summs)
        case .q3_K:
            // [hmask 32][qs 64][scales 12][d]
            // ggml's 6-bit Q3_K scale unpacking, per scale.
            func sc(_ j: Int) -> Int32 {
                let lo: Int32 = j < 8 ? (u8(x, 96 + j) & 0xF) : (u8(x, 96 + j - 8) >> 4)
                let hi: Int32 = (u8(x, 96 + 8 + (j % 4)) >> Int32(2 * (j / 4))) & 3
                return (lo | (hi << 4)) - 32
            }
            var isum: Int32 = 0
            for v in 0..<8 {
                let h = v / 4, k = v % 4
                for half in 0..<2 {
                    var s: Int32 = 0
                    for l in (16 * half)..<(16 * half + 16) {
                        var q = (u8(x, 32 + 32 * h + l) >> Int32(2 * k)) & 3
                        if (u8(x, l) >> Int32(v)) & 1 == 0 { q -= 4 }
                        s += q * i8(y, 4 + 32 * v + l)
                    }
                    isum += sc(2 * v + half) * s
                }
            }
            sumf += y.loadUnaligned(as: Float.self) * f16(x, 108) * Float(isum)
        case .q4_K, .q5_K:
            // [d][dmin][scales 12]([qh 32])[qs 128]
            let qs = weight == .q4_K ? 16 : 48
            var sumi: Int32 = 0, summ: Int32 = 0
            for j in 0..<8 {
                // The same 6-bit scale/min unpacking the dequantizer uses (KQuants.swift).
                let (scale, min) = scaleMinK4(j, x + 4)
                let sc = Int32(scale), m = Int32(min)
                summ += m * (i16(y, 260 + 4 * j) + i16(y, 262 + 4 * j))
                var s: Int32 = 0
                for l in 0..<32 {
                    let b = u8(x, qs + 32 * (j / 2) + l)
                    var q = j & 1 == 1 ? b >> 4 : b & 0xF
                    if weight == .q5_K { q += ((u8(x, 16 + l) >> Int32(j)) & 1) << 4 }
                    s += q * i8(y, 4 + 32 * j + l)
                }
                sumi += sc * s
            }
            let yd = y.loadUnaligned(as: Float.self)
            sumf += yd * f16(x, 0) * Float(sumi) - yd * f16(x, 2) * Float(summ)
        case .q6_K:
            // [ql 128][qh 64][scales 16 x i8][d]
            var isum: Int32 = 0
            for n in 0..<2 {
                // Element e of this 128: group e / 32 picks the nibble and the 2 high bits.
                for g in 0..<8 {
                    var s: Int32 = 0
                    for l in 0..<16 {
                        let e = 16 * g + l, k = e / 32, p = e % 32
                        let ql = u8(x, 64 * n + p + (k & 1) * 32)
                        let lo = k < 2 ? ql & 0xF : ql >> 4
                        let q = (lo | (((u8(x, 128 + 32 * n + p) >> Int32(2 * k)) & 3) << 4)) - 32
                        s += q * i8(y, 4 + 128 * n + e)
                    }
                    isum += i8(x, 192 + 8 * n + g) * s
                }
            }
            sumf += y.loadUnaligned(as: Float.self) * f16(x, 208) * Float(isum)
        default:
            preconditionFailure("unreachable")
        }
    }
    return sumf
}
