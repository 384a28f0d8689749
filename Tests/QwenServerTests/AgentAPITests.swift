import Foundation
import Hummingbird
import HummingbirdTesting
import QwenAgent
import QwenKit
@testable import QwenServer
import XCTest

/// A brain that replays fixed replies, one per step: the loop and the HTTP API are under test, not a model.
final class ScriptedAgentBrain: AgentBrain, @unchecked Sendable {
    private let lock = NSLock()
    private var replies: [BrainReply]

    init(_ replies: [BrainReply]) { self.replies = replies }

    func respond(to messages: [ChatMessage], tools: [JSONValue],
                 onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply {
        let reply = lock.withLock { replies.isEmpty ? BrainReply(content: "done") : replies.removeFirst() }
        if let content = reply.content { onText(content) }
        return reply
    }
}

/// Searches, then books the flight the search found, then answers — deciding from the
/// conversation alone, so sessions sharing it do not take each other's steps.
struct BookingBrain: AgentBrain {
    let flight: String

    func respond(to messages: [ChatMessage], tools: [JSONValue],
                 onText: @escaping @Sendable (String) -> Void) async throws -> BrainReply {
        switch (messages.last?.role, messages.last?.name) {
        case ("user", _):
            return BrainReply(content: nil, toolCalls: [ToolCall(name: "search_flights", arguments: ["origin": "Paris", "destination": "Tokyo"])])
        case ("tool", "search_flights"):
            return BrainReply(content: nil, toolCalls: [ToolCall(name: "book_flight", arguments: ["flight_id": .string(flight)])])
        default:
            onText("All set.")
            return BrainReply(content: "All set.")
        }
    }
}

/// One event of an agent stream: its `event:` name and `data:` JSON.
struct AgentSSEEvent {
    var name: String
    var data: JSONValue
}

/// Reads an agent event stream; fails unless every event is exactly an `event:` line and a `data:`
/// line, or the keep-alive comment (skipped).
func agentEvents(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [AgentSSEEvent] {
    XCTAssertTrue(text.hasSuffix("\n\n"), "an event stream ends with a blank line", file: file, line: line)
    var events: [AgentSSEEvent] = []
    for block in text.components(separatedBy: "\n\n").dropLast() {
        if block == ": keep-alive" { continue }
        let lines = block.components(separatedBy: "\n")
        guard lines.count == 2, lines[0].hasPrefix("event: "), lines[1].hasPrefix("data: "),
              let data = try? JSONValue.parse(String(lines[1].dropFirst("data: ".count))) else {
            XCTFail("not an 'event:' + 'data:' pair: \(block)", file: file, line: line)
            continue
        }
        let name = String(lines[0].dropFirst("event: ".count))
        XCTAssertEqual(data["type"]?.stringValue, name, "data.type repeats the event name", file: file, line: line)
        events.append(AgentSSEEvent(name: name, data: data))
    }
    return events
}

/// The agent API in memory, with a scripted brain over a fresh in-memory demo database. Every
/// test checks the database itself: a booking exists only after an explicit yes for its request.
final class AgentAPITests: XCTestCase {
    static let key = "agent-test-key"
    static var bearer: HTTPFields { [.authorization: "Bearer \(key)"] }

    /// The first Paris→Tokyo flight of the seeded database.
    static func parisTokyoFlight(_ store: TravelStore) throws -> String {
        try XCTUnwrap(store.searchFlights(origin: "Paris", destination: "Tokyo", date: nil)["flights"]?
            .arrayValue?.first?["flight_id"]?.stringValue)
    }

    static func makeService(_ store: TravelStore, flight: String, timeout: Duration = .seconds(60), maxSessions: Int = 8,
                            keepAlive: Duration = .seconds(15)) -> AgentService {
        var configuration = AgentServiceConfiguration(brain: BookingBrain(flight: flight), store: store, tools: DemoTools.all(store))
        configuration.confirmationTimeout = timeout
        configuration.keepAliveInterval = keepAlive
        configuration.maxSessions = maxSessions
        return AgentService(configuration)
    }

    /// Runs `body` against the whole router (OpenAI routes and agent routes) in memory, behind an
    /// API key. A watchdog closes every session after 60 s so that a broken timeout fails the test
    /// instead of hanging it.
    func withAgentRouter(_ service: AgentService,
                         _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let engine = try makeEngine()
        var configuration = ServerConfiguration()
        configuration.apiKey = Self.key
        let app = Application(router: buildRouter(engine: engine, configuration: configuration, agent: service))
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            service.closeAll()
        }
        defer { watchdog.cancel() }
        try await app.test(.router) { client in try await body(client) }
    }

    static func createSession(_ client: any TestClientProtocol) async throws -> String {
        let reply = try await client.post("/v1/agent/sessions", "{}", headers: Self.bearer)
        XCTAssertEqual(reply.status, .ok, reply.text)
        XCTAssertEqual(reply.json?["object"], "agent.session")
        return try XCTUnwrap(reply.json?["id"]?.stringValue)
    }

    static func sendMessage(_ client: any TestClientProtocol, _ session: String, _ content: String) async throws -> Reply {
        try await client.post("/v1/agent/sessions/\(session)/messages", json: .object([("content", .string(content))]),
                              headers: Self.bearer)
    }

    /// Polls the session until it has an open confirmation; returns it.
    static func waitForConfirmation(_ client: any TestClientProtocol, _ session: String) async throws -> JSONValue {
        for _ in 0..<1000 {
            let reply = try await client.send(.get, "/v1/agent/sessions/\(session)", headers: Self.bearer)
            XCTAssertEqual(reply.status, .ok, reply.text)
            if let pending = reply.json?["pending_confirmations"]?.arrayValue?.first { return pending }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ServerTestError.unexpected("no confirmation was asked")
    }

    static func confirm(_ client: any TestClientProtocol, _ session: String, _ requestID: String, _ approve: JSONValue) async throws -> Reply {
        try await client.post("/v1/agent/sessions/\(session)/confirmations/\(requestID)", json: .object([("approve", approve)]),
                              headers: Self.bearer)
    }

    static func bookings(_ store: TravelStore) throws -> [JSONValue] { try store.query("SELECT * FROM bookings") }
    static func auditRows(_ store: TravelStore) throws -> [JSONValue] { try store.query("SELECT * FROM audit_log") }

    // MARK: - Yes, no, never answered

    func testConfirmationAnsweredYesBooksAndAudits() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight)
        try await withAgentRouter(service) { client in
            let session = try await Self.createSession(client)
            async let streamed = Self.sendMessage(client, session, "Book me a flight from Paris to Tokyo")
            let pending = try await Self.waitForConfirmation(client, session)
            let requestID = try XCTUnwrap(pending["request_id"]?.stringValue)
            XCTAssertEqual(pending["tool"], "book_flight")
            XCTAssertEqual(pending["arguments"]?["flight_id"]?.stringValue, flight)
            XCTAssertTrue(pending["description"]?.stringValue?.contains(flight) == true, "\(pending)")
            XCTAssertEqual(try Self.bookings(store).count, 0, "nothing runs before the yes")

            let answer = try await Self.confirm(client, session, requestID, true)
            XCTAssertEqual(answer.status, .ok, answer.text)
            XCTAssertEqual(answer.json?["approved"], true)

            let reply = try await streamed
            XCTAssertEqual(reply.status, .ok, reply.text)
            XCTAssertEqual(reply.headers[.contentType], "text/event-stream")
            let events = agentEvents(reply.text)
            XCTAssertEqual(events.map(\.name), ["tool_call", "tool_result", "tool_call", "confirmation", "confirmation_result",
                                                "tool_result", "text", "answer", "done"])
            let asked = try XCTUnwrap(events.first { $0.name == "confirmation" }?.data)
            XCTAssertEqual(asked["request_id"]?.stringValue, requestID)
            XCTAssertEqual(asked["description"], pending["description"])
            XCTAssertEqual(asked["timeout_seconds"]?.doubleValue, 60)
            let result = try XCTUnwrap(events.first { $0.name == "confirmation_result" }?.data)
            XCTAssertEqual(result["request_id"]?.stringValue, requestID)
            XCTAssertEqual(result["approved"], true)
            XCTAssertEqual(result["resolution"], "approved")
            XCTAssertEqual(events[5].data["name"], "book_flight")
            XCTAssertEqual(events[5].data["is_error"], false)
            XCTAssertEqual(events[7].data["content"], "All set.")
            XCTAssertEqual(events.last?.data["stop_reason"], "answered")

            // The booking is in the database, and in the audit log under this session's name.
            let rows = try Self.bookings(store)
            XCTAssertEqual(rows.count, 1)
            XCTAssertEqual(rows.first?["flight_id"]?.stringValue, flight)
            let audit = try Self.auditRows(store)
            XCTAssertEqual(audit.count, 1)
            XCTAssertEqual(audit.first?["tool"], "book_flight")
            XCTAssertEqual(audit.first?["who"]?.stringValue, "http \(session)")

            // The read-only views show the same.
            let auditView = try await client.send(.get, "/v1/agent/audit", headers: Self.bearer)
            XCTAssertEqual(auditView.status, .ok, auditView.text)
            let entries = try XCTUnwrap(auditView.json?["data"]?.arrayValue)
            XCTAssertEqual(entries.count, 1)
            XCTAssertEqual(entries.first?["arguments"]?["flight_id"]?.stringValue, flight)
            XCTAssertEqual(entries.first?["succeeded"], true)
            let storeView = try await client.send(.get, "/v1/agent/store", headers: Self.bearer)
            XCTAssertEqual(storeView.status, .ok, storeView.text)
            XCTAssertEqual(storeView.json?["bookings"]?.arrayValue?.first?["flight_id"]?.stringValue, flight)
            XCTAssertEqual(storeView.json?["cart"]?["items"], .array([]))
            XCTAssertEqual(storeView.json?["orders"], .array([]))

            // A second answer to the same request is refused, and runs nothing.
            let again = try await Self.confirm(client, session, requestID, true)
            XCTAssertEqual(assertErrorEnvelope(again, status: .conflict)?["code"], "confirmation_resolved")
            XCTAssertEqual(try Self.bookings(store).count, 1)

            // The history keeps the whole turn.
            let history = try await client.send(.get, "/v1/agent/sessions/\(session)", headers: Self.bearer)
            let messages = try XCTUnwrap(history.json?["messages"]?.arrayValue)
            XCTAssertEqual(messages.first?["role"], "user")
            XCTAssertEqual(messages.last?["content"], "All set.")
            XCTAssertEqual(history.json?["pending_confirmations"], .array([]))
            XCTAssertEqual(history.json?["busy"], false)
        }
    }

