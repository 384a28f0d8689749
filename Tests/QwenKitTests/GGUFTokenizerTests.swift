import Foundation
import QwenKit
import XCTest

/// The tokenizer built from a GGUF file's `tokenizer.ggml.*` keys reproduces the Hugging Face reference.
final class GGUFTokenizerTests: XCTestCase {
    func testEveryTokenizerCaseFromGGUFMetadata() throws {
        let model = try LanguageModel(path: Fixtures.url("models/tiny-qwen2/tiny-qwen2-f32.gguf").path)
        let tokenizer = try XCTUnwrap(model.tokenizer)
        let lines = String(decoding: try Fixtures.data("tokenizer/qwen2.5-cases.jsonl"), as: UTF8.self)
            .split(separator: "\n")
        XCTAssertGreaterThan(lines.count, 200)
        for line in lines {
            // JSONValue, not JSONSerialization: Foundation drops a leading U+FEFF from strings.
            let object = try JSONValue.parse(Array(line.utf8))
            guard let text = object["text"]?.stringValue, let decoded = object["decoded"]?.stringValue,
                  let ids = object["ids"]?.arrayValue?.compactMap(\.intValue) else {
                XCTFail("malformed case: \(line.prefix(80))")
                continue
            }
            let id = object["id"]?.intValue ?? -1
            let split = object["split_special_tokens"]?.boolValue ?? false
            XCTAssertEqual(tokenizer.encode(text, splitSpecialTokens: split), ids, "case \(id)")
            XCTAssertEqual(tokenizer.decode(ids), decoded, "case \(id)")
        }
    }
}
