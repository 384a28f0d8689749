import XCTest
@testable import QwenKit

final class JSONValueTests: XCTestCase {
    func testKeepsKeyOrder() throws {
        let value = try JSONValue.parse(#"{"z": 1, "a": 2, "m": {"y": null, "b": [1, 2]}}"#)
        XCTAssertEqual(value.objectValue?.map(\.0), ["z", "a", "m"])
        XCTAssertEqual(value.pythonJSON, #"{"z": 1, "a": 2, "m": {"y": null, "b": [1, 2]}}"#)
    }

    func testDuplicateKeysKeepFirstPositionAndLastValue() throws {
        // Python: json.dumps(json.loads('{"a": 1, "b": 2, "a": 3}')) == '{"a": 3, "b": 2}'
        XCTAssertEqual(try JSONValue.parse(#"{"a": 1, "b": 2, "a": 3}"#).pythonJSON, #"{"a": 3, "b": 2}"#)
    }

    func testEscapes() throws {
        let value = try JSONValue.parse(#""q\" b\\ s\/ \b\f\n\r\t \u0001 \u001F \u007f""#)
        XCTAssertEqual(value, .string("q\" b\\ s/ \u{08}\u{0C}\n\r\t \u{01} \u{1F} \u{7F}"))
        // Python writes "/" and DEL raw and other controls as lowercase \u00xx.
        XCTAssertEqual(value.pythonJSON, #""q\" b\\ s/ \b\f\n\r\t \u0001 \u001f \#u{7F}""#)
    }

    func testUnicodeIsWrittenRaw() throws {
        let value = try JSONValue.parse(#""caf\u00e9 東京 🙂 <b>&'""#)
        XCTAssertEqual(value, .string("café 東京 🙂 <b>&'"))
        XCTAssertEqual(value.pythonJSON, "\"café 東京 🙂 <b>&'\"")
        // Raw UTF-8 input works too.
        XCTAssertEqual(try JSONValue.parse("\"Zürich 👋🏽\""), .string("Zürich 👋🏽"))
    }

    func testSurrogatePairs() throws {
        XCTAssertEqual(try JSONValue.parse(#""\ud83d\ude42""#), .string("🙂"))
        XCTAssertEqual(try JSONValue.parse(#""\uD834\uDD1E""#), .string("𝄞"))
        // Lone surrogates cannot live in a Swift String: they become U+FFFD.
        XCTAssertEqual(try JSONValue.parse(#""a\ud83db""#), .string("a\u{FFFD}b"))
        XCTAssertEqual(try JSONValue.parse(#""\ude42""#), .string("\u{FFFD}"))
        XCTAssertEqual(try JSONValue.parse(#""\ud83d\u0041""#), .string("\u{FFFD}A"))
    }

    func testNumbers() throws {
        XCTAssertEqual(try JSONValue.parse("0"), .int(0))
        XCTAssertEqual(try JSONValue.parse("-0"), .int(0))
        XCTAssertEqual(try JSONValue.parse("-17"), .int(-17))
        XCTAssertEqual(try JSONValue.parse("9223372036854775807"), .int(Int.max))
        XCTAssertEqual(try JSONValue.parse("9223372036854775808"), .double(9223372036854775808))
        XCTAssertEqual(try JSONValue.parse("1.0"), .double(1))
        XCTAssertEqual(try JSONValue.parse("2.5E+3"), .double(2500))
        XCTAssertEqual(try JSONValue.parse("1e-2"), .double(0.01))
    }

    func testPythonFloatRepr() {
        // Expected strings are Python 3's repr() of the same floats.
        let cases: [(Double, String)] = [
            (1, "1.0"), (-2.5, "-2.5"), (0, "0.0"), (-0.0, "-0.0"), (18.5, "18.5"), (79.99, "79.99"),
            (0.1, "0.1"), (0.0001, "0.0001"), (0.00001, "1e-05"), (0.000123, "0.000123"),
            (1.5e-7, "1.5e-07"), (1e15, "1000000000000000.0"), (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"), (12345678901234567.0, "1.2345678901234568e+16"),
            (1e100, "1e+100"), (.leastNonzeroMagnitude, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100, "100.0"), (123.456, "123.456"), (1 / 3, "0.3333333333333333"), (2.0 / 3, "0.6666666666666666"),
            (.infinity, "Infinity"), (-.infinity, "-Infinity"), (.nan, "NaN"),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(JSONValue.double(value).pythonJSON, expected, "\(value)")
        }
    }

    func testSerialiserSeparatorsAndNesting() {
        let value: JSONValue = ["b": [1, 2.5, "x", nil, true, false, [:], []], "a": ["k": "v"]]
        XCTAssertEqual(value.pythonJSON, #"{"b": [1, 2.5, "x", null, true, false, {}, []], "a": {"k": "v"}}"#)
    }

    func testRoundTripOfFixtureLines() throws {
        // Every template fixture line was written by json.dumps(ensure_ascii=False) with default
        // separators, except for the U+2028/U+2029/U+0085 escapes (none occur in these lines).
        let data = try Fixtures.data("templates/cases.jsonl")
        var count = 0
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let text = try XCTUnwrap(String(validating: line, as: UTF8.self))
            guard !text.contains("\\u2028"), !text.contains("\\u2029"), !text.contains("\\u0085") else { continue }
            XCTAssertEqual(try JSONValue.parse(line).pythonJSON, text)
            count += 1
        }
        XCTAssertGreaterThan(count, 30)
    }

    func assertMalformed(_ text: String, contains fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try JSONValue.parse(text), file: file, line: line) { error in
            guard let error = error as? JSONParseError else {
                return XCTFail("unexpected error type \(error)", file: file, line: line)
            }
            XCTAssertTrue(error.description.contains(fragment), "\(error)", file: file, line: line)
        }
    }

    func testMalformedInputErrors() {
        assertMalformed("", contains: "unexpected end of input")
        assertMalformed("{", contains: "unterminated object")
        assertMalformed(#"{"a" 1}"#, contains: "expected ':'")
        assertMalformed(#"{"a": 1,}"#, contains: "expected a string key")
        assertMalformed("[1, 2", contains: "unterminated array")
        assertMalformed("[1 2]", contains: "expected ',' or ']'")
        assertMalformed("[1,]", contains: "expected a value")
        assertMalformed(#""abc"#, contains: "unterminated string")
        assertMalformed("\"a\nb\"", contains: "unescaped control character")
        assertMalformed(#""\x""#, contains: "invalid escape")
        assertMalformed(#""\u12g4""#, contains: "invalid hex digit")
        assertMalformed("01", contains: "leading zeros")
        assertMalformed("1.", contains: "after the decimal point")
        assertMalformed("1e", contains: "exponent")
        assertMalformed("-", contains: "expected a digit")
        assertMalformed("tru", contains: "expected 'true'")
        assertMalformed("NaN", contains: "unexpected character 'N'")
        // Found by the json fuzz target: 1e999 read as infinity, written back as `Infinity`, which
        // does not parse. (Tests/fuzz/crashes/json/number-out-of-range)
        assertMalformed("[1E+67890]", contains: "number out of range")
        assertMalformed("-1e999", contains: "number out of range")
        XCTAssertEqual(try JSONValue.parse("1e-999"), .double(0))
        assertMalformed("{} x", contains: "unexpected data after")
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0x22])) { error in
            XCTAssertEqual((error as? JSONParseError)?.message, "invalid UTF-8 in string")
        }
        XCTAssertThrowsError(try JSONValue.parse("[1, }")) { error in
            XCTAssertEqual((error as? JSONParseError)?.offset, 4)
        }
    }

    func testDepthIsCapped() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        assertMalformed(deep, contains: "nesting deeper than 512")
        let objects = String(repeating: #"{"a":"#, count: 600) + "1" + String(repeating: "}", count: 600)
        assertMalformed(objects, contains: "nesting deeper")
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        XCTAssertNoThrow(try JSONValue.parse(ok))
        XCTAssertThrowsError(try JSONValue.parse("[[1]]", maxDepth: 1))
    }

    func testWhitespaceAndLiterals() throws {
        XCTAssertEqual(try JSONValue.parse(" \t\r\n[true , false,null ] \n"), [true, false, nil])
    }
}
