import Foundation

/// A parsed JSON value. The loader uses `JSONDecoder` rather than `JSONSerialization`
/// because on Linux the latter drops a U+FEFF at the start of a string, and because it
/// keeps booleans apart from the numbers 0 and 1.
enum JSONValue: Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Tried in order of frequency in tokenizer.json (strings, numbers, arrays), because
        // every failed attempt costs a thrown DecodingError.
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    static func parse(_ data: Data, file: String) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw TokenizerError.invalidJSON(file: file, reason: "\(error)")
        }
        guard case .object(let object) = value else {
            throw TokenizerError.invalidJSON(file: file, reason: "top level is not an object")
        }
        return object
    }

    var isNull: Bool { if case .null = self { return true } else { return false } }
    var object: [String: JSONValue]? { if case .object(let value) = self { return value } else { return nil } }
    var array: [JSONValue]? { if case .array(let value) = self { return value } else { return nil } }
    var string: String? { if case .string(let value) = self { return value } else { return nil } }
    var bool: Bool? { if case .bool(let value) = self { return value } else { return nil } }

    /// The value as an integer, when it is a whole number that fits.
    var integer: Int? {
        guard case .number(let value) = self, value.rounded() == value, abs(value) < 9e15 else { return nil }
        return Int(value)
    }
}
