// The 256-weight "K" super-block formats: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
//
// A super-block is split into sub-blocks (16 of 16 weights, or 8 of 32) that each have a
// small integer scale (and for some formats a min), multiplied by the super-block's f16
// `d` (and `dmin`). As in ggml, the float sub-block scale `dl = d * scale` is computed first
// and each weight is `dl * q` or `dl * q - ml` with separate multiply and subtract, so the
// fast and reference kernels agree bit for bit.

// MARK: - Q2_K
//
// Super-block (84 bytes, 256 weights = 16 sub-blocks of 16):
//
//     [scales: 16 B][qs: 64 B][d: f16][dmin: f16]
//
// scales[k]: low nibble = scale, high nibble = min of sub-block k.
// Weights come in two halves of 128; half n uses qs[32n ..< 32n + 32], and its
// sub-blocks 8n + 2j (bytes 0..<16) and 8n + 2j + 1 (bytes 16..<32) take bits 2j...2j+1.
//     weight = d * scale * q - dmin * min

func dequantizeQ2_KReference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 84
        var y = dst + i * 256
        let d = block.half(80)
        let dmin = block.half(82)
        var q = 16  // offset of qs
        var scaleIndex = 0
        for _ in stride(from: 0, to: 256, by: 128) {
            var shift: UInt8 = 0
            for _ in 0..<4 {
                for half in 0..<2 {
                    let sc = block.byte(scaleIndex)
                    scaleIndex += 1
                    let dl = d * Float(sc & 0x0F)
                    let ml = dmin * Float(sc >> 4)
                    for l in 0..<16 {
                        let value = Int8((block.byte(q + 16 * half + l) >> shift) & 3)
                        y.pointee = dl * Float(value) - ml
                        y += 1
                    }
                }
                shift += 2
            }
            q += 32
        }
    }
}

enum Q2_KBlocks: BlockDecoder {
    static let weightsPerBlock = 256
    static let bytesPerBlock = 84

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        let d = block.half(80)
        let dmin = block.half(82)
        for n in 0..<2 {
            for half in 0..<2 {
                let qs = block.bytes16(16 + 32 * n + 16 * half)
                for j in 0..<4 {
                    let sc = block.byte(8 * n + 2 * j + half)
                    let dl = SIMD16<Float>(repeating: d * Float(sc & 0x0F))
                    let ml = SIMD16<Float>(repeating: dmin * Float(sc >> 4))
                    let q = (qs &>> UInt8(2 * j)) & 3
                    body(128 * n + 32 * j + 16 * half, floats(q) * dl - ml)
                }
            }
        }
    }
}

// MARK: - Q3_K
//
// Super-block (110 bytes, 256 weights = 16 sub-blocks of 16):
//
//     [hmask: 32 B][qs: 64 B][scales: 12 B][d: f16]
//
// Each weight has 2 low bits in qs (arranged as in Q2_K) and a high bit in hmask: weight
// 32j + l (j = 0..<8, l = 0..<32) uses bit j of hmask[l]. A *clear* high bit subtracts 4,
// so q is in -4...3. The 16 scales are 6-bit, stored with 32 subtracted:
//
//     scale k, low 4 bits:  k < 8 ? scales[k] & 0xF : scales[k - 8] >> 4
//     scale k, high 2 bits: (scales[8 + k % 4] >> (2 * (k / 4))) & 3
//     weight = d * (scale - 32) * q

func dequantizeQ3_KReference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    let kmask1: UInt32 = 0x0303_0303
    let kmask2: UInt32 = 0x0f0f_0f0f
    for i in 0..<blocks {
        let block = src + i * 110
        var y = dst + i * 256
        let dAll = block.half(108)

        // ggml unpacks the 12 scale bytes into 16 bytes with 32-bit mask arithmetic.
        var aux = (0 ..< 3).map { UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 96 + 4 * $0, as: UInt32.self)) }
        let tmp = aux[2]
        aux.append(((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4))
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
        let scales = (0 ..< 16).map { Int8(truncatingIfNeeded: aux[$0 / 4] >> (8 * UInt32($0 % 4))) }

        var q = 32  // offset of qs
        var mask: UInt8 = 1
        var scaleIndex = 0
        for _ in stride(from: 0, to: 256, by: 128) {
            var shift: UInt8 = 0
            for _ in 0..<4 {
                for half in 0..<2 {
                    let dl = dAll * Float(Int32(scales[scaleIndex]) - 32)
                    scaleIndex += 1
                    for l in 0..<16 {
                        let low = Int8((block.byte(q + 16 * half + l) >> shift) & 3)
                        let offset: Int8 = block.byte(16 * half + l) & mask != 0 ? 0 : 4
                        y.pointee = dl * Float(low - offset)
                        y += 1
                    }
                }
                shift += 2
                mask <<= 1
            }
            q += 32
        }
    }
}

