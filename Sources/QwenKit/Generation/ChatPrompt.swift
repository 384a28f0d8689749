extension LanguageModel {
    /// Renders a conversation into the prompt text the model expects, with the model's own Jinja
    /// chat template (plain ChatML when the model has none), as transformers' `apply_chat_template` does.
    ///
    /// - Parameters:
    ///   - tools: OpenAI-style function definitions (`{"type": "function", "function": {...}}`), offered
    ///     to the model exactly as the template writes them; nil or empty for none.
    ///   - enableThinking: Qwen3's `enable_thinking`; nil leaves it undefined, to the template's default.
    ///   - templateArguments: more template variables (transformers' `**kwargs`, e.g. Qwen3.6's
    ///     `preserve_thinking`); they cannot replace `messages`, `tools` or `add_generation_prompt`.
    public func renderPrompt(messages: [ChatMessage], tools: [JSONValue]? = nil, addGenerationPrompt: Bool = true,
                             enableThinking: Bool? = nil, templateArguments: [String: JSONValue] = [:]) throws -> String {
        var context = templateArguments.filter { !["messages", "tools", "add_generation_prompt"].contains($0.key) }
        if let enableThinking { context["enable_thinking"] = .bool(enableThinking) }
        for (name, token) in [("bos_token", "<|endoftext|>"), ("eos_token", "<|im_end|>"), ("pad_token", "<|endoftext|>")] {
            context[name] = .string(token)
        }
        return try chatTemplateRenderer().render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt,
                                                 extraContext: context)
    }

    /// Whether the model's template knows Qwen3's `enable_thinking` switch.
    public var supportsThinking: Bool { chatTemplate?.contains("enable_thinking") ?? false }

    /// ChatML, for models that carry no template of their own.
    static let chatMLTemplate = """
        {%- for message in messages -%}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}
        """
}

extension LanguageModel {
    /// Whether a conversation rendered with `enableThinking` will make the model think aloud:
    /// Qwen3's template thinks unless told not to; other templates never do.
    public func thinks(enableThinking: Bool?) -> Bool {
        supportsThinking && (enableThinking ?? true)
    }

    /// The sampling a user gets without any settings: Qwen's recommendations for the mode
    /// (thinking: temperature 0.6, top-p 0.95, top-k 20; otherwise 0.7, 0.8, 20), overridden by
    /// whatever the model's `generation_config.json` sets.
    public func defaultSampling(thinking: Bool) -> SamplingParameters {
        var p = thinking ? SamplingParameters(temperature: 0.6, topK: 20, topP: 0.95, minP: 0)
                         : SamplingParameters(temperature: 0.7, topK: 20, topP: 0.8, minP: 0)
        let g = generationDefaults
        if let t = g.temperature { p.temperature = t }
        if let topP = g.topP { p.topP = topP }
        if let topK = g.topK { p.topK = topK }
        if let r = g.repetitionPenalty { p.repeatPenalty = r }
        if g.doSample == false { p.temperature = 0 }
        return p
    }
}
