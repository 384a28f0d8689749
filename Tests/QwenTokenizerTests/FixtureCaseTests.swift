import XCTest
@testable import QwenTokenizer

/// Every case of the reference fixture, via `tokenizer.json`.
final class FixtureCaseTests: XCTestCase {
    func testCaseFileIsComplete() throws {
        let cases = try Fixtures.cases()
        XCTAssertGreaterThan(cases.count, 200)
        XCTAssertTrue(cases.contains { $0.splitSpecialTokens })
    }

    func testEncodeMatchesReference() throws {
        assertEncodeMatches(try Fixtures.tokenizer(), try Fixtures.cases())
    }

    func testDecodeMatchesReference() throws {
        assertDecodeMatches(try Fixtures.tokenizer(), try Fixtures.cases())
    }

    func testStreamingDecoderMatchesReference() throws {
        assertStreamingDecodeMatches(try Fixtures.tokenizer(), try Fixtures.cases())
    }

    func testSanityIDs() throws {
        let tokenizer = try Fixtures.tokenizer()
        XCTAssertEqual(tokenizer.encode("Hello world"), [9707, 1879])
        XCTAssertEqual(tokenizer.id(of: "<|endoftext|>"), 151643)
        XCTAssertEqual(tokenizer.id(of: "<|im_start|>"), 151644)
        XCTAssertEqual(tokenizer.id(of: "<|im_end|>"), 151645)
        XCTAssertEqual(tokenizer.id(of: "Ġworld"), 1879)
        XCTAssertNil(tokenizer.id(of: "no such token"))
        XCTAssertEqual(tokenizer.vocabularySize, 151_936)
        XCTAssertEqual(tokenizer.splitPattern, .qwen2)
        XCTAssertTrue(tokenizer.isSpecial(151645))
        XCTAssertTrue(tokenizer.isSpecial(151659))  // <|fim_prefix|>: CONTROL in the GGUF
        XCTAssertFalse(tokenizer.isSpecial(151657))  // <tool_call>
        XCTAssertFalse(tokenizer.isSpecial(9707))
        XCTAssertFalse(tokenizer.isSpecial(-1))
        XCTAssertFalse(tokenizer.isSpecial(1_000_000))
    }

    func testDecodeSkipsSpecialTokensAndOutOfRangeIDs() throws {
        let tokenizer = try Fixtures.tokenizer()
        let ids = [151644, 872, 198, 6023, 151645, 151657, -5, 999_999]
        XCTAssertEqual(tokenizer.decode(ids), "<|im_start|>user\nhi<|im_end|><tool_call>")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), "user\nhi<tool_call>")
        XCTAssertEqual(tokenizer.decode([151665]), "[PAD151665]")
    }

    /// Added-token matching must be linear in the input: 1 MB of near misses of
    /// `<|im_start|>` (and one real token at the end) must encode promptly. Not timed,
    /// but a quadratic matcher would not finish in any reasonable test run.
    func testLongInputWithNearMissesFinishes() throws {
        let tokenizer = try Fixtures.tokenizer()
        let unit = "<|im_st<|im_end <|endoftext|<tool_cal"
        let text = String(repeating: unit, count: 1_000_000 / unit.utf8.count) + "<|im_end|>"
        XCTAssertGreaterThan(text.utf8.count, 999_000)
        let ids = tokenizer.encode(text)
        XCTAssertEqual(ids.last, 151645)
        XCTAssertFalse(ids.dropLast().contains { $0 >= 151643 })
        XCTAssertTrue(sameScalars(tokenizer.decode(ids), text))
    }
}

/// Every case of `tokenizer/qwen3.5-cases.jsonl`, via `qwen3.5-tokenizer/tokenizer.json`
/// (the `qwen35` pre-tokenizer, NFC, 33 added tokens).
final class Qwen35FixtureCaseTests: XCTestCase {
    private func cases() throws -> [Fixtures.Case] {
        try Fixtures.cases(file: Fixtures.url("tokenizer/qwen3.5-cases.jsonl"))
    }

    func testCaseFileIsComplete() throws {
        let cases = try cases()
        XCTAssertGreaterThan(cases.count, 240)
        XCTAssertTrue(cases.contains { $0.splitSpecialTokens })
    }

