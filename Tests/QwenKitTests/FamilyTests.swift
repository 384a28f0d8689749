import Foundation
import XCTest
@testable import QwenKit

/// Every Qwen family from both formats against transformers' float32 reference: Qwen2, Qwen3,
/// Qwen3 with YaRN and Qwen3-MoE as Hugging Face directories, and the Qwen3 GGUFs.
final class FamilyTests: XCTestCase {
    private func directory(_ folder: String) throws -> LanguageModel {
        try LanguageModel(path: Fixtures.url("models/\(folder)").path)
    }

    func testQwen2Directory() throws {
        try TinyModelTests.check(directory("tiny-qwen2").transformer, folder: "tiny-qwen2", reference: "reference.json")
    }

    func testQwen3Directory() throws {
        let model = try directory("tiny-qwen3")
        XCTAssertEqual(model.transformer.config.architecture, "qwen3")
        XCTAssertEqual(model.transformer.config.headDim, 16)
        try TinyModelTests.check(model.transformer, folder: "tiny-qwen3", reference: "reference.json")
    }

    /// `len100` runs past `original_max_position_embeddings` (64).
    func testQwen3YaRNDirectory() throws {
        let model = try directory("tiny-qwen3-yarn")
        let yarn = try XCTUnwrap(model.transformer.config.ropeScaling)
        XCTAssertEqual(yarn.factor, 4)
        XCTAssertEqual(yarn.originalContextLength, 64)
        XCTAssertTrue(try TinyModelTests.cases("reference.json", folder: "tiny-qwen3-yarn").contains { $0.inputIDs.count > 64 })
        try TinyModelTests.check(model.transformer, folder: "tiny-qwen3-yarn", reference: "reference.json")
    }

    func testQwen3MoEDirectory() throws {
        let model = try directory("tiny-qwen3-moe")
        XCTAssertEqual(model.transformer.config.experts?.count, 8)
        XCTAssertEqual(model.transformer.config.experts?.used, 2)
        try TinyModelTests.check(model.transformer, folder: "tiny-qwen3-moe", reference: "reference.json")
    }

    func testQwen3MoEOneThread() throws {
        try TinyModelTests.check(directory("tiny-qwen3-moe").transformer, folder: "tiny-qwen3-moe",
                                 reference: "reference.json", threads: 1)
    }

    func testQwen3F32GGUF() throws {
        let model = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/tiny-qwen3/tiny-qwen3-f32.gguf").path))
        XCTAssertEqual(model.config.headDim, 16)
        try TinyModelTests.check(model, folder: "tiny-qwen3", reference: "reference.json")
    }

    func testQwen3Q8GGUF() throws {
        let model = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/tiny-qwen3/tiny-qwen3-q8_0.gguf").path))
        try TinyModelTests.check(model, folder: "tiny-qwen3", reference: "reference-q8_0.json")
    }

    /// The F32 GGUF and the safetensors directory of one model give the same logits.
    func testSafetensorsMatchesF32GGUF() throws {
        for folder in ["tiny-qwen2", "tiny-qwen3"] {
            let gguf = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/\(folder)/\(folder)-f32.gguf").path))
            let hf = try directory(folder).transformer
            let prompt = try TinyModelTests.cases("reference.json", folder: folder).map(\.inputIDs).max { $0.count < $1.count } ?? []
            let a = InferenceState(model: gguf, contextLength: 64, threads: 2).forward(prompt, logits: .all)
            let b = InferenceState(model: hf, contextLength: 64, threads: 2).forward(prompt, logits: .all)
            XCTAssertEqual(a.count, b.count)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-5, folder)
        }
    }

    /// Prefill and token-by-token decoding agree for the mixture of experts and for YaRN.
    func testPrefillEqualsStepByStep() throws {
        for folder in ["tiny-qwen3-moe", "tiny-qwen3-yarn"] {
            let model = try directory(folder).transformer
            let v = model.config.vocabularySize
            let prompt = try TinyModelTests.cases("reference.json", folder: folder).map(\.inputIDs).max { $0.count < $1.count } ?? []
            let batch = InferenceState(model: model, contextLength: 128, threads: 2).forward(prompt, logits: .all)
            let stepper = InferenceState(model: model, contextLength: 128, threads: 2)
            var worst: Float = 0
            for (p, id) in prompt.enumerated() {
                let step = stepper.forward([id])
                for i in 0..<v { worst = max(worst, abs(step[i] - batch[p * v + i])) }
            }
            XCTAssertLessThanOrEqual(worst, 1e-4, folder)
        }
    }

    /// What a directory brings besides weights: tokenizer, template, EOS ids, sampling defaults.
    func testDirectoryMetadata() throws {
        let qwen3 = try directory("tiny-qwen3")
        let tokenizer = try qwen3.requireTokenizer()
        XCTAssertEqual(tokenizer.encode("Hello world"), [9707, 1879])
        XCTAssertNotNil(qwen3.chatTemplate)
        XCTAssertTrue(qwen3.stopTokenIDs.isSuperset(of: [151645, 151643]))
        XCTAssertEqual(qwen3.generationDefaults.doSample, false)
        XCTAssertNil(qwen3.generationDefaults.temperature)

        // No tokenizer files: still loads and runs on ids; text needs a clear error.
        let moe = try directory("tiny-qwen3-moe")
        XCTAssertNil(moe.tokenizer)
        XCTAssertTrue(moe.stopTokenIDs.contains(1))
        XCTAssertThrowsError(try moe.requireTokenizer()) { error in
            XCTAssertTrue("\(error)".contains("no tokenizer"), "\(error)")
        }
        let generator = Generator(model: moe, contextLength: 32, threads: 2)
        var options = GenerationOptions()
        options.maxTokens = 4
        options.sampling.temperature = 0
        let result = try generator.generate(prompt: [5, 6, 7], options: options)
        XCTAssertEqual(result.tokens.count, 4)
        XCTAssertEqual(result.text, "")
    }

    func testModelStoreResolvesDirectories() throws {
        let path = Fixtures.url("models/tiny-qwen3").path
        let resolved = try ModelStore(environment: [:]).resolve(path)
        XCTAssertEqual(resolved.path, path)
        XCTAssertNil(resolved.missing)
    }

    /// transformers' YaRN frequencies for the tiny model (head_dim 16, theta 1e6, factor 4,
    /// original context 64): low = max(floor(−0.66…), 0) = 0, high = ceil(1.34…) = 2, so pair 0
    /// keeps its frequency, pair 1 is half-way, and pairs 2–7 are divided by the factor.
    func testYaRNFrequencies() throws {
        var config = try directory("tiny-qwen3-yarn").transformer.config
        let yarn = RotaryFrequencies(config: config)
        XCTAssertEqual(yarn.attentionFactor, Float(0.1 * log(4.0) + 1), accuracy: 1e-7)
        config.ropeScaling = nil
        let plain = RotaryFrequencies(config: config)
        XCTAssertEqual(plain.attentionFactor, 1)
        XCTAssertEqual(yarn.inverseFrequencies[0], plain.inverseFrequencies[0])
        for i in 2..<8 {
            XCTAssertEqual(yarn.inverseFrequencies[i], plain.inverseFrequencies[i] / 4, accuracy: plain.inverseFrequencies[i] * 1e-6)
        }
        XCTAssertEqual(yarn.inverseFrequencies[1], plain.inverseFrequencies[1] * (0.5 + 0.5 / 4), accuracy: 1e-7)
    }
}
