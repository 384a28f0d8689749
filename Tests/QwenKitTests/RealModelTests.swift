import Foundation
import XCTest

/// The default model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M) through the built binary, against
/// Hugging Face transformers' float32 outputs in `../shared/fixtures/real/qwen2.5-coder-0.5b-q4km.json`.
///
/// The model is fetched by `scripts/fetch-default-model.sh` (which `.ci/run` calls); set
/// `QWENKIT_MODEL` to use another copy of the same file.
final class RealModelTests: XCTestCase {
    struct Case {
        var id: String
        var inputIDs: [Int]
        var greedy: [Int]
        var margins: [Float]
    }

    /// Steps whose recorded top-1 margin is below this may flip under quantized activations.
    static let fragileMargin: Float = 0.05

    static func modelPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["QWENKIT_MODEL"], !path.isEmpty { return path }
        let home = ProcessInfo.processInfo.environment["QWENKIT_HOME"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/qwenkit").path
        let path = home + "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
        guard FileManager.default.fileExists(atPath: path) else {
            throw Fixtures.FixtureError(message: "the default model is missing at \(path): run scripts/fetch-default-model.sh")
        }
        return path
    }

    static func cases() throws -> [(Case, messages: [[String: Any]])] {
        let object = try JSONSerialization.jsonObject(with: try Fixtures.data("real/qwen2.5-coder-0.5b-q4km.json"))
        guard let root = object as? [String: Any], let cases = root["cases"] as? [[String: Any]] else {
            throw Fixtures.FixtureError(message: "real model fixture: no cases")
        }
        return cases.filter { $0["tools"] == nil || $0["tools"] is NSNull }.map { c in
            let greedy = c["greedy"] as? [String: Any]
            return (Case(id: c["id"] as? String ?? "?",
                         inputIDs: c["input_ids"] as? [Int] ?? [],
                         greedy: greedy?["new_token_ids"] as? [Int] ?? [],
                         margins: (greedy?["top1_margins"] as? [NSNumber] ?? []).map(\.floatValue)),
                    c["messages"] as? [[String: Any]] ?? [])
        }
    }

    func testPromptTokensAndGreedyContinuation() throws {
        let model = try Self.modelPath()
        let cases = try Self.cases()
        XCTAssertEqual(cases.count, 5)
        for (c, messages) in cases {
            guard messages.count == 1, messages[0]["role"] as? String == "user",
                  let prompt = messages[0]["content"] as? String else {
                XCTFail("\(c.id): expected a single user message")
                continue
            }
            let output = try QwenKitBinary.run(["run", "-m", model, "--json", "--temperature", "0",
                                                "--max-tokens", "32", prompt])
            XCTAssertEqual(output.status, 0, output.stderr)
            let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
            XCTAssertEqual(json?["prompt_tokens"] as? [Int], c.inputIDs, "\(c.id): prompt tokens")
            let tokens = json?["tokens"] as? [Int] ?? []
            // Equal up to the first step whose reference margin is fragile.
            let firm = c.margins.firstIndex { $0 < Self.fragileMargin } ?? c.greedy.count
            XCTAssertEqual(Array(tokens.prefix(firm)), Array(c.greedy.prefix(firm)),
                           "\(c.id): greedy continuation up to step \(firm)")
        }
    }

    func testTeacherForcedTopOne() throws {
        let model = try Self.modelPath()
        var steps = 0, agreed = 0
        for (c, _) in try Self.cases() {
            let ids = c.inputIDs + c.greedy
            let output = try QwenKitBinary.run(["score", "-m", model, "--top", "2", "--json",
                                                "--ids", ids.map(String.init).joined(separator: ",")])
            XCTAssertEqual(output.status, 0, output.stderr)
            let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
            let positions = json?["positions"] as? [[String: Any]] ?? []
            XCTAssertEqual(positions.count, ids.count)
            for (step, expected) in c.greedy.enumerated() {
                let p = c.inputIDs.count - 1 + step
                guard p < positions.count, let top = positions[p]["top"] as? [[NSNumber]], let first = top.first else {
                    XCTFail("\(c.id): no scores at position \(p)")
                    continue
                }
                steps += 1
                if first[0].intValue == expected {
                    agreed += 1
                } else {
                    XCTAssertLessThan(c.margins[step], Self.fragileMargin,
                                      "\(c.id) step \(step): top-1 \(first[0]) ≠ reference \(expected) with margin \(c.margins[step])")
                }
            }
        }
        XCTAssertGreaterThan(steps, 100)
        XCTAssertGreaterThanOrEqual(Double(agreed), 0.98 * Double(steps), "top-1 agreement \(agreed)/\(steps)")
    }
}
