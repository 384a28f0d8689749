import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import QwenKit

/// A brain behind any OpenAI-compatible server (`qwenkit serve`, vLLM, …): each step is one
/// `POST /v1/chat/completions` with the tools; the answer's `tool_calls` are the calls.
public struct EndpointBrain: AgentBrain {
    /// The server's base URL, with or without the trailing `/v1`.
    public var baseURL: URL
    /// The `model` field of each request.
    public var model: String
    public var apiKey: String?
    /// nil: the server's default.
    public var temperature: Double?
    public var maxTokens: Int?

    public init(baseURL: URL, model: String = "default", apiKey: String? = nil, temperature: Double? = 0, maxTokens: Int? = 512) {
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.temperature = temperature
        self.maxTokens = maxTokens
    }

    /// The completions URL for the base URL.
    public var completionsURL: URL {
        let base = baseURL.absoluteString.hasSuffix("/") ? String(baseURL.absoluteString.dropLast()) : baseURL.absoluteString
        let path = base.hasSuffix("/v1") ? base + "/chat/completions" : base + "/v1/chat/completions"
        return URL(string: path) ?? baseURL
    }

    /// The request body for a step.
    public func requestBody(messages: [ChatMessage], tools: [JSONValue]) -> JSONValue {
        // OpenAI sends arguments as a JSON-encoded string.
        let wire: [JSONValue] = messages.map { message in
            var message = message
            message.toolCalls = message.toolCalls.map { call in
                var call = call
                if call.arguments.stringValue == nil { call.arguments = .string(call.arguments.pythonJSON) }
                return call
            }
            return message.json
        }
        var members: [(String, JSONValue)] = [("model", .string(model)), ("messages", .array(wire))]
        if !tools.isEmpty { members.append(("tools", .array(tools))) }
        if let temperature { members.append(("temperature", .double(temperature))) }
        if let maxTokens { members.append(("max_tokens", .int(maxTokens))) }
        return .object(members)
    }

    public func respond(to messages: [ChatMessage], tools: [JSONValue],
                        onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply {
        var request = URLRequest(url: completionsURL)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        request.httpBody = Data(requestBody(messages: messages, tools: tools).pythonJSON.utf8)
        request.timeoutInterval = 600
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw EndpointError(message: "cannot reach \(completionsURL.absoluteString): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            let detail = (try? JSONValue.parse(data))?["error"]?["message"]?.stringValue
                ?? String(decoding: data.prefix(300), as: UTF8.self)
            throw EndpointError(message: "\(completionsURL.absoluteString) answered HTTP \(status): \(detail)")
        }
        let reply = try Self.parseCompletion(data)
        if let content = reply.content, !content.isEmpty { onText(content) }
        return reply
    }

    /// Reads a chat-completion response: the first choice's `content` and `tool_calls`. Arguments
    /// that are not valid JSON stay a string, for the loop to report to the model.
    public static func parseCompletion(_ data: Data) throws -> BrainReply {
        guard let json = try? JSONValue.parse(data), let message = json["choices"]?[0]?["message"] else {
            throw EndpointError(message: "the endpoint's answer is not a chat completion: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        var calls: [ToolCall] = []
        for entry in message["tool_calls"]?.arrayValue ?? [] {
            let function = entry["function"] ?? entry
            guard let name = function["name"]?.stringValue else { continue }
            var arguments = function["arguments"] ?? .object([])
            if let text = arguments.stringValue, let parsed = try? JSONValue.parse(text.isEmpty ? "{}" : text) {
                arguments = parsed
            }
            calls.append(ToolCall(id: entry["id"]?.stringValue, name: name, arguments: arguments))
        }
        let content = message["content"]?.stringValue
        return BrainReply(content: content?.isEmpty == true && !calls.isEmpty ? nil : content, toolCalls: calls)
    }
}

/// A failure talking to the endpoint, as one line.
public struct EndpointError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
