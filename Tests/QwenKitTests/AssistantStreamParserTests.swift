import QwenKit
import XCTest

/// `AssistantStreamParser`: however the model's text is cut into pieces, the streamed events add
/// up to the whole-text parse, and well-formed markup never shows in `content`.
final class AssistantStreamParserTests: XCTestCase {
    static let tools: Set<String> = ["get_weather", "get_time"]
    static let call = #"{"name": "get_weather", "arguments": {"city": "Tokyo", "unit": "celsius"}}"#

    /// (text, offered tools, starts in reasoning, markup may appear in content)
    static let cases: [(String, Set<String>, Bool, Bool)] = [
        ("Hello, world!", [], false, false),
        ("  Hello,\n world!  \n", tools, false, false),
        ("<think>\nLet me add.\n2 + 2 = 4\n</think>\n\nThe answer is 4.", [], false, false),
        ("<think>\nLet me add.\n</think>\n\nThe answer is 4.", tools, false, false),
        ("Thinking already.\n</think>\n\nDone.", [], true, false),
        ("<think>\nNever finished", tools, false, false),
        ("<tool_call>\n\(call)\n</tool_call>", tools, false, false),
        ("<tool_call>\n\(call)\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>", tools, false, false),
        ("Let me check that.\n<tool_call>\n\(call)\n</tool_call>", tools, false, false),
        ("<think>\nNeed weather.\n</think>\n\n<tool_call>\n\(call)\n</tool_call>", tools, false, false),
        (call, tools, false, false),
        ("```json\n\(call)\n```", tools, false, false),
        ("```python\nprint('hi')\n```", tools, false, false),
        (#"{"name": "book_flight", "arguments": {}}"#, tools, false, false),
        ("[1] A list, not a call.", tools, false, false),
        ("Compare a < b and <tool_ but not a call.", tools, false, false),
        ("The tag </think> is text here.", [], false, true),
        // Broken JSON in a tag: the whole answer comes back as plain content, markup included.
        ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \n</tool_call>", tools, false, true),
        ("Sure.\n<tool_call>\n{\"name\": \"get_weather\"", tools, false, true),
        // Without tools, tags are text.
        ("<tool_call>\n\(call)\n</tool_call>", [], false, true),
        ("Caf\u{E9} cr\u{E8}me, e\u{301}t\u{E9} 日本語 ✓", tools, false, false),
    ]

    struct Outcome: Equatable {
        var reasoning: String
        var content: String
        var toolCalls: [ToolCall]
        var contentEvents: [String]
    }

    func run(_ pieces: [String], tools: Set<String>, startsInReasoning: Bool) -> Outcome {
        var parser = AssistantStreamParser(offeredTools: tools, startsInReasoning: startsInReasoning)
        var events: [AssistantStreamParser.Event] = []
        for piece in pieces { events += parser.feed(piece) }
        let (rest, calls) = parser.finish()
        events += rest
        var reasoning = "", content = ""
        var contentEvents: [String] = []
        var callEvents: [(name: String, arguments: String)] = []
        for event in events {
            switch event {
            case .reasoning(let text):
                XCTAssertFalse(text.isEmpty, "no empty events")
                reasoning += text
            case .content(let text):
                XCTAssertFalse(text.isEmpty, "no empty events")
                content += text
                contentEvents.append(text)
            case let .toolCall(index, name):
                XCTAssertEqual(index, callEvents.count, "calls start in order")
                callEvents.append((name, ""))
            case let .toolCallArguments(index, text):
                callEvents[index].arguments += text
            }
        }
        // JSON calls come out whole at the end, as events too.
        XCTAssertEqual(callEvents.map(\.name), calls.map(\.name))
        XCTAssertEqual(callEvents.map(\.arguments), calls.map(\.arguments.pythonJSON))
        return Outcome(reasoning: reasoning, content: content, toolCalls: calls, contentEvents: contentEvents)
    }

    func check(_ text: String, tools: Set<String>, startsInReasoning: Bool, markupAllowed: Bool, splits: [[String]],
               file: StaticString = #filePath, line: UInt = #line) {
        let whole = AssistantOutput.parse(text, offeredTools: tools, startsInReasoning: startsInReasoning)
        for pieces in splits {
            XCTAssertEqual(pieces.joined(), text)
            let outcome = run(pieces, tools: tools, startsInReasoning: startsInReasoning)
            let label = "\(text.debugDescription) split as \(pieces.map(\.debugDescription))"
            XCTAssertEqual(outcome.reasoning, whole.reasoning ?? "", "reasoning: " + label, file: file, line: line)
            XCTAssertEqual(outcome.content, whole.content ?? "", "content: " + label, file: file, line: line)
            XCTAssertEqual(outcome.toolCalls, whole.toolCalls, "tool calls: " + label, file: file, line: line)
            if !markupAllowed {
                for marker in ["<tool_call>", "</tool_call>", "<think>", "</think>"] {
                    XCTAssertFalse(outcome.content.contains(marker), "\(marker) in content: " + label, file: file, line: line)
                }
            }
        }
    }

    /// Every way to cut each text in two and in three (at character boundaries), and one piece per character.
    func testEverySplitAddsUpToTheWholeParse() {
        for (text, tools, startsInReasoning, markupAllowed) in Self.cases {
            let characters = Array(text).map(String.init)
            var splits: [[String]] = [[text], characters]
            let n = characters.count
            for i in 0...n {
                splits.append([characters[..<i].joined(), characters[i...].joined()])
                for j in stride(from: i, through: n, by: max(1, n / 12)) {
                    splits.append([characters[..<i].joined(), characters[i..<j].joined(), characters[j...].joined()])
                }
            }
            check(text, tools: tools, startsInReasoning: startsInReasoning, markupAllowed: markupAllowed, splits: splits)
        }
    }

    /// Pieces cut inside characters' scalars (a combining accent arriving after its letter).
    func testScalarSplits() {
        let text = "e\u{301}te\u{301} ok"
        let scalars = Array(text.unicodeScalars).map { String($0) }
        check(text, tools: Self.tools, startsInReasoning: false, markupAllowed: false, splits: [scalars])
        check(text, tools: [], startsInReasoning: false, markupAllowed: false, splits: [scalars])
    }

    /// Plain content streams as it comes rather than at the end; a possible tool call is held back.
    func testContentStreamsEarly() {
        var parser = AssistantStreamParser(offeredTools: Self.tools)
        XCTAssertEqual(parser.feed("Hello"), [.content("Hello")])
        XCTAssertEqual(parser.feed(" there <tool"), [.content(" there")])
        XCTAssertEqual(parser.feed("_call>{\"name\": \"get_time\", \"arguments\": {}}"), [])
        XCTAssertEqual(parser.feed("</tool_call>"), [])
        let (rest, calls) = parser.finish()
        XCTAssertEqual(rest, [.toolCall(index: 0, name: "get_time"), .toolCallArguments(index: 0, "{}")],
                       "a JSON call comes out whole at the end")
        XCTAssertEqual(calls, [ToolCall(name: "get_time", arguments: [:])])

        var thinking = AssistantStreamParser(offeredTools: [])
        XCTAssertEqual(thinking.feed("<think>\nStep one"), [.reasoning("Step one")])
        XCTAssertEqual(thinking.feed(", step two.\n</thi"), [.reasoning(", step two.")])
        XCTAssertEqual(thinking.feed("nk>\n\nAnswer"), [.content("Answer")])
        XCTAssertEqual(thinking.finish().events, [])

        var bare = AssistantStreamParser(offeredTools: Self.tools)
        XCTAssertEqual(bare.feed("{\"name\": \"get_weather\", "), [], "a bare call is held back")
        XCTAssertEqual(bare.feed("\"arguments\": {\"city\": \"Tokyo\"}}"), [])
        XCTAssertEqual(bare.finish().toolCalls, [ToolCall(name: "get_weather", arguments: ["city": "Tokyo"])])
    }
}
