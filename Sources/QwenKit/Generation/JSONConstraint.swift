import QwenTokenizer

/// Keeps generated text a valid JSON document — an object, or one matching a JSON schema
/// (the subset OpenAI's structured outputs use: `type` object/array/string/number/integer/
/// boolean/null, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
/// `anyOf` of scalar types) — by checking each candidate token's bytes against an incremental
/// parser (a pushdown automaton) before it is accepted.
///
/// Object keys are limited to the schema's properties, each at most once; `}` is allowed only
/// after every required property; string enums are matched as they are written.
public struct JSONConstraint: TokenConstraint {
    private var checker: TokenBytesChecker<IncrementalJSONParser>

    /// A call to one of `tools` (name, JSON-schema parameters): `{"name": …, "arguments": {…}}`,
    /// the arguments matching the chosen function's parameters (`tool_choice: required`).
    public init(tokenizer: Tokenizer, toolCalls tools: [(name: String, parameters: JSONValue)]) {
        checker = TokenBytesChecker(tokenizer: tokenizer,
                                    automaton: IncrementalJSONParser(root: .toolCall(tools.map { ($0.name, SchemaNode($0.parameters)) })))
    }

    /// - Parameter schema: nil for any JSON object (`response_format: json_object`).
    public init(tokenizer: Tokenizer, schema: JSONValue?) {
        checker = TokenBytesChecker(tokenizer: tokenizer, automaton: IncrementalJSONParser(
            root: schema.map(SchemaNode.init) ?? .object(properties: [], required: [], additional: true)))
    }

    public func allows(_ id: Int) -> Bool { checker.allows(id) }
    public mutating func accept(_ id: Int) { checker.accept(id) }
    public var isComplete: Bool { checker.automaton.isComplete }
}

/// A recogniser fed one byte at a time, refusing a byte after which no valid output exists.
protocol ByteAutomaton: Sendable {
    /// Consumes one byte; false (and the automaton is dead) if no valid output starts this way.
    mutating func feed(_ byte: UInt8) -> Bool
    var isComplete: Bool { get }
}

/// Checks candidate tokens against a ``ByteAutomaton`` by their bytes. Special tokens never pass.
struct TokenBytesChecker<Automaton: ByteAutomaton>: Sendable {
    let tokenizer: Tokenizer
    private(set) var automaton: Automaton

    init(tokenizer: Tokenizer, automaton: Automaton) {
        self.tokenizer = tokenizer
        self.automaton = automaton
    }

    func allows(_ id: Int) -> Bool {
        let bytes = tokenizer.bytes(of: id)
        guard !bytes.isEmpty, !tokenizer.isSpecial(id) else { return false }
        var trial = automaton
        for byte in bytes where !trial.feed(byte) { return false }
        return true
    }

    mutating func accept(_ id: Int) {
        for byte in tokenizer.bytes(of: id) { _ = automaton.feed(byte) }
    }
}

/// What a JSON value must look like.
indirect enum SchemaNode: Sendable {
    case any
    case object(properties: [(name: String, node: SchemaNode)], required: Set<String>, additional: Bool)
    case array(SchemaNode)
    case string
    case number(integerOnly: Bool)
    case boolean
    case null
    /// One of these exact serialized values.
    case literals([String])
    /// Any of these nodes (scalar types only; the first one the first byte fits is used).
    case union([SchemaNode])
    /// A function call `{"name": N, "arguments": A}` whose arguments follow the schema of the
    /// function named N; the name comes first.
    case toolCall([(name: String, arguments: SchemaNode)])

    init(_ schema: JSONValue) {
        if let constant = schema["const"] {
            self = .literals([constant.pythonJSON])
            return
        }
        if let values = schema["enum"]?.arrayValue {
            self = .literals(values.map(\.pythonJSON))
            return
        }
        if let options = (schema["anyOf"] ?? schema["oneOf"])?.arrayValue {
            self = .union(options.map(SchemaNode.init))
            return
        }
        if let types = schema["type"]?.arrayValue {
            self = .union(types.map { SchemaNode(.object([("type", $0)] + (schema.objectValue ?? []).filter { $0.0 != "type" })) })
            return
        }
        switch schema["type"]?.stringValue {
        case "object"?:
            let properties = (schema["properties"]?.objectValue ?? []).map { (name: $0.0, node: SchemaNode($0.1)) }
            let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            // Structured outputs are strict: without properties, any key is allowed.
            let additional = properties.isEmpty || schema["additionalProperties"]?.boolValue == true
            self = .object(properties: properties, required: required, additional: additional)
        case "array"?: self = .array(schema["items"].map(SchemaNode.init) ?? .any)
        case "string"?: self = .string
        case "number"?: self = .number(integerOnly: false)
        case "integer"?: self = .number(integerOnly: true)
        case "boolean"?: self = .boolean
        case "null"?: self = .null
        default:
            self = schema["properties"] != nil ? SchemaNode(.object([("type", "object")] + (schema.objectValue ?? []))) : .any
        }
    }
}

