import QwenKit

/// Reads typed fields out of a request body, naming the field in every error.
/// Unknown fields are tolerated (clients send many); known fields with a wrong type or value are rejected.
struct RequestReader {
    let body: JSONValue

    init(bytes: some Collection<UInt8>) throws {
        do {
            body = try JSONValue.parse(bytes)
        } catch {
            throw APIError(.badRequest, "The request body is not valid JSON: \(error)", code: "invalid_json")
        }
        guard case .object = body else { throw APIError(.badRequest, "The request body must be a JSON object.") }
    }

    func present(_ key: String) -> JSONValue? {
        guard let value = body[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) throws -> String? {
        guard let value = present(key) else { return nil }
        guard let s = value.stringValue else { throw APIError.invalid(key, "'\(key)' must be a string.") }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = present(key) else { return nil }
        guard let b = value.boolValue else { throw APIError.invalid(key, "'\(key)' must be a boolean.") }
        return b
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = present(key) else { return nil }
        guard let i = value.intValue else { throw APIError.invalid(key, "'\(key)' must be an integer.") }
        guard range.contains(i) else {
            throw APIError.invalid(key, "'\(key)' must be between \(range.lowerBound) and \(range.upperBound); got \(i).")
        }
        return i
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let value = present(key) else { return nil }
        guard let d = value.doubleValue, d.isFinite else { throw APIError.invalid(key, "'\(key)' must be a number.") }
        guard range.contains(d) else {
            throw APIError.invalid(key, "'\(key)' must be between \(range.lowerBound) and \(range.upperBound); got \(d).")
        }
        return d
    }

    /// `stop`: a string or an array of up to 4 strings.
    func stop() throws -> [String] {
        guard let value = present("stop") else { return [] }
        if let s = value.stringValue { return s.isEmpty ? [] : [s] }
        guard let array = value.arrayValue, array.count <= 4 else {
            throw APIError.invalid("stop", "'stop' must be a string or an array of at most 4 strings.")
        }
        return try array.map {
            guard let s = $0.stringValue, !s.isEmpty else {
                throw APIError.invalid("stop", "'stop' must contain non-empty strings.")
            }
            return s
        }
    }
}

/// What to do with tools this request offers.
enum ToolChoice: Equatable {
    case none, auto, required
    case function(String)
}

/// The sampling and output fields shared by chat and text completions.
struct CompletionSettings {
    var options = GenerationOptions()
    var stream = false
    var includeUsage = false
    var logprobs: Int?

    init(_ r: RequestReader, defaults: SamplingParameters, logprobsAsCount: Bool) throws {
        if let n = try r.int("n", in: 1...128), n != 1 {
            throw APIError.invalid("n", "Only n = 1 is supported; got \(n).")
        }
        var sampling = defaults
        if let t = try r.number("temperature", in: 0...2) { sampling.temperature = Float(t) }
        if let p = try r.number("top_p", in: 0...1) {
            guard p > 0 else { throw APIError.invalid("top_p", "'top_p' must be greater than 0.") }
            sampling.topP = Float(p)
        }
        if let k = try r.int("top_k", in: 0...1_000_000) { sampling.topK = k }
        if let m = try r.number("min_p", in: 0...1) { sampling.minP = Float(m) }
        if let p = try r.number("presence_penalty", in: -2...2) { sampling.presencePenalty = Float(p) }
        if let p = try r.number("frequency_penalty", in: -2...2) { sampling.frequencyPenalty = Float(p) }
        if let p = try r.number("repetition_penalty", in: 0.01...10) { sampling.repeatPenalty = Float(p) }
        if let seed = try r.int("seed", in: Int.min...Int.max) { sampling.seed = UInt64(bitPattern: Int64(seed)) }
        options.sampling = sampling

        let maxTokens = try r.int("max_completion_tokens", in: 1...Int(Int32.max))
            ?? r.int("max_tokens", in: 1...Int(Int32.max))
        options.maxTokens = maxTokens
        options.stop = try r.stop()
        stream = try r.bool("stream") ?? false
        if let streamOptions = r.present("stream_options") {
            guard case .object = streamOptions else {
                throw APIError.invalid("stream_options", "'stream_options' must be an object.")
            }
            if let include = streamOptions["include_usage"], !include.isNull {
                guard let b = include.boolValue else {
                    throw APIError.invalid("stream_options.include_usage", "'include_usage' must be a boolean.")
                }
                includeUsage = b
            }
        }
        if logprobsAsCount {
            // /v1/completions: `logprobs` is the number of alternatives.
            logprobs = try r.int("logprobs", in: 0...20)
        } else if try r.bool("logprobs") == true {
            logprobs = try r.int("top_logprobs", in: 0...20) ?? 0
        } else if r.present("top_logprobs") != nil {
            throw APIError.invalid("top_logprobs", "'top_logprobs' requires 'logprobs': true.")
        }
        options.logprobs = logprobs
    }
}

/// A parsed `POST /v1/chat/completions` body.
struct ChatCompletionRequest {
    var model: String?
    var messages: [ChatMessage]
    var tools: [JSONValue]?
    var toolNames: Set<String> = []
    var toolChoice = ToolChoice.auto
    var settings: CompletionSettings
    var responseFormat: ResponseFormat = .text
    var enableThinking: Bool?
    /// `chat_template_kwargs` other than `enable_thinking` (e.g. Qwen3.6's `preserve_thinking`),
    /// passed to the chat template as variables.
    var templateArguments: [String: JSONValue] = [:]

    enum ResponseFormat {
        case text
        case jsonObject
        case jsonSchema(JSONValue)
    }

