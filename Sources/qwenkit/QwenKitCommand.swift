import ArgumentParser
import Foundation
import QwenKit

@main
struct QwenKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qwenkit",
        abstract: "Run Qwen models natively: answer prompts, chat, tokenize, score.",
        subcommands: [Run.self, Chat.self, Tokenize.self, Detokenize.self, Score.self, Pull.self, Bench.self])

    /// Every failure reaches the user as one line on stderr and a non-zero exit, never a trace.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch let error where isArgumentError(error) {
            Self.exit(withError: error)
        } catch {
            FileHandle.standardError.write(Data("qwenkit: error: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    private static func isArgumentError(_ error: Error) -> Bool {
        !(error is ModelFileError || error is ModelStoreError || error is GenerationError || error is CLIError
          || String(describing: type(of: error)).hasPrefix("Tokenizer"))
    }
}

/// A mistake in what the user asked for, reported as one line.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
