import XCTest
@testable import QwenKit

/// Every case of templates/cases.jsonl, rendered by the Jinja engine from the verbatim template.
final class JinjaFixtureTests: XCTestCase {
    func loadTemplate(_ name: String) throws -> ChatTemplateRenderer {
        let data = try Fixtures.data("templates/\(name).jinja")
        return try ChatTemplateRenderer(template: String(decoding: data, as: UTF8.self))
    }

    func testEveryTemplateCaseRendersByteIdentically() throws {
        let renderers = ["qwen2.5": try loadTemplate("qwen2.5"), "qwen3": try loadTemplate("qwen3")]
        let data = try Fixtures.data("templates/cases.jsonl")
        var checked = 0
        var viaChatMessage = 0
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let json = try JSONValue.parse(line)
            let id = try XCTUnwrap(json["id"]?.intValue)
            let templateName = try XCTUnwrap(json["template"]?.stringValue)
            let renderer = try XCTUnwrap(renderers[templateName], "unknown template \(templateName)")
            let messages = try XCTUnwrap(json["messages"]?.arrayValue)
            let tools = json["tools"]?.arrayValue
            let addGenerationPrompt = try XCTUnwrap(json["add_generation_prompt"]?.boolValue)
            var extra: [String: JSONValue] = [:]
            if let thinking = json["enable_thinking"], !thinking.isNull { extra["enable_thinking"] = thinking }
            let expected = try XCTUnwrap(json["rendered"]?.stringValue)

            let rendered = try renderer.render(messageObjects: messages, tools: tools,
                                               addGenerationPrompt: addGenerationPrompt, extraContext: extra)
            XCTAssertEqual(rendered, expected, "case \(id) (\(templateName))")
            checked += 1

            // The ChatMessage route gives the same bytes wherever ChatMessage models every field.
            let typed = try messages.map(ChatMessage.init(json:))
            if messages.allSatisfy({ $0["reasoning_content"] == nil }) {
                let viaTyped = try renderer.render(messages: typed, tools: tools, addGenerationPrompt: addGenerationPrompt,
                                                   extraContext: extra)
                XCTAssertEqual(viaTyped, expected, "case \(id) (\(templateName)) via ChatMessage")
                viaChatMessage += 1
            }
        }
        XCTAssertEqual(checked, 42)
        XCTAssertGreaterThan(viaChatMessage, 35)
    }
}
