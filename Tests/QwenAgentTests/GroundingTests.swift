import Foundation
@testable import QwenAgent
import QwenKit
import XCTest

/// The ways around id grounding an attacker found, replayed with a scripted model: each must be
/// refused before the user is asked, however often it is repeated.
final class GroundingTests: XCTestCase {
    func agent(_ replies: [BrainReply], store: TravelStore) -> (Agent, ScriptedBrain, Recorder) {
        let brain = ScriptedBrain(replies), recorder = Recorder(answer: true)
        let agent = Agent(.init(brain: brain, tools: DemoTools.all(store), confirm: { recorder.confirm($0) }, auditLog: store))
        return (agent, brain, recorder)
    }

    /// The tool message the brain saw before step `step` (0-based).
    func result(_ brain: ScriptedBrain, before step: Int) -> String {
        brain.seen[step].last { $0.role == "tool" }?.content ?? ""
    }

    /// The refusal names the made-up id; that must not ground it for the identical second call.
    func testRepeatingARefusedIdDoesNotGroundIt() async throws {
        let store = try TravelStore()
        XCTAssertNotNil(store.flightSummary("QK123"), "QK123 is a real flight, so only grounding can stop it")
        let book = BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK123"])])
        let (agent, brain, recorder) = agent([book, book, book, BrainReply(content: "Sorry.")], store: store)
        try await agent.send("Book me a flight to Tokyo")
        for step in 1...3 {
            XCTAssertTrue(result(brain, before: step).contains("flight_id QK123 appears in no search result"), result(brain, before: step))
        }
        XCTAssertEqual(recorder.asked.count, 0)
        XCTAssertEqual(try store.query("SELECT * FROM bookings").count, 0)
    }

    /// The invalid-JSON error quotes the arguments (P0007); that must not ground P0007 either.
    func testInvalidJSONErrorDoesNotGroundTheId() async throws {
        let store = try TravelStore()
        XCTAssertNotNil(store.productSummary("P0007"))
        let (agent, brain, recorder) = agent([
            BrainReply(content: nil, toolCalls: [ToolCall(name: "add_to_cart", arguments: .string(#"{"product_id": "P0007", quantity: 1"#))]),
            BrainReply(content: nil, toolCalls: [call("add_to_cart", ["product_id": "P0007", "quantity": 1])]),
            BrainReply(content: nil, toolCalls: [call("add_to_cart", ["product_id": "P0007", "quantity": 1])]),
            BrainReply(content: "Sorry."),
        ], store: store)
        try await agent.send("Put some headphones in my cart")
        XCTAssertTrue(result(brain, before: 1).contains("not valid JSON") && result(brain, before: 1).contains("P0007"))
        XCTAssertTrue(result(brain, before: 2).contains("product_id P0007 appears in no search result"), result(brain, before: 2))
        XCTAssertTrue(result(brain, before: 3).contains("product_id P0007 appears in no search result"), result(brain, before: 3))
        XCTAssertEqual(recorder.asked.count, 0)
        XCTAssertEqual(try store.query("SELECT * FROM cart_items").count, 0)
    }

    /// Ids match as whole words: the user's QK123 does not ground QK12, and a result's does not either.
    func testIdsMatchAsWholeWords() async throws {
        let store = try TravelStore()
        let (agent, brain, recorder) = agent([
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK12"])]),
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "K123"])]),
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "qk123"])]),
            BrainReply(content: "Booked."),
        ], store: store)
        try await agent.send("Book flight QK123, please.")
        XCTAssertTrue(result(brain, before: 1).contains("flight_id QK12 appears in no search result"), result(brain, before: 1))
        XCTAssertTrue(result(brain, before: 2).contains("flight_id K123 appears in no search result"), result(brain, before: 2))
        XCTAssertEqual(recorder.asked.map { $0.arguments["flight_id"] }, ["qk123"])
        XCTAssertEqual(try store.query("SELECT flight_id FROM bookings"), [["flight_id": "QK123"]])
    }

    /// An integer id (cancel_booking) never seen is refused; one a tool returned is asked about.
    func testCancelBookingNeedsASeenId() async throws {
        let store = try TravelStore()
        _ = try store.bookFlight("QK200")  // booking 1, which this conversation never shows
        let (agent, brain, recorder) = agent([
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK100"])]),
            BrainReply(content: nil, toolCalls: [call("cancel_booking", ["booking_id": 1])]),
            BrainReply(content: nil, toolCalls: [call("cancel_booking", ["booking_id": 1])]),
            BrainReply(content: nil, toolCalls: [call("cancel_booking", ["booking_id": 2])]),
            BrainReply(content: "Done."),
        ], store: store)
        try await agent.send("Book QK100, then cancel it")
        XCTAssertTrue(result(brain, before: 2).contains("booking_id 1 appears in no search result"), result(brain, before: 2))
        XCTAssertTrue(result(brain, before: 3).contains("booking_id 1 appears in no search result"), result(brain, before: 3))
        XCTAssertEqual(recorder.asked.map(\.tool), ["book_flight", "cancel_booking"])
        XCTAssertEqual(recorder.asked.last?.arguments["booking_id"], 2)
        XCTAssertEqual(try store.query("SELECT id, status FROM bookings ORDER BY id"),
                       [["id": 1, "status": "active"], ["id": 2, "status": "cancelled"]])
    }

    /// A seat the flight does not have is refused before the user is asked.
    func testNonsenseSeatIsRefused() async throws {
        let store = try TravelStore()
        let (agent, brain, recorder) = agent([
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK100", "seat": "ZZ999"])]),
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK100", "seat": "999A"])]),
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK100", "seat": "12A\n"])]),
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK100", "seat": "12a"])]),
            BrainReply(content: "Booked."),
        ], store: store)
        try await agent.send("Book QK100 seat ZZ999")
        for step in 1...3 {
            XCTAssertTrue(result(brain, before: step).contains("has no seat"), result(brain, before: step))
        }
        XCTAssertEqual(recorder.asked.count, 1)
        XCTAssertEqual(try store.query("SELECT seat FROM bookings"), [["seat": "12A"]])
        XCTAssertThrowsError(try store.bookFlight("QK100", seat: "ZZ999"))
    }
}
