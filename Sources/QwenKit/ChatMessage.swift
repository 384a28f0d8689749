/// One function call made by the assistant, as in OpenAI's `tool_calls` entries.
public struct ToolCall: Sendable, Equatable {
    /// The call id (`call_…`), when the client gave one. The Qwen2.5 template does not print it.
    public var id: String?
    /// The function name.
    public var name: String
    /// The arguments: normally an object; a string is also accepted (OpenAI sends a JSON-encoded
    /// string). The Qwen2.5 template passes either through `tojson`, so a string comes out quoted.
    public var arguments: JSONValue

    public init(id: String? = nil, name: String, arguments: JSONValue) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// One message of a chat conversation.
///
/// `content` is optional because transformers drops keys whose value is null before rendering,
/// and the template treats a missing `content` differently from an empty one.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user`, `assistant` or `tool`. Other roles are skipped by the Qwen2.5 template.
    public var role: String
    /// The text; nil when absent or null.
    public var content: String?
    /// Calls made by an assistant message; empty otherwise.
    public var toolCalls: [ToolCall]
    /// For `tool` messages: the id of the call this result answers (not printed by Qwen2.5).
    public var toolCallID: String?
    /// For `tool` messages: the function name (not printed by Qwen2.5).
    public var name: String?
    /// For assistant messages of thinking models: the reasoning that preceded the answer
    /// (`reasoning_content`; Qwen3's template decides whether to show it again).
    public var reasoningContent: String?

    public init(role: String, content: String?, toolCalls: [ToolCall] = [], toolCallID: String? = nil, name: String? = nil,
                reasoningContent: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.name = name
        self.reasoningContent = reasoningContent
    }

    /// A system message.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    /// A user message.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    /// An assistant message, optionally with tool calls.
    public static func assistant(_ content: String?, toolCalls: [ToolCall] = []) -> ChatMessage {
        ChatMessage(role: "assistant", content: content, toolCalls: toolCalls)
    }
    /// A tool result.
    public static func tool(_ content: String, toolCallID: String? = nil, name: String? = nil) -> ChatMessage {
        ChatMessage(role: "tool", content: content, toolCallID: toolCallID, name: name)
    }
}

/// A message or tool call that does not have the shape of an OpenAI chat message.
public struct ChatMessageDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension ChatMessage {
    /// Reads an OpenAI-style message object: `role`, `content` (string or null), `tool_calls`,
    /// `tool_call_id`, `name`. Each tool call may be wrapped (`{"type": "function", "function":
    /// {"name", "arguments"}}`) or bare (`{"name", "arguments"}`), as the template accepts both.
    public init(json: JSONValue) throws {
        guard case .object = json else { throw ChatMessageDecodingError(message: "a message must be a JSON object") }
        guard let role = json["role"]?.stringValue else {
            throw ChatMessageDecodingError(message: "a message needs a string 'role'")
        }
        var content: String?
        switch json["content"] {
        case nil, .null?: content = nil
        case let .string(s)?: content = s
        case let .array(parts)?:
            // Content parts: only text parts can be rendered into a text-only prompt.
            var text = ""
            for part in parts {
                guard let partText = part["text"]?.stringValue else {
                    throw ChatMessageDecodingError(message: "only text content parts are supported")
                }
                text += partText
            }
            content = text
        default:
            throw ChatMessageDecodingError(message: "'content' must be a string, an array of text parts, or null")
        }
        var calls: [ToolCall] = []
        if let raw = json["tool_calls"], !raw.isNull {
            guard let list = raw.arrayValue else {
                throw ChatMessageDecodingError(message: "'tool_calls' must be an array")
            }
            calls = try list.map(ToolCall.init(json:))
        }
        self.init(role: role, content: content, toolCalls: calls,
                  toolCallID: json["tool_call_id"]?.stringValue, name: json["name"]?.stringValue,
                  reasoningContent: json["reasoning_content"]?.stringValue)
    }

    /// The OpenAI-style object, with null/empty fields left out (as transformers would drop them).
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("role", .string(role))]
        if let content { members.append(("content", .string(content))) }
        if let reasoningContent { members.append(("reasoning_content", .string(reasoningContent))) }
        if !toolCalls.isEmpty { members.append(("tool_calls", .array(toolCalls.map(\.json)))) }
        if let toolCallID { members.append(("tool_call_id", .string(toolCallID))) }
        if let name { members.append(("name", .string(name))) }
        return .object(members)
    }
}

extension ToolCall {
    /// Reads a wrapped (`{"id", "type", "function": {"name", "arguments"}}`) or bare
    /// (`{"name", "arguments"}`) tool call.
    public init(json: JSONValue) throws {
        guard case .object = json else { throw ChatMessageDecodingError(message: "a tool call must be a JSON object") }
        // Same rule as the template: use `function` when it is present.
        let body = json["function"] ?? json
        guard let name = body["name"]?.stringValue else {
            throw ChatMessageDecodingError(message: "a tool call needs a string 'name'")
        }
        guard let arguments = body["arguments"] else {
            throw ChatMessageDecodingError(message: "tool call '\(name)' has no 'arguments'")
        }
        self.init(id: json["id"]?.stringValue, name: name, arguments: arguments)
    }

    /// The wrapped OpenAI form: `{"id"?, "type": "function", "function": {"name", "arguments"}}`.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = []
        if let id { members.append(("id", .string(id))) }
        members.append(("type", "function"))
        members.append(("function", .object([("name", .string(name)), ("arguments", arguments)])))
        return .object(members)
    }
}



/// Coded as the OpenAI message object (see ``init(json:)`` for the accepted shapes).
extension ChatMessage: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try json.encode(to: encoder)
    }
}

/// Coded as the wrapped OpenAI tool call; decoding also accepts the bare `{"name", "arguments"}`.
extension ToolCall: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try json.encode(to: encoder)
    }
}
