/// The shape of a Qwen transformer, read from a model file's metadata (GGUF keys or a
/// Hugging Face `config.json`).
public struct ModelConfig: Sendable, Equatable {
    /// The architecture family (``ModelFamily``), which decides what the config and weights hold.
    public var family: ModelFamily
    /// `qwen2`, `qwen3`, `qwen3moe`, `qwen35` or `qwen35moe`: GGUF's `general.architecture`
    /// names, also used for the Hugging Face classes (`Qwen2ForCausalLM`, …, `qwen3_5`, `qwen3_5_moe`).
    public var architecture: String { family.architecture }
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
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3).
    public var hasQueryKeyNorm: Bool
    /// The output head is the token embedding.
    public var tieWordEmbeddings: Bool
    /// YaRN context extension; nil for plain RoPE.
    public var ropeScaling: YaRNScaling?
    /// The mixture-of-experts feed-forward (Qwen3-MoE); nil for dense models.
    public var experts: ExpertConfig?
    /// What each layer mixes tokens with: attention everywhere, or (Qwen3.5) mostly Gated DeltaNet.
    public var layerKinds: [LayerKind]
    /// The Gated DeltaNet layers' shape; nil when every layer is attention.
    public var deltaNet: DeltaNetConfig?
    /// Leading dimensions of each head that RoPE rotates (Qwen3.5 rotates a quarter); `headDim` otherwise.
    public var rotaryDims: Int
    /// `q_proj` also yields a per-head gate, and attention's output is scaled by sigmoid(gate) (Qwen3.5).
    public var attentionOutputGate: Bool

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    /// Whether layer `layer` uses the mixture of experts rather than the dense feed-forward.
    public func isExpertLayer(_ layer: Int) -> Bool {
        guard let experts else { return false }
        return !experts.denseLayers.contains(layer) && (layer + 1) % experts.sparseStep == 0
    }
}

/// The token mixer of one layer.
public enum LayerKind: Sendable, Equatable {
    /// Causal softmax attention over the KV cache.
    case attention
    /// Gated DeltaNet linear attention with a fixed-size recurrent state (Qwen3.5).
    case deltaNet
}

/// The shape of Qwen3.5's Gated DeltaNet layers (`linear_*` in `config.json`, `ssm.*` in GGUF).
public struct DeltaNetConfig: Sendable, Equatable {
    /// Query/key heads (`linear_num_key_heads`) and their size (`linear_key_head_dim`).
    public var keyHeads: Int, keyDim: Int
    /// Value heads (`linear_num_value_heads`) and their size (`linear_value_head_dim`).
    public var valueHeads: Int, valueDim: Int
    /// Width of the causal depthwise convolution (`linear_conv_kernel_dim`).
    public var convKernel: Int
    /// Value head `h` reads key head `h mod keyHeads` (llama.cpp's converter reorders the value
    /// heads so); false: key head `⌊h / (valueHeads / keyHeads)⌋`, the Hugging Face order.
    public var tiledValueHeads: Bool

    /// Channels of `in_proj_qkv` and the convolution: queries, keys, values.
    public var convChannels: Int { 2 * keyHeads * keyDim + valueHeads * valueDim }
    public var valueWidth: Int { valueHeads * valueDim }

    /// The key head value head `h` reads.
    @inline(__always)
    public func keyHead(forValueHead h: Int) -> Int {
        tiledValueHeads ? h % keyHeads : h / (valueHeads / keyHeads)
    }
}

/// YaRN RoPE scaling (`rope_scaling: {"rope_type": "yarn", ...}`, GGUF `rope.scaling.*`),
/// computed as Hugging Face transformers' `_compute_yarn_parameters` does.
public struct YaRNScaling: Sendable, Equatable {
    /// How much the context is stretched.
    public var factor: Double
    /// The context the model was trained with before the extension.
    public var originalContextLength: Int
    public var betaFast: Double = 32
    public var betaSlow: Double = 1
    /// Multiplies cos and sin; nil: `0.1 · ln(factor) + 1`.
    public var attentionFactor: Double?
    /// Round the correction range to whole dimensions (transformers' `truncate`, default true).
    public var truncate = true
}

/// The routed feed-forward of a mixture-of-experts model.
public struct ExpertConfig: Sendable, Equatable {
    /// Experts per layer (`num_experts`).
    public var count: Int
    /// Experts each token uses (`num_experts_per_tok`).
    public var used: Int
    /// Width of each expert's SwiGLU hidden layer (`moe_intermediate_size`).
    public var feedForwardSize: Int
    /// Renormalize the chosen experts' weights to sum to 1 (`norm_topk_prob`).
    public var normalizeTopK: Bool
    /// Every `sparseStep`-th layer is a mixture (`decoder_sparse_step`).
    public var sparseStep: Int = 1
    /// Layers that keep the dense feed-forward (`mlp_only_layers`).
    public var denseLayers: Set<Int> = []
    /// Width of the always-on shared expert (`shared_expert_intermediate_size`); nil or 0: none.
    public var sharedFeedForwardSize: Int?
}

/// The `<arch>.*` keys of a GGUF file, read with range checks that name the key.
struct GGUFKeys {
    let gguf: GGUFFile
    let architecture: String

    func has(_ suffix: String) -> Bool { gguf["\(architecture).\(suffix)"] != nil }

    func value(_ suffix: String) -> GGUFValue? { gguf["\(architecture).\(suffix)"] }

