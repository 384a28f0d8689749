import QwenTokenizer

/// Keeps generated text a valid JSON document — an object, or one matching a JSON schema
/// (the subset OpenAI's structured outputs use: `type` object/array/string/number/integer/
/// boolean/null, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
/// `anyOf`, local `$ref`s) — by checking each candidate token's bytes against an incremental
/// parser (a pushdown automaton) before it is accepted.
///
/// Object keys are limited to the schema's properties, each at most once; `}` is allowed only
/// after every required property; string enums are matched as they are written. The schema is
/// compiled first (``CompiledJSONSchema``), so the work per byte does not grow with the schema.
public struct JSONConstraint: TokenConstraint {
    private var checker: TokenBytesChecker<IncrementalJSONParser>

    /// A call to one of `tools` (name, JSON-schema parameters): `{"name": …, "arguments": {…}}`,
    /// the arguments matching the chosen function's parameters (`tool_choice: required`).
    /// The schemas are compiled without limits; see ``init(tokenizer:compiledToolCalls:)``.
    public init(tokenizer: Tokenizer, toolCalls tools: [(name: String, parameters: JSONValue)]) {
        self.init(tokenizer: tokenizer, root: .toolCall(ToolCallSchema(tools.map { ($0.name, SchemaNode($0.parameters)) })))
    }

    /// A call to one of `tools`, whose parameter schemas are already compiled (and checked against limits).
    public init(tokenizer: Tokenizer, compiledToolCalls tools: [(name: String, parameters: CompiledJSONSchema)]) {
        self.init(tokenizer: tokenizer, root: .toolCall(ToolCallSchema(tools.map { ($0.name, $0.parameters.root) })))
    }

    /// - Parameter schema: nil for any JSON object (`response_format: json_object`). Compiled
    ///   without limits; see ``init(tokenizer:compiled:)``.
    public init(tokenizer: Tokenizer, schema: JSONValue?) {
        self.init(tokenizer: tokenizer, root: schema.map(SchemaNode.init) ?? .object(.anyKeys))
    }

    /// A document matching an already compiled (and checked) schema.
    public init(tokenizer: Tokenizer, compiled schema: CompiledJSONSchema) {
        self.init(tokenizer: tokenizer, root: schema.root)
    }

