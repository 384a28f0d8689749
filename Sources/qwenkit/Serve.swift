import ArgumentParser
import Foundation
import QwenAgent
import QwenKit
import QwenServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models), and with --agent the agent (/v1/agent).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Address to listen on: loopback by default, so only this machine can connect; another address also needs --api-key.")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Require 'Authorization: Bearer KEY' on every /v1 route.") var apiKey: String?
    @Option(help: "Conversations generated at the same time, each with its own KV cache.") var parallel = 1
    @Option(help: "Requests that may wait for a free slot before new ones are refused with 503.") var queue = 64
    @Option(help: "Largest accepted request body, in bytes.") var maxBodyBytes = 8 << 20
    @Option(help: "Seconds a new connection may take to send its request headers.") var headerTimeout = 60.0
    @Option(help: "Seconds allowed between two reads of a request body.") var bodyTimeout = 60.0
    @Option(help: "Seconds an idle keep-alive connection stays open.") var idleTimeout = 75.0
    @Option(help: "Open connections at most; more wait until one closes.") var maxConnections = 1024
    @Flag(help: "Also serve the agent under /v1/agent (sessions, event streams, confirmations; see the README).")
    var agent = false
    @Option(help: "The agent's SQLite database (default: $QWENKIT_HOME/agent.sqlite).") var db: String?
    @Option(help: "Start an MCP server over stdio and offer its tools to the agent (repeatable).") var mcp: [String] = []
    @Option(name: .customLong("mcp-trust"), help: ArgumentHelp(
        "Believe the read-only hints of this MCP server (repeatable): its read-only tools then run without asking.",
        valueName: "NAME"))
    var mcpTrust: [String] = []
    @Option(name: .customLong("mcp-timeout"), help: "Seconds an MCP server may take to answer one request before it is dropped.")
    var mcpTimeout: Double = 30
    @Option(name: .customLong("agent-confirm-timeout"),
            help: "Seconds a confirmation waits for the client's answer before it counts as no.")
    var agentConfirmTimeout: Double = 120
    @Option(name: .customLong("agent-max-sessions"), help: "Agent sessions kept at most; the longest idle is dropped for a new one.")
    var agentMaxSessions = 64
    @Option(name: .customLong("agent-max-steps"), help: "Model steps per agent message.") var agentMaxSteps = 8

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel must be in 1...64") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard queue >= 0 else { throw ValidationError("--queue must not be negative") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        for (name, seconds) in [("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout), ("--idle-timeout", idleTimeout)] {
            guard seconds.isFinite, seconds > 0, seconds <= 86_400 else { throw ValidationError("\(name) must be in (0, 86400] seconds") }
        }
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        if !agent && (db != nil || !mcp.isEmpty || !mcpTrust.isEmpty) {
            throw ValidationError("--db, --mcp and --mcp-trust configure the agent: add --agent")
        }
        guard agentConfirmTimeout.isFinite, agentConfirmTimeout > 0, agentConfirmTimeout <= 86_400 else {
            throw ValidationError("--agent-confirm-timeout must be in (0, 86400] seconds")
        }
        guard agentMaxSessions > 0 else { throw ValidationError("--agent-max-sessions must be positive") }
        guard agentMaxSteps > 0 else { throw ValidationError("--agent-max-steps must be positive") }
        guard mcpTimeout > 0 && mcpTimeout <= 86_400 else { throw ValidationError("--mcp-timeout must be between 0 and 86400 seconds") }
        for name in mcpTrust where !mcp.contains(where: { $0 == name || MCPServerProcess.name(of: $0) == name }) {
            throw ValidationError("--mcp-trust \(TerminalText.escaped(name)) names no --mcp server; give the program's file name or the whole --mcp command")
        }
    }

    /// Whether `host` only accepts connections from this machine.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    func run() async throws {
        let model = try modelOptions.load()
        let name = modelOptions.model ?? ProcessInfo.processInfo.environment["QWENKIT_MODEL"] ?? KnownModel.default.name
        let engine = try InferenceEngine(model: model, modelID: name, contextLength: modelOptions.contextLength(for: model),
                                         parallel: parallel, threads: modelOptions.threadCount, maxQueue: queue)
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.apiKey = apiKey
        configuration.maxBodyBytes = maxBodyBytes
        configuration.timeouts.header = .seconds(headerTimeout)
        configuration.timeouts.body = .seconds(bodyTimeout)
        configuration.timeouts.idle = .seconds(idleTimeout)
        configuration.maxConnections = maxConnections
        var agentService: AgentService?
        var servers: [MCPServerProcess] = []
        if agent {
            let path = db ?? ModelStore().home.appendingPathComponent("agent.sqlite").path
            let store = try TravelStore(path: path)
            servers = await AgentCommand.startMCPServers(mcp, trust: mcpTrust, timeout: mcpTimeout)
            var settings = AgentServiceConfiguration(
                brain: EngineBrain(engine: engine), store: store, tools: DemoTools.all(store) + servers.flatMap(\.tools),
                systemPrompt: Agent.defaultSystemPrompt + " Today is \(AgentCommand.today).")
            settings.confirmationTimeout = .milliseconds(Int(agentConfirmTimeout * 1000))
            settings.maxSessions = agentMaxSessions
            settings.maxSteps = agentMaxSteps
            agentService = AgentService(settings)
            log("agent on /v1/agent (database \(path), confirmations time out to no after \(agentConfirmTimeout) s)")
        }
        log("serving \(name) on http://\(host):\(port) (parallel \(parallel), context \(engine.contextLength)); chat page at /")
        if apiKey == nil && !Self.isLoopback(host) {
            log("warning: listening on \(host) without --api-key: anyone who can reach this address can use the model")
        }
        do {
            try await buildApplication(engine: engine, configuration: configuration, agent: agentService).runService()
        } catch {
            agentService?.closeAll()
            for server in servers { await server.stop() }
            throw error
        }
        agentService?.closeAll()
        for server in servers { await server.stop() }
    }
}