/// A byte-at-a-time JSON parser that rejects any byte after which no valid completion exists.
struct IncrementalJSONParser: ByteAutomaton {
    private enum Frame: Sendable {
        /// Expecting a value of this node (whitespace first).
        case value(SchemaNode)
        /// Inside an object: the node, the keys seen, and where we are.
        case object(ObjectState)
        case array(node: SchemaNode, count: Int, expectingValue: Bool)
        /// Inside a string; `candidates` restricts its content (keys, enums) when non-nil.
        case string(content: [UInt8], candidates: [[UInt8]]?, isKey: Bool, escape: EscapeState)
        case number(NumberState, integerOnly: Bool)
        /// The rest of `true`, `false`, `null` or a literal enum value.
        case literal(remaining: [[UInt8]], matched: Int)
    }

    struct ObjectState: Sendable {
        var properties: [(name: String, node: SchemaNode)]
        var required: Set<String>
        var additional: Bool
        var seen: Set<String> = []
        var phase: Phase = .keyOrEnd
        var pendingKey = ""
        /// For a tool call: the functions whose name may be chosen; choosing one adds its arguments.
        var choices: [(name: String, arguments: SchemaNode)]?

        enum Phase: Sendable { case keyOrEnd, key, colon, commaOrEnd }

        func node(for key: String) -> SchemaNode? {
            if let match = properties.first(where: { $0.name == key }) { return match.node }
            return additional ? .any : nil
        }

        var allowedKeys: [[UInt8]]? {
            additional ? nil : properties.map(\.name).filter { !seen.contains($0) }.map { Array($0.utf8) }
        }
    }

    enum EscapeState: Sendable { case none, backslash, unicode(Int) }

    enum NumberState: Sendable { case sign, minus, zero, integer, dot, fraction, exponentMark, exponentSign, exponent }

    private var stack: [Frame]
    private var finished = false
    private var whitespaceRun = 0
    private var failed = false

    /// Runs of whitespace longer than this are refused, so a model cannot pad forever.
    private static let maxWhitespaceRun = 16

    init(root: SchemaNode) {
        stack = [.value(root)]
    }

    var isComplete: Bool {
        if failed { return false }
        if finished { return true }
        // A number at the very end is complete if it has digits.
        if stack.count == 1, case let .number(state, _) = stack[0] {
            return [.zero, .integer, .fraction, .exponent].contains(state)
        }
        // So is a literal that may still grow (`1` of the enum [1, 10]).
        if stack.count == 1, case let .literal(remaining, matched) = stack[0] {
            return remaining.contains { $0.count == matched }
        }
        return false
    }

    /// Consumes one byte; false (and the parser is dead) if no valid document starts this way.
    mutating func feed(_ byte: UInt8) -> Bool {
        guard !failed else { return false }
        if step(byte) { return true }
        failed = true
        return false
    }

    private static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    private mutating func whitespace(_ b: UInt8) -> Bool {
        guard Self.isWhitespace(b) else {
            whitespaceRun = 0
            return false
        }
        whitespaceRun += 1
        return true
    }

