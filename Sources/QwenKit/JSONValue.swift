/// A JSON value that keeps object keys in document order.
///
/// Foundation's `JSONSerialization` returns dictionaries, which lose key order. Chat templates
/// serialise tool schemas and call arguments back out with Python's `json.dumps`, which keeps
/// insertion order, so byte-identical prompts need an order-preserving representation.
///
/// Numbers are split the way Python's `json` module splits them: a literal without a fraction or
/// exponent is an ``int(_:)``; everything else is a ``double(_:)``. Integers outside `Int`'s range
/// become doubles (Python would keep an arbitrary-precision integer; this is documented loss).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Members in document order. Keys are unique after parsing (see ``parse(_:maxDepth:)``).
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            // Order is part of the value: it changes the serialised bytes.
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The member named `key` when this is an object (the last one wins if keys repeat), else nil.
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.last(where: { $0.0 == key })?.1
    }

    /// The element at `index` when this is an array and the index is in range, else nil.
    public subscript(index: Int) -> JSONValue? {
        guard case let .array(elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// The string payload, or nil for any other case.
    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// The boolean payload, or nil for any other case.
    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    /// The integer payload, or nil for any other case (doubles are not converted).
    public var intValue: Int? {
        if case let .int(i) = self { return i }
        return nil
    }

    /// The numeric payload as a `Double` for both ``int(_:)`` and ``double(_:)``.
    public var doubleValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }

    /// The elements when this is an array, else nil.
    public var arrayValue: [JSONValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// The ordered members when this is an object, else nil.
    public var objectValue: [(String, JSONValue)]? {
        if case let .object(o) = self { return o }
        return nil
    }

    /// True for ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

// MARK: - Parsing

/// A malformed JSON document: what was wrong and the byte offset where it was noticed.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A human-readable reason, e.g. "unterminated string".
    public var message: String
    /// Zero-based byte offset into the input.
    public var offset: Int

    public var description: String { "JSON parse error at byte \(offset): \(message)" }
}

extension JSONValue {
    /// The default nesting limit of ``parse(_:maxDepth:)``. Python's own `json` gives up near 1000
    /// through its recursion limit; 512 is ample for chat payloads and keeps the stack small.
    public static let defaultMaxDepth = 512

    /// Parses one JSON document (RFC 8259) from UTF-8 bytes, keeping object keys in order.
    ///
    /// - Strict like Python's `json.loads`: no trailing commas, no comments, no raw control
    ///   characters inside strings, no `NaN`/`Infinity` literals and no number too large for a
    ///   `Double` (Python would read `1e999` as infinity), nothing after the value except
    ///   whitespace. Invalid UTF-8 is rejected.
    /// - Duplicate keys behave as in Python's `dict`: the key keeps its first position and takes
    ///   the last value.
    /// - A `\uD800`-range escape that is not part of a valid surrogate pair cannot be held by a
    ///   Swift `String`; it becomes U+FFFD.
    /// - Nesting deeper than `maxDepth` arrays/objects throws instead of exhausting the stack.
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        var parser = JSONParser(bytes: Array(bytes), maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Parses one JSON document from a string (its UTF-8 encoding). See ``parse(_:maxDepth:)``.
    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    var pos = 0
    var depth = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(message: message, offset: offset ?? pos)
    }

    mutating func parseDocument() throws -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard pos == bytes.count else { throw error("unexpected data after the JSON value") }
        return value
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws -> JSONValue {
        guard pos < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character \(describe(bytes[pos])), expected a value")
        }
    }

    func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    mutating func expectLiteral(_ literal: StaticString) throws {
        let start = pos
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for byte in expected {
            guard pos < bytes.count, bytes[pos] == byte else {
                throw error("invalid literal, expected '\(literal)'", at: start)
            }
            pos += 1
        }
    }

    mutating func enterContainer() throws {
        depth += 1
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
    }

    mutating func parseObject() throws -> JSONValue {
        try enterContainer()
        pos += 1  // {
        var members: [(String, JSONValue)] = []
        var indexOfKey: [String: Int] = [:]
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated object") }
            guard bytes[pos] == UInt8(ascii: "\"") else {
                throw error("expected a string key, found \(describe(bytes[pos]))")
            }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else {
                throw error(pos < bytes.count ? "expected ':' after object key" : "unterminated object")
            }
            pos += 1
            skipWhitespace()
            let value = try parseValue()
            if let existing = indexOfKey[key] {
                members[existing].1 = value
            } else {
                indexOfKey[key] = members.count
                members.append((key, value))
            }
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") {
                pos += 1
                continue
            }
            if bytes[pos] == UInt8(ascii: "}") {
                pos += 1
                depth -= 1
                return .object(members)
            }
            throw error("expected ',' or '}' in object, found \(describe(bytes[pos]))")
        }
    }

    mutating func parseArray() throws -> JSONValue {
        try enterContainer()
        pos += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") {
                pos += 1
                continue
            }
            if bytes[pos] == UInt8(ascii: "]") {
                pos += 1
                depth -= 1
                return .array(elements)
            }
            throw error("expected ',' or ']' in array, found \(describe(bytes[pos]))")
        }
    }

    mutating func parseHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            value = value << 4 | digit
            pos += 1
        }
        return value
    }

    mutating func parseString() throws -> String {
        let start = pos
        pos += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        // Runs of plain bytes are copied and validated in one go; escapes are handled one by one.
        var runStart = pos
        func flushRun(_ end: Int, into scalars: inout String.UnicodeScalarView) throws {
            guard end > runStart else { return }
            guard let text = String(validating: bytes[runStart..<end], as: UTF8.self) else {
                throw error("invalid UTF-8 in string", at: runStart)
            }
            scalars.append(contentsOf: text.unicodeScalars)
        }
        while true {
            guard pos < bytes.count else { throw error("unterminated string", at: start) }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                try flushRun(pos, into: &scalars)
                pos += 1
                return String(scalars)
            }
            if b < 0x20 {
                throw error("unescaped control character 0x\(String(b, radix: 16, uppercase: true)) in string")
            }
            if b != UInt8(ascii: "\\") {
                pos += 1
                continue
            }
            try flushRun(pos, into: &scalars)
            pos += 1
            guard pos < bytes.count else { throw error("unterminated string", at: start) }
            let escape = bytes[pos]
            pos += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                let unit = try parseHex4()
                if (0xD800..<0xDC00).contains(unit) {
                    // A high surrogate must be followed by \u + low surrogate to form one scalar.
                    if pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                        let save = pos
                        pos += 2
                        let low = try parseHex4()
                        if (0xDC00..<0xE000).contains(low) {
                            let value = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                            scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
                        } else {
                            scalars.append("\u{FFFD}")
                            pos = save  // reparse the second escape on its own
                        }
                    } else {
                        scalars.append("\u{FFFD}")
                    }
                } else {
                    // Lone low surrogates (DC00–DFFF) are not scalars either.
                    scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                }
            default:
                throw error("invalid escape '\\\(Character(Unicode.Scalar(escape)))' in string", at: pos - 2)
            }
            runStart = pos
        }
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = pos
        var isInteger = true
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        guard isDigit(pos) else { throw error("expected a digit in number", at: pos) }
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
            if isDigit(pos) { throw error("leading zeros are not allowed in numbers", at: start) }
        } else {
            while isDigit(pos) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard isDigit(pos) else { throw error("expected a digit after the decimal point") }
            while isDigit(pos) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard isDigit(pos) else { throw error("expected a digit in the exponent") }
            while isDigit(pos) { pos += 1 }
        }
        // The slice is pure ASCII by construction.
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if isInteger, let value = Int(text) { return .int(value) }
        guard let value = Double(text) else { throw error("invalid number '\(text)'", at: start) }
        // `1e999` would read as infinity, which JSON cannot write back (pythonJSON gives `Infinity`,
        // which no strict parser, this one included, reads): refused like the `Infinity` literal.
        guard value.isFinite else { throw error("number out of range '\(text.prefix(40))'", at: start) }
        return .double(value)
    }
}

