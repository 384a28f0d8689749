import Foundation
import XCTest
@testable import QwenTokenizer

/// Locates the shared reference fixtures: `$QWENKIT_FIXTURES` if set, else
/// `<repository root>/../shared/fixtures`.
enum Fixtures {
    static var directory: URL {
        if let path = ProcessInfo.processInfo.environment["QWENKIT_FIXTURES"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        // This file is <root>/Tests/QwenTokenizerTests/Fixtures.swift.
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/fixtures", isDirectory: true)
    }

    static func url(_ relativePath: String) -> URL {
        directory.appendingPathComponent(relativePath)
    }

    /// The Qwen2.5 tokenizer from `qwen2.5-tokenizer/`, loaded once per test process.
    static let qwenTokenizer: Result<Tokenizer, Error> = Result {
        let json = try Data(contentsOf: url("qwen2.5-tokenizer/tokenizer.json"))
        let config = try Data(contentsOf: url("qwen2.5-tokenizer/tokenizer_config.json"))
        return try Tokenizer(tokenizerJSON: json, tokenizerConfigJSON: config)
    }

    static func tokenizer() throws -> Tokenizer {
        try qwenTokenizer.get()
    }

    /// The Qwen3.5 tokenizer from `qwen3.5-tokenizer/`, loaded once per test process.
    static let qwen35Tokenizer: Result<Tokenizer, Error> = Result {
        let json = try Data(contentsOf: url("qwen3.5-tokenizer/tokenizer.json"))
        let config = try Data(contentsOf: url("qwen3.5-tokenizer/tokenizer_config.json"))
        return try Tokenizer(tokenizerJSON: json, tokenizerConfigJSON: config)
    }

    struct Case: Decodable {
        let id: Int
        let text: String
        let ids: [Int]
        let decoded: String
        let splitSpecialTokens: Bool
        let category: String
        /// Ids without the NFC normalizer, present only where they differ from `ids`.
        let idsWithoutNFC: [Int]?

        enum CodingKeys: String, CodingKey {
            case id, text, ids, decoded, category
            case splitSpecialTokens = "split_special_tokens"
            case idsWithoutNFC = "ids_without_nfc"
        }
    }

    /// Every case of a tokenizer case file, by default `tokenizer/qwen2.5-cases.jsonl`. Parsed with `JSONDecoder`: Linux's
    /// `JSONSerialization` drops a U+FEFF at the start of a string (case `bom`).
    static func cases(file: URL = url("tokenizer/qwen2.5-cases.jsonl")) throws -> [Case] {
        let data = try Data(contentsOf: file)
        let decoder = JSONDecoder()
        // Lines are separated by "\n" only; U+2028 and friends are escaped inside strings.
        return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map {
            try decoder.decode(Case.self, from: Data($0))
        }
    }
}

/// Compares by scalars: Swift's `String ==` treats canonically equivalent strings (NFC vs NFD) as equal.
func sameScalars(_ a: String, _ b: String) -> Bool {
    Array(a.utf8) == Array(b.utf8)
}
