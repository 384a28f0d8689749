/// How a model writes a tool call.
///
/// Qwen2.5 and Qwen3 write JSON inside `<tool_call>` tags:
///
///     <tool_call>
///     {"name": "get_weather", "arguments": {"location": "Tokyo", "days": 3}}
///     </tool_call>
///
/// Qwen3.5 and later write XML, one tag per argument, the values untyped:
///
///     <tool_call>
///     <function=get_weather>
///     <parameter=location>
///     Tokyo
///     </parameter>
///     <parameter=days>
///     3
///     </parameter>
///     </function>
///     </tool_call>
public enum ToolCallFormat: Sendable, Equatable {
    case json
    case xml

    /// The format a chat template teaches: XML when it shows `<function=` (Qwen3.5's template
    /// writes both its instructions and earlier calls that way), else JSON.
    public init(chatTemplate: String?) {
        self = chatTemplate?.contains("<function=") == true ? .xml : .json
    }
}

extension LanguageModel {
    /// How this model writes tool calls, read from its chat template.
    public var toolCallFormat: ToolCallFormat { ToolCallFormat(chatTemplate: chatTemplate) }
}

/// The functions offered to a model, as the tool-call parsers need them: which names count as
/// calls, and the JSON-schema type of each parameter (the XML form writes values as bare text, so
/// `3` is the number 3 only when the schema says so).
public struct OfferedTools: Sendable, Equatable {
    /// The function names; empty with ``acceptsAnyFunction`` false means no tools were offered.
    public private(set) var names: Set<String>
    /// Whether a tagged call to any name counts (no tool list is known, as in `qwenkit run`).
    public private(set) var acceptsAnyFunction: Bool
    /// `parameters.properties` of each function, by name.
    private var properties: [String: JSONValue] = [:]

    /// No tools: tool-call markup is plain text.
    public static let none = OfferedTools(names: [])

    /// Tagged calls to any function, with each value's type guessed from its text. Bare JSON is
    /// never taken for a call, since no names are known.
    public static let anyFunction = OfferedTools(names: [], acceptsAnyFunction: true)

    /// Functions known only by name; XML values are typed by their text.
    public init(names: Set<String>) {
        self.init(names: names, acceptsAnyFunction: false)
    }

    private init(names: Set<String>, acceptsAnyFunction: Bool) {
        self.names = names
        self.acceptsAnyFunction = acceptsAnyFunction
    }

    /// OpenAI function definitions, `{"type": "function", "function": {"name", "parameters"}}`
    /// (a bare `{"name", "parameters"}` is read too); entries without a name are skipped.
    public init(definitions: [JSONValue]) {
        self.init(names: [])
        for definition in definitions {
            let function = definition["function"] ?? definition
            guard let name = function["name"]?.stringValue, !name.isEmpty else { continue }
            names.insert(name)
            if let schema = function["parameters"]?["properties"] { properties[name] = schema }
        }
    }

    /// These tools, with a tagged call to any other function counting too (its values typed by their text).
    public func acceptingAnyFunction() -> OfferedTools {
        var tools = self
        tools.acceptsAnyFunction = true
        return tools
    }

    /// Whether tool-call markup should be read as calls at all.
    public var isEmpty: Bool { names.isEmpty && !acceptsAnyFunction }

    /// Whether a call to `name` counts.
    public func offers(_ name: String) -> Bool { acceptsAnyFunction || names.contains(name) }

    /// The JSON schema of parameter `key` of function `name`; nil when the tool did not describe it.
    public func schema(ofParameter key: String, in name: String) -> JSONValue? {
        properties[name]?[key]
    }
}
