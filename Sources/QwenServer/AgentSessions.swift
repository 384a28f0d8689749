import Foundation
import QwenAgent
import QwenKit
import Synchronization

/// How the agent API (`/v1/agent/...`) behaves.
public struct AgentServiceConfiguration: Sendable {
    /// The model behind every session. One brain serves them all, so it must take concurrent calls
    /// (``EngineBrain`` queues them on the server's slots).
    public var brain: any AgentBrain
    /// The demo database: the tools' store, the audit log, and what `GET /v1/agent/store` shows.
    public var store: TravelStore
    /// The tools offered to the model; side-effecting ones ask the session's client first.
    public var tools: [any AgentTool]
    /// The system prompt; nil for the template's own.
    public var systemPrompt: String?
    /// Model steps allowed per message.
    public var maxSteps = 8
    /// How long a confirmation waits for the client's answer before it counts as no. Never yes.
    public var confirmationTimeout: Duration = .seconds(120)
    /// Sessions kept at most. A new one evicts the longest-idle session; when every session is
    /// busy (a message in flight) it is refused with 429.
    public var maxSessions = 64
    /// How often a message's stream sends an SSE comment while nothing else is happening (a
    /// confirmation may wait minutes), so that proxies do not cut it as idle: nginx's default
    /// `proxy_read_timeout` is 60 s.
    public var keepAliveInterval: Duration = .seconds(15)
    /// Largest body of a message or confirmation request, in bytes.
    public var maxMessageBytes = 64 << 10
    /// Written as "who" in the audit log, followed by the session's id.
    public var principal = "http"

    public init(brain: any AgentBrain, store: TravelStore, tools: [any AgentTool], systemPrompt: String? = Agent.defaultSystemPrompt) {
        self.brain = brain
        self.store = store
        self.tools = tools
        self.systemPrompt = systemPrompt
    }
}

/// The agent sessions of one server: each one an ``Agent`` with its conversation, at most one
/// message in flight, and the confirmations it is waiting for.
public final class AgentService: Sendable {
    public let configuration: AgentServiceConfiguration
    private let sessions = Mutex<[String: AgentSession]>([:])

    public init(_ configuration: AgentServiceConfiguration) {
        self.configuration = configuration
    }

    /// Opens a session, evicting the longest-idle one when ``AgentServiceConfiguration/maxSessions`` are open.
    /// - Throws: 429 when every open session is busy.
    func createSession() throws -> AgentSession {
        let session = AgentSession(id: "sess_" + randomID(), configuration: configuration)
        let evicted = try sessions.withLock { open -> AgentSession? in
            var evicted: AgentSession?
            if open.count >= max(configuration.maxSessions, 1) {
                guard let oldest = open.values.filter(\.isIdle).min(by: { $0.lastActive < $1.lastActive }) else {
                    throw APIError(.tooManyRequests,
                                   "All \(configuration.maxSessions) agent sessions are busy; try again when a message has finished.",
                                   type: "rate_limit_error", code: "too_many_sessions")
                }
                open[oldest.id] = nil
                evicted = oldest
            }
            open[session.id] = session
            return evicted
        }
        evicted?.close()
        return session
    }

    /// - Throws: 404 when no session has this id (never opened, deleted, or evicted).
    func session(_ id: String) throws -> AgentSession {
        guard let session = sessions.withLock({ $0[id] }) else { throw Self.unknownSession(id) }
        return session
    }

    /// Closes a session: its message in flight stops and its open confirmations count as no.
    func deleteSession(_ id: String) throws {
        guard let session = sessions.withLock({ $0.removeValue(forKey: id) }) else { throw Self.unknownSession(id) }
        session.close()
    }

    /// Closes every session (server shutdown, tests).
    public func closeAll() {
        for session in sessions.withLock({ open in defer { open.removeAll() }; return Array(open.values) }) { session.close() }
    }

    static func unknownSession(_ id: String) -> APIError {
        APIError(.notFound, "No agent session '\(TerminalText.escaped(String(id.prefix(64))))': create one with POST /v1/agent/sessions.",
                 param: "session_id", code: "session_not_found")
    }
}

