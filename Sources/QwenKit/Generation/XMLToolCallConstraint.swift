import QwenTokenizer

/// Keeps generated text one tool call in Qwen3.5's XML form to one of the given functions, written
/// the way the chat template writes calls (`tool_choice: required` or a named function):
///
///     <tool_call>\n<function=NAME>\n
///     <parameter=KEY>\nVALUE\n</parameter>\n        once per parameter
///     </function>\n</tool_call>
///
/// NAME is one of the functions. KEY is one of the function's schema properties, each at most
/// once, and `</function>` comes only after every required one; a schema without properties takes
/// any key (once). VALUE follows the property's schema: a string is free text — one of its
/// values when the schema has an `enum` or `const` — and so is a value without a schema; other
/// types are JSON checked against the schema by the automaton of ``JSONConstraint``. No value may
/// contain `</parameter>` other than as its closing tag, so ``XMLToolCallReader`` reads back
/// exactly what was generated. Up to 8 whitespace bytes may come before `<tool_call>`; when the
/// prompt opened a `<think>` block, reasoning up to `</think>` comes first, unconstrained.
public struct XMLToolCallConstraint: TokenConstraint {
    private var checker: TokenBytesChecker<XMLToolCallAutomaton>

    /// - Parameters:
    ///   - tools: the functions the call may name, with their JSON-schema parameters.
    ///   - startsInReasoning: the prompt ends inside a `<think>` block.
    public init(tokenizer: Tokenizer, toolCalls tools: [(name: String, parameters: JSONValue)],
                startsInReasoning: Bool = false) {
        checker = TokenBytesChecker(tokenizer: tokenizer,
                                    automaton: XMLToolCallAutomaton(tools: tools, startsInReasoning: startsInReasoning))
    }

    public func allows(_ id: Int) -> Bool { checker.allows(id) }
    public mutating func accept(_ id: Int) { checker.accept(id) }
    public var isComplete: Bool { checker.automaton.isComplete }
}

/// The byte-level automaton behind ``XMLToolCallConstraint``.
struct XMLToolCallAutomaton: ByteAutomaton {
    struct Function: Sendable {
        var name: String
        /// Each property's schema, and its compiled form for JSON values (compiled once, here).
        var properties: [(name: String, schema: JSONValue, node: SchemaNode)]
        var required: Set<String>
    }

    private enum Phase: Sendable {
        /// Free reasoning; `matched` bytes of `</think>` seen at its end.
        case reasoning(matched: Int)
        /// Whitespace before `<tool_call>`.
        case leadingSpace(count: Int)
        /// One of `candidates` (byte strings), `matched` bytes in.
        case choice(candidates: [[UInt8]], matched: Int, purpose: Purpose)
        /// A parameter key after `<parameter=`, for a schema without properties.
        case freeKey([UInt8])
        /// A free-text value.
        case text
        /// A JSON value.
        case json(IncrementalJSONParser)
        case done
        /// A byte was refused: nothing more is.
        case dead
    }

    /// What a completed choice means.
    private enum Purpose: Sendable {
        case header, function, nextTag, value, closing
    }

    private let functions: [Function]
    private var phase: Phase
    private var function: Function?
    private var seen: Set<String> = []
    /// Bytes of `\n</parameter>` and of `</parameter>` matched at the end of the value so far.
    private var closeMatched = 0, tagMatched = 0

    private static let thinkClose = Array("</think>".utf8)
    private static let header = Array("<tool_call>\n<function=".utf8)
    private static let parameterOpen = Array("<parameter=".utf8)
    private static let parameterClose = Array("</parameter>".utf8)
    private static let ending = Array("</function>\n</tool_call>".utf8)
    private static let newline = UInt8(ascii: "\n")

