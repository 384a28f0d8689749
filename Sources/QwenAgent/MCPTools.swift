import Foundation
import MCP
import QwenKit
import SystemPackage

/// An MCP server started as a child process and spoken to over its stdin/stdout
/// (modelcontextprotocol/swift-sdk's client and stdio transport).
public final class MCPServerProcess: Sendable {
    /// The command line it was started with.
    public let command: String
    /// The server's tools, ready to offer to the model.
    public let tools: [any AgentTool]
    private let process: Process
    private let client: Client

    /// Starts `command` (run by `/bin/sh`, so quoting works as in a shell), connects, and lists its tools.
    /// - Throws: ``MCPError`` with one line naming the command when it cannot start or answer.
    public static func start(_ command: String, timeout: Duration = .seconds(60)) async throws -> MCPServerProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec " + command]
        let toServer = Pipe(), fromServer = Pipe()
        process.standardInput = toServer
        process.standardOutput = fromServer
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw MCPStartError(message: "cannot start MCP server '\(command)': \(error.localizedDescription)")
        }
        let transport = StdioTransport(
            input: FileDescriptor(rawValue: fromServer.fileHandleForReading.fileDescriptor),
            output: FileDescriptor(rawValue: toServer.fileHandleForWriting.fileDescriptor))
        let client = Client(name: "qwenkit-agent", version: "1.0")
        do {
            let listed = try await withTimeout(timeout) {
                try await client.connect(transport: transport)
                var tools: [Tool] = []
                var cursor: String?
                repeat {
                    let page = try await client.listTools(cursor: cursor)
                    tools += page.tools
                    cursor = page.nextCursor
                } while cursor != nil
                return tools
            }
            let wrapped: [any AgentTool] = listed.map { MCPTool(tool: $0, client: client, server: command) }
            return MCPServerProcess(command: command, tools: wrapped, process: process, client: client)
        } catch {
            if process.isRunning { process.terminate() }
            let why = process.isRunning ? "\(error)" : "it exited (status \(process.terminationStatus))"
            throw MCPStartError(message: "MCP server '\(command)' did not answer: \(why)")
        }
    }

    private init(command: String, tools: [any AgentTool], process: Process, client: Client) {
        self.command = command
        self.tools = tools
        self.process = process
        self.client = client
    }

    /// Disconnects and ends the server process.
    public func stop() async {
        await client.disconnect()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
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
    let client: Client
    let server: String

    var name: String { tool.name }
    var description: String { tool.description ?? tool.title ?? tool.name }
    var parameters: JSONValue { (try? JSONValue(mcp: tool.inputSchema)) ?? .object([("type", "object")]) }
    var sideEffect: Bool { tool.annotations.readOnlyHint != true }

    func describe(_ arguments: JSONValue) -> String {
        "Let the MCP server '\(server)' run \(name) with \(arguments.pythonJSON)?"
    }

    func run(_ arguments: JSONValue) async throws -> JSONValue {
        let mcpArguments: [String: MCP.Value]
        switch try arguments.mcpValue() {
        case .object(let object): mcpArguments = object
        default: mcpArguments = [:]
        }
        let (content, isError) = try await client.callTool(name: name, arguments: mcpArguments)
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

/// Runs `body`, throwing when it takes longer than `limit`.
func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw MCPStartError(message: "no answer within \(limit)")
        }
        guard let first = try await group.next() else { throw MCPStartError(message: "no answer") }
        group.cancelAll()
        return first
    }
}