enum Q3_KBlocks: BlockDecoder {
    static let weightsPerBlock = 256
    static let bytesPerBlock = 110

    /// All 16 sub-block scales, already minus 32, as floats (exact), with ggml's unpacking
    /// done on four 32-bit lanes at once: lane i holds scales 4i ..< 4i + 4.
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> SIMD16<Float> {
        // Two loads, not one 16-byte load: the block ends 14 bytes after the scales.
        let low8 = unsafeBitCast(block.loadUnaligned(fromByteOffset: 96, as: UInt64.self), to: SIMD2<UInt32>.self)
        let high4 = block.loadUnaligned(fromByteOffset: 104, as: UInt32.self)
        let low = SIMD4<UInt32>(low8[0], low8[1], low8[0], low8[1]) &>> SIMD4<UInt32>(0, 0, 4, 4)
        let high = SIMD4<UInt32>(repeating: high4) &>> SIMD4<UInt32>(0, 2, 4, 6)
        let unpacked = (low & 0x0F0F_0F0F) | ((high & 0x0303_0303) &<< 4)
        return floats(unsafeBitCast(unpacked, to: SIMD16<UInt8>.self)) - 32
    }

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        // d * (scale - 32) per sub-block, computed as the reference does: the scale is an
        // exact float and there is one rounding, in the multiply.
        let dls = scales(block) * block.half(108)
        for n in 0..<2 {
            for half in 0..<2 {
                let hmask = block.bytes16(16 * half)
                let qs = block.bytes16(32 + 32 * n + 16 * half)
                for j in 0..<4 {
                    let dl = SIMD16<Float>(repeating: dls[8 * n + 2 * j + half])
                    // low | high << 2 is q + 4, in 0...7; subtracting 4 in float is exact.
                    let high = sixteenWhereSet(hmask, SIMD16<UInt8>(repeating: UInt8(1) << UInt8(4 * n + j)))
                    let q = ((qs &>> UInt8(2 * j)) & 3) | (high &>> 2)
                    body(128 * n + 32 * j + 16 * half, (floats(q) - 4) * dl)
                }
            }
        }
    }
}

// MARK: - Q4_K and Q5_K scales
//
// 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed in 12 bytes:
//
//     j < 4:  scale = s[j] & 63,                          min = s[j + 4] & 63
//     j >= 4: scale = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4,
//             min   = (s[j + 4] >> 4)  | (s[j] >> 6) << 4

/// ggml's `get_scale_min_k4`: scale and min of sub-block `j` from the 12 bytes at `scales`.
@inline(__always)
func scaleMinK4(_ j: Int, _ scales: UnsafeRawPointer) -> (scale: UInt8, min: UInt8) {
    if j < 4 {
        return (scales.byte(j) & 63, scales.byte(j + 4) & 63)
    } else {
        return ((scales.byte(j + 4) & 0x0F) | ((scales.byte(j - 4) >> 6) << 4),
                (scales.byte(j + 4) >> 4) | ((scales.byte(j) >> 6) << 4))
    }
}

/// All 8 scales (lanes 0..<8) and mins (lanes 8..<16) of `scaleMinK4`, as exact floats,
/// unpacked on four 32-bit lanes at once. With A, B, C the three 4-byte groups:
/// scales 0..<4 = A & 63, scales 4..<8 = C & 0xF | (A >> 6) << 4,
/// mins 0..<4 = B & 63, mins 4..<8 = C >> 4 | (B >> 6) << 4.
@inline(__always)
func scalesAndMinsK4(_ scales: UnsafeRawPointer) -> SIMD16<Float> {
    let ab = unsafeBitCast(scales.loadUnaligned(as: UInt64.self), to: SIMD2<UInt32>.self)
    let a = ab[0], b = ab[1], c = scales.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    let low = SIMD4<UInt32>(a, c, b, c >> 4) & SIMD4<UInt32>(0x3F3F_3F3F, 0x0F0F_0F0F, 0x3F3F_3F3F, 0x0F0F_0F0F)
    let high = (SIMD4<UInt32>(0, a >> 6, 0, b >> 6) & 0x0303_0303) &<< 4
    return floats(unsafeBitCast(low | high, to: SIMD16<UInt8>.self))
}