    init(tools: [(name: String, parameters: JSONValue)], startsInReasoning: Bool) {
        functions = tools.map { tool in
            let properties = (tool.parameters["properties"]?.objectValue ?? []).map {
                (name: $0.0, schema: $0.1, node: SchemaNode($0.1, document: tool.parameters))
            }
            let required = Set((tool.parameters["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            // A required key the schema does not list could never be written; it is not waited for.
            return Function(name: tool.name, properties: properties,
                            required: required.intersection(properties.map(\.name)))
        }
        phase = startsInReasoning ? .reasoning(matched: 0) : .leadingSpace(count: 0)
    }

    var isComplete: Bool {
        if case .done = phase { return true }
        return false
    }

    mutating func feed(_ byte: UInt8) -> Bool {
        if step(byte) { return true }
        phase = .dead
        return false
    }

    private mutating func step(_ b: UInt8) -> Bool {
        switch phase {
        case .reasoning(let matched):
            if b == Self.thinkClose[matched] {
                phase = matched + 1 == Self.thinkClose.count ? .leadingSpace(count: 0) : .reasoning(matched: matched + 1)
            } else {
                phase = .reasoning(matched: b == Self.thinkClose[0] ? 1 : 0)
            }
            return true

        case .leadingSpace(let count):
            if [0x20, 0x0A, 0x0D, 0x09].contains(b) {
                phase = .leadingSpace(count: count + 1)
                return count < 8
            }
            phase = .choice(candidates: [Self.header], matched: 0, purpose: .header)
            return step(b)

        case let .choice(candidates, matched, purpose):
            // Most bytes fit no candidate; refuse those before building anything.
            guard candidates.contains(where: { $0.count > matched && $0[matched] == b }) else { return false }
            let narrowed = candidates.filter { $0.count > matched && $0[matched] == b }
            guard !narrowed.isEmpty else { return false }
            // Candidates end in a terminator (`>`, a newline), so none is a prefix of another; equal ones may repeat.
            if narrowed.allSatisfy({ $0.count == matched + 1 }) {
                return chose(narrowed[0], purpose: purpose)
            }
            phase = .choice(candidates: narrowed, matched: matched + 1, purpose: purpose)
            return true

        case .freeKey(var key):
            if b == UInt8(ascii: ">") {
                let name = String(decoding: key, as: UTF8.self)
                guard !key.isEmpty, seen.insert(name).inserted else { return false }
                phase = .choice(candidates: [[Self.newline]], matched: 0, purpose: .value)
                return true
            }
            guard b != UInt8(ascii: "<"), b != Self.newline, key.count < 64 else { return false }
            key.append(b)
            phase = .freeKey(key)
            return true

        case .text:
            trackClosingTag(b)
            if tagMatched == Self.parameterClose.count {
                // The value ends at its closing tag, which must follow a newline.
                guard closeMatched == Self.parameterClose.count + 1 else { return false }
                phase = .choice(candidates: [[Self.newline]], matched: 0, purpose: .closing)
            }
            return true

        case .json(var parser):
            if b == Self.newline, parser.isComplete {
                phase = .choice(candidates: [Self.parameterClose + [Self.newline]], matched: 0, purpose: .closing)
                return true
            }
            trackClosingTag(b)
            guard tagMatched < Self.parameterClose.count, parser.feed(b) else { return false }
            phase = .json(parser)
            return true

        case .done, .dead:
            return false
        }
    }

    /// A choice is complete: `chosen` is the whole candidate.
    private mutating func chose(_ chosen: [UInt8], purpose: Purpose) -> Bool {
        switch purpose {
        case .header:
            phase = .choice(candidates: functions.map { Array($0.name.utf8) + Array(">\n".utf8) }, matched: 0,
                            purpose: .function)
        case .function:
            let name = String(decoding: chosen.dropLast(2), as: UTF8.self)
            function = functions.first { $0.name == name }
            phase = nextTag()
        case .closing:
            phase = nextTag()
        case .nextTag:
            if chosen == Self.ending {
                phase = .done
            } else if chosen == Self.parameterOpen {
                phase = .freeKey([])
            } else {
                // `<parameter=KEY>\n`
                let key = String(decoding: chosen.dropFirst(Self.parameterOpen.count).dropLast(2), as: UTF8.self)
                seen.insert(key)
                let property = function?.properties.first { $0.name == key }
                startValue(schema: property?.schema, node: property?.node)
            }
        case .value:
            // The newline after a free key's `>`.
            startValue(schema: nil, node: nil)
        }
        return true
    }

    /// `<parameter=KEY>\n` for each key still open, and the ending once every required key is written.
    private func nextTag() -> Phase {
        guard let function else { return .done }
        var candidates: [[UInt8]] = []
        if function.properties.isEmpty {
            candidates.append(Self.parameterOpen)
        } else {
            for property in function.properties where !seen.contains(property.name) {
                candidates.append(Self.parameterOpen + Array(property.name.utf8) + Array(">\n".utf8))
            }
        }
        if function.required.isSubset(of: seen) { candidates.append(Self.ending) }
        return .choice(candidates: candidates, matched: 0, purpose: .nextTag)
    }

    /// A value of `schema`, right after the newline that follows `<parameter=KEY>`.
    private mutating func startValue(schema: JSONValue?, node: SchemaNode?) {
        let types = XMLParameterValue.types(schema)
        // The newline before the value counts towards `\n</parameter>` (an empty value).
        closeMatched = 1
        tagMatched = 0
        if let schema, types == ["string"],
           let values = schema["enum"]?.arrayValue ?? schema["const"].map({ [$0] }) {
            let strings = values.compactMap(\.stringValue).filter { !$0.contains("</parameter>") }
            if !strings.isEmpty {
                // The value, its closing tag and newline in one choice; the next tag follows.
                phase = .choice(candidates: strings.map { Array($0.utf8) + [Self.newline] + Self.parameterClose + [Self.newline] },
                                matched: 0, purpose: .closing)
                return
            }
        }
        if let node, !types.isEmpty, !types.contains("string") {
            phase = .json(IncrementalJSONParser(root: node))
        } else {
            phase = .text
        }
    }

    /// Follows `\n</parameter>` and `</parameter>` through the value.
    private mutating func trackClosingTag(_ b: UInt8) {
        let withNewline = [Self.newline] + Self.parameterClose
        closeMatched = closeMatched < withNewline.count && b == withNewline[closeMatched] ? closeMatched + 1
            : (b == Self.newline ? 1 : 0)
        tagMatched = tagMatched < Self.parameterClose.count && b == Self.parameterClose[tagMatched] ? tagMatched + 1
            : (b == Self.parameterClose[0] ? 1 : 0)
    }
}
