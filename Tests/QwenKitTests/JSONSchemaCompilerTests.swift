import Foundation
import XCTest
@testable import QwenKit

/// Compiling client schemas: limits, unsatisfiable schemas, `$ref`, and enums as tries.
final class JSONSchemaCompilerTests: XCTestCase {
    func accepts(_ text: String, _ schema: CompiledJSONSchema) -> Bool {
        var parser = IncrementalJSONParser(root: schema.root)
        for byte in text.utf8 where !parser.feed(byte) { return false }
        return parser.isComplete
    }

    func limitName(_ schema: JSONValue, limits: JSONSchemaLimits = JSONSchemaLimits()) -> String? {
        do {
            _ = try CompiledJSONSchema(schema, limits: limits)
            return nil
        } catch JSONSchemaError.limitExceeded(let limit, _, _) {
            return limit
        } catch {
            return "\(error)"
        }
    }

    func isUnsatisfiable(_ schema: JSONValue) -> Bool {
        do {
            _ = try CompiledJSONSchema(schema)
            return false
        } catch JSONSchemaError.unsatisfiable {
            return true
        } catch {
            return false
        }
    }

    func testLimitsAreNamed() {
        let bigEnum = JSONValue.object([("enum", .array((0..<2_000).map { .string("v\($0)") }))])
        XCTAssertEqual(limitName(bigEnum), "max_enum_values")
        let longValue = JSONValue.object([("enum", .array([.string(String(repeating: "x", count: 2_000))]))])
        XCTAssertEqual(limitName(longValue), "max_enum_value_bytes")
        let wide = JSONValue.object([("anyOf", .array((0..<100).map { _ in ["type": "string"] }))])
        XCTAssertEqual(limitName(wide), "max_any_of")
        var deep: JSONValue = ["type": "string"]
        for _ in 0..<40 { deep = .object([("type", "object"), ("properties", .object([("a", deep)]))]) }
        XCTAssertEqual(limitName(deep), "max_depth")
        var small = JSONSchemaLimits()
        small.maxNodes = 3
        let four: JSONValue = ["type": "object", "properties": ["a": ["type": "string"], "b": ["type": "string"], "c": ["type": "string"]]]
        XCTAssertEqual(limitName(four, limits: small), "max_nodes")
        // Within the limits, all of these compile.
        XCTAssertNil(limitName(.object([("enum", .array((0..<1_000).map { .string("v\($0)") }))])))
        XCTAssertNil(limitName(four))
    }

    func testUnsatisfiableSchemas() {
        XCTAssertTrue(isUnsatisfiable(["enum": []]))
        XCTAssertTrue(isUnsatisfiable(["type": "integer", "minimum": 5, "maximum": 1]))
        XCTAssertTrue(isUnsatisfiable(["type": "integer", "minimum": 1.2, "maximum": 1.8]))
        XCTAssertTrue(isUnsatisfiable(["type": "number", "exclusiveMinimum": 1, "maximum": 1]))
        XCTAssertTrue(isUnsatisfiable(["not": [:]]))
        XCTAssertTrue(isUnsatisfiable(false))
        XCTAssertTrue(isUnsatisfiable(["anyOf": []]))
        XCTAssertTrue(isUnsatisfiable(["type": "string", "enum": [1, 2]]))
        XCTAssertTrue(isUnsatisfiable(["type": "string", "minLength": 3, "maxLength": 2]))
        XCTAssertTrue(isUnsatisfiable(["type": "object", "properties": ["a": ["type": "string"]], "required": ["b"]]))
        XCTAssertTrue(isUnsatisfiable(["type": "object", "properties": ["a": ["enum": []]], "required": ["a"]]))
        XCTAssertTrue(isUnsatisfiable(["type": "array", "items": ["enum": []], "minItems": 1]))
        // Satisfiable neighbours.
        XCTAssertFalse(isUnsatisfiable(["type": "integer", "minimum": 1, "maximum": 1]))
        XCTAssertFalse(isUnsatisfiable(["type": "object", "properties": ["a": ["enum": []]]]))
        XCTAssertFalse(isUnsatisfiable(["anyOf": [["enum": []], ["type": "null"]]]))
    }

