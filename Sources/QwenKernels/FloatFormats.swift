// Float tensor formats (F32, F16, BF16), the fast float32 dot product, and the small
// SIMD helpers the quantized kernels share.

import CQwenKernels

// MARK: - Scalar conversions

// Swift's `Float16` does not exist on Intel Macs (macOS and Mac Catalyst on x86-64): there the
// conversions below use the portable bit-level versions, which the tests check against `Float16`
// for every half and across the float range.
/// The float32 value of an IEEE half-precision bit pattern (exact: every f16 is a float32).
@inline(__always)
public func floatFromHalfBits(_ bits: UInt16) -> Float {
#if arch(x86_64) && (os(macOS) || targetEnvironment(macCatalyst))
    portableFloatFromHalfBits(bits)
#else
    Float(Float16(bitPattern: bits))
#endif
}

/// The half-precision bit pattern nearest to `value` (ties to even; beyond the half range, ±inf).
@inline(__always)
public func halfBits(from value: Float) -> UInt16 {
#if arch(x86_64) && (os(macOS) || targetEnvironment(macCatalyst))
    portableHalfBits(from: value)
#else
    Float16(value).bitPattern
#endif
}

/// ``floatFromHalfBits(_:)`` without `Float16`: exact, subnormals, infinities and NaN payloads included.
public func portableFloatFromHalfBits(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F, mantissa = UInt32(bits & 0x3FF)
    switch exponent {
    case 0:   // zero or subnormal: mantissa · 2^-24, exact in float32
        let magnitude = Float(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    case 31:  // infinity or NaN
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    default:
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
}

/// ``halfBits(from:)`` without `Float16`: round to nearest, ties to even, as the hardware does.
public func portableHalfBits(from value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF), mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF {   // infinity, or NaN kept quiet with the top of its payload
        return sign | 0x7C00 | (mantissa == 0 ? 0 : 0x200 | UInt16(truncatingIfNeeded: mantissa >> 13))
    }
    let unbiased = exponent - 127
    if unbiased > 15 { return sign | 0x7C00 }
    // The value's bits as an integer count of 2^-24 units (half's subnormal step) or, for normal
    // halves, of the half's own step; rounded to nearest even in integer arithmetic.
    let significand = UInt64(mantissa | (exponent == 0 ? 0 : 0x80_0000))
    let shift = unbiased >= -14 ? 13 : 13 + (-14 - unbiased)   // float ulps per half ulp, as a power of two
    if shift > 24 + 1 { return sign }                           // below half the smallest subnormal
    let half = UInt64(1) << (shift - 1)
    var q = significand >> UInt64(shift)
    let rest = significand & ((UInt64(1) << UInt64(shift)) - 1)
    if rest > half || (rest == half && q & 1 == 1) { q += 1 }
    if unbiased >= -14 {
        // Normal: q holds the implicit bit at 1 << 10; a carry into 1 << 11 moves up an exponent.
        let e = UInt64(unbiased + 15) + (q >> 11)
        if e >= 31 { return sign | 0x7C00 }
        return sign | UInt16(e << 10) | UInt16(q & 0x3FF)
    }
    return sign | UInt16(q)   // subnormal (q == 1 << 10 rounds up into the smallest normal)
}

/// The float32 value of a bfloat16 bit pattern: bf16 is the top half of a float32, so this
/// is a shift (exact, NaN payloads included), as ggml's `GGML_BF16_TO_FP32`.
@inline(__always)
public func floatFromBFloat16Bits(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

// MARK: - Byte access on trusted buffers

extension UnsafeRawPointer {
    /// One byte at `offset`.
    @inline(__always)
    func byte(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }

    /// A little-endian f16 field at `offset`, widened to float32. Block fields are not
    /// 2-byte aligned in general (blocks are packed back to back), hence `loadUnaligned`.
    @inline(__always)
    func half(_ offset: Int) -> Float {
        floatFromHalfBits(loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// 16 consecutive bytes at `offset`.
    @inline(__always)
    func bytes16(_ offset: Int) -> SIMD16<UInt8> {
        loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self)
    }
}

@inline(__always)
func loadFloats16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

/// Sum of the 16 lanes as a tree of vector adds (the standard library's `sum()` adds the lanes
/// one after another, 15 dependent adds, and is not inlined).
@inline(__always)
public func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let h = v.lowHalf + v.highHalf
    let q = h.lowHalf + h.highHalf
    return (q[0] + q[2]) + (q[1] + q[3])
}

@inline(__always)
func storeFloats16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    // storeBytes has no alignment requirement for trivial types (SE-0349).
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

// MARK: - Lane conversions
//
// The stdlib's generic SIMD conversions (`SIMD16<Float>(intVector)`, `truncatingIfNeeded`)
// can compile to per-lane loops through the stack. Spelling the 16 lanes out lets LLVM's
// SLP vectorizer see a plain zext/sext + sitofp, which becomes vpmovzxbd/vpmovsxbd + vcvtdq2ps.

/// Unsigned bytes to floats (exact).
@inline(__always)
func floats(_ v: SIMD16<UInt8>) -> SIMD16<Float> {
    SIMD16<Float>(
        Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]),
        Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]),
        Float(v[8]), Float(v[9]), Float(v[10]), Float(v[11]),
        Float(v[12]), Float(v[13]), Float(v[14]), Float(v[15]))
}

