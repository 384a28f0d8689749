import Foundation
import XCTest
@testable import QwenKit

/// The `qwen3moe` GGUF layout (llama.cpp's names, stacked 3-D expert tensors, `expert_*` keys):
/// there is no tiny MoE GGUF fixture, so this writes one from `tiny-qwen3-moe`'s safetensors
/// (BF16 widened to F32 exactly, as convert_hf_to_gguf.py lays it out) and checks it against
/// the same transformers reference.
final class FamilyMoEGGUFTests: XCTestCase {
    func testQwen3MoEGGUFMatchesReference() throws {
        let folder = Fixtures.url("models/tiny-qwen3-moe")
        let hf = try LanguageModel(path: folder.path).transformer
        let c = hf.config
        let source = try SafetensorsCheckpoint(directory: folder.path)
        let moe = try XCTUnwrap(c.experts)

        var writer = GGUFWriter()
        writer.add("general.architecture", string: "qwen3moe")
        for (key, value) in [("block_count", c.layerCount), ("context_length", c.trainedContextLength),
                             ("embedding_length", c.hiddenSize), ("attention.head_count", c.headCount),
                             ("attention.head_count_kv", c.kvHeadCount), ("attention.key_length", c.headDim),
                             ("attention.value_length", c.headDim), ("expert_count", moe.count),
                             ("expert_used_count", moe.used), ("expert_feed_forward_length", moe.feedForwardSize)] {
            writer.add("qwen3moe.\(key)", uint32: UInt32(value))
        }
        writer.add("qwen3moe.rope.freq_base", float32: c.ropeTheta)
        writer.add("qwen3moe.attention.layer_norm_rms_epsilon", float32: c.rmsNormEpsilon)
        writer.add("tokenizer.ggml.tokens", strings: (0..<c.vocabularySize).map { "t\($0)" })

        /// F32 values of a BF16/F32 tensor.
        func floats(_ name: String) throws -> (values: [Float], shape: [Int]) {
            let (info, file) = try XCTUnwrap(source.tensor(named: name), name)
            let base = file.data(of: info)
            let values: [Float] = (0..<info.elementCount).map { i in
                switch info.dtype {
                case .bf16: Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                default: base.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                }
            }
            return (values, info.shape)
        }
        func tensor(_ gguf: String, _ hfName: String) throws {
            let (values, shape) = try floats(hfName)
            writer.add(tensor: gguf, shape: shape.reversed(), values: values)
        }
        try tensor("token_embd.weight", "model.embed_tokens.weight")
        try tensor("output.weight", "lm_head.weight")
        try tensor("output_norm.weight", "model.norm.weight")
        for l in 0..<c.layerCount {
            let b = "blk.\(l).", p = "model.layers.\(l)."
            try tensor(b + "attn_norm.weight", p + "input_layernorm.weight")
            for (g, h) in [("q", "q"), ("k", "k"), ("v", "v"), ("output", "o")] {
                try tensor(b + "attn_\(g).weight", p + "self_attn.\(h)_proj.weight")
            }
            try tensor(b + "attn_q_norm.weight", p + "self_attn.q_norm.weight")
            try tensor(b + "attn_k_norm.weight", p + "self_attn.k_norm.weight")
            try tensor(b + "ffn_norm.weight", p + "post_attention_layernorm.weight")
            try tensor(b + "ffn_gate_inp.weight", p + "mlp.gate.weight")
            for (g, h) in [("gate", "gate"), ("up", "up"), ("down", "down")] {
                var stacked: [Float] = []
                var shape: [Int] = []
                for e in 0..<moe.count {
                    let (values, s) = try floats(p + "mlp.experts.\(e).\(h)_proj.weight")
                    stacked += values
                    shape = s
                }
                writer.add(tensor: b + "ffn_\(g)_exps.weight", shape: shape.reversed() + [moe.count], values: stacked)
            }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-qwen3moe-\(UUID().uuidString).gguf")
        try Data(writer.bytes()).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }

        let gguf = try Transformer(gguf: GGUFFile(path: url.path))
        XCTAssertEqual(gguf.config.experts, moe)
        try TinyModelTests.check(gguf, folder: "tiny-qwen3-moe", reference: "reference.json")
    }
}

/// A minimal GGUF v3 writer for tests: u32/f32/string/string-array metadata and F32 tensors.
struct GGUFWriter {
    private var metadata: [UInt8] = []
    private var metadataCount = 0
    private var tensors: [(name: String, shape: [Int], values: [Float])] = []

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func append(_ string: String, to bytes: inout [UInt8]) {
        append(UInt64(string.utf8.count), to: &bytes)
        bytes.append(contentsOf: string.utf8)
    }

    mutating func add(_ key: String, uint32 value: UInt32) {
        Self.append(key, to: &metadata); Self.append(UInt32(4), to: &metadata); Self.append(value, to: &metadata)
        metadataCount += 1
    }

    mutating func add(_ key: String, float32 value: Float) {
        Self.append(key, to: &metadata); Self.append(UInt32(6), to: &metadata); Self.append(value.bitPattern, to: &metadata)
        metadataCount += 1
    }

    mutating func add(_ key: String, string value: String) {
        Self.append(key, to: &metadata); Self.append(UInt32(8), to: &metadata); Self.append(value, to: &metadata)
        metadataCount += 1
    }

    mutating func add(_ key: String, strings values: [String]) {
        Self.append(key, to: &metadata); Self.append(UInt32(9), to: &metadata)
        Self.append(UInt32(8), to: &metadata); Self.append(UInt64(values.count), to: &metadata)
        for value in values { Self.append(value, to: &metadata) }
        metadataCount += 1
    }

    /// `shape` innermost first, as GGUF lists it.
    mutating func add(tensor name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count)
        tensors.append((name, shape, values))
    }

    func bytes(alignment: Int = 32) -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8)
        Self.append(UInt32(3), to: &out)
        Self.append(UInt64(tensors.count), to: &out)
        Self.append(UInt64(metadataCount), to: &out)
        out += metadata
        var offset = 0
        for t in tensors {
            Self.append(t.name, to: &out)
            Self.append(UInt32(t.shape.count), to: &out)
            for ne in t.shape { Self.append(UInt64(ne), to: &out) }
            Self.append(UInt32(0), to: &out)  // F32
            Self.append(UInt64(offset), to: &out)
            offset += (t.values.count * 4 + alignment - 1) / alignment * alignment
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            for v in t.values { Self.append(v.bitPattern, to: &out) }
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }
}
