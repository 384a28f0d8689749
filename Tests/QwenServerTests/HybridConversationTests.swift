import Foundation
import QwenKit
@testable import QwenServer
import XCTest

/// A conversation with a Qwen3.5 hybrid (the tiny `tiny-qwen35` fixture) through the server: the
/// second request, which repeats the first exchange and adds a user turn, takes the first
/// request's prompt from the slot's cache (`usage.prompt_tokens_details.cached_tokens`) instead
/// of processing the whole conversation again.
final class HybridConversationTests: XCTestCase {
    static let model = Result { try LanguageModel(path: ServerFixtures.root.appendingPathComponent("models/tiny-qwen35").path) }

    func testSecondRequestReusesTheRecurrentState() async throws {
        let model = try Self.model.get()
        let engine = try InferenceEngine(model: model, modelID: "tiny-qwen35", contextLength: 512, parallel: 1, threads: 1)
        @Sendable func body(_ messages: String) -> String {
            #"{"model": "tiny-qwen35", "max_tokens": 4, "temperature": 0, "chat_template_kwargs": {"enable_thinking": false}, "messages": [\#(messages)]}"#
        }
        let first = #"{"role": "user", "content": "What is the capital of France?"}"#
        try await withRouter(engine) { client in
            let one = try await client.post("/v1/chat/completions", body(first))
            XCTAssertEqual(one.status, .ok, one.text)
            let reply = try XCTUnwrap(one.json?["choices"]?[0]?["message"]?["content"]?.stringValue)
            let firstPrompt = try XCTUnwrap(one.json?["usage"]?["prompt_tokens"]?.intValue)
            XCTAssertEqual(one.json?["usage"]?["prompt_tokens_details"]?["cached_tokens"], 0)

            let history = first + #", {"role": "assistant", "content": \#(JSONValue.string(reply).pythonJSON)}, "#
                + #"{"role": "user", "content": "And of Italy?"}"#
            let two = try await client.post("/v1/chat/completions", body(history))
            XCTAssertEqual(two.status, .ok, two.text)
            let usage = try XCTUnwrap(two.json?["usage"])
            let total = try XCTUnwrap(usage["prompt_tokens"]?.intValue)
            let cached = try XCTUnwrap(usage["prompt_tokens_details"]?["cached_tokens"]?.intValue)
            // Everything up to the first reply's turn (the first prompt minus its generation
            // prompt, `<|im_start|>assistant\n<think>\n\n</think>\n\n`) comes from the cache.
            XCTAssertGreaterThanOrEqual(cached, firstPrompt - 10)
            XCTAssertLessThan(total - cached, total - firstPrompt + 10)
        }
    }
}
