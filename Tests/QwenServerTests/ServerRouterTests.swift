import Foundation
import Hummingbird
import HummingbirdTesting
import QwenKit
@testable import QwenServer
import Synchronization
import XCTest

/// A chat request body; `extra` is spliced in as further members (`"a": 1, "b": 2`).
func chatBody(_ user: String = "Hello there", _ extra: String = "") -> String {
    #"{"model": "tiny-qwen2", "messages": [{"role": "user", "content": "\#(user)"}]\#(extra.isEmpty ? "" : ", " + extra)}"#
}

/// The OpenAI-compatible routes, in memory, over the tiny random-weight Qwen2 fixture. The
/// weights are random, so these tests check shapes, counts and semantics, never the text.
final class ServerRouterTests: XCTestCase {
    // MARK: - Simple routes

    func testHealthAndModels() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let health = try await client.send(.get, "/health")
            XCTAssertEqual(health.status, .ok)
            XCTAssertEqual(health.json, ["status": "ok"])

            let models = try await client.send(.get, "/v1/models")
            XCTAssertEqual(models.status, .ok)
            XCTAssertEqual(models.json?["object"], "list")
            let data = try XCTUnwrap(models.json?["data"]?.arrayValue)
            XCTAssertEqual(data.count, 1)
            XCTAssertEqual(data.first?["id"], .string(Self.tinyModelID))
            XCTAssertEqual(data.first?["object"], "model")
            XCTAssertNotNil(data.first?["owned_by"]?.stringValue)
            XCTAssertNotNil(data.first?["created"]?.intValue)

            let one = try await client.send(.get, "/v1/models/\(Self.tinyModelID)")
            XCTAssertEqual(one.status, .ok)
            XCTAssertEqual(one.json?["id"], .string(Self.tinyModelID))

