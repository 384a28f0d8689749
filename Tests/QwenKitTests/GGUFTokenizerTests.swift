import Foundation
import QwenKit
import XCTest

/// The tokenizer built from a GGUF file's `tokenizer.ggml.*` keys reproduces the Hugging Face reference.
final class GGUFTokenizerTests: XCTestCase {
    func testEveryTokenizerCaseFromGGUFMetadata() throws {
        let model = try LanguageModel(path: Fixtures.url("models/tiny-qwen2/tiny-qwen2-f32.gguf").path)
        let lines = String(decoding: try Fixtures.data("tokenizer/qwen2.5-cases.jsonl"), as: UTF8.self)
            .split(separator: "\n")
        XCTAssertGreaterThan(lines.count, 200)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            guard let text = object["text"] as? String, let ids = object["ids"] as? [Int],
                  let decoded = object["decoded"] as? String else {
                XCTFail("malformed case: \(line.prefix(80))")
                continue
            }
            let split = object["split_special_tokens"] as? Bool ?? false
            XCTAssertEqual(model.tokenizer.encode(text, splitSpecialTokens: split), ids, "case \(object["id"] ?? "?")")
            XCTAssertEqual(model.tokenizer.decode(ids), decoded, "case \(object["id"] ?? "?")")
        }
    }
}
