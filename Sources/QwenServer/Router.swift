import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import QwenKit
import QwenTokenizer
import Synchronization

/// How the server is set up.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// When set, every `/v1` route needs `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Largest accepted request body.
    public var maxBodyBytes = 8 << 20
    /// How long a client may take to send its request, and to come back with the next one.
    public var timeouts = ConnectionTimeouts()
    /// Open connections at most; further clients wait in the listen backlog.
    public var maxConnections = 1024
    /// Requests whose body is parsed, template rendered, prompt tokenized and schema compiled
    /// at the same time (on their own threads, never on the event loop or the generation thread).
    public var preparationThreads = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount / 2))
    /// Bounds on client JSON schemas (`response_format`, the parameters of forced tool calls).
    public var schemaLimits = JSONSchemaLimits()

    public init() {}
}

/// The OpenAI-compatible routes over an engine, and the agent's routes (``AgentRoutes``) when `agent` is given.
public func buildRouter(engine: InferenceEngine, configuration: ServerConfiguration,
                        agent: AgentService? = nil) -> Router<ServerRequestContext> {
    let router = Router(context: ServerRequestContext.self)
    let api = OpenAIRoutes(engine: engine, configuration: configuration)
    router.add(middleware: MetricsMiddleware(metrics: engine.metrics))
    router.addWebApp()
    router.get("/health") { _, _ in jsonResponse(.object([("status", "ok")])) }
    router.get("/metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                 body: .init(byteBuffer: ByteBuffer(string: engine.metrics.render())))
    }
    let v1 = router.group("v1").add(middleware: APIKeyMiddleware(key: configuration.apiKey))
    v1.get("models") { _, _ in api.models() }
    v1.get("models/{id}") { _, context in try api.model(context.parameters.get("id") ?? "") }
    v1.post("chat/completions") { request, context in try await api.chatCompletion(request, connection: context.connection) }
    v1.post("completions") { request, context in try await api.completion(request, connection: context.connection) }
    if let agent { AgentRoutes(service: agent).register(on: v1) }
    return router
}

/// Builds the application: the router bound to the configured address, every connection
/// watched by a ``ConnectionGuard`` (timeouts, disconnects), at most `maxConnections` at once.
public func buildApplication(engine: InferenceEngine, configuration: ServerConfiguration, agent: AgentService? = nil)
    -> some ApplicationProtocol {
    let timeouts = configuration.timeouts
    return Application(router: buildRouter(engine: engine, configuration: configuration, agent: agent),
                       server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(timeouts: timeouts)])),
                       configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                            serverName: "qwenkit",
                                            availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections)))
}

struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let key {
            let given = request.headers[.authorization]
            guard let given, constantTimeEqual(Array(given.utf8), Array("Bearer \(key)".utf8)) else {
                throw APIError(.unauthorized, given == nil ? "Missing API key: send 'Authorization: Bearer <key>'." : "Incorrect API key provided.",
                               type: "invalid_request_error", code: "invalid_api_key")
            }
        }
        return try await next(request, context)
    }
}

/// Whether `a` and `b` hold the same bytes, in a time that depends only on their lengths: an
/// attacker timing the comparison learns nothing about how much of a guessed key was right.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference: UInt8 = a.count == b.count ? 0 : 1
    // Always walk the expected bytes (`b`), whatever `a`'s length.
    for i in 0..<b.count {
        difference |= (i < a.count ? a[i] : 0) ^ b[i]
    }
    return difference == 0
}

/// Counts requests by route and status. The route label is the pattern the router matched
/// (`/v1/models/{id}`), or `other` for anything unmatched: never the raw path, which a client
/// chooses, so random URLs cannot grow `/metrics` (and the server's memory) one series at a time.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.recordRequest(Self.route(context), status: response.status.code)
            return response
        } catch let error as HTTPResponseError {
            metrics.recordRequest(Self.route(context), status: error.status.code)
            throw error
        }
    }

    /// The matched route pattern, which the router sets while `next` runs; `other` when none matched.
    static func route(_ context: Context) -> String {
        guard let pattern = context.endpointPath, pattern != "NotFound" else { return "other" }
        return pattern
    }
}

