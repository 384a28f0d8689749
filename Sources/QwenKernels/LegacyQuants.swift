// The 32-weight block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
//
// In every 4- and 5-bit format, byte j of `qs` holds weight j in its low nibble and
// weight j + 16 in its high nibble, so one 16-byte load gives both halves of the block.
// Weights are computed as `d * q` or `d * q + m` with separate (unfused) multiply and add,
// as ggml and gguf-py do, so the fast and reference kernels agree bit for bit.

/// Bit i % 8 of each lane: with a byte of `qh` repeated 8 times, picks one bit per lane.
///
/// Deliberately a global, not a local constant: as a literal in `fifthBits` LLVM folds it
/// into the broadcasts and rebuilds the vector with byte permutes, which measured ~40% slower
/// (Q5_0 dot 16 → 8 weights/ns); the lazy-init check is hoisted out of the row loop.
private let laneBits = SIMD16<UInt8>(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128)

/// The 5th bits of 16 consecutive weights, from two bytes of a 32-bit `qh` field: 16 where
/// the bit is set, else 0.
@inline(__always)
private func fifthBits(_ low: UInt8, _ high: UInt8) -> SIMD16<UInt8> {
    let bytes = SIMD16<UInt8>(low, low, low, low, low, low, low, low,
                              high, high, high, high, high, high, high, high)
    return sixteenWhereSet(bytes, laneBits)
}

// MARK: - Q4_0
//
// Block (18 bytes, 32 weights):
//
//     [d: f16][qs: 16 B]     weight j = d * (nibble_j - 8)

func dequantizeQ4_0Reference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 18
        let y = dst + i * 32
        let d = block.half(0)
        for j in 0..<16 {
            let q = block.byte(2 + j)
            let x0 = Int32(q & 0x0F) - 8
            let x1 = Int32(q >> 4) - 8
            y[j] = Float(x0) * d
            y[j + 16] = Float(x1) * d
        }
    }
}

enum Q4_0Blocks: BlockDecoder {
    static let weightsPerBlock = 32
    static let bytesPerBlock = 18

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        let d = SIMD16<Float>(repeating: block.half(0))
        let qs = block.bytes16(2)
        // Float(q) - 8 is exact, so this equals Float(q - 8) * d.
        body(0, (floats(qs & 0x0F) - 8) * d)
        body(16, (floats(qs &>> 4) - 8) * d)
    }
}

// MARK: - Q4_1
//
// Block (20 bytes, 32 weights):
//
//     [d: f16][m: f16][qs: 16 B]     weight j = d * nibble_j + m

func dequantizeQ4_1Reference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 20
        let y = dst + i * 32
        let d = block.half(0)
        let m = block.half(2)
        for j in 0..<16 {
            let q = block.byte(4 + j)
            y[j] = Float(q & 0x0F) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }
}

enum Q4_1Blocks: BlockDecoder {
    static let weightsPerBlock = 32
    static let bytesPerBlock = 20

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        let d = SIMD16<Float>(repeating: block.half(0))
        let m = SIMD16<Float>(repeating: block.half(2))
        let qs = block.bytes16(4)
        body(0, floats(qs & 0x0F) * d + m)
        body(16, floats(qs &>> 4) * d + m)
    }
}

// MARK: - Q5_0
//
// Block (22 bytes, 32 weights):
//
//     [d: f16][qh: 4 B][qs: 16 B]     weight j = d * ((nibble_j | bit_j(qh) << 4) - 16)
//
// `qh` is a little-endian 32-bit mask: bit j is the 5th bit of weight j.

func dequantizeQ5_0Reference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 22
        let y = dst + i * 32
        let d = block.half(0)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<16 {
            let q = block.byte(6 + j)
            let xh0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
            let xh1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
            let x0 = Int32((q & 0x0F) | xh0) - 16
            let x1 = Int32((q >> 4) | xh1) - 16
            y[j] = Float(x0) * d
            y[j + 16] = Float(x1) * d
        }
    }
}

enum Q5_0Blocks: BlockDecoder {
    static let weightsPerBlock = 32
    static let bytesPerBlock = 22

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        let d = SIMD16<Float>(repeating: block.half(0))
        let qs = block.bytes16(6)
        let low = (qs & 0x0F) | fifthBits(block.byte(2), block.byte(3))
        let high = (qs &>> 4) | fifthBits(block.byte(4), block.byte(5))
        body(0, (floats(low) - 16) * d)
        body(16, (floats(high) - 16) * d)
    }
}

// MARK: - Q5_1
//
// Block (24 bytes, 32 weights):
//
//     [d: f16][m: f16][qh: 4 B][qs: 16 B]     weight j = d * (nibble_j | bit_j(qh) << 4) + m

func dequantizeQ5_1Reference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 24
        let y = dst + i * 32
        let d = block.half(0)
        let m = block.half(2)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<16 {
            let q = block.byte(8 + j)
            let xh0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
            let xh1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
            y[j] = Float((q & 0x0F) | xh0) * d + m
            y[j + 16] = Float((q >> 4) | xh1) * d + m
        }
    }
}

enum Q5_1Blocks: BlockDecoder {
    static let weightsPerBlock = 32
    static let bytesPerBlock = 24

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        let d = SIMD16<Float>(repeating: block.half(0))
        let m = SIMD16<Float>(repeating: block.half(2))
        let qs = block.bytes16(8)
        let low = (qs & 0x0F) | fifthBits(block.byte(4), block.byte(5))
        let high = (qs &>> 4) | fifthBits(block.byte(6), block.byte(7))
        body(0, floats(low) * d + m)
        body(16, floats(high) * d + m)
    }
}

// MARK: - Q8_0
//
// Block (34 bytes, 32 weights):
//
//     [d: f16][qs: 32 × i8]     weight j = d * qs_j

func dequantizeQ8_0Reference(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for i in 0..<blocks {
        let block = src + i * 34
        let y = dst + i * 32
        let d = block.half(0)
        for j in 0..<32 {
            y[j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d
        }
    }
}

enum Q8_0Blocks: BlockDecoder {
    static let weightsPerBlock = 32
    static let bytesPerBlock = 34

    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void) {
        let d = SIMD16<Float>(repeating: block.half(0))
        body(0, floats(block.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self)) * d)
        body(16, floats(block.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)) * d)
    }
}
