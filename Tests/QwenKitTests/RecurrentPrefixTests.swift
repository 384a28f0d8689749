import Foundation
import XCTest
@testable import QwenKit

/// Prefix reuse for the Qwen3.5 hybrids: a recurrent state cannot be truncated, so the generator
/// keeps checkpoints at turn boundaries; a second chat turn processes only its new tokens, and
/// a prompt that diverges inside the cache resumes from the nearest earlier checkpoint, with the
/// same logits as a fresh computation.
final class RecurrentPrefixTests: XCTestCase {
    private func model() throws -> LanguageModel {
        try LanguageModel(path: Fixtures.url("models/tiny-qwen35").path)
    }

    private func greedy(maxTokens: Int) -> GenerationOptions {
        var options = GenerationOptions()
        options.sampling.temperature = 0
        options.maxTokens = maxTokens
        return options
    }

    /// Logits of `prompt`'s last position computed from an empty state.
    private func fresh(_ model: LanguageModel, _ prompt: [Int]) -> [Float] {
        InferenceState(model: model.transformer, contextLength: prompt.count, threads: 2).forward(prompt)
    }

    private func assertClose(_ a: [Float], _ b: [Float], _ message: String, file: StaticString = #filePath,
                             line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(worst, 1e-3, message, file: file, line: line)
    }

    /// A conversation rendered with the real Qwen3.5 template, turn after turn: each turn
    /// processes exactly the tokens after the last turn boundary (`<|im_start|>`) it shares with
    /// the cache — never the whole conversation again.
    func testSecondChatTurnProcessesOnlyItsNewTokens() throws {
        let model = try model()
        let tokenizer = try model.requireTokenizer()
        let imStart = try XCTUnwrap(tokenizer.id(of: "<|im_start|>"))
        let generator = Generator(model: model, contextLength: 512, threads: 2)
        var messages: [ChatMessage] = [.system("You are terse."), .user("What is the capital of France?")]
        var previousCache: [Int] = [], previousPrompt = 0
        for turn in 0..<3 {
            let prompt = tokenizer.encode(try model.renderPrompt(messages: messages, enableThinking: false))
            // What the cache can offer: the common prefix, back to the last turn boundary in it
            // (or to the checkpoint before the previous prompt's last token).
            let common = min(zip(previousCache, prompt).prefix { $0 == $1 }.count, prompt.count - 1)
            let result = try generator.generate(prompt: prompt, options: greedy(maxTokens: 6))
            let processed = result.timings.promptTokens
            if turn == 0 {
                XCTAssertEqual(processed, prompt.count)
            } else {
                let boundary = prompt[..<common].lastIndex(of: imStart) ?? 0
                // The previous prompt but its generation prompt (`<|im_start|>assistant\n<think>\n\n</think>\n\n`).
                XCTAssertGreaterThanOrEqual(common, previousPrompt - 10, "turn \(turn): the conversation so far is cached")
                // The previous reply's turn (re-rendered without its empty think block) and the new user turn.
                XCTAssertEqual(processed, prompt.count - boundary, "turn \(turn): resumes at the last shared turn boundary")
            }
            previousCache = generator.cachedTokens
            previousPrompt = prompt.count
            messages.append(.assistant(result.text))
            messages.append(.user("And turn \(turn + 2)?"))
        }
    }

    /// A prompt that extends what is cached (the previous prompt and the reply, as a raw
    /// continuation) processes exactly the new tokens; its logits equal a fresh computation.
    func testExtensionProcessesExactlyTheNewTokens() throws {
        let model = try model()
        let generator = Generator(model: model, contextLength: 256, threads: 2)
        let first = Array(9000..<9040)
        _ = try generator.generate(prompt: first, options: greedy(maxTokens: 5))
        let cached = generator.cachedTokens
        XCTAssertGreaterThanOrEqual(cached.count, first.count)
        let second = cached + [11, 12, 13, 14, 15, 16, 17]
        let (logits, processed) = try generator.prefill(second)
        XCTAssertEqual(processed, 7)
        assertClose(logits, fresh(model, second), "extension")
    }

