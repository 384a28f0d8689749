import ArgumentParser
import Foundation
import QwenKit

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text, as Hugging Face encode(text, add_special_tokens=False) gives them.",
        discussion: "A text that starts with '-' follows '--'.")

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print a JSON array.") var json = false
    @Flag(help: "Encode special tokens written in the text as plain text.") var splitSpecial = false
    @Flag(help: "Print only how many ids there are (for benchmarks: no output to format).") var count = false
    @Argument(help: "The text (default: standard input).") var text: String?

    func validate() throws {
        if count && json { throw ValidationError("--count and --json cannot be combined") }
    }

    func run() throws {
        let model = try modelOptions.load()
        let ids = try model.requireTokenizer().encode(text ?? readStandardInput(), splitSpecialTokens: splitSpecial)
        if count {
            write("\(ids.count)\n")
            return
        }
        // Written in blocks: one string of every id of a 100 MB text would take gigabytes.
        let separator = json ? ", " : " "
        var block = json ? "[" : ""
        for (index, id) in ids.enumerated() {
            if index > 0 { block += separator }
            block += String(id)
            if block.utf8.count >= 1 << 16 {
                write(block)
                block = ""
            }
        }
        write(block + (json ? "]\n" : "\n"))
    }
}

struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the text of token ids.")

    @OptionGroup var modelOptions: ModelOptions
    @Argument(help: "Token ids.") var ids: [Int] = []

    func run() throws {
        let model = try modelOptions.load()
        let size = model.transformer.config.vocabularySize
        if let bad = ids.first(where: { $0 < 0 || $0 >= size }) {
            throw GenerationError.tokenOutOfRange(id: bad, vocabularySize: size)
        }
        write(try model.requireTokenizer().decode(ids))
    }
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Teacher-forced logits: for each position, the top K (id, logit) and the log-sum-exp.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Comma-separated token ids.") var ids: String
    @Option(help: "How many of the highest logits to print per position.") var top: Int = 5
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        var tokens: [Int] = []
        for field in ids.split(separator: ",", omittingEmptySubsequences: false) {
            guard let id = Int(field.trimmingCharacters(in: .whitespaces)) else {
                throw CLIError("--ids: '\(field)' is not a token id; expected comma-separated integers")
            }
            tokens.append(id)
        }
        let model = try modelOptions.load()
        // At most the model's context: a larger --context would size a KV cache for nothing (or overflow).
        let context = min(modelOptions.context ?? max(tokens.count, 1), model.transformer.config.trainedContextLength)
        let generator = Generator(model: model, contextLength: context, threads: modelOptions.threadCount)
        try generator.validate(prompt: tokens)
        let vocabularySize = model.transformer.config.vocabularySize
        let top = min(self.top, vocabularySize)
        let logits = generator.state.forward(tokens, logits: .all)
        var positions: [[String: Any]] = []
        var lines: [String] = []
        for p in 0..<tokens.count {
            let (best, lse) = logits.withUnsafeBufferPointer { all in
                let row = UnsafeBufferPointer(rebasing: all[p * vocabularySize ..< (p + 1) * vocabularySize])
                return (Logits.top(row, k: top), Logits.logSumExp(row))
            }
            if json {
                positions.append(["top": best.map { [$0.id, Double($0.logit)] as [Any] }, "logsumexp": Double(lse)])
            } else {
                lines.append("\(p)\t" + best.map { "\($0.id):\($0.logit)" }.joined(separator: " ") + "\tlogsumexp \(lse)")
            }
        }
        write(json ? try jsonString(["positions": positions]) + "\n" : lines.joined(separator: "\n") + "\n")
    }
}

