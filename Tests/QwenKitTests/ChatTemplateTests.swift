import XCTest
@testable import QwenKit

/// Qwen2.5's chat template, through the Jinja engine, with `ChatMessage` values.
final class ChatTemplateTests: XCTestCase {
    func render(messages: [ChatMessage], tools: [JSONValue]?, addGenerationPrompt: Bool) throws -> String {
        let template = String(decoding: try Fixtures.data("templates/qwen2.5.jinja"), as: UTF8.self)
        return try ChatTemplateRenderer(template: template)
            .render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt)
    }

    struct Case {
        var id: Int
        var name: String
        var messages: [ChatMessage]
        var tools: [JSONValue]?
        var addGenerationPrompt: Bool
        var rendered: String
    }

    /// The `qwen2.5` cases of templates/cases.jsonl, read with the order-preserving parser.
    func loadCases() throws -> [Case] {
        let data = try Fixtures.data("templates/cases.jsonl")
        var cases: [Case] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let json = try JSONValue.parse(line)
            guard json["template"]?.stringValue == "qwen2.5" else { continue }
            let id = try XCTUnwrap(json["id"]?.intValue)
            let messages = try XCTUnwrap(json["messages"]?.arrayValue).map(ChatMessage.init(json:))
            let tools: [JSONValue]? = json["tools"]?.arrayValue
            cases.append(Case(
                id: id,
                name: try XCTUnwrap(json["name"]?.stringValue),
                messages: messages,
                tools: tools,
                addGenerationPrompt: try XCTUnwrap(json["add_generation_prompt"]?.boolValue),
                rendered: try XCTUnwrap(json["rendered"]?.stringValue)))
        }
        return cases
    }

    func testFixtureCasesWithoutTools() throws {
        let cases = try loadCases().filter { $0.tools == nil }
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        for c in cases {
            let out = try render(messages: c.messages, tools: c.tools, addGenerationPrompt: c.addGenerationPrompt)
            XCTAssertEqual(Array(out.utf8), Array(c.rendered.utf8), "case \(c.id) \(c.name)")
        }
    }

    func testFixtureCasesWithTools() throws {
        let cases = try loadCases().filter { $0.tools != nil }
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        for c in cases {
            let out = try render(messages: c.messages, tools: c.tools, addGenerationPrompt: c.addGenerationPrompt)
            XCTAssertEqual(Array(out.utf8), Array(c.rendered.utf8), "case \(c.id) \(c.name)")
        }
    }

    func testEmptyToolsRenderLikeNoTools() throws {
        let messages = [ChatMessage.user("hi")]
        XCTAssertEqual(
            try render(messages: messages, tools: [], addGenerationPrompt: true),
            try render(messages: messages, tools: nil, addGenerationPrompt: true))
    }

    func testStringArgumentsAreQuotedByToJSON() throws {
        // Qwen2.5 pipes string arguments through tojson, so they come out as a JSON string.
        let call = ToolCall(name: "f", arguments: .string("{\"a\": 1}"))
        let out = try render(
            messages: [.user("x"), .assistant(nil, toolCalls: [call])], tools: nil, addGenerationPrompt: false)
        XCTAssertTrue(out.hasSuffix("<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}\n</tool_call><|im_end|>\n"), out)
    }

    func testMissingContentThrowsLikeJinja() {
        XCTAssertThrowsError(try render(messages: [ChatMessage(role: "user", content: nil)], tools: nil, addGenerationPrompt: true))
        XCTAssertThrowsError(try render(messages: [], tools: nil, addGenerationPrompt: true))
    }

    func testMessageJSONRoundTrip() throws {
        let json = try JSONValue.parse(#"{"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "g", "arguments": {"b": 2, "a": [true, null]}}}]}"#)
        let message = try ChatMessage(json: json)
        XCTAssertEqual(message.toolCalls, [ToolCall(id: "c1", name: "g", arguments: ["b": 2, "a": [true, nil]])])
        XCTAssertEqual(try ChatMessage(json: message.json), message)
        XCTAssertEqual(message.json.pythonJSON, json.pythonJSON)
    }

    func testCodableRoundTrip() throws {
        let message = ChatMessage.assistant("hi", toolCalls: [ToolCall(id: "c", name: "f", arguments: ["x": 1])])
        let data = try JSONEncoder().encode([message, .tool("42", toolCallID: "c")])
        let decoded = try JSONDecoder().decode([ChatMessage].self, from: data)
        XCTAssertEqual(decoded, [message, .tool("42", toolCallID: "c")])
        let bare = try JSONDecoder().decode(ToolCall.self, from: Data(#"{"name": "g", "arguments": "{}"}"#.utf8))
        XCTAssertEqual(bare, ToolCall(name: "g", arguments: "{}"))
    }
}
