import Foundation
import Hummingbird
import NIOCore
import QwenAgent
import QwenKit

/// The agent over HTTP, under `/v1/agent` (behind the API key like every `/v1` route):
///
///     POST   /v1/agent/sessions                                   → {"id", "object": "agent.session", ...}
///     GET    /v1/agent/sessions/{id}                              → the conversation and open confirmations
///     DELETE /v1/agent/sessions/{id}                              → closes it; open confirmations count as no
///     POST   /v1/agent/sessions/{id}/messages    {"content"}      → text/event-stream of the turn
///     POST   /v1/agent/sessions/{id}/confirmations/{request_id}  {"approve": true|false}
///     GET    /v1/agent/audit?limit=N                              → the audit log, oldest first
///     GET    /v1/agent/store                                      → bookings, cart and orders of the demo database
///
/// A message's stream carries `text`, `tool_call`, `confirmation` (a side effect waiting for a yes,
/// with its `request_id` and the call in plain words), `confirmation_result`, `tool_result`,
/// `answer`, `step_limit`, `error`, and always ends with `done`. A side effect runs only when the
/// client posts `{"approve": true}` for its `request_id` while the turn waits; no answer within the
/// timeout, a closed stream, or a deleted session count as no.
struct AgentRoutes: Sendable {
    let service: AgentService

    func register(on v1: RouterGroup<ServerRequestContext>) {
        v1.post("agent/sessions") { request, _ in try await createSession(request) }
        v1.get("agent/sessions/{session_id}") { _, context in try await session(context.parameters.get("session_id") ?? "") }
        v1.delete("agent/sessions/{session_id}") { _, context in try deleteSession(context.parameters.get("session_id") ?? "") }
        v1.post("agent/sessions/{session_id}/messages") { request, context in
            try await message(request, sessionID: context.parameters.get("session_id") ?? "", connection: context.connection)
        }
        v1.post("agent/sessions/{session_id}/confirmations/{request_id}") { request, context in
            try await confirmation(request, sessionID: context.parameters.get("session_id") ?? "",
                                   requestID: context.parameters.get("request_id") ?? "")
        }
        v1.get("agent/audit") { request, _ in try audit(request) }
        v1.get("agent/store") { _, _ in try store() }
    }

    // MARK: - Sessions

    func createSession(_ request: Request) async throws -> Response {
        // No options yet; a body, when sent, must still be a JSON object.
        _ = try await readObject(request, required: false)
        let session = try service.createSession()
        return jsonResponse(try await sessionJSON(session))
    }

    func session(_ id: String) async throws -> Response {
        jsonResponse(try await sessionJSON(service.session(id)))
    }

    func deleteSession(_ id: String) throws -> Response {
        try service.deleteSession(id)
        return jsonResponse(.object([("id", .string(id)), ("object", "agent.session.deleted"), ("deleted", true)]))
    }

    private func sessionJSON(_ session: AgentSession) async throws -> JSONValue {
        let history = await session.agent.history
        return .object([
            ("id", .string(session.id)), ("object", "agent.session"), ("created", .int(Int(session.created.timeIntervalSince1970))),
            ("busy", .bool(!session.isIdle)),
            ("messages", .array(history.map(\.json))),
            ("pending_confirmations", .array(session.pendingConfirmations.map { pending in
                .object([("request_id", .string(pending.id)), ("tool", .string(pending.request.tool)),
                         ("arguments", pending.request.arguments), ("description", .string(pending.request.description))])
            })),
            ("confirmation_timeout_seconds", .double(seconds(service.configuration.confirmationTimeout))),
        ])
    }

    // MARK: - Messages

