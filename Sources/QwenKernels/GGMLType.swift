/// The tensor element types of GGUF files, with ggml's numbering.
///
/// Quantized types store a row as consecutive blocks; each block holds `blockSize`
/// weights in `bytesPerBlock` bytes. Block layouts (little-endian, as in ggml-common.h):
///
///     Q4_0  [d: f16][qs: 16 B]                         32 weights, 4.5 bits each
///     Q4_1  [d: f16][m: f16][qs: 16 B]                 32 weights, 5.0
///     Q5_0  [d: f16][qh: 4 B][qs: 16 B]                32 weights, 5.5
///     Q5_1  [d: f16][m: f16][qh: 4 B][qs: 16 B]        32 weights, 6.0
///     Q8_0  [d: f16][qs: 32 × i8]                      32 weights, 8.5
///     Q2_K  [scales: 16 B][qs: 64 B][d: f16][dmin: f16]            256 weights, 2.625
///     Q3_K  [hmask: 32 B][qs: 64 B][scales: 12 B][d: f16]          256 weights, 3.4375
///     Q4_K  [d: f16][dmin: f16][scales: 12 B][qs: 128 B]           256 weights, 4.5
///     Q5_K  [d: f16][dmin: f16][scales: 12 B][qh: 32 B][qs: 128 B] 256 weights, 5.5
///     Q6_K  [ql: 128 B][qh: 64 B][scales: 16 × i8][d: f16]         256 weights, 6.5625
///     Q8_K  [d: f32][qs: 256 × i8][bsums: 16 × i16]                256 weights (activations only)
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case bf16 = 30

    /// Weights per block (1 for the float types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K: 256
        }
    }

    /// Bytes per block.
    public var bytesPerBlock: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q8_1: 36
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        case .q8_K: 292
        }
    }

    /// ggml's name for the type, as llama.cpp prints it.
    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        }
    }

    /// Bytes of one row of `count` weights, or nil when `count` is not a whole number of blocks
    /// or the size overflows.
    public func rowBytes(count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }
}
