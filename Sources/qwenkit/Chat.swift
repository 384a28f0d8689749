import ArgumentParser
import Foundation
import QwenKit

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with the model. Commands: /reset, /system TEXT, /exit.",
        discussion: "The conversation's KV cache is kept between turns: each turn processes only its new tokens.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(help: "System prompt (default: the chat template's own).") var system: String?
    @Flag(help: "After each reply, print to stderr how many prompt tokens were processed and how many came from the cache.")
    var verbose = false

    func run() throws {
        let model = try modelOptions.load()
        let tokenizer = try model.requireTokenizer()
        let options = sampling.generationOptions(for: model)
        let generator = Generator(model: model, contextLength: modelOptions.contextLength(for: model),
                                  threads: modelOptions.threadCount)
        var system = self.system
        var history: [ChatMessage] = []
        let interactive = isatty(STDIN_FILENO) != 0
        while let (line, input) = readSessionLine(interactive: interactive) {
            if input == "/reset" {
                history.removeAll()
                log("conversation cleared")
                continue
            }
            if input.hasPrefix("/system") {
                let text = input.dropFirst("/system".count).trimmingCharacters(in: .whitespaces)
                system = text.isEmpty ? nil : text
                history.removeAll()
                log(system == nil ? "system prompt cleared; conversation cleared" : "system prompt set; conversation cleared")
                continue
            }
            history.append(.user(line))
            let messages = (system.map { [ChatMessage.system($0)] } ?? []) + history
            let promptText = try model.renderPrompt(messages: messages, enableThinking: sampling.think,
                                                 templateArguments: sampling.templateArguments)
            let startsInReasoning = promptText.hasSuffix("<think>\n")
            // The whole conversation is rendered each turn; the generator reuses the cached prefix
            // (the template may drop old <think> blocks, so only the common prefix is kept).
            let prompt = tokenizer.encode(promptText)
            var printer = ReplyPrinter(startsInReasoning: startsInReasoning, hideThinking: sampling.hideThinking)
            do {
                let result = try generator.generate(prompt: prompt, options: options) { piece in
                    printer.print(piece)
                    return true
                }
                printer.finish()
                write("\n")
                if verbose {
                    let t = result.timings
                    log("[prompt \(prompt.count) tokens: \(t.promptTokens) processed, \(prompt.count - t.promptTokens) cached; "
                        + "\(t.generatedTokens) generated, \(String(format: "%.1f", t.generationTokensPerSecond)) tokens/s]")
                }
                let output = AssistantOutput.parse(result.text, offeredTools: [], startsInReasoning: startsInReasoning)
                history.append(ChatMessage(role: "assistant", content: output.content ?? "",
                                           reasoningContent: output.reasoning))
            } catch {
                history.removeLast()
                log("error: \(error)")
            }
        }
    }
}
