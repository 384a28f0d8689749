import ArgumentParser
import Foundation
import QwenKit

/// Which model to use and how to run it.
struct ModelOptions: ParsableArguments {
    @Option(name: [.short, .customLong("model")],
            help: "A .gguf file, a Hugging Face model directory, a model name, or a pulled ORG/NAME[:FILE] (default: $QWENKIT_MODEL, else \(KnownModel.default.name)).")
    var model: String?

    @Option(name: [.short, .customLong("threads")], help: "Threads to compute with (default: every core).")
    var threads: Int?

    @Option(name: .customLong("context"), help: "Context length in tokens (default: 4096, at most the model's).")
    var context: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let context, context < 1 { throw ValidationError("--context must be at least 1") }
    }

    var threadCount: Int { threads ?? CPU.defaultThreads }

    /// Resolves the model reference, fetching the default model on first use, and loads it.
    func load() throws -> LanguageModel {
        let store = ModelStore()
        let reference = model ?? ProcessInfo.processInfo.environment["QWENKIT_MODEL"] ?? KnownModel.default.name
        var (path, missing) = try store.resolve(reference)
        if let missing {
            log("\(missing.name) is not in \(store.modelsFolder.path) yet; fetching it (\(missing.byteCount / 1_000_000) MB)")
            path = try ModelFetcher(store: store).fetch(missing) { log($0) }
        }
        return try LanguageModel(path: path)
    }

    func contextLength(for model: LanguageModel) -> Int {
        min(context ?? 4096, model.transformer.config.trainedContextLength)
    }
}

/// Sampling flags shared by `run` and `chat`. Unset flags take the model's defaults
/// (`generation_config.json`, else Qwen's recommendations for thinking or non-thinking mode).
struct SamplingOptions: ParsableArguments {
    @Option(help: "Maximum tokens to generate (default: until the model stops or the context is full).")
    var maxTokens: Int?
    @Option(help: "Temperature; 0 picks the most likely token every step.") var temperature: Float?
    @Option(help: "Keep only the K most likely tokens (0: off).") var topK: Int?
    @Option(help: "Keep the smallest set of tokens whose probability reaches P (1: off).") var topP: Float?
    @Option(help: "Drop tokens less likely than M × the most likely one (0: off).") var minP: Float?
    @Option(help: "Divide the logits of recent tokens by R (1: off).") var repeatPenalty: Float?
    @Option(help: "Subtract P from the logits of tokens already generated.") var presencePenalty: Float?
    @Option(help: "Random seed; the same seed and settings give the same tokens.") var seed: UInt64?
    @Option(help: "Stop before this text (repeatable).") var stop: [String] = []
    @Flag(inversion: .prefixedNo, help: "Qwen3: think before answering (enable_thinking); default: the template's.")
    var think: Bool?
    @Flag(help: "Do not show the model's reasoning.") var hideThinking = false
    @Flag(help: "Qwen3.6: keep the reasoning of earlier turns in the prompt (preserve_thinking).")
    var preserveThinking = false

    /// Template variables beyond `enable_thinking`.
    var templateArguments: [String: JSONValue] { preserveThinking ? ["preserve_thinking": .bool(true)] : [:] }

    func validate() throws {
        if let maxTokens, maxTokens < 0 { throw ValidationError("--max-tokens must not be negative") }
        if let temperature { guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0") } }
        if let topK { guard topK >= 0 else { throw ValidationError("--top-k must not be negative") } }
        if let topP { guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") } }
        if let minP { guard minP >= 0, minP <= 1 else { throw ValidationError("--min-p must be in [0, 1]") } }
        if let repeatPenalty { guard repeatPenalty > 0, repeatPenalty.isFinite else { throw ValidationError("--repeat-penalty must be > 0") } }
        if let presencePenalty { guard presencePenalty.isFinite else { throw ValidationError("--presence-penalty must be a number") } }
        if stop.contains("") { throw ValidationError("--stop must not be empty") }
    }

    /// The settings for `model`: its defaults for the thinking mode, then every flag the user gave.
    func generationOptions(for model: LanguageModel) -> GenerationOptions {
        var options = GenerationOptions()
        options.maxTokens = maxTokens
        options.stop = stop
        var sampling = model.defaultSampling(thinking: model.thinks(enableThinking: think))
        if let temperature { sampling.temperature = temperature }
        if let topK { sampling.topK = topK }
        if let topP { sampling.topP = topP }
        if let minP { sampling.minP = minP }
        if let repeatPenalty { sampling.repeatPenalty = repeatPenalty }
        if let presencePenalty { sampling.presencePenalty = presencePenalty }
        sampling.seed = seed
        options.sampling = sampling
        return options
    }
}

/// Prints streamed model output: reasoning dimmed (or hidden), the answer plainly.
struct ReplyPrinter {
    var parser: AssistantStreamParser
    let hideThinking: Bool
    let dim = isatty(STDOUT_FILENO) != 0

    init(startsInReasoning: Bool, hideThinking: Bool) {
        parser = AssistantStreamParser(offeredTools: [], startsInReasoning: startsInReasoning)
        self.hideThinking = hideThinking
    }

    mutating func print(_ piece: String) { show(parser.feed(piece)) }

    mutating func finish() { show(parser.finish().events) }

    private func show(_ events: [AssistantStreamParser.Event]) {
        for event in events {
            switch event {
            case .content(let text): write(text)
            case .reasoning(let text) where !hideThinking: write(dim ? "\u{1B}[2m\(text)\u{1B}[0m" : text)
            case .reasoning, .toolCall, .toolCallArguments: break
            }
        }
    }
}

func log(_ line: String) {
    FileHandle.standardError.write(Data("qwenkit: \(line)\n".utf8))
}

/// Writes to stdout without buffering, so streamed text appears as it is generated.
func write(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// The next line of an interactive session (prompting with "> " on a terminal): `line` as typed,
/// `command` trimmed. Blank lines are skipped; nil at the end of input or on /exit or /quit.
func readSessionLine(interactive: Bool) -> (line: String, command: String)? {
    while true {
        if interactive { write("> ") }
        guard let line = readLine(strippingNewline: true) else { return nil }
        let command = line.trimmingCharacters(in: .whitespaces)
        if command.isEmpty { continue }
        if command == "/exit" || command == "/quit" { return nil }
        return (line, command)
    }
}

/// Reads all of standard input as UTF-8.
func readStandardInput() -> String {
    String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
}

/// Serializes a JSON-compatible value (dictionaries keep the order of `keys`).
func jsonString(_ object: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}
