import Foundation
import QwenKit
@testable import QwenServer
import XCTest

/// `chat_template_kwargs` reach the chat template as variables (Qwen3.6's `preserve_thinking`,
/// like any other), as transformers' `apply_chat_template(**kwargs)` and llama-server pass them.
final class TemplateArgumentsTests: XCTestCase {
    func testChatTemplateKwargsReachTheTemplate() async throws {
        let template = """
            {{- '<|im_start|>user\\n' + messages[-1].content }}{% if preserve_thinking %} kept kept kept{% endif %}\
            {{- '<|im_end|>\\n<|im_start|>assistant\\n' }}
            """
        let model = try ServerFixtures.tinyModel(template: template)
        let engine = try InferenceEngine(model: model, modelID: Self.tinyModelID, contextLength: 256, parallel: 1, threads: 1)
        let extra = try model.requireTokenizer().encode(" kept kept kept").count
        try await withRouter(engine) { client in
            let plain = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 1"#))
            let kept = try await client.post("/v1/chat/completions", chatBody("Hi",
                #""max_tokens": 1, "chat_template_kwargs": {"preserve_thinking": true, "enable_thinking": false}"#))
            XCTAssertEqual(kept.status, .ok, kept.text)
            let without = try XCTUnwrap(plain.json?["usage"]?["prompt_tokens"]?.intValue)
            let with = try XCTUnwrap(kept.json?["usage"]?["prompt_tokens"]?.intValue)
            XCTAssertEqual(with - without, extra)

            let bad = try await client.post("/v1/chat/completions", chatBody("Hi", #""chat_template_kwargs": [1]"#))
            XCTAssertEqual(bad.status, .badRequest, bad.text)
        }
    }
}