/// The handlers, as plain methods over the engine.
struct OpenAIRoutes: Sendable {
    let engine: InferenceEngine
    let configuration: ServerConfiguration
    let preparation: PreparationPool

    init(engine: InferenceEngine, configuration: ServerConfiguration) {
        self.engine = engine
        self.configuration = configuration
        preparation = PreparationPool(width: configuration.preparationThreads)
    }

    /// Qwen's recommended sampling when the client does not say (non-thinking mode).
    static let defaultSampling = SamplingParameters(temperature: 0.7, topK: 20, topP: 0.8, minP: 0)

    func models() -> Response {
        jsonResponse(.object([("object", "list"), ("data", .array([modelObject]))]))
    }

    func model(_ id: String) throws -> Response {
        guard id == engine.modelID else { throw unknownModel(id) }
        return jsonResponse(modelObject)
    }

    private var modelObject: JSONValue {
        // OpenAI's four members, then what the chat page needs to know (clients ignore members they don't know).
        .object([("id", .string(engine.modelID)), ("object", "model"), ("created", .int(0)), ("owned_by", "qwenkit"),
                 ("context_length", .int(engine.contextLength)), ("supports_thinking", .bool(engine.model.supportsThinking))])
    }

    private func unknownModel(_ name: String) -> APIError {
        APIError(.notFound, "The model '\(name)' does not exist; this server serves '\(engine.modelID)'.",
                 param: "model", code: "model_not_found")
    }

