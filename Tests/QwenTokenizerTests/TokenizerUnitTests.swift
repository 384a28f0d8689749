import Foundation
import XCTest
@testable import QwenTokenizer

/// Small, self-contained tests: the GGUF-array loader on a hand-made vocabulary, error
/// reporting, the streaming decoder's byte handling and the pre-tokenizer's regex semantics.
final class TokenizerUnitTests: XCTestCase {
    /// A tiny GGUF-style vocabulary: the 256 byte characters (ids 0–255), some merges,
    /// and one token of each interesting type.
    struct TinyVocabulary {
        var tokens: [String] = ByteLevel.byteToScalar.map { String($0) }
        var merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "e l"]
        var types: [Int32] = []

        init() {
            tokens += ["he", "ll", "hell", "hello", "Ġw", "el"]  // 256–261
            tokens += ["<|im_end|>", "<tool_call>", "[PAD264]"]  // 262–264
            types = [Int32](repeating: 1, count: 262) + [3, 4, 5]
        }

        func make(normalizeNFC: Bool = true) throws -> Tokenizer {
            try Tokenizer(ggufTokens: tokens, merges: merges, tokenTypes: types, normalizeNFC: normalizeNFC)
        }
    }

    /// In the tiny vocabulary byte `b` has id `b`, and printable ASCII is its own character.
    private func byteID(_ character: Character) -> Int {
        Int(character.asciiValue ?? 0)
    }

    func testGGUFArraysEncodeAndDecode() throws {
        let tokenizer = try TinyVocabulary().make()
        XCTAssertEqual(tokenizer.vocabularySize, 265)
        XCTAssertEqual(tokenizer.encode("hello"), [259])
        // " w" → "Ġw"; "orld" stays bytes.
        XCTAssertEqual(tokenizer.encode("hello world"), [259, 260, byteID("o"), byteID("r"), byteID("l"), byteID("d")])
        // Merge priority: "l l" (rank 1) beats "e l" (rank 5), so "ell" is "e" + "ll".
        XCTAssertEqual(tokenizer.encode("ell"), [byteID("e"), 257])
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("hello world")), "hello world")
        XCTAssertEqual(tokenizer.decode([264]), "[PAD264]")
    }

    func testGGUFTokenTypes() throws {
        let tokenizer = try TinyVocabulary().make()
        // CONTROL → special added token, USER_DEFINED → non-special added token,
        // UNUSED → plain vocabulary entry that is never matched in text.
        XCTAssertTrue(tokenizer.isSpecial(262))
        XCTAssertFalse(tokenizer.isSpecial(263))
        XCTAssertFalse(tokenizer.isSpecial(264))
        XCTAssertEqual(tokenizer.encode("hello<|im_end|><tool_call>"), [259, 262, 263])
        XCTAssertEqual(tokenizer.encode("hello<|im_end|><tool_call>", splitSpecialTokens: true).last, 263)
        XCTAssertFalse(tokenizer.encode("<|im_end|>", splitSpecialTokens: true).contains(262))
        XCTAssertFalse(tokenizer.encode("[PAD264]").contains(264))
        XCTAssertEqual(tokenizer.decode([259, 262, 263], skipSpecialTokens: true), "hello<tool_call>")
        XCTAssertEqual(tokenizer.id(of: "<|im_end|>"), 262)
        XCTAssertEqual(tokenizer.id(of: "hello"), 259)
    }

    func testGGUFWithoutTokenTypesHasNoAddedTokens() throws {
        var vocabulary = TinyVocabulary()
        vocabulary.types = []
        let tokenizer = try Tokenizer(ggufTokens: vocabulary.tokens, merges: vocabulary.merges, tokenTypes: nil)
        XCTAssertFalse(tokenizer.encode("<|im_end|>").contains(262))
        XCTAssertFalse(tokenizer.isSpecial(262))
    }

    func testNFCParameter() throws {
        let vocabulary = TinyVocabulary()
        let decomposed = "e\u{0301}"
        // Byte tokens only, so the ids are the UTF-8 bytes of the (normalized) text.
        XCTAssertEqual(try vocabulary.make(normalizeNFC: true).encode(decomposed), "\u{00E9}".utf8.map { Int($0) })
        XCTAssertEqual(try vocabulary.make(normalizeNFC: false).encode(decomposed), decomposed.utf8.map { Int($0) })
    }

    func testGGUFErrorsNameTheField() {
        var vocabulary = TinyVocabulary()
        vocabulary.types.removeLast()
        assertThrows(try vocabulary.make(), mentioning: "tokenizer.ggml.token_type")

        vocabulary = TinyVocabulary()
        vocabulary.merges.append("x nothere")
        assertThrows(try vocabulary.make(), mentioning: "tokenizer.ggml.merges[6]")

        vocabulary = TinyVocabulary()
        vocabulary.merges.append("noseparator")
        assertThrows(try vocabulary.make(), mentioning: "tokenizer.ggml.merges[6]")

        // A merge whose concatenation is not a token.
        vocabulary = TinyVocabulary()
        vocabulary.merges.append("x y")
        assertThrows(try vocabulary.make(), mentioning: "tokenizer.ggml.merges[6]")

        assertThrows(try Tokenizer(ggufTokens: [], merges: [], tokenTypes: nil), mentioning: "tokenizer.ggml.tokens")
    }

    // MARK: - tokenizer.json

    /// A minimal tokenizer.json around the tiny vocabulary; `edit` may change any part.
    private func tokenizerJSON(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
        let vocabulary = TinyVocabulary()
        var vocab: [String: Int] = [:]
        for (id, token) in vocabulary.tokens.enumerated() { vocab[token] = id }
        var root: [String: Any] = [
            "model": ["type": "BPE", "vocab": vocab, "merges": vocabulary.merges] as [String: Any],
            "added_tokens": [
                ["id": 262, "content": "<|im_end|>", "special": true],
                ["id": 263, "content": "<tool_call>", "special": false],
            ],
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": Tokenizer.SplitPattern.qwen2.regex], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ]] as [String: Any],
        ]
        edit(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    private func model(_ root: [String: Any]) -> [String: Any] { root["model"] as? [String: Any] ?? [:] }

    func testTokenizerJSONAcceptsBothMergeForms() throws {
        let stringForm = try Tokenizer(tokenizerJSON: tokenizerJSON(), tokenizerConfigJSON: nil)
        let arrayForm = try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            var model = self.model(root)
            model["merges"] = TinyVocabulary().merges.map { $0.split(separator: " ").map(String.init) }
            root["model"] = model
        }, tokenizerConfigJSON: nil)
        for text in ["hello world", "ell", "hello<|im_end|>"] {
            XCTAssertEqual(stringForm.encode(text), arrayForm.encode(text))
        }
        XCTAssertEqual(stringForm.encode("hello<|im_end|>"), [259, 262])
    }

    func testTokenizerJSONSelectsTheSplitPatternByRegex() throws {
        for pattern in Tokenizer.SplitPattern.allCases {
            let tokenizer = try Tokenizer(tokenizerJSON: tokenizerJSON { root in
                root["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": pattern.regex]]
            }, tokenizerConfigJSON: nil)
            XCTAssertEqual(tokenizer.splitPattern, pattern)
        }
        XCTAssertEqual(try Tokenizer(tokenizerJSON: tokenizerJSON(), tokenizerConfigJSON: nil).splitPattern, .qwen2)
        // Two different Split regexes: neither is implemented as a sequence.
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            root["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": Tokenizer.SplitPattern.allCases.map {
                ["type": "Split", "pattern": ["Regex": $0.regex]]
            }]
        }, tokenizerConfigJSON: nil), mentioning: "pre_tokenizer.pattern")
    }

    func testTokenizerConfigOverridesSpecialFlag() throws {
        let config = try JSONSerialization.data(withJSONObject: [
            "added_tokens_decoder": ["262": ["content": "<|im_end|>", "special": false]],
        ])
        let tokenizer = try Tokenizer(tokenizerJSON: tokenizerJSON(), tokenizerConfigJSON: config)
        XCTAssertFalse(tokenizer.isSpecial(262))
        XCTAssertEqual(tokenizer.encode("<|im_end|>", splitSpecialTokens: true), [262])
    }

    func testTokenizerJSONErrorsNameTheField() throws {
        assertThrows(try Tokenizer(tokenizerJSON: Data("not json".utf8), tokenizerConfigJSON: nil), mentioning: "tokenizer.json")
        assertThrows(try Tokenizer(tokenizerJSON: Data("[1]".utf8), tokenizerConfigJSON: nil), mentioning: "tokenizer.json")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { $0["model"] = nil }, tokenizerConfigJSON: nil), mentioning: "`model`")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            var model = self.model(root); model["vocab"] = nil; root["model"] = model
        }, tokenizerConfigJSON: nil), mentioning: "model.vocab")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            var model = self.model(root); model["merges"] = nil; root["model"] = model
        }, tokenizerConfigJSON: nil), mentioning: "model.merges")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            var model = self.model(root); model["merges"] = ["h e", "zz top"]; root["model"] = model
        }, tokenizerConfigJSON: nil), mentioning: "model.merges[1]")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            var model = self.model(root); model["merges"] = [["h", "e", "x"]]; root["model"] = model
        }, tokenizerConfigJSON: nil), mentioning: "model.merges[0]")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            var model = self.model(root); model["vocab"] = ["a": "zero"]; root["model"] = model
        }, tokenizerConfigJSON: nil), mentioning: "model.vocab")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { root in
            var model = self.model(root); model["vocab"] = ["a": 2_000_000_000]; model["merges"] = []; root["model"] = model
        }, tokenizerConfigJSON: nil), mentioning: "model.vocab")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { $0["added_tokens"] = [["content": "<x>"]] },
                                   tokenizerConfigJSON: nil), mentioning: "added_tokens[0].id")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { $0["normalizer"] = ["type": "NFKC"] },
                                   tokenizerConfigJSON: nil), mentioning: "normalizer")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON { $0["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "\\s+"]] },
                                   tokenizerConfigJSON: nil), mentioning: "pre_tokenizer")
        assertThrows(try Tokenizer(tokenizerJSON: tokenizerJSON(), tokenizerConfigJSON: Data("{".utf8)),
                     mentioning: "tokenizer_config.json")
    }

    private func assertThrows(_ expression: @autoclosure () throws -> Tokenizer, mentioning field: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try expression()
            XCTFail("expected an error mentioning \(field)", file: file, line: line)
        } catch {
            XCTAssertTrue("\(error)".contains(field), "error \"\(error)\" does not mention \(field)", file: file, line: line)
        }
    }

    // MARK: - Streaming decoder

    func testStreamingHoldsSplitCharactersAndMatchesDecode() throws {
        let tokenizer = try TinyVocabulary().make()
        // With byte-only tokens, a 4-byte emoji arrives in four pieces.
        let ids = tokenizer.encode("a😀b")
        XCTAssertEqual(ids.count, 6)
        var decoder = Tokenizer.StreamingDecoder(tokenizer: tokenizer)
        XCTAssertEqual(ids.map { decoder.append($0) }, ["a", "", "", "", "😀", "b"])
        XCTAssertEqual(decoder.finish(), "")
    }

    /// Random byte-token sequences, valid and invalid UTF-8: the streamed text always equals
    /// whole-text decoding, and a chunk never ends inside a character that later completes.
    func testStreamingMatchesDecodeOnRandomBytes() throws {
        let tokenizer = try TinyVocabulary().make()
        var generator = SplitMix64(seed: 42)
        let interesting: [UInt8] = [0x41, 0x80, 0xBF, 0xC2, 0xC3, 0xA9, 0xE0, 0xA0, 0xED, 0x9F, 0xA0, 0xEF,
                                    0xBB, 0xF0, 0x90, 0x9F, 0x98, 0xF4, 0x8F, 0xF5, 0xFF, 0x20]
        for _ in 0..<3000 {
            let count = Int(generator.next() % 10) + 1
            let ids = (0..<count).map { _ in Int(interesting[Int(generator.next() % UInt64(interesting.count))]) }
            var decoder = Tokenizer.StreamingDecoder(tokenizer: tokenizer)
            var streamed: [UInt8] = []
            for id in ids { streamed += Array(decoder.append(id).utf8) }
            streamed += Array(decoder.finish().utf8)
            XCTAssertEqual(streamed, Array(tokenizer.decode(ids).utf8), "ids \(ids)")
        }
    }

    func testStreamingFlushesIncompleteCharacterAsReplacement() throws {
        let tokenizer = try TinyVocabulary().make()
        var decoder = Tokenizer.StreamingDecoder(tokenizer: tokenizer)
        XCTAssertEqual(decoder.append(0xF0), "")
        XCTAssertEqual(decoder.append(0x9F), "")
        XCTAssertEqual(decoder.append(-1), "")  // out of range: ignored
        XCTAssertEqual(decoder.finish(), "\u{FFFD}")
        XCTAssertEqual(tokenizer.decode([0xF0, 0x9F]), "\u{FFFD}")
    }

    // MARK: - Pre-tokenizer

    private func pieces(_ text: String, pattern: Tokenizer.SplitPattern = .qwen2) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var start = 0
        return PreTokenizer.split(scalars, pattern: pattern).map { end in
            defer { start = end }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[start..<end])
            return String(view)
        }
    }

    func testPreTokenizerRegexSemantics() {
        XCTAssertEqual(pieces("Hello world"), ["Hello", " world"])
        XCTAssertEqual(pieces("I'm you'RE it'S"), ["I", "'m", " you", "'RE", " it", "'S"])
        XCTAssertEqual(pieces("x'sy"), ["x", "'s", "y"])
        XCTAssertEqual(pieces("12345"), ["1", "2", "3", "4", "5"])
        XCTAssertEqual(pieces("a  b"), ["a", " ", " b"])           // \s+(?!\S) gives one space back
        XCTAssertEqual(pieces("a   "), ["a", "   "])                // at the end: the whole run
        XCTAssertEqual(pieces("a \n\n b"), ["a", " \n\n", " b"])    // \s*[\r\n]+ ends at the last newline
        XCTAssertEqual(pieces("x := y;\r\n"), ["x", " :=", " y", ";\r\n"])
        XCTAssertEqual(pieces("\tfoo"), ["\tfoo"])
        XCTAssertEqual(pieces("\nfoo"), ["\n", "foo"])
        XCTAssertEqual(pieces("\u{3000}日本"), ["\u{3000}日本"])
        XCTAssertEqual(pieces(""), [])
    }

    /// Qwen3.5's pattern joins combining marks to letters; Qwen2's treats them as symbols.
    func testQwen35PreTokenizerJoinsMarksToLetters() {
        let hindi = "\u{928}\u{92E}\u{938}\u{94D}\u{924}\u{947}"  // नमस्ते: virama U+094D, vowel sign U+0947
        XCTAssertEqual(pieces(hindi, pattern: .qwen35), [hindi])
        XCTAssertEqual(pieces(hindi, pattern: .qwen2), ["\u{928}\u{92E}\u{938}", "\u{94D}\u{924}", "\u{947}"])
        XCTAssertEqual(pieces("cafe\u{301} x", pattern: .qwen35), ["cafe\u{301}", " x"])
        XCTAssertEqual(pieces("cafe\u{301} x", pattern: .qwen2), ["cafe", "\u{301}", " x"])
        // A mark may still be the optional leading character, or follow a space or a digit.
        XCTAssertEqual(pieces("\u{301}\u{301}a", pattern: .qwen35), ["\u{301}\u{301}a"])
        XCTAssertEqual(pieces(" \u{301}x", pattern: .qwen35), [" \u{301}x"])
        XCTAssertEqual(pieces(" \u{301}x", pattern: .qwen2), [" \u{301}", "x"])
        XCTAssertEqual(pieces("1\u{301}", pattern: .qwen35), ["1", "\u{301}"])
        // Marks leave the symbol class: a punctuation run stops before them.
        XCTAssertEqual(pieces("!!\u{301}", pattern: .qwen35), ["!!", "\u{301}"])
        XCTAssertEqual(pieces("!!\u{301}", pattern: .qwen2), ["!!\u{301}"])
        XCTAssertEqual(pieces("Hello world's 42", pattern: .qwen35), pieces("Hello world's 42"))
    }
}

/// A small deterministic generator, so the random tests are repeatable.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