    func invalid(_ suffix: String, _ reason: String) -> ModelFileError {
        .invalid(field: "\(architecture).\(suffix)", reason: reason)
    }

    func integer(_ suffix: String, range: ClosedRange<Int>) throws(ModelFileError) -> Int {
        let key = "\(architecture).\(suffix)"
        guard let value = gguf[key] else { throw .missingMetadata(key: key) }
        guard let int = value.integer, range.contains(int) else { throw invalid(suffix, "expected an integer in \(range)") }
        return int
    }

    func optionalInteger(_ suffix: String, range: ClosedRange<Int>) throws(ModelFileError) -> Int? {
        has(suffix) ? try integer(suffix, range: range) : nil
    }

    func number(_ suffix: String, default fallback: Double? = nil) throws(ModelFileError) -> Double {
        guard let value = value(suffix) else {
            if let fallback { return fallback }
            throw .missingMetadata(key: "\(architecture).\(suffix)")
        }
        guard let number = value.number, number.isFinite, number > 0 else { throw invalid(suffix, "expected a positive number") }
        return number
    }
}

extension ModelConfig {
    /// Reads the `<arch>.*` keys of a GGUF file, checking each value is sane before it sizes anything:
    /// the fields every family has here, the parts a family adds in its own file (``ModelFamily``).
    init(gguf: GGUFFile) throws(ModelFileError) {
        guard let arch = gguf["general.architecture"]?.string else {
            throw .missingMetadata(key: "general.architecture")
        }
        guard let family = ModelFamily.gguf(arch) else { throw .unsupportedArchitecture(arch) }
        let keys = GGUFKeys(gguf: gguf, architecture: arch)

        self.family = family
        // Qwen3.5 files append the multi-token-prediction block(s) to `block_count`; they are not run.
        let blocks = try keys.integer("block_count", range: 1...1024)
        layerCount = blocks - (family.hybrid ? try keys.optionalInteger("nextn_predict_layers", range: 0...blocks - 1) ?? 0 : 0)
        hiddenSize = try keys.integer("embedding_length", range: 1...65536)
        // A mixture-of-experts file has only expert layers; its dense width, when present, goes unused.
        feedForwardSize = family.experts && !keys.has("feed_forward_length")
            ? 0 : try keys.integer("feed_forward_length", range: 1...1 << 20)
        headCount = try keys.integer("attention.head_count", range: 1...1024)
        kvHeadCount = try keys.optionalInteger("attention.head_count_kv", range: 1...headCount) ?? headCount
        guard headCount % kvHeadCount == 0 else {
            throw keys.invalid("attention.head_count_kv", "\(kvHeadCount) does not divide the head count \(headCount)")
        }
        if keys.has("attention.key_length") {
            headDim = try keys.integer("attention.key_length", range: 2...4096)
        } else {
            guard hiddenSize % headCount == 0 else { throw keys.invalid("embedding_length", "not a multiple of the head count") }
            headDim = hiddenSize / headCount
        }
        guard headDim % 2 == 0 else { throw keys.invalid("attention.key_length", "head size \(headDim) must be even for RoPE") }
        rotaryDims = try keys.optionalInteger("rope.dimension_count", range: 2...headDim) ?? headDim
        guard rotaryDims % 2 == 0 else { throw keys.invalid("rope.dimension_count", "\(rotaryDims) must be even") }
        // Only Qwen3.5 rotates part of each head. Elsewhere llama.cpp writes the head size here, which
        // catches head counts that fit the tensors' shapes but split them into the wrong heads.
        guard family.hybrid || rotaryDims == headDim else {
            throw keys.invalid("rope.dimension_count", "\(rotaryDims) is not the head size \(headDim) the head counts imply")
        }
        ropeTheta = Float(try keys.number("rope.freq_base", default: 10_000))
        rmsNormEpsilon = Float(try keys.number("attention.layer_norm_rms_epsilon"))
        trainedContextLength = try keys.integer("context_length", range: 1...1 << 24)
        guard let tokens = gguf["tokenizer.ggml.tokens"]?.array else {
            throw .missingMetadata(key: "tokenizer.ggml.tokens")
        }
        vocabularySize = tokens.count
        hasQueryKeyNorm = family.queryKeyNorm
        tieWordEmbeddings = gguf.tensor(named: TensorNames.gguf(family: family).output) == nil
        attentionOutputGate = family.hybrid

        ropeScaling = nil
        if let type = keys.value("rope.scaling.type")?.string, type != "none" {
            guard type == "yarn" else { throw keys.invalid("rope.scaling.type", "'\(type)' is not supported (yarn, none)") }
            var yarn = YaRNScaling(factor: try keys.number("rope.scaling.factor"),
                                   originalContextLength: try keys.integer("rope.scaling.original_context_length",
                                                                           range: 1...1 << 24))
            if keys.has("rope.scaling.yarn_beta_fast") { yarn.betaFast = try keys.number("rope.scaling.yarn_beta_fast") }
            if keys.has("rope.scaling.yarn_beta_slow") { yarn.betaSlow = try keys.number("rope.scaling.yarn_beta_slow") }
            ropeScaling = yarn
        }

        experts = family.experts ? try ExpertConfig(gguf: keys) : nil
        layerKinds = Array(repeating: .attention, count: layerCount)
        deltaNet = nil
        if family.hybrid {
            layerKinds = try DeltaNetConfig.layerKinds(gguf: keys, count: layerCount)
            deltaNet = try DeltaNetConfig(gguf: keys)
        }
    }
}
