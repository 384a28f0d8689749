import Foundation

/// An error from parsing or rendering a Jinja template: the template line (1-based; 0 when
/// unknown) and what went wrong. `raise_exception(msg)` produces one whose message is `msg`.
public struct JinjaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The 1-based template line where the problem was found, or 0 when no line applies.
    public var line: Int
    /// A human-readable reason (for `raise_exception`, exactly the template's message).
    public var message: String
    /// True when the template itself called `raise_exception`.
    public var isRaisedByTemplate: Bool

    public init(line: Int, message: String, isRaisedByTemplate: Bool = false) {
        self.line = line
        self.message = message
        self.isRaisedByTemplate = isRaisedByTemplate
    }

    public var description: String { "template line \(line): \(message)" }
}

/// A mutable attribute holder made by `namespace()`; shared by reference like Jinja's.
final class JinjaNamespace {
    var dict: JinjaDict
    init(_ dict: JinjaDict) { self.dict = dict }
}

/// An insertion-ordered string-keyed dictionary (Python's `dict`).
struct JinjaDict {
    private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    init() {}
    init(_ pairs: [(String, JinjaValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    var count: Int { keys.count }

    subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    var pairs: [(String, JinjaValue)] { keys.map { ($0, storage[$0] ?? JinjaValue.none) } }
    var values: [JinjaValue] { keys.map { storage[$0] ?? JinjaValue.none } }
}

/// The state behind a for loop's `loop` variable; attributes are computed on access.
final class JinjaLoop {
    let items: [JinjaValue]
    let index: Int
    init(items: [JinjaValue], index: Int) {
        self.items = items
        self.index = index
    }

    func attribute(_ name: String) -> JinjaValue? {
        let n = items.count
        switch name {
        case "index": return .int(index + 1)
        case "index0": return .int(index)
        case "revindex": return .int(n - index)
        case "revindex0": return .int(n - index - 1)
        case "first": return .bool(index == 0)
        case "last": return .bool(index == n - 1)
        case "length": return .int(n)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem": return index > 0 ? items[index - 1] : nil
        case "nextitem": return index + 1 < n ? items[index + 1] : nil
        default: return nil
        }
    }
}

/// A user-defined macro.
final class JinjaMacro {
    let name: String
    let parameters: [(String, Expr?)]
    let body: [Node]
    init(name: String, parameters: [(String, Expr?)], body: [Node]) {
        self.name = name
        self.parameters = parameters
        self.body = body
    }
}

/// A runtime value, modelled on the Python objects Jinja templates see.
enum JinjaValue {
    /// Jinja2's default `Undefined`; `hint` names what was missing, for error messages.
    case undefined(hint: String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    /// Tuples print as `(a, b)`; otherwise they behave like lists.
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case macro(JinjaMacro)
    /// A global function (`range`, `namespace`, `raise_exception`, ...).
    case builtin(String)
    /// The `loop` variable of a for loop.
    case loop(JinjaLoop)


    init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case let .bool(b): self = .bool(b)
        case let .int(i): self = .int(i)
        case let .double(d): self = .double(d)
        case let .string(s): self = .string(s)
        case let .array(a): self = .list(a.map(JinjaValue.init(json:)))
        case let .object(members): self = .dict(JinjaDict(members.map { ($0.0, JinjaValue(json: $0.1)) }))
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .list(l), let .tuple(l): return !l.isEmpty
        case let .dict(d): return d.count > 0
        case .namespace, .macro, .builtin, .loop: return true
        }
    }

    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .macro: return "Macro"
        case .builtin: return "builtin_function_or_method"
        case .loop: return "LoopContext"
        }
    }

    /// Numeric view (bool counts as int, as in Python).
    var number: Double? {
        switch self {
        case let .bool(b): return b ? 1 : 0
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }

    var integer: Int? {
        switch self {
        case let .bool(b): return b ? 1 : 0
        case let .int(i): return i
        default: return nil
        }
    }
}

// MARK: - Python str() / repr()

extension JinjaValue {
    /// Python's `str(value)` (Undefined prints as the empty string). Every element printed and
    /// every 16 bytes copied costs a step of `budget`; the text stops at the output limit, so a
    /// list holding itself many times over (exponential when printed) ends in an error.
    func str(_ budget: JinjaBudget) throws -> String {
        switch self {
        case .undefined: return ""
        case let .string(s): return s
        default: return try repr(budget)
        }
    }

    /// Python's `repr(value)`, bounded like ``str(_:)``.
    func repr(_ budget: JinjaBudget) throws -> String {
        var out = ""
        try writeRepr(into: &out, budget, depth: 0)
        return out
    }

