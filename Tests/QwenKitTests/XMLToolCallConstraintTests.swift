@testable import QwenKit
import XCTest

/// `XMLToolCallConstraint`'s automaton, byte by byte: what it lets through reads back as a call.
final class XMLToolCallConstraintTests: XCTestCase {
    static let functions: [(name: String, parameters: JSONValue)] = [
        ("get_weather", parameters(#"{"properties": {"location": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}"#)),
        ("ping", parameters(#"{"properties": {}}"#)),
    ]

    static func parameters(_ text: String) -> JSONValue { (try? JSONValue.parse(text)) ?? .null }

    func accepts(_ text: String, startsInReasoning: Bool = false) -> (accepted: Bool, complete: Bool) {
        var automaton = XMLToolCallAutomaton(tools: Self.functions, startsInReasoning: startsInReasoning)
        for byte in text.utf8 where !automaton.feed(byte) { return (false, false) }
        return (true, automaton.isComplete)
    }

    func testCallsTheTemplateWouldWriteAreAccepted() {
        let calls = [
            "<tool_call>\n<function=get_weather>\n<parameter=location>\nTokyo\n</parameter>\n</function>\n</tool_call>",
            "\n<tool_call>\n<function=get_weather>\n<parameter=days>\n3\n</parameter>\n<parameter=location>\nNew\nYork\n</parameter>\n<parameter=unit>\ncelsius\n</parameter>\n</function>\n</tool_call>",
            "<tool_call>\n<function=ping>\n</function>\n</tool_call>",
            "<tool_call>\n<function=ping>\n<parameter=anything>\n[1, 2]\n</parameter>\n</function>\n</tool_call>",
            "<tool_call>\n<function=get_weather>\n<parameter=location>\n\n</parameter>\n</function>\n</tool_call>",
        ]
        let tools = OfferedTools(definitions: Self.functions.map { .object([("name", .string($0.name)), ("parameters", $0.parameters)]) })
        for call in calls {
            XCTAssertTrue(accepts(call) == (true, true), call)
            XCTAssertEqual(AssistantOutput.parse(call, tools: tools, format: .xml).toolCalls.count, 1, call)
            // Every proper prefix is accepted but not complete.
            XCTAssertTrue(accepts(String(call.dropLast())) == (true, false), call)
        }
        let thought = "Let me think <tool_call> here.\n</think>\n\n" + calls[0]
        XCTAssertTrue(accepts(thought, startsInReasoning: true) == (true, true))
        XCTAssertTrue(accepts("Some text " + calls[0]) == (false, false), "without reasoning the call comes first")
    }

    func testWrongCallsAreRefused() {
        let refused = [
            "Sure! <tool_call>",
            "<tool_call>\n<function=book_flight>",
            "<tool_call>\n<function=get_weather>\n</function>",  // location is required
            "<tool_call>\n<function=get_weather>\n<parameter=city>",  // not a property
            "<tool_call>\n<function=get_weather>\n<parameter=days>\nthree",
            "<tool_call>\n<function=get_weather>\n<parameter=unit>\nkelvin",
            "<tool_call>\n<function=get_weather>\n<parameter=location>\nTokyo</parameter>",  // the newline is missing
            "<tool_call>\n<function=get_weather>\n<parameter=location>\nA\n</parameter>\n<parameter=location>",
            "<tool_call>\n<function=ping>\n<parameter=x>\n1\n</parameter>\n<parameter=x>",
            "<tool_call>\n<function=get_weather>\n<parameter=location>\nTokyo\n</parameter>\n</function>\n</tool_call>\nmore",
        ]
        for text in refused {
            XCTAssertFalse(accepts(text).accepted, text)
        }
    }

    /// Random walks through the automaton over a small alphabet always end in a call that reads
    /// back with the chosen function and typed values.
    func testRandomWalksReadBackAsCalls() {
        let alphabet = Array("<>/=\n _abcdefghijklmnoprstuwy0123456789[],\"{}:".utf8)
        let tools = OfferedTools(definitions: Self.functions.map { .object([("name", .string($0.name)), ("parameters", $0.parameters)]) })
        var generator = SplitMix64(seed: 11)
        var completed = 0
        for _ in 0..<200 {
            var automaton = XMLToolCallAutomaton(tools: Self.functions, startsInReasoning: false)
            var text: [UInt8] = []
            func take(_ bytes: [UInt8]) -> Bool {
                var trial = automaton
                guard bytes.allSatisfy({ trial.feed($0) }) else { return false }
                automaton = trial
                text += bytes
                return true
            }
            while !automaton.isComplete, text.count < 4000 {
                // Past a length, end what is open when it may end here.
                if text.count > 80, generator.next() % 3 == 0,
                   ["\n</parameter>\n", "</function>\n</tool_call>"].contains(where: { take(Array($0.utf8)) }) {
                    continue
                }
                let options = alphabet.filter { var trial = automaton; return trial.feed($0) }
                guard !options.isEmpty else { break }
                _ = take([options[Int(generator.next() % UInt64(options.count))]])
            }
            let output = String(decoding: text, as: UTF8.self)
            guard automaton.isComplete else { continue }  // a walk that ran long proves nothing either way
            completed += 1
            let calls = AssistantOutput.parse(output, tools: tools, format: .xml).toolCalls
            XCTAssertEqual(calls.count, 1, output)
            if let call = calls.first, call.name == "get_weather" {
                XCTAssertNotNil(call.arguments["location"]?.stringValue, output)
                if let days = call.arguments["days"] { XCTAssertNotNil(days.intValue, output) }
                if let unit = call.arguments["unit"] { XCTAssertTrue(["celsius", "fahrenheit"].contains(unit.stringValue ?? ""), output) }
            }
        }
        XCTAssertGreaterThan(completed, 100, "most walks end in a call")
    }
}
