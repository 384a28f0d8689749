import Foundation
import QwenAgent
import QwenKit
import XCTest

/// A round trip with the real `mcp-server-time` from PyPI, installed in `<repo>/.venv` by
/// `scripts/setup-python.sh mcp-server-time` (scripts/test.sh runs it).
final class MCPTests: XCTestCase {
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testAgentCallsTimeServer() async throws {
        let executable = Self.repository.appendingPathComponent(".venv/bin/mcp-server-time").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            // scripts/test.sh (CI) installs it and sets QWENKIT_REQUIRE_MCP: there a missing server is a failure.
            let message = "mcp-server-time is not installed; run scripts/setup-python.sh mcp-server-time"
            if ProcessInfo.processInfo.environment["QWENKIT_REQUIRE_MCP"] == "1" { return XCTFail(message) }
            throw XCTSkip(message)
        }
        let server = try await MCPServerProcess.start("'\(executable)' --local-timezone UTC")
        let names = server.tools.map(\.name)
        XCTAssertTrue(names.contains("get_current_time"), "\(names)")
        XCTAssertTrue(names.contains("convert_time"), "\(names)")
        let getTime = try XCTUnwrap(server.tools.first { $0.name == "get_current_time" })
        XCTAssertEqual(getTime.parameters["properties"]?["timezone"]?["type"], "string")

        let brain = ScriptedBrain([
            BrainReply(content: nil, toolCalls: [
                ToolCall(name: "convert_time", arguments: ["source_timezone": "Europe/Paris", "time": "14:30",
                                                           "target_timezone": "Asia/Tokyo"]),
                ToolCall(name: "get_current_time", arguments: ["timezone": "Asia/Ho_Chi_Minh"]),
            ]),
            BrainReply(content: "It is 22:30 in Tokyo."),
        ])
        let recorder = Recorder(answer: true)
        let agent = Agent(.init(brain: brain, tools: server.tools, confirm: { recorder.confirm($0) }))
        let turn = try await agent.send("What time is 14:30 Paris in Tokyo?")
        await server.stop()
        XCTAssertEqual(turn.stopReason, .answered)
        let results = brain.lastToolResults
        XCTAssertEqual(results.count, 2)
        XCTAssertTrue(results[0].contains("22:30"), results[0])
        XCTAssertTrue(results[1].contains("Asia/Ho_Chi_Minh"), results[1])
        // Tools the server marks read-only run without asking; others would ask first.
        for request in recorder.asked {
            XCTAssertFalse(server.tools.first { $0.name == request.tool }?.sideEffect == false)
        }
    }

    /// A server that stops reading (closes its stdin) after answering `initialize`: the next write
    /// meets a broken pipe. It must end in an error naming the server, not kill this process with SIGPIPE.
    func testServerThatClosesItsInputIsAnError() async {
        let command = #"sh -c 'read line; exec 0<&-; echo "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}"; sleep 1'"#
        do {
            _ = try await MCPServerProcess.start(command, timeout: .seconds(10))
            XCTFail("expected an error")
        } catch {
            XCTAssertTrue("\(error)".contains("did not answer"), "\(error)")
        }
    }

    func testBadCommandIsOneLine() async {
        do {
            _ = try await MCPServerProcess.start("/nonexistent/mcp-server", timeout: .seconds(10))
            XCTFail("expected an error")
        } catch {
            XCTAssertTrue("\(error)".contains("/nonexistent/mcp-server"), "\(error)")
        }
    }
}
