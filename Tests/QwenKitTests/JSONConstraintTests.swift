import Foundation
import QwenTokenizer
import XCTest
@testable import QwenKit

/// The incremental JSON parser behind `response_format` and the token constraint over it.
/// Which documents are valid was checked with Python's `json.loads` (and `jsonschema` for the
/// schema cases) when the lists were written; see the comments.
final class JSONConstraintTests: XCTestCase {
    /// Feeds `text` byte by byte: nil if every byte was accepted, else the offset of the refused byte.
    func firstRefusal(_ text: String, _ parser: inout IncrementalJSONParser) -> Int? {
        for (offset, byte) in text.utf8.enumerated() where !parser.feed(byte) { return offset }
        return nil
    }

    /// Whether the parser accepts `text` whole: every byte, and complete at the end.
    func accepts(_ text: String, schema: JSONValue?) -> Bool {
        var parser = IncrementalJSONParser(root: schema.map(SchemaNode.init) ?? .any)
        return firstRefusal(text, &parser) == nil && parser.isComplete
    }

    // json.loads accepts each of these.
    static let validDocuments = [
        #"{}"#, #"[]"#, #"0"#, #"-0"#, #"12"#, #"-3.25"#, #"1e10"#, #"2.5E-3"#, #"-0.0e+7"#, #"true"#, #"false"#, #"null"#,
        #""""#, #""plain""#, #""esc \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00""#, #""caf\#u{E9} 日本""#,
        #"{"a": 1}"#, #"{"a":{"b":{"c":[]}}}"#, #" { "k" : "v" , "n" : null } "#, #"[1, 2.5, -3e2, true, false, null, "x", {}, []]"#,
        #"[[[[]]]]"#, "{\n  \"list\": [\n    1,\n    2\n  ]\n}\n", #"{"": ""}"#, #"[{"a": [{"b": -1}]}]"#,
    ]

    // json.loads raises on each of these, except NaN and Infinity, which Python accepts as an
    // extension and RFC 8259 (and every strict parser) does not.
    static let invalidDocuments = [
        "", " ", #"{"#, #"}"#, #"{"a" 1}"#, #"{"a": 1,}"#, #"[1,]"#, #"[,1]"#, #"{,}"#, #"[1 2]"#, #"{"a": 1}}"#, #"[]]"#,
        #"01"#, #"1."#, #".5"#, #"+1"#, #"-"#, #"1e"#, #"1e+"#, #"0x10"#, #"tru"#, #"truth"#, #"nul"#, #"True"#, #"NaN"#,
        #"Infinity"#, #""unterminated"#, #""bad \x escape""#, #""\u12G4""#, #"{1: 2}"#, #"{a: 1}"#, #"'single'"#,
        "\"raw \n newline\"", "\"tab\tinside\"", #"{"a": 1} {"b": 2}"#, #"[1] 2"#, #"{"a"}"#, #"{"a":}"#, #"["a" "b"]"#,
    ]

    func testValidDocumentsAcceptedByteByByte() {
        for document in Self.validDocuments {
            XCTAssertTrue(accepts(document, schema: nil), document)
        }
    }

    func testInvalidDocumentsRejected() {
        for document in Self.invalidDocuments {
            XCTAssertFalse(accepts(document, schema: nil), document)
        }
    }

    /// Every proper prefix of a valid document is accepted but not complete (except where the
    /// prefix is itself a document: a number that may grow).
    func testPrefixesAreOpen() {
        let document = #"{"a": [1, {"b": "c"}], "d": false}"#
        var parser = IncrementalJSONParser(root: .any)
        for (offset, byte) in document.utf8.enumerated() {
            XCTAssertFalse(parser.isComplete, "complete after \(offset) bytes")
            XCTAssertTrue(parser.feed(byte), "refused byte \(offset)")
        }
        XCTAssertTrue(parser.isComplete)
        // Then only a little whitespace.
        XCTAssertTrue(parser.feed(UInt8(ascii: "\n")))
        XCTAssertFalse(parser.feed(UInt8(ascii: "x")))
        XCTAssertFalse(parser.isComplete, "a refused byte kills the parser")

        var number = IncrementalJSONParser(root: .any)
        for byte in "12".utf8 { XCTAssertTrue(number.feed(byte)) }
        XCTAssertTrue(number.isComplete, "a top-level number is complete when it has digits")
        XCTAssertTrue(number.feed(UInt8(ascii: "5")))
        XCTAssertTrue(number.feed(UInt8(ascii: ".")))
        XCTAssertFalse(number.isComplete)
    }

    func testEndlessWhitespaceIsRefused() {
        var parser = IncrementalJSONParser(root: .any)
        XCTAssertTrue(parser.feed(UInt8(ascii: "[")))
        var refused = false
        for _ in 0..<1000 where !parser.feed(UInt8(ascii: " ")) { refused = true; break }
        XCTAssertTrue(refused, "a model must not pad forever")
    }

    // MARK: - Schemas

    static let person: JSONValue = [
        "type": "object",
        "properties": [
            "name": ["type": "string"],
            "age": ["type": "integer"],
            "role": ["enum": ["admin", "user"]],
            "tags": ["type": "array", "items": ["type": "string"]],
            "score": ["type": ["number", "null"]],
        ],
        "required": ["name", "age"],
        "additionalProperties": false,
    ]

