import Foundation
import MCP
import QwenKit
import SystemPackage

/// What one MCP server may send before it is cut off, so that a hostile or broken server cannot
/// hang the agent or fill its memory. Each limit, when crossed, ends the server with an error that
/// names it; the agent goes on with its other tools.
public struct MCPLimits: Sendable {
    /// `tools/list` pages (a server that hands out `nextCursor` forever stops here).
    public var maxPages = 100
    /// Tools listed by one server.
    public var maxTools = 1000
    /// Bytes of one JSON-RPC message (a line); also what may pile up without a newline.
    public var maxMessageBytes = 4 << 20
    /// Messages in a row that answer nothing (notifications, requests of its own).
    public var maxUnansweredMessages = 1000

    public init() {}
}

/// An MCP server started as a child process and spoken to over its stdin/stdout with
/// newline-delimited JSON-RPC (MCP's stdio transport).
///
/// The swift-sdk 0.12.1 client hung here on Linux waiting for `initialize` over `Process` pipes
/// (its non-blocking read loop never delivered the answer), so this is a minimal client of our own:
/// `initialize`, `notifications/initialized`, `tools/list` (paged) and `tools/call`. Tool schemas
/// and annotations are read with the SDK's `Tool` type.
///
/// A server is a stranger: its tools ask for confirmation unless it is started `trusted` and marks
/// them `readOnlyHint`, tools whose names break MCP's rules are dropped (see ``warnings``), and its
/// traffic is bounded by ``MCPLimits`` and a time limit per request.
public final class MCPServerProcess: Sendable {
    /// The command line it was started with.
    public let command: String
    /// The name `--mcp-trust` refers to: the program's file name (see ``name(of:)``).
    public let name: String
    /// The server's tools, ready to offer to the model.
    public let tools: [any AgentTool]
    /// Tools that were dropped, one line each naming the server (names already escaped for a terminal).
    public let warnings: [String]
    private let connection: JSONRPCConnection

    /// Starts `command` (run by `/bin/sh`, so quoting works as in a shell), initializes it and lists its tools.
    /// - Parameters:
    ///   - timeout: the longest wait for any one answer; a server silent for longer is dropped.
    ///   - trusted: whether its `readOnlyHint` annotations are believed (read-only tools then run unasked).
    /// - Throws: ``MCPStartError`` with one line naming the server when it cannot start, answer or stay in ``MCPLimits``.
    public static func start(_ command: String, timeout: Duration = .seconds(30), trusted: Bool = false,
                             limits: MCPLimits = MCPLimits()) async throws -> MCPServerProcess {
        let name = Self.name(of: command)
        let connection: JSONRPCConnection
        do {
            connection = try JSONRPCConnection(command: command, server: name, timeout: timeout, limits: limits)
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
            var pages = 0
            repeat {
                guard pages < limits.maxPages else {
                    throw ToolError("MCP server '\(name)' listed more than \(limits.maxPages) pages of tools")
                }
                pages += 1
                let page = try await connection.request("tools/list", cursor.map { ["cursor": .string($0)] } ?? .object([]))
                let decoded = try JSONDecoder().decode(ListTools.Result.self, from: Data(page.pythonJSON.utf8))
                listed += decoded.tools
                guard listed.count <= limits.maxTools else {
                    throw ToolError("MCP server '\(name)' listed more than \(limits.maxTools) tools")
                }
                cursor = decoded.nextCursor
            } while cursor != nil
            var tools: [any AgentTool] = []
            var warnings: [String] = []
            var seen: Set<String> = []
            for tool in listed {
                let shown = TerminalText.escaped(String(tool.name.prefix(200)))
                if !isValidToolName(tool.name) {
                    warnings.append("MCP server '\(name)': dropped the tool '\(shown)': a name is 1 to 128 of A-Z a-z 0-9 _ - .")
                } else if !seen.insert(tool.name).inserted {
                    warnings.append("MCP server '\(name)': dropped a second tool named '\(shown)'")
                } else {
                    tools.append(MCPTool(tool: tool, connection: connection, server: name, trusted: trusted))
                }
            }
            return MCPServerProcess(command: command, name: name, tools: tools, warnings: warnings, connection: connection)
        } catch {
            connection.close()
            let reason = "\(error)"
            let own = "MCP server '\(name)' "
            throw MCPStartError(message: "MCP server '\(name)' (\(command)) did not answer: "
                                + (reason.hasPrefix(own) ? String(reason.dropFirst(own.count)) : reason))
        }
    }

