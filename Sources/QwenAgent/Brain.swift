import Foundation
import QwenKit

/// What the model answered in one step: words, tool calls, or both.
public struct BrainReply: Sendable, Equatable {
    /// The visible text; nil when the reply is only tool calls.
    public var content: String?
    /// The calls to make, in order. Arguments may be a JSON-encoded string that failed to parse:
    /// the loop reports that back to the model.
    public var toolCalls: [ToolCall]

    public init(content: String?, toolCalls: [ToolCall] = []) {
        self.content = content
        self.toolCalls = toolCalls
    }
}

/// The model behind the agent: given the conversation and the offered tools, it answers one step.
public protocol AgentBrain: Sendable {
    /// Answers the conversation so far.
    /// - Parameters:
    ///   - tools: OpenAI function definitions (see ``AgentTool/definition``).
    ///   - onText: receives the reply's text as it is generated (it may include tool-call markup).
    func respond(to messages: [ChatMessage], tools: [JSONValue],
                 onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply
}

extension GenerationOptions {
    /// What a brain generates with unless told otherwise: greedy, at most 512 new tokens per step.
    public static var agentDefault: GenerationOptions {
        var greedy = GenerationOptions()
        greedy.sampling.temperature = 0
        greedy.maxTokens = 512
        return greedy
    }
}
