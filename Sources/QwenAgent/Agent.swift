import Foundation
import QwenKit

/// A side-effecting call waiting for the user's yes.
public struct ConfirmationRequest: Sendable, Equatable {
    /// The tool's name.
    public var tool: String
    /// The validated arguments.
    public var arguments: JSONValue
    /// The call in plain words ("Book flight QK123 Paris→Tokyo on 2026-12-20 for 612 EUR?").
    public var description: String
}

/// One executed side effect, as written to the audit log.
public struct AuditEntry: Sendable, Equatable {
    /// Who asked for it (the agent's ``Agent/Configuration/principal``).
    public var who: String
    /// The tool that ran.
    public var tool: String
    /// The sentence the user confirmed.
    public var description: String
    public var arguments: JSONValue
    /// The tool's result, or `{"error": message}` when it failed.
    public var result: JSONValue
    public var succeeded: Bool
    public var date: Date
}

/// Where executed side effects are recorded.
public protocol AuditLog: Sendable {
    /// Records one executed side effect.
    func record(_ entry: AuditEntry) async throws
}

/// What happens during a turn, in order, for a user interface to show.
public enum AgentEvent: Sendable, Equatable {
    /// A piece of the model's text as it is generated.
    case text(String)
    /// The model called a tool (before validation).
    case toolCall(ToolCall)
    /// The user was asked about a side effect and answered.
    case confirmation(ConfirmationRequest, approved: Bool)
    /// A tool's result (or the error fed back to the model).
    case toolResult(name: String, result: JSONValue, isError: Bool)
    /// The model answered without calling tools; the turn is over.
    case answer(String)
    /// The turn stopped after ``Agent/Configuration/maxSteps`` model steps.
    case stepLimitReached(Int)
}

/// How a turn ended.
public enum AgentStopReason: Sendable, Equatable {
    /// The model answered.
    case answered
    /// The step limit was reached first.
    case stepLimit
}

/// The outcome of one user turn.
public struct AgentTurn: Sendable {
    /// The final answer (empty when the step limit was reached first).
    public var answer: String
    public var stopReason: AgentStopReason
    /// Model steps used.
    public var steps: Int
}