    func testEncodeMatchesReference() throws {
        assertEncodeMatches(try Fixtures.qwen35Tokenizer.get(), try cases())
    }

    func testDecodeMatchesReference() throws {
        assertDecodeMatches(try Fixtures.qwen35Tokenizer.get(), try cases())
    }

    func testStreamingDecoderMatchesReference() throws {
        assertStreamingDecodeMatches(try Fixtures.qwen35Tokenizer.get(), try cases())
    }

    /// The README's checks and added-token table.
    func testSanityIDs() throws {
        let tokenizer = try Fixtures.qwen35Tokenizer.get()
        XCTAssertEqual(tokenizer.splitPattern, .qwen35)
        XCTAssertEqual(tokenizer.encode("hello world"), [14556, 1814])
        XCTAssertEqual(tokenizer.encode("Hello world"), [9419, 1814])
        XCTAssertEqual(tokenizer.vocabularySize, 248_077)
        XCTAssertEqual(tokenizer.id(of: "<|endoftext|>"), 248044)
        XCTAssertEqual(tokenizer.id(of: "<|im_end|>"), 248046)
        XCTAssertEqual(tokenizer.id(of: "<think>"), 248068)
        XCTAssertEqual(tokenizer.id(of: "<|audio_pad|>"), 248076)
        XCTAssertEqual((248044...248076).filter(tokenizer.isSpecial), Array(248044...248057) + Array(248070...248076))
        // Non-special added tokens are matched even with split_special_tokens.
        XCTAssertEqual(tokenizer.encode("<think>", splitSpecialTokens: true), [248068])
    }
}

/// Fails once per case whose ids differ, naming where they start to differ.
func assertEncodeMatches(_ tokenizer: Tokenizer, _ cases: [Fixtures.Case],
                         file: StaticString = #filePath, line: UInt = #line) {
    var failures = 0
    for testCase in cases {
        let ids = tokenizer.encode(testCase.text, splitSpecialTokens: testCase.splitSpecialTokens)
        if ids != testCase.ids {
            failures += 1
            let firstDifference = zip(ids, testCase.ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(ids.count, testCase.ids.count)
            XCTFail("case \(testCase.id) [\(testCase.category)]: ids differ at index \(firstDifference): "
                    + "got \(ids.dropFirst(max(0, firstDifference - 3)).prefix(10)), "
                    + "expected \(testCase.ids.dropFirst(max(0, firstDifference - 3)).prefix(10))", file: file, line: line)
        }
    }
    XCTAssertEqual(failures, 0, file: file, line: line)
}

func assertDecodeMatches(_ tokenizer: Tokenizer, _ cases: [Fixtures.Case],
                         file: StaticString = #filePath, line: UInt = #line) {
    for testCase in cases {
        let decoded = tokenizer.decode(testCase.ids)
        XCTAssertTrue(sameScalars(decoded, testCase.decoded),
                      "case \(testCase.id) [\(testCase.category)]: decoded \(decoded.debugDescription), expected \(testCase.decoded.debugDescription)",
                      file: file, line: line)
    }
}

func assertStreamingDecodeMatches(_ tokenizer: Tokenizer, _ cases: [Fixtures.Case],
                                  file: StaticString = #filePath, line: UInt = #line) {
    for testCase in cases {
        var decoder = Tokenizer.StreamingDecoder(tokenizer: tokenizer)
        var bytes: [UInt8] = []
        for id in testCase.ids {
            let chunk = decoder.append(id)
            // A chunk that ended mid-character would have been repaired with U+FFFD.
            XCTAssertFalse(chunk.unicodeScalars.contains("\u{FFFD}") && !testCase.decoded.unicodeScalars.contains("\u{FFFD}"),
                           "case \(testCase.id): chunk \(chunk.debugDescription) holds a broken character", file: file, line: line)
            bytes.append(contentsOf: chunk.utf8)
        }
        bytes.append(contentsOf: decoder.finish().utf8)
        XCTAssertEqual(bytes, Array(testCase.decoded.utf8), "case \(testCase.id) [\(testCase.category)]: streamed text differs",
                       file: file, line: line)
    }
}
