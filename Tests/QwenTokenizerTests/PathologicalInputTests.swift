import Foundation
import XCTest
@testable import QwenTokenizer

/// Inputs that made the tokenizer quadratic (issue 13): long runs of combining marks in
/// non-canonical order, conjoining jamo, one huge pre-token. Exactness is checked against ids
/// from the reference (`Tests/tokenizer-pathological/make-cases.py`); linear time by counting
/// the work for n and 8n characters, never by timing.
final class PathologicalInputTests: XCTestCase {
    struct Case: Decodable {
        let name: String
        let tokenizer: String
        let text: String
        let ids: [Int]
    }

    /// `Tests/tokenizer-pathological/cases.jsonl`, next to this test target.
    static func cases() throws -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tokenizer-pathological/cases.jsonl")
        let data = try Data(contentsOf: url)
        let decoder = JSONDecoder()
        return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map {
            try decoder.decode(Case.self, from: Data($0))
        }
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        switch name {
        case "qwen2.5": return try Fixtures.tokenizer()
        case "qwen3.5": return try Fixtures.qwen35Tokenizer.get()
        default: throw XCTSkip("no fixture tokenizer \(name)")
        }
    }

    func testCasesMatchReference() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.count, 26)
        for testCase in cases {
            let tokenizer = try Self.tokenizer(testCase.tokenizer)
            XCTAssertEqual(tokenizer.encode(testCase.text), testCase.ids, "\(testCase.tokenizer) \(testCase.name)")
        }
    }

    /// The pre-tokenizer runs over windows of the normalized text; pieces that reach a window's
    /// end wait for the next. Tiny windows must give the same ids as one window.
    func testTinyWindowsGiveTheSameIds() throws {
        var texts = try Self.cases().filter { $0.tokenizer == "qwen2.5" }.map { ($0.text, $0.ids) }
        for fixture in try Fixtures.cases() where !fixture.splitSpecialTokens {
            texts.append((fixture.text, fixture.ids))
        }
        let tokenizer = try Fixtures.tokenizer()
        for window in [1, 2, 3, 5, 64] {
            for (text, ids) in texts {
                var work = Tokenizer.EncodingWork()
                XCTAssertEqual(tokenizer.encode(text, window: window, work: &work), ids,
                               "window \(window): \(text.prefix(40).debugDescription)")
            }
        }
    }

    /// The documented deviation: a word longer than the BPE limit is merged in pieces of at
    /// most the limit, cut between characters.
    func testWordLongerThanLimitIsMergedInPieces() throws {
        let tokenizer = try Fixtures.tokenizer().withMaxWordBytes(1000)
        let whole = try Fixtures.tokenizer()
        XCTAssertEqual(tokenizer.encode(String(repeating: "a", count: 3500)),
                       Array([[Int]](repeating: whole.encode(String(repeating: "a", count: 1000)), count: 3).joined())
                           + whole.encode(String(repeating: "a", count: 500)))
        // 3-byte characters: a cut never splits one (999 bytes = 333 characters per piece).
        XCTAssertEqual(tokenizer.encode(String(repeating: "語", count: 700)),
                       Array([[Int]](repeating: whole.encode(String(repeating: "語", count: 333)), count: 2).joined())
                           + whole.encode(String(repeating: "語", count: 34)))
    }

    /// Total work for `make(n)` and `make(8 n)`: linear work grows 8 times; the quadratic
    /// canonical ordering, jamo composition or window rescanning this replaces grew ~64 times.
    private func assertLinear(_ name: String, n: Int, tokenizer: Tokenizer, window: Int = 256,
                              file: StaticString = #filePath, line: UInt = #line, _ make: (Int) -> String) {
        func work(_ count: Int) -> (total: Int, detail: Tokenizer.EncodingWork) {
            var work = Tokenizer.EncodingWork()
            _ = tokenizer.encode(make(count), window: window, work: &work)
            return (work.normalization + work.preTokenization + work.merging, work)
        }
        let small = work(n), large = work(8 * n)
        XCTAssertGreaterThan(small.total, n / 2, name, file: file, line: line)
        XCTAssertLessThanOrEqual(Double(large.total), 8 * 1.2 * Double(small.total),
                                 "\(name): work \(small.detail) for n = \(n), \(large.detail) for 8n",
                                 file: file, line: line)
    }

    func testWorkIsLinearOnPathologicalClasses() throws {
        // A small BPE word limit, so that the inputs are much longer than it without being slow
        // in a debug build; the merge work per word is O(limit log limit), a constant.
        let marks = ["\u{301}", "\u{316}", "\u{327}", "\u{334}", "\u{345}", "\u{31B}", "\u{323}", "\u{300}"]
        for name in ["qwen2.5", "qwen3.5"] {
            let tokenizer = try Self.tokenizer(name).withMaxWordBytes(512)
            assertLinear("\(name) marks", n: 3000, tokenizer: tokenizer) { count in
                "a" + (0..<count).map { marks[$0 % marks.count] }.joined()
            }
            assertLinear("\(name) jamo run", n: 3000, tokenizer: tokenizer) { count in
                "\u{1100}" + (0..<count).map { $0 % 3 == 0 ? "\u{1161}" : "\u{11A8}" }.joined()
            }
            assertLinear("\(name) jamo syllables", n: 3000, tokenizer: tokenizer) { count in
                String(String.UnicodeScalarView((0..<count).compactMap { index -> Unicode.Scalar? in
                    switch index % 3 {
                    case 0: return Unicode.Scalar(0x1100 + UInt32(index % 19))
                    case 1: return Unicode.Scalar(0x1161 + UInt32(index % 21))
                    default: return Unicode.Scalar(0x11A8 + UInt32(index % 27))
                    }
                }))
            }
            assertLinear("\(name) one letter", n: 4000, tokenizer: tokenizer) { String(repeating: "a", count: $0) }
            assertLinear("\(name) spaces", n: 4000, tokenizer: tokenizer) { String(repeating: " ", count: $0) + "x" }
            assertLinear("\(name) digits", n: 4000, tokenizer: tokenizer) { count in
                String((0..<count).map { Character(String($0 * 7 % 10)) })
            }
        }
    }

    /// The NFC work alone, on one run of marks: a quadratic sort of the run shows up here even
    /// when merging dominates the total.
    func testCanonicalOrderingIsLinear() {
        func operations(_ count: Int) -> Int {
            var normalizer = NFCNormalizer()
            var output: [Unicode.Scalar] = []
            normalizer.append("a", to: &output)
            for index in 0..<count {
                normalizer.append(index % 2 == 0 ? "\u{301}" : "\u{316}", to: &output)
            }
            normalizer.finish(to: &output)
            XCTAssertEqual(output.count, count)  // a + U+0316… + U+0301 → á, U+0316…, U+0301…
            return normalizer.operations
        }
        let small = operations(5000), large = operations(40000)
        XCTAssertLessThanOrEqual(Double(large), 8 * 1.2 * Double(small))
    }
}
