import Foundation
import MCP
import QwenKit
import SystemPackage

/// An MCP server started as a child process and spoken to over its stdin/stdout with
/// newline-delimited JSON-RPC (MCP's stdio transport).
///
/// The swift-sdk 0.12.1 client hung here on Linux waiting for `initialize` over `Process` pipes
/// (its non-blocking read loop never delivered the answer), so this is a minimal client of our own:
/// `initialize`, `notifications/initialized`, `tools/list` (paged) and `tools/call`. Tool schemas
/// and annotations are read with the SDK's `Tool` type.
public final class MCPServerProcess: Sendable {
    /// The command line it was started with.
    public let command: String
    /// The server's tools, ready to offer to the model.
    public let tools: [any AgentTool]
    private let connection: JSONRPCConnection

    /// Starts `command` (run by `/bin/sh`, so quoting works as in a shell), initializes it and lists its tools.
    /// - Throws: ``MCPStartError`` with one line naming the command when it cannot start or answer.
    public static func start(_ command: String, timeout: Duration = .seconds(60)) async throws -> MCPServerProcess {
        let connection: JSONRPCConnection
        do {
            connection = try JSONRPCConnection(command: command, timeout: timeout)
        } catch {
            throw MCPStartError(message: "cannot start MCP server '\(command)': \(error.localizedDescription)")
        }
        do {
            _ = try await connection.request("initialize", [
                "protocolVersion": "2025-06-18", "capabilities": .object([]),
                "clientInfo": ["name": "qwenkit-agent", "version": "1.0"],
            ])
            connection.notify("notifications/initialized")
            var listed: [Tool] = []
            var cursor: String?
            repeat {
                let page = try await connection.request("tools/list", cursor.map { ["cursor": .string($0)] } ?? .object([]))
                let decoded = try JSONDecoder().decode(ListTools.Result.self, from: Data(page.pythonJSON.utf8))
                listed += decoded.tools
                cursor = decoded.nextCursor
            } while cursor != nil
            let wrapped: [any AgentTool] = listed.map { MCPTool(tool: $0, connection: connection, server: command) }
            return MCPServerProcess(command: command, tools: wrapped, connection: connection)
        } catch {
            connection.close()
            throw MCPStartError(message: "MCP server '\(command)' did not answer: \(error)")
        }
    }

    private init(command: String, tools: [any AgentTool], connection: JSONRPCConnection) {
        self.command = command
        self.tools = tools
        self.connection = connection
    }

    /// Ends the server process.
    public func stop() async { connection.close() }
}

/// Newline-delimited JSON-RPC 2.0 over a child process's stdin and stdout. A reader thread
/// delivers each response to the request waiting for its id.
final class JSONRPCConnection: @unchecked Sendable {
    private let process = Process()
    private let input: FileHandle
    private let lock = NSLock()
    // Guarded by `lock`.
    private var nextID = 1
    private var waiting: [Int: CheckedContinuation<JSONValue, Error>] = [:]
    private var closed: String?
    private let timeout: Duration

