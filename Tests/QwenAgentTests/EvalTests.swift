import Foundation
import QwenAgent
import QwenKit
import XCTest

final class EvalTests: XCTestCase {
    func task(_ line: String) throws -> AgentTask { try AgentTask(json: JSONValue.parse(line)) }

    func testTaskPassesAndFailsOnTheDatabaseState() async throws {
        let base = try TravelStore()
        let booking = BrainReply(content: nil, toolCalls: [ToolCall(name: "book_flight", arguments: ["flight_id": "QK109"])])
        let yes = try task(#"{"id": "t", "prompt": "Book QK109", "confirm": ["yes"], "expect": {"booked_flight": "QK109"}}"#)
        let passed = try await AgentEvaluator(base: base, brain: ScriptedBrain([booking, BrainReply(content: "Done.")])).run(yes)
        XCTAssertNil(passed.failure)
        let no = try task(#"{"id": "t", "prompt": "Book QK109", "confirm": ["no"], "expect": {"booked_flight": "QK109"}}"#)
        let failed = try await AgentEvaluator(base: base, brain: ScriptedBrain([booking, BrainReply(content: "OK.")])).run(no)
        XCTAssertEqual(failed.failure?.hasPrefix("no active booking for flight QK109"), true, failed.failure ?? "")
        // Each task starts from a fresh copy: the base database was never written.
        XCTAssertEqual(try base.query("SELECT count(*) AS n FROM bookings"), [["n": 0]])
    }

    func testTheTaskSuiteParses() throws {
        let path = MCPTests.repository.appendingPathComponent("Tests/agent-tasks/tasks.jsonl").path
        let tasks = try AgentTask.load(path: path)
        XCTAssertGreaterThanOrEqual(tasks.count, 20)
        XCTAssertEqual(Set(tasks.map(\.language)), ["en", "zh", "fr", "vi"])
    }
}