/// The agent loop: messages → brain → tool calls (validated, confirmed, run, in parallel where the
/// model asked for several) → results → brain, until the brain answers or the step limit.
///
/// Malformed calls (unparsable JSON, unknown tool, arguments breaking the tool's schema) and tool
/// failures become error results the model can correct; they never end the loop. Side-effecting
/// calls run only after ``Configuration/confirm`` says yes, and each one that runs is audited.
/// The conversation is kept between ``send(_:)`` calls.
public actor Agent {
    /// Everything the loop needs.
    public struct Configuration: Sendable {
        public var brain: any AgentBrain
        public var tools: [any AgentTool]
        /// The system prompt; nil for the template's own.
        public var systemPrompt: String?
        /// Model steps allowed per user turn.
        public var maxSteps: Int
        /// Asked before every side effect; true runs it.
        public var confirm: @Sendable (ConfirmationRequest) async -> Bool
        /// Records executed side effects; nil records nothing.
        public var auditLog: (any AuditLog)?
        /// The name written as "who" in the audit log.
        public var principal: String
        /// Receives the turn's events.
        public var onEvent: @Sendable (AgentEvent) async -> Void

        public init(brain: any AgentBrain, tools: [any AgentTool], systemPrompt: String? = Agent.defaultSystemPrompt,
                    maxSteps: Int = 8, confirm: @escaping @Sendable (ConfirmationRequest) async -> Bool,
                    auditLog: (any AuditLog)? = nil, principal: String = "user",
                    onEvent: @escaping @Sendable (AgentEvent) async -> Void = { _ in }) {
            self.brain = brain
            self.tools = tools
            self.systemPrompt = systemPrompt
            self.maxSteps = maxSteps
            self.confirm = confirm
            self.auditLog = auditLog
            self.principal = principal
            self.onEvent = onEvent
        }
    }

    /// A short prompt that keeps small models on the tools.
    public static let defaultSystemPrompt = """
        You are a travel and shopping assistant. Use the tools to search flights, hotels and products, \
        to book, to fill the cart and to check out. Search before you book or buy, and use the exact ids \
        the tools return. Bookings and purchases ask the user for confirmation by themselves. \
        When a tool returns an error, fix the call. Answer briefly, in the user's language.
        """

    public let configuration: Configuration
    /// The conversation so far (without the system prompt).
    public private(set) var history: [ChatMessage] = []
    private var callCounter = 0
    /// What the user and successful tool results have shown, for ``AgentTool/groundedArguments``.
    private var grounded = GroundedValues()

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Forgets the conversation.
    public func reset() {
        history.removeAll()
        grounded = GroundedValues()
    }

    /// Runs one user turn to its answer or the step limit.
    /// - Throws: only what the brain throws (a model or network failure); tool failures are results.
    @discardableResult
    public func send(_ text: String) async throws -> AgentTurn {
        try await turn(text, emit: configuration.onEvent)
    }

    private func turn(_ text: String, emit: @escaping @Sendable (AgentEvent) async -> Void) async throws -> AgentTurn {
        history.append(.user(text))
        grounded.addUserText(text)
        let definitions = configuration.tools.map(\.definition)
        var steps = 0
        while steps < configuration.maxSteps {
            steps += 1
            let messages = (configuration.systemPrompt.map { [ChatMessage.system($0)] } ?? []) + history
            // Text arrives synchronously from generation; forward it in order without blocking it.
            let (stream, continuation) = AsyncStream<String>.makeStream()
            let forwarder = Task { for await piece in stream { await emit(.text(piece)) } }
            let reply: BrainReply
            do {
                reply = try await configuration.brain.respond(to: messages, tools: definitions) { continuation.yield($0) }
                continuation.finish()
                await forwarder.value
            } catch {
                continuation.finish()
                await forwarder.value
                history.removeLast(history.last?.role == "user" ? 1 : 0)
                throw error
            }
            var calls = reply.toolCalls
            var malformed: String?
            if calls.isEmpty, let content = reply.content, content.contains("<tool_call>") {
                malformed = content.contains("<function=")
                    ? "error: the tool call could not be read. Write exactly <tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n</function>\n</tool_call>, with a function you were given."
                    : "error: the tool call is not valid JSON. Write exactly <tool_call>{\"name\": …, \"arguments\": {…}}</tool_call>."
            }
            if calls.isEmpty && malformed == nil {
                let answer = reply.content ?? ""
                history.append(.assistant(answer))
                await emit(.answer(answer))
                return AgentTurn(answer: answer, stopReason: .answered, steps: steps)
            }
            for index in calls.indices where calls[index].id == nil {
                callCounter += 1
                calls[index].id = "call_\(callCounter)"
            }
            history.append(.assistant(malformed == nil ? reply.content : nil, toolCalls: calls))
            if let malformed {
                // Keep what the model wrote so it can see its mistake next to the error.
                history[history.count - 1] = .assistant(reply.content)
                history.append(.tool(malformed, name: "error"))
                await emit(.toolResult(name: "error", result: .string(malformed), isError: true))
                continue
            }
            for call in calls { await emit(.toolCall(call)) }
            for (call, outcome) in zip(calls, await perform(calls, emit: emit)) {
                history.append(.tool(outcome.result.pythonJSON, toolCallID: call.id, name: call.name))
                if !outcome.isError { grounded.addResult(outcome.result) }
                await emit(.toolResult(name: call.name, result: outcome.result, isError: outcome.isError))
            }
        }
        await emit(.stepLimitReached(configuration.maxSteps))
        return AgentTurn(answer: "", stopReason: .stepLimit, steps: steps)
    }

    private struct Outcome: Sendable {
        var result: JSONValue
        var isError: Bool
        static func error(_ message: String) -> Outcome { Outcome(result: .object([("error", .string(message))]), isError: true) }
    }

    private enum Plan {
        case done(Outcome)
        case run(any AgentTool, JSONValue, confirmed: ConfirmationRequest?)
    }

    /// Validates every call, asks about side effects one at a time (a person answers them in order),
    /// then runs the approved calls concurrently; results keep the calls' order.
    private func perform(_ calls: [ToolCall], emit: @Sendable (AgentEvent) async -> Void) async -> [Outcome] {
        var plans: [Plan] = []
        for call in calls {
            plans.append(await plan(call, emit: emit))
        }
        let principal = configuration.principal
        let auditLog = configuration.auditLog
        return await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, plan) in plans.enumerated() {
                guard case let .run(tool, arguments, confirmed) = plan else { continue }
                group.addTask {
                    let outcome: Outcome
                    do {
                        outcome = Outcome(result: try await tool.run(arguments), isError: false)
                    } catch let error as ToolError {
                        outcome = .error(error.message)
                    } catch {
                        outcome = .error("\(error)")
                    }
                    if let auditLog, confirmed != nil || tool.alwaysAudited {
                        let description = confirmed?.description ?? TerminalText.escaped(tool.describe(arguments))
                        let entry = AuditEntry(who: principal, tool: tool.name, description: description,
                                               arguments: arguments, result: outcome.result,
                                               succeeded: !outcome.isError, date: Date())
                        do { try await auditLog.record(entry) } catch {
                            return (index, .error("the action ran but could not be audited: \(error)"))
                        }
                    }
                    return (index, outcome)
                }
            }
            var outcomes = plans.map { plan -> Outcome in
                if case .done(let outcome) = plan { return outcome }
                return .error("not run")
            }
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
    }

    private func plan(_ call: ToolCall, emit: @Sendable (AgentEvent) async -> Void) async -> Plan {
        guard let tool = configuration.tools.first(where: { $0.name == call.name }) else {
            let known = configuration.tools.map(\.name).joined(separator: ", ")
            return .done(.error("unknown tool '\(call.name)'; the tools are: \(known)"))
        }
        var arguments = call.arguments
        if let text = arguments.stringValue {
            guard let parsed = try? JSONValue.parse(text.isEmpty ? "{}" : text) else {
                return .done(.error("the arguments of \(call.name) are not valid JSON: \(text.prefix(200))"))
            }
            arguments = parsed
        }
        let problems = JSONSchema.violations(of: arguments, against: tool.parameters)
        guard problems.isEmpty else {
            return .done(.error("invalid arguments for \(call.name): " + problems.joined(separator: "; ")))
        }
        for key in tool.groundedArguments {
            guard let value = arguments[key], !value.isNull, value.stringValue?.isEmpty != true else { continue }
            guard grounded.contains(value, for: key) else {
                let shown = value.stringValue ?? value.pythonJSON
                return .done(.error("\(key) \(shown) appears in no search result and no message of this conversation: "
                                    + "use one that a search returned or the user gave"))
            }
        }
        do {
            try tool.check(arguments)
        } catch {
            return .done(.error("\(error)"))
        }
        guard tool.sideEffect else { return .run(tool, arguments, confirmed: nil) }
        // The question is built from the tool's sentence with every control character escaped, so
        // nothing in a name, an argument or a description can redraw the terminal the user reads.
        let request = ConfirmationRequest(tool: tool.name, arguments: arguments,
                                          description: TerminalText.escaped(tool.describe(arguments)))
        let approved = await configuration.confirm(request)
        await emit(.confirmation(request, approved: approved))
        guard approved else {
            return .done(Outcome(result: .object([("error", .string("the user declined: \(request.description) Nothing was done."))]),
                                 isError: true))
        }
        return .run(tool, arguments, confirmed: request)
    }
}

extension Agent {
    /// Runs one turn and delivers its events as a stream, as well as to ``Configuration/onEvent``.
    public nonisolated func events(for text: String) -> AsyncThrowingStream<AgentEvent, Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let listener = self.configuration.onEvent
                    try await self.turn(text) { event in
                        await listener(event)
                        continuation.yield(event)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