/// One event of a message's stream: `event: <name>` and its JSON `data`, or a keep-alive comment.
struct AgentStreamEvent: Sendable {
    var name: String
    var data: JSONValue

    init(_ name: String, _ members: [(String, JSONValue)]) {
        self.name = name
        data = .object([("type", .string(name))] + members)
    }

    private init(comment: String) {
        name = ""
        data = .string(comment)
    }

    /// An SSE comment line, which clients ignore and proxies see as traffic.
    static let keepAlive = AgentStreamEvent(comment: "keep-alive")

    /// The server-sent event: one `event:` line, one `data:` line (JSON has no raw newlines), a
    /// blank line; or `: keep-alive` and a blank line.
    var serverSentEvent: String {
        name.isEmpty ? ": \(data.stringValue ?? "")\n\n" : "event: \(name)\ndata: \(data.pythonJSON)\n\n"
    }
}

/// One conversation with the agent, and the desk where its confirmations wait for the client.
final class AgentSession: Sendable {
    let id: String
    let created = Date()
    let agent: Agent
    private let desk: ConfirmationDesk
    private let keepAliveInterval: Duration

    init(id: String, configuration: AgentServiceConfiguration) {
        self.id = id
        keepAliveInterval = configuration.keepAliveInterval
        let desk = ConfirmationDesk(timeout: configuration.confirmationTimeout)
        self.desk = desk
        agent = Agent(.init(brain: configuration.brain, tools: configuration.tools, systemPrompt: configuration.systemPrompt,
                            maxSteps: configuration.maxSteps,
                            confirm: { request in await desk.confirm(request) },
                            auditLog: configuration.store, principal: "\(configuration.principal) \(id)",
                            onEvent: { event in desk.forward(event) }))
    }

    var isIdle: Bool { desk.isIdle }
    var lastActive: ContinuousClock.Instant { desk.lastActive }
    var pendingConfirmations: [(id: String, request: ConfirmationRequest)] { desk.pendingRequests }

    /// Starts a turn and returns its number and events; the stream ends after `done`.
    /// - Throws: 409 while another message of this session is in flight; 404 once the session is closed.
    func send(_ text: String) throws -> (turn: Int, events: AsyncStream<AgentStreamEvent>) {
        let (stream, sink) = AsyncStream<AgentStreamEvent>.makeStream()
        let number = try desk.open(sink, sessionID: id)
        let agent = self.agent, desk = self.desk, interval = keepAliveInterval
        let keepAlive = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if !Task.isCancelled { desk.emit(.keepAlive) }
            }
        }
        desk.setTurn(number, Task {
            do {
                let turn = try await agent.send(text)
                keepAlive.cancel()
                desk.finish(AgentStreamEvent("done", [("stop_reason", turn.stopReason == .answered ? "answered" : "step_limit"),
                                                      ("steps", .int(turn.steps))]))
            } catch {
                keepAlive.cancel()
                desk.emit(AgentStreamEvent("error", APIError.envelope(for: error).objectValue ?? []))
                desk.finish(AgentStreamEvent("done", [("stop_reason", "error")]))
            }
        })
        return (number, stream)
    }

    /// The client of turn `number` stopped listening: its open confirmations count as no, later
    /// ones are no at once, and the turn is cancelled (a brain that honours cancellation stops at
    /// its next token). Nothing happens once that turn is over.
    func cancelTurn(_ number: Int) { desk.cancelTurn(number) }

    /// Answers one open confirmation of this session.
    /// - Throws: 404 for an id this session never asked; 409 for one already answered or timed out.
    func answer(_ requestID: String, approve: Bool) throws { try desk.answer(requestID, approve: approve) }

    func close() { desk.close() }
}

/// Where a session's confirmations wait. The client answers each one by its request id; a timer
/// answers no; so does the client's going away or the session's closing. The first answer wins,
/// and only the client's explicit yes for that request id makes ``confirm(_:)`` return true.
final class ConfirmationDesk: Sendable {
    /// How a confirmation ended.
    enum Resolution: String, Sendable {
        case approved, declined
        /// Nobody answered within the timeout.
        case timeout
        /// The client stopped listening to the turn (or never could be asked).
        case disconnected
        /// The session was deleted or evicted.
        case closed

