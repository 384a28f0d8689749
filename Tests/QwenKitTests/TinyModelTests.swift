import Foundation
import XCTest
@testable import QwenKit

/// The tiny random Qwen2 GGUFs against Hugging Face transformers' float32 reference logits
/// (`../shared/fixtures/models/tiny-qwen2`, see the fixtures README for how they were made).
final class TinyModelTests: XCTestCase {
    struct Case {
        var name: String
        var inputIDs: [Int]
        /// (id, logit) pairs at the last position: every logit (F32 reference) or the top 50 (Q8_0 reference).
        var lastLogits: [(id: Int, logit: Float)]
        var lastLogSumExp: Float
        /// Per prompt position, the reference top 5.
        var top5: [[(id: Int, logit: Float)]]
        var greedy: [Int]
    }

    static func cases(_ file: String) throws -> [Case] {
        let object = try JSONSerialization.jsonObject(with: try Fixtures.data("models/tiny-qwen2/\(file)"))
        guard let root = object as? [String: Any], let cases = root["cases"] as? [[String: Any]] else {
            throw Fixtures.FixtureError(message: "\(file): no cases")
        }
        func pairs(_ value: Any?) -> [(id: Int, logit: Float)] {
            ((value as? [[NSNumber]]) ?? []).map { (id: $0[0].intValue, logit: $0[1].floatValue) }
        }
        return cases.map { c in
            let last: [(id: Int, logit: Float)]
            if let all = c["last_logits"] as? [NSNumber] {
                last = all.enumerated().map { (id: $0.offset, logit: $0.element.floatValue) }
            } else {
                last = pairs(c["last_top50"])
            }
            let greedy = c["greedy"] as? [String: Any]
            return Case(name: c["name"] as? String ?? "?",
                        inputIDs: (c["input_ids"] as? [Int]) ?? [],
                        lastLogits: last,
                        lastLogSumExp: (c["last_logsumexp"] as? NSNumber)?.floatValue ?? .nan,
                        top5: ((c["top5"] as? [Any]) ?? []).map { pairs($0) },
                        greedy: (greedy?["new_token_ids"] as? [Int]) ?? [])
        }
    }

    /// The fixtures README's bound for a float32 implementation.
    static func tolerance(_ reference: Float) -> Float { 1e-4 + 1e-4 * abs(reference) }

    func check(gguf file: String, reference: String, threads: Int = 2) throws {
        let model = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/tiny-qwen2/\(file)").path))
        let vocabularySize = model.config.vocabularySize
        let cases = try Self.cases(reference)
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            let state = InferenceState(model: model, contextLength: 64, threads: threads)
            let logits = state.forward(c.inputIDs, logits: .all)
            XCTAssertEqual(c.top5.count, c.inputIDs.count, c.name)

            // Every position: the top-5 ids as a set, with logits within the bound.
            for (p, expected) in c.top5.enumerated() {
                let row = Array(logits[p * vocabularySize ..< (p + 1) * vocabularySize])
                let ours = Set(row.indices.sorted { row[$0] > row[$1] }.prefix(5))
                XCTAssertEqual(ours, Set(expected.map(\.id)), "\(c.name) position \(p): top-5 ids")
                for (id, logit) in expected {
                    XCTAssertEqual(row[id], logit, accuracy: Self.tolerance(logit), "\(c.name) position \(p) id \(id)")
                }
            }
            // Last position: every reference logit.
            let last = Array(logits[(c.inputIDs.count - 1) * vocabularySize ..< c.inputIDs.count * vocabularySize])
            var worst: Float = 0
            for (id, logit) in c.lastLogits {
                let error = abs(last[id] - logit)
                XCTAssertLessThanOrEqual(error, Self.tolerance(logit), "\(c.name) last position id \(id)")
                worst = max(worst, error)
            }

            // Greedy continuation with the KV cache, token by token.
            var next = argmax(last)
            var generated = [next]
            while generated.count < c.greedy.count {
                next = argmax(state.forward([next]))
                generated.append(next)
            }
            XCTAssertEqual(generated, c.greedy, "\(c.name): greedy continuation")
        }
    }

    func testF32GGUFMatchesReference() throws {
        try check(gguf: "tiny-qwen2-f32.gguf", reference: "reference.json")
    }

    func testQ8GGUFMatchesReference() throws {
        try check(gguf: "tiny-qwen2-q8_0.gguf", reference: "reference-q8_0.json")
    }

    func testOneThreadMatchesReference() throws {
        try check(gguf: "tiny-qwen2-f32.gguf", reference: "reference.json", threads: 1)
    }

    /// A prompt processed as one batch gives the same logits as feeding it token by token.
    func testPrefillEqualsStepByStep() throws {
        for file in ["tiny-qwen2-f32.gguf", "tiny-qwen2-q8_0.gguf"] {
            let model = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/tiny-qwen2/\(file)").path))
            let v = model.config.vocabularySize
            let prompt = try Self.cases("reference.json").map(\.inputIDs).max { $0.count < $1.count } ?? []
            let batch = InferenceState(model: model, contextLength: 64, threads: 2).forward(prompt, logits: .all)
            let stepper = InferenceState(model: model, contextLength: 64, threads: 2)
            for (p, id) in prompt.enumerated() {
                let step = stepper.forward([id])
                for i in 0..<v where abs(step[i] - batch[p * v + i]) > 1e-4 {
                    XCTFail("\(file) position \(p) id \(i): step \(step[i]) vs batch \(batch[p * v + i])")
                    return
                }
            }
        }
    }

    private func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
