import Foundation
import QwenKit
@testable import QwenServer
import XCTest

/// Streamed chat with `logprobs`: every generated token's log-probability arrives exactly once,
/// with the chunk that carries its text (or the final chunk), and agrees with the non-streamed answer.
final class StreamLogprobsTests: XCTestCase {
    func testStreamedLogprobsCoverEveryToken() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let settings = #""max_tokens": 12, "temperature": 0, "logprobs": true, "top_logprobs": 2"#
            let reply = try await client.post("/v1/chat/completions",
                                              chatBody("Hi", settings + #", "stream": true, "stream_options": {"include_usage": true}"#))
            XCTAssertEqual(reply.status, .ok, reply.text)
            var entries: [JSONValue] = []
            var usage: JSONValue?
            for line in reply.text.split(separator: "\n") where line.hasPrefix("data: ") && line != "data: [DONE]" {
                let event = try JSONValue.parse(String(line.dropFirst(6)))
                if let u = event["usage"], !u.isNull { usage = u }
                guard let choice = event["choices"]?[0] else { continue }
                if let content = choice["logprobs"]?["content"]?.arrayValue { entries += content }
                else { XCTAssertEqual(choice["logprobs"], .null, "logprobs must be an object or null") }
            }
            let completionTokens = try XCTUnwrap(usage?["completion_tokens"]?.intValue)
            XCTAssertEqual(entries.count, completionTokens, "one entry per generated token")
            for entry in entries {
                XCTAssertNotNil(entry["logprob"]?.doubleValue)
                XCTAssertEqual(entry["top_logprobs"]?.arrayValue?.count, 2)
            }
            // The same request without streaming gives the same log-probabilities (greedy, same model).
            let whole = try await client.post("/v1/chat/completions", chatBody("Hi", settings))
            let expected = try XCTUnwrap(whole.json?["choices"]?[0]?["logprobs"]?["content"]?.arrayValue)
            XCTAssertEqual(expected.map { $0["token"] }, entries.map { $0["token"] })
            for (a, b) in zip(expected, entries) {
                XCTAssertEqual(a["logprob"]?.doubleValue ?? 0, b["logprob"]?.doubleValue ?? 1, accuracy: 1e-4)
            }
        }
    }
}
