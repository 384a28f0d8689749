/// Qwen3-MoE: Qwen3's attention with a routed mixture of experts in every layer (or every
/// `decoder_sparse_step`-th, except `mlp_only_layers`). Its expert config is read here for every
/// mixture-of-experts family (Qwen3.5-MoE adds a shared expert).
extension ModelFamily {
    public static let qwen3MoE = ModelFamily(architecture: "qwen3moe", huggingFaceClasses: ["Qwen3MoeForCausalLM"],
                                             huggingFaceModelTypes: ["qwen3_moe"], queryKeyNorm: true, experts: true,
                                             hybrid: false)
}

extension ExpertConfig {
    /// `<arch>.expert_*`. llama.cpp's qwen3moe and qwen35moe graphs always renormalize the top-k
    /// weights and route every layer.
    init(gguf keys: GGUFKeys) throws(ModelFileError) {
        let count = try keys.integer("expert_count", range: 1...4096)
        self.init(count: count,
                  used: try keys.integer("expert_used_count", range: 1...count),
                  feedForwardSize: try keys.integer("expert_feed_forward_length", range: 1...1 << 20),
                  normalizeTopK: true,
                  sharedFeedForwardSize: try keys.optionalInteger("expert_shared_feed_forward_length", range: 1...1 << 20))
    }

    /// `num_experts`, `num_experts_per_tok`, `moe_intermediate_size`, `norm_topk_prob`,
    /// `decoder_sparse_step`, `mlp_only_layers`, `shared_expert_intermediate_size`.
    init(huggingFace file: JSONFile, in root: JSONValue, family: ModelFamily, layers: Int) throws(ModelFileError) {
        func integer(_ key: String, _ range: ClosedRange<Int>, default fallback: Int? = nil) throws(ModelFileError) -> Int {
            try file.integer(key, in: root, range: range, default: fallback)
        }
        let count = try integer("num_experts", 1...4096)
        // Qwen3.5's MoE block always renormalizes the top-k weights (it has no switch).
        self.init(count: count,
                  used: try integer("num_experts_per_tok", 1...count),
                  feedForwardSize: try integer("moe_intermediate_size", 1...1 << 20),
                  normalizeTopK: family.hybrid ? true : try file.bool("norm_topk_prob", in: root, default: false))
        sparseStep = try integer("decoder_sparse_step", 1...1024, default: 1)
        if let list = file.value("mlp_only_layers", in: root) {
            guard let layerList = list.arrayValue else { throw file.invalid("mlp_only_layers", "expected a list of layer numbers") }
            for layer in layerList {
                guard let l = layer.intValue, l >= 0, l < layers else {
                    throw file.invalid("mlp_only_layers", "expected layer numbers in 0..<\(layers)")
                }
                denseLayers.insert(l)
            }
        }
        let shared = try integer("shared_expert_intermediate_size", 0...1 << 20, default: 0)
        sharedFeedForwardSize = shared > 0 ? shared : nil
    }
}
