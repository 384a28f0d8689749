import Foundation
import QwenKit

/// A brain running a Qwen model in-process: the model's own chat template renders the tools,
/// ``AssistantOutput/parse(_:tools:format:startsInReasoning:)`` reads its calls (in the model's
/// ``ToolCallFormat``), and the
/// ``Generator`` keeps the KV cache so each step only processes the new messages.
public final class LocalBrain: AgentBrain, @unchecked Sendable {
    public let model: LanguageModel
    /// Not thread-safe; every use holds `lock`.
    private let generator: Generator
    private let lock = NSLock()
    private let options: GenerationOptions
    private let enableThinking: Bool?

    /// - Parameters:
    ///   - options: sampling and limits; nil: greedy, at most 512 new tokens per step.
    ///   - enableThinking: Qwen3's switch; off by default (tool use needs no long reasoning).
    public init(model: LanguageModel, contextLength: Int, threads: Int, options: GenerationOptions? = nil,
                enableThinking: Bool? = false) {
        self.model = model
        generator = Generator(model: model, contextLength: contextLength, threads: threads)
        self.options = options ?? .agentDefault
        self.enableThinking = enableThinking
    }

    public func respond(to messages: [ChatMessage], tools: [JSONValue],
                        onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply {
        try lock.withLock {
            let tokenizer = try model.requireTokenizer()
            let text = try model.renderPrompt(messages: messages, tools: tools.isEmpty ? nil : tools,
                                              enableThinking: model.supportsThinking ? enableThinking : nil)
            let startsInReasoning = text.hasSuffix("<think>\n")
            var calls = RepeatedCallGuard(active: !tools.isEmpty)
            let result = try generator.generate(prompt: tokenizer.encode(text), options: options) { piece in
                onText(piece)
                return calls.feed(piece)
            }
            return Self.reply(from: calls.repeated ? calls.kept : result.text, tools: OfferedTools(definitions: tools),
                              format: model.toolCallFormat, startsInReasoning: startsInReasoning)
        }
    }

    /// Reads generated text as a reply. A call to a function that was not offered still counts as a
    /// call (a bare JSON `{"name": …, "arguments": …}` in the JSON form, any `<function=…>` block in
    /// the XML form), so the loop can tell the model the tool is unknown.
    public static func reply(from text: String, tools: OfferedTools, format: ToolCallFormat,
                             startsInReasoning: Bool = false) -> BrainReply {
        switch format {
        case .json:
            return reply(from: text, offeredTools: tools.names, startsInReasoning: startsInReasoning)
        case .xml:
            let output = AssistantOutput.parse(text, tools: tools.isEmpty ? tools : tools.acceptingAnyFunction(),
                                               format: .xml, startsInReasoning: startsInReasoning)
            return BrainReply(content: output.content, toolCalls: output.toolCalls)
        }
    }

    /// Reads generated text whose calls are in the JSON form as a reply. A bare
    /// `{"name": …, "arguments": …}` naming a tool that was not offered still counts as a call.
    public static func reply(from text: String, offeredTools: Set<String>, startsInReasoning: Bool = false) -> BrainReply {
        let output = AssistantOutput.parse(text, offeredTools: offeredTools, startsInReasoning: startsInReasoning)
        if output.toolCalls.isEmpty, !offeredTools.isEmpty, let content = output.content,
           let value = try? JSONValue.parse(content), let name = value["name"]?.stringValue, value["arguments"] != nil {
            return BrainReply(content: nil, toolCalls: [ToolCall(name: name, arguments: value["arguments"] ?? .object([]))])
        }
        return BrainReply(content: output.content, toolCalls: output.toolCalls)
    }
}

/// Stops a reply made of bare JSON calls (`{"name": …, "arguments": …}` one after another, the
/// way small models write them) at the first call that repeats an earlier one word for word: a
/// small model can loop on the same calls until the token limit, and the cut-off last object
/// would then make the whole reply unreadable as calls. What was written before the repeat is
/// kept, so the distinct calls still run.
public struct RepeatedCallGuard: Sendable {
    /// Whether a call repeated an earlier one (generation should stop).
    public private(set) var repeated = false
    /// The text up to the end of the last call that was not a repeat.
    public var kept: String { String(decoding: text.utf8.prefix(keptEnd), as: UTF8.self) }
    private var active: Bool
    private var text = ""
    /// UTF-8 offsets into `text` (they stay valid as text is appended; indices need not).
    private var keptEnd = 0, objectStart = 0
    private var depth = 0, inString = false, escaped = false
    private var seen = Set<String>()

    /// - Parameter active: false for replies that cannot be calls (no tools offered).
    public init(active: Bool) { self.active = active }

    /// Takes the next piece of generated text; false to stop generating.
    public mutating func feed(_ piece: String) -> Bool {
        guard active, !repeated else { return !repeated }
        for character in piece {
            text.append(character)
            if depth == 0 && !inString {
                if character == "{" {
                    depth = 1
                    objectStart = text.utf8.count - 1
                } else if !character.isWhitespace {
                    active = false   // prose, tags or code: not a run of bare calls
                    return true
                }
                continue
            }
            if inString {
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
                continue
            }
            switch character {
            case "\"": inString = true
            case "{", "[": depth += 1
            case "}", "]":
                depth -= 1
                if depth == 0 {
                    let object = String(decoding: text.utf8.dropFirst(objectStart), as: UTF8.self)
                    if !seen.insert(object).inserted {
                        repeated = true
                        return false
                    }
                    keptEnd = text.utf8.count
                }
            default: break
            }
        }
        return true
    }
}