    private func readBody(_ request: Request) async throws -> ByteBuffer {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: configuration.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "The request body is larger than \(configuration.maxBodyBytes) bytes.",
                           code: "request_too_large")
        }
        return buffer
    }

    /// Compiles a client's JSON schema within the configured limits; a schema over a limit, or
    /// one no value satisfies, is the client's mistake (400, naming the limit or the reason).
    private func compile(_ schema: JSONValue, param: String) throws -> CompiledJSONSchema {
        do {
            return try CompiledJSONSchema(schema, limits: configuration.schemaLimits)
        } catch let error as JSONSchemaError {
            let code = if case .limitExceeded = error { "json_schema_too_large" } else { "invalid_json_schema" }
            throw APIError(.badRequest, error.description, param: param, code: code)
        }
    }

    private func checkModel(_ name: String?) throws {
        if let name, name != engine.modelID, name != engine.model.path { throw unknownModel(name) }
    }

    private func checkPrompt(_ tokens: [Int], settings: CompletionSettings, param: String = "messages") throws {
        // At least one token must fit after the prompt.
        guard tokens.count < engine.contextLength else {
            throw APIError.contextExceeded(tokens: tokens.count, context: engine.contextLength, param: param)
        }
        if let maxTokens = settings.options.maxTokens, tokens.count + maxTokens > engine.contextLength {
            throw APIError(.badRequest,
                           "This model's maximum context length is \(engine.contextLength) tokens. However, you requested \(tokens.count + maxTokens) tokens (\(tokens.count) in the messages, \(maxTokens) in the completion). Please reduce the length of the messages or completion.",
                           param: "max_tokens", code: "context_length_exceeded")
        }
    }

    // MARK: - Chat completions

    /// A chat request made ready to generate: its prompt tokens and how to read the answer.
    struct PreparedChat: Sendable {
        var chat: ChatCompletionRequest
        var tokens: [Int]
        var tools: OfferedTools
        var format: ToolCallFormat
        var startsInReasoning: Bool
    }

    /// Parses the body, renders the template, tokenizes and compiles the constraint: the CPU work
    /// of a request, run on the preparation pool.
    func prepareChat(_ body: ByteBuffer) throws -> PreparedChat {
        var chat = try ChatCompletionRequest(RequestReader(bytes: body.readableBytesView), defaults: Self.defaultSampling)
        try checkModel(chat.model)
        // Client schemas first: refusing one is cheaper than rendering the prompt.
        var schema: CompiledJSONSchema?
        if case .jsonSchema(let json) = chat.responseFormat { schema = try compile(json, param: "response_format") }
        let functions = chat.forcedToolCalls
        let compiledFunctions = try functions?.map { (name: $0.name, parameters: try compile($0.parameters, param: "tools")) }
        let offerTools = chat.toolChoice != .none && chat.tools != nil
        let prompt: String
        do {
            prompt = try engine.model.renderPrompt(messages: chat.messages, tools: offerTools ? chat.tools : nil,
                                                   addGenerationPrompt: true, enableThinking: chat.enableThinking,
                                                   templateArguments: chat.templateArguments)
        } catch {
            throw APIError.invalid("messages", "The conversation cannot be rendered with the model's chat template: \(error)")
        }
        let tokens = engine.tokenizer.encode(prompt)
        try checkPrompt(tokens, settings: chat.settings)
        let tools = offerTools ? OfferedTools(definitions: chat.tools ?? []) : .none
        let format = engine.model.toolCallFormat
        let startsInReasoning = prompt.hasSuffix("<think>\n")
        if let schema {
            chat.settings.options.constraint = JSONConstraint(tokenizer: engine.tokenizer, compiled: schema)
        } else if case .jsonObject = chat.responseFormat {
            chat.settings.options.constraint = JSONConstraint(tokenizer: engine.tokenizer, schema: nil)
        }
        if let functions, let compiledFunctions {
            // `required` or a named function: the answer must be a call, so it is generated as one.
            switch format {
            case .json:
                chat.settings.options.constraint = JSONConstraint(tokenizer: engine.tokenizer, compiledToolCalls: compiledFunctions)
            case .xml:
                chat.settings.options.constraint = XMLToolCallConstraint(tokenizer: engine.tokenizer, toolCalls: functions,
                                                                         startsInReasoning: startsInReasoning)
            }
        }
        return PreparedChat(chat: chat, tokens: tokens, tools: tools, format: format, startsInReasoning: startsInReasoning)
    }

    /// `connection`, when known, cancels the request (queued or generating, streamed or not) when its client goes.
    func chatCompletion(_ request: Request, connection: ConnectionMonitor?) async throws -> Response {
        let cancellation = CancellationFlag()
        connection?.watch(cancellation)
        var streaming = false
        defer { if !streaming { connection?.unwatch(cancellation) } }
        let body = try await readBody(request)
        let prepared = try await preparation.run { try self.prepareChat(body) }
        let (chat, tokens, tools, format, startsInReasoning) =
            (prepared.chat, prepared.tokens, prepared.tools, prepared.format, prepared.startsInReasoning)
        let id = "chatcmpl-" + randomID()
        let created = Int(Date().timeIntervalSince1970)
        if chat.settings.stream {
            // The slot is taken before answering, so a full queue is a 503 status, not an error inside the stream.
            let lease = try await engine.reserve(prompt: tokens, cancellation: cancellation)
            let parser = AssistantStreamParser(tools: tools, format: format, startsInReasoning: startsInReasoning)
            streaming = true
            return streamChat(id: id, created: created, tokens: tokens, lease: lease, settings: chat.settings, parser: parser,
                              cancellation: cancellation, connection: connection)
        }
        let result = try await engine.generate(prompt: tokens, options: chat.settings.options,
                                               cancellation: cancellation) { _ in }
        guard !cancellation.isCancelled else { throw APIError.clientClosed }
        let output = AssistantOutput.parse(result.text, tools: tools, format: format, startsInReasoning: startsInReasoning)
        let finish = output.toolCalls.isEmpty ? result.finishReason.rawValue : FinishReason.toolCalls.rawValue
        let choice: JSONValue = .object([
            ("index", 0), ("message", Self.message(for: output)),
            ("logprobs", chat.settings.logprobs == nil ? .null : .object([("content", logprobsJSON(result.logprobs))])),
            ("finish_reason", .string(finish)),
        ])
        return jsonResponse(.object([
            ("id", .string(id)), ("object", "chat.completion"), ("created", .int(created)),
            ("model", .string(engine.modelID)), ("choices", .array([choice])), ("usage", usage(result)),
        ]))
    }

    /// The assistant message of a non-streamed chat completion.
    static func message(for output: AssistantOutput) -> JSONValue {
        var message: [(String, JSONValue)] = [("role", "assistant"), ("content", output.content.map(JSONValue.string) ?? .null)]
        if let reasoning = output.reasoning { message.append(("reasoning_content", .string(reasoning))) }
        if !output.toolCalls.isEmpty {
            message.append(("tool_calls", .array(output.toolCalls.map { call in
                .object([("id", .string("call_" + randomID())), ("type", "function"),
                         ("function", .object([("name", .string(call.name)), ("arguments", .string(call.arguments.pythonJSON))]))])
            })))
        }
        return .object(message)
    }

    private func streamChat(id: String, created: Int, tokens: [Int], lease: SlotLease, settings: CompletionSettings,
                            parser: AssistantStreamParser, cancellation: CancellationFlag,
                            connection: ConnectionMonitor?) -> Response {
        let engine = self.engine
        let events = AsyncStream<JSONValue>.makeStream()
        let wantsLogprobs = settings.logprobs != nil
        // Log-probabilities of tokens whose text has not been sent yet; they ride with the next chunk.
        let pendingLogprobs = LogprobQueue()
        @Sendable func chunk(_ delta: JSONValue, finish: String? = nil) -> JSONValue {
            var logprobs = JSONValue.null
            if wantsLogprobs {
                logprobs = .object([("content", logprobsJSON(pendingLogprobs.takeAll()))])
            }
            return .object([
                ("id", .string(id)), ("object", "chat.completion.chunk"), ("created", .int(created)),
                ("model", .string(engine.modelID)),
                ("choices", .array([.object([("index", 0), ("delta", delta), ("logprobs", logprobs),
                                             ("finish_reason", finish.map(JSONValue.string) ?? .null)])])),
            ])
        }
        let includeUsage = settings.includeUsage
        var onLogprobs: (@Sendable ([TokenLogprob]) -> Void)?
        if wantsLogprobs { onLogprobs = { pendingLogprobs.add($0) } }
        let logprobsCallback = onLogprobs
        let generation = Task {
            events.continuation.yield(chunk(.object([("role", "assistant"), ("content", "")])))
            let parser = Mutex(parser)
            @Sendable func send(_ parsed: [AssistantStreamParser.Event]) {
                for delta in chatDeltas(for: parsed) { events.continuation.yield(chunk(delta)) }
            }
            do {
                let result = try await engine.generate(
                    on: lease, prompt: tokens, options: settings.options, cancellation: cancellation,
                    onLogprobs: logprobsCallback) { piece in
                    send(parser.withLock { $0.feed(piece) })
                }
                if wantsLogprobs {
                    // Tokens after the last piece (a stop token, held-back text) are accounted for too.
                    pendingLogprobs.addUndelivered(of: result.logprobs)
                }
                let (rest, calls) = parser.withLock { $0.finish() }
                send(rest)
                events.continuation.yield(chunk(.object([]), finish: calls.isEmpty ? result.finishReason.rawValue : "tool_calls"))
                if includeUsage {
                    events.continuation.yield(.object([
                        ("id", .string(id)), ("object", "chat.completion.chunk"), ("created", .int(created)),
                        ("model", .string(engine.modelID)), ("choices", .array([])), ("usage", usage(result)),
                    ]))
                }
            } catch {
                events.continuation.yield(APIError.envelope(for: error))
            }
            connection?.unwatch(cancellation)
            events.continuation.finish()
        }
        return sse(events.stream, cancellation: cancellation, generation: generation)
    }

    // MARK: - Text completions

    /// Parses a text completion request and tokenizes its prompt, on the preparation pool.
    func prepareCompletion(_ body: ByteBuffer) throws -> (TextCompletionRequest, [Int]) {
        let completion = try TextCompletionRequest(RequestReader(bytes: body.readableBytesView), defaults: Self.defaultSampling)
        try checkModel(completion.model)
        let tokens: [Int]
        switch completion.prompt {
        case .text(let text): tokens = engine.tokenizer.encode(text)
        case .tokens(let ids):
            let size = engine.model.transformer.config.vocabularySize
            if let bad = ids.first(where: { $0 < 0 || $0 >= size }) {
                throw APIError.invalid("prompt", "Token id \(bad) is out of range (the vocabulary has \(size) ids).")
            }
            tokens = ids
        }
        guard !tokens.isEmpty else { throw APIError.invalid("prompt", "'prompt' must not be empty.") }
        try checkPrompt(tokens, settings: completion.settings, param: "prompt")
        return (completion, tokens)
    }

    func completion(_ request: Request, connection: ConnectionMonitor?) async throws -> Response {
        let cancellation = CancellationFlag()
        connection?.watch(cancellation)
        var streaming = false
        defer { if !streaming { connection?.unwatch(cancellation) } }
        let body = try await readBody(request)
        let (completion, tokens) = try await preparation.run { try self.prepareCompletion(body) }
        let id = "cmpl-" + randomID()
        let created = Int(Date().timeIntervalSince1970)
        let engine = self.engine
        let echo = completion.echo ? engine.tokenizer.decode(tokens) : ""
        @Sendable func choice(_ text: String, finish: String?, logprobs: JSONValue = .null) -> JSONValue {
            .object([("text", .string(text)), ("index", 0), ("logprobs", logprobs),
                     ("finish_reason", finish.map(JSONValue.string) ?? .null)])
        }
        if completion.settings.stream {
            let events = AsyncStream<JSONValue>.makeStream()
            let settings = completion.settings
            @Sendable func chunk(_ choice: JSONValue) -> JSONValue {
                .object([("id", .string(id)), ("object", "text_completion"), ("created", .int(created)),
                         ("model", .string(engine.modelID)), ("choices", .array([choice]))])
            }
            // The slot is taken before answering, so a full queue is a 503 status, not an error inside the stream.
            let lease = try await engine.reserve(prompt: tokens, cancellation: cancellation)
            streaming = true
            let generation = Task {
                if !echo.isEmpty { events.continuation.yield(chunk(choice(echo, finish: nil))) }
                do {
                    let result = try await engine.generate(on: lease, prompt: tokens, options: settings.options,
                                                           cancellation: cancellation) { piece in
                        events.continuation.yield(chunk(choice(piece, finish: nil)))
                    }
                    events.continuation.yield(chunk(choice("", finish: result.finishReason.rawValue)))
                    if settings.includeUsage {
                        events.continuation.yield(.object([("id", .string(id)), ("object", "text_completion"),
                                                           ("created", .int(created)), ("model", .string(engine.modelID)),
                                                           ("choices", .array([])), ("usage", usage(result))]))
                    }
                } catch {
                    events.continuation.yield(APIError.envelope(for: error))
                }
                connection?.unwatch(cancellation)
                events.continuation.finish()
            }
            return sse(events.stream, cancellation: cancellation, generation: generation)
        }
        let result = try await engine.generate(prompt: tokens, options: completion.settings.options,
                                               cancellation: cancellation) { _ in }
        guard !cancellation.isCancelled else { throw APIError.clientClosed }
        return jsonResponse(.object([
            ("id", .string(id)), ("object", "text_completion"), ("created", .int(created)),
            ("model", .string(engine.modelID)),
            ("choices", .array([choice(echo + result.text, finish: result.finishReason.rawValue,
                                       logprobs: completion.settings.logprobs == nil ? .null
                                           : textLogprobsJSON(result.logprobs, offset: echo.unicodeScalars.count))])),
            ("usage", usage(result)),
        ]))
    }

    // MARK: - Pieces

    /// Server-sent events: one `data:` line per JSON object, then `data: [DONE]`. A client that
    /// disconnects makes the write fail; the generation is then cancelled at its next token.
    private func sse(_ stream: AsyncStream<JSONValue>, cancellation: CancellationFlag, generation: Task<Void, Never>) -> Response {
        Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                 body: .init { writer in
                     do {
                         for await event in stream {
                             try await writer.write(ByteBuffer(string: "data: \(event.pythonJSON)\n\n"))
                         }
                         try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                         try await writer.finish(nil)
                     } catch {
                         cancellation.cancel()
                         await generation.value
                         throw error
                     }
                     if Task.isCancelled { cancellation.cancel() }
                 })
    }

    /// OpenAI's usage object; `prompt_tokens_details.cached_tokens` counts the prompt tokens the
    /// slot's cache already held (they were not processed again).
    private func usage(_ result: GenerationResult) -> JSONValue {
        let completion = result.tokens.count, cached = result.promptTokens.count - result.timings.promptTokens
        return .object([("prompt_tokens", .int(result.promptTokens.count)), ("completion_tokens", .int(completion)),
                        ("total_tokens", .int(result.promptTokens.count + completion)),
                        ("prompt_tokens_details", .object([("cached_tokens", .int(cached))]))])
    }

    /// The legacy `/v1/completions` shape: parallel lists of tokens, their log-probabilities,
    /// the alternatives as `{token: logprob}` objects, and each token's offset in the choice's text.
    private func textLogprobsJSON(_ logprobs: [TokenLogprob], offset: Int) -> JSONValue {
        let tokenizer = engine.tokenizer
        var tokens: [JSONValue] = [], values: [JSONValue] = [], tops: [JSONValue] = [], offsets: [JSONValue] = []
        var position = offset
        for lp in logprobs {
            let text = tokenizer.decode([lp.id])
            tokens.append(.string(text))
            values.append(.double(Double(lp.logprob)))
            var seen = Set<String>()
            var members: [(String, JSONValue)] = []
            for alternative in lp.top {
                let key = tokenizer.decode([alternative.id])
                if seen.insert(key).inserted { members.append((key, .double(Double(alternative.logprob)))) }
            }
            tops.append(.object(members))
            offsets.append(.int(position))
            position += text.unicodeScalars.count
        }
        return .object([("tokens", .array(tokens)), ("token_logprobs", .array(values)), ("top_logprobs", .array(tops)),
                        ("text_offset", .array(offsets))])
    }

    private func logprobsJSON(_ logprobs: [TokenLogprob]) -> JSONValue {
        let tokenizer = engine.tokenizer
        func entry(_ id: Int, _ logprob: Float) -> [(String, JSONValue)] {
            let text = tokenizer.decode([id])
            return [("token", .string(text)), ("logprob", .double(Double(logprob))),
                    ("bytes", .array(Array(text.utf8).map { .int(Int($0)) }))]
        }
        return .array(logprobs.map { lp in
            .object(entry(lp.id, lp.logprob) + [("top_logprobs", .array(lp.top.map { .object(entry($0.id, $0.logprob)) }))])
        })
    }
}

