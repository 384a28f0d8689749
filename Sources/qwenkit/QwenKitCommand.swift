import ArgumentParser
import Foundation
import QwenAgent
import QwenKit

@main
struct QwenKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qwenkit",
        abstract: "Run Qwen models natively: answer prompts, chat, tokenize, score.",
        subcommands: [Run.self, Serve.self, AgentCommand.self, Template.self, Chat.self, Tokenize.self, Detokenize.self, Score.self, Pull.self, List.self, Rm.self, Bench.self])

    /// Every failure reaches the user as one line on stderr and a non-zero exit, never a trace.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch let error where isArgumentError(error) {
            Self.exit(withError: error)
        } catch {
            // Errors can quote model files, templates and remote replies: escaped, one line, bounded.
            FileHandle.standardError.write(Data("qwenkit: error: \(terminalExcerpt("\(error)", limit: 2000))\n".utf8))
            Foundation.exit(1)
        }
    }

    /// Errors of the argument parser itself (bad flags, --help) get its usage text; every other
    /// error is the library's or ours and is shown as one line.
    private static func isArgumentError(_ error: Error) -> Bool {
        String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }
}

/// A mistake in what the user asked for, reported as one line.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
