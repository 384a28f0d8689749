import QwenKit
import XCTest

/// `AssistantOutput.parse`: reasoning, content and tool calls out of a model's raw answer.
/// Expected values are written by hand from the OpenAI and Qwen formats.
final class AssistantOutputTests: XCTestCase {
    let weather: Set<String> = ["get_weather", "get_time"]

    func testPlainAnswer() {
        XCTAssertEqual(AssistantOutput.parse("  The answer is 4.\n", offeredTools: []),
                       AssistantOutput(reasoning: nil, content: "The answer is 4.", toolCalls: []))
        XCTAssertEqual(AssistantOutput.parse("The answer is 4.", offeredTools: weather),
                       AssistantOutput(reasoning: nil, content: "The answer is 4.", toolCalls: []))
        XCTAssertEqual(AssistantOutput.parse("", offeredTools: []), AssistantOutput(reasoning: nil, content: "", toolCalls: []))
    }

    func testTaggedToolCall() {
        let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tokyo\", \"unit\": \"celsius\"}}\n</tool_call>"
        let output = AssistantOutput.parse(text, offeredTools: weather)
        XCTAssertNil(output.content)
        XCTAssertNil(output.reasoning)
        XCTAssertEqual(output.toolCalls, [ToolCall(name: "get_weather", arguments: ["city": "Tokyo", "unit": "celsius"])])
        // The arguments keep the model's key order (they are re-serialized for the client).
        XCTAssertEqual(output.toolCalls.first?.arguments.pythonJSON, #"{"city": "Tokyo", "unit": "celsius"}"#)
    }

    func testParallelTaggedToolCalls() {
        let text = """
            <tool_call>
            {"name": "get_weather", "arguments": {"city": "Tokyo"}}
            </tool_call>
            <tool_call>
            {"name": "get_time", "arguments": {"timezone": "Asia/Tokyo"}}
            </tool_call>
            """
        let output = AssistantOutput.parse(text, offeredTools: weather)
        XCTAssertNil(output.content, "no stray content between the calls")
        XCTAssertEqual(output.toolCalls, [
            ToolCall(name: "get_weather", arguments: ["city": "Tokyo"]),
            ToolCall(name: "get_time", arguments: ["timezone": "Asia/Tokyo"]),
        ])
    }

    func testTaggedCallWithTextAround() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"
        let output = AssistantOutput.parse(text, offeredTools: weather)
        XCTAssertEqual(output.content, "Let me check.")
        XCTAssertEqual(output.toolCalls, [ToolCall(name: "get_weather", arguments: ["city": "Oslo"])])
    }

    func testArgumentsAsJSONString() {
        // Some models write the arguments as a JSON-encoded string, as OpenAI's API does.
        let text = #"<tool_call>{"name": "get_weather", "arguments": "{\"city\": \"Lima\"}"}</tool_call>"#
        XCTAssertEqual(AssistantOutput.parse(text, offeredTools: weather).toolCalls,
                       [ToolCall(name: "get_weather", arguments: ["city": "Lima"])])
    }

    func testBareJSONToolCall() {
        // What Qwen2.5-Coder-0.5B answers to a tool request: the call object without tags.
        let text = #"{"name": "get_weather", "arguments": {"city": "Tokyo", "unit": "celsius"}}"#
        let output = AssistantOutput.parse(text, offeredTools: weather)
        XCTAssertNil(output.content)
        XCTAssertEqual(output.toolCalls, [ToolCall(name: "get_weather", arguments: ["city": "Tokyo", "unit": "celsius"])])

        let fenced = "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tokyo\"}}\n```"
        XCTAssertEqual(AssistantOutput.parse(fenced, offeredTools: weather).toolCalls,
                       [ToolCall(name: "get_weather", arguments: ["city": "Tokyo"])])

        let array = #"[{"name": "get_weather", "arguments": {"city": "A"}}, {"name": "get_time", "arguments": {}}]"#
        XCTAssertEqual(AssistantOutput.parse(array, offeredTools: weather).toolCalls,
                       [ToolCall(name: "get_weather", arguments: ["city": "A"]), ToolCall(name: "get_time", arguments: [:])])
    }