/// The `delta` objects of chat-completion chunks for stream-parser events. A tool call starts with
/// its id, type, name and empty arguments; argument pieces follow under the same index.
func chatDeltas(for events: [AssistantStreamParser.Event]) -> [JSONValue] {
    func toolCall(_ index: Int, _ members: [(String, JSONValue)]) -> JSONValue {
        .object([("tool_calls", .array([.object([("index", .int(index))] + members)]))])
    }
    return events.map { event in
        switch event {
        case .content(let text): .object([("content", .string(text))])
        case .reasoning(let text): .object([("reasoning_content", .string(text))])
        case let .toolCall(index, name):
            toolCall(index, [("id", .string("call_" + randomID())), ("type", "function"),
                             ("function", .object([("name", .string(name)), ("arguments", "")]))])
        case let .toolCallArguments(index, text):
            toolCall(index, [("function", .object([("arguments", .string(text))]))])
        }
    }
}

func randomID() -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    return String((0..<24).map { _ in alphabet.randomElement() ?? "x" })
}

/// Log-probabilities of streamed tokens waiting for the chunk that carries their text.
private final class LogprobQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [TokenLogprob] = []
    private var delivered = 0

    func add(_ new: [TokenLogprob]) {
        lock.withLock {
            pending += new
            delivered += new.count
        }
    }

    /// Adds the tail of `all` that never came through ``add(_:)`` (tokens after the last piece of text).
    func addUndelivered(of all: [TokenLogprob]) {
        lock.withLock {
            pending += all.dropFirst(delivered)
            delivered = all.count
        }
    }

    func takeAll() -> [TokenLogprob] {
        lock.withLock {
            defer { pending.removeAll() }
            return pending
        }
    }
}
