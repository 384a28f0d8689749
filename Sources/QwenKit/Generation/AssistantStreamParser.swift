/// Splits streamed model text into reasoning and content as it arrives, and holds back what may
/// be a tool call until it is complete, so that a client never sees `<think>` or `<tool_call>`
/// markup in `content`. The concatenated events equal ``AssistantOutput/parse(_:offeredTools:startsInReasoning:)``
/// of the whole text.
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
    private var pending = ""
    /// Everything the model wrote, for the final parse.
    private var whole = ""
    private let startsInReasoning: Bool
    private var emittedContent: Bool { !streamed.isEmpty }
    /// Content already sent.
    private var streamed = ""

    public init(offeredTools: Set<String>, startsInReasoning: Bool = false) {
        self.offeredTools = offeredTools
        self.startsInReasoning = startsInReasoning
        state = startsInReasoning ? .reasoning : .start
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
                if "<think>".hasPrefix(trimmed) { break }  // could still become "<think>"
                if trimmed.hasPrefix("<think>") {
                    pending = String(trimmed.dropFirst("<think>".count))
                    state = .reasoning
                } else if !offeredTools.isEmpty, let first = trimmed.first, "{[`<".contains(first),
                          emittedContent == false, Self.mayStartToolCall(trimmed) {
                    state = .buffering
                } else {
                    pending = String(trimmed)
                    state = .content
                }
                progressed = true
            case .reasoning:
                if let close = pending.range(of: "</think>") {
                    let thought = String(pending[..<close.lowerBound])
                    if !thought.isEmpty { events.append(.reasoning(thought)) }
                    pending = String(pending[close.upperBound...])
                    state = .start
                    progressed = true
                } else {
                    let safe = Self.splitOffPossiblePrefix(of: "</think>", from: &pending)
                    if !safe.isEmpty { events.append(.reasoning(safe)) }
                }
            case .content:
                if !offeredTools.isEmpty, pending.contains("<tool_call>") {
                    state = .buffering
                    progressed = true
                    break
                }
                var safe = offeredTools.isEmpty ? Self.takeAll(&pending)
                    : Self.splitOffPossiblePrefix(of: "<tool_call>", from: &pending)
                // Trailing whitespace waits: the final answer is trimmed.
                let kept = safe.reversed().prefix { $0.isWhitespace }.count
                if kept > 0 {
                    pending = String(safe.suffix(kept)) + pending
                    safe = String(safe.dropLast(kept))
                }
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
            if !pending.isEmpty { events.append(.reasoning(pending)) }
        case .start, .content, .buffering:
            // What the final parse calls content, minus what was already streamed.
            if let content = final.content, content.hasPrefix(streamed), content.count > streamed.count {
                events.append(.content(String(content.dropFirst(streamed.count))))
            }
        }
        pending = ""
        return (events, final.toolCalls)
    }

    private static func mayStartToolCall(_ text: Substring) -> Bool {
        text.hasPrefix("{") || text.hasPrefix("[") || text.hasPrefix("```")
            || "<tool_call>".hasPrefix(text.prefix(11)) || text.hasPrefix("<tool_call>")
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