    private mutating func step(_ b: UInt8) -> Bool {
        guard let top = stack.last else {
            // After the document: only a little whitespace.
            return whitespace(b) && whitespaceRun <= Self.maxWhitespaceRun
        }
        switch top {
        case .value(let node):
            if whitespace(b) { return whitespaceRun <= Self.maxWhitespaceRun }
            stack.removeLast()
            return begin(node, with: b)

        case .object(var object):
            if whitespace(b) { return whitespaceRun <= Self.maxWhitespaceRun }
            switch object.phase {
            case .keyOrEnd, .key:
                if b == UInt8(ascii: "}"), object.phase == .keyOrEnd, object.required.isSubset(of: object.seen) {
                    stack.removeLast()
                    return closeValue()
                }
                guard b == UInt8(ascii: "\"") else { return false }
                if let allowed = object.allowedKeys, allowed.isEmpty { return false }
                object.phase = .colon
                stack[stack.count - 1] = .object(object)
                stack.append(.string(content: [], candidates: object.allowedKeys, isKey: true, escape: .none))
                return true
            case .colon:
                guard b == UInt8(ascii: ":"), let node = object.node(for: object.pendingKey) else { return false }
                object.seen.insert(object.pendingKey)
                object.phase = .commaOrEnd
                stack[stack.count - 1] = .object(object)
                stack.append(.value(node))
                return true
            case .commaOrEnd:
                // A comma needs a key to follow: none is left once every allowed property is written.
                if b == UInt8(ascii: ","), object.allowedKeys?.isEmpty != true {
                    object.phase = .key
                    stack[stack.count - 1] = .object(object)
                    return true
                }
                guard b == UInt8(ascii: "}"), object.required.isSubset(of: object.seen) else { return false }
                stack.removeLast()
                return closeValue()
            }

        case .array(let node, let count, let expectingValue):
            if whitespace(b) { return whitespaceRun <= Self.maxWhitespaceRun }
            if expectingValue {
                if b == UInt8(ascii: "]") && count == 0 {
                    stack.removeLast()
                    return closeValue()
                }
                stack[stack.count - 1] = .array(node: node, count: count + 1, expectingValue: false)
                return begin(node, with: b)
            }
            if b == UInt8(ascii: ",") {
                stack[stack.count - 1] = .array(node: node, count: count + 1, expectingValue: false)
                stack.append(.value(node))
                return true
            }
            guard b == UInt8(ascii: "]") else { return false }
            stack.removeLast()
            return closeValue()

        case .string(var content, let candidates, let isKey, let escape):
            whitespaceRun = 0
            switch escape {
            case .backslash:
                guard candidates == nil else { return false }  // keys and enums: no escapes
                let simple: [UInt8] = Array("\"\\/bfnrt".utf8)
                if b == UInt8(ascii: "u") {
                    stack[stack.count - 1] = .string(content: content, candidates: nil, isKey: isKey, escape: .unicode(0))
                    return true
                }
                guard simple.contains(b) else { return false }
                stack[stack.count - 1] = .string(content: content, candidates: nil, isKey: isKey, escape: .none)
                return true
            case .unicode(let n):
                guard (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) else { return false }
                stack[stack.count - 1] = .string(content: content, candidates: nil, isKey: isKey,
                                                 escape: n == 3 ? .none : .unicode(n + 1))
                return true
            case .none:
                if b == UInt8(ascii: "\"") {
                    if let candidates, !candidates.contains(content) { return false }
                    stack.removeLast()
                    if isKey, case .object(var object)? = stack.last {
                        object.pendingKey = String(decoding: content, as: UTF8.self)
                        guard object.node(for: object.pendingKey) != nil, !object.seen.contains(object.pendingKey) else {
                            return false
                        }
                        stack[stack.count - 1] = .object(object)
                        return true
                    }
                    if case .object(var object)? = stack.last, let choices = object.choices, object.pendingKey == "name" {
                        let name = String(decoding: content, as: UTF8.self)
                        guard let chosen = choices.first(where: { $0.name == name }) else { return false }
                        object.properties.append((name: "arguments", node: chosen.arguments))
                        stack[stack.count - 1] = .object(object)
                    }
                    return closeValue()
                }
                if b == UInt8(ascii: "\\") {
                    // Keys and enum values are matched as written, without escapes.
                    guard candidates == nil else { return false }
                    stack[stack.count - 1] = .string(content: content, candidates: candidates, isKey: isKey, escape: .backslash)
                    return true
                }
                guard b >= 0x20 else { return false }
                content.append(b)
                if let candidates {
                    let narrowed = candidates.filter { $0.starts(with: content) }
                    guard !narrowed.isEmpty else { return false }
                    stack[stack.count - 1] = .string(content: content, candidates: narrowed, isKey: isKey, escape: .none)
                } else if isKey {
                    stack[stack.count - 1] = .string(content: content, candidates: nil, isKey: isKey, escape: .none)
                } else {
                    // Free strings need not remember their content.
                    stack[stack.count - 1] = .string(content: [], candidates: nil, isKey: false, escape: .none)
                }
                return true
            }

        case .number(let state, let integerOnly):
            if let next = Self.advance(state, b, integerOnly: integerOnly) {
                whitespaceRun = 0
                stack[stack.count - 1] = .number(next, integerOnly: integerOnly)
                return true
            }
            // The number ends here if it is complete; the byte then belongs to the enclosing value.
            guard [.zero, .integer, .fraction, .exponent].contains(state) else { return false }
            stack.removeLast()
            guard closeValue() else { return false }
            return step(b)

        case .literal(let remaining, let matched):
            let narrowed = remaining.filter { $0.count > matched && $0[matched] == b }
            guard !narrowed.isEmpty else {
                // A literal that is complete here (`1` of the enum [1, 10]) ends; the byte belongs to what follows.
                guard remaining.contains(where: { $0.count == matched }) else { return false }
                stack.removeLast()
                guard closeValue() else { return false }
                return step(b)
            }
            whitespaceRun = 0
            if narrowed.allSatisfy({ $0.count == matched + 1 }) {
                stack.removeLast()
                return closeValue()
            }
            stack[stack.count - 1] = .literal(remaining: narrowed, matched: matched + 1)
            return true
        }
    }