// MARK: - Serialisation

extension JSONValue {
    /// The exact text of Python's `json.dumps(value, ensure_ascii=False)`, which is also what
    /// transformers' `tojson` filter produces for chat templates.
    ///
    /// - Separators are `", "` and `": "`; members keep their order; no HTML escaping.
    /// - Strings: `"` `\` and the C0 controls are escaped (`\n`, `\r`, `\t`, `\b`, `\f`, else
    ///   `\u00xx` in lowercase hex, as Python writes them); everything else, DEL and non-ASCII
    ///   included, is written raw.
    /// - Doubles follow Python's `float.__repr__`: the shortest digits that round-trip; fixed
    ///   notation when the decimal exponent is in −4 ..< 16 (always with a fractional part, `1.0`),
    ///   otherwise scientific with a signed two-digit-minimum exponent (`1e-05`, `1.5e+16`);
    ///   non-finite values as `NaN`, `Infinity`, `-Infinity` (Python's `allow_nan=True` default).
    public var pythonJSON: String {
        var out = ""
        writePythonJSON(into: &out)
        return out
    }

    func writePythonJSON(into out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d): out += JSONValue.pythonFloatRepr(d)
        case let .string(s): JSONValue.writePythonString(s, into: &out)
        case let .array(elements):
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += ", " }
                element.writePythonJSON(into: &out)
            }
            out += "]"
        case let .object(members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += ", " }
                JSONValue.writePythonString(key, into: &out)
                out += ": "
                value.writePythonJSON(into: &out)
            }
            out += "}"
        }
    }

    static func writePythonString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// Python's `repr(float)`. Swift's `description` already yields the shortest round-trip
    /// digits; only the layout differs, so the digits and exponent are extracted and re-laid out.
    static func pythonFloatRepr(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        let (digits, pointPosition) = shortestDigits(abs(d))
        // `pointPosition` is Python's `decpt`: value = 0.d1d2d3… × 10^pointPosition.
        var out = d < 0 ? "-" : ""
        if pointPosition > -4 && pointPosition <= 16 {
            if pointPosition <= 0 {
                out += "0." + String(repeating: "0", count: -pointPosition) + digits
            } else if pointPosition >= digits.count {
                out += digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
            } else {
                let split = digits.index(digits.startIndex, offsetBy: pointPosition)
                out += digits[..<split] + "." + digits[split...]
            }
        } else {
            let exponent = pointPosition - 1
            out += String(digits.prefix(1))
            if digits.count > 1 { out += "." + digits.dropFirst() }
            let magnitude = String(abs(exponent))
            out += (exponent < 0 ? "e-" : "e+") + (magnitude.count < 2 ? "0" : "") + magnitude
        }
        return out
    }

    /// The significant digits (no leading or trailing zeros) of a positive finite double and the
    /// decimal point position relative to the first digit.
    static func shortestDigits(_ d: Double) -> (String, Int) {
        let text = d.description  // e.g. "123.45", "1e-05", "1.5e+16", "5e-324"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var digits = ""
        var pointPosition = 0
        var seenPoint = false
        for ch in mantissa {
            if ch == "." { seenPoint = true; continue }
            if !seenPoint { pointPosition += 1 }
            digits.append(ch)
        }
        // Strip leading zeros ("0.001" → "1", point moves left) and trailing zeros ("100.0").
        while digits.first == "0" {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        return (digits, pointPosition + exponent)
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Dictionary literals keep their written order, unlike `Dictionary`.
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
    public init(nilLiteral: ()) { self = .null }
}

// MARK: - Codable

/// `Codable` bridges so that `JSONValue` (and ``ChatMessage``) can sit inside `Codable` request
/// types. Caveat: a `Decoder` hands out object keys through `allKeys`, whose order Foundation's
/// `JSONDecoder` does not promise, and it may read `1.0` as an integer. Where key order or the
/// int/float distinction matters (prompt rendering), parse the raw bytes with
/// ``JSONValue/parse(_:maxDepth:)`` instead.
extension JSONValue: Codable {
    private struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: MemberKey.self) {
            var members: [(String, JSONValue)] = []
            for key in container.allKeys {
                members.append((key.stringValue, try container.decode(JSONValue.self, forKey: key)))
            }
            self = .object(members)
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !container.isAtEnd { elements.append(try container.decode(JSONValue.self)) }
            self = .array(elements)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int.self) {
            self = .int(i)
        } else if let d = try? container.decode(Double.self) {
            self = .double(d)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case let .bool(b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case let .int(i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case let .double(d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case let .string(s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case let .array(elements):
            var c = encoder.unkeyedContainer()
            for element in elements { try c.encode(element) }
        case let .object(members):
            var c = encoder.container(keyedBy: MemberKey.self)
            for (key, value) in members { try c.encode(value, forKey: MemberKey(stringValue: key)) }
        }
    }
}
