import Foundation
import QwenKit

/// Something the agent can do: a function the model may call, with a JSON-schema signature.
///
/// Read-only tools run as soon as the model calls them. Side-effecting tools (``sideEffect`` true)
/// run only after the user says yes to ``describe(_:)``'s sentence, and each run is audited.
/// Tools of strangers (MCP servers) are side-effecting unless the user trusts the server, and
/// every call of theirs is audited (``alwaysAudited``).
public protocol AgentTool: Sendable {
    /// The function name the model calls (`search_flights`).
    var name: String { get }
    /// One or two plain sentences telling the model what the tool does and when to use it.
    var description: String { get }
    /// The JSON schema of the arguments object (`{"type": "object", "properties": …, "required": …}`).
    var parameters: JSONValue { get }
    /// Whether a call changes the world (books, buys, writes), so it needs the user's yes.
    var sideEffect: Bool { get }
    /// Id arguments (strings or integers) that must name something already in the conversation:
    /// a whole word the user wrote or a value a tool returned successfully (`flight_id` of
    /// `book_flight`, `booking_id` of `cancel_booking`). A value found nowhere is refused before
    /// the user is asked, so the model cannot act on an id it made up or copied from an example;
    /// the agent's own error messages never count, so repeating the call does not help.
    var groundedArguments: [String] { get }
    /// Whether every call is written to the audit log, asked about or not (MCP tools).
    var alwaysAudited: Bool { get }
    /// Checks arguments the schema cannot (a seat that exists on the flight) before the user is asked.
    /// - Throws: ``ToolError`` naming the bad argument.
    func check(_ arguments: JSONValue) throws
    /// The call in plain words for the user, e.g. "Book flight QK123 Paris→Tokyo on 2026-12-20 for 612 EUR?".
    func describe(_ arguments: JSONValue) -> String
    /// Performs the call with arguments that already satisfy ``parameters``.
    /// - Throws: ``ToolError`` (or any error) with a message the model can act on.
    func run(_ arguments: JSONValue) async throws -> JSONValue
}

extension AgentTool {
    /// The OpenAI function definition: `{"type": "function", "function": {"name", "description", "parameters"}}`.
    public var definition: JSONValue {
        .object([("type", "function"),
                 ("function", .object([("name", .string(name)), ("description", .string(description)),
                                       ("parameters", parameters)]))])
    }

    /// None by default.
    public var groundedArguments: [String] { [] }

    /// Only calls that were confirmed, by default.
    public var alwaysAudited: Bool { false }

    /// Nothing beyond the schema, by default.
    public func check(_ arguments: JSONValue) throws {}

    /// A generic sentence: the tool's name and its arguments.
    public func describe(_ arguments: JSONValue) -> String {
        "Run \(name) with \(arguments.pythonJSON)?"
    }
}

/// A failure a tool reports to the model as its result (not a crash of the loop).
public struct ToolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A validator for the JSON-schema subset tools use: `type` (object, array, string, integer,
/// number, boolean, null, or a list of them), `properties`, `required`, `additionalProperties: false`,
/// `enum`, `minimum`, `maximum`, `minLength`, `items`. Other keywords are ignored.
public enum JSONSchema {
    /// The ways `value` breaks `schema`, each one line naming the argument (empty when valid).
    public static func violations(of value: JSONValue, against schema: JSONValue, at path: String = "arguments") -> [String] {
        var problems: [String] = []
        if let types = allowedTypes(schema), !types.contains(where: { matches(value, type: $0) }) {
            return ["\(path) must be \(types.joined(separator: " or ")), not \(typeName(value))"]
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(where: { sameValue($0, value) }) {
            problems.append("\(path) must be one of \(options.map(\.pythonJSON).joined(separator: ", "))")
        }
        if let number = value.doubleValue {
            if let minimum = schema["minimum"]?.doubleValue, number < minimum {
                problems.append("\(path) must be at least \(JSONValue.double(minimum).compactNumber)")
            }
            if let maximum = schema["maximum"]?.doubleValue, number > maximum {
                problems.append("\(path) must be at most \(JSONValue.double(maximum).compactNumber)")
            }
        }
        if let text = value.stringValue, let minLength = schema["minLength"]?.intValue, text.count < minLength {
            problems.append("\(path) must have at least \(minLength) characters")
        }
        if case .object(let members) = value {
            let properties = schema["properties"]?.objectValue ?? []
            for required in schema["required"]?.arrayValue ?? [] {
                if let key = required.stringValue, !members.contains(where: { $0.0 == key }) {
                    problems.append("\(path).\(key) is required")
                }
            }
            for (key, member) in members {
                if let propertySchema = properties.first(where: { $0.0 == key })?.1 {
                    problems += violations(of: member, against: propertySchema, at: "\(path).\(key)")
                } else if schema["additionalProperties"]?.boolValue == false {
                    let known = properties.map(\.0).joined(separator: ", ")
                    problems.append("\(path).\(key) is not a known argument (known: \(known))")
                }
            }
        }
        if case .array(let elements) = value, let itemSchema = schema["items"] {
            for (index, element) in elements.enumerated() {
                problems += violations(of: element, against: itemSchema, at: "\(path)[\(index)]")
            }
        }
        return problems
    }

    private static func allowedTypes(_ schema: JSONValue) -> [String]? {
        switch schema["type"] {
        case .string(let type)?: [type]
        case .array(let types)?: types.compactMap(\.stringValue)
        default: nil
        }
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null),
             ("integer", .int), ("number", .int), ("number", .double): true
        case ("integer", .double(let d)): d.rounded() == d && abs(d) < 1e15
        default: false
        }
    }

    private static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    private static func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }
}

extension JSONValue {
    /// A number written without a needless `.0`.
    var compactNumber: String {
        if let d = doubleValue, d.rounded() == d, abs(d) < 1e15 { return String(Int(d)) }
        return pythonJSON
    }
}
