import QwenKernels

/// The weight formats the kernels support (GGMLType also lists activation-only formats).
let weightTypes: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
                               .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

/// SplitMix64: small, seeded, reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Byte offsets of the f16 scale fields (d, m, dmin) within one block. Random bytes there
/// could be NaN or infinity, so tests overwrite them with sane values.
func halfFieldOffsets(_ type: GGMLType) -> [Int] {
    switch type {
    case .q4_0, .q5_0, .q8_0: [0]
    case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
    case .q2_K: [80, 82]
    case .q3_K: [108]
    case .q6_K: [208]
    default: []
    }
}

/// `blocks` random blocks of `type`, with every float field finite and of modest size.
func randomBlocks(_ type: GGMLType, blocks: Int, using rng: inout SeededGenerator) -> [UInt8] {
    var bytes = (0 ..< blocks * type.bytesPerBlock).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
    func putHalf(_ value: Float, at offset: Int) {
        let bits = Float16(value).bitPattern
        bytes[offset] = UInt8(truncatingIfNeeded: bits)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: bits >> 8)
    }
    switch type {
    case .f32:
        for i in 0 ..< blocks {
            let bits = Float.random(in: -4 ... 4, using: &rng).bitPattern
            for k in 0 ..< 4 { bytes[4 * i + k] = UInt8(truncatingIfNeeded: bits >> (8 * UInt32(k))) }
        }
    case .f16:
        for i in 0 ..< blocks { putHalf(Float.random(in: -4 ... 4, using: &rng), at: 2 * i) }
    case .bf16:
        for i in 0 ..< blocks {
            let bits = Float.random(in: -4 ... 4, using: &rng).bitPattern >> 16
            bytes[2 * i] = UInt8(truncatingIfNeeded: bits)
            bytes[2 * i + 1] = UInt8(truncatingIfNeeded: bits >> 8)
        }
    default:
        for b in 0 ..< blocks {
            for offset in halfFieldOffsets(type) {
                putHalf(Float.random(in: -0.05 ... 0.05, using: &rng), at: b * type.bytesPerBlock + offset)
            }
        }
    }
    return bytes
}

/// Runs `body` with the address of a non-empty byte array.
func withBase<R>(_ bytes: [UInt8], _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
    try bytes.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { preconditionFailure("empty test buffer") }
        return try body(base)
    }
}