    init(_ r: RequestReader, defaults: SamplingParameters) throws {
        model = try r.string("model")
        guard let rawMessages = r.present("messages")?.arrayValue else {
            throw APIError.invalid("messages", "'messages' must be a non-empty array.")
        }
        guard !rawMessages.isEmpty else { throw APIError.invalid("messages", "'messages' must be a non-empty array.") }
        messages = try rawMessages.enumerated().map { index, value in
            do {
                var message = try ChatMessage(json: value)
                guard ["system", "developer", "user", "assistant", "tool"].contains(message.role) else {
                    throw APIError.invalid("messages[\(index)].role", "Unknown role '\(message.role)'.")
                }
                if message.role == "developer" { message.role = "system" }
                // OpenAI clients send tool-call arguments as a JSON string; the template wants the object.
                for i in message.toolCalls.indices {
                    if let text = message.toolCalls[i].arguments.stringValue, let object = try? JSONValue.parse(text),
                       case .object = object {
                        message.toolCalls[i].arguments = object
                    }
                }
                return message
            } catch let error as ChatMessageDecodingError {
                throw APIError.invalid("messages[\(index)]", "Invalid message: \(error.message)")
            }
        }

        if let rawTools = r.present("tools") {
            guard let list = rawTools.arrayValue else { throw APIError.invalid("tools", "'tools' must be an array.") }
            for (index, tool) in list.enumerated() {
                guard tool["type"]?.stringValue == "function", let name = tool["function"]?["name"]?.stringValue,
                      !name.isEmpty else {
                    throw APIError.invalid("tools[\(index)]",
                                           "Each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}.")
                }
                toolNames.insert(name)
            }
            tools = list.isEmpty ? nil : list
        }
        if let choice = r.present("tool_choice") {
            switch choice.stringValue {
            case "none": toolChoice = .none
            case "auto": toolChoice = .auto
            case "required": toolChoice = .required
            case nil:
                guard let name = choice["function"]?["name"]?.stringValue else {
                    throw APIError.invalid("tool_choice", "'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}.")
                }
                guard toolNames.contains(name) else {
                    throw APIError.invalid("tool_choice", "'tool_choice' names '\(name)', which is not among the tools.")
                }
                toolChoice = .function(name)
            case let other?:
                throw APIError.invalid("tool_choice", "Unknown tool_choice '\(other)'.")
            }
            if toolChoice != .none && toolChoice != .auto && tools == nil {
                throw APIError.invalid("tool_choice", "'tool_choice' requires 'tools'.")
            }
        }

        settings = try CompletionSettings(r, defaults: defaults, logprobsAsCount: false)

        if let format = r.present("response_format") {
            switch format["type"]?.stringValue {
            case "text"?: responseFormat = .text
            case "json_object"?: responseFormat = .jsonObject
            case "json_schema"?:
                guard let schema = format["json_schema"]?["schema"], case .object = schema else {
                    throw APIError.invalid("response_format.json_schema",
                                           "'json_schema' must be an object with a 'schema' object.")
                }
                responseFormat = .jsonSchema(schema)
            default:
                throw APIError.invalid("response_format.type", "'response_format.type' must be text, json_object or json_schema.")
            }
        }
        if let kwargs = r.present("chat_template_kwargs") {
            guard let members = kwargs.objectValue else {
                throw APIError.invalid("chat_template_kwargs", "'chat_template_kwargs' must be an object.")
            }
            for (key, value) in members where key != "enable_thinking" { templateArguments[key] = value }
        }
        if let thinking = r.present("chat_template_kwargs")?["enable_thinking"] {
            guard let b = thinking.boolValue else {
                throw APIError.invalid("chat_template_kwargs.enable_thinking", "'enable_thinking' must be a boolean.")
            }
            enableThinking = b
        } else {
            enableThinking = try r.bool("enable_thinking")
        }
    }
}

extension ChatCompletionRequest {
    /// For `tool_choice` `required` or a named function: the functions (name, parameters schema)
    /// the answer must call one of; nil otherwise.
    var forcedToolCalls: [(name: String, parameters: JSONValue)]? {
        guard let tools else { return nil }
        let all: [(name: String, parameters: JSONValue)] = tools.compactMap { tool in
            guard let name = tool["function"]?["name"]?.stringValue else { return nil }
            return (name, tool["function"]?["parameters"] ?? .object([("type", "object")]))
        }
        switch toolChoice {
        case .none, .auto: return nil
        case .function(let name): return all.filter { $0.name == name }
        case .required: return all
        }
    }
}

/// A parsed `POST /v1/completions` body.
struct TextCompletionRequest {
    var model: String?
    enum Prompt {
        case text(String)
        case tokens([Int])
    }
    var prompt: Prompt
    var settings: CompletionSettings
    var echo: Bool

    init(_ r: RequestReader, defaults: SamplingParameters) throws {
        model = try r.string("model")
        switch r.present("prompt") {
        case let .string(text)?:
            prompt = .text(text)
        case let .array(items)? where items.count == 1 && items[0].stringValue != nil:
            prompt = .text(items[0].stringValue ?? "")
        case let .array(items)? where !items.isEmpty && items.allSatisfy({ $0.intValue != nil }):
            prompt = .tokens(items.compactMap(\.intValue))
        default:
            throw APIError.invalid("prompt", "'prompt' must be a string or an array of token ids.")
        }
        settings = try CompletionSettings(r, defaults: defaults, logprobsAsCount: true)
        echo = try r.bool("echo") ?? false
    }
}
