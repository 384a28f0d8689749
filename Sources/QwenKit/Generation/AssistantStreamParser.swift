/// Splits streamed model text into reasoning and content as it arrives, and holds back what may
/// be a tool call until it is complete, so that a client never sees `<think>` or `<tool_call>`
/// markup in `content`. However the text is cut into pieces, the concatenated `.reasoning` events
/// equal the ``AssistantOutput/parse(_:offeredTools:startsInReasoning:)`` reasoning of the whole
/// text, the concatenated `.content` events its content, and ``finish()`` returns its tool calls.
public struct AssistantStreamParser: Sendable {
    public enum Event: Sendable, Equatable {
        case reasoning(String)
        case content(String)
    }

    private enum State {
        /// Before the answer's first visible character: deciding what kind of output this is.
        case start
        case reasoning
        case content
        /// Possibly a tool call: kept until the end and parsed whole.
        case buffering
    }

    private let offeredTools: Set<String>
    private var state: State
    /// Text received but not yet sent or classified.
    private var pending = ""
    /// Everything the model wrote, for the final parse.
    private var whole = ""
    private let startsInReasoning: Bool
    /// Whether a `<think>` block may still open (only at the very start of the output).
    private var mayOpenThought: Bool
    /// Whether reasoning text has been sent (leading whitespace of the thought is dropped before it).
    private var reasoningStarted = false
    /// Content already sent.
    private var streamed = ""

    public init(offeredTools: Set<String>, startsInReasoning: Bool = false) {
        self.offeredTools = offeredTools
        self.startsInReasoning = startsInReasoning
        state = startsInReasoning ? .reasoning : .start
        mayOpenThought = !startsInReasoning
    }

    public mutating func feed(_ piece: String) -> [Event] {
        whole += piece
        pending += piece
        var events: [Event] = []
        var progressed = true
        while progressed {
            progressed = false
            switch state {
            case .start:
                let trimmed = pending.drop { $0.isWhitespace }
                if trimmed.isEmpty { break }
                let open = AssistantOutput.thinkOpen
                if mayOpenThought, trimmed.count < open.count, open.hasPrefix(trimmed) { break }  // may become "<think>"
                if mayOpenThought, trimmed.hasPrefix(open) {
                    pending = String(trimmed.dropFirst(open.count))
                    state = .reasoning
                    mayOpenThought = false
                    progressed = true
                    break
                }
                mayOpenThought = false
                if !offeredTools.isEmpty {
                    switch Self.bareToolCallStart(trimmed) {
                    case .undecided: break
                    case .yes:
                        state = .buffering
                        progressed = true
                    case .no:
                        pending = String(trimmed)
                        state = .content
                        progressed = true
                    }
                } else {
                    pending = String(trimmed)
                    state = .content
                    progressed = true
                }
            case .reasoning:
                if !reasoningStarted {
                    pending = String(pending.drop { $0.isWhitespace })
                }
                if let close = pending.range(of: AssistantOutput.thinkClose) {
                    let thought = String(pending[..<close.lowerBound])
                    let text = String(thought.dropLast(thought.reversed().prefix { $0.isWhitespace }.count))
                    if !text.isEmpty { events.append(.reasoning(text)) }
                    pending = String(pending[close.upperBound...])
                    state = .start
                    progressed = true
                } else {
                    var safe = Self.splitOffPossiblePrefix(of: AssistantOutput.thinkClose, from: &pending)
                    Self.holdTrailingWhitespace(&safe, before: &pending)
                    if !safe.isEmpty {
                        events.append(.reasoning(safe))
                        reasoningStarted = true
                    }
                }
            case .content:
                if !offeredTools.isEmpty, pending.contains(Self.toolCallOpen) {
                    state = .buffering
                    progressed = true
                    break
                }
                var safe = offeredTools.isEmpty ? Self.takeAll(&pending)
                    : Self.splitOffPossiblePrefix(of: Self.toolCallOpen, from: &pending)
                // Trailing whitespace waits: the final answer is trimmed.
                Self.holdTrailingWhitespace(&safe, before: &pending)
                if !safe.isEmpty {
                    events.append(.content(safe))
                    streamed += safe
                }
            case .buffering:
                break
            }
        }
        return events
    }

    /// Ends the stream: the remaining events and the tool calls, if the output was one.
    public mutating func finish() -> (events: [Event], toolCalls: [ToolCall]) {
        let final = AssistantOutput.parse(whole, offeredTools: offeredTools, startsInReasoning: startsInReasoning)
        var events: [Event] = []
        switch state {
        case .reasoning:
            if !reasoningStarted { pending = String(pending.drop { $0.isWhitespace }) }
            let text = String(pending.dropLast(pending.reversed().prefix { $0.isWhitespace }.count))
            if !text.isEmpty { events.append(.reasoning(text)) }
        case .start, .content, .buffering:
            // What the final parse calls content, minus what was already streamed (compared by
            // scalars: a combining mark in a later piece may merge with a streamed character).
            if let content = final.content, content.unicodeScalars.starts(with: streamed.unicodeScalars) {
                let rest = String(content.unicodeScalars.dropFirst(streamed.unicodeScalars.count))
                if !rest.isEmpty { events.append(.content(rest)) }
            }
        }
        pending = ""
        return (events, final.toolCalls)
    }

    private static let toolCallOpen = "<tool_call>"

    private enum Decision { case yes, no, undecided }

    /// Whether an answer beginning with `text` may be a bare JSON tool call: `{`, `[`, or a
    /// Markdown fence (optionally `json`) whose body starts with one of them.
    private static func bareToolCallStart(_ text: Substring) -> Decision {
        if text.hasPrefix("{") || text.hasPrefix("[") { return .yes }
        let fence = "```"
        if text.count < fence.count { return fence.hasPrefix(text) ? .undecided : .no }
        guard text.hasPrefix(fence) else { return .no }
        var body = text.dropFirst(fence.count)
        if body.count < 4, "json".hasPrefix(body) { return .undecided }
        if body.hasPrefix("json") { body = body.dropFirst(4) }
        body = body.drop { $0.isWhitespace }
        guard let first = body.first else { return .undecided }
        return first == "{" || first == "[" ? .yes : .no
    }

    /// Moves trailing whitespace of `safe` back to the front of `pending`.
    private static func holdTrailingWhitespace(_ safe: inout String, before pending: inout String) {
        let kept = safe.reversed().prefix { $0.isWhitespace }.count
        if kept > 0 {
            pending = String(safe.suffix(kept)) + pending
            safe = String(safe.dropLast(kept))
        }
    }

    private static func takeAll(_ text: inout String) -> String {
        defer { text = "" }
        return text
    }

    /// Returns the part of `text` that cannot be the start of `marker`, leaving the rest in `text`.
    private static func splitOffPossiblePrefix(of marker: String, from text: inout String) -> String {
        let characters = Array(text)
        var keep = 0
        for length in stride(from: min(marker.count - 1, characters.count), to: 0, by: -1)
        where marker.hasPrefix(String(characters[(characters.count - length)...])) {
            keep = length
            break
        }
        let safe = String(characters[..<(characters.count - keep)])
        text = String(characters[(characters.count - keep)...])
        return safe
    }
}
