import Foundation
@testable import QwenKit
import QwenTokenizer
import XCTest

/// The tokenizer built from a GGUF file's `tokenizer.ggml.*` keys reproduces the Hugging Face reference.
/// It applies NFC like the reference (a GGUF carries no normalizer, but Qwen's `tokenizer.json`
/// declares one), so the cases' `ids` are expected, not `ids_without_nfc`.
final class GGUFTokenizerTests: XCTestCase {
    func testEveryTokenizerCaseFromGGUFMetadata() throws {
        let model = try LanguageModel(path: Fixtures.url("models/tiny-qwen2/tiny-qwen2-f32.gguf").path)
        let tokenizer = try XCTUnwrap(model.tokenizer)
        XCTAssertEqual(tokenizer.splitPattern, .qwen2)
        XCTAssertGreaterThan(try checkCases("tokenizer/qwen2.5-cases.jsonl", tokenizer), 200)
    }

    /// `tokenizer.ggml.pre` `qwen35`: the Qwen3.5 split regex; CONTROL tokens are special,
    /// USER_DEFINED ones (`<think>`, `<tool_call>`, …) are matched but not special, and the
    /// UNUSED placeholders 248,077–248,319 are never produced.
    func testEveryQwen35TokenizerCaseFromGGUFMetadata() throws {
        // Built the way LanguageModel(path:) builds it, without loading the model itself.
        let gguf = try GGUFFile(path: Fixtures.url("models/tiny-qwen35/tiny-qwen35-q8_0.gguf").path)
        let tokenizer = try LanguageModel.tokenizer(gguf: gguf)
        XCTAssertEqual(tokenizer.splitPattern, .qwen35)
        XCTAssertEqual(tokenizer.vocabularySize, 248_320)
        XCTAssertTrue(tokenizer.isSpecial(248046))  // <|im_end|>
        XCTAssertTrue(tokenizer.isSpecial(248060))  // <|fim_prefix|>: CONTROL in the GGUF, not special in tokenizer.json
        XCTAssertFalse(tokenizer.isSpecial(248068))  // <think>: USER_DEFINED
        XCTAssertEqual(tokenizer.encode("[PAD248077]"), tokenizer.encode("[PAD248077]", splitSpecialTokens: true))
        XCTAssertFalse(tokenizer.encode("[PAD248077]").contains { $0 >= 248_077 })
        XCTAssertGreaterThan(try checkCases("tokenizer/qwen3.5-cases.jsonl", tokenizer), 240)
    }

    /// Encodes and decodes every case of `file`; returns the number of cases.
    private func checkCases(_ file: String, _ tokenizer: Tokenizer) throws -> Int {
        let lines = String(decoding: try Fixtures.data(file), as: UTF8.self).split(separator: "\n")
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
        return lines.count
    }
}
