import Foundation
import QwenKit
@testable import QwenServer
import XCTest

/// The server with a model whose chat template writes Qwen3.5's XML tool calls: the tiny Qwen2
/// model with `templates/qwen3.5.jinja` in place of its own template. Its random weights never
/// write a call unprompted, so `tool_choice` makes it write one; scripted answers go through the
/// response assembly directly.
final class XMLToolCallServerTests: XCTestCase {
    /// The tiny model's Hugging Face folder, copied with the Qwen3.5 chat template.
    static let xmlModel = Result { () throws -> LanguageModel in
        let template = try String(contentsOf: ServerFixtures.root.appendingPathComponent("templates/qwen3.5.jinja"), encoding: .utf8)
        return try ServerFixtures.tinyModel(template: template)
    }

    func makeXMLEngine() throws -> InferenceEngine {
        try InferenceEngine(model: Self.xmlModel.get(), modelID: "tiny-xml", contextLength: 2048, parallel: 1, threads: 1)
    }

    /// Thinking off: the random model would not end a thought.
    static let noThinking = #", "chat_template_kwargs": {"enable_thinking": false}"#

    func testTheTemplateMakesTheFormatXML() throws {
        XCTAssertEqual(try Self.xmlModel.get().toolCallFormat, .xml)
        XCTAssertEqual(try ServerFixtures.tinyModel.get().toolCallFormat, .json)
    }

    func testNamedFunctionIsWrittenAsAnXMLCall() async throws {
        try await checkNamedToolChoice(makeXMLEngine(), extra: Self.noThinking)
    }

    func testRequiredStreamsTheCallAsDeltas() async throws {
        let engine = try makeXMLEngine()
        try await withRouter(engine) { client in
            let reply = try await client.post("/v1/chat/completions",
                                              ToolChoiceTests.request(#""required""#, extra: Self.noThinking + #", "stream": true"#))
            XCTAssertEqual(reply.status, .ok, reply.text)
            let chunks = sseEvents(reply.text).dropLast().compactMap { try? JSONValue.parse($0) }
            let deltas = chunks.compactMap { $0["choices"]?[0]?["delta"] }
            let calls = deltas.compactMap { $0["tool_calls"]?[0] }
            let first = try XCTUnwrap(calls.first, reply.text)
            XCTAssertEqual(first["index"], 0)
            XCTAssertEqual(first["type"], "function")
            XCTAssertTrue(first["id"]?.stringValue?.hasPrefix("call_") == true)
            XCTAssertEqual(first["function"]?["arguments"], "")
            let name = try XCTUnwrap(first["function"]?["name"]?.stringValue)
            XCTAssertTrue(["set_unit", "toggle"].contains(name), name)
            let arguments = calls.dropFirst().compactMap { $0["function"]?["arguments"]?.stringValue }.joined()
            guard case .object = try JSONValue.parse(arguments) else { return XCTFail("arguments: \(arguments)") }
            XCTAssertEqual(chunks.last?["choices"]?[0]?["finish_reason"], "tool_calls")
            let content = deltas.compactMap { $0["content"]?.stringValue }.joined()
            XCTAssertEqual(content, "", "no markup in content")
        }
    }

    // MARK: - Scripted answers

    static let tools = OfferedTools(definitions: (try? JSONValue.parse(ToolChoiceTests.tools))?.arrayValue ?? [])
    static let answer = """
        <think>
        The lamp and the unit.
        </think>

        Doing both.

        <tool_call>
        <function=toggle>
        <parameter=on>
        True
        </parameter>
        </function>
        </tool_call>
        <tool_call>
        <function=set_unit>
        <parameter=unit>
        celsius
        </parameter>
        </function>
        </tool_call>
        """

    func testScriptedAnswerAsAMessage() throws {
        let output = AssistantOutput.parse(Self.answer, tools: Self.tools, format: .xml)
        let message = OpenAIRoutes.message(for: output)
        XCTAssertEqual(message["content"], "Doing both.")
        XCTAssertEqual(message["reasoning_content"], "The lamp and the unit.")
        let calls = try XCTUnwrap(message["tool_calls"]?.arrayValue)
        XCTAssertEqual(calls.map { $0["function"]?["name"] }, ["toggle", "set_unit"])
        XCTAssertEqual(calls.map { $0["function"]?["arguments"] }, [#"{"on": true}"#, #"{"unit": "celsius"}"#])
        XCTAssertEqual(Set(calls.compactMap { $0["id"]?.stringValue }).count, 2, "distinct ids")
    }

    /// The deltas of a scripted answer, cut at random, add up (the way OpenAI clients merge them)
    /// to the non-streamed message.
    func testScriptedAnswerStreamsToTheSameMessage() throws {
        let expected = OpenAIRoutes.message(for: AssistantOutput.parse(Self.answer, tools: Self.tools, format: .xml))
        var generator = SplitMix64(seed: 5)
        for _ in 0..<50 {
            var parser = AssistantStreamParser(tools: Self.tools, format: .xml)
            var deltas: [JSONValue] = []
            var start = Self.answer.startIndex
            while start < Self.answer.endIndex {
                let end = Self.answer.index(start, offsetBy: Int(generator.next() % 9) + 1, limitedBy: Self.answer.endIndex)
                    ?? Self.answer.endIndex
                deltas += chatDeltas(for: parser.feed(String(Self.answer[start..<end])))
                start = end
            }
            deltas += chatDeltas(for: parser.finish().events)
            var content = "", reasoning = ""
            var calls: [(id: String, name: String, arguments: String)] = []
            for delta in deltas {
                content += delta["content"]?.stringValue ?? ""
                reasoning += delta["reasoning_content"]?.stringValue ?? ""
                guard let call = delta["tool_calls"]?[0], let index = call["index"]?.intValue else { continue }
                if index == calls.count {
                    calls.append((call["id"]?.stringValue ?? "", call["function"]?["name"]?.stringValue ?? "", ""))
                }
                calls[index].arguments += call["function"]?["arguments"]?.stringValue ?? ""
            }
            XCTAssertEqual(content, expected["content"]?.stringValue)
            XCTAssertEqual(reasoning, expected["reasoning_content"]?.stringValue)
            XCTAssertEqual(calls.map(\.name), ["toggle", "set_unit"])
            XCTAssertEqual(calls.map(\.arguments), expected["tool_calls"]?.arrayValue?.compactMap { $0["function"]?["arguments"]?.stringValue })
            XCTAssertTrue(calls.allSatisfy { $0.id.hasPrefix("call_") })
        }
    }
}