    /// Starts a value of `node` whose first byte is `b`.
    private mutating func begin(_ node: SchemaNode, with b: UInt8) -> Bool {
        whitespaceRun = 0
        switch node {
        case .any:
            switch b {
            case UInt8(ascii: "{"): return begin(.object(properties: [], required: [], additional: true), with: b)
            case UInt8(ascii: "["): return begin(.array(.any), with: b)
            case UInt8(ascii: "\""): return begin(.string, with: b)
            case UInt8(ascii: "t"), UInt8(ascii: "f"): return begin(.boolean, with: b)
            case UInt8(ascii: "n"): return begin(.null, with: b)
            default: return begin(.number(integerOnly: false), with: b)
            }
        case .toolCall(let options):
            guard b == UInt8(ascii: "{") else { return false }
            let names = SchemaNode.literals(options.map { JSONValue.string($0.name).pythonJSON })
            stack.append(.object(ObjectState(properties: [("name", names)], required: ["name", "arguments"],
                                             additional: false, choices: options)))
            return true
        case let .object(properties, required, additional):
            guard b == UInt8(ascii: "{") else { return false }
            stack.append(.object(ObjectState(properties: properties, required: required, additional: additional)))
            return true
        case .array(let items):
            guard b == UInt8(ascii: "[") else { return false }
            stack.append(.array(node: items, count: 0, expectingValue: true))
            return true
        case .string:
            guard b == UInt8(ascii: "\"") else { return false }
            stack.append(.string(content: [], candidates: nil, isKey: false, escape: .none))
            return true
        case .number(let integerOnly):
            guard let state = Self.advance(.sign, b, integerOnly: integerOnly) else { return false }
            stack.append(.number(state, integerOnly: integerOnly))
            return true
        case .boolean:
            stack.append(.literal(remaining: [Array("true".utf8), Array("false".utf8)], matched: 0))
            return step(b)
        case .null:
            stack.append(.literal(remaining: [Array("null".utf8)], matched: 0))
            return step(b)
        case .literals(let values):
            // String enums are typed as strings with candidates; other literals byte by byte.
            let strings = values.filter { $0.hasPrefix("\"") }
            if b == UInt8(ascii: "\""), !strings.isEmpty {
                let contents = strings.compactMap { (try? JSONValue.parse($0))?.stringValue }.map { Array($0.utf8) }
                stack.append(.string(content: [], candidates: contents, isKey: false, escape: .none))
                return true
            }
            let others = values.filter { !$0.hasPrefix("\"") }.map { Array($0.utf8) }
            guard !others.isEmpty else { return false }
            stack.append(.literal(remaining: others, matched: 0))
            return step(b)
        case .union(let options):
            for option in options {
                var trial = self
                if trial.begin(option, with: b) {
                    self = trial
                    return true
                }
            }
            return false
        }
    }

    /// A value just ended: the enclosing frame decides what comes next.
    private mutating func closeValue() -> Bool {
        if stack.isEmpty { finished = true }
        return true
    }

    private static func advance(_ state: NumberState, _ b: UInt8, integerOnly: Bool) -> NumberState? {
        let digit = b >= 0x30 && b <= 0x39
        switch state {
        case .sign:
            if b == UInt8(ascii: "-") { return .minus }
            return b == 0x30 ? .zero : digit ? .integer : nil
        case .minus:
            return b == 0x30 ? .zero : digit ? .integer : nil
        case .zero:
            if integerOnly { return nil }
            return b == UInt8(ascii: ".") ? .dot : (b | 0x20) == UInt8(ascii: "e") ? .exponentMark : nil
        case .integer:
            if digit { return .integer }
            if integerOnly { return nil }
            return b == UInt8(ascii: ".") ? .dot : (b | 0x20) == UInt8(ascii: "e") ? .exponentMark : nil
        case .dot: return digit ? .fraction : nil
        case .fraction:
            if digit { return .fraction }
            return (b | 0x20) == UInt8(ascii: "e") ? .exponentMark : nil
        case .exponentMark:
            return b == UInt8(ascii: "+") || b == UInt8(ascii: "-") ? .exponentSign : digit ? .exponent : nil
        case .exponentSign, .exponent: return digit ? .exponent : nil
        }
    }
}