            let unknown = try await client.send(.get, "/v1/models/gpt-4o")
            let error = assertErrorEnvelope(unknown, status: .notFound, param: "model")
            XCTAssertEqual(error?["code"], "model_not_found")
        }
    }

    // MARK: - Chat completions

    func testChatCompletionShapeAndUsage() async throws {
        let engine = try makeEngine()
        let model = try ServerFixtures.tinyModel.get()
        // The prompt is the template's rendering of the conversation, tokenized.
        let expectedPrompt = try model.requireTokenizer().encode(
            try model.renderPrompt(messages: [ChatMessage.user("Hello there")], addGenerationPrompt: true))
        try await withRouter(engine) { client in
            let reply = try await client.post("/v1/chat/completions",
                                              chatBody("Hello there", #""max_tokens": 5, "temperature": 0"#))
            XCTAssertEqual(reply.status, .ok, reply.text)
            XCTAssertEqual(reply.headers[.contentType], "application/json")
            let json = try XCTUnwrap(reply.json)
            XCTAssertTrue(json["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
            XCTAssertEqual(json["object"], "chat.completion")
            XCTAssertNotNil(json["created"]?.intValue)
            XCTAssertEqual(json["model"], .string(Self.tinyModelID))
            let choices = try XCTUnwrap(json["choices"]?.arrayValue)
            XCTAssertEqual(choices.count, 1)
            XCTAssertEqual(choices[0]["index"], 0)
            XCTAssertEqual(choices[0]["message"]?["role"], "assistant")
            XCTAssertNotNil(choices[0]["message"]?["content"]?.stringValue)
            XCTAssertNil(choices[0]["message"]?["tool_calls"], "no tools were offered")
            XCTAssertEqual(choices[0]["logprobs"], .null)
            // Random weights almost never pick one of the 3 stop ids among 151,936 in 5 greedy steps.
            XCTAssertEqual(choices[0]["finish_reason"], "length")
            let usage = try XCTUnwrap(json["usage"])
            XCTAssertEqual(usage["prompt_tokens"]?.intValue, expectedPrompt.count)
            XCTAssertEqual(usage["completion_tokens"], 5, "max_tokens is honoured exactly")
            XCTAssertEqual(usage["total_tokens"]?.intValue, expectedPrompt.count + 5)

            // max_completion_tokens is the newer name of the same limit.
            let newer = try await client.post("/v1/chat/completions",
                                              chatBody("Hello there", #""max_completion_tokens": 3, "temperature": 0"#))
            XCTAssertEqual(newer.json?["usage"]?["completion_tokens"], 3)
            XCTAssertEqual(newer.json?["choices"]?[0]?["finish_reason"], "length")
        }
    }

    func testContentPartsAndAllRoles() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let body = #"""
            {"model": "tiny-qwen2", "max_tokens": 2, "messages": [
              {"role": "system", "content": "Be brief."},
              {"role": "user", "content": [{"type": "text", "text": "What is the weather?"}]},
              {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
              {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}
            ], "some_unknown_field": {"x": 1}, "user": "u-1"}
            """#
            let reply = try await client.post("/v1/chat/completions", body)
            XCTAssertEqual(reply.status, .ok, reply.text)
            XCTAssertEqual(reply.json?["usage"]?["completion_tokens"], 2)
        }
    }

    func testStreamingFraming() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let plain = try await client.post("/v1/chat/completions", chatBody("Tell me a story", #""max_tokens": 8, "temperature": 0"#))
            let expectedContent = try XCTUnwrap(plain.json?["choices"]?[0]?["message"]?["content"]?.stringValue)
            let expectedUsage = try XCTUnwrap(plain.json?["usage"])

            let reply = try await client.post("/v1/chat/completions", chatBody("Tell me a story",
                #""max_tokens": 8, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}"#))
            XCTAssertEqual(reply.status, .ok)
            XCTAssertEqual(reply.headers[.contentType], "text/event-stream")
            let events = sseEvents(reply.text)
            XCTAssertEqual(events.last, "[DONE]")
            XCTAssertEqual(events.filter { $0 == "[DONE]" }.count, 1)
            let chunks = try events.dropLast().map { try JSONValue.parse($0) }
            XCTAssertGreaterThanOrEqual(chunks.count, 3)
            let id = chunks.first?["id"]?.stringValue
            XCTAssertTrue(id?.hasPrefix("chatcmpl-") == true)
            for chunk in chunks {
                XCTAssertEqual(chunk["object"], "chat.completion.chunk")
                XCTAssertEqual(chunk["id"]?.stringValue, id, "one id for the whole stream")
                XCTAssertEqual(chunk["model"], .string(Self.tinyModelID))
            }
            // First: the role. Then content deltas. Then an empty delta with finish_reason. Last: usage, no choices.
            XCTAssertEqual(chunks.first?["choices"]?[0]?["delta"]?["role"], "assistant")
            let usageChunk = try XCTUnwrap(chunks.last)
            XCTAssertEqual(usageChunk["choices"], [])
            let usage = try XCTUnwrap(usageChunk["usage"])
            for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
                XCTAssertEqual(usage[key], expectedUsage[key], key)
            }
            // The same prompt again: all but its last token come from the slot's cache.
            XCTAssertEqual(expectedUsage["prompt_tokens_details"]?["cached_tokens"], 0)
            XCTAssertEqual(usage["prompt_tokens_details"]?["cached_tokens"]?.intValue,
                           (expectedUsage["prompt_tokens"]?.intValue ?? 0) - 1)
            let finishChunk = chunks[chunks.count - 2]
            XCTAssertEqual(finishChunk["choices"]?[0]?["finish_reason"], "length")
            XCTAssertEqual(finishChunk["choices"]?[0]?["delta"], .object([]))
            for chunk in chunks.dropLast(2) {
                XCTAssertEqual(chunk["choices"]?[0]?["finish_reason"], .null)
                XCTAssertNil(chunk["usage"])
            }
            let streamed = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
            XCTAssertEqual(streamed, expectedContent, "the deltas add up to the non-streamed answer")

            // Without include_usage there is no usage chunk.
            let noUsage = try await client.post("/v1/chat/completions", chatBody("Tell me a story",
                #""max_tokens": 3, "temperature": 0, "stream": true"#))
            let plainEvents = sseEvents(noUsage.text)
            XCTAssertEqual(plainEvents.last, "[DONE]")
            let plainChunks = try plainEvents.dropLast().map { try JSONValue.parse($0) }
            XCTAssertTrue(plainChunks.allSatisfy { $0["usage"] == nil })
            XCTAssertEqual(plainChunks.last?["choices"]?[0]?["finish_reason"], "length")
        }
    }

    func testSeedReproducibility() async throws {
        let engine = try makeEngine(parallel: 2)
        try await withRouter(engine) { client in
            func text(seed: Int) async throws -> String {
                let reply = try await client.post("/v1/completions",
                    #"{"prompt": "Once upon a time", "max_tokens": 12, "temperature": 1, "top_p": 1, "seed": \#(seed)}"#)
                XCTAssertEqual(reply.status, .ok, reply.text)
                return try XCTUnwrap(reply.json?["choices"]?[0]?["text"]?.stringValue)
            }
            let a = try await text(seed: 42)
            let b = try await text(seed: 42)
            let c = try await text(seed: 7)
            XCTAssertEqual(a, b, "the same seed gives the same sample")
            // Near-uniform random weights over 151,936 ids: two seeds agreeing on 12 draws is impossible in practice.
            XCTAssertNotEqual(a, c, "another seed gives another sample")
        }
    }

    func testStopSequence() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let base = #""prompt": "The quick brown fox", "max_tokens": 16, "temperature": 0"#
            let full = try await client.post("/v1/completions", "{\(base)}")
            let text = try XCTUnwrap(full.json?["choices"]?[0]?["text"]?.stringValue)
            let scalars = Array(text.unicodeScalars)
            try XCTSkipIf(scalars.count < 8, "the greedy text is too short to cut: \(text.debugDescription)")
            // A stop string taken from the middle of the text: the answer ends just before its first occurrence.
            var stop = String(String.UnicodeScalarView(scalars[(scalars.count / 2)..<(scalars.count / 2 + 3)]))
            if stop.trimmingCharacters(in: .whitespaces).isEmpty { stop = String(String.UnicodeScalarView(scalars[2..<5])) }
            let cut = try XCTUnwrap(text.range(of: stop))
            let stopJSON = JSONValue.string(stop).pythonJSON
            let stopped = try await client.post("/v1/completions", "{\(base), \"stop\": [\(stopJSON)]}")
            XCTAssertEqual(stopped.status, .ok, stopped.text)
            XCTAssertEqual(stopped.json?["choices"]?[0]?["text"]?.stringValue, String(text[..<cut.lowerBound]))
            XCTAssertEqual(stopped.json?["choices"]?[0]?["finish_reason"], "stop")

            // The same through chat, as a single string.
            let chatFull = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 16, "temperature": 0"#))
            let chatText = try XCTUnwrap(chatFull.json?["choices"]?[0]?["message"]?["content"]?.stringValue)
            let chatScalars = Array(chatText.unicodeScalars)
            if chatScalars.count >= 8 {
                let chatStop = String(String.UnicodeScalarView(chatScalars[4..<7]))
                if !chatStop.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, let at = chatText.range(of: chatStop) {
                    let reply = try await client.post("/v1/chat/completions", chatBody("Hi",
                        #""max_tokens": 16, "temperature": 0, "stop": \#(JSONValue.string(chatStop).pythonJSON)"#))
                    XCTAssertEqual(reply.json?["choices"]?[0]?["finish_reason"], "stop")
                    XCTAssertEqual(reply.json?["choices"]?[0]?["message"]?["content"]?.stringValue,
                                   String(chatText[..<at.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
        }
    }

    func testChatLogprobs() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let reply = try await client.post("/v1/chat/completions", chatBody("Hello",
                #""max_tokens": 4, "temperature": 0, "logprobs": true, "top_logprobs": 3"#))
            XCTAssertEqual(reply.status, .ok, reply.text)
            let content = try XCTUnwrap(reply.json?["choices"]?[0]?["logprobs"]?["content"]?.arrayValue)
            XCTAssertEqual(content.count, reply.json?["usage"]?["completion_tokens"]?.intValue)
            XCTAssertEqual(content.count, 4)
            for entry in content {
                let token = try XCTUnwrap(entry["token"]?.stringValue)
                let logprob = try XCTUnwrap(entry["logprob"]?.doubleValue)
                XCTAssertLessThanOrEqual(logprob, 0)
                XCTAssertEqual(entry["bytes"]?.arrayValue?.compactMap(\.intValue), Array(token.utf8).map(Int.init))
                let top = try XCTUnwrap(entry["top_logprobs"]?.arrayValue)
                XCTAssertEqual(top.count, 3)
                let values = top.compactMap { $0["logprob"]?.doubleValue }
                XCTAssertEqual(values, values.sorted(by: >), "alternatives from most to least likely")
                XCTAssertTrue(top.allSatisfy { $0["token"]?.stringValue != nil && $0["bytes"]?.arrayValue != nil })
                // Greedy: the chosen token is the most likely one.
                XCTAssertEqual(top.first?["token"]?.stringValue, token)
                XCTAssertEqual(values.first ?? 1, logprob, accuracy: 1e-6)
                XCTAssertLessThan(values.reduce(0) { $0 + exp($1) }, 1 + 1e-6, "probabilities sum to at most 1")
            }
            // top_logprobs without logprobs is a mistake.
            let bad = try await client.post("/v1/chat/completions", chatBody("Hello", #""top_logprobs": 2"#))
            assertErrorEnvelope(bad, status: .badRequest, param: "top_logprobs")
        }
    }

    // MARK: - Text completions

    func testCompletionsWithStringAndTokenPrompts() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            // "Hello world" is [9707, 1879] for the Qwen2.5 tokenizer (fixtures/tokenizer/qwen2.5-cases.jsonl).
            let text = try await client.post("/v1/completions",
                                             #"{"model": "tiny-qwen2", "prompt": "Hello world", "max_tokens": 4, "temperature": 0}"#)
            XCTAssertEqual(text.status, .ok, text.text)
            let json = try XCTUnwrap(text.json)
            XCTAssertTrue(json["id"]?.stringValue?.hasPrefix("cmpl-") == true)
            XCTAssertEqual(json["object"], "text_completion")
            XCTAssertEqual(json["usage"]?["prompt_tokens"], 2)
            XCTAssertEqual(json["usage"]?["completion_tokens"], 4)
            XCTAssertEqual(json["usage"]?["total_tokens"], 6)
            XCTAssertEqual(json["choices"]?[0]?["finish_reason"], "length")
            let generated = try XCTUnwrap(json["choices"]?[0]?["text"]?.stringValue)

            // The same prompt as token ids gives the same greedy text.
            let ids = try await client.post("/v1/completions", #"{"prompt": [9707, 1879], "max_tokens": 4, "temperature": 0}"#)
            XCTAssertEqual(ids.status, .ok, ids.text)
            XCTAssertEqual(ids.json?["usage"]?["prompt_tokens"], 2)
            XCTAssertEqual(ids.json?["choices"]?[0]?["text"]?.stringValue, generated)

            // echo puts the prompt in front.
            let echo = try await client.post("/v1/completions",
                                             #"{"prompt": "Hello world", "max_tokens": 4, "temperature": 0, "echo": true}"#)
            XCTAssertEqual(echo.json?["choices"]?[0]?["text"]?.stringValue, "Hello world" + generated)

            // Legacy logprobs: parallel lists, one entry per generated token.
            let lp = try await client.post("/v1/completions",
                                           #"{"prompt": "Hello world", "max_tokens": 4, "temperature": 0, "logprobs": 2}"#)
            let logprobs = try XCTUnwrap(lp.json?["choices"]?[0]?["logprobs"])
            let tokens = try XCTUnwrap(logprobs["tokens"]?.arrayValue?.compactMap(\.stringValue))
            XCTAssertEqual(tokens.count, 4)
            XCTAssertEqual(tokens.joined(), generated)
            XCTAssertEqual(logprobs["token_logprobs"]?.arrayValue?.count, 4)
            XCTAssertTrue(logprobs["token_logprobs"]?.arrayValue?.allSatisfy { ($0.doubleValue ?? 1) <= 0 } == true)
            XCTAssertEqual(logprobs["top_logprobs"]?.arrayValue?.count, 4)
            XCTAssertTrue(logprobs["top_logprobs"]?.arrayValue?.allSatisfy { ($0.objectValue?.count ?? 0) >= 1 } == true)
            let offsets = logprobs["text_offset"]?.arrayValue?.compactMap(\.intValue)
            var expected: [Int] = []
            var at = 0
            for token in tokens {
                expected.append(at)
                at += token.unicodeScalars.count
            }
            XCTAssertEqual(offsets, expected)

            // Streamed: text chunks, then the finish, then usage, then [DONE].
            let stream = try await client.post("/v1/completions",
                #"{"prompt": [9707, 1879], "max_tokens": 4, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}"#)
            let events = sseEvents(stream.text)
            XCTAssertEqual(events.last, "[DONE]")
            let chunks = try events.dropLast().map { try JSONValue.parse($0) }
            XCTAssertEqual(chunks.last?["usage"]?["completion_tokens"], 4)
            XCTAssertEqual(chunks.dropLast().last?["choices"]?[0]?["finish_reason"], "length")
            XCTAssertEqual(chunks.compactMap { $0["choices"]?[0]?["text"]?.stringValue }.joined(), generated)
            XCTAssertTrue(chunks.allSatisfy { $0["object"] == "text_completion" })

            // Bad token ids and empty prompts are the client's mistakes.
            let outOfRange = try await client.post("/v1/completions", #"{"prompt": [9707, 999999999]}"#)
            assertErrorEnvelope(outOfRange, status: .badRequest, param: "prompt")
            let empty = try await client.post("/v1/completions", #"{"prompt": ""}"#)
            assertErrorEnvelope(empty, status: .badRequest, param: "prompt")
            let missing = try await client.post("/v1/completions", #"{"max_tokens": 3}"#)
            assertErrorEnvelope(missing, status: .badRequest, param: "prompt")
        }
    }

    // MARK: - Errors

    func testClientMistakes() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let malformed = try await client.post("/v1/chat/completions", #"{"model": "tiny-qwen2", "messages": [}"#)
            assertErrorEnvelope(malformed, status: .badRequest)
            let notObject = try await client.post("/v1/chat/completions", #"[1, 2]"#)
            assertErrorEnvelope(notObject, status: .badRequest)
            let malformedCompletion = try await client.post("/v1/completions", "prompt=hello")
            assertErrorEnvelope(malformedCompletion, status: .badRequest)

            // Wrong types: 400 naming the field.
            let cases: [(String, String)] = [
                (#"{"messages": "hello"}"#, "messages"),
                (#"{"messages": []}"#, "messages"),
                (chatBody("Hi", #""max_tokens": "ten""#), "max_tokens"),
                (chatBody("Hi", #""max_tokens": 0"#), "max_tokens"),
                (chatBody("Hi", #""max_tokens": 2.5"#), "max_tokens"),
                (chatBody("Hi", #""temperature": "hot""#), "temperature"),
                (chatBody("Hi", #""temperature": 3"#), "temperature"),
                (chatBody("Hi", #""top_p": 0"#), "top_p"),
                (chatBody("Hi", #""stream": "yes""#), "stream"),
                (chatBody("Hi", #""stop": 5"#), "stop"),
                (chatBody("Hi", #""stop": ["a", "b", "c", "d", "e"]"#), "stop"),
                (chatBody("Hi", #""seed": "x""#), "seed"),
                (chatBody("Hi", #""presence_penalty": 5"#), "presence_penalty"),
                (chatBody("Hi", #""stream_options": {"include_usage": "yes"}"#), "stream_options.include_usage"),
                (chatBody("Hi", #""tools": {"type": "function"}"#), "tools"),
                (chatBody("Hi", #""tools": [{"type": "function"}]"#), "tools[0]"),
                (chatBody("Hi", #""response_format": {"type": "xml"}"#), "response_format.type"),
                (chatBody("Hi", #""response_format": {"type": "json_schema"}"#), "response_format.json_schema"),
                (#"{"messages": [{"role": "robot", "content": "hi"}]}"#, "messages[0].role"),
                (#"{"messages": [{"content": "hi"}]}"#, "messages[0]"),
                (#"{"messages": [{"role": "user", "content": 5}]}"#, "messages[0]"),
                (chatBody("Hi", #""model": 5"#), "model"),
            ]
            for (body, param) in cases {
                let reply = try await client.post("/v1/chat/completions", body)
                assertErrorEnvelope(reply, status: .badRequest, param: param)
            }

            // Unknown fields are tolerated.
            let unknownFields = try await client.post("/v1/chat/completions",
                                                      chatBody("Hi", #""max_tokens": 1, "frobnicate": true, "metadata": {"a": "b"}"#))
            XCTAssertEqual(unknownFields.status, .ok, unknownFields.text)

            // Unknown model: 404.
            let unknownModel = try await client.post("/v1/chat/completions",
                                                     #"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}"#)
            let error = assertErrorEnvelope(unknownModel, status: .notFound, param: "model")
            XCTAssertEqual(error?["code"], "model_not_found")
            let unknownCompletionModel = try await client.post("/v1/completions", #"{"model": "davinci", "prompt": "Hi"}"#)
            assertErrorEnvelope(unknownCompletionModel, status: .notFound, param: "model")

            // n > 1 is not supported; n = 1 is.
            let n2 = try await client.post("/v1/chat/completions", chatBody("Hi", #""n": 2"#))
            assertErrorEnvelope(n2, status: .badRequest, param: "n")
            let n1 = try await client.post("/v1/chat/completions", chatBody("Hi", #""n": 1, "max_tokens": 1"#))
            XCTAssertEqual(n1.status, .ok)

            // tool_choice naming a function that is not among the tools.
            let tools = #""tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]"#
            let unknownTool = try await client.post("/v1/chat/completions", chatBody("Hi",
                tools + #", "tool_choice": {"type": "function", "function": {"name": "book_flight"}}"#))
            assertErrorEnvelope(unknownTool, status: .badRequest, param: "tool_choice")
            let badChoice = try await client.post("/v1/chat/completions", chatBody("Hi", tools + #", "tool_choice": "sometimes""#))
            assertErrorEnvelope(badChoice, status: .badRequest, param: "tool_choice")
            let choiceWithoutTools = try await client.post("/v1/chat/completions", chatBody("Hi", #""tool_choice": "required""#))
            assertErrorEnvelope(choiceWithoutTools, status: .badRequest, param: "tool_choice")

            // Unknown routes are 404s, not crashes.
            let nowhere = try await client.send(.get, "/v1/nowhere")
            XCTAssertEqual(nowhere.status, .notFound)
        }
    }

    func testPromptLongerThanContext() async throws {
        let engine = try makeEngine(context: 64)
        let long = Array(repeating: "word", count: 80).joined(separator: " ")
        let model = try ServerFixtures.tinyModel.get()
        let promptTokens = try model.requireTokenizer().encode(
            try model.renderPrompt(messages: [ChatMessage.user(long)], addGenerationPrompt: true)).count
        XCTAssertGreaterThan(promptTokens, 64)
        try await withRouter(engine) { client in
            let reply = try await client.post("/v1/chat/completions", chatBody(long))
            let error = assertErrorEnvelope(reply, status: .badRequest, param: "messages")
            XCTAssertEqual(error?["code"], "context_length_exceeded")
            let message = error?["message"]?.stringValue ?? ""
            XCTAssertTrue(message.contains("64"), message)
            XCTAssertTrue(message.contains("\(promptTokens)"), message)

            // Streaming does not change that: an error status, not a 200 stream.
            let streamed = try await client.post("/v1/chat/completions", chatBody(long, #""stream": true"#))
            assertErrorEnvelope(streamed, status: .badRequest, param: "messages")

            // A prompt that fits but leaves no room for max_tokens.
            let roomless = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 60"#))
            let roomError = assertErrorEnvelope(roomless, status: .badRequest, param: "max_tokens")
            XCTAssertTrue(roomError?["message"]?.stringValue?.contains("64") == true)

            let ids = "[" + Array(repeating: "9707", count: 70).map { $0 }.joined(separator: ", ") + "]"
            let completion = try await client.post("/v1/completions", #"{"prompt": \#(ids)}"#)
            let completionError = assertErrorEnvelope(completion, status: .badRequest, param: "prompt")
            XCTAssertTrue(completionError?["message"]?.stringValue?.contains("70") == true)
        }
    }

    func testOversizedBody() async throws {
        let engine = try makeEngine()
        try await withRouter(engine, maxBodyBytes: 1024) { client in
            let big = chatBody(String(repeating: "a", count: 2000))
            let reply = try await client.post("/v1/chat/completions", big)
            assertErrorEnvelope(reply, status: .contentTooLarge)
            let completion = try await client.post("/v1/completions", #"{"prompt": "\#(String(repeating: "b", count: 2000))"}"#)
            assertErrorEnvelope(completion, status: .contentTooLarge)
            // Just under the limit is fine.
            let small = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 1"#))
            XCTAssertEqual(small.status, .ok)
        }
    }

    func testAPIKey() async throws {
        let engine = try makeEngine()
        try await withRouter(engine, apiKey: "sk-test-123") { client in
            let missing = try await client.send(.get, "/v1/models")
            let error = assertErrorEnvelope(missing, status: .unauthorized)
            XCTAssertEqual(error?["code"], "invalid_api_key")
            let wrong = try await client.send(.get, "/v1/models", headers: [.authorization: "Bearer sk-wrong"])
            assertErrorEnvelope(wrong, status: .unauthorized)
            let noBearer = try await client.send(.get, "/v1/models", headers: [.authorization: "sk-test-123"])
            assertErrorEnvelope(noBearer, status: .unauthorized)
            let chat = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 1"#))
            assertErrorEnvelope(chat, status: .unauthorized)
            let completion = try await client.post("/v1/completions", #"{"prompt": "Hi"}"#)
            assertErrorEnvelope(completion, status: .unauthorized)

            let right = try await client.send(.get, "/v1/models", headers: [.authorization: "Bearer sk-test-123"])
            XCTAssertEqual(right.status, .ok)
            let authorizedChat = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 1"#),
                                                       headers: [.authorization: "Bearer sk-test-123"])
            XCTAssertEqual(authorizedChat.status, .ok)
            // Health and metrics stay open (load balancers, Prometheus).
            let health = try await client.send(.get, "/health")
            XCTAssertEqual(health.status, .ok)
        }
    }

    // MARK: - Concurrency

    /// With one slot and no queue, a request that arrives while the slot generates is refused
    /// with 503 in OpenAI's envelope — streamed or not — and served once the slot is free.
    func testFullQueueIsRefused() async throws {
        let engine = try makeEngine(parallel: 1, maxQueue: 0)
        let tokens = try ServerFixtures.tinyModel.get().requireTokenizer().encode("Hold the slot")
        let started = CancellationFlag()
        let release = DispatchSemaphore(value: 0)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = 3
        let holder = Task {
            try await engine.generate(prompt: tokens, options: options, cancellation: CancellationFlag()) { _ in
                if !started.isCancelled {
                    started.cancel()
                    release.wait()
                }
            }
        }
        while !started.isCancelled { try await Task.sleep(for: .milliseconds(5)) }
        try await withRouter(engine) { client in
            let busy = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 1"#))
            let error = assertErrorEnvelope(busy, status: .serviceUnavailable)
            XCTAssertEqual(error?["type"], "server_error")
            let busyStream = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 1, "stream": true"#))
            assertErrorEnvelope(busyStream, status: .serviceUnavailable)
            let busyCompletion = try await client.post("/v1/completions", #"{"prompt": "Hi", "max_tokens": 1, "stream": true}"#)
            assertErrorEnvelope(busyCompletion, status: .serviceUnavailable)

            release.signal()
            _ = try await holder.value
            let served = try await client.post("/v1/chat/completions", chatBody("Hi", #""max_tokens": 1"#))
            XCTAssertEqual(served.status, .ok, served.text)
        }
    }

    /// Requests beyond the slots wait in the queue and all complete.
    func testQueuedRequestsComplete() async throws {
        let engine = try makeEngine(parallel: 2, maxQueue: 8)
        try await withRouter(engine) { client in
            try await withThrowingTaskGroup(of: Int?.self) { group in
                for i in 0..<6 {
                    group.addTask {
                        let reply = try await client.post("/v1/chat/completions",
                                                          chatBody("Request \(i)", #""max_tokens": 4, "temperature": 0"#))
                        XCTAssertEqual(reply.status, .ok, reply.text)
                        return reply.json?["usage"]?["completion_tokens"]?.intValue
                    }
                }
                for try await count in group { XCTAssertEqual(count, 4) }
            }
            let metrics = try await client.send(.get, "/metrics")
            XCTAssertEqual(metrics.status, .ok)
            XCTAssertTrue(metrics.text.contains("qwenkit_generated_tokens_total 24"), metrics.text)
            XCTAssertTrue(metrics.text.contains("qwenkit_queue_length 0"), metrics.text)
        }
    }
}