    func testUnsatisfiableParts() throws {
        // An optional property nothing satisfies is left out; items nothing satisfies leave [] only.
        let object = try CompiledJSONSchema(["type": "object", "properties": ["a": ["enum": []], "b": ["type": "null"]]])
        XCTAssertTrue(accepts(#"{"b": null}"#, object))
        XCTAssertFalse(accepts(#"{"a": 1}"#, object))
        let array = try CompiledJSONSchema(["type": "array", "items": ["enum": []]])
        XCTAssertTrue(accepts("[]", array))
        XCTAssertFalse(accepts("[1]", array))
    }

    func testReferences() throws {
        let schema: JSONValue = [
            "$defs": ["colour": ["enum": ["red", "green"]]],
            "type": "object", "properties": ["c": ["$ref": "#/$defs/colour"]], "required": ["c"],
        ]
        let compiled = try CompiledJSONSchema(schema)
        XCTAssertTrue(accepts(#"{"c": "green"}"#, compiled))
        XCTAssertFalse(accepts(#"{"c": "blue"}"#, compiled))
        let recursive: JSONValue = [
            "$defs": ["node": ["type": "object", "properties": ["next": ["$ref": "#/$defs/node"]]]],
            "$ref": "#/$defs/node",
        ]
        XCTAssertThrowsError(try CompiledJSONSchema(recursive)) { error in
            guard case JSONSchemaError.recursiveReference = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try CompiledJSONSchema(["$ref": "https://example.com/schema"])) { error in
            guard case JSONSchemaError.unresolvableReference = error else { return XCTFail("\(error)") }
        }
    }

    /// Enums are matched through a trie: prefixes stay open, other strings are refused, values that
    /// are prefixes of others (`a`, `ab`) both work, and non-string values mix with strings.
    func testEnumTrie() throws {
        let compiled = try CompiledJSONSchema(["enum": ["a", "ab", "abc", "b", 1, 10, true, nil]])
        for valid in [#""a""#, #""ab""#, #""abc""#, #""b""#, "1", "10", "true", "null"] {
            XCTAssertTrue(accepts(valid, compiled), valid)
        }
        for invalid in [#""""#, #""c""#, #""abcd""#, #""ba""#, "2", "100", "false", #""A""#] {
            XCTAssertFalse(accepts(invalid, compiled), invalid)
        }
        let trie = ByteTrie(["b", "a", "ab", "a"].map { Array($0.utf8) })
        XCTAssertEqual(trie.words, [[0x61], [0x61, 0x62], [0x62]])
        XCTAssertEqual(trie.index(of: Array("ab".utf8)), 1)
        XCTAssertNil(trie.index(of: Array("abc".utf8)))
    }

    /// A thousand-value enum (the limit) is matched value for value.
    func testEnumOfManyValuesMatchesEveryValue() throws {
        let values = (0..<1_000).map { "value-\($0)" }
        let compiled = try CompiledJSONSchema(.object([("enum", .array(values.map(JSONValue.string)))]))
        for value in values.shuffled().prefix(50) { XCTAssertTrue(accepts("\"\(value)\"", compiled), value) }
        XCTAssertFalse(accepts(#""value-1000""#, compiled))
    }

    /// The key of an object without extra properties: a property already written cannot be started again.
    func testKeysOnce() throws {
        let compiled = try CompiledJSONSchema(["type": "object", "properties": ["a": ["type": "null"], "ab": ["type": "null"]]])
        XCTAssertTrue(accepts(#"{"a": null, "ab": null}"#, compiled))
        XCTAssertFalse(accepts(#"{"a": null, "a": null}"#, compiled))
        var parser = IncrementalJSONParser(root: compiled.root)
        for byte in #"{"ab": null, "a"#.utf8 { XCTAssertTrue(parser.feed(byte)) }
        XCTAssertFalse(parser.feed(UInt8(ascii: "b")), "ab is written already")
    }
}
