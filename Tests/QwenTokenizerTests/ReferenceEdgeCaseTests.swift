import XCTest
@testable import QwenTokenizer

/// Edge cases beyond the shared fixture where a straightforward implementation on current
/// Swift/Foundation differs from the reference. The ids were computed with the reference
/// (`tokenizers` 0.23.3, the version that produced the fixtures, on `qwen2.5-tokenizer/tokenizer.json`),
/// found by differential fuzzing; none was written by hand.
final class ReferenceEdgeCaseTests: XCTestCase {
    static let cases: [(String, String, [Int])] = [
        ("non-starter decomposition U+0F73 after a mark (Foundation misorders it)",
         "\u{968}\u{300}\u{F73} \u{1E0B}\u{323}\u{F73}",
         [12619, 101, 62416, 109, 62416, 110, 96549, 86089, 116, 235, 62416, 109, 62416, 110, 136, 229]),
        ("U+0344 and U+0F75",
         "a\u{344}\u{323} a\u{F75}\u{F71}",
         [20229, 136, 230, 53839, 264, 62416, 109, 62416, 109, 62416, 112]),
        ("mark from Unicode 10 (U+11D42): not reordered by the reference's 9.0 NFC tables",
         "a\u{11D42}\u{334} x",
         [64, 128240, 113, 224, 136, 112, 856]),
        ("mark from Unicode 11 below U+0870 (U+07FD)",
         "\u{7FD} a\u{7FD}\u{316}",
         [155, 121, 264, 155, 121, 136, 244]),
        ("letter from Unicode 17 (U+088F): not \\p{L} for the reference's 16.0 regex tables",
         "ab\u{88F}cd \u{11DB0}x",
         [370, 156, 95, 237, 4385, 220, 128240, 114, 108, 87]),
        ("digit from Unicode 16 (U+10D40) is \\p{N}",
         "a\u{10D40}\u{10D41}b",
         [64, 123934, 113, 222, 123934, 113, 223, 65]),
        ("long s in a contraction: (?i) folds it to s",
         "it'\u{17F} IT'\u{17F}x",
         [275, 6, 144815, 8700, 6, 144815, 87]),
        ("Unicode whitespace runs",
         "a\u{A0}\u{A0}b\u{3000}\u{3000}\u{3000}c\u{2028}\u{2029}d\u{85} e",
         [64, 4102, 4102, 65, 43429, 22441, 66, 378, 101, 378, 102, 67, 126, 227, 384]),
    ]

    func testEdgeCasesMatchReference() throws {
        let tokenizer = try Fixtures.tokenizer()
        for (name, text, expected) in Self.cases {
            XCTAssertEqual(tokenizer.encode(text), expected, name)
            XCTAssertEqual(Array(tokenizer.decode(expected).utf8), Array(Normalization.nfc(text).utf8), name)
        }
    }
}
