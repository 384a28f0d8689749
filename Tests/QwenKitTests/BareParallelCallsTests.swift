import QwenKit
import XCTest

/// Small Qwen models write parallel tool calls as bare JSON objects one after another.
final class BareParallelCallsTests: XCTestCase {
    let tools: Set<String> = ["search_flights", "get_weather"]

    func testConsecutiveObjectsAreParallelCalls() {
        let text = #"{"name": "search_flights", "arguments": {"origin": "Hanoi", "note": "a } in a string"}} {"name": "get_weather", "arguments": {"city": "Hue"}}"#
        let output = AssistantOutput.parse(text, offeredTools: tools)
        XCTAssertNil(output.content)
        XCTAssertEqual(output.toolCalls.map(\.name), ["search_flights", "get_weather"])
        XCTAssertEqual(output.toolCalls.first?.arguments["note"]?.stringValue, "a } in a string")
        XCTAssertEqual(output.toolCalls.last?.arguments["city"]?.stringValue, "Hue")
    }

    func testAnythingElseStaysContent() {
        let prose = #"{"name": "get_weather", "arguments": {}} and then {"name": "get_weather", "arguments": {}}"#
        XCTAssertEqual(AssistantOutput.parse(prose, offeredTools: tools).toolCalls, [])
        let unknown = #"{"name": "get_weather", "arguments": {}} {"name": "launch_rocket", "arguments": {}}"#
        XCTAssertEqual(AssistantOutput.parse(unknown, offeredTools: tools).toolCalls, [])
        XCTAssertEqual(AssistantOutput.parse(unknown, offeredTools: tools).content, unknown)
        let broken = #"{"name": "get_weather", "arguments": {}} {"name": "#
        XCTAssertEqual(AssistantOutput.parse(broken, offeredTools: tools).toolCalls, [])
    }
}
