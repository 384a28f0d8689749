import ArgumentParser
import Foundation
import QwenAgent
import QwenKit

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "An assistant that acts: books flights and hotels, shops, and calls MCP tools — after your yes.",
        discussion: """
            Interactive by default; one answer with a PROMPT. Every booking, purchase or other side effect is \
            described in plain words and runs only after you answer y (or with --yes). Every MCP tool call asks \
            too, unless its server is named with --mcp-trust and marks the tool read-only. The demo database \
            (--db, default $QWENKIT_HOME/agent.sqlite) is seeded on first use. --eval FILE runs a task suite \
            (JSON Lines) on fresh copies of that database and prints the success rate.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(help: "An OpenAI-compatible server to think with instead of a local model (e.g. http://127.0.0.1:8080).")
    var endpoint: String?
    @Option(help: "The model name sent to --endpoint.") var endpointModel = "default"
    @Option(help: "Bearer token for --endpoint.") var apiKey: String?
    @Option(help: "The SQLite database (default: $QWENKIT_HOME/agent.sqlite).") var db: String?
    @Option(help: "Start an MCP server over stdio and offer its tools (repeatable), e.g. \"mcp-server-time\".")
    var mcp: [String] = []
    @Option(name: .customLong("mcp-trust"), help: ArgumentHelp(
        "Believe the read-only hints of this MCP server (repeatable): its read-only tools then run without asking.",
        discussion: "NAME is the program's file name (mcp-server-time) or the whole --mcp command.", valueName: "NAME"))
    var mcpTrust: [String] = []
    @Option(name: .customLong("mcp-timeout"), help: "Seconds an MCP server may take to answer one request before it is dropped.")
    var mcpTimeout: Double = 30
    @Flag(help: "Answer yes to every confirmation (scripted runs only).") var yes = false
    @Option(help: "Model steps per request.") var maxSteps = 8
    @Option(help: "Run the task suite in FILE (JSON Lines) and print the success rate.") var eval: String?
    @Argument(help: "The request (default: an interactive session).") var prompt: String?

    func validate() throws {
        if maxSteps < 1 { throw ValidationError("--max-steps must be at least 1") }
        if !(mcpTimeout > 0 && mcpTimeout <= 86_400) { throw ValidationError("--mcp-timeout must be between 0 and 86400 seconds") }
        for name in mcpTrust where !mcp.contains(where: { $0 == name || MCPServerProcess.name(of: $0) == name }) {
            throw ValidationError("--mcp-trust \(TerminalText.escaped(name)) names no --mcp server; give the program's file name or the whole --mcp command")
        }
        if let endpoint, URL(string: endpoint)?.scheme == nil { throw ValidationError("--endpoint must be a URL such as http://127.0.0.1:8080") }
    }

    func run() async throws {
        let store = try TravelStore(path: db ?? ModelStore().home.appendingPathComponent("agent.sqlite").path)
        let brain = try makeBrain()
        if let eval {
            try await runEval(path: eval, store: store, brain: brain)
            return
        }
        let servers = await Self.startMCPServers(mcp, trust: mcpTrust, timeout: mcpTimeout)
        let printer = EventPrinter()
        let assumeYes = yes
        let agent = Agent(.init(
            brain: brain, tools: DemoTools.all(store) + servers.flatMap(\.tools),
            systemPrompt: Agent.defaultSystemPrompt + " Today is \(Self.today).", maxSteps: maxSteps,
            confirm: { request in await printer.confirm(request, assumeYes: assumeYes) },
            auditLog: store, principal: ProcessInfo.processInfo.environment["USER"] ?? "user",
            onEvent: { await printer.show($0) }))
        if let prompt {
            do {
                try await agent.send(prompt)
            } catch {
                for server in servers { await server.stop() }
                throw error
            }
            write("\n")
            for server in servers { await server.stop() }
            return
        }
        let interactive = isatty(STDIN_FILENO) != 0
        while let (_, input) = readSessionLine(interactive: interactive) {
            if input == "/reset" {
                await agent.reset()
                log("conversation cleared")
                continue
            }
            do {
                try await agent.send(input)
                write("\n")
            } catch {
                log("error: \(TerminalText.escaped("\(error)"))")
            }
        }
        for server in servers { await server.stop() }
    }

    /// Starts the `--mcp` servers. One that cannot start or breaks a limit is left out (and said
    /// so on stderr); the agent goes on with the others.
    static func startMCPServers(_ commands: [String], trust: [String], timeout: Double) async -> [MCPServerProcess] {
        var servers: [MCPServerProcess] = []
        for command in commands {
            let trusted = trust.contains { $0 == command || $0 == MCPServerProcess.name(of: command) }
            do {
                let server = try await MCPServerProcess.start(command, timeout: .milliseconds(Int(timeout * 1000)),
                                                              trusted: trusted)
                for warning in server.warnings { log(warning) }
                log("MCP server '\(server.name)'\(trusted ? " (trusted)" : ""): "
                    + server.tools.map { TerminalText.escaped($0.name) }.joined(separator: ", "))
                servers.append(server)
            } catch {
                log("\(TerminalText.escaped("\(error)")); going on without it")
            }
        }
        return servers
    }

    /// The demo world's "today", so relative dates land on seeded flights.
    static let today = "2026-11-20"

    func makeBrain() throws -> any AgentBrain {
        if let endpoint, let url = URL(string: endpoint) {
            return EndpointBrain(baseURL: url, model: endpointModel, apiKey: apiKey,
                                 temperature: sampling.temperature.map(Double.init) ?? 0, maxTokens: sampling.maxTokens ?? 512)
        }
        let model = try modelOptions.load()
        _ = try model.requireTokenizer()
        var options = sampling.generationOptions(for: model)
        // Tool use wants the most likely tokens unless a temperature is asked for.
        if sampling.temperature == nil { options.sampling.temperature = 0 }
        if options.maxTokens == nil { options.maxTokens = 512 }
        return LocalBrain(model: model, contextLength: modelOptions.contextLength(for: model),
                          threads: modelOptions.threadCount, options: options, enableThinking: sampling.think ?? false)
    }

    func runEval(path: String, store: TravelStore, brain: any AgentBrain) async throws {
        let tasks = try AgentTask.load(path: path)
        guard !tasks.isEmpty else { throw CLIError("\(path) holds no tasks") }
        let evaluator = AgentEvaluator(base: store, brain: brain, maxSteps: maxSteps)
        var passed = 0
        var failures: [AgentTaskResult] = []
        for task in tasks {
            let result = try await evaluator.run(task)
            if let failure = result.failure {
                failures.append(result)
                write("FAIL \(task.id) [\(task.language)] \(failure)\n")
            } else {
                passed += 1
                write("ok   \(task.id) [\(task.language)] (\(result.steps) steps, \(String(format: "%.1f", result.seconds)) s)\n")
            }
        }
        let rate = Double(passed) * 100 / Double(tasks.count)
        write("success: \(passed)/\(tasks.count) (\(String(format: "%.0f", rate))%)\n")
        if failures.contains(where: { $0.failure?.hasPrefix("UNCONFIRMED") == true }) {
            throw CLIError("a task ended with a side effect the user did not confirm")
        }
    }
}

/// Shows the agent's events: words on stdout as they come, tool calls and results dimmed on stderr.
/// Everything shown comes from the model or a tool, so it goes through ``TerminalText`` first: no
/// control character or escape sequence of theirs reaches the terminal.
actor EventPrinter {
    private var step = ""
    private var printed = 0
    private var hiding = false
    private let dim = isatty(STDERR_FILENO) != 0

    func show(_ event: AgentEvent) {
        switch event {
        case .text(let piece):
            stream(piece)
        case .toolCall(let call):
            endStep()
            note("→ \(TerminalText.escaped(call.name)) \(TerminalText.escaped(call.arguments.pythonJSON))")
        case .toolResult(let name, let result, let isError):
            endStep()
            let text = result.pythonJSON
            let shown = TerminalText.escaped(String(text.count > 240 ? text.prefix(240) + "…" : Substring(text)))
            note("\(isError ? "✗" : "←") \(TerminalText.escaped(name)): \(shown)")
        case .confirmation(let request, let approved):
            let question = TerminalText.escaped(request.description)
            note(approved ? "✓ confirmed: \(question)" : "✗ declined: \(question)")
        case .answer:
            endStep()
        case .stepLimitReached(let steps):
            endStep()
            note("stopped after \(steps) steps without an answer (raise --max-steps)")
        }
    }

    /// Asks on the terminal; only y or yes is a yes.
    func confirm(_ request: ConfirmationRequest, assumeYes: Bool) -> Bool {
        if assumeYes { return true }
        FileHandle.standardError.write(Data("\n\(TerminalText.escaped(request.description)) [y/N] ".utf8))
        guard let line = readLine(strippingNewline: true) else { return false }
        return ["y", "yes"].contains(line.trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// Prints a step's words, holding back tool-call markup (`<tool_call>` blocks, bare JSON calls).
    private func stream(_ piece: String) {
        step += TerminalText.escaped(piece, keepingNewlines: true)
        guard !hiding else { return }
        let leading = step.drop { $0.isWhitespace }
        if leading.isEmpty { return }
        if leading.hasPrefix("{") || leading.hasPrefix("[") || leading.hasPrefix("```") || "<tool_call>".hasPrefix(leading.prefix(11)) && leading.hasPrefix("<") {
            if leading.hasPrefix("{") || leading.hasPrefix("[") || leading.hasPrefix("```") || leading.hasPrefix("<tool_call>") { hiding = true }
            return
        }
        var visible = step.count
        if let tag = step.range(of: "<tool_call>") {
            visible = step.distance(from: step.startIndex, to: tag.lowerBound)
            hiding = true
        } else if let lastOpen = step.lastIndex(of: "<"), "<tool_call>".hasPrefix(step[lastOpen...]) {
            visible = step.distance(from: step.startIndex, to: lastOpen)
        }
        if visible > printed {
            let start = step.index(step.startIndex, offsetBy: printed)
            let end = step.index(step.startIndex, offsetBy: visible)
            write(String(step[start..<end]))
            printed = visible
        }
    }

    private func endStep() {
        if printed > 0 { write("\n") }
        step = ""
        printed = 0
        hiding = false
    }

    private func note(_ line: String) {
        FileHandle.standardError.write(Data(((dim ? "\u{1B}[2m\(line)\u{1B}[0m" : line) + "\n").utf8))
    }
}