    func message(_ request: Request, sessionID: String, connection: ConnectionMonitor?) async throws -> Response {
        let session = try service.session(sessionID)
        let body = try await readObject(request, required: true)
        guard case .string(let content)? = body["content"] else {
            throw APIError.invalid("content", "'content' must be a string: the user's message.")
        }
        guard !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIError.invalid("content", "'content' must not be empty.")
        }
        let (turn, events) = try session.send(content)
        // A client that goes away while the turn waits for its yes has answered no.
        let gone = CancellationFlag()
        gone.onCancel { session.cancelTurn(turn) }
        connection?.watch(gone)
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: .init { writer in
                            defer { connection?.unwatch(gone) }
                            do {
                                for await event in events {
                                    try await writer.write(ByteBuffer(string: event.serverSentEvent))
                                }
                                try await writer.finish(nil)
                            } catch {
                                gone.cancel()
                                throw error
                            }
                            if Task.isCancelled { gone.cancel() }
                        })
    }

    // MARK: - Confirmations

    func confirmation(_ request: Request, sessionID: String, requestID: String) async throws -> Response {
        let session = try service.session(sessionID)
        let body = try await readObject(request, required: true)
        // Only a JSON boolean counts: "yes", 1 or a missing member are refused, never read as yes.
        guard case .bool(let approve)? = body["approve"] else {
            throw APIError.invalid("approve", "'approve' must be true or false.")
        }
        try session.answer(requestID, approve: approve)
        return jsonResponse(.object([("request_id", .string(requestID)), ("object", "agent.confirmation"),
                                     ("approved", .bool(approve))]))
    }

    // MARK: - The demo database

    func audit(_ request: Request) throws -> Response {
        var limit = 100
        if let text = request.uri.queryParameters.get("limit") {
            guard let value = Int(text), (1...10_000).contains(value) else {
                throw APIError.invalid("limit", "'limit' must be an integer from 1 to 10000.")
            }
            limit = value
        }
        // The last `limit` rows, oldest first; `limit` is a checked integer, so it can be part of the SQL.
        let rows = try service.configuration.store.query(
            "SELECT * FROM (SELECT * FROM audit_log ORDER BY id DESC LIMIT \(limit)) ORDER BY id")
        return jsonResponse(.object([("object", "list"), ("data", .array(rows.map { row in
            .object([
                ("id", row["id"] ?? .null), ("who", row["who"] ?? .null), ("tool", row["tool"] ?? .null),
                ("description", row["description"] ?? .null),
                ("arguments", Self.storedJSON(row["arguments"])), ("result", Self.storedJSON(row["result"])),
                ("succeeded", .bool(row["succeeded"]?.intValue == 1)), ("at", row["at"] ?? .null),
            ])
        }))]))
    }

    func store() throws -> Response {
        let store = service.configuration.store
        let orders = try store.query("SELECT id, total_eur, created_at FROM orders ORDER BY id DESC")
        let items = try store.query("""
            SELECT i.order_id, i.product_id, p.name, i.quantity, i.price_eur
            FROM order_items i JOIN products p ON p.id = i.product_id ORDER BY i.order_id, i.product_id
            """)
        let ordersJSON: [JSONValue] = orders.map { order in
            let id = order["id"]?.intValue
            return .object([
                ("order_id", order["id"] ?? .null), ("total_eur", order["total_eur"] ?? .null), ("created_at", order["created_at"] ?? .null),
                ("items", .array(items.filter { $0["order_id"]?.intValue == id }.map { item in
                    .object([("product_id", item["product_id"] ?? .null), ("name", item["name"] ?? .null),
                             ("quantity", item["quantity"] ?? .null), ("price_eur", item["price_eur"] ?? .null)])
                })),
            ])
        }
        let bookings = try store.listBookings()["bookings"] ?? .array([])
        let cart = try store.viewCart()
        return jsonResponse(.object([("bookings", bookings), ("cart", cart), ("orders", .array(ordersJSON))]))
    }

    // MARK: - Pieces

    /// Reads a JSON object body of at most ``AgentServiceConfiguration/maxMessageBytes``; an empty
    /// body is `{}` unless `required`.
    private func readObject(_ request: Request, required: Bool) async throws -> JSONValue {
        var request = request
        let limit = service.configuration.maxMessageBytes
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "The request body is larger than \(limit) bytes.", code: "request_too_large")
        }
        if buffer.readableBytes == 0 && !required { return .object([]) }
        let value: JSONValue
        do {
            value = try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw APIError(.badRequest, "The body is not valid JSON: \(error)", code: "invalid_json")
        }
        guard case .object = value else { throw APIError(.badRequest, "The body must be a JSON object.", code: "invalid_json") }
        return value
    }

    /// A column holding JSON text, as JSON (the text itself when it does not parse).
    private static func storedJSON(_ value: JSONValue?) -> JSONValue {
        guard let text = value?.stringValue else { return value ?? .null }
        return (try? JSONValue.parse(text)) ?? .string(text)
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