    func testBareObjectNamingUnknownToolStaysContent() {
        let text = #"{"name": "book_flight", "arguments": {"to": "Tokyo"}}"#
        XCTAssertEqual(AssistantOutput.parse(text, offeredTools: weather),
                       AssistantOutput(reasoning: nil, content: text, toolCalls: []))
        // An ordinary JSON answer is content too.
        let data = #"{"city": "Tokyo", "temperature": 21}"#
        XCTAssertEqual(AssistantOutput.parse(data, offeredTools: weather).content, data)
        // One unknown name in an array keeps the whole answer as content.
        let mixed = #"[{"name": "get_weather", "arguments": {}}, {"name": "nope", "arguments": {}}]"#
        XCTAssertEqual(AssistantOutput.parse(mixed, offeredTools: weather).content, mixed)
    }

    func testNoToolsOfferedMeansNoToolCalls() {
        let bare = #"{"name": "get_weather", "arguments": {"city": "Tokyo"}}"#
        XCTAssertEqual(AssistantOutput.parse(bare, offeredTools: []).content, bare)
        XCTAssertEqual(AssistantOutput.parse(bare, offeredTools: []).toolCalls, [])
        let tagged = "<tool_call>\n" + bare + "\n</tool_call>"
        XCTAssertEqual(AssistantOutput.parse(tagged, offeredTools: []),
                       AssistantOutput(reasoning: nil, content: tagged, toolCalls: []))
    }

    func testBrokenToolCallIsPlainContent() {
        let broken = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tok\n</tool_call>"
        XCTAssertEqual(AssistantOutput.parse(broken, offeredTools: weather),
                       AssistantOutput(reasoning: nil, content: broken, toolCalls: []))
        // Cut off before the closing tag (max_tokens).
        let unclosed = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tokyo\"}}"
        XCTAssertEqual(AssistantOutput.parse(unclosed, offeredTools: weather).content, unclosed)
        XCTAssertEqual(AssistantOutput.parse(unclosed, offeredTools: weather).toolCalls, [])
        // One good and one broken block: all content, nothing half-called.
        let half = "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": }</tool_call>"
        XCTAssertEqual(AssistantOutput.parse(half, offeredTools: weather),
                       AssistantOutput(reasoning: nil, content: half, toolCalls: []))
        // A call without a name, or with arguments that are not an object.
        let nameless = #"<tool_call>{"arguments": {}}</tool_call>"#
        XCTAssertEqual(AssistantOutput.parse(nameless, offeredTools: weather).content, nameless)
        let listArguments = #"<tool_call>{"name": "get_time", "arguments": [1]}</tool_call>"#
        XCTAssertEqual(AssistantOutput.parse(listArguments, offeredTools: weather).content, listArguments)
    }

    func testThinkSplitting() {
        let text = "<think>\nThe user wants 2+2.\nThat is 4.\n</think>\n\nThe answer is 4."
        XCTAssertEqual(AssistantOutput.parse(text, offeredTools: []),
                       AssistantOutput(reasoning: "The user wants 2+2.\nThat is 4.", content: "The answer is 4.", toolCalls: []))

        // The template opened the block (Qwen3 thinking models): the text starts inside it.
        XCTAssertEqual(AssistantOutput.parse("Short thought.\n</think>\n\nHi!", offeredTools: [], startsInReasoning: true),
                       AssistantOutput(reasoning: "Short thought.", content: "Hi!", toolCalls: []))

        // A thought cut off by max_tokens is all reasoning, never content.
        XCTAssertEqual(AssistantOutput.parse("<think>\nStill thinking", offeredTools: []),
                       AssistantOutput(reasoning: "Still thinking", content: nil, toolCalls: []))
        XCTAssertEqual(AssistantOutput.parse("Still thinking", offeredTools: [], startsInReasoning: true),
                       AssistantOutput(reasoning: "Still thinking", content: nil, toolCalls: []))

        // An empty thought (Qwen3 with thinking off) gives no reasoning.
        XCTAssertEqual(AssistantOutput.parse("<think>\n\n</think>\n\nHello.", offeredTools: []),
                       AssistantOutput(reasoning: nil, content: "Hello.", toolCalls: []))

        // Tags later in the answer are text, not reasoning.
        XCTAssertEqual(AssistantOutput.parse("Write </think> to close.", offeredTools: []).content, "Write </think> to close.")
        XCTAssertNil(AssistantOutput.parse("Use <think> tags.", offeredTools: []).reasoning)

        // Reasoning, then a tool call.
        let thenCall = "<think>\nI need the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>"
        XCTAssertEqual(AssistantOutput.parse(thenCall, offeredTools: weather),
                       AssistantOutput(reasoning: "I need the weather.", content: nil,
                                       toolCalls: [ToolCall(name: "get_weather", arguments: ["city": "Rome"])]))
    }
}
