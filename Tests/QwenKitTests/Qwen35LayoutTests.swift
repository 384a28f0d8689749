import Foundation
import XCTest
@testable import QwenKit

/// The other Hugging Face layouts of Qwen3.5 checkpoints, made from the `tiny-qwen35-moe`
/// fixture and held to its reference: a flat `qwen3_5_moe_text` config with the text model under
/// `model.` (as fine-tunes save it), and the experts one tensor each (as quantized derivatives
/// save them) instead of transformers 5's fused `gate_up_proj` / `down_proj`.
final class Qwen35LayoutTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwen35-layout-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func testFlatConfigAndPerExpertTensors() throws {
        let source = Fixtures.url("models/tiny-qwen35-moe")
        // config.json: the text_config's fields at the top level, the text-only class.
        let nested = try JSONValue.parse(Data(contentsOf: source.appendingPathComponent("config.json")))
        let text = try XCTUnwrap(nested["text_config"]?.objectValue)
        let flat = JSONValue.object(text.filter { $0.0 != "model_type" } + [
            ("architectures", .array([.string("Qwen3_5MoeForCausalLM")])), ("model_type", .string("qwen3_5_moe_text")),
            ("tie_word_embeddings", nested["tie_word_embeddings"] ?? .bool(false)),
        ])
        try Data(flat.pythonJSON.utf8).write(to: folder.appendingPathComponent("config.json"))

        // model.safetensors: `model.language_model.` → `model.`, the vision tower and MTP dropped,
        // each fused expert tensor split into one tensor per expert and projection.
        let file = try SafetensorsFile(path: source.appendingPathComponent("model.safetensors").path)
        var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
        for info in file.tensors {
            guard info.name.hasPrefix("model.language_model.") || info.name == "lm_head.weight" else { continue }
            let name = info.name.replacingOccurrences(of: "model.language_model.", with: "model.")
            let bytes = Array(UnsafeRawBufferPointer(start: file.data(of: info), count: info.byteCount))
            let dtype = info.dtype.rawValue
            if name.hasSuffix("mlp.experts.gate_up_proj") {
                let (experts, rows, cols) = (info.shape[0], info.shape[1], info.shape[2])
                let base = String(name.dropLast("gate_up_proj".count)), half = rows / 2 * cols * info.dtype.size
                for e in 0..<experts {
                    let start = e * 2 * half
                    tensors.append((base + "\(e).gate_proj.weight", dtype, [rows / 2, cols], Array(bytes[start..<start + half])))
                    tensors.append((base + "\(e).up_proj.weight", dtype, [rows / 2, cols],
                                    Array(bytes[start + half..<start + 2 * half])))
                }
            } else if name.hasSuffix("mlp.experts.down_proj") {
                let (experts, rows, cols) = (info.shape[0], info.shape[1], info.shape[2])
                let base = String(name.dropLast("down_proj".count)), size = rows * cols * info.dtype.size
                for e in 0..<experts {
                    tensors.append((base + "\(e).down_proj.weight", dtype, [rows, cols], Array(bytes[e * size..<(e + 1) * size])))
                }
            } else {
                tensors.append((name, dtype, info.shape, bytes))
            }
        }
        XCTAssertTrue(tensors.contains { $0.name == "model.layers.0.mlp.experts.7.down_proj.weight" })
        try Self.writeSafetensors(tensors, to: folder.appendingPathComponent("model.safetensors"))

        let path = folder.path
        let model = try Transformer(safetensors: SafetensorsCheckpoint(directory: path),
                                    config: ModelConfig(huggingFace: JSONFile(path: path + "/config.json")))
        XCTAssertEqual(model.config.architecture, "qwen35moe")
        XCTAssertEqual(model.config.layerKinds, [.deltaNet, .attention, .deltaNet, .attention])
        try TinyModelTests.check(model, folder: "tiny-qwen35-moe", reference: "reference.json",
                                 tolerance: TinyModelTests.hybridTolerance)
    }

    /// A safetensors file: an 8-byte little-endian header length, the JSON header, the data.
    static func writeSafetensors(_ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])], to url: URL) throws {
        var entries: [(String, JSONValue)] = []
        var data: [UInt8] = []
        for t in tensors {
            entries.append((t.name, .object([("dtype", .string(t.dtype)), ("shape", .array(t.shape.map { .int($0) })),
                                             ("data_offsets", .array([.int(data.count), .int(data.count + t.bytes.count)]))])))
            data += t.bytes
        }
        var header = Array(JSONValue.object(entries).pythonJSON.utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var out = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        out += header
        out += data
        try Data(out).write(to: url)
    }
}

/// The family registry: which architecture names and Hugging Face classes mean which family.
final class ModelFamilyTests: XCTestCase {
    func testLookups() {
        XCTAssertEqual(ModelFamily.gguf("qwen35moe"), .qwen35MoE)
        XCTAssertNil(ModelFamily.gguf("llama"))
        XCTAssertEqual(ModelFamily.huggingFace(className: "Qwen3_5ForConditionalGeneration", modelType: "qwen3_5"), .qwen35)
        // model_type only when no class is named; an unknown class is not guessed from it.
        XCTAssertEqual(ModelFamily.huggingFace(className: nil, modelType: "qwen3_5_moe_text"), .qwen35MoE)
        XCTAssertNil(ModelFamily.huggingFace(className: "Qwen3ForSequenceClassification", modelType: "qwen3"))
        XCTAssertEqual(Set(ModelFamily.all.map(\.architecture)).count, ModelFamily.all.count)
    }
}
