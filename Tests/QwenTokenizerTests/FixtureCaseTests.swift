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
        let tokenizer = try Fixtures.tokenizer()
        var failures = 0
        for testCase in try Fixtures.cases() {
            let ids = tokenizer.encode(testCase.text, splitSpecialTokens: testCase.splitSpecialTokens)
            if ids != testCase.ids {
                failures += 1
                let firstDifference = zip(ids, testCase.ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(ids.count, testCase.ids.count)
                XCTFail("case \(testCase.id) [\(testCase.category)]: ids differ at index \(firstDifference): "
                        + "got \(ids.dropFirst(max(0, firstDifference - 3)).prefix(10)), "
                        + "expected \(testCase.ids.dropFirst(max(0, firstDifference - 3)).prefix(10))")
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testDecodeMatchesReference() throws {
        let tokenizer = try Fixtures.tokenizer()
        for testCase in try Fixtures.cases() {
            let decoded = tokenizer.decode(testCase.ids)
            XCTAssertTrue(sameScalars(decoded, testCase.decoded),
                          "case \(testCase.id) [\(testCase.category)]: decoded \(decoded.debugDescription), expected \(testCase.decoded.debugDescription)")
        }
    }

    func testStreamingDecoderMatchesReference() throws {
        let tokenizer = try Fixtures.tokenizer()
        for testCase in try Fixtures.cases() {
            var decoder = Tokenizer.StreamingDecoder(tokenizer: tokenizer)
            var bytes: [UInt8] = []
            for id in testCase.ids {
                let chunk = decoder.append(id)
                // A chunk that ended mid-character would have been repaired with U+FFFD.
                XCTAssertFalse(chunk.unicodeScalars.contains("\u{FFFD}") && !testCase.decoded.unicodeScalars.contains("\u{FFFD}"),
                               "case \(testCase.id): chunk \(chunk.debugDescription) holds a broken character")
                bytes.append(contentsOf: chunk.utf8)
            }
            bytes.append(contentsOf: decoder.finish().utf8)
            XCTAssertEqual(bytes, Array(testCase.decoded.utf8), "case \(testCase.id) [\(testCase.category)]: streamed text differs")
        }
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