        var approved: Bool { self == .approved }
    }

    private struct Pending {
        var request: ConfirmationRequest
        var continuation: CheckedContinuation<Bool, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        /// The stream of the turn in flight; nil between turns and after the client has gone.
        var sink: AsyncStream<AgentStreamEvent>.Continuation?
        var turn: Task<Void, Never>?
        /// Counts turns, so a turn that ended before its task was stored is not mistaken for the next.
        var turnNumber = 0
        var busy = false
        var closed = false
        var pending: [String: Pending] = [:]
        /// How recent confirmations ended, for a clear 409 to a late or second answer.
        var resolved: [String: Resolution] = [:]
        var resolvedOrder: [String] = []
        /// The last confirmation to end: the agent's `.confirmation` event, which follows it, names it.
        var last: (id: String, resolution: Resolution)?
        var lastActive = ContinuousClock.now
    }

    private static let rememberedResolutions = 256
    private let timeout: Duration
    private let state = Mutex(State())

    init(timeout: Duration) {
        self.timeout = timeout
    }

    var isIdle: Bool { state.withLock { !$0.busy } }
    var lastActive: ContinuousClock.Instant { state.withLock { $0.lastActive } }
    var pendingRequests: [(id: String, request: ConfirmationRequest)] {
        state.withLock { state in state.pending.map { (id: $0.key, request: $0.value.request) } }
    }

    /// Takes the session for one turn; returns the turn's number.
    func open(_ sink: AsyncStream<AgentStreamEvent>.Continuation, sessionID: String) throws -> Int {
        try state.withLock { state in
            guard !state.closed else { throw AgentService.unknownSession(sessionID) }
            guard !state.busy else {
                throw APIError(.conflict, "A message of this session is still being answered; wait for its 'done' event.",
                               code: "session_busy")
            }
            state.busy = true
            state.sink = sink
            state.lastActive = .now
            state.turnNumber += 1
            return state.turnNumber
        }
    }

    /// Keeps the task of turn `number` to cancel it; cancels it at once if the client or the
    /// session has already gone.
    func setTurn(_ number: Int, _ task: Task<Void, Never>) {
        let cancelled = state.withLock { state in
            guard state.busy, state.turnNumber == number else { return false }
            state.turn = task
            return state.closed || state.sink == nil
        }
        if cancelled { task.cancel() }
    }

    func emit(_ event: AgentStreamEvent) {
        state.withLock { _ = $0.sink?.yield(event) }
    }

    /// Sends the turn's last event and frees the session for the next message.
    func finish(_ event: AgentStreamEvent) {
        let leftovers = state.withLock { state in
            state.sink?.yield(event)
            state.sink?.finish()
            state.sink = nil
            state.turn = nil
            state.busy = false
            state.lastActive = .now
            return takeAllPending(&state, as: .disconnected)
        }
        resume(leftovers)
    }

    /// The loop's events as stream events.
    func forward(_ event: AgentEvent) {
        switch event {
        case .text(let piece):
            emit(AgentStreamEvent("text", [("content", .string(piece))]))
        case .toolCall(let call):
            emit(AgentStreamEvent("tool_call", [("id", call.id.map(JSONValue.string) ?? .null), ("name", .string(call.name)),
                                                ("arguments", call.arguments)]))
        case .confirmation(let request, let approved):
            let last = state.withLock { $0.last }
            emit(AgentStreamEvent("confirmation_result", [
                ("request_id", last.map { .string($0.id) } ?? .null), ("tool", .string(request.tool)),
                ("description", .string(request.description)), ("approved", .bool(approved)),
                ("resolution", .string(last?.resolution.rawValue ?? (approved ? "approved" : "declined"))),
            ]))
        case .toolResult(let name, let result, let isError):
            emit(AgentStreamEvent("tool_result", [("name", .string(name)), ("result", result), ("is_error", .bool(isError))]))
        case .answer(let text):
            emit(AgentStreamEvent("answer", [("content", .string(text))]))
        case .stepLimitReached(let steps):
            emit(AgentStreamEvent("step_limit", [("steps", .int(steps))]))
        }
    }

