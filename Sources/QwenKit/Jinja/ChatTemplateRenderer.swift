/// A parsed Jinja template (the subset of Jinja2 that chat templates use), rendered with
/// transformers' environment settings: `trim_blocks`, `lstrip_blocks`, the `loopcontrols`
/// extension, an immutable sandbox, Jinja2's default `Undefined`, and transformers' `tojson`
/// (`json.dumps(x, ensure_ascii=False)`).
///
/// Rendering never crashes or hangs on hostile input: nesting, macro recursion, loop iterations
/// (1 million), collection sizes (1 million items), output and string sizes (16 MiB, checked
/// before a value is built) and the total work (50 million steps, see `JinjaBudget`) are
/// capped, and integer arithmetic is overflow-checked; each is reported as a ``JinjaError``
/// naming the template line.
public struct JinjaTemplate: Sendable {
    let nodes: [Node]

    /// Parses `source`.
    /// - Throws: ``JinjaError`` naming the line of a syntax error, an unknown tag, filter or test,
    ///   or a block that is never closed.
    public init(_ source: String) throws {
        nodes = try JinjaParser.parse(source)
    }

    /// Renders the template with `context` as its variables. JSON objects keep their key order,
    /// JSON null becomes Python's `None`; a name that is not in the context is undefined.
    /// - Throws: ``JinjaError`` for `raise_exception(...)` (its message is the template's text),
    ///   undefined values used where Jinja2 would fail, type errors, and the resource limits.
    public func render(_ context: [String: JSONValue]) throws -> String {
        try render(context, steps: JinjaBudget.defaultSteps)
    }

    /// Renders with a work budget of `steps` (see ``JinjaBudget``); for tests of the limit.
    func render(_ context: [String: JSONValue], steps: Int) throws -> String {
        try JinjaInterpreter(context: context.mapValues(JinjaValue.init(json:)), budget: JinjaBudget(steps: steps)).render(nodes)
    }
}

/// A model's chat template, parsed once and rendered the way transformers'
/// `apply_chat_template(..., tokenize=False)` renders it.
public struct ChatTemplateRenderer: Sendable {
    /// The parsed template.
    public let template: JinjaTemplate

    /// Parses the template text (for example `tokenizer_config.json`'s `chat_template`).
    /// - Throws: ``JinjaError`` on syntax errors, naming the template line.
    public init(template: String) throws {
        self.template = try JinjaTemplate(template)
    }

    /// Renders a conversation.
    ///
    /// - Parameters:
    ///   - messages: converted with ``ChatMessage/json``; keys without a value are left out, so
    ///     a missing `content` is undefined in the template, as in transformers.
    ///   - tools: JSON-schema function definitions, passed as given; nil leaves `tools` undefined.
    ///   - addGenerationPrompt: the template's `add_generation_prompt`.
    ///   - extraContext: more variables, e.g. `["enable_thinking": false]`, `bos_token`,
    ///     `eos_token`. They cannot replace `messages`, `tools` or `add_generation_prompt`.
    /// - Throws: ``JinjaError``, including the template's own `raise_exception` messages.
    public func render(messages: [ChatMessage], tools: [JSONValue]?, addGenerationPrompt: Bool,
                       extraContext: [String: JSONValue] = [:]) throws -> String {
        try render(messageObjects: messages.map(\.json), tools: tools, addGenerationPrompt: addGenerationPrompt,
                   extraContext: extraContext)
    }

    /// Renders a conversation given as raw OpenAI-style message objects, so that fields
    /// ``ChatMessage`` does not model (such as `reasoning_content`) reach the template. Members
    /// whose value is JSON null are dropped first, as transformers does.
    public func render(messageObjects: [JSONValue], tools: [JSONValue]?, addGenerationPrompt: Bool,
                       extraContext: [String: JSONValue] = [:]) throws -> String {
        var context = extraContext
        context["messages"] = .array(messageObjects.map { message in
            guard case let .object(members) = message else { return message }
            return .object(members.filter { !$0.1.isNull })
        })
        if let tools {
            context["tools"] = .array(tools)
        } else {
            context.removeValue(forKey: "tools")
        }
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try template.render(context)
    }
}
