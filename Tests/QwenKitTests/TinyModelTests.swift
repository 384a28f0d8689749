import Foundation
import XCTest
@testable import QwenKit

/// The tiny random Qwen models against Hugging Face transformers' float32 reference logits
/// (`../shared/fixtures/models/tiny-*`, see the fixtures README for how they were made).
/// The Qwen2 GGUFs are checked here; ``FamilyTests`` runs the other families and formats
/// through the same ``check(_:folder:reference:threads:)``.
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

    static func cases(_ file: String, folder: String = "tiny-qwen2") throws -> [Case] {
        let object = try JSONSerialization.jsonObject(with: try Fixtures.data("models/\(folder)/\(file)"))
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
    /// The bound for the Qwen3.5 hybrids, whose float32 DeltaNet rounding is larger (fixtures README).
    static func hybridTolerance(_ reference: Float) -> Float { 1e-3 + 1e-4 * abs(reference) }

    func check(gguf file: String, reference: String, threads: Int = 2) throws {
        let model = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/tiny-qwen2/\(file)").path))
        try Self.check(model, folder: "tiny-qwen2", reference: reference, threads: threads)
    }

    /// Every case of `models/<folder>/<reference>`: each position's top-5 ids as a set (logits
    /// within the bound), every reference logit at the last position, and the greedy continuation.
    static func check(_ model: Transformer, folder: String, reference: String, threads: Int = 2,
                      tolerance: (Float) -> Float = tolerance,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let vocabularySize = model.config.vocabularySize
        let cases = try Self.cases(reference, folder: folder)
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            let state = InferenceState(model: model, contextLength: c.inputIDs.count + c.greedy.count + 1,
                                       threads: threads)
            let logits = state.forward(c.inputIDs, logits: .all)
            let name = "\(folder)/\(reference) \(c.name)"
            XCTAssertEqual(c.top5.count, c.inputIDs.count, name, file: file, line: line)

            // Every position: the top-5 ids as a set, with logits within the bound.
            for (p, expected) in c.top5.enumerated() {
                let row = Array(logits[p * vocabularySize ..< (p + 1) * vocabularySize])
                let ours = Set(Self.top(5, of: row))
                XCTAssertEqual(ours, Set(expected.map(\.id)), "\(name) position \(p): top-5 ids", file: file, line: line)
                for (id, logit) in expected {
                    XCTAssertEqual(row[id], logit, accuracy: tolerance(logit), "\(name) position \(p) id \(id)",
                                   file: file, line: line)
                }
            }
            // Last position: every reference logit.
            let last = Array(logits[(c.inputIDs.count - 1) * vocabularySize ..< c.inputIDs.count * vocabularySize])
            XCTAssertFalse(c.lastLogits.isEmpty, name, file: file, line: line)
            var failures = 0
            for (id, logit) in c.lastLogits where abs(last[id] - logit) > tolerance(logit) {
                failures += 1
                if failures <= 5 {
                    XCTFail("\(name) last position id \(id): \(last[id]) vs reference \(logit)", file: file, line: line)
                }
            }
            XCTAssertEqual(failures, 0, "\(name): last-position logits out of bound", file: file, line: line)

            // Greedy continuation with the KV cache, token by token.
            var next = Self.argmax(last)
            var generated = [next]
            while generated.count < c.greedy.count {
                next = Self.argmax(state.forward([next]))
                generated.append(next)
            }
            XCTAssertEqual(generated, c.greedy, "\(name): greedy continuation", file: file, line: line)
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

    /// The ids of the `k` largest values, in one pass (a full sort of a 248,320-logit row per
    /// position made the Qwen3.5 checks slow).
    static func top(_ k: Int, of values: [Float]) -> [Int] {
        var best: [Int] = []
        for i in values.indices where best.count < k || values[i] > values[best[best.count - 1]] {
            let at = best.firstIndex { values[i] > values[$0] } ?? best.count
            best.insert(i, at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
