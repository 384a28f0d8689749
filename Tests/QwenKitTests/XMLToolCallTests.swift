import Foundation
@testable import QwenKit
import XCTest

/// Qwen3.5's XML tool calls: the whole-text parse, the stream parser's argument deltas, and the
/// format read from the chat template. Expected values are written by hand from the format the
/// template writes (`templates/qwen3.5.jinja`), or taken from the template's rendered cases.
final class XMLToolCallTests: XCTestCase {
    static let definitions: [JSONValue] = [
        tool("get_weather", #"{"location": {"type": "string"}, "days": {"type": "integer"}}"#),
        tool("get_time", #"{"timezone": {"type": "string"}}"#),
        tool("typed", #"""
            {"text": {"type": "string"}, "count": {"type": "integer"}, "ratio": {"type": "number"},
             "on": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}},
             "options": {"type": "object"}, "maybe": {"type": ["string", "null"]}, "nothing": {"type": "null"},
             "unit": {"enum": ["celsius", "fahrenheit"]}}
            """#),
    ]
    static let tools = OfferedTools(definitions: definitions)

    static func tool(_ name: String, _ properties: String) -> JSONValue {
        // The schemas above are valid JSON; a typo shows up as a failing test, not a crash.
        .object([("type", "function"), ("function", .object([
            ("name", .string(name)),
            ("parameters", .object([("type", "object"), ("properties", (try? JSONValue.parse(properties)) ?? .null)])),
        ]))])
    }

    static let weatherCall = """
        <tool_call>
        <function=get_weather>
        <parameter=location>
        Tokyo
        </parameter>
        <parameter=days>
        3
        </parameter>
        </function>
        </tool_call>
        """

    func parse(_ text: String, tools: OfferedTools = tools, startsInReasoning: Bool = false) -> AssistantOutput {
        AssistantOutput.parse(text, tools: tools, format: .xml, startsInReasoning: startsInReasoning)
    }

    /// One call of `typed` with a single parameter written as the template writes it.
    func typedValue(_ key: String, _ value: String) -> JSONValue? {
        let text = "<tool_call>\n<function=typed>\n<parameter=\(key)>\n\(value)\n</parameter>\n</function>\n</tool_call>"
        return parse(text).toolCalls.first?.arguments[key]
    }

    // MARK: - Whole text

    func testSingleCall() {
        let output = parse(Self.weatherCall)
        XCTAssertNil(output.content)
        XCTAssertNil(output.reasoning)
        XCTAssertEqual(output.toolCalls, [ToolCall(name: "get_weather", arguments: ["location": "Tokyo", "days": 3])])
        XCTAssertEqual(output.toolCalls.first?.arguments.pythonJSON, #"{"location": "Tokyo", "days": 3}"#)
    }

    func testParallelCallsKeepTheirOrderAndKeyOrder() {
        let second = "<tool_call>\n<function=get_time>\n<parameter=timezone>\nAsia/Tokyo\n</parameter>\n</function>\n</tool_call>"
        let swapped = "<tool_call>\n<function=get_weather>\n<parameter=days>\n2\n</parameter>\n<parameter=location>\nOslo\n</parameter>\n</function>\n</tool_call>"
        let output = parse(Self.weatherCall + "\n" + second + "\n" + swapped)
        XCTAssertNil(output.content)
        XCTAssertEqual(output.toolCalls.map(\.name), ["get_weather", "get_time", "get_weather"])
        XCTAssertEqual(output.toolCalls.map(\.arguments.pythonJSON), [
            #"{"location": "Tokyo", "days": 3}"#, #"{"timezone": "Asia/Tokyo"}"#, #"{"days": 2, "location": "Oslo"}"#,
        ])
    }

    func testTextBeforeTheCallIsContent() {
        let output = parse("Let me look that up.\n\n" + Self.weatherCall)
        XCTAssertEqual(output.content, "Let me look that up.")
        XCTAssertEqual(output.toolCalls.map(\.name), ["get_weather"])
    }

    func testThinkingThenCall() {
        let thought = "The user wants the weather.\nCall the tool."
        for (text, startsInReasoning) in [("<think>\n\(thought)\n</think>\n\n" + Self.weatherCall, false),
                                          ("\(thought)\n</think>\n\n" + Self.weatherCall, true)] {
            let output = parse(text, startsInReasoning: startsInReasoning)
            XCTAssertEqual(output.reasoning, thought)
            XCTAssertNil(output.content)
            XCTAssertEqual(output.toolCalls.map(\.name), ["get_weather"])
        }
        // A call inside an unfinished thought is reasoning, not a call.
        let unfinished = parse("Maybe " + Self.weatherCall, startsInReasoning: true)
        XCTAssertEqual(unfinished.toolCalls, [])
        XCTAssertEqual(unfinished.reasoning, "Maybe " + Self.weatherCall)
    }

    func testStringValuesAreVerbatimLessOneNewlineEachSide() {
        XCTAssertEqual(typedValue("text", "line one\n  line two"), .string("line one\n  line two"))
        XCTAssertEqual(typedValue("text", "\nblank lines around\n"), .string("\nblank lines around\n"))
        XCTAssertEqual(typedValue("text", "  padded  "), .string("  padded  "))
        XCTAssertEqual(typedValue("text", "3"), .string("3"), "a string-typed 3 stays a string")
        XCTAssertEqual(typedValue("text", "true"), .string("true"))
        XCTAssertEqual(typedValue("text", #"{"a": 1}"#), .string(#"{"a": 1}"#))
        XCTAssertEqual(typedValue("text", "<b>bold</b> & \"quotes\" ✓ 日本語"), .string("<b>bold</b> & \"quotes\" ✓ 日本語"))
        XCTAssertEqual(typedValue("text", ""), .string(""))
        XCTAssertEqual(typedValue("unit", "celsius"), .string("celsius"), "an enum of strings is a string")
    }

    func testTypedValuesAreReadAsJSON() {
        XCTAssertEqual(typedValue("count", "40"), .int(40))
        XCTAssertEqual(typedValue("count", "  -7 "), .int(-7))
        XCTAssertEqual(typedValue("ratio", "2.5"), .double(2.5))
        XCTAssertEqual(typedValue("on", "true"), .bool(true))
        XCTAssertEqual(typedValue("on", "True"), .bool(true), "the template writes Python's str(True)")
        XCTAssertEqual(typedValue("on", "False"), .bool(false))
        XCTAssertEqual(typedValue("tags", #"["a", "b"]"#), .array(["a", "b"]))
        XCTAssertEqual(typedValue("options", "{\"depth\": 2,\n \"fast\": true}"), .object([("depth", 2), ("fast", true)]))
        XCTAssertEqual(typedValue("nothing", "None"), .null)
        XCTAssertEqual(typedValue("maybe", "None"), .null)
        XCTAssertEqual(typedValue("maybe", "null"), .null)
        XCTAssertEqual(typedValue("maybe", "Nonesuch"), .string("Nonesuch"))
        // Text that does not read as the type stays a string: nothing is lost.
        XCTAssertEqual(typedValue("count", "three"), .string("three"))
        XCTAssertEqual(typedValue("tags", "[a, b"), .string("[a, b"))
    }

    func testUntypedValuesTakeObviousLiterals() {
        let value = { (text: String) in
            self.typedValue("unlisted", text)
        }
        XCTAssertEqual(value("3"), .int(3))
        XCTAssertEqual(value("-0.5"), .double(-0.5))
        XCTAssertEqual(value("True"), .bool(true))
        XCTAssertEqual(value("false"), .bool(false))
        XCTAssertEqual(value("None"), .null)
        XCTAssertEqual(value("[1, 2]"), .array([1, 2]))
        XCTAssertEqual(value(#"{"k": "v"}"#), .object([("k", "v")]))
        XCTAssertEqual(value("Tokyo"), .string("Tokyo"))
        XCTAssertEqual(value("007"), .string("007"), "not a JSON number")
        XCTAssertEqual(value(#""quoted""#), .string(#""quoted""#), "a JSON string stays as written")
        // Functions known only by name: every value is typed by its text.
        let output = parse(Self.weatherCall, tools: OfferedTools(names: ["get_weather"]))
        XCTAssertEqual(output.toolCalls.first?.arguments.pythonJSON, #"{"location": "Tokyo", "days": 3}"#)
    }

    func testMissingFunctionCloseAndJSONBodyAreAccepted() {
        let noFunctionClose = "<tool_call>\n<function=get_time>\n<parameter=timezone>\nUTC\n</parameter>\n</tool_call>"
        XCTAssertEqual(parse(noFunctionClose).toolCalls, [ToolCall(name: "get_time", arguments: ["timezone": "UTC"])])
        let json = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"timezone\": \"UTC\"}}\n</tool_call>"
        XCTAssertEqual(parse(json).toolCalls, [ToolCall(name: "get_time", arguments: ["timezone": "UTC"])])
        let noParameters = "<tool_call>\n<function=get_time>\n</function>\n</tool_call>"
        XCTAssertEqual(parse(noParameters).toolCalls.first?.arguments.pythonJSON, "{}")
    }

    static let malformed: [String] = [
        // Cut off in the value, in a tag, before the end.
        "<tool_call>\n<function=get_weather>\n<parameter=location>\nTok",
        "<tool_call>\n<function=get_weath",
        "<tool_call>\n<function=get_weather>\n<parameter=location>\nTokyo\n</parameter>\n</function>\n",
        // A function that was not offered.
        "<tool_call>\n<function=book_flight>\n<parameter=to>\nOslo\n</parameter>\n</function>\n</tool_call>",
        // Text between tags, a parameter given twice, a value left open.
        "<tool_call>\n<function=get_weather>\nTokyo please\n</function>\n</tool_call>",
        "<tool_call>\n<function=get_weather>\n<parameter=days>\n1\n</parameter>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>",
        "<tool_call>\n<function=get_weather>\n<parameter=location>\nTokyo\n<parameter=days>\n3\n</function>\n</tool_call>",
        "<tool_call>\n<function=>\n</function>\n</tool_call>",
        "<tool_call>\n<function=get_weather\n>\n</function>\n</tool_call>",
        "<tool_call>junk</tool_call>",
        "<tool_call>\n{\"name\": \"get_time\", \"arguments\": \n</tool_call>",
    ]

    func testMalformedCallsAreContentAsWritten() {
        for text in Self.malformed {
            let output = parse("Checking.\n" + text)
            XCTAssertEqual(output.toolCalls, [], text)
            XCTAssertEqual(output.content, ("Checking.\n" + text).trimmingCharacters(in: .whitespacesAndNewlines), text)
        }
        // A broken block next to a good one: the good one is a call, the broken one stays as text.
        let broken = "<tool_call>\n<function=book_flight>\n</function>\n</tool_call>"
        let output = parse(broken + "\n" + Self.weatherCall)
        XCTAssertEqual(output.toolCalls.map(\.name), ["get_weather"])
        XCTAssertEqual(output.content, broken)
        // Without tools, tags are text.
        XCTAssertEqual(parse(Self.weatherCall, tools: .none).content, Self.weatherCall)
        XCTAssertEqual(parse(Self.weatherCall, tools: .none).toolCalls, [])
    }

    func testAnyFunctionAcceptsUnknownNames() {
        let call = "<tool_call>\n<function=book_flight>\n<parameter=to>\nOslo\n</parameter>\n</function>\n</tool_call>"
        XCTAssertEqual(parse(call, tools: .anyFunction).toolCalls, [ToolCall(name: "book_flight", arguments: ["to": "Oslo"])])
        XCTAssertEqual(parse(call, tools: Self.tools.acceptingAnyFunction()).toolCalls.map(\.name), ["book_flight"])
    }

    func testFormatComesFromTheChatTemplate() throws {
        let xml = try String(decoding: Fixtures.data("templates/qwen3.5.jinja"), as: UTF8.self)
        XCTAssertEqual(ToolCallFormat(chatTemplate: xml), .xml)
        for name in ["qwen2.5", "qwen3"] {
            let template = try String(decoding: Fixtures.data("templates/\(name).jinja"), as: UTF8.self)
            XCTAssertEqual(ToolCallFormat(chatTemplate: template), .json, name)
        }
        XCTAssertEqual(ToolCallFormat(chatTemplate: nil), .json)
    }

    /// Every assistant tool call in the Qwen3.5 template's rendered cases reads back as the call
    /// that was rendered, typed by the case's tool schemas.
    func testTemplateRenderedCallsReadBack() throws {
        let lines = try String(decoding: Fixtures.data("templates/cases-qwen3.5.jsonl"), as: UTF8.self).split(separator: "\n")
        var checked = 0
        for line in lines {
            let testCase = try JSONValue.parse(String(line))
            let expected = (testCase["messages"]?.arrayValue ?? []).compactMap { message -> [ToolCall]? in
                guard message["role"]?.stringValue == "assistant", let calls = message["tool_calls"]?.arrayValue,
                      !calls.isEmpty else { return nil }
                return calls.map { call in
                    let function = call["function"] ?? call
                    return ToolCall(name: function["name"]?.stringValue ?? "", arguments: function["arguments"] ?? .object([]))
                }
            }
            guard !expected.isEmpty, let rendered = testCase["rendered"]?.stringValue else { continue }
            let turns = rendered.components(separatedBy: "<|im_start|>assistant\n").dropFirst()
                .map { $0.components(separatedBy: "<|im_end|>")[0] }.filter { $0.contains("<tool_call>") }
            XCTAssertEqual(turns.count, expected.count, "case \(testCase["name"]?.stringValue ?? "")")
            let tools = OfferedTools(definitions: testCase["tools"]?.arrayValue ?? [])
            for (turn, calls) in zip(turns, expected) {
                let output = AssistantOutput.parse(turn, tools: tools.isEmpty ? .anyFunction : tools, format: .xml)
                XCTAssertEqual(output.toolCalls, calls, "case \(testCase["name"]?.stringValue ?? ""): \(turn)")
                XCTAssertFalse(output.content?.contains("<tool_call>") ?? false)
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 3, "the cases hold assistant tool calls")
    }

    // MARK: - Streaming

    struct Streamed {
        var reasoning = "", content = ""
        var names: [Int: String] = [:]
        var arguments: [Int: String] = [:]
        var calls: [ToolCall] = []
    }

    func stream(_ pieces: [String], tools: OfferedTools = tools, startsInReasoning: Bool = false) -> Streamed {
        var parser = AssistantStreamParser(tools: tools, format: .xml, startsInReasoning: startsInReasoning)
        var events: [AssistantStreamParser.Event] = []
        for piece in pieces { events += parser.feed(piece) }
        let (rest, calls) = parser.finish()
        events += rest
        var streamed = Streamed(calls: calls)
        for event in events {
            switch event {
            case .reasoning(let text): streamed.reasoning += text
            case .content(let text): streamed.content += text
            case let .toolCall(index, name):
                XCTAssertNil(streamed.names[index], "each call starts once")
                streamed.names[index] = name
                streamed.arguments[index] = ""
            case let .toolCallArguments(index, text):
                XCTAssertNotNil(streamed.names[index], "arguments come after the start")
                XCTAssertFalse(text.isEmpty, "no empty events")
                streamed.arguments[index, default: ""] += text
            }
        }
        return streamed
    }

    /// Cuts `text` at random character boundaries, from single characters to long runs.
    static func randomSplit(_ text: String, using generator: inout SplitMix64) -> [String] {
        let characters = Array(text)
        var pieces: [String] = []
        var start = 0
        let longest = Int(generator.next() % 12) + 1
        while start < characters.count {
            let length = min(Int(generator.next() % UInt64(longest)) + 1, characters.count - start)
            pieces.append(String(characters[start..<(start + length)]))
            start += length
        }
        return pieces
    }

    static let streamCases: [(text: String, startsInReasoning: Bool)] = [
        (weatherCall, false),
        ("Let me check.\n\n" + weatherCall + "\n<tool_call>\n<function=get_time>\n<parameter=timezone>\nUTC\n</parameter>\n</function>\n</tool_call>", false),
        ("<think>\nWeather first.\n</think>\n\n" + weatherCall, false),
        ("Weather first.\n</think>\n\n" + weatherCall, true),
        ("<tool_call>\n<function=typed>\n<parameter=text>\nline one\n</param not a tag\n\n</parameter>\n<parameter=count>\n12\n</parameter>\n<parameter=tags>\n[\"x\", \"y\"]\n</parameter>\n<parameter=on>\nTrue\n</parameter>\n<parameter=unlisted>\nNone\n</parameter>\n<parameter=maybe>\nmaybe\n</parameter>\n</function>\n</tool_call>", false),
        ("<tool_call>\n<function=typed>\n<parameter=text>\nCafe\u{301} 日本語 ✓ \"q\" \\ \t tab\n\n\n</parameter>\n</function>\n</tool_call>", false),
        ("<tool_call>\n<function=get_time>\n</function>\n</tool_call>", false),
        ("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"timezone\": \"UTC\"}}\n</tool_call>", false),
        ("Plain answer, a < b, <tool_ and <function=x> mentioned.", false),
    ]

    func testStreamedDeltasAddUpToTheFinalCalls() {
        var generator = SplitMix64(seed: 35)
        for (text, startsInReasoning) in Self.streamCases {
            let whole = parse(text, startsInReasoning: startsInReasoning)
            for round in 0..<60 {
                let pieces = round == 0 ? [text] : round == 1 ? text.map { String($0) } : Self.randomSplit(text, using: &generator)
                let streamed = stream(pieces, startsInReasoning: startsInReasoning)
                let label = "\(text.debugDescription) as \(pieces.map(\.debugDescription))"
                XCTAssertEqual(streamed.reasoning, whole.reasoning ?? "", label)
                XCTAssertEqual(streamed.content, whole.content ?? "", label)
                XCTAssertEqual(streamed.calls, whole.toolCalls, label)
                XCTAssertEqual(streamed.names.count, whole.toolCalls.count, label)
                for (index, call) in whole.toolCalls.enumerated() {
                    XCTAssertEqual(streamed.names[index], call.name, label)
                    XCTAssertEqual(streamed.arguments[index], call.arguments.pythonJSON, label)
                }
                for marker in ["<tool_call>", "</tool_call>", "<function=", "<parameter="] where !whole.toolCalls.isEmpty {
                    XCTAssertFalse(streamed.content.contains(marker), "\(marker) in content: " + label)
                }
            }
        }
    }

    func testStringValuesStreamBeforeTheirClosingTag() {
        var parser = AssistantStreamParser(tools: Self.tools, format: .xml)
        var events = parser.feed("<tool_call>\n<function=get_weather>\n<parameter=location>\nSan Fran")
        XCTAssertEqual(events, [.toolCall(index: 0, name: "get_weather"), .toolCallArguments(index: 0, #"{"location": "San Fran"#)])
        events = parser.feed("cisco\n</param")
        XCTAssertEqual(events, [.toolCallArguments(index: 0, "cisco")], "the newline may be the format's; it waits")
        events = parser.feed("eter>\n<parameter=days>\n1")
        XCTAssertEqual(events, [.toolCallArguments(index: 0, "\"")], "an integer waits for its closing tag")
        events = parser.feed("0\n</parameter>\n</function>\n</tool_call>")
        XCTAssertEqual(events, [.toolCallArguments(index: 0, #", "days": 10}"#)])
        XCTAssertEqual(parser.finish().toolCalls.first?.arguments.pythonJSON, #"{"location": "San Francisco", "days": 10}"#)
    }

    func testMalformedCallsStreamAsContent() {
        var generator = SplitMix64(seed: 7)
        for text in Self.malformed {
            let whole = parse("Checking.\n" + text)
            for _ in 0..<20 {
                let streamed = stream(Self.randomSplit("Checking.\n" + text, using: &generator))
                XCTAssertEqual(streamed.content, whole.content ?? "", text)
                XCTAssertEqual(streamed.calls, [], text)
            }
        }
        // A call cut off after it started streaming: no call at the end, and its text is content.
        let cut = stream(["<tool_call>\n<function=get_weather>\n<parameter=location>\nTok"])
        XCTAssertEqual(cut.names, [0: "get_weather"])
        XCTAssertEqual(cut.calls, [])
        XCTAssertEqual(cut.content, "<tool_call>\n<function=get_weather>\n<parameter=location>\nTok")
    }
}