    func testConfirmationAnsweredNoWritesNothing() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight)
        try await withAgentRouter(service) { client in
            let session = try await Self.createSession(client)
            async let streamed = Self.sendMessage(client, session, "Book me a flight from Paris to Tokyo")
            let waiting = try await Self.waitForConfirmation(client, session)
            let requestID = try XCTUnwrap(waiting["request_id"]?.stringValue)
            let answer = try await Self.confirm(client, session, requestID, false)
            XCTAssertEqual(answer.status, .ok, answer.text)
            XCTAssertEqual(answer.json?["approved"], false)

            let streamedText = try await streamed.text
            let events = agentEvents(streamedText)
            let result = try XCTUnwrap(events.first { $0.name == "confirmation_result" }?.data)
            XCTAssertEqual(result["request_id"]?.stringValue, requestID)
            XCTAssertEqual(result["approved"], false)
            XCTAssertEqual(result["resolution"], "declined")
            let declined = try XCTUnwrap(events.last { $0.name == "tool_result" }?.data)
            XCTAssertEqual(declined["is_error"], true)
            XCTAssertTrue(declined["result"]?["error"]?.stringValue?.contains("declined") == true, "\(declined)")
            XCTAssertEqual(events.last?.name, "done")
            XCTAssertEqual(try Self.bookings(store).count, 0)
            XCTAssertEqual(try Self.auditRows(store).count, 0)

            // Changing one's mind afterwards changes nothing.
            let late = try await Self.confirm(client, session, requestID, true)
            XCTAssertEqual(assertErrorEnvelope(late, status: .conflict)?["code"], "confirmation_resolved")
            XCTAssertEqual(try Self.bookings(store).count, 0)
        }
    }

    func testUnansweredConfirmationTimesOutToNo() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        // Keep-alive comments every 50 ms fill the wait; they are not answers.
        let service = Self.makeService(store, flight: flight, timeout: .milliseconds(600), keepAlive: .milliseconds(50))
        try await withAgentRouter(service) { client in
            let session = try await Self.createSession(client)
            let reply = try await Self.sendMessage(client, session, "Book me a flight from Paris to Tokyo")
            XCTAssertTrue(reply.text.contains("\n\n: keep-alive\n\n"), reply.text)
            let events = agentEvents(reply.text)
            let asked = try XCTUnwrap(events.first { $0.name == "confirmation" }?.data)
            XCTAssertEqual(asked["timeout_seconds"]?.doubleValue, 0.6)
            let result = try XCTUnwrap(events.first { $0.name == "confirmation_result" }?.data)
            XCTAssertEqual(result["request_id"], asked["request_id"])
            XCTAssertEqual(result["approved"], false)
            XCTAssertEqual(result["resolution"], "timeout")
            XCTAssertEqual(events.last { $0.name == "tool_result" }?.data["is_error"], true)
            XCTAssertEqual(events.last?.data["stop_reason"], "answered")
            XCTAssertEqual(try Self.bookings(store).count, 0)
            XCTAssertEqual(try Self.auditRows(store).count, 0)

            // A yes that comes after the timeout is refused and runs nothing.
            let requestID = try XCTUnwrap(asked["request_id"]?.stringValue)
            let late = try await Self.confirm(client, session, requestID, true)
            let error = assertErrorEnvelope(late, status: .conflict)
            XCTAssertEqual(error?["code"], "confirmation_resolved")
            XCTAssertTrue(error?["message"]?.stringValue?.contains("timed out") == true, late.text)
            XCTAssertEqual(try Self.bookings(store).count, 0)
        }
    }

    // MARK: - Wrong answers run nothing

    /// Unknown ids, another session's id, and answers that are not a JSON boolean are refused
    /// while the real request stays open; a second message while it waits is refused too.
    func testWrongAnswersAreRefusedAndRunNothing() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight)
        try await withAgentRouter(service) { client in
            let session = try await Self.createSession(client)
            let other = try await Self.createSession(client)
            async let streamed = Self.sendMessage(client, session, "Book me a flight from Paris to Tokyo")
            let waiting = try await Self.waitForConfirmation(client, session)
            let requestID = try XCTUnwrap(waiting["request_id"]?.stringValue)

            let unknown = try await Self.confirm(client, session, "confirm_made_up", true)
            XCTAssertEqual(assertErrorEnvelope(unknown, status: .notFound, param: "request_id")?["code"], "confirmation_not_found")
            let elsewhere = try await Self.confirm(client, other, requestID, true)
            XCTAssertEqual(assertErrorEnvelope(elsewhere, status: .notFound)?["code"], "confirmation_not_found")
            let noSession = try await Self.confirm(client, "sess_nope", requestID, true)
            XCTAssertEqual(assertErrorEnvelope(noSession, status: .notFound)?["code"], "session_not_found")
            for bad: JSONValue in ["yes", 1, .null, "true"] {
                let reply = try await Self.confirm(client, session, requestID, bad)
                assertErrorEnvelope(reply, status: .badRequest, param: "approve")
            }
            let missing = try await client.post("/v1/agent/sessions/\(session)/confirmations/\(requestID)", "{}", headers: Self.bearer)
            assertErrorEnvelope(missing, status: .badRequest, param: "approve")
            let garbage = try await client.post("/v1/agent/sessions/\(session)/confirmations/\(requestID)", "{approve: true",
                                                headers: Self.bearer)
            assertErrorEnvelope(garbage, status: .badRequest)

            let busy = try await Self.sendMessage(client, session, "And another one")
            XCTAssertEqual(assertErrorEnvelope(busy, status: .conflict)?["code"], "session_busy")
            XCTAssertEqual(try Self.bookings(store).count, 0)

            // The real request is still open, and its no ends the turn.
            let stillPending = try await Self.waitForConfirmation(client, session)
            XCTAssertEqual(stillPending["request_id"]?.stringValue, requestID)
            let no = try await Self.confirm(client, session, requestID, false)
            XCTAssertEqual(no.status, .ok)
            let text = try await streamed.text
            XCTAssertEqual(agentEvents(text).last?.name, "done")
            XCTAssertEqual(try Self.bookings(store).count, 0)
            XCTAssertEqual(try Self.auditRows(store).count, 0)
        }
    }

    /// Deleting a session while it waits answers no; the session is gone afterwards.
    func testDeletingAWaitingSessionAnswersNo() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight)
        try await withAgentRouter(service) { client in
            let session = try await Self.createSession(client)
            async let streamed = Self.sendMessage(client, session, "Book me a flight from Paris to Tokyo")
            let waiting = try await Self.waitForConfirmation(client, session)
            let requestID = try XCTUnwrap(waiting["request_id"]?.stringValue)
            let deleted = try await client.send(.delete, "/v1/agent/sessions/\(session)", headers: Self.bearer)
            XCTAssertEqual(deleted.status, .ok, deleted.text)
            XCTAssertEqual(deleted.json?["deleted"], true)
            _ = try await streamed
            XCTAssertEqual(try Self.bookings(store).count, 0)
            let late = try await Self.confirm(client, session, requestID, true)
            XCTAssertEqual(assertErrorEnvelope(late, status: .notFound)?["code"], "session_not_found")
            let gone = try await client.send(.get, "/v1/agent/sessions/\(session)", headers: Self.bearer)
            assertErrorEnvelope(gone, status: .notFound)
            XCTAssertEqual(try Self.bookings(store).count, 0)
        }
    }

    /// A client that stops listening (the SSE connection closes) has answered no, at once and for
    /// every later confirmation of that turn.
    func testClientGoneCountsAsNo() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight)
        let session = try service.createSession()
        let (turn, events) = try session.send("Book me a flight from Paris to Tokyo")
        var requestID: String?
        for await event in events where event.name == "confirmation" {
            requestID = event.data["request_id"]?.stringValue
            session.cancelTurn(turn)  // what the route does when the connection closes
        }
        XCTAssertNotNil(requestID)
        // The turn's task goes on to its end (the scripted brain ignores cancellation), without a listener.
        for _ in 0..<500 where !session.isIdle { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertTrue(session.isIdle)
        XCTAssertThrowsError(try session.answer(requestID ?? "", approve: true))
        XCTAssertEqual(try Self.bookings(store).count, 0)
        XCTAssertEqual(try Self.auditRows(store).count, 0)
    }

    /// The same over a real socket: the client closes its connection while the turn waits for a
    /// yes; the connection monitor answers no, and a yes sent afterwards is refused.
    func testClosedConnectionCountsAsNo() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.apiKey = Self.key
        let app = buildApplication(engine: try makeEngine(), configuration: configuration, agent: service)
        try await app.test(.live) { client in
            guard let port = client.port else { throw ServerTestError.unexpected("no port") }
            let session = try await Self.createSession(client)
            let body = #"{"content": "Book me a flight from Paris to Tokyo"}"#
            let connection = try RawConnection(port: port)
            try connection.send("POST /v1/agent/sessions/\(session)/messages HTTP/1.1\r\nHost: localhost\r\n"
                                + "Authorization: Bearer \(Self.key)\r\nContent-Type: application/json\r\n"
                                + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
            let waiting = try await Self.waitForConfirmation(client, session)
            let requestID = try XCTUnwrap(waiting["request_id"]?.stringValue)
            connection.close()
            var busy = true
            for _ in 0..<500 where busy {
                let state = try await client.send(.get, "/v1/agent/sessions/\(session)", headers: Self.bearer)
                busy = state.json?["busy"]?.boolValue ?? true
                if busy { try await Task.sleep(for: .milliseconds(10)) }
            }
            XCTAssertFalse(busy, "the turn ended without its listener")
            let late = try await Self.confirm(client, session, requestID, true)
            let error = assertErrorEnvelope(late, status: .conflict)
            XCTAssertTrue(error?["message"]?.stringValue?.contains("stopped listening") == true, late.text)
            XCTAssertEqual(try Self.bookings(store).count, 0)
            XCTAssertEqual(try Self.auditRows(store).count, 0)
        }
    }

    // MARK: - The API key

    /// Every agent route refuses a request without the key (or with a wrong one) with 401, even a
    /// yes to a confirmation that is really waiting; nothing is written.
    func testEveryAgentRouteNeedsTheAPIKey() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight)
        try await withAgentRouter(service) { client in
            let session = try await Self.createSession(client)
            async let streamed = Self.sendMessage(client, session, "Book me a flight from Paris to Tokyo")
            let waiting = try await Self.waitForConfirmation(client, session)
            let requestID = try XCTUnwrap(waiting["request_id"]?.stringValue)
            let routes: [(HTTPRequest.Method, String, String?)] = [
                (.post, "/v1/agent/sessions", "{}"),
                (.get, "/v1/agent/sessions/\(session)", nil),
                (.delete, "/v1/agent/sessions/\(session)", nil),
                (.post, "/v1/agent/sessions/\(session)/messages", #"{"content": "hello"}"#),
                (.post, "/v1/agent/sessions/\(session)/confirmations/\(requestID)", #"{"approve": true}"#),
                (.get, "/v1/agent/audit", nil),
                (.get, "/v1/agent/store", nil),
            ]
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: Self.key]] {
                for (method, path, body) in routes {
                    let reply = try await client.send(method, path, body: body, headers: headers)
                    let error = assertErrorEnvelope(reply, status: .unauthorized)
                    XCTAssertEqual(error?["code"], "invalid_api_key", "\(method) \(path)")
                }
            }
            XCTAssertEqual(try Self.bookings(store).count, 0)
            // The session and its request are untouched: still waiting, and answered with the key.
            let stillPending = try await Self.waitForConfirmation(client, session)
            XCTAssertEqual(stillPending["request_id"]?.stringValue, requestID)
            let no = try await Self.confirm(client, session, requestID, false)
            XCTAssertEqual(no.status, .ok)
            let text = try await streamed.text
            XCTAssertEqual(agentEvents(text).last?.name, "done")
            XCTAssertEqual(try Self.bookings(store).count, 0)
        }
    }

    // MARK: - Limits

    func testSessionLimitEvictsTheIdleAndRefusesWhenAllAreBusy() async throws {
        let store = try TravelStore()
        let flight = try Self.parisTokyoFlight(store)
        let service = Self.makeService(store, flight: flight, maxSessions: 2)
        try await withAgentRouter(service) { client in
            let first = try await Self.createSession(client)
            let second = try await Self.createSession(client)
            let third = try await Self.createSession(client)
            // The longest idle (the first) made room.
            assertErrorEnvelope(try await client.send(.get, "/v1/agent/sessions/\(first)", headers: Self.bearer), status: .notFound)
            async let a = Self.sendMessage(client, second, "Book me a flight from Paris to Tokyo")
            async let b = Self.sendMessage(client, third, "Book me a flight from Paris to Tokyo")
            let waitingA = try await Self.waitForConfirmation(client, second)
            let askedA = try XCTUnwrap(waitingA["request_id"]?.stringValue)
            let waitingB = try await Self.waitForConfirmation(client, third)
            let askedB = try XCTUnwrap(waitingB["request_id"]?.stringValue)
            let refused = try await client.post("/v1/agent/sessions", "{}", headers: Self.bearer)
            XCTAssertEqual(assertErrorEnvelope(refused, status: .tooManyRequests)?["code"], "too_many_sessions")
            _ = try await Self.confirm(client, second, askedA, false)
            _ = try await Self.confirm(client, third, askedB, false)
            _ = try await (a, b)
            XCTAssertEqual(try Self.bookings(store).count, 0)
        }
    }

    func testMessageChecks() async throws {
        let store = try TravelStore()
        var configuration = AgentServiceConfiguration(brain: ScriptedAgentBrain([]), store: store, tools: DemoTools.all(store))
        configuration.maxMessageBytes = 1024
        let service = AgentService(configuration)
        try await withAgentRouter(service) { client in
            let session = try await Self.createSession(client)
            let path = "/v1/agent/sessions/\(session)/messages"
            assertErrorEnvelope(try await client.post(path, #"{"content": ""}"#, headers: Self.bearer), status: .badRequest, param: "content")
            assertErrorEnvelope(try await client.post(path, #"{"content": 42}"#, headers: Self.bearer), status: .badRequest, param: "content")
            assertErrorEnvelope(try await client.post(path, #"["hello"]"#, headers: Self.bearer), status: .badRequest)
            let large = try await Self.sendMessage(client, session, String(repeating: "a", count: 2000))
            XCTAssertEqual(assertErrorEnvelope(large, status: .contentTooLarge)?["code"], "request_too_large")
            let unknown = try await Self.sendMessage(client, "sess_nope", "hello")
            XCTAssertEqual(assertErrorEnvelope(unknown, status: .notFound)?["code"], "session_not_found")
            let limit = try await client.send(.get, "/v1/agent/audit?limit=0", headers: Self.bearer)
            assertErrorEnvelope(limit, status: .badRequest, param: "limit")
            // A plain answer: text, answer, done.
            let reply = try await Self.sendMessage(client, session, "hello")
            XCTAssertEqual(agentEvents(reply.text).map(\.name), ["text", "answer", "done"])
        }
    }

    // MARK: - The server's own model as the brain

    /// EngineBrain on the tiny random model: the weights are random, so only the stream's shape is
    /// checked — it ends with `done`, after an answer or an error (never a hang or a crash).
    func testEngineBrainStreamEnds() async throws {
        let engine = try makeEngine(context: 4096)
        let store = try TravelStore()
        var options = GenerationOptions()
        options.sampling.temperature = 0
        options.maxTokens = 8
        var configuration = AgentServiceConfiguration(brain: EngineBrain(engine: engine, options: options), store: store,
                                                      tools: DemoTools.all(store))
        configuration.maxSteps = 2
        let service = AgentService(configuration)
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.apiKey = Self.key
        let app = Application(router: buildRouter(engine: engine, configuration: serverConfiguration, agent: service))
        try await app.test(.router) { client in
            let session = try await Self.createSession(client)
            let reply = try await Self.sendMessage(client, session, "hello")
            let events = agentEvents(reply.text)
            XCTAssertEqual(events.last?.name, "done", reply.text)
            XCTAssertTrue(events.contains { ["answer", "error", "step_limit", "tool_result"].contains($0.name) }, reply.text)
        }
        XCTAssertEqual(try Self.bookings(store).count, 0)
    }
}
