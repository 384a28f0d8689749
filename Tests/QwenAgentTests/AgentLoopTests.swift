import Foundation
@testable import QwenAgent
import QwenKit
import XCTest

/// A brain that replays fixed replies, one per step, and records what it was shown.
final class ScriptedBrain: AgentBrain, @unchecked Sendable {
    private let lock = NSLock()
    private var replies: [BrainReply]
    private(set) var seen: [[ChatMessage]] = []

    init(_ replies: [BrainReply]) { self.replies = replies }

    func respond(to messages: [ChatMessage], tools: [JSONValue],
                 onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply {
        lock.withLock {
            seen.append(messages)
            let reply = replies.isEmpty ? BrainReply(content: "done") : replies.removeFirst()
            if let content = reply.content { onText(content) }
            return reply
        }
    }

    var lastToolResults: [String] {
        lock.withLock { (seen.last ?? []).filter { $0.role == "tool" }.compactMap(\.content) }
    }
}

/// Collects events and answers confirmations from a script.
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var events: [AgentEvent] = []
    private(set) var asked: [ConfirmationRequest] = []
    var answer: Bool

    init(answer: Bool) { self.answer = answer }

    func record(_ event: AgentEvent) { lock.withLock { events.append(event) } }
    func confirm(_ request: ConfirmationRequest) -> Bool { lock.withLock { asked.append(request); return answer } }
}

func call(_ name: String, _ arguments: JSONValue) -> ToolCall { ToolCall(name: name, arguments: arguments) }

final class AgentLoopTests: XCTestCase {
    func makeAgent(_ replies: [BrainReply], store: TravelStore, answer: Bool = true, maxSteps: Int = 8)
        -> (Agent, ScriptedBrain, Recorder) {
        let brain = ScriptedBrain(replies)
        let recorder = Recorder(answer: answer)
        let agent = Agent(.init(brain: brain, tools: DemoTools.all(store), maxSteps: maxSteps,
                                confirm: { recorder.confirm($0) }, auditLog: store, principal: "tester",
                                onEvent: { recorder.record($0) }))
        return (agent, brain, recorder)
    }

    func testParallelCallsRunAndReturnInOrder() async throws {
        let store = try TravelStore()
        let (agent, brain, _) = makeAgent([
            BrainReply(content: nil, toolCalls: [
                call("search_flights", ["origin": "Paris", "destination": "Tokyo"]),
                call("search_hotels", ["city": "东京"]),
                call("search_products", ["query": "headphones"]),
            ]),
            BrainReply(content: "Here you are."),
        ], store: store)
        let turn = try await agent.send("Plan my trip")
        XCTAssertEqual(turn.stopReason, .answered)
        XCTAssertEqual(turn.answer, "Here you are.")
        let results = brain.lastToolResults
        XCTAssertEqual(results.count, 3)
        XCTAssertTrue(results[0].contains("\"flights\""), results[0])
        XCTAssertTrue(results[1].contains("\"hotels\"") && results[1].contains("Tokyo"), results[1])
        XCTAssertTrue(results[2].contains("\"products\""), results[2])
        // Tool messages answer the calls by id, in the calls' order.
        let history = await agent.history
        let ids = history.first { !$0.toolCalls.isEmpty }?.toolCalls.compactMap(\.id) ?? []
        XCTAssertEqual(history.filter { $0.role == "tool" }.compactMap(\.toolCallID), ids)
    }

