import Foundation

/// The tensor names of one checkpoint format: the only place they are written. The layer names
/// are relative to ``layer(_:)``; every block file reads its weights through these.
struct TensorNames: Sendable {
    var embedding: String, outputNorm: String, output: String
    private var layerPrefix: String
    /// The two norms of a block (before the mixer, before the feed-forward).
    var mixerNorm: String, ffnNorm: String
    // Attention.
    var q: String, k: String, v: String, o: String
    var qBias: String, kBias: String, vBias: String, oBias: String
    var qNorm: String, kNorm: String
    // Gated DeltaNet.
    var qkv: String, z: String, beta: String, alpha: String, conv: String
    var decay: String, dtBias: String, deltaNorm: String, deltaOut: String
    // Feed-forward, dense and mixture.
    var gate: String, up: String, down: String, router: String
    var sharedGate: String, sharedUp: String, sharedDown: String, sharedRouter: String
    /// The experts' names, in the format's own layout (see ``TensorSource/experts(_:layer:count:width:hidden:)``).
    var experts: ExpertNames
    /// The checkpoint stores Qwen3.5's zero-centred norm weights w (the norm multiplies by 1 + w),
    /// rather than 1 + w as llama.cpp's converter does.
    var storesZeroCentredNorms: Bool
    /// The checkpoint stores the DeltaNet decay as `A_log` rather than llama.cpp's −exp(A_log).
    var storesDecayLog: Bool

    func layer(_ i: Int) -> String { "\(layerPrefix)\(i)." }

    /// The layer a tensor name belongs to (`blk.12.attn_q.weight` → 12); nil for the others.
    func layerIndex(of name: String) -> Int? {
        guard name.hasPrefix(layerPrefix) else { return nil }
        let digits = name.dropFirst(layerPrefix.count).prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, name.dropFirst(layerPrefix.count + digits.count).first == "." else { return nil }
        return Int(digits) ?? Int.max
    }

    /// llama.cpp's names (`token_embd.weight`, `blk.N.attn_q.weight`, …), as its converter writes them.
    static func gguf(family: ModelFamily) -> TensorNames {
        TensorNames(
            embedding: "token_embd.weight", outputNorm: "output_norm.weight", output: "output.weight",
            layerPrefix: "blk.",
            mixerNorm: "attn_norm.weight",
            // Qwen3.5 files name the second norm after Hugging Face's post_attention_layernorm.
            ffnNorm: family.hybrid ? "post_attention_norm.weight" : "ffn_norm.weight",
            q: "attn_q.weight", k: "attn_k.weight", v: "attn_v.weight", o: "attn_output.weight",
            qBias: "attn_q.bias", kBias: "attn_k.bias", vBias: "attn_v.bias", oBias: "attn_output.bias",
            qNorm: "attn_q_norm.weight", kNorm: "attn_k_norm.weight",
            qkv: "attn_qkv.weight", z: "attn_gate.weight", beta: "ssm_beta.weight", alpha: "ssm_alpha.weight",
            conv: "ssm_conv1d.weight", decay: "ssm_a", dtBias: "ssm_dt.bias", deltaNorm: "ssm_norm.weight",
            deltaOut: "ssm_out.weight",
            gate: "ffn_gate.weight", up: "ffn_up.weight", down: "ffn_down.weight", router: "ffn_gate_inp.weight",
            sharedGate: "ffn_gate_shexp.weight", sharedUp: "ffn_up_shexp.weight", sharedDown: "ffn_down_shexp.weight",
            sharedRouter: "ffn_gate_inp_shexp.weight",
            experts: ExpertNames(gate: "ffn_gate_exps.weight", up: "ffn_up_exps.weight", down: "ffn_down_exps.weight",
                                 fusedGateUp: nil),
            storesZeroCentredNorms: false, storesDecayLog: false)
    }

    /// Hugging Face's names (`model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`, …)
    /// under `prefix` (`model.`, or `model.language_model.` in the multimodal Qwen3.5 releases).
    static func huggingFace(prefix: String, family: ModelFamily) -> TensorNames {
        TensorNames(
            embedding: prefix + "embed_tokens.weight", outputNorm: prefix + "norm.weight", output: "lm_head.weight",
            layerPrefix: prefix + "layers.",
            mixerNorm: "input_layernorm.weight", ffnNorm: "post_attention_layernorm.weight",
            q: "self_attn.q_proj.weight", k: "self_attn.k_proj.weight", v: "self_attn.v_proj.weight",
            o: "self_attn.o_proj.weight",
            qBias: "self_attn.q_proj.bias", kBias: "self_attn.k_proj.bias", vBias: "self_attn.v_proj.bias",
            oBias: "self_attn.o_proj.bias",
            qNorm: "self_attn.q_norm.weight", kNorm: "self_attn.k_norm.weight",
            qkv: "linear_attn.in_proj_qkv.weight", z: "linear_attn.in_proj_z.weight",
            beta: "linear_attn.in_proj_b.weight", alpha: "linear_attn.in_proj_a.weight",
            conv: "linear_attn.conv1d.weight", decay: "linear_attn.A_log", dtBias: "linear_attn.dt_bias",
            deltaNorm: "linear_attn.norm.weight", deltaOut: "linear_attn.out_proj.weight",
            gate: "mlp.gate_proj.weight", up: "mlp.up_proj.weight", down: "mlp.down_proj.weight",
            router: "mlp.gate.weight",
            sharedGate: "mlp.shared_expert.gate_proj.weight", sharedUp: "mlp.shared_expert.up_proj.weight",
            sharedDown: "mlp.shared_expert.down_proj.weight", sharedRouter: "mlp.shared_expert_gate.weight",
            // Per expert `mlp.experts.E.gate_proj.weight` (E in the middle), or fused by transformers 5.
            experts: ExpertNames(gate: "mlp.experts.*.gate_proj.weight", up: "mlp.experts.*.up_proj.weight",
                                 down: "mlp.experts.*.down_proj.weight",
                                 fusedGateUp: (gateUp: "mlp.experts.gate_up_proj", down: "mlp.experts.down_proj")),
            storesZeroCentredNorms: family.hybrid, storesDecayLog: true)
    }
}

/// The names of a layer's routed experts: stacked per projection (GGUF `[cols, rows, experts]`),
/// one tensor per expert with `*` standing for its number, or fused as transformers 5 saves them.
struct ExpertNames: Sendable {
    var gate: String, up: String, down: String
    /// `gate_up_proj` (experts, 2·width, hidden) with gate rows first, and `down_proj` (experts, hidden, width).
    var fusedGateUp: (gateUp: String, down: String)?

    func expert(_ name: String, _ e: Int) -> String { name.replacingOccurrences(of: "*", with: "\(e)") }
}