    /// A prompt that diverges inside the cache resumes from the nearest checkpoint at or before
    /// the divergence, and a repeated prompt costs one token; both give fresh logits.
    func testDivergenceResumesFromTheNearestCheckpoint() throws {
        let model = try model()
        let tokenizer = try model.requireTokenizer()
        let imStart = try XCTUnwrap(tokenizer.id(of: "<|im_start|>"))
        let generator = Generator(model: model, contextLength: 256, threads: 2)
        // Three "turns": boundaries before positions 20 and 45 (each <|im_start|>), checkpoint before the last token.
        let prompt = Array(5000..<5020) + [imStart] + Array(6000..<6024) + [imStart] + Array(7000..<7030)
        var (_, processed) = try generator.prefill(prompt)
        XCTAssertEqual(processed, prompt.count)

        // The same prompt again: only the last token runs.
        var logits: [Float]
        (logits, processed) = try generator.prefill(prompt)
        XCTAssertEqual(processed, 1)
        assertClose(logits, fresh(model, prompt), "repeat")

        // Diverge inside the third turn: resume at the boundary before position 45.
        var edited = prompt
        edited[60] = 42
        (logits, processed) = try generator.prefill(edited)
        XCTAssertEqual(processed, edited.count - 45)
        assertClose(logits, fresh(model, edited), "diverged in the third turn")

        // Diverge inside the first turn: no checkpoint before it, so from the start.
        edited[3] = 43
        (logits, processed) = try generator.prefill(edited)
        XCTAssertEqual(processed, edited.count)
        assertClose(logits, fresh(model, edited), "diverged in the first turn")
    }
}

/// The Qwen3.5 tiny model through the `qwenkit` binary: template, tokenizer and model end to end.
final class Qwen35CommandLineTests: XCTestCase {
    private var folder: String { Fixtures.url("models/tiny-qwen35").path }

    /// `run --json` on the fixture's `chat` case: the prompt the template renders, tokenized, and
    /// the greedy continuation transformers produced.
    func testRunMatchesTheReferenceChatCase() throws {
        let cases = try TinyModelTests.cases("reference.json", folder: "tiny-qwen35")
        let chat = try XCTUnwrap(cases.first { $0.name == "chat" })
        let output = try QwenKitBinary.run(["run", "-m", folder, "--temperature", "0", "--json", "--max-tokens", "16",
                                            "Write a haiku about the sea."])
        XCTAssertEqual(output.status, 0, output.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["prompt_tokens"] as? [Int], chat.inputIDs)
        XCTAssertEqual(json["tokens"] as? [Int], chat.greedy)
    }

    /// `chat --verbose`: the second turn takes the first turn's prompt from the cache.
    func testChatSecondTurnReusesTheCache() throws {
        let output = try QwenKitBinary.run(["chat", "-m", folder, "--temperature", "0", "--max-tokens", "4", "--no-think",
                                            "--verbose"], stdin: "What is the capital of France?\nAnd of Italy?\n")
        XCTAssertEqual(output.status, 0, output.stderr)
        // "[prompt N tokens: P processed, C cached; …]" per turn.
        let turns: [(total: Int, processed: Int, cached: Int)] = output.stderr.split(separator: "\n").compactMap { line in
            guard let stats = line.range(of: "[prompt ") else { return nil }
            let numbers = line[stats.upperBound...].split { !$0.isNumber }.compactMap { Int($0) }
            return numbers.count >= 3 ? (numbers[0], numbers[1], numbers[2]) : nil
        }
        XCTAssertEqual(turns.count, 2, output.stderr)
        guard turns.count == 2 else { return }
        XCTAssertEqual(turns[0].processed, turns[0].total)
        // The first prompt minus its generation prompt (`<|im_start|>assistant\n<think>\n\n</think>\n\n`) is reused.
        XCTAssertGreaterThanOrEqual(turns[1].cached, turns[0].total - 10)
        XCTAssertEqual(turns[1].processed + turns[1].cached, turns[1].total)
        XCTAssertLessThan(turns[1].processed, turns[1].total - turns[0].total + 10)
    }
}