// MARK: - Q4_K
//
// Super-block (144 bytes, 256 weights = 8 sub-blocks of 32):
//
//     [d: f16][dmin: f16][scales: 12 B][qs: 128 B]
//
// Bytes qs[32j ..< 32j + 32] hold sub-block 2j in their low nibbles and 2j + 1 in their
// high nibbles.   weight = d * scale * q - dmin * min

func dequantizeQ4_KReference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 144
        var y = dst + i * 256
        let d = block.half(0)
        let dmin = block.half(2)
        let scales = block + 4
        var q = 16  // offset of qs
        var scaleIndex = 0
        for _ in stride(from: 0, to: 256, by: 64) {
            let (sc1, m1) = scaleMinK4(scaleIndex, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let (sc2, m2) = scaleMinK4(scaleIndex + 1, scales)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            for l in 0..<32 {
                y.pointee = d1 * Float(block.byte(q + l) & 0x0F) - min1
                y += 1
            }
            for l in 0..<32 {
                y.pointee = d2 * Float(block.byte(q + l) >> 4) - min2
                y += 1
            }
            q += 32
            scaleIndex += 2
        }
    }
}

enum Q4_KBlocks: BlockDecoder {
    static let weightsPerBlock = 256
    static let bytesPerBlock = 144

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        // d * scale and dmin * min for all 8 sub-blocks, one rounding each as in the reference.
        let scaleMins = scalesAndMinsK4(block + 4)
        let ds = scaleMins.lowHalf * block.half(0)
        let mins = scaleMins.highHalf * block.half(2)
        for j in 0..<4 {
            let d1 = SIMD16<Float>(repeating: ds[2 * j]), min1 = SIMD16<Float>(repeating: mins[2 * j])
            let d2 = SIMD16<Float>(repeating: ds[2 * j + 1]), min2 = SIMD16<Float>(repeating: mins[2 * j + 1])
            for half in 0..<2 {
                let qs = block.bytes16(16 + 32 * j + 16 * half)
                body(64 * j + 16 * half, floats(qs & 0x0F) * d1 - min1)
                body(64 * j + 32 + 16 * half, floats(qs &>> 4) * d2 - min2)
            }
        }
    }
}

// MARK: - Q5_K
//
// Super-block (176 bytes, 256 weights = 8 sub-blocks of 32):
//
//     [d: f16][dmin: f16][scales: 12 B][qh: 32 B][qs: 128 B]
//
// Low nibbles as in Q4_K; weight 32k + l (sub-block k) has its 5th bit in bit k of qh[l].
//     weight = d * scale * q - dmin * min

func dequantizeQ5_KReference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 176
        var y = dst + i * 256
        let d = block.half(0)
        let dmin = block.half(2)
        let scales = block + 4
        let qh = 16
        var ql = 48
        var scaleIndex = 0
        var u1: UInt8 = 1, u2: UInt8 = 2
        for _ in stride(from: 0, to: 256, by: 64) {
            let (sc1, m1) = scaleMinK4(scaleIndex, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let (sc2, m2) = scaleMinK4(scaleIndex + 1, scales)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            for l in 0..<32 {
                let high: UInt8 = block.byte(qh + l) & u1 != 0 ? 16 : 0
                y.pointee = d1 * Float((block.byte(ql + l) & 0x0F) + high) - min1
                y += 1
            }
            for l in 0..<32 {
                let high: UInt8 = block.byte(qh + l) & u2 != 0 ? 16 : 0
                y.pointee = d2 * Float((block.byte(ql + l) >> 4) + high) - min2
                y += 1
            }
            ql += 32
            scaleIndex += 2
            u1 <<= 2
            u2 <<= 2
        }
    }
}