    func testMalformedCallsAreFedBack() async throws {
        let store = try TravelStore()
        let (agent, brain, _) = makeAgent([
            BrainReply(content: "<tool_call>\n{\"name\": \"search_flights\", \"arguments\": {\"origin\": \n</tool_call>"),
            BrainReply(content: nil, toolCalls: [call("fly_me_to_the_moon", [:])]),
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight": "QK100"]),
                                                 call("add_to_cart", ["product_id": "P0001", "quantity": 0]),
                                                 ToolCall(name: "search_hotels", arguments: .string("{city: Paris"))]),
            BrainReply(content: "Sorry."),
        ], store: store)
        let turn = try await agent.send("Book something")
        XCTAssertEqual(turn.stopReason, .answered)
        XCTAssertEqual(turn.steps, 4)
        let seen = brain.seen
        XCTAssertTrue(seen[1].last?.content?.contains("not valid JSON") == true)
        XCTAssertTrue(seen[2].last?.content?.contains("unknown tool 'fly_me_to_the_moon'") == true)
        let results = seen[3].filter { $0.role == "tool" }.suffix(3).compactMap(\.content)
        XCTAssertTrue(results[0].contains("arguments.flight_id is required"), results[0])
        XCTAssertTrue(results[1].contains("arguments.quantity must be at least 1"), results[1])
        XCTAssertTrue(results[2].contains("not valid JSON"), results[2])
        XCTAssertEqual(try store.query("SELECT * FROM bookings").count, 0)
        XCTAssertEqual(try store.query("SELECT * FROM cart_items").count, 0)
    }

    /// An id the model made up (or copied from a tool's example) is refused before the user is
    /// asked; one a search returned, or the user wrote, in any case, goes to the confirmation.
    func testSideEffectsNeedIdsFromTheConversation() async throws {
        let store = try TravelStore()
        let found = try XCTUnwrap(store.searchFlights(origin: "Paris", destination: "Tokyo", date: nil)["flights"]?
            .arrayValue?.first?["flight_id"]?.stringValue)
        let (agent, brain, recorder) = makeAgent([
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK123"])]),
            BrainReply(content: nil, toolCalls: [call("search_flights", ["origin": "Paris", "destination": "Tokyo"])]),
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": .string(found)])]),
            BrainReply(content: nil, toolCalls: [call("add_to_cart", ["product_id": "p0007", "quantity": 1])]),
            BrainReply(content: "Done."),
        ], store: store)
        _ = try await agent.send("Fly me from Paris to Tokyo, and put P0007 in my cart")
        let seen = brain.seen
        XCTAssertTrue(seen[1].last?.content?.contains("flight_id QK123 appears in no search result") == true,
                      seen[1].last?.content ?? "")
        XCTAssertEqual(recorder.asked.map(\.tool), ["book_flight", "add_to_cart"])
        XCTAssertEqual(recorder.asked.first?.arguments["flight_id"]?.stringValue, found)
        XCTAssertEqual(try store.query("SELECT flight_id FROM bookings").count, 1)
    }

    func testStepLimit() async throws {
        let store = try TravelStore()
        let looping = Array(repeating: BrainReply(content: nil, toolCalls: [call("view_cart", [:])]), count: 10)
        let (agent, brain, recorder) = makeAgent(looping, store: store, maxSteps: 3)
        let turn = try await agent.send("Loop forever")
        XCTAssertEqual(turn.stopReason, .stepLimit)
        XCTAssertEqual(turn.steps, 3)
        XCTAssertEqual(brain.seen.count, 3)
        XCTAssertEqual(recorder.events.last, .stepLimitReached(3))
    }

    func testRefusedConfirmationWritesNothing() async throws {
        let store = try TravelStore()
        let (agent, brain, recorder) = makeAgent([
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK100"])]),
            BrainReply(content: "OK, not booked."),
        ], store: store, answer: false)
        try await agent.send("Book QK100")
        XCTAssertEqual(recorder.asked.count, 1)
        XCTAssertTrue(recorder.asked[0].description.hasPrefix("Book flight QK100 "), recorder.asked[0].description)
        XCTAssertTrue(recorder.asked[0].description.contains("EUR"))
        XCTAssertTrue(brain.lastToolResults.last?.contains("the user declined") == true)
        XCTAssertEqual(try store.query("SELECT * FROM bookings").count, 0)
        XCTAssertEqual(try store.auditEntries().count, 0)
    }

    func testAcceptedConfirmationWritesRowAndAudit() async throws {
        let store = try TravelStore()
        let (agent, _, recorder) = makeAgent([
            BrainReply(content: nil, toolCalls: [call("book_flight", ["flight_id": "QK100"]),
                                                 call("add_to_cart", ["product_id": "P0002", "quantity": 2])]),
            BrainReply(content: "Booked."),
        ], store: store, answer: true)
        try await agent.send("Book QK100 and two P0002")
        XCTAssertEqual(recorder.asked.map(\.tool), ["book_flight", "add_to_cart"])
        let bookings = try store.query("SELECT flight_id, status FROM bookings")
        XCTAssertEqual(bookings, [["flight_id": "QK100", "status": "active"]])
        XCTAssertEqual(try store.query("SELECT quantity FROM cart_items WHERE product_id = 'P0002'"), [["quantity": 2]])
        // Approved calls run concurrently, so the audit order is the order they finished in.
        let audit = try store.auditEntries().sorted { $0.tool > $1.tool }
        XCTAssertEqual(audit.map(\.tool), ["book_flight", "add_to_cart"])
        XCTAssertEqual(audit[0].who, "tester")
        XCTAssertEqual(audit[0].arguments, ["flight_id": "QK100"])
        XCTAssertEqual(audit[0].result["booking_id"], 1)
        XCTAssertTrue(audit.allSatisfy(\.succeeded))
    }

    func testEventsStream() async throws {
        let store = try TravelStore()
        let (agent, _, _) = makeAgent([
            BrainReply(content: nil, toolCalls: [call("list_bookings", [:])]),
            BrainReply(content: "None."),
        ], store: store)
        var kinds: [String] = []
        for try await event in agent.events(for: "My bookings?") {
            switch event {
            case .toolCall: kinds.append("call")
            case .toolResult: kinds.append("result")
            case .answer: kinds.append("answer")
            case .text: kinds.append("text")
            default: kinds.append("other")
            }
        }
        XCTAssertEqual(kinds, ["call", "result", "text", "answer"])
    }

    func testSchemaValidator() {
        let schema: JSONValue = ["type": "object", "properties": [
            "kind": ["type": "string", "enum": ["a", "b"]],
            "n": ["type": "integer", "minimum": 1],
            "list": ["type": "array", "items": ["type": "number"]],
        ], "required": ["kind"]]
        XCTAssertEqual(JSONSchema.violations(of: ["kind": "a", "n": 2, "list": [1, 2.5]], against: schema), [])
        XCTAssertEqual(JSONSchema.violations(of: ["kind": "c"], against: schema), ["arguments.kind must be one of \"a\", \"b\""])
        XCTAssertEqual(JSONSchema.violations(of: ["n": 0], against: schema),
                       ["arguments.kind is required", "arguments.n must be at least 1"])
        XCTAssertEqual(JSONSchema.violations(of: ["kind": "a", "list": [1, "x"]], against: schema),
                       ["arguments.list[1] must be number, not a string"])
        XCTAssertEqual(JSONSchema.violations(of: "text", against: schema), ["arguments must be object, not a string"])
    }

    func testLocalReplyParsing() {
        let unknown = LocalBrain.reply(from: #"{"name": "teleport", "arguments": {"to": "Mars"}}"#, offeredTools: ["book_flight"])
        XCTAssertEqual(unknown.toolCalls.map(\.name), ["teleport"])
        let tagged = LocalBrain.reply(from: "<tool_call>\n{\"name\": \"view_cart\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"list_bookings\", \"arguments\": {}}\n</tool_call>",
                                      offeredTools: ["view_cart", "list_bookings"])
        XCTAssertEqual(tagged.toolCalls.map(\.name), ["view_cart", "list_bookings"])
        XCTAssertEqual(LocalBrain.reply(from: "Hello!", offeredTools: ["view_cart"]).content, "Hello!")
    }

    /// The default model's reply to en-cheapest-flight after its first search: the same four bare
    /// calls over and over until the token limit, the last one cut off.
    func testRepeatedBareCallsStopAtTheFirstRepeat() {
        let call = { (date: Int) in #"{"name": "search_flights", "arguments": {"origin": "Hanoi", "date": "2026-12-\#(date)"}}"# }
        let loop = (0..<4).flatMap { _ in [24, 25, 26, 21].map(call) }.joined(separator: " ") + #" {"name": "search_fl"#
        var guardRail = RepeatedCallGuard(active: true)
        var fed = ""
        for piece in loop.split(separator: " ", omittingEmptySubsequences: false).map({ $0 + " " }) {
            fed += piece
            if !guardRail.feed(String(piece)) { break }
        }
        XCTAssertTrue(guardRail.repeated)
        XCTAssertLessThan(fed.count, loop.count / 2, "generation stops at the first repeat")
        let reply = LocalBrain.reply(from: guardRail.kept, offeredTools: ["search_flights"])
        XCTAssertEqual(reply.toolCalls.map { $0.arguments["date"]?.stringValue }, ["2026-12-24", "2026-12-25", "2026-12-26", "2026-12-21"])

        // Prose, tagged calls and a single call are never cut.
        for text in ["Flight QK608 leaves at 21:30. {\"a\": 1} {\"a\": 1}",
                     "<tool_call>\n\(call(24))\n</tool_call>\n<tool_call>\n\(call(24))\n</tool_call>",
                     call(24)] {
            var g = RepeatedCallGuard(active: true)
            XCTAssertTrue(text.map { g.feed(String($0)) }.allSatisfy { $0 }, text)
            XCTAssertFalse(g.repeated)
        }
        var inactive = RepeatedCallGuard(active: false)
        XCTAssertTrue(inactive.feed(call(24) + " " + call(24)))
    }

    func testEndpointResponseParsing() throws {
        let body = #"{"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "book_flight", "arguments": "{\"flight_id\": \"QK100\"}"}}, {"id": "call_2", "type": "function", "function": {"name": "view_cart", "arguments": "{oops"}}]}}]}"#
        let reply = try EndpointBrain.parseCompletion(Data(body.utf8))
        XCTAssertNil(reply.content)
        XCTAssertEqual(reply.toolCalls[0], ToolCall(id: "call_1", name: "book_flight", arguments: ["flight_id": "QK100"]))
        XCTAssertEqual(reply.toolCalls[1].arguments, .string("{oops"))
        let brain = EndpointBrain(baseURL: URL(fileURLWithPath: "/").deletingLastPathComponent())
        _ = brain
        let v1 = EndpointBrain(baseURL: try XCTUnwrap(URL(string: "http://127.0.0.1:8080/v1")))
        XCTAssertEqual(v1.completionsURL.absoluteString, "http://127.0.0.1:8080/v1/chat/completions")
        let request = v1.requestBody(messages: [.assistant(nil, toolCalls: [ToolCall(id: "c", name: "x", arguments: ["a": 1])])], tools: [])
        XCTAssertEqual(request["messages"]?[0]?["tool_calls"]?[0]?["function"]?["arguments"], .string(#"{"a": 1}"#))
        XCTAssertThrowsError(try EndpointBrain.parseCompletion(Data("{}".utf8)))
    }
}
