// Activation quantization for the integer dot products (ggml's quantize_row_q8_K / q8_0 / q8_1
// reference semantics). Activations are quantized once per matrix product; every weight row
// is then dotted against the quantized copy (see QuantizedDot.swift).

/// The activation format a weight type's integer dot product needs (.q8_K, .q8_0, .q8_1),
/// or nil if the type has no integer path (f32/f16/bf16, and the activation-only types).
public func activationType(for weight: GGMLType) -> GGMLType? {
    switch weight {
    case .q4_0, .q5_0, .q8_0: .q8_0
    case .q4_1, .q5_1: .q8_1
    case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: .q8_K
    case .f32, .f16, .bf16, .q8_1, .q8_K: nil
    }
}

/// Quantizes `count` floats into `dst` in the given activation format
/// (`type.rowBytes(count:)` bytes; `count` a multiple of the block size).
///
/// Matches ggml's reference quantizers bit for bit:
/// - Q8_0: `d = max|x| / 127` (stored as f16), `q = roundf(x / d)` (ties away from zero).
/// - Q8_1: as Q8_0, plus `s = f16(d · Σq)`.
/// - Q8_K: `iscale = -127 / x[argmax |x|]`, `q = min(127, nearest_int(iscale · x))`
///   (ties to even), `d = 1 / iscale` (f32), `bsums[j]` = sum of q over each 16 weights.
/// Every stored q is in -127...127. NaN inputs quantize to 0 instead of trapping.
public func quantizeActivations(_ x: UnsafePointer<Float>, count: Int, as type: GGMLType,
                                into dst: UnsafeMutableRawPointer) {
    precondition(count >= 0 && count % type.blockSize == 0, "count must be a whole number of blocks")
    switch type {
    case .q8_0: quantizeQ8_0(x, count: count, dst, withSum: false)
    case .q8_1: quantizeQ8_0(x, count: count, dst, withSum: true)
    case .q8_K: quantizeQ8_K(x, count: count, dst)
    default: preconditionFailure("quantizeActivations: \(type) is not an activation format")
    }
}

@inline(__always)
private func clampRounded(_ v: Float) -> Int8 {
    // v is already rounded; |v| <= 127 for finite inputs, NaN -> 0.
    if v.isNaN { return 0 }
    return Int8(Swift.max(-127, Swift.min(127, v)))
}

private func quantizeQ8_0(_ x: UnsafePointer<Float>, count: Int, _ dst: UnsafeMutableRawPointer, withSum: Bool) {
    let nb = count / 32
    let stride = withSum ? 36 : 34
    let qOffset = withSum ? 4 : 2
    for i in 0..<nb {
        let xb = x + i * 32
        let yb = dst + i * stride
        var amax: Float = 0
        for j in 0..<32 { amax = Swift.max(amax, abs(xb[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        yb.storeBytes(of: halfBits(from: d), as: UInt16.self)
        let q = (yb + qOffset).assumingMemoryBound(to: Int8.self)
        var sum: Int32 = 0
        for j in 0..<32 {
            let v = clampRounded((xb[j] * id).rounded(.toNearestOrAwayFromZero))
            q[j] = v
            sum += Int32(v)
        }
        if withSum {
            (yb + 2).storeBytes(of: halfBits(from: Float(sum) * d), as: UInt16.self)
        }
    }
}

private func quantizeQ8_K(_ x: UnsafePointer<Float>, count: Int, _ dst: UnsafeMutableRawPointer) {
    let nb = count / 256
    for i in 0..<nb {
        let xb = x + i * 256
        let yb = dst + i * 292
        let q = (yb + 4).assumingMemoryBound(to: Int8.self)
        var amax: Float = 0
        var maxv: Float = 0
        for j in 0..<256 {
            let ax = abs(xb[j])
            if ax > amax { amax = ax; maxv = xb[j] }
        }
        if amax == 0 {
            yb.storeBytes(of: Float(0), as: Float.self)
            (yb + 4).initializeMemory(as: UInt8.self, repeating: 0, count: 256 + 32)
            continue
        }
        let iscale = -127 / maxv
        for j in 0..<256 {
            q[j] = clampRounded((iscale * xb[j]).rounded(.toNearestOrEven))
        }
        for j in 0..<16 {
            var s: Int16 = 0
            for l in 0..<16 { s &+= Int16(q[16 * j + l]) }
            (yb + 260 + 2 * j).storeBytes(of: s, toByteOffset: 0, as: Int16.self)
        }
        yb.storeBytes(of: 1 / iscale, as: Float.self)
    }
}
