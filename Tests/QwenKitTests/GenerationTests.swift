import Foundation
import QwenKit
import XCTest

/// Generation behaviour through the library and the binary, on the tiny random Qwen2 GGUF.
final class GenerationTests: XCTestCase {
    static var tinyModelPath: String { Fixtures.url("models/tiny-qwen2/tiny-qwen2-f32.gguf").path }

    /// A second chat turn reuses the cached conversation and processes only its new tokens,
    /// and the reuse does not change what the model generates.
    func testChatTurnProcessesOnlyNewTokens() throws {
        let model = try LanguageModel(path: Self.tinyModelPath)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = 6

        func prompt(_ messages: [ChatMessage]) throws -> [Int] {
            try model.requireTokenizer().encode(try model.renderPrompt(messages: messages))
        }
        let chat = Generator(model: model, contextLength: 256, threads: 2)
        var history = [ChatMessage.user("Hello there")]
        let first = try prompt(history)
        let firstAnswer = try chat.generate(prompt: first, options: options)
        XCTAssertEqual(firstAnswer.timings.promptTokens, first.count)

        history += [.assistant(firstAnswer.text), .user("Tell me more")]
        let second = try prompt(history)
        let secondAnswer = try chat.generate(prompt: second, options: options)
        XCTAssertGreaterThan(second.count, first.count)
        XCTAssertLessThanOrEqual(secondAnswer.timings.promptTokens, second.count - first.count,
                                 "the second turn re-processed part of the first")

        let fresh = try Generator(model: model, contextLength: 256, threads: 2).generate(prompt: second, options: options)
        XCTAssertEqual(secondAnswer.tokens, fresh.tokens)
    }

    /// `maxTokens` and the context limit end generation with `length`.
    func testLengthLimits() throws {
        let model = try LanguageModel(path: Self.tinyModelPath)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = 5
        let prompt = try model.requireTokenizer().encode("The quick brown fox")
        let limited = try Generator(model: model, contextLength: 64, threads: 1).generate(prompt: prompt, options: options)
        XCTAssertEqual(limited.tokens.count, 5)
        XCTAssertEqual(limited.finishReason, .length)

        options.maxTokens = nil
        let full = try Generator(model: model, contextLength: prompt.count + 3, threads: 1)
            .generate(prompt: prompt, options: options)
        XCTAssertEqual(full.finishReason, .length)
        XCTAssertLessThanOrEqual(prompt.count + full.tokens.count, prompt.count + 4)
    }

    func runJSON(_ arguments: [String]) throws -> [String: Any] {
        let output = try QwenKitBinary.run(["run", "-m", Self.tinyModelPath, "--json"] + arguments)
        XCTAssertEqual(output.status, 0, output.stderr)
        return try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] ?? [:]
    }

    /// The same seed and settings give the same tokens; another seed gives others.
    func testSeededSamplingIsReproducible() throws {
        let sampled = ["--raw", "--temperature", "1.5", "--top-k", "0", "--top-p", "1", "--max-tokens", "16", "Hello"]
        let a = try runJSON(sampled + ["--seed", "42"])["tokens"] as? [Int]
        let b = try runJSON(sampled + ["--seed", "42"])["tokens"] as? [Int]
        let c = try runJSON(sampled + ["--seed", "43"])["tokens"] as? [Int]
        XCTAssertNotNil(a)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    /// `--stop` ends the answer right before the first occurrence of the stop string.
    func testStopString() throws {
        let greedy = ["--raw", "--temperature", "0", "--max-tokens", "16", "The quick brown fox jumps over the"]
        let full = try runJSON(greedy)["text"] as? String ?? ""
        let characters = Array(full)
        XCTAssertGreaterThan(characters.count, 8, "the continuation is too short to cut")
        // A stop string taken from the middle of the continuation.
        let start = characters.count / 2
        let stop = String(characters[start..<min(start + 3, characters.count)])
        let expected = String(full[..<(full.range(of: stop)?.lowerBound ?? full.endIndex)])
        let cut = try runJSON(greedy + ["--stop", stop])
        XCTAssertEqual(cut["text"] as? String, expected)
        XCTAssertEqual(cut["finish_reason"] as? String, "stop")
    }

    /// `qwenkit chat` answers each line and keeps going until /exit.
    func testChatCommand() throws {
        let output = try QwenKitBinary.run(
            ["chat", "-m", Self.tinyModelPath, "--temperature", "0", "--max-tokens", "4"],
            stdin: "Hello\n/system Be brief.\nHi again\n/exit\nnot read\n")
        XCTAssertEqual(output.status, 0, output.stderr)
        XCTAssertFalse(output.crashed)
        // Two answers, one per line of conversation, each ended by a newline.
        XCTAssertEqual(output.stdout.filter { $0 == "\n" }.count, 2, output.stdout)
    }
}