    func testSchemaAcceptsMatchingDocuments() {
        // jsonschema.validate accepts each of these against `person`.
        let valid = [
            #"{"name": "Ada", "age": 36}"#,
            #"{"age": 36, "name": "Ada"}"#,
            #"{"name": "Ada", "age": -1, "role": "admin", "tags": ["x", "y"], "score": 9.5}"#,
            #"{"name": "", "age": 0, "tags": [], "score": null, "role": "user"}"#,
        ]
        for document in valid { XCTAssertTrue(accepts(document, schema: Self.person), document) }
    }

    func testSchemaRejectsViolations() {
        // jsonschema.validate (or json.loads) rejects each of these against `person`.
        let invalid = [
            #"{"name": "Ada"}"#,                                   // age is required
            #"{"age": 36}"#,                                       // name is required
            #"{}"#,
            #"{"name": "Ada", "age": 36.5}"#,                      // integer
            #"{"name": "Ada", "age": "36"}"#,                      // type
            #"{"name": 5, "age": 36}"#,
            #"{"name": "Ada", "age": 36, "email": "a@b"}"#,        // additionalProperties: false
            #"{"name": "Ada", "age": 36, "role": "root"}"#,        // enum
            #"{"name": "Ada", "age": 36, "role": "admins"}"#,
            #"{"name": "Ada", "age": 36, "tags": [1]}"#,           // items
            #"{"name": "Ada", "age": 36, "score": "high"}"#,
            #"["Ada", 36]"#,                                        // type object
            #"{"name": "Ada", "age": 36,}"#,
        ]
        for document in invalid { XCTAssertFalse(accepts(document, schema: Self.person), document) }
        // Stricter than jsonschema, which takes 3e1 as the integer 30: the constraint writes integers as integer literals.
        XCTAssertFalse(accepts(#"{"name": "Ada", "age": 3e1}"#, schema: Self.person))
    }

    func testNoDeadEnds() {
        // Once every allowed key is written, a comma has nothing to introduce.
        let closed: JSONValue = ["type": "object", "properties": ["a": ["type": "integer"]], "additionalProperties": false]
        var parser = IncrementalJSONParser(root: SchemaNode(closed))
        XCTAssertNil(firstRefusal(#"{"a": 1"#, &parser))
        XCTAssertFalse(parser.feed(UInt8(ascii: ",")), "a comma with no key left to write")

        // An enum whose values prefix one another: both can be written.
        let numbers: JSONValue = ["type": "object", "properties": ["n": ["enum": [1, 10]]], "required": ["n"]]
        XCTAssertTrue(accepts(#"{"n": 1}"#, schema: numbers))
        XCTAssertTrue(accepts(#"{"n": 10}"#, schema: numbers))
        XCTAssertTrue(accepts(#"{"n": 10 }"#, schema: numbers))
        XCTAssertFalse(accepts(#"{"n": 100}"#, schema: numbers))
        XCTAssertFalse(accepts(#"{"n": 2}"#, schema: numbers))
        XCTAssertTrue(accepts("1", schema: ["enum": [1, 10]]))
        XCTAssertTrue(accepts("10", schema: ["enum": [1, 10]]))

        // const and boolean enums.
        XCTAssertTrue(accepts(#""fixed""#, schema: ["const": "fixed"]))
        XCTAssertFalse(accepts(#""fixe""#, schema: ["const": "fixed"]))
        XCTAssertTrue(accepts("true", schema: ["type": "boolean"]))
        XCTAssertFalse(accepts("1", schema: ["type": "boolean"]))
        XCTAssertTrue(accepts("null", schema: ["type": "null"]))
    }

    func testJSONObjectModeNeedsAnObject() throws {
        let tokenizer = try Tokenizer(
            tokenizerJSON: Fixtures.data("qwen2.5-tokenizer/tokenizer.json"),
            tokenizerConfigJSON: Fixtures.data("qwen2.5-tokenizer/tokenizer_config.json"))
        var constraint = JSONConstraint(tokenizer: tokenizer, schema: nil)
        func id(_ text: String) throws -> Int {
            let ids = tokenizer.encode(text)
            XCTAssertEqual(ids.count, 1, "\(text) is one token")
            return try XCTUnwrap(ids.first)
        }
        XCTAssertFalse(constraint.allows(try id("[")), "json_object: the document is an object")
        XCTAssertFalse(constraint.allows(try id("hello")))
        XCTAssertFalse(constraint.allows(try XCTUnwrap(tokenizer.id(of: "<|im_end|>"))), "special tokens are never text")
        XCTAssertTrue(constraint.allows(try id("{")))
        XCTAssertFalse(constraint.isComplete)
        for piece in ["{", "\"", "a", "\":", "1", "}"] {
            let token = try id(piece)
            XCTAssertTrue(constraint.allows(token), piece)
            constraint.accept(token)
        }
        XCTAssertTrue(constraint.isComplete)
        XCTAssertFalse(constraint.allows(try id("}")))
    }
}
