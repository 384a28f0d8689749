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
        let tokenizer = try model.requireTokenizer()
        let loadMilliseconds = loadStart.duration(to: clock.now).inMilliseconds

        let promptText: String
        if raw {
            promptText = text
        } else {
            var messages: [ChatMessage] = []
            if let system { messages.append(.system(system)) }
            messages.append(.user(text))
            promptText = try model.renderPrompt(messages: messages, enableThinking: sampling.think,
                                                 templateArguments: sampling.templateArguments)
        }
        let startsInReasoning = !raw && promptText.hasSuffix("<think>\n")
        let tokens = tokenizer.encode(promptText)
        let generator = Generator(model: model, contextLength: modelOptions.contextLength(for: model),
                                  threads: modelOptions.threadCount)
        var printer = ReplyPrinter(startsInReasoning: startsInReasoning, hideThinking: sampling.hideThinking)
        let result = try generator.generate(prompt: tokens, options: sampling.generationOptions(for: model)) { piece in
            if !json { printer.print(piece) }
            return true
        }
        guard json else {
            printer.finish()
            write("\n")
            return
        }
        // No tool list is known here, so a tagged call to any function counts.
        let output = raw ? AssistantOutput(reasoning: nil, content: result.text, toolCalls: [])
            : AssistantOutput.parse(result.text, tools: .anyFunction, format: model.toolCallFormat,
                                    startsInReasoning: startsInReasoning)
        let t = result.timings
        let object: [String: Any] = [
            "text": output.content ?? "",
            "prompt_tokens": result.promptTokens,
            "tokens": result.tokens,
            "finish_reason": output.toolCalls.isEmpty ? result.finishReason.rawValue : FinishReason.toolCalls.rawValue,
            "tool_calls": output.toolCalls.enumerated().map { index, call -> [String: Any] in
                ["id": "call_\(index)", "type": "function",
                 "function": ["name": call.name, "arguments": call.arguments.pythonJSON]]
            },
            "reasoning": output.reasoning.map { $0 as Any } ?? NSNull(),
            "timings": [
                "load_ms": loadMilliseconds,
                "prompt_ms": t.promptMilliseconds,
                "prompt_tokens_per_second": t.promptTokensPerSecond,
                "generation_ms": t.generationMilliseconds,
                "generation_tokens_per_second": t.generationTokensPerSecond,
            ],
        ]
        write(try jsonString(object) + "\n")
    }
}