    private init(tokenizer: Tokenizer, root: SchemaNode) {
        checker = TokenBytesChecker(tokenizer: tokenizer, automaton: IncrementalJSONParser(root: root))
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

/// What a JSON value must look like: a schema compiled by ``SchemaCompiler``.
indirect enum SchemaNode: Sendable {
    case any
    /// Nothing: no value is valid (the items of an array that must stay empty).
    case never
    case object(ObjectSchema)
    case array(SchemaNode)
    case string
    case number(integerOnly: Bool)
    /// One of these exact values (`enum`, `const`, booleans, null).
    case literals(LiteralSet)
    /// Any of these nodes (the first one the first byte fits is used).
    case union([SchemaNode])
    /// A function call `{"name": N, "arguments": A}` whose arguments follow the schema of the
    /// function named N; the name comes first.
    case toolCall(ToolCallSchema)

    /// Compiles `schema` without limits, for schemas the program wrote itself; one that cannot be
    /// compiled (unsatisfiable, an unresolvable `$ref`) allows nothing.
    init(_ schema: JSONValue) {
        self.init(schema, document: schema)
    }

    /// Compiles `schema`, a part of `document` (whose `$defs` its `$ref`s name), without limits.
    init(_ schema: JSONValue, document: JSONValue) {
        var compiler = SchemaCompiler(document: document, limits: .unlimited)
        self = (try? compiler.compile(schema, path: "#", depth: 0)) ?? .never
    }
}

/// The functions a tool call may name, by name, with the schema of each one's arguments.
struct ToolCallSchema: Sendable {
    /// The names, as a string enum; the trie's word indices index `arguments`.
    let names: LiteralSet
    let arguments: [SchemaNode]
    /// The call object: `name` then `arguments`, both required.
    let object: ObjectSchema

    init(_ tools: [(name: String, arguments: SchemaNode)]) {
        names = LiteralSet(strings: tools.map { Array($0.name.utf8) }, others: [])
        var arguments = [SchemaNode](repeating: .never, count: names.strings.words.count)
        for tool in tools.reversed() {
            if let index = names.strings.index(of: Array(tool.name.utf8)) { arguments[index] = tool.arguments }
        }
        self.arguments = arguments
        object = ObjectSchema(properties: [("name", .literals(names)), ("arguments", .any)], required: ["name", "arguments"],
                              additional: false)
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
        /// Inside a free string; `content` is kept for keys only.
        case string(content: [UInt8], isKey: Bool, escape: EscapeState)
        /// Inside a string that must be one of a trie's words (a property name, an enum string),
        /// at `node`. For a key, `excluded` lists the word indices no longer allowed.
        case word(ByteTrie, node: Int32, excluded: [Int]?)
        case number(NumberState, integerOnly: Bool)
        /// Inside `true`, `false`, `null` or a non-string enum value: a trie of them, at `node`.
        case literal(ByteTrie, node: Int32)
    }

    struct ObjectState: Sendable {
        var schema: ObjectSchema
        var seen: Set<String> = []
        /// Property indices (in `schema.keys`) already written.
        var seenIndices: [Int] = []
        var phase: Phase = .keyOrEnd
        var pendingKey = ""
        /// For a tool call: the functions whose name may be chosen, and the chosen one's arguments.
        var choices: ToolCallSchema?
        var chosenArguments: SchemaNode?

        enum Phase: Sendable { case keyOrEnd, key, colon, commaOrEnd }

        init(schema: ObjectSchema, choices: ToolCallSchema? = nil) {
            self.schema = schema
            self.choices = choices
        }

        func node(for key: String) -> SchemaNode? {
            if choices != nil, key == "arguments" { return chosenArguments }
            return schema.node(for: key)
        }

        /// Property indices that may not be written now: those seen, and a tool call's
        /// `arguments` until its name is chosen.
        var excludedKeys: [Int] {
            guard choices != nil, chosenArguments == nil, let arguments = schema.keys.index(of: Array("arguments".utf8)) else {
                return seenIndices
            }
            return seenIndices + [arguments]
        }

        /// Whether another key may follow.
        var acceptsKey: Bool {
            schema.additional || schema.keys.hasWord(below: ByteTrie.root, excluding: excludedKeys)
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
        if stack.count == 1, case let .literal(trie, node) = stack[0] {
            return trie.terminal(node) != nil
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
                if b == UInt8(ascii: "}"), object.phase == .keyOrEnd, object.schema.required.isSubset(of: object.seen) {
                    stack.removeLast()
                    return closeValue()
                }
                guard b == UInt8(ascii: "\""), object.acceptsKey else { return false }
                object.phase = .colon
                stack[stack.count - 1] = .object(object)
                if object.schema.additional {
                    stack.append(.string(content: [], isKey: true, escape: .none))
                } else {
                    stack.append(.word(object.schema.keys, node: ByteTrie.root, excluded: object.excludedKeys))
                }
                return true
            case .colon:
                guard b == UInt8(ascii: ":"), let node = object.node(for: object.pendingKey) else { return false }
                object.seen.insert(object.pendingKey)
                if let index = object.schema.keys.index(of: Array(object.pendingKey.utf8)) { object.seenIndices.append(index) }
                object.phase = .commaOrEnd
                stack[stack.count - 1] = .object(object)
                stack.append(.value(node))
                return true
            case .commaOrEnd:
                // A comma needs a key to follow: none is left once every allowed property is written.
                if b == UInt8(ascii: ","), object.acceptsKey {
                    object.phase = .key
                    stack[stack.count - 1] = .object(object)
                    return true
                }
                guard b == UInt8(ascii: "}"), object.schema.required.isSubset(of: object.seen) else { return false }
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

        case .string(var content, let isKey, let escape):
            whitespaceRun = 0
            switch escape {
            case .backslash:
                let simple: [UInt8] = Array("\"\\/bfnrt".utf8)
                if b == UInt8(ascii: "u") {
                    stack[stack.count - 1] = .string(content: content, isKey: isKey, escape: .unicode(0))
                    return true
                }
                guard simple.contains(b) else { return false }
                stack[stack.count - 1] = .string(content: content, isKey: isKey, escape: .none)
                return true
            case .unicode(let n):
                guard (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) else { return false }
                stack[stack.count - 1] = .string(content: content, isKey: isKey, escape: n == 3 ? .none : .unicode(n + 1))
                return true
            case .none:
                if b == UInt8(ascii: "\"") {
                    stack.removeLast()
                    if isKey { return closeKey(String(decoding: content, as: UTF8.self)) }
                    return closeValue()
                }
                if b == UInt8(ascii: "\\") {
                    stack[stack.count - 1] = .string(content: content, isKey: isKey, escape: .backslash)
                    return true
                }
                guard b >= 0x20 else { return false }
                // Free values need not remember their content.
                if isKey {
                    content.append(b)
                    stack[stack.count - 1] = .string(content: content, isKey: true, escape: .none)
                }
                return true
            }

        case let .word(trie, node, excluded):
            whitespaceRun = 0
            if b == UInt8(ascii: "\"") {
                guard let index = trie.terminal(node), excluded?.contains(index) != true else { return false }
                stack.removeLast()
                if excluded != nil { return closeKey(String(decoding: trie.words[index], as: UTF8.self)) }
                if case .object(var object)? = stack.last, let choices = object.choices, object.pendingKey == "name" {
                    object.chosenArguments = choices.arguments[index]
                    stack[stack.count - 1] = .object(object)
                }
                return closeValue()
            }
            // Keys and enum values are matched as written, without escapes.
            guard b >= 0x20, b != UInt8(ascii: "\\"), let next = trie.child(node, b) else { return false }
            if let excluded, !trie.hasWord(below: next, excluding: excluded) { return false }
            stack[stack.count - 1] = .word(trie, node: next, excluded: excluded)
            return true

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

        case let .literal(trie, node):
            guard let next = trie.child(node, b) else {
                // A literal that is complete here (`1` of the enum [1, 10]) ends; the byte belongs to what follows.
                guard trie.terminal(node) != nil else { return false }
                stack.removeLast()
                guard closeValue() else { return false }
                return step(b)
            }
            whitespaceRun = 0
            if trie.terminal(next) != nil, !trie.hasChildren(next) {
                stack.removeLast()
                return closeValue()
            }
            stack[stack.count - 1] = .literal(trie, node: next)
            return true
        }
    }

    /// A key just ended: the object (now on top) expects its colon.
    private mutating func closeKey(_ key: String) -> Bool {
        guard case .object(var object)? = stack.last, object.node(for: key) != nil, !object.seen.contains(key) else {
            return false
        }
        object.pendingKey = key
        stack[stack.count - 1] = .object(object)
        return true
    }

    /// Starts a value of `node` whose first byte is `b`.
    private mutating func begin(_ node: SchemaNode, with b: UInt8) -> Bool {
        whitespaceRun = 0
        switch node {
        case .never:
            return false
        case .any:
            switch b {
            case UInt8(ascii: "{"): return begin(.object(.anyKeys), with: b)
            case UInt8(ascii: "["): return begin(.array(.any), with: b)
            case UInt8(ascii: "\""): return begin(.string, with: b)
            case UInt8(ascii: "t"), UInt8(ascii: "f"): return begin(.literals(.booleans), with: b)
            case UInt8(ascii: "n"): return begin(.literals(.null), with: b)
            default: return begin(.number(integerOnly: false), with: b)
            }
        case .toolCall(let options):
            guard b == UInt8(ascii: "{") else { return false }
            stack.append(.object(ObjectState(schema: options.object, choices: options)))
            return true
        case .object(let schema):
            guard b == UInt8(ascii: "{") else { return false }
            stack.append(.object(ObjectState(schema: schema)))
            return true
        case .array(let items):
            guard b == UInt8(ascii: "[") else { return false }
            stack.append(.array(node: items, count: 0, expectingValue: true))
            return true
        case .string:
            guard b == UInt8(ascii: "\"") else { return false }
            stack.append(.string(content: [], isKey: false, escape: .none))
            return true
        case .number(let integerOnly):
            guard let state = Self.advance(.sign, b, integerOnly: integerOnly) else { return false }
            stack.append(.number(state, integerOnly: integerOnly))
            return true
        case .literals(let values):
            // String enums are typed as strings matched against a trie; other literals byte by byte.
            if b == UInt8(ascii: "\"") {
                guard !values.strings.isEmpty else { return false }
                stack.append(.word(values.strings, node: ByteTrie.root, excluded: nil))
                return true
            }
            guard !values.others.isEmpty else { return false }
            stack.append(.literal(values.others, node: ByteTrie.root))
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
