import Foundation

/// Reads one tool call in Qwen3.5's XML form as its text arrives: everything after `<tool_call>`,
/// up to and including `</tool_call>`.
///
///     <function=NAME>
///     <parameter=KEY>
///     VALUE                 any text, over any number of lines
///     </parameter>
///     …                     more parameters, in the order the model wrote them
///     </function>
///     </tool_call>
///
/// Whitespace between tags is free, and `</function>` may be left out before `</tool_call>`. A
/// value is the text between its tags less exactly one leading and one trailing newline (the
/// template writes `\n{value}\n`); ``XMLParameterValue`` gives it its type. A body that starts
/// with `{` is read as a JSON call (`{"name": …, "arguments": …}`), which these models sometimes
/// write instead. Anything else — text between tags, a tag left open, a parameter given twice, a
/// function that was not offered — makes the call broken: its text is then content.
struct XMLToolCallReader {
    enum Phase: Equatable {
        /// Before `<function=NAME>`.
        case function
        /// Between parameters: `<parameter=KEY>`, `</function>` or `</tool_call>` comes next.
        case parameters
        /// Inside the value of ``openKey``.
        case value
        /// After `</function>`, before `</tool_call>`.
        case afterFunction
        /// A JSON body, read whole at `</tool_call>`.
        case jsonBody
        case closed
        case broken
    }

    private(set) var phase = Phase.function
    /// The function, once its tag is read (for a JSON body: once the call is closed).
    private(set) var name: String?
    /// The parameters read whole, with their values as written (less the format's two newlines).
    private(set) var parameters: [(key: String, value: String)] = []
    /// The parameter whose value is being read.
    private(set) var openKey: String?
    private var jsonArguments: JSONValue?
    private let tools: OfferedTools
    /// The input so far; `position` is the first byte not yet read.
    private(set) var input: [UInt8] = []
    private var position = 0
    /// Where the open value starts, and where to look next for the tag that ends it.
    private var valueStart = 0, searchFrom = 0

    /// What ``takeArgumentsFragment()`` has handed out: parameters whole, bytes of the open value
    /// (when its opening quote is out), and the closing brace.
    private var fragmentParameters = 0
    private var fragmentOpenBytes: Int?
    private var fragmentClosed = false

    init(tools: OfferedTools) {
        self.tools = tools
    }

    /// The number of input bytes the call took, through `</tool_call>` (once closed).
    var consumed: Int { position }

    /// The call, once closed.
    var call: ToolCall? {
        guard phase == .closed, let name else { return nil }
        if let jsonArguments { return ToolCall(name: name, arguments: jsonArguments) }
        return ToolCall(name: name, arguments: .object(parameters.map { ($0.key, typedValue($0.key, $0.value)) }))
    }

    mutating func read(_ piece: some Sequence<UInt8>) {
        input.append(contentsOf: piece)
        advance()
    }

    /// The input has ended: a call that is still open is broken.
    mutating func finish() {
        if phase != .closed { phase = .broken }
    }

    /// The arguments' JSON text written since the last call: a parameter once its value is
    /// complete, a string-typed value as it grows, the closing brace at `</function>`. The
    /// fragments of a closed call add up to its `arguments.pythonJSON`; nothing comes before
    /// ``name`` is known.
    mutating func takeArgumentsFragment() -> String {
        guard let name, phase != .broken else { return "" }
        if let jsonArguments {
            guard !fragmentClosed else { return "" }
            fragmentClosed = true
            return jsonArguments.pythonJSON
        }
        var out = ""
        while fragmentParameters < parameters.count {
            let (key, value) = parameters[fragmentParameters]
            if let sent = fragmentOpenBytes {
                out += Self.escaped(String(decoding: value.utf8.dropFirst(sent), as: UTF8.self)) + "\""
                fragmentOpenBytes = nil
            } else {
                out += (fragmentParameters == 0 ? "{" : ", ") + JSONValue.string(key).pythonJSON + ": "
                    + typedValue(key, value).pythonJSON
            }
            fragmentParameters += 1
        }
        if phase == .value, let key = openKey,
           XMLParameterValue.types(tools.schema(ofParameter: key, in: name)) == ["string"] {
            if fragmentOpenBytes == nil {
                out += (fragmentParameters == 0 ? "{" : ", ") + JSONValue.string(key).pythonJSON + ": \""
                fragmentOpenBytes = 0
            }
            let grown = openValuePrefix.dropFirst(fragmentOpenBytes ?? 0)
            out += Self.escaped(String(decoding: grown, as: UTF8.self))
            fragmentOpenBytes = (fragmentOpenBytes ?? 0) + grown.count
        }
        if phase == .afterFunction || phase == .closed, !fragmentClosed {
            out += parameters.isEmpty ? "{}" : "}"
            fragmentClosed = true
        }
        return out
    }

