/// Qwen3.5 / 3.6 / 3.8 (`qwen3_5`, `qwen3_5_moe`; llama.cpp's `qwen35`, `qwen35moe`): Gated
/// DeltaNet layers with a gated, partially rotated attention layer every few, zero-centred norms,
/// a nested `text_config` in the multimodal releases and a multi-token-prediction block after the
/// last layer (not run). The DeltaNet config and the layer pattern are read here.
extension ModelFamily {
    public static let qwen35 = ModelFamily(
        architecture: "qwen35", huggingFaceClasses: ["Qwen3_5ForConditionalGeneration", "Qwen3_5ForCausalLM"],
        huggingFaceModelTypes: ["qwen3_5", "qwen3_5_text"], queryKeyNorm: true, experts: false, hybrid: true)
    public static let qwen35MoE = ModelFamily(
        architecture: "qwen35moe", huggingFaceClasses: ["Qwen3_5MoeForConditionalGeneration", "Qwen3_5MoeForCausalLM"],
        huggingFaceModelTypes: ["qwen3_5_moe", "qwen3_5_moe_text"], queryKeyNorm: true, experts: true, hybrid: true)
}

extension DeltaNetConfig {
    /// llama.cpp's `ssm.*` keys; its converter stores the value heads in tiled order.
    init(gguf keys: GGUFKeys) throws(ModelFileError) {
        let keyHeads = try keys.integer("ssm.group_count", range: 1...1024)
        let valueHeads = try keys.integer("ssm.time_step_rank", range: 1...4096)
        let inner = try keys.integer("ssm.inner_size", range: 1...1 << 20)
        guard valueHeads % keyHeads == 0, inner % valueHeads == 0 else {
            throw keys.invalid("ssm.time_step_rank", "\(valueHeads) value heads of \(inner) channels for \(keyHeads) key heads")
        }
        self.init(keyHeads: keyHeads, keyDim: try keys.integer("ssm.state_size", range: 1...4096),
                  valueHeads: valueHeads, valueDim: inner / valueHeads,
                  convKernel: try keys.integer("ssm.conv_kernel", range: 1...64), tiledValueHeads: true)
    }

    /// `linear_*` in `config.json`; value heads in the grouped order.
    init(huggingFace file: JSONFile, in root: JSONValue) throws(ModelFileError) {
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(ModelFileError) -> Int {
            try file.integer(key, in: root, range: range)
        }
        let keyHeads = try integer("linear_num_key_heads", 1...1024)
        let valueHeads = try integer("linear_num_value_heads", 1...4096)
        guard valueHeads % keyHeads == 0 else {
            throw file.invalid("linear_num_value_heads", "\(valueHeads) is not a multiple of linear_num_key_heads \(keyHeads)")
        }
        self.init(keyHeads: keyHeads, keyDim: try integer("linear_key_head_dim", 1...4096),
                  valueHeads: valueHeads, valueDim: try integer("linear_value_head_dim", 1...4096),
                  convKernel: try integer("linear_conv_kernel_dim", 1...64), tiledValueHeads: false)
    }

    /// Which layers are Gated DeltaNet: `attention.recurrent_layers` (one flag per block, the MTP
    /// block last), else every layer but each `full_attention_interval`-th.
    static func layerKinds(gguf keys: GGUFKeys, count: Int) throws(ModelFileError) -> [LayerKind] {
        guard let flags = keys.value("attention.recurrent_layers") else {
            let interval = try keys.optionalInteger("full_attention_interval", range: 1...1024) ?? 4
            return pattern(count: count, interval: interval)
        }
        guard let list = flags.array, list.count >= count else {
            throw keys.invalid("attention.recurrent_layers", "expected one flag per block")
        }
        return try list.prefix(count).map { flag throws(ModelFileError) in
            if case let .bool(recurrent) = flag { return recurrent ? .deltaNet : .attention }
            guard let value = flag.integer else { throw keys.invalid("attention.recurrent_layers", "expected booleans") }
            return value != 0 ? .deltaNet : .attention
        }
    }

    /// `layer_types` (`linear_attention`, `full_attention`), else `full_attention_interval`.
    static func layerKinds(huggingFace file: JSONFile, in root: JSONValue, count: Int) throws(ModelFileError) -> [LayerKind] {
        guard let types = file.value("layer_types", in: root) else {
            return pattern(count: count, interval: try file.integer("full_attention_interval", in: root, range: 1...1024,
                                                                    default: 4))
        }
        guard let list = types.arrayValue, list.count == count else {
            throw file.invalid("layer_types", "expected one entry per layer (\(count))")
        }
        return try list.map { type throws(ModelFileError) in
            switch type.stringValue {
            case "linear_attention": return .deltaNet
            case "full_attention": return .attention
            default: throw file.invalid("layer_types", "expected linear_attention or full_attention")
            }
        }
    }

    private static func pattern(count: Int, interval: Int) -> [LayerKind] {
        (0..<count).map { ($0 + 1) % interval == 0 ? .attention : .deltaNet }
    }
}