    private func writeRepr(into out: inout String, _ budget: JinjaBudget, depth: Int) throws {
        guard depth < 256 else { throw JinjaError(line: 0, message: "value nested too deeply to print") }
        try budget.spend(1)
        switch self {
        case .undefined: break
        case .none: out += "None"
        case let .bool(b): out += b ? "True" : "False"
        case let .int(i): out += String(i)
        case let .double(d): out += JinjaValue.pythonFloatStr(d)
        case let .string(s):
            try budget.spendCopy(s.utf8.count)
            out += JinjaValue.pythonStringRepr(s)
        case let .list(items), let .tuple(items):
            let isTuple: Bool
            if case .tuple = self { isTuple = true } else { isTuple = false }
            out += isTuple ? "(" : "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                try item.writeRepr(into: &out, budget, depth: depth + 1)
                try JinjaValue.checkPrinted(out)
            }
            out += isTuple ? (items.count == 1 ? ",)" : ")") : "]"
        case let .dict(d):
            out += "{"
            for (i, (key, value)) in d.pairs.enumerated() {
                if i > 0 { out += ", " }
                try budget.spendCopy(key.utf8.count)
                out += JinjaValue.pythonStringRepr(key) + ": "
                try value.writeRepr(into: &out, budget, depth: depth + 1)
                try JinjaValue.checkPrinted(out)
            }
            out += "}"
        case let .namespace(ns):
            out += "<Namespace "
            try JinjaValue.dict(ns.dict).writeRepr(into: &out, budget, depth: depth + 1)
            out += ">"
        case let .macro(m): out += "<Macro '\(m.name)'>"
        case let .builtin(name): out += "<built-in function \(name)>"
        case let .loop(l): out += "<LoopContext \(l.index + 1)/\(l.items.count)>"
        }
        try JinjaValue.checkPrinted(out)
    }

    private static func checkPrinted(_ out: String) throws {
        guard out.utf8.count <= JinjaInterpreter.maxOutputBytes else {
            throw JinjaError(line: 0, message: "printed value longer than \(JinjaInterpreter.maxOutputBytes) bytes")
        }
    }

    static func pythonFloatStr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        return JSONValue.pythonFloatRepr(d)
    }

    static func isPrintable(_ s: Unicode.Scalar) -> Bool {
        if s == " " { return true }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }

    static func pythonStringRepr(_ s: String) -> String {
        let quote: Unicode.Scalar = (s.contains("'") && !s.contains("\"")) ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            default:
                if scalar == quote {
                    out.append("\\")
                    out.append(scalar)
                } else if isPrintable(scalar) {
                    out.append(scalar)
                } else {
                    let hex = String(scalar.value, radix: 16)
                    let (prefix, width) = scalar.value < 0x100 ? ("\\x", 2) : scalar.value < 0x10000 ? ("\\u", 4) : ("\\U", 8)
                    out.append(contentsOf: (prefix + String(repeating: "0", count: max(0, width - hex.count)) + hex).unicodeScalars)
                }
            }
        }
        out.append(quote)
        return String(out)
    }
}

// MARK: - JSON conversion (for tojson)

extension JinjaValue {
    /// The value as JSON, for `tojson`. Costs a step of `budget` per element (and per 16 bytes of
    /// text); `size` adds up a lower bound of the serialised length (with `indentWidth` spaces a
    /// nesting level) and the conversion stops before that passes the output limit.
    func toJSON(_ budget: JinjaBudget, indentWidth: Int = 0) throws -> JSONValue {
        var size = 0
        return try toJSON(budget, indentWidth: indentWidth, depth: 0, size: &size)
    }

    private func toJSON(_ budget: JinjaBudget, indentWidth: Int, depth: Int, size: inout Int) throws -> JSONValue {
        guard depth < 512 else { throw JinjaError(line: 0, message: "value nested too deeply for tojson") }
        try budget.spend(1)
        size += 4 + indentWidth * depth
        if case let .string(s) = self {
            try budget.spendCopy(s.utf8.count)
            size += s.utf8.count
        }
        guard size <= JinjaInterpreter.maxOutputBytes else {
            throw JinjaError(line: 0, message: "tojson result longer than \(JinjaInterpreter.maxOutputBytes) bytes")
        }
        switch self {
        case let .undefined(hint): throw JinjaError(line: 0, message: "cannot serialise an undefined value to JSON (\(hint))")
        case .none: return .null
        case let .bool(b): return .bool(b)
        case let .int(i): return .int(i)
        case let .double(d): return .double(d)
        case let .string(s): return .string(s)
        case let .list(l), let .tuple(l):
            var elements: [JSONValue] = []
            for item in l { elements.append(try item.toJSON(budget, indentWidth: indentWidth, depth: depth + 1, size: &size)) }
            return .array(elements)
        case let .dict(d):
            var members: [(String, JSONValue)] = []
            for (key, value) in d.pairs {
                size += key.utf8.count + 4
                members.append((key, try value.toJSON(budget, indentWidth: indentWidth, depth: depth + 1, size: &size)))
            }
            return .object(members)
        case .namespace, .macro, .builtin, .loop:
            throw JinjaError(line: 0, message: "Object of type \(typeName) is not JSON serializable")
        }
    }
}

extension JSONValue {
    /// Python's `json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sortKeys)`.
    func pythonJSON(indent: String?, sortKeys: Bool) -> String {
        guard indent != nil || sortKeys else { return pythonJSON }
        var out = ""
        writeIndented(into: &out, indent: indent, level: 0, sortKeys: sortKeys)
        return out
    }

    private func writeIndented(into out: inout String, indent: String?, level: Int, sortKeys: Bool) {
        let itemSeparator = indent == nil ? ", " : ","
        func newline(_ level: Int) {
            guard let indent else { return }
            out += "\n" + String(repeating: indent, count: level)
        }
        switch self {
        case let .array(elements):
            if elements.isEmpty { out += "[]"; return }
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1)
                element.writeIndented(into: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
            }
            newline(level)
            out += "]"
        case var .object(members):
            if members.isEmpty { out += "{}"; return }
            if sortKeys {
                members.sort { Array($0.0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.0.unicodeScalars.map(\.value)) }
            }
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1)
                JSONValue.writePythonString(key, into: &out)
                out += ": "
                value.writeIndented(into: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
            }
            newline(level)
            out += "}"
        default:
            writePythonJSON(into: &out)
        }
    }
}
