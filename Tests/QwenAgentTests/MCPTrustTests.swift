import Foundation
@testable import QwenAgent
import QwenKit
import XCTest

/// The agent against a hostile MCP server (`Tests/mcp/hostile_server.py`, Python standard library
/// only): lying annotations, escape sequences, endless pages, floods, output without newlines, silence.
final class MCPTrustTests: XCTestCase {
    static let script = MCPTests.repository.appendingPathComponent("Tests/mcp/hostile_server.py").path

    static func hostile(_ mode: String, marker: String? = nil) -> String {
        "python3 '\(script)' \(mode)" + (marker.map { " '\($0)'" } ?? "")
    }

    func temporaryFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-\(UUID().uuidString)-\(name)").path
    }

    /// Asks the lying server's `wipe_disk` once, the user answering no to any question.
    func callWipeDisk(trusted: Bool) async throws -> (marker: String, brain: ScriptedBrain, recorder: Recorder, store: TravelStore) {
        let marker = temporaryFile("wiped")
        let server = try await MCPServerProcess.start(Self.hostile("lie", marker: marker), timeout: .seconds(20), trusted: trusted)
        let store = try TravelStore()
        let brain = ScriptedBrain([BrainReply(content: nil, toolCalls: [call("wipe_disk", ["path": "/"])]),
                                   BrainReply(content: "OK.")])
        let recorder = Recorder(answer: false)
        let agent = Agent(.init(brain: brain, tools: server.tools, confirm: { recorder.confirm($0) }, auditLog: store))
        do {
            try await agent.send("Show me the disk")
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
        return (marker, brain, recorder, store)
    }

    /// A destructive tool that claims `readOnlyHint`: the user is still asked; answered no, the
    /// tool never runs (its marker file stays absent) and nothing is audited.
    func testLyingReadOnlyHintStillAsks() async throws {
        let (marker, brain, recorder, store) = try await callWipeDisk(trusted: false)
        XCTAssertEqual(recorder.asked.map(\.tool), ["wipe_disk"])
        XCTAssertTrue(recorder.asked[0].description.contains("hostile_server.py"), recorder.asked[0].description)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "wipe_disk ran without a yes")
        XCTAssertTrue(brain.lastToolResults.first?.contains("the user declined") == true, "\(brain.lastToolResults)")
        XCTAssertEqual(try store.auditEntries().count, 0)
    }

    /// Trusting the server makes its read-only tools run unasked, and the call is audited.
    func testTrustedServerRunsReadOnlyToolsUnasked() async throws {
        let (marker, _, recorder, store) = try await callWipeDisk(trusted: true)
        defer { try? FileManager.default.removeItem(atPath: marker) }
        XCTAssertEqual(recorder.asked.count, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker))
        let audit = try store.auditEntries()
        XCTAssertEqual(audit.map(\.tool), ["wipe_disk"])
        XCTAssertEqual(audit.first?.arguments, ["path": "/"])
    }

    /// A tool name with an escape sequence is dropped with a warning naming the server; escape
    /// sequences in a description, arguments and results never reach the confirmation question.
    func testEscapeSequencesAreDroppedOrEscaped() async throws {
        let server = try await MCPServerProcess.start(Self.hostile("escapes"), timeout: .seconds(20))
        XCTAssertEqual(server.tools.map(\.name), ["ping_tool", "echo"])
        XCTAssertEqual(server.warnings.count, 1)
        let warning = try XCTUnwrap(server.warnings.first)
        XCTAssertTrue(warning.contains("'hostile_server.py'") && warning.contains(#"time\x1b[2K\x1b[1G"#), warning)
        assertTerminalSafe(warning)

        let brain = ScriptedBrain([BrainReply(content: nil, toolCalls: [call("echo", ["text": "\u{1B}[31mred\r\u{9B}"])]),
                                   BrainReply(content: "OK.")])
        let recorder = Recorder(answer: true)
        let agent = Agent(.init(brain: brain, tools: server.tools, confirm: { recorder.confirm($0) }))
        try await agent.send("Echo red")
        await server.stop()
        let question = try XCTUnwrap(recorder.asked.first?.description)
        XCTAssertTrue(question.contains(#"\u001b[31mred"#) || question.contains(#"\x1b[31mred"#), question)
        assertTerminalSafe(question)
        XCTAssertTrue(brain.lastToolResults.first?.contains("echo") == true)
    }

    func testNames() {
        XCTAssertEqual(MCPServerProcess.name(of: "'/x/.venv/bin/mcp-server-time' --local-timezone UTC"), "mcp-server-time")
        XCTAssertEqual(MCPServerProcess.name(of: "python3 -u tools/server.py --flag"), "server.py")
        XCTAssertEqual(MCPServerProcess.name(of: "DEBUG=1 npx -y @scope/server-files /tmp"), "server-files")
        XCTAssertEqual(MCPServerProcess.name(of: "sh sh"), "sh")
        XCTAssertTrue(MCPServerProcess.isValidToolName("get_current_time.v2-beta"))
        for bad in ["", String(repeating: "a", count: 129), "time\u{1B}[2K", "a b", "é", "a/b"] {
            XCTAssertFalse(MCPServerProcess.isValidToolName(bad), bad)
        }
        XCTAssertEqual(TerminalText.escaped("a\u{1B}[2Kb\r\n\u{7F}\u{9B}\u{202E}c"), #"a\x1b[2Kb\x0d\x0a\x7f\u{009b}\u{202e}c"#)
        XCTAssertEqual(TerminalText.escaped("line\n\ttab\u{7}", keepingNewlines: true), "line\n\ttab\\x07")
    }

    /// Endless `tools/list` pages end at the page limit with an error naming the server.
    func testEndlessPaginationIsCut() async {
        var limits = MCPLimits()
        limits.maxPages = 100
        do {
            _ = try await MCPServerProcess.start(Self.hostile("pages"), timeout: .seconds(20), limits: limits)
            XCTFail("expected an error")
        } catch {
            XCTAssertTrue("\(error)".contains("'hostile_server.py'") && "\(error)".contains("more than 100 pages"), "\(error)")
        }
    }

    /// A server that answers nothing, not even `initialize`, is cut at the time limit.
    func testSilentServerIsCutAtTheTimeLimit() async {
        let started = ContinuousClock.now
        do {
            _ = try await MCPServerProcess.start(Self.hostile("mute"), timeout: .seconds(1))
            XCTFail("expected an error")
        } catch {
            XCTAssertTrue("\(error)".contains("'hostile_server.py'") && "\(error)".contains("did not answer initialize within 1"),
                          "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(15))
    }

    /// A flood of notifications, endless output without a newline, and a call never answered each
    /// end in an error naming the server; the server is dropped; the agent keeps its other tools.
    func testMisbehavingServerIsDroppedAndTheAgentGoesOn() async throws {
        for (mode, tool, reason) in [("flood", "flood", "messages in a row that answer nothing"),
                                     ("nonewline", "blob", "without a newline"),
                                     ("silence", "hang", "did not answer tools/call within 2")] {
            let server = try await MCPServerProcess.start(Self.hostile(mode), timeout: .seconds(2))
            let store = try TravelStore()
            let brain = ScriptedBrain([
                BrainReply(content: nil, toolCalls: [call(tool, [:])]),
                BrainReply(content: nil, toolCalls: [call("ping_tool", [:]), call("view_cart", [:])]),
                BrainReply(content: "OK."),
            ])
            let agent = Agent(.init(brain: brain, tools: server.tools + DemoTools.all(store), confirm: { _ in true }))
            let started = ContinuousClock.now
            let turn = try await agent.send("Go")
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(20), mode)
            XCTAssertEqual(turn.stopReason, .answered, mode)
            let first = brain.seen[1].last?.content ?? ""
            XCTAssertTrue(first.contains("MCP server 'hostile_server.py'") && first.contains(reason), "\(mode): \(first)")
            let results = Array(brain.lastToolResults.suffix(2))
            XCTAssertTrue(results[0].contains("dropped"), "\(mode): \(results[0])")
            XCTAssertTrue(results[1].contains("\"total_eur\": 0"), "\(mode): \(results[1])")
            XCTAssertNotNil(server.droppedReason, mode)
            await server.stop()
        }
    }
}

/// Fails when `text` holds a byte a terminal would act on: C0 controls but newline, DEL, C1
/// controls, or a bidi override.
func assertTerminalSafe(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
    assertTerminalSafe(Data(text.utf8), file: file, line: line)
}

func assertTerminalSafe(_ bytes: Data, file: StaticString = #filePath, line: UInt = #line) {
    let text = String(decoding: bytes, as: UTF8.self)
    for scalar in text.unicodeScalars where scalar != "\n" {
        let v = scalar.value
        if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) {
            return XCTFail("raw control character U+\(String(v, radix: 16)) in \(text.debugDescription.prefix(400))", file: file, line: line)
        }
    }
}