    /// Asks the client listening to the turn, and waits for its answer, the timeout, or its going away.
    func confirm(_ request: ConfirmationRequest) async -> Bool {
        let id = "confirm_" + randomID()
        let timeout = self.timeout
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let asked = state.withLock { state -> Bool in
                    // Checked under the lock that the cancellation handler takes too: a cancellation
                    // either is seen here or finds the request pending and answers it.
                    guard !state.closed, let sink = state.sink, !Task.isCancelled else {
                        remember(&state, id, .disconnected)
                        return false
                    }
                    let timer = Task { [weak self] in
                        try? await Task.sleep(for: timeout)
                        guard !Task.isCancelled else { return }
                        self?.resolve(id, .timeout)
                    }
                    state.pending[id] = Pending(request: request, continuation: continuation, timer: timer)
                    sink.yield(AgentStreamEvent("confirmation", [
                        ("request_id", .string(id)), ("tool", .string(request.tool)), ("arguments", request.arguments),
                        ("description", .string(request.description)),
                        ("timeout_seconds", .double(Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)),
                    ]))
                    return true
                }
                if !asked { continuation.resume(returning: false) }
            }
        } onCancel: {
            self.resolve(id, .disconnected)
        }
    }

    func answer(_ id: String, approve: Bool) throws {
        if resolve(id, approve ? .approved : .declined) { return }
        let earlier = state.withLock { $0.resolved[id] }
        guard let earlier else {
            throw APIError(.notFound, "This session has no confirmation '\(TerminalText.escaped(String(id.prefix(64))))'.",
                           param: "request_id", code: "confirmation_not_found")
        }
        let how = switch earlier {
        case .approved: "was already answered yes"
        case .declined: "was already answered no"
        case .timeout: "timed out and counted as no"
        case .disconnected: "counted as no when the client stopped listening"
        case .closed: "counted as no when the session closed"
        }
        throw APIError(.conflict, "Confirmation '\(id)' \(how); nothing more can be done with it.",
                       param: "request_id", code: "confirmation_resolved")
    }

    func cancelTurn(_ number: Int) {
        let (turn, pending) = state.withLock { state -> (Task<Void, Never>?, [(Pending, Bool)]) in
            guard state.busy, state.turnNumber == number else { return (nil, []) }
            state.sink?.finish()
            state.sink = nil
            return (state.turn, takeAllPending(&state, as: .disconnected))
        }
        resume(pending)
        turn?.cancel()
    }

    func close() {
        let (turn, pending) = state.withLock { state -> (Task<Void, Never>?, [(Pending, Bool)]) in
            state.closed = true
            state.sink?.finish()
            state.sink = nil
            return (state.turn, takeAllPending(&state, as: .closed))
        }
        resume(pending)
        turn?.cancel()
    }

    /// Ends one pending confirmation; false when it was not pending (unknown or already ended).
    @discardableResult
    private func resolve(_ id: String, _ resolution: Resolution) -> Bool {
        let taken = state.withLock { state -> Pending? in
            guard let pending = state.pending.removeValue(forKey: id) else { return nil }
            remember(&state, id, resolution)
            state.lastActive = .now
            return pending
        }
        guard let taken else { return false }
        taken.timer?.cancel()
        taken.continuation.resume(returning: resolution.approved)
        return true
    }

    private func takeAllPending(_ state: inout State, as resolution: Resolution) -> [(Pending, Bool)] {
        let all = state.pending
        state.pending.removeAll()
        for id in all.keys { remember(&state, id, resolution) }
        return all.values.map { ($0, resolution.approved) }
    }

    private func resume(_ pending: [(Pending, Bool)]) {
        for (entry, answer) in pending {
            entry.timer?.cancel()
            entry.continuation.resume(returning: answer)
        }
    }

    private func remember(_ state: inout State, _ id: String, _ resolution: Resolution) {
        state.last = (id, resolution)
        if state.resolved.updateValue(resolution, forKey: id) == nil { state.resolvedOrder.append(id) }
        if state.resolvedOrder.count > Self.rememberedResolutions {
            state.resolved[state.resolvedOrder.removeFirst()] = nil
        }
    }
}
