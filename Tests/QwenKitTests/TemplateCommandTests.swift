import Foundation
import QwenKit
import XCTest

/// `qwenkit template --template FILE --messages FILE [--tools FILE]` reproduces every rendered
/// conversation of `../shared/fixtures/templates/cases.jsonl`, byte for byte.
final class TemplateCommandTests: XCTestCase {
    func testEveryFixtureCaseThroughTheBinary() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let lines = String(decoding: try Fixtures.data("templates/cases.jsonl"), as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 42)
        for line in lines {
            let c = try JSONValue.parse(Array(line.utf8))
            let id = c["id"]?.intValue ?? -1
            guard let template = c["template"]?.stringValue, let rendered = c["rendered"]?.stringValue,
                  let messages = c["messages"] else {
                XCTFail("case \(id) is malformed")
                continue
            }
            let messagesFile = folder.appendingPathComponent("messages-\(id).json")
            try Data(messages.pythonJSON.utf8).write(to: messagesFile)
            var arguments = ["template", "--template", Fixtures.url("templates/\(template).jinja").path,
                             "--messages", messagesFile.path]
            if let tools = c["tools"], !tools.isNull {
                let toolsFile = folder.appendingPathComponent("tools-\(id).json")
                try Data(tools.pythonJSON.utf8).write(to: toolsFile)
                arguments += ["--tools", toolsFile.path]
            }
            if c["add_generation_prompt"]?.boolValue == false { arguments.append("--no-generation-prompt") }
            if let thinking = c["enable_thinking"]?.boolValue { arguments += ["--enable-thinking", String(thinking)] }
            let output = try QwenKitBinary.run(arguments)
            XCTAssertEqual(output.status, 0, "case \(id): \(output.stderr)")
            XCTAssertEqual(output.stdout, rendered, "case \(id) (\(template))")
        }
    }

    func testTemplateErrorNamesTheLine() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let template = folder.appendingPathComponent("bad.jinja")
        try Data("{% for m in messages %}\n{{ m.content | nosuchfilter }}\n{% endfor %}".utf8).write(to: template)
        let messages = folder.appendingPathComponent("m.json")
        try Data(#"[{"role": "user", "content": "hi"}]"#.utf8).write(to: messages)
        let output = try QwenKitBinary.run(["template", "--template", template.path, "--messages", messages.path])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertFalse(output.crashed)
        XCTAssertTrue(output.stderr.contains("line 2"), output.stderr)
    }
}
