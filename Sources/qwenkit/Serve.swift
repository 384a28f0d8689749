import ArgumentParser
import Foundation
import QwenKit
import QwenServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models).")

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

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel must be in 1...64") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard queue >= 0 else { throw ValidationError("--queue must not be negative") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        for (name, seconds) in [("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout), ("--idle-timeout", idleTimeout)] {
            guard seconds.isFinite, seconds > 0, seconds <= 86_400 else { throw ValidationError("\(name) must be in (0, 86400] seconds") }
        }
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
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
        log("serving \(name) on http://\(host):\(port) (parallel \(parallel), context \(engine.contextLength)); chat page at /")
        if apiKey == nil && !Self.isLoopback(host) {
            log("warning: listening on \(host) without --api-key: anyone who can reach this address can use the model")
        }
        try await buildApplication(engine: engine, configuration: configuration).runService()
    }
}
