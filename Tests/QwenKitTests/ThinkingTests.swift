import Foundation
import QwenKit
import XCTest

/// Qwen3 thinking mode through `qwenkit run`: tiny-qwen3 with Qwen3's own template
/// (`enable_thinking`), and the reasoning/answer split of a known continuation.
final class ThinkingTests: XCTestCase {
    var folder: URL!

    /// A copy of tiny-qwen3 whose chat template is qwen3.jinja (the fixture folder carries Qwen2.5's).
    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-think-\(UUID().uuidString)")
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
            try fm.createSymbolicLink(at: folder.appendingPathComponent(name),
                                      withDestinationURL: Fixtures.url("models/tiny-qwen3/\(name)"))
        }
        var config = try JSONValue.parse(Array(try Fixtures.data("models/tiny-qwen3/tokenizer_config.json")))
        if case .object(let members) = config { config = .object(members.filter { $0.0 != "chat_template" }) }
        try Data(config.pythonJSON.utf8).write(to: folder.appendingPathComponent("tokenizer_config.json"))
        try fm.copyItem(at: Fixtures.url("templates/qwen3.jinja"), to: folder.appendingPathComponent("chat_template.jinja"))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func run(_ flag: String) throws -> (prompt: String, json: [String: Any]) {
        let output = try QwenKitBinary.run(["run", "-m", folder.path, flag, "--json", "--temperature", "0",
                                            "--max-tokens", "6", "Why is the sky blue?"])
        XCTAssertEqual(output.status, 0, output.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] ?? [:]
        let model = try LanguageModel(path: folder.path)
        let prompt = try model.requireTokenizer().decode(json["prompt_tokens"] as? [Int] ?? [])
        return (prompt, json)
    }

    /// `--no-think` renders the template's empty think block; `--think` leaves the model to open one.
    func testThinkFlagsReachTheTemplate() throws {
        let off = try run("--no-think")
        XCTAssertTrue(off.prompt.hasSuffix("<|im_start|>assistant\n<think>\n\n</think>\n\n"), off.prompt)
        XCTAssertTrue(off.json["reasoning"] is NSNull, "no reasoning when thinking is off")
        let on = try run("--think")
        XCTAssertTrue(on.prompt.hasSuffix("<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n"), on.prompt)
        XCTAssertNotNil(on.json["text"] as? String)
        XCTAssertNotNil(on.json["reasoning"], "the key is always present")
    }

    /// A known thinking continuation splits as the template's markup defines.
    func testKnownThinkingContinuationSplits() {
        let output = AssistantOutput.parse("<think>\nRayleigh scattering favours short wavelengths.\n</think>\n\nBecause of Rayleigh scattering.",
                                           offeredTools: [])
        XCTAssertEqual(output.reasoning, "Rayleigh scattering favours short wavelengths.")
        XCTAssertEqual(output.content, "Because of Rayleigh scattering.")
        XCTAssertTrue(output.toolCalls.isEmpty)
    }
}
