import Foundation

/// A model's answer split the way OpenAI's API returns it: reasoning, visible content, tool calls.
public struct AssistantOutput: Sendable, Equatable {
    /// Qwen3's `<think>` text, without the tags; nil when the model did not think aloud.
    public var reasoning: String?
    /// The visible answer; nil when the answer is only tool calls.
    public var content: String?
    public var toolCalls: [ToolCall]

    public init(reasoning: String? = nil, content: String?, toolCalls: [ToolCall] = []) {
        self.reasoning = reasoning
        self.content = content
        self.toolCalls = toolCalls
    }

    /// Parses generated text.
    ///
    /// Reasoning is the text of a leading `<think>` block (or, when the prompt already opened the
    /// block, everything up to `</think>`); a block the model never closed is all reasoning, so
    /// thinking never leaks into `content`. A `<think>` or `</think>` later in the answer is plain text.
    ///
    /// Tool calls are recognised only when tools were offered, in the model's ``ToolCallFormat``.
    ///
    /// - JSON: Qwen's `<tool_call>{"name": …, "arguments": …}</tool_call>` blocks (any number, for
    ///   parallel calls), and a bare JSON object (or array of objects) of that shape naming an
    ///   offered function, which small Qwen models often answer with. A block whose JSON is broken
    ///   makes the whole answer plain content: the caller sees what the model wrote instead of an error.
    /// - XML: Qwen3.5's `<tool_call><function=…><parameter=…>` blocks, read by ``XMLToolCallReader``,
    ///   their values typed by the tools' schemas (``XMLParameterValue``). A block that is broken or
    ///   names a function that was not offered stays in the content as written; the others are calls.
    /// - Parameters:
    ///   - startsInReasoning: the prompt already opened a `<think>` block, so the text begins inside it.
    public static func parse(_ text: String, tools: OfferedTools, format: ToolCallFormat,
                             startsInReasoning: Bool = false) -> AssistantOutput {
        var reasoning: String?
        var rest = Substring(text)
        var inThought = startsInReasoning
        let leading = rest.drop { $0.isWhitespace }
        if !inThought, leading.hasPrefix(thinkOpen) {
            inThought = true
            rest = leading.dropFirst(thinkOpen.count)
        }
        if inThought {
            let thought: Substring
            if let close = rest.range(of: thinkClose) {
                thought = rest[..<close.lowerBound]
                rest = rest[close.upperBound...]
            } else {
                thought = rest
                rest = ""
            }
            let trimmed = thought.trimmingCharacters(in: .whitespacesAndNewlines)
            reasoning = trimmed.isEmpty ? nil : trimmed
        }
        let answer = rest.trimmingCharacters(in: .whitespacesAndNewlines)
        if !tools.isEmpty {
            switch format {
            case .json:
                if let (content, calls) = taggedToolCalls(answer) {
                    return AssistantOutput(reasoning: reasoning, content: content, toolCalls: calls)
                }
                if !tools.names.isEmpty, let calls = bareToolCalls(answer, offeredTools: tools.names) {
                    return AssistantOutput(reasoning: reasoning, content: nil, toolCalls: calls)
                }
            case .xml:
                if let (content, calls) = xmlToolCalls(answer, tools: tools) {
                    return AssistantOutput(reasoning: reasoning, content: content, toolCalls: calls)
                }
            }
        }
        return AssistantOutput(reasoning: reasoning, content: answer.isEmpty && inThought ? nil : answer, toolCalls: [])
    }

    /// Parses generated text whose tool calls, if any, are in the JSON form; see
    /// ``parse(_:tools:format:startsInReasoning:)``.
    public static func parse(_ text: String, offeredTools: Set<String>, startsInReasoning: Bool = false) -> AssistantOutput {
        parse(text, tools: OfferedTools(names: offeredTools), format: .json, startsInReasoning: startsInReasoning)
    }

    static let thinkOpen = "<think>"
    static let thinkClose = "</think>"

    /// `<tool_call>` blocks and the text around them; nil when there are none or one is broken.
    static func taggedToolCalls(_ text: String) -> (content: String?, calls: [ToolCall])? {
        guard text.contains("<tool_call>") else { return nil }
        var calls: [ToolCall] = []
        var outside = ""
        var rest = Substring(text)
        while let open = rest.range(of: "<tool_call>") {
            outside += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "</tool_call>"),
                  let call = toolCall(from: String(rest[open.upperBound..<close.lowerBound])) else { return nil }
            calls.append(call)
            rest = rest[close.upperBound...]
        }
        outside += rest
        let content = outside.trimmingCharacters(in: .whitespacesAndNewlines)
        return (content.isEmpty ? nil : content, calls)
    }

    /// A whole answer that is a JSON tool call (or array of them) naming offered functions.
    static func bareToolCalls(_ text: String, offeredTools: Set<String>) -> [ToolCall]? {
        var body = Substring(text)
        // Tolerate a Markdown code fence around the JSON.
        if body.hasPrefix("```"), body.hasSuffix("```"), body.count >= 6 {
            body = body.dropFirst(3).dropLast(3)
            if body.hasPrefix("json") { body = body.dropFirst(4) }
        }
        let items: [JSONValue]
        if let value = try? JSONValue.parse(String(body)) {
            switch value {
            case .array(let array) where !array.isEmpty: items = array
            case .object: items = [value]
            default: return nil
            }
        } else if let objects = consecutiveObjects(body) {
            // Small models write parallel calls as objects one after another.
            items = objects
        } else {
            return nil
        }
        var calls: [ToolCall] = []
        for item in items {
            guard let call = toolCall(from: item), offeredTools.contains(call.name) else { return nil }
            calls.append(call)
        }
        return calls
    }

    /// Two or more top-level JSON objects separated only by whitespace (or commas); nil otherwise.
    static func consecutiveObjects(_ text: Substring) -> [JSONValue]? {
        var objects: [JSONValue] = []
        var depth = 0, inString = false, escaped = false
        var start: String.Index?
        for index in text.indices {
            let c = text[index]
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            switch c {
            case "\"":
                guard depth > 0 else { return nil }
                inString = true
            case "{":
                if depth == 0 { start = index }
                depth += 1
            case "}":
                depth -= 1
                guard depth >= 0 else { return nil }
                if depth == 0, let from = start {
                    guard let object = try? JSONValue.parse(String(text[from...index])) else { return nil }
                    objects.append(object)
                }
            default:
                if depth == 0 && !(c.isWhitespace || c == ",") { return nil }
            }
        }
        return depth == 0 && objects.count >= 2 ? objects : nil
    }

    static func toolCall(from json: String) -> ToolCall? {
        (try? JSONValue.parse(json.trimmingCharacters(in: .whitespacesAndNewlines))).flatMap(toolCall(from:))
    }

    /// `{"name": string, "arguments": object or JSON-object string}`.
    static func toolCall(from value: JSONValue) -> ToolCall? {
        guard let name = value["name"]?.stringValue, !name.isEmpty else { return nil }
        var arguments = value["arguments"] ?? value["parameters"] ?? .object([])
        if let string = arguments.stringValue {
            guard let parsed = try? JSONValue.parse(string) else { return nil }
            arguments = parsed
        }
        guard case .object = arguments else { return nil }
        return ToolCall(id: nil, name: name, arguments: arguments)
    }
}
