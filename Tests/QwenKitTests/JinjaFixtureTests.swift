import XCTest
@testable import QwenKit

/// Every case of templates/cases.jsonl and templates/cases-qwen3.5.jsonl, rendered by the
/// Jinja engine from the verbatim templates.
final class JinjaFixtureTests: XCTestCase {
    func loadTemplate(_ name: String) throws -> ChatTemplateRenderer {
        let data = try Fixtures.data("templates/\(name).jinja")
        return try ChatTemplateRenderer(template: String(decoding: data, as: UTF8.self))
    }

    func testEveryTemplateCaseRendersByteIdentically() throws {
        let counts = try checkCases("templates/cases.jsonl",
                                    renderers: ["qwen2.5": try loadTemplate("qwen2.5"), "qwen3": try loadTemplate("qwen3")])
        XCTAssertEqual(counts.checked, 42)
        XCTAssertGreaterThan(counts.viaChatMessage, 35)
    }

    func testEveryQwen35TemplateCaseRendersByteIdentically() throws {
        let counts = try checkCases("templates/cases-qwen3.5.jsonl", renderers: ["qwen3.5": try loadTemplate("qwen3.5")])
        XCTAssertEqual(counts.checked, 23)
        XCTAssertGreaterThan(counts.viaChatMessage, 15)
    }

    /// The template's own `raise_exception` calls, which no fixture case exercises.
    func testQwen35TemplateRaisesItsErrors() throws {
        let renderer = try loadTemplate("qwen3.5")
        let user: JSONValue = .object([("role", .string("user")), ("content", .string("hi"))])
        let system: JSONValue = .object([("role", .string("system")), ("content", .string("be brief"))])
        let toolResult: JSONValue = .object([("role", .string("user")),
                                             ("content", .string("<tool_response>\n1\n</tool_response>"))])
        let image: JSONValue = .object([("role", .string("system")),
                                        ("content", .array([.object([("type", .string("image"))])]))])
        let unknownRole: JSONValue = .object([("role", .string("critic")), ("content", .string("?"))])
        let cases: [([JSONValue], String)] = [
            ([], "No messages provided."),
            ([toolResult], "No user query found in messages."),
            ([user, system], "System message must be at the beginning."),
            ([image, user], "System message cannot contain images."),
            ([user, unknownRole], "Unexpected message role."),
        ]
        for (messages, message) in cases {
            XCTAssertThrowsError(try renderer.render(messageObjects: messages, tools: nil, addGenerationPrompt: true)) { error in
                XCTAssertEqual((error as? JinjaError)?.message, message)
                XCTAssertEqual((error as? JinjaError)?.isRaisedByTemplate, true)
            }
        }
    }

    /// Renders every case of `file` and compares it with `rendered`; returns how many cases
    /// were checked, and how many of them also through ``ChatMessage``.
    private func checkCases(_ file: String, renderers: [String: ChatTemplateRenderer]) throws
        -> (checked: Int, viaChatMessage: Int) {
        let data = try Fixtures.data(file)
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

            // The ChatMessage route gives the same bytes wherever ChatMessage models every field
            // (not `reasoning_content` here, nor image content parts).
            if messages.allSatisfy({ $0["reasoning_content"] == nil }),
               let typed = try? messages.map(ChatMessage.init(json:)) {
                let viaTyped = try renderer.render(messages: typed, tools: tools, addGenerationPrompt: addGenerationPrompt,
                                                   extraContext: extra)
                XCTAssertEqual(viaTyped, expected, "case \(id) (\(templateName)) via ChatMessage")
                viaChatMessage += 1
            }
        }
        return (checked, viaChatMessage)
    }
}