    // MARK: - Reading

    private static let functionOpen = Array("<function=".utf8)
    private static let parameterOpen = Array("<parameter=".utf8)
    private static let parameterClose = Array("</parameter>".utf8)
    private static let functionClose = Array("</function>".utf8)
    static let callClose = Array("</tool_call>".utf8)
    private static let newline = UInt8(ascii: "\n")

    private enum Match {
        case matched(String)
        case needMore
        case mismatch
    }

    private mutating func advance() {
        while true {
            switch phase {
            case .closed, .broken:
                return
            case .function:
                skipWhitespace()
                guard position < input.count else { return }
                if input[position] == UInt8(ascii: "{") {
                    phase = .jsonBody
                    searchFrom = position
                    continue
                }
                switch openTag(Self.functionOpen) {
                case .needMore: return
                case .mismatch: phase = .broken
                case .matched(let function):
                    guard tools.offers(function) else {
                        phase = .broken
                        return
                    }
                    name = function
                    phase = .parameters
                }
            case .parameters:
                skipWhitespace()
                switch openTag(Self.parameterOpen) {
                case .matched(let key):
                    guard !parameters.contains(where: { $0.key == key }) else {
                        phase = .broken
                        return
                    }
                    openKey = key
                    valueStart = position
                    searchFrom = position
                    phase = .value
                case .needMore: return
                case .mismatch:
                    switch (literal(Self.functionClose), literal(Self.callClose)) {
                    case (.matched, _): phase = .afterFunction
                    case (_, .matched): phase = .closed
                    case (.needMore, _), (_, .needMore): return
                    default: phase = .broken
                    }
                }
            case .value:
                guard let end = find(Self.parameterClose, from: searchFrom) else {
                    searchFrom = max(valueStart, input.count - Self.parameterClose.count + 1)
                    return
                }
                var value = input[valueStart..<end]
                if value.first == Self.newline { value = value.dropFirst() }
                if value.last == Self.newline { value = value.dropLast() }
                parameters.append((openKey ?? "", String(decoding: value, as: UTF8.self)))
                openKey = nil
                position = end + Self.parameterClose.count
                phase = .parameters
            case .afterFunction:
                skipWhitespace()
                switch literal(Self.callClose) {
                case .matched: phase = .closed
                case .needMore: return
                case .mismatch: phase = .broken
                }
            case .jsonBody:
                guard let end = find(Self.callClose, from: searchFrom) else {
                    searchFrom = max(position, input.count - Self.callClose.count + 1)
                    return
                }
                guard let call = AssistantOutput.toolCall(from: String(decoding: input[position..<end], as: UTF8.self)),
                      tools.offers(call.name) else {
                    phase = .broken
                    return
                }
                name = call.name
                jsonArguments = call.arguments
                position = end + Self.callClose.count
                phase = .closed
            }
        }
    }

    /// The open value so far, without its leading newline and without a tail that may yet turn
    /// out to be the closing newline and tag.
    private var openValuePrefix: ArraySlice<UInt8> {
        var value = input[valueStart...]
        guard let first = value.first else { return [] }
        if first == Self.newline { value = value.dropFirst() }
        var held = 0
        for marker in [[Self.newline] + Self.parameterClose, Self.parameterClose] {
            for length in stride(from: min(marker.count - 1, value.count), to: held, by: -1)
            where value.suffix(length).elementsEqual(marker.prefix(length)) {
                held = length
                break
            }
        }
        return value.dropLast(held)
    }

    private mutating func skipWhitespace() {
        while position < input.count, [0x20, 0x0A, 0x0D, 0x09].contains(input[position]) { position += 1 }
    }

    /// Whether `marker` comes next; on a match, reads past it.
    private mutating func literal(_ marker: [UInt8]) -> Match {
        let available = input[position...].prefix(marker.count)
        guard available.elementsEqual(marker.prefix(available.count)) else { return .mismatch }
        guard available.count == marker.count else { return .needMore }
        position += marker.count
        return .matched("")
    }

