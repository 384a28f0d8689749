import ArgumentParser
import Foundation
import QwenKit

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Answer one prompt, streaming the answer to stdout.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(help: "System prompt (default: the chat template's own).") var system: String?
    @Flag(help: "Send the prompt as is, without the chat template.") var raw = false
    @Flag(help: "Print one JSON object with the text, token ids and timings instead of streaming.") var json = false
    @Argument(help: "The prompt (default: standard input).") var prompt: String?

    func run() throws {
        let text = prompt ?? readStandardInput()
        let clock = ContinuousClock()
        let loadStart = clock.now
        let model = try modelOptions.load()
        let loadMilliseconds = loadStart.duration(to: clock.now).inMilliseconds

        let promptText: String
        if raw {
            promptText = text
        } else {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: text))
            promptText = try QwenChatTemplate.render(messages: messages, tools: nil, addGenerationPrompt: true)
        }
        let tokens = try model.requireTokenizer().encode(promptText)
        let generator = Generator(model: model, contextLength: modelOptions.contextLength(for: model),
                                  threads: modelOptions.threadCount)
        let result = try generator.generate(prompt: tokens, options: sampling.generationOptions) { piece in
            if !json { write(piece) }
            return true
        }
        if json {
            let t = result.timings
            let object: [String: Any] = [
                "text": result.text,
                "prompt_tokens": result.promptTokens,
                "tokens": result.tokens,
                "finish_reason": result.finishReason.rawValue,
                "tool_calls": [Any](),
                "reasoning": NSNull(),
                "timings": [
                    "load_ms": loadMilliseconds,
                    "prompt_ms": t.promptMilliseconds,
                    "prompt_tokens_per_second": t.promptTokensPerSecond,
                    "generation_ms": t.generationMilliseconds,
                    "generation_tokens_per_second": t.generationTokensPerSecond,
                ],
            ]
            write(try jsonString(object) + "\n")
        } else {
            write("\n")
        }
    }
}