    /// Writing to a server that has exited raises SIGPIPE, whose default action kills the whole
    /// process (seen: a bad `--mcp` command took the agent down when `sh` exited before the first
    /// write). Ignored process-wide, once, as servers do: the write then fails with EPIPE and the
    /// waiting request ends in an error naming the server.
    private static let brokenPipesIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    init(command: String, timeout: Duration) throws {
        _ = Self.brokenPipesIgnored
        self.timeout = timeout
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec " + command]
        let toServer = Pipe(), fromServer = Pipe()
        process.standardInput = toServer
        process.standardOutput = fromServer
        process.standardError = FileHandle.nullDevice
        input = toServer.fileHandleForWriting
        try process.run()
        let output = fromServer.fileHandleForReading
        let thread = Thread { [weak self] in
            var pending = Data()
            while true {
                let chunk = output.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[(newline + 1)...])
                    self?.receive(line)
                }
            }
            self?.fail("the server closed its output")
        }
        thread.start()
    }

    private func receive(_ line: Data) {
        guard let message = try? JSONValue.parse(line), let id = message["id"]?.intValue else { return }
        guard let continuation = lock.withLock({ waiting.removeValue(forKey: id) }) else { return }
        if let error = message["error"] {
            continuation.resume(throwing: ToolError(error["message"]?.stringValue ?? error.pythonJSON))
        } else {
            continuation.resume(returning: message["result"] ?? .null)
        }
    }

    private func fail(_ reason: String) {
        let pending = lock.withLock { () -> [CheckedContinuation<JSONValue, Error>] in
            closed = reason
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
        for continuation in pending { continuation.resume(throwing: ToolError(reason)) }
    }

    /// Sends a request and waits for its result (or the timeout).
    func request(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        let id = lock.withLock { () -> Int in defer { nextID += 1 }; return nextID }
        let limit = timeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: limit)
            self?.expire(id, after: limit)
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let refusal = lock.withLock { () -> String? in
                if let closed { return closed }
                waiting[id] = continuation
                return nil
            }
            if let refusal { continuation.resume(throwing: ToolError(refusal)); return }
            let message: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
            write(message)
        }
    }

    private func expire(_ id: Int, after limit: Duration) {
        lock.withLock { waiting.removeValue(forKey: id) }?.resume(throwing: ToolError("no answer within \(limit)"))
    }

    /// Sends a notification (no answer expected).
    func notify(_ method: String) {
        write(["jsonrpc": "2.0", "method": .string(method)])
    }

    private func write(_ message: JSONValue) {
        // A server that has exited makes the write fail; the reader thread then fails the waiters.
        try? input.write(contentsOf: Data((message.pythonJSON + "\n").utf8))
    }

    func close() {
        try? input.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        fail("the connection is closed")
    }
}

/// An MCP server that could not be started or listed, as one line.
public struct MCPStartError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One tool of an MCP server. Side-effecting unless the server marks it `readOnlyHint`.
struct MCPTool: AgentTool {
    let tool: Tool
    let connection: JSONRPCConnection
    let server: String

    var name: String { tool.name }
    var description: String { tool.description ?? tool.title ?? tool.name }
    var parameters: JSONValue { (try? JSONValue(mcp: tool.inputSchema)) ?? .object([("type", "object")]) }
    var sideEffect: Bool { tool.annotations.readOnlyHint != true }

    func describe(_ arguments: JSONValue) -> String {
        "Let the MCP server '\(server)' run \(name) with \(arguments.pythonJSON)?"
    }

    func run(_ arguments: JSONValue) async throws -> JSONValue {
        let raw = try await connection.request("tools/call", ["name": .string(name), "arguments": arguments])
        let result = try JSONDecoder().decode(CallTool.Result.self, from: Data(raw.pythonJSON.utf8))
        let (content, isError) = (result.content, result.isError)
        var texts: [String] = []
        for item in content {
            switch item {
            case .text(let text, _, _): texts.append(text)
            case .image(_, let mimeType, _, _): texts.append("[image \(mimeType)]")
            case .audio(_, let mimeType, _, _): texts.append("[audio \(mimeType)]")
            case .resource(let resource, _, _): texts.append(resource.text ?? "[resource \(resource.uri)]")
            case .resourceLink(let uri, let name, _, _, _, _): texts.append("[\(name): \(uri)]")
            }
        }
        let text = texts.joined(separator: "\n")
        if isError == true { throw ToolError(text.isEmpty ? "the MCP tool \(name) failed" : text) }
        // Servers usually return JSON as text; hand it on as JSON when it is.
        if let json = try? JSONValue.parse(text) { return json }
        return .string(text)
    }
}

extension JSONValue {
    /// Converts an MCP value (through its JSON encoding).
    init(mcp value: MCP.Value) throws {
        self = try JSONValue.parse(JSONEncoder().encode(value))
    }

    /// The MCP value with the same JSON.
    func mcpValue() throws -> MCP.Value {
        try JSONDecoder().decode(MCP.Value.self, from: Data(pythonJSON.utf8))
    }
}

