// Quantized weight row · quantized activations (llama.cpp's vec_dot_<w>_<a>), integer SIMD.
//
// The fast path is a Swift loop over blocks calling one `static inline` C helper per block
// (CQwenKernels.h); the helpers inline into the loop. `dotQuantizedReference` is a plain scalar
// Swift twin with ggml's generic-C semantics, used by the tests.

import CQwenKernels

public typealias _QKBlockDot = (qk_v8f, UnsafeRawPointer?, UnsafeRawPointer?) -> qk_v8f

@inline(__always)
private func rowDot(_ blocks: Int, _ wStride: Int, _ xStride: Int,
                    _ w: UnsafeRawPointer, _ x: UnsafeRawPointer, _ f: _QKBlockDot) -> Float {
    // Two accumulators hide the FMA latency of the short (32-weight) blocks. Pointer bumps
    // instead of `i * stride` keep overflow checks out of the loop.
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
    var wp = w, xp = x
    var n = blocks
    while n >= 2 {
        a0 = f(a0, wp, xp)
        a1 = f(a1, wp + wStride, xp + xStride)
        wp += 2 &* wStride
        xp += 2 &* xStride
        n &-= 2
    }
    if n > 0 { a0 = f(a0, wp, xp) }
    return qk_hsum8(a0 + a1)
}

@inline(__always)
private func checkShapes(_ weight: GGMLType, _ count: Int) -> (blocks: Int, act: GGMLType) {
    guard let act = activationType(for: weight) else {
        preconditionFailure("dotQuantized: \(weight) has no integer dot product")
    }
    precondition(count >= 0 && count % weight.blockSize == 0, "count must be a whole number of blocks")
    return (count / weight.blockSize, act)
}

/// One weight row · quantized activations: `count` weights of type `weight` at `row`, against
/// `count` activations quantized by `quantizeActivations(_:count:as:into:)` in
/// `activationType(for: weight)` format at `xq`. No allocation.
public func dotQuantized(_ weight: GGMLType, _ row: UnsafeRawPointer, _ xq: UnsafeRawPointer, count: Int) -> Float {
    let (nb, act) = checkShapes(weight, count)
    let ws = weight.bytesPerBlock, xs = act.bytesPerBlock
    switch weight {
    case .q4_K: return rowDot(nb, ws, xs, row, xq, qk_dot_q4_K_q8_K)
    case .q6_K: return rowDot(nb, ws, xs, row, xq, qk_dot_q6_K_q8_K)
    case .q5_0: return rowDot(nb, ws, xs, row, xq, qk_dot_q5_0_q8_0)
    case .q8_0: return rowDot(nb, ws, xs, row, xq, qk_dot_q8_0_q8_0)
    case .q5_K: return rowDot(nb, ws, xs, row, xq, qk_dot_q5_K_q8_K)
    case .q4_0: return rowDot(nb, ws, xs, row, xq, qk_dot_q4_0_q8_0)
    case .q2_K: return rowDot(nb, ws, xs, row, xq, qk_dot_q2_K_q8_K)
    case .q3_K: return rowDot(nb, ws, xs, row, xq, qk_dot_q3_K_q8_K)
    case .q4_1: return rowDot(nb, ws, xs, row, xq, qk_dot_q4_1_q8_1)
    case .q5_1: return rowDot(nb, ws, xs, row, xq, qk_dot_q5_1_q8_1)
    default: preconditionFailure("unreachable")
    }
}

// MARK: - Several activation rows per weight row (prefill)

@inline(__always)
private func rowDot4(_ blocks: Int, _ wStride: Int, _ xStride: Int, _ w: UnsafeRawPointer,
                     _ x: UnsafeRawPointer, _ xqStride: Int, _ f: _QKBlockDot) -> SIMD4<Float> {
    // Each weight block is loaded once and dotted against 4 activation rows; the helpers inline,
    // so the compiler can also share the weight unpacking between the 4 calls.
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var wp = w, xp = x
    for _ in 0..<blocks {
        a0 = f(a0, wp, xp)
        a1 = f(a1, wp, xp + xqStride)
        a2 = f(a2, wp, xp + 2 &* xqStride)
        a3 = f(a3, wp, xp + 3 &* xqStride)
        wp += wStride
        xp += xStride
    }
    return SIMD4(qk_hsum8(a0), qk_hsum8(a1), qk_hsum8(a2), qk_hsum8(a3))
}

@inline(__always)
private func rowsDot(_ nb: Int, _ ws: Int, _ xs: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer,
                     _ xqStride: Int, _ n: Int, _ out: UnsafeMutablePointer<Float>, _ outStride: Int,
                     _ f: _QKBlockDot) {
    var r = 0
    while r + 4 <= n {
        let v = rowDot4(nb, ws, xs, w, x + r &* xqStride, xqStride, f)
        out[r &* outStride] = v[0]
        out[(r + 1) &* outStride] = v[1]
        out[(r + 2) &* outStride] = v[2]
        out[(r + 3) &* outStride] = v[3]
        r += 4
    }
    while r < n {
        out[r &* outStride] = rowDot(nb, ws, xs, w, x + r &* xqStride, f)
        r += 1
    }
}

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
    precondition(rows >= 0 && xqStride >= act.bytesPerBlock * nb, "activation rows overlap")
    let ws = weight.bytesPerBlock, xs = act.bytesPerBlock
    switch weight {
    case .q4_K: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q4_K_q8_K)
    case .q6_K: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q6_K_q8_K)
    case .q5_0: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q5_0_q8_0)
    case .q8_0: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q8_0_q8_0)
    case .q5_K: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q5_K_q8_K)
    case .q4_0: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q4_0_q8_0)
    case .q2_K: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q2_K_q8_K)
    case .q3_K: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q3_K_q8_K)
    case .q4_1: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q4_1_q8_1)
    case .q5_1: rowsDot(nb, ws, xs, row, xq, xqStride, rows, out, outStride, qk_dot_q5_1_q8_1)
    default: preconditionFailure("unreachable")
    }
}

// MARK: - Scalar reference (ggml's generic C semantics)

@inline(__always) private func f16(_ p: UnsafeRawPointer, _ o: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
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

/// ggml's get_scale_min_k4: 6-bit scale and min of sub-block j from the 12-byte field at p.
@inline(__always) private func scaleMinK4Reference(_ j: Int, _ p: UnsafeRawPointer) -> (Int32, Int32) {
    if j < 4 {
        return (u8(p, j) & 63, u8(p, j + 4) & 63)
    }
    return ((u8(p, j + 4) & 0xF) | ((u8(p, j - 4) >> 6) << 4),
            (u8(p, j + 4) >> 4) | ((u8(p, j) >> 6) << 4))
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
                let (sc, m) = scaleMinK4Reference(j, x + 4)
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
