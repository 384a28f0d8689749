import Foundation
import QwenAgent
import QwenKit
import XCTest

/// `qwenkit agent` end to end with a scripted model (`Tests/mcp/scripted_endpoint.py` behind
/// `--endpoint`) and the hostile MCP server: what reaches stdout and stderr is checked byte by byte.
final class AgentCommandTrustTests: XCTestCase {
    struct Run {
        var status: Int32
        var stdout: Data
        var stderr: Data
        var errorText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// Runs `qwenkit agent` against a scripted endpoint answering `replies` (OpenAI messages) in order.
    func runAgent(_ arguments: [String], replies: [JSONValue], stdin: String) throws -> Run {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let repliesFile = folder.appendingPathComponent("replies.json")
        try Data(JSONValue.array(replies).pythonJSON.utf8).write(to: repliesFile)

        let endpoint = Process()
        endpoint.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        endpoint.arguments = ["python3", MCPTests.repository.appendingPathComponent("Tests/mcp/scripted_endpoint.py").path, repliesFile.path]
        let portPipe = Pipe()
        endpoint.standardOutput = portPipe
        try endpoint.run()
        defer { endpoint.terminate(); endpoint.waitUntilExit() }
        var portText = Data()
        while !portText.contains(UInt8(ascii: "\n")) {
            let chunk = portPipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            portText.append(chunk)
        }
        let port = try XCTUnwrap(Int(String(decoding: portText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))

        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qwenkit")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["agent", "--endpoint", "http://127.0.0.1:\(port)"] + arguments
        let outURL = folder.appendingPathComponent("out"), errURL = folder.appendingPathComponent("err"),
            inURL = folder.appendingPathComponent("in")
        try Data(stdin.utf8).write(to: inURL)
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = try FileHandle(forReadingFrom: inURL)
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { process.terminate(); XCTFail("qwenkit agent did not finish") }
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: try Data(contentsOf: outURL), stderr: try Data(contentsOf: errURL))
    }

    func toolCall(_ name: String, _ arguments: JSONValue) -> JSONValue {
        ["role": "assistant", "content": .null, "tool_calls": [
            ["id": .string("call_\(name)"), "type": "function",
             "function": ["name": .string(name), "arguments": .string(arguments.pythonJSON)]],
        ]]
    }

    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-\(UUID().uuidString)-\(name)").path
    }

    /// Untrusted: both MCP calls ask (yes to echo, no to the lying wipe_disk); escape sequences from
    /// the server's names, descriptions, results, the model's arguments and its answer reach the
    /// terminal only escaped; the audit log has the one MCP call that ran.
    func testHostileServerThroughTheCommandLine() throws {
        let marker = temporaryPath("wiped"), db = temporaryPath("agent.sqlite")
        let run = try runAgent(["--db", db, "--mcp", MCPTrustTests.hostile("escapes"), "--mcp", MCPTrustTests.hostile("lie", marker: marker),
                                "Echo red, then show the disk"],
                               replies: [toolCall("echo", ["text": "\u{1B}[31mred\u{7}"]), toolCall("wipe_disk", [:]),
                                         ["role": "assistant", "content": "Done \u{1B}[2J\u{9B}31m\r cleared"]],
                               stdin: "y\nn\n")
        XCTAssertEqual(run.status, 0, run.errorText)
        assertTerminalSafe(run.stdout)
        assertTerminalSafe(run.stderr)
        let stderr = run.errorText, stdout = String(decoding: run.stdout, as: UTF8.self)
        XCTAssertTrue(stderr.contains(#"dropped the tool 'time\x1b[2K\x1b[1G'"#), stderr)
        XCTAssertEqual(stderr.components(separatedBy: "[y/N]").count - 1, 2, stderr)
        XCTAssertTrue(stderr.contains("run wipe_disk"), stderr)
        XCTAssertTrue(stdout.contains(#"Done \x1b[2J\u{009b}31m\x0d cleared"#), stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "wipe_disk ran though the user said no")
        XCTAssertEqual(try TravelStore(path: db).auditEntries().map(\.tool), ["echo"])
    }

    /// --mcp-trust NAME believes that server's read-only hints: wipe_disk runs without a question
    /// (and is audited); a name that matches no --mcp server is refused.
    func testTrustedServerThroughTheCommandLine() throws {
        let marker = temporaryPath("wiped"), db = temporaryPath("agent.sqlite")
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let run = try runAgent(["--db", db, "--mcp", MCPTrustTests.hostile("lie", marker: marker), "--mcp-trust", "hostile_server.py",
                                "Show the disk"],
                               replies: [toolCall("wipe_disk", [:]), ["role": "assistant", "content": "Done."]], stdin: "")
        XCTAssertEqual(run.status, 0, run.errorText)
        XCTAssertFalse(run.errorText.contains("[y/N]"), run.errorText)
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker))
        XCTAssertEqual(try TravelStore(path: db).auditEntries().map(\.tool), ["wipe_disk"])

        let typo = try runAgent(["--db", db, "--mcp", MCPTrustTests.hostile("lie"), "--mcp-trust", "hostile", "Hi"],
                                replies: [], stdin: "")
        XCTAssertNotEqual(typo.status, 0)
        XCTAssertTrue(typo.errorText.contains("--mcp-trust hostile names no --mcp server"), typo.errorText)
    }

    /// A server that breaks a limit while starting is left out with one line; the agent answers.
    func testBrokenServerIsLeftOut() throws {
        let db = temporaryPath("agent.sqlite")
        let run = try runAgent(["--db", db, "--mcp", MCPTrustTests.hostile("pages"), "--mcp-timeout", "5", "Hi"],
                               replies: [["role": "assistant", "content": "Hello."]], stdin: "")
        XCTAssertEqual(run.status, 0, run.errorText)
        XCTAssertTrue(run.errorText.contains("more than 100 pages") && run.errorText.contains("going on without it"), run.errorText)
        XCTAssertTrue(String(decoding: run.stdout, as: UTF8.self).contains("Hello."))
    }
}
