/// The shape of a Qwen transformer, read from a model file's metadata.
public struct ModelConfig: Sendable, Equatable {
    /// `qwen2` (GGUF `general.architecture`).
    public var architecture: String
    public var layerCount: Int
    /// Width of the residual stream (`embedding_length`).
    public var hiddenSize: Int
    /// Width of the SwiGLU hidden layer (`feed_forward_length`).
    public var feedForwardSize: Int
    public var headCount: Int
    /// Key/value heads; each serves `headCount / kvHeadCount` query heads (grouped-query attention).
    public var kvHeadCount: Int
    public var headDim: Int
    public var ropeTheta: Float
    public var rmsNormEpsilon: Float
    /// The context length the model was trained for.
    public var trainedContextLength: Int
    public var vocabularySize: Int

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }
}

extension ModelConfig {
    /// Architectures this engine runs.
    static let supportedArchitectures: Set<String> = ["qwen2"]

    /// Reads the `<arch>.*` keys of a GGUF file, checking each value is sane before it sizes anything.
    init(gguf: GGUFFile) throws(ModelFileError) {
        guard let arch = gguf["general.architecture"]?.string else {
            throw .missingMetadata(key: "general.architecture")
        }
        guard Self.supportedArchitectures.contains(arch) else { throw .unsupportedArchitecture(arch) }

        func integer(_ suffix: String, range: ClosedRange<Int>) throws(ModelFileError) -> Int {
            let key = "\(arch).\(suffix)"
            guard let value = gguf[key] else { throw .missingMetadata(key: key) }
            guard let int = value.integer, range.contains(int) else {
                throw .invalid(field: key, reason: "expected an integer in \(range)")
            }
            return int
        }
        func number(_ suffix: String, default fallback: Double? = nil) throws(ModelFileError) -> Double {
            let key = "\(arch).\(suffix)"
            guard let value = gguf[key] else {
                if let fallback { return fallback }
                throw .missingMetadata(key: key)
            }
            guard let number = value.number, number.isFinite, number > 0 else {
                throw .invalid(field: key, reason: "expected a positive number")
            }
            return number
        }

        architecture = arch
        layerCount = try integer("block_count", range: 1...1024)
        hiddenSize = try integer("embedding_length", range: 1...65536)
        feedForwardSize = try integer("feed_forward_length", range: 1...1 << 20)
        headCount = try integer("attention.head_count", range: 1...1024)
        kvHeadCount = gguf["\(arch).attention.head_count_kv"] == nil
            ? headCount : try integer("attention.head_count_kv", range: 1...headCount)
        guard headCount % kvHeadCount == 0 else {
            throw .invalid(field: "\(arch).attention.head_count_kv",
                           reason: "\(kvHeadCount) does not divide the head count \(headCount)")
        }
        if gguf["\(arch).attention.key_length"] != nil {
            headDim = try integer("attention.key_length", range: 2...4096)
        } else {
            guard hiddenSize % headCount == 0 else {
                throw .invalid(field: "\(arch).embedding_length", reason: "not a multiple of the head count")
            }
            headDim = hiddenSize / headCount
        }
        guard headDim % 2 == 0 else {
            throw .invalid(field: "\(arch).attention.key_length", reason: "head size \(headDim) must be even for RoPE")
        }
        ropeTheta = Float(try number("rope.freq_base", default: 10_000))
        rmsNormEpsilon = Float(try number("attention.layer_norm_rms_epsilon"))
        trainedContextLength = try integer("context_length", range: 1...1 << 24)
        guard let tokens = gguf["tokenizer.ggml.tokens"]?.array else {
            throw .missingMetadata(key: "tokenizer.ggml.tokens")
        }
        vocabularySize = tokens.count
    }
}