/// Signed bytes to floats (exact).
@inline(__always)
func floats(_ v: SIMD16<Int8>) -> SIMD16<Float> {
    SIMD16<Float>(
        Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]),
        Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]),
        Float(v[8]), Float(v[9]), Float(v[10]), Float(v[11]),
        Float(v[12]), Float(v[13]), Float(v[14]), Float(v[15]))
}

/// f16 lanes (bit patterns) to floats (exact; vcvtph2ps).
@inline(__always)
func floatsFromHalfBits(_ v: SIMD16<UInt16>) -> SIMD16<Float> {
#if arch(x86_64) && (os(macOS) || targetEnvironment(macCatalyst))
    var out = SIMD16<Float>()
    for i in 0..<16 { out[i] = portableFloatFromHalfBits(v[i]) }
    return out
#else
    let h = unsafeBitCast(v, to: SIMD16<Float16>.self)
    return SIMD16<Float>(
        Float(h[0]), Float(h[1]), Float(h[2]), Float(h[3]),
        Float(h[4]), Float(h[5]), Float(h[6]), Float(h[7]),
        Float(h[8]), Float(h[9]), Float(h[10]), Float(h[11]),
        Float(h[12]), Float(h[13]), Float(h[14]), Float(h[15]))
#endif
}

/// bf16 bit patterns to floats (exact; zero-extend and shift into the top half).
@inline(__always)
func floatsFromBFloat16(_ v: SIMD16<UInt16>) -> SIMD16<Float> {
    let bits = SIMD16<UInt32>(
        UInt32(v[0]), UInt32(v[1]), UInt32(v[2]), UInt32(v[3]),
        UInt32(v[4]), UInt32(v[5]), UInt32(v[6]), UInt32(v[7]),
        UInt32(v[8]), UInt32(v[9]), UInt32(v[10]), UInt32(v[11]),
        UInt32(v[12]), UInt32(v[13]), UInt32(v[14]), UInt32(v[15]))
    return unsafeBitCast(bits &<< 16, to: SIMD16<Float>.self)
}

/// 16 in each lane whose byte has any bit of `mask` set, else 0 (a 5th quant bit, in place).
///
/// With `m = v & mask` in 0...128: `m + 127` reaches bit 7 exactly when m != 0, and bit 7
/// shifted right by 3 is 16. Plain byte arithmetic (vpand, vpaddb, vpsrlw) where the stdlib's
/// `pointwiseMin` and mask-select helpers compiled to out-of-line calls.
@inline(__always)
func sixteenWhereSet(_ v: SIMD16<UInt8>, _ mask: SIMD16<UInt8>) -> SIMD16<UInt8> {
    (((v & mask) &+ 0x7F) & 0x80) &>> 3
}

// MARK: - F32

/// Fast float32 dot product of two float arrays (any `count`): the C kernel of the active
/// instruction-set level (four independent chains of 16 lanes).
public func dotF32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    precondition(count >= 0, "negative count")
    return qk_dot_f32(a, b, count)
}

// MARK: - F16
//
// Layout: one IEEE binary16 per weight, little-endian.

func dequantizeF16Reference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count {
        dst[i] = floatFromHalfBits(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    }
}

/// F16 as a 16-weight block, so it shares the blocked loops of the quantized types.
enum F16Blocks: BlockDecoder {
    static let weightsPerBlock = 16
    static let bytesPerBlock = 32

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        body(0, floatsFromHalfBits(block.loadUnaligned(as: SIMD16<UInt16>.self)))
    }
}

// MARK: - BF16
//
// Layout: one bfloat16 (the top 16 bits of a float32) per weight, little-endian.

func dequantizeBF16Reference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count {
        dst[i] = floatFromBFloat16Bits(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    }
}

enum BF16Blocks: BlockDecoder {
    static let weightsPerBlock = 16
    static let bytesPerBlock = 32

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        body(0, floatsFromBFloat16(block.loadUnaligned(as: SIMD16<UInt16>.self)))
    }
}
