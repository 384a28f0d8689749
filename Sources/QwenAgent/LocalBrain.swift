import Foundation
import QwenKit

/// A brain running a Qwen model in-process: the model's own chat template renders the tools,
/// ``AssistantOutput/parse(_:offeredTools:startsInReasoning:)`` reads its calls, and the
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
        if let options {
            self.options = options
        } else {
            var greedy = GenerationOptions()
            greedy.sampling.temperature = 0
            greedy.maxTokens = 512
            self.options = greedy
        }
        self.enableThinking = enableThinking
    }

    public func respond(to messages: [ChatMessage], tools: [JSONValue],
                        onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply {
        try lock.withLock {
            let tokenizer = try model.requireTokenizer()
            let text = try model.renderPrompt(messages: messages, tools: tools.isEmpty ? nil : tools,
                                              enableThinking: model.supportsThinking ? enableThinking : nil)
            let startsInReasoning = text.hasSuffix("<think>\n")
            let result = try generator.generate(prompt: tokenizer.encode(text), options: options) { piece in
                onText(piece)
                return true
            }
            let names = Set(tools.compactMap { $0["function"]?["name"]?.stringValue })
            return Self.reply(from: result.text, offeredTools: names, startsInReasoning: startsInReasoning)
        }
    }

    /// Reads generated text as a reply. A bare `{"name": …, "arguments": …}` naming a tool that
    /// was not offered still counts as a call, so the loop can tell the model the tool is unknown.
    public static func reply(from text: String, offeredTools: Set<String>, startsInReasoning: Bool = false) -> BrainReply {
        let output = AssistantOutput.parse(text, offeredTools: offeredTools, startsInReasoning: startsInReasoning)
        if output.toolCalls.isEmpty, !offeredTools.isEmpty, let content = output.content,
           let value = try? JSONValue.parse(content), let name = value["name"]?.stringValue, value["arguments"] != nil {
            return BrainReply(content: nil, toolCalls: [ToolCall(name: name, arguments: value["arguments"] ?? .object([]))])
        }
        return BrainReply(content: output.content, toolCalls: output.toolCalls)
    }
}