    /// The name of a server's command as `--mcp-trust` takes it: the file name of its program,
    /// or of the script an interpreter runs (`'/x/.venv/bin/mcp-server-time' --local-timezone UTC`
    /// → `mcp-server-time`, `python3 tools/server.py` → `server.py`, `npx -y @scope/server-files /tmp`
    /// → `server-files`). Leading `NAME=value` words are skipped. Never the server's own claim about itself.
    public static func name(of command: String) -> String {
        let words = Array(shellWords(command).drop { $0.contains("=") && !$0.hasPrefix("-") && !$0.contains("/") })
        let interpreters: Set<String> = ["python", "python3", "node", "deno", "bun", "npx", "uvx", "uv", "sh", "bash"]
        var index = 0
        while index < words.count, interpreters.contains(fileName(words[index])),
              let next = words[(index + 1)...].firstIndex(where: { !$0.hasPrefix("-") && $0 != "run" }) {
            index = next
        }
        let program = index < words.count ? fileName(words[index]) : ""
        return TerminalText.escaped(program)
    }

    private static func fileName(_ path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    /// Words split at unquoted white space, with '…' and "…" quoting (enough for a command line).
    static func shellWords(_ command: String) -> [String] {
        var words: [String] = []
        var word: String?
        var quote: Character?
        for character in command {
            if let open = quote {
                if character == open { quote = nil } else { word = (word ?? "") + String(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                word = word ?? ""
            } else if character.isWhitespace {
                if let finished = word { words.append(finished) }
                word = nil
            } else {
                word = (word ?? "") + String(character)
            }
        }
        if let finished = word { words.append(finished) }
        return words
    }

    /// MCP's rule for tool names: 1 to 128 characters, each an ASCII letter, digit, `_`, `-` or `.`.
    public static func isValidToolName(_ name: String) -> Bool {
        (1...128).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            }
    }

    private init(command: String, name: String, tools: [any AgentTool], warnings: [String], connection: JSONRPCConnection) {
        self.command = command
        self.name = name
        self.tools = tools
        self.warnings = warnings
        self.connection = connection
    }

    /// Why the server was dropped after it started (silence, a flood, an oversized message, exit), or nil.
    public var droppedReason: String? { connection.closedReason }

    /// Ends the server process.
    public func stop() async { connection.close() }
}

/// Newline-delimited JSON-RPC 2.0 over a child process's stdin and stdout. A reader thread
/// delivers each response to the request waiting for its id. A server that breaks a limit
/// (silence past the timeout, a flood, a message too long) is killed and every waiting and later
/// request fails with the reason, naming the server.
final class JSONRPCConnection: @unchecked Sendable {
    private let process = Process()
    private let input: FileHandle
    private let server: String
    private let timeout: Duration
    private let limits: MCPLimits
    private let lock = NSLock()
    // Guarded by `lock`.
    private var nextID = 1
    private var waiting: [Int: CheckedContinuation<JSONValue, Error>] = [:]
    private var closed: String?
    private var unanswered = 0

    /// Writing to a server that has exited raises SIGPIPE, whose default action kills the whole
    /// process (seen: a bad `--mcp` command took the agent down when `sh` exited before the first
    /// write). Ignored process-wide, once, as servers do: the write then fails with EPIPE and the
    /// waiting request ends in an error naming the server.
    private static let brokenPipesIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    init(command: String, server: String, timeout: Duration, limits: MCPLimits) throws {
        _ = Self.brokenPipesIgnored
        self.server = server
        self.timeout = timeout
        self.limits = limits
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec " + command]
        let toServer = Pipe(), fromServer = Pipe()
        process.standardInput = toServer
        process.standardOutput = fromServer
        process.standardError = FileHandle.nullDevice
        input = toServer.fileHandleForWriting
        try process.run()
        let output = fromServer.fileHandleForReading
        let maxBytes = limits.maxMessageBytes
        let thread = Thread { [weak self] in
            // Each byte is looked at once: a line is what was pending plus the chunk up to a newline.
            var pending = Data()
            reading: while true {
                let chunk = output.availableData
                if chunk.isEmpty { break }
                var lineStart = chunk.startIndex
                while let newline = chunk[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
                    pending.append(chunk[lineStart..<newline])
                    lineStart = newline + 1
                    if pending.count > maxBytes {
                        self?.drop("sent a message over \(maxBytes) bytes")
                        break reading
                    }
                    guard self?.receive(pending) == true else { break reading }
                    pending.removeAll(keepingCapacity: true)
                }
                pending.append(chunk[lineStart...])
                if pending.count > maxBytes {
                    self?.drop("sent over \(maxBytes) bytes without a newline")
                    break
                }
            }
            self?.fail("the server closed its output")
        }
        thread.start()
    }

    /// Why the connection ended, or nil while it is open.
    var closedReason: String? { lock.withLock { closed } }

    /// Hands a response to its request; counts messages that answer nothing. False once the server
    /// has been dropped (stop reading).
    private func receive(_ line: Data) -> Bool {
        let message = try? JSONValue.parse(line)
        let continuation = lock.withLock { () -> CheckedContinuation<JSONValue, Error>? in
            guard let id = message?["id"]?.intValue, message?["method"] == nil,
                  let continuation = waiting.removeValue(forKey: id) else {
                unanswered += 1
                return nil
            }
            unanswered = 0
            return continuation
        }
        guard let continuation, let message else {
            let flooded = lock.withLock { unanswered > limits.maxUnansweredMessages }
            if flooded { drop("sent more than \(limits.maxUnansweredMessages) messages in a row that answer nothing") }
            return !flooded
        }
        if let error = message["error"] {
            continuation.resume(throwing: ToolError(error["message"]?.stringValue ?? error.pythonJSON))
        } else {
            continuation.resume(returning: message["result"] ?? .null)
        }
        return true
    }

    /// Ends the connection for good: fails every waiting request with `reason`, naming the server.
    private func fail(_ reason: String) {
        let (message, pending) = lock.withLock { () -> (String, [CheckedContinuation<JSONValue, Error>]) in
            if closed == nil { closed = "MCP server '\(server)' \(reason)" }
            defer { waiting.removeAll() }
            return (closed ?? reason, Array(waiting.values))
        }
        for continuation in pending { continuation.resume(throwing: ToolError(message)) }
    }

    /// A server that broke a limit: its requests fail with the reason and the process is killed
    /// (a hostile one may ignore SIGTERM).
    private func drop(_ reason: String) {
        fail(reason + "; it was dropped")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Sends a request and waits for its result; no answer within the timeout drops the server.
    func request(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        let id = lock.withLock { () -> Int in defer { nextID += 1 }; return nextID }
        let limit = timeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: limit)
            self?.drop("did not answer \(method) within \(limit)")
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
        // A server that ignores SIGTERM gets a second before SIGKILL.
        for _ in 0..<20 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        fail("the connection is closed")
    }
}

/// An MCP server that could not be started or listed, as one line.
public struct MCPStartError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One tool of an MCP server. Its annotations are the server's claims: side-effecting unless the
/// user trusts the server and the server marks it `readOnlyHint`. Every call is audited.
struct MCPTool: AgentTool {
    let tool: Tool
    let connection: JSONRPCConnection
    let server: String
    let trusted: Bool

    var name: String { tool.name }
    var description: String { tool.description ?? tool.title ?? tool.name }
    var parameters: JSONValue { (try? JSONValue(mcp: tool.inputSchema)) ?? .object([("type", "object")]) }
    var sideEffect: Bool { !(trusted && tool.annotations.readOnlyHint == true) }
    var alwaysAudited: Bool { true }

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