enum Q5_KBlocks: BlockDecoder {
    static let weightsPerBlock = 256
    static let bytesPerBlock = 176

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        // d * scale and dmin * min for all 8 sub-blocks, one rounding each as in the reference.
        let scaleMins = scalesAndMinsK4(block + 4)
        let ds = scaleMins.lowHalf * block.half(0)
        let mins = scaleMins.highHalf * block.half(2)
        for j in 0..<4 {
            let d1 = SIMD16<Float>(repeating: ds[2 * j]), min1 = SIMD16<Float>(repeating: mins[2 * j])
            let d2 = SIMD16<Float>(repeating: ds[2 * j + 1]), min2 = SIMD16<Float>(repeating: mins[2 * j + 1])
            let bit1 = SIMD16<UInt8>(repeating: UInt8(1) << UInt8(2 * j))
            let bit2 = SIMD16<UInt8>(repeating: UInt8(2) << UInt8(2 * j))
            for half in 0..<2 {
                let qh = block.bytes16(16 + 16 * half)
                let ql = block.bytes16(48 + 32 * j + 16 * half)
                body(64 * j + 16 * half, floats((ql & 0x0F) | sixteenWhereSet(qh, bit1)) * d1 - min1)
                body(64 * j + 32 + 16 * half, floats((ql &>> 4) | sixteenWhereSet(qh, bit2)) * d2 - min2)
            }
        }
    }
}

// MARK: - Q6_K
//
// Super-block (210 bytes, 256 weights = 16 sub-blocks of 16):
//
//     [ql: 128 B][qh: 64 B][scales: 16 × i8][d: f16]
//
// Two halves of 128 weights; half n uses ql[64n ..< 64n + 64], qh[32n ..< 32n + 32] and
// scales[8n ..< 8n + 8]. For l in 0..<32, with a = ql[l], b = ql[l + 32], h = qh[l]:
//
//     weight l      = a & 0xF | (h & 3) << 4        scale[l / 16]
//     weight l + 32 = b & 0xF | (h >> 2 & 3) << 4   scale[l / 16 + 2]
//     weight l + 64 = a >> 4  | (h >> 4 & 3) << 4   scale[l / 16 + 4]
//     weight l + 96 = b >> 4  | (h >> 6) << 4       scale[l / 16 + 6]
//
// each minus 32 (q in -32...31).   weight = d * scale * q

func dequantizeQ6_KReference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 210
        var y = dst + i * 256
        let d = block.half(208)
        var ql = 0, qh = 128, sc = 192
        for _ in stride(from: 0, to: 256, by: 128) {
            for l in 0..<32 {
                let scaleIndex = l / 16
                let a = block.byte(ql + l), b = block.byte(ql + l + 32), h = block.byte(qh + l)
                let q1 = Int8(bitPattern: (a & 0x0F) | ((h >> 0) & 3) << 4) - 32
                let q2 = Int8(bitPattern: (b & 0x0F) | ((h >> 2) & 3) << 4) - 32
                let q3 = Int8(bitPattern: (a >> 4) | ((h >> 4) & 3) << 4) - 32
                let q4 = Int8(bitPattern: (b >> 4) | ((h >> 6) & 3) << 4) - 32
                let scale = { (k: Int) in Float(block.load(fromByteOffset: sc + scaleIndex + k, as: Int8.self)) }
                y[l] = d * scale(0) * Float(q1)
                y[l + 32] = d * scale(2) * Float(q2)
                y[l + 64] = d * scale(4) * Float(q3)
                y[l + 96] = d * scale(6) * Float(q4)
            }
            y += 128
            ql += 64
            qh += 32
            sc += 8
        }
    }
}

enum Q6_KBlocks: BlockDecoder {
    static let weightsPerBlock = 256
    static let bytesPerBlock = 210

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        let d = block.half(208)
        for n in 0..<2 {
            for half in 0..<2 {
                let a = block.bytes16(64 * n + 16 * half)
                let b = block.bytes16(64 * n + 32 + 16 * half)
                let h = block.bytes16(128 + 32 * n + 16 * half)
                // Sub-block k of this 16-lane column: weights 128n + 32k + 16half + (0..<16).
                @inline(__always)
                func emit(_ k: Int, _ q: SIMD16<UInt8>) {
                    let scale = Float(block.load(fromByteOffset: 192 + 8 * n + half + 2 * k, as: Int8.self))
                    let dl = SIMD16<Float>(repeating: d * scale)
                    // Float(q) - 32 is exact, so this equals (d * scale) * Float(q - 32).
                    body(128 * n + 32 * k + 16 * half, (floats(q) - 32) * dl)
                }
                emit(0, (a & 0x0F) | ((h & 3) &<< 4))
                emit(1, (b & 0x0F) | (((h &>> 2) & 3) &<< 4))
                emit(2, (a &>> 4) | (((h &>> 4) & 3) &<< 4))
                emit(3, (b &>> 4) | ((h &>> 6) &<< 4))
            }
        }
    }
}
