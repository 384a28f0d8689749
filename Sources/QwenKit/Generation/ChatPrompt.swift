extension LanguageModel {
    /// Renders a conversation into the prompt text the model expects, with its chat template.
    ///
    /// - Parameters:
    ///   - tools: OpenAI-style function definitions (`{"type": "function", "function": {...}}`), offered
    ///     to the model exactly as the template writes them; nil or empty for none.
    ///   - enableThinking: Qwen3's `enable_thinking`; nil leaves it to the template's default.
    public func renderPrompt(messages: [ChatMessage], tools: [JSONValue]? = nil, addGenerationPrompt: Bool = true,
                             enableThinking: Bool? = nil) throws -> String {
        try QwenChatTemplate.render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt)
    }
}
