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
    @Argument(help: "The text (default: standard input).") var text: String?

    func run() throws {
        let model = try modelOptions.load()
        let ids = try model.requireTokenizer().encode(text ?? readStandardInput(), splitSpecialTokens: splitSpecial)
        write((json ? "[" + ids.map(String.init).joined(separator: ", ") + "]" : ids.map(String.init).joined(separator: " ")) + "\n")
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
        let generator = Generator(model: model, contextLength: modelOptions.context ?? max(tokens.count, 1),
                                  threads: modelOptions.threadCount)
        try generator.validate(prompt: tokens)
        let vocabularySize = model.transformer.config.vocabularySize
        let logits = generator.state.forward(tokens, logits: .all)
        var positions: [[String: Any]] = []
        var lines: [String] = []
        for p in 0..<tokens.count {
            let row = logits[p * vocabularySize ..< (p + 1) * vocabularySize]
            let best = topLogits(row, k: min(top, vocabularySize))
            let lse = logSumExp(row)
            if json {
                positions.append(["top": best.map { [$0.id, Double($0.logit)] as [Any] }, "logsumexp": Double(lse)])
            } else {
                lines.append("\(p)\t" + best.map { "\($0.id):\($0.logit)" }.joined(separator: " ") + "\tlogsumexp \(lse)")
            }
        }
        write(json ? try jsonString(["positions": positions]) + "\n" : lines.joined(separator: "\n") + "\n")
    }
}

/// The `k` highest logits of `row` (ids relative to its start), highest first; ties by lower id.
func topLogits(_ row: ArraySlice<Float>, k: Int) -> [(id: Int, logit: Float)] {
    var best: [(id: Int, logit: Float)] = []
    let base = row.startIndex
    for (i, logit) in zip(row.indices, row) {
        if best.count == k, let last = best.last, logit <= last.logit { continue }
        let entry = (id: i - base, logit: logit)
        let at = best.firstIndex { logit > $0.logit } ?? best.count
        best.insert(entry, at: at)
        if best.count > k { best.removeLast() }
    }
    return best
}

func logSumExp(_ row: ArraySlice<Float>) -> Float {
    let maximum = row.max() ?? 0
    var sum: Double = 0
    for logit in row { sum += exp(Double(logit - maximum)) }
    return maximum + Float(log(sum))
}