    /// `open` then a name up to `>` (non-empty, on one line, without `<`); on a match, reads past it.
    private mutating func openTag(_ open: [UInt8]) -> Match {
        let start = position
        switch literal(open) {
        case .matched: break
        case let other: return other
        }
        let nameStart = position
        position = start
        var index = nameStart
        while index < input.count, input[index] != UInt8(ascii: ">") {
            if [UInt8(ascii: "<"), Self.newline].contains(input[index]) || index - nameStart > 256 { return .mismatch }
            index += 1
        }
        guard index < input.count else { return .needMore }
        guard index > nameStart else { return .mismatch }
        position = index + 1
        return .matched(String(decoding: input[nameStart..<index], as: UTF8.self))
    }

    private func find(_ marker: [UInt8], from start: Int) -> Int? {
        guard input.count >= marker.count else { return nil }
        var index = start
        while index + marker.count <= input.count {
            if input[index] == marker[0], input[index..<(index + marker.count)].elementsEqual(marker) { return index }
            index += 1
        }
        return nil
    }

    private func typedValue(_ key: String, _ value: String) -> JSONValue {
        XMLParameterValue.decode(value, schema: name.flatMap { tools.schema(ofParameter: key, in: $0) })
    }

    /// The inside of a JSON string literal for `text`, as `pythonJSON` writes it.
    private static func escaped(_ text: String) -> String {
        String(JSONValue.string(text).pythonJSON.dropFirst().dropLast())
    }
}

/// Types an XML parameter value by the offered tool's JSON schema (`type`, a list of types, or the
/// types under `anyOf`/`oneOf`; an `enum` or `const` of strings counts as a string):
///
/// - a string type: the text as written (`null` or `None` give null when the type list allows it);
/// - only other types (number, integer, boolean, array, object, null): the trimmed text read as
///   JSON, with Python's `True`, `False` and `None` (the template writes values with `str()`);
///   text that does not read stays a string, so nothing is lost;
/// - no schema for the parameter: numbers, `true`/`false`/`null` (or `True`/`False`/`None`),
///   JSON arrays and objects are read as such; anything else — a quoted JSON string included —
///   stays the string as written.
enum XMLParameterValue {
    static func decode(_ text: String, schema: JSONValue?) -> JSONValue {
        let types = types(schema)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if types.contains("string") {
            if types.contains("null"), trimmed == "null" || trimmed == "None" { return .null }
            return .string(text)
        }
        guard let value = json(trimmed) else { return .string(text) }
        if types.isEmpty, case .string = value { return .string(text) }
        return value
    }

    /// The JSON-schema types `schema` allows; empty when it does not say.
    static func types(_ schema: JSONValue?) -> Set<String> {
        guard let schema else { return [] }
        var types = Set<String>()
        if let type = schema["type"]?.stringValue { types.insert(type) }
        types.formUnion((schema["type"]?.arrayValue ?? []).compactMap(\.stringValue))
        for option in (schema["anyOf"] ?? schema["oneOf"])?.arrayValue ?? [] { types.formUnion(Self.types(option)) }
        if types.isEmpty, let values = schema["enum"]?.arrayValue ?? schema["const"].map({ [$0] }),
           !values.isEmpty, values.allSatisfy({ $0.stringValue != nil }) {
            types.insert("string")
        }
        return types
    }

    private static func json(_ text: String) -> JSONValue? {
        switch text {
        case "True": .bool(true)
        case "False": .bool(false)
        case "None": .null
        default: try? JSONValue.parse(text)
        }
    }
}

extension AssistantOutput {
    /// Qwen3.5's `<tool_call>` blocks and the text around them; nil when none is a valid call.
    /// A broken block stays in the content as written.
    static func xmlToolCalls(_ text: String, tools: OfferedTools) -> (content: String?, calls: [ToolCall])? {
        var calls: [ToolCall] = []
        var outside = ""
        var rest = Substring(text)
        while let open = rest.range(of: "<tool_call>") {
            outside += rest[..<open.lowerBound]
            var reader = XMLToolCallReader(tools: tools)
            reader.read(rest[open.upperBound...].utf8)
            reader.finish()
            if let call = reader.call {
                calls.append(call)
                rest = rest[rest.utf8.index(open.upperBound, offsetBy: reader.consumed)...]
            } else {
                outside += rest[open]
                rest = rest[open.upperBound...]
            }
        }
        guard !calls.isEmpty else { return nil }
        outside += rest
        let content = outside.trimmingCharacters(in: .whitespacesAndNewlines)
        return (content.isEmpty ? nil : content, calls)
    }
}
