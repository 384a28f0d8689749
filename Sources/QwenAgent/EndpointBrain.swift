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
    /// The most bytes a reply may have (16 MiB): the endpoint is a remote stranger, and a reply
    /// is read into memory.
    public var maximumReplyBytes = 16 << 20

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
        let reader = CappedReader(limit: maximumReplyBytes)
        let (data, response, error) = await reader.fetch(request)
        if reader.exceededLimit {
            throw EndpointError(message: "\(completionsURL.absoluteString) sent a reply larger than \(maximumReplyBytes) bytes; it was cut off")
        }
        if let error {
            throw EndpointError(message: "cannot reach \(completionsURL.absoluteString): \(error.localizedDescription)")
        }
        let status = response?.statusCode ?? 0
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

/// Reads one response body into memory, giving up once it passes `limit` bytes (or announces
/// more with Content-Length).
///
/// Giving up answers at once. The transfer is cancelled too, but Linux's URLSession may go on
/// receiving after `cancel()` (and then never completes the task); the bytes are dropped, so
/// memory stays bounded either way.
final class CappedReader: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let limit: Int
    private let lock = NSLock()
    private var data = Data()
    private var response: HTTPURLResponse?
    private var exceeded = false
    private var continuation: CheckedContinuation<(Data, HTTPURLResponse?, Error?), Never>?

    init(limit: Int) { self.limit = limit }

    var exceededLimit: Bool { lock.lock(); defer { lock.unlock() }; return exceeded }

    func fetch(_ request: URLRequest) async -> (Data, HTTPURLResponse?, Error?) {
        await withCheckedContinuation { continuation in
            lock.lock()
            self.continuation = continuation
            lock.unlock()
            let queue = OperationQueue()
            queue.maxConcurrentOperationCount = 1
            let session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: queue)
            session.dataTask(with: request).resume()
            session.finishTasksAndInvalidate()
        }
    }

    /// Answers `fetch` once; later calls do nothing.
    private func finish(_ error: Error?, task: URLSessionTask?) {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        let result = (exceeded ? Data() : data, response ?? task?.response as? HTTPURLResponse, error)
        if exceeded { data = Data() }
        lock.unlock()
        continuation?.resume(returning: result)
    }

    /// Gives up on an oversized reply: answers now, then cancels off the delegate queue.
    private func giveUp(_ task: URLSessionTask) {
        finish(nil, task: task)
        DispatchQueue.global().async { task.cancel() }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @Sendable @escaping (URLSession.ResponseDisposition) -> Void) {
        lock.lock()
        self.response = response as? HTTPURLResponse
        let tooLarge = response.expectedContentLength > Int64(limit)
        if tooLarge { exceeded = true }
        lock.unlock()
        completionHandler(tooLarge ? .cancel : .allow)
        if tooLarge { giveUp(dataTask) }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        let wasExceeded = exceeded
        let fits = !exceeded && self.data.count + data.count <= limit
        if fits { self.data.append(data) } else { exceeded = true }
        lock.unlock()
        if !fits && !wasExceeded { giveUp(dataTask) }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        finish(error, task: task)
    }
}
