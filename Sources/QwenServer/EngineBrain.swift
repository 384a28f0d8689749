import Foundation
import QwenAgent
import QwenKit
import Synchronization

/// The agent's brain on the server's own ``InferenceEngine``: each step takes a slot like any
/// chat request (so agent sessions and `/v1/chat/completions` share the loaded model, its slots
/// and its queue), renders the conversation with the model's template and reads the calls the way
/// ``LocalBrain`` does. Cancelling the calling task stops the generation at its next token.
public struct EngineBrain: AgentBrain {
    public let engine: InferenceEngine
    private let options: GenerationOptions
    private let enableThinking: Bool?

    /// - Parameters:
    ///   - options: sampling and limits; nil: greedy, at most 512 new tokens per step.
    ///   - enableThinking: Qwen3's switch; off by default (tool use needs no long reasoning).
    public init(engine: InferenceEngine, options: GenerationOptions? = nil, enableThinking: Bool? = false) {
        self.engine = engine
        self.options = options ?? .agentDefault
        self.enableThinking = enableThinking
    }

    public func respond(to messages: [ChatMessage], tools: [JSONValue],
                        onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply {
        let model = engine.model
        let text = try model.renderPrompt(messages: messages, tools: tools.isEmpty ? nil : tools,
                                          enableThinking: model.supportsThinking ? enableThinking : nil)
        let prompt = engine.tokenizer.encode(text)
        guard prompt.count < engine.contextLength else {
            throw APIError.contextExceeded(tokens: prompt.count, context: engine.contextLength)
        }
        var options = self.options
        if let maxTokens = options.maxTokens { options.maxTokens = min(maxTokens, engine.contextLength - prompt.count) }
        let cancellation = CancellationFlag()
        // A small model can repeat the same calls until the token limit: stop at the first repeat.
        let calls = RepeatWatch(active: !tools.isEmpty)
        let result = try await withTaskCancellationHandler {
            try await engine.generate(prompt: prompt, options: options, cancellation: cancellation) { piece in
                onText(piece)
                if !calls.state.withLock({ $0.feed(piece) }) { cancellation.cancel() }
            }
        } onCancel: {
            cancellation.cancel()
        }
        try Task.checkCancellation()
        let (repeated, kept) = calls.state.withLock { ($0.repeated, $0.kept) }
        return LocalBrain.reply(from: repeated ? kept : result.text, tools: OfferedTools(definitions: tools),
                                format: model.toolCallFormat, startsInReasoning: text.hasSuffix("<think>\n"))
    }
}

/// A ``RepeatedCallGuard`` fed from the generation thread.
private final class RepeatWatch: Sendable {
    let state: Mutex<RepeatedCallGuard>
    init(active: Bool) { state = Mutex(RepeatedCallGuard(active: active)) }
}
