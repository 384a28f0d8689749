/// A Qwen architecture family: the names it goes by in each format and the parts its config and
/// weights have. This is the registry the loaders consult: the config readers
/// (`ModelConfig(gguf:)`, `ModelConfig(huggingFace:)`) read the parts a family declares, the
/// tensor names (``TensorNames``) follow it, and the forward pass assembles each layer from the
/// shared blocks (attention, Gated DeltaNet, feed-forward, mixture of experts) the config names.
/// Adding a family that reuses these blocks is adding an entry here.
public struct ModelFamily: Sendable, Equatable, Hashable {
    /// The engine's name, GGUF's `general.architecture`.
    public let architecture: String
    /// Hugging Face `architectures` class names of this family.
    public let huggingFaceClasses: Set<String>
    /// Hugging Face `model_type`s of this family (used when `architectures` names no known class).
    public let huggingFaceModelTypes: Set<String>
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3 on).
    public let queryKeyNorm: Bool
    /// The feed-forward is a routed mixture of experts.
    public let experts: Bool
    /// Qwen3.5: Gated DeltaNet layers among gated, partially rotated attention layers, zero-centred
    /// norms, a nested `text_config` and a multi-token-prediction block after the last layer.
    public let hybrid: Bool

    /// The q, k and v projections have biases (Qwen2): a file without them is broken, not a variant.
    public var queryKeyValueBias: Bool { self == .qwen2 }

    // The attention-only families; the others are in Families/, each with the config parts it adds.
    public static let qwen2 = ModelFamily(architecture: "qwen2", huggingFaceClasses: ["Qwen2ForCausalLM"],
                                          huggingFaceModelTypes: ["qwen2"], queryKeyNorm: false, experts: false,
                                          hybrid: false)
    public static let qwen3 = ModelFamily(architecture: "qwen3", huggingFaceClasses: ["Qwen3ForCausalLM"],
                                          huggingFaceModelTypes: ["qwen3"], queryKeyNorm: true, experts: false,
                                          hybrid: false)
    /// Every family this engine runs.
    public static let all: [ModelFamily] = [.qwen2, .qwen3, .qwen3MoE, .qwen35, .qwen35MoE]

    /// The family of a GGUF `general.architecture`.
    public static func gguf(_ architecture: String) -> ModelFamily? {
        all.first { $0.architecture == architecture }
    }

    /// The family of a Hugging Face config: by its first `architectures` class, or by `model_type`
    /// when it names none (a class this engine does not know, e.g. a classifier, is not guessed at).
    public static func huggingFace(className: String?, modelType: String?) -> ModelFamily? {
        if let className { return all.first { $0.huggingFaceClasses.contains(className) } }
        guard let modelType else { return nil }
        return all.first { $0.huggingFaceModelTypes.contains(modelType) }
    }

    /// What an error message lists as supported.
    static var supportedNames: String {
        all.map(\.architecture).joined(separator: ", ") + "; "
            + all.flatMap { $0.huggingFaceClasses.sorted() }.joined(separator: ", ")
    }
}
