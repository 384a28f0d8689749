/// Splits streamed model text into reasoning, content and tool calls as it arrives, so that a
/// client never sees `<think>` or `<tool_call>` markup in `content`. However the text is cut into
/// pieces, the concatenated `.reasoning` events equal the
/// ``AssistantOutput/parse(_:tools:format:startsInReasoning:)`` reasoning of the whole text, the
/// concatenated `.content` events its content, and ``finish()`` returns its tool calls.
///
/// Tool calls in the JSON form are held back and come out whole at ``finish()``. Calls in the XML
/// form stream as they are written: `.toolCall` when the function tag is read, then
/// `.toolCallArguments` pieces (a parameter once its value is complete, a string value as it
/// grows) that add up to the call's `arguments.pythonJSON`. A call that breaks after it started
/// streaming (cut off by the token limit, or malformed further on) is not among the tool calls
/// ``finish()`` returns, and its text comes out as content; its index is not reused.
public struct AssistantStreamParser: Sendable {
    public enum Event: Sendable, Equatable {
        case reasoning(String)
        case content(String)
        /// A tool call begins: its index among this answer's calls, and the function.
        case toolCall(index: Int, name: String)
        /// The next piece of the arguments (JSON text) of call `index`.
        case toolCallArguments(index: Int, String)
    }

    private enum State {
        /// Before the answer's first visible character: deciding what kind of output this is.
        case start
        case reasoning
        case content
        /// Possibly a JSON tool call: kept until the end and parsed whole.
        case buffering
        /// Inside an XML `<tool_call>` block, read by `reader`.
        case xmlCall
        /// After the first XML block: text waits for the final parse; a `<tool_call>` starts another block.
        case afterXMLCall
    }

    private let tools: OfferedTools
    private let format: ToolCallFormat
    private var reader: XMLToolCallReader
    /// The index announced for the call `reader` reads; the number of calls announced.
    private var readerIndex: Int?
    private var announcedCalls = 0
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

    public init(tools: OfferedTools, format: ToolCallFormat, startsInReasoning: Bool = false) {
        self.tools = tools
        self.format = format
        reader = XMLToolCallReader(tools: tools)
        self.startsInReasoning = startsInReasoning
        state = startsInReasoning ? .reasoning : .start
        mayOpenThought = !startsInReasoning
    }

    /// A parser for tool calls in the JSON form.
    public init(offeredTools: Set<String>, startsInReasoning: Bool = false) {
        self.init(tools: OfferedTools(names: offeredTools), format: .json, startsInReasoning: startsInReasoning)
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
                if format == .json, !tools.names.isEmpty {
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
                if !tools.isEmpty, let open = pending.range(of: Self.toolCallOpen) {
                    if format == .xml {
                        // The text before the call is content; the final parse trims its trailing whitespace.
                        let before = String(pending[..<open.lowerBound])
                        let text = String(before.dropLast(before.reversed().prefix { $0.isWhitespace }.count))
                        if !text.isEmpty {
                            events.append(.content(text))
                            streamed += text
                        }
                        pending = String(pending[open.upperBound...])
                        startXMLCall()
                    } else {
                        state = .buffering
                    }
                    progressed = true
                    break
                }
                var safe = tools.isEmpty ? Self.takeAll(&pending)
                    : Self.splitOffPossiblePrefix(of: Self.toolCallOpen, from: &pending)
                // Trailing whitespace waits: the final answer is trimmed.
                Self.holdTrailingWhitespace(&safe, before: &pending)
                if !safe.isEmpty {
                    events.append(.content(safe))
                    streamed += safe
                }
            case .buffering:
                break
            case .xmlCall:
                reader.read(pending.utf8)
                pending = ""
                if readerIndex == nil, let name = reader.name, reader.phase != .broken {
                    readerIndex = announcedCalls
                    announcedCalls += 1
                    events.append(.toolCall(index: announcedCalls - 1, name: name))
                }
                let fragment = reader.takeArgumentsFragment()
                if let index = readerIndex, !fragment.isEmpty { events.append(.toolCallArguments(index: index, fragment)) }
                switch reader.phase {
                case .closed:
                    pending = String(decoding: reader.input.dropFirst(reader.consumed), as: UTF8.self)
                    state = .afterXMLCall
                    progressed = true
                case .broken:
                    // The block is content; a later `<tool_call>` inside it may still open a call.
                    pending = String(decoding: reader.input, as: UTF8.self)
                    state = .afterXMLCall
                    progressed = true
                default:
                    break
                }
            case .afterXMLCall:
                if let open = pending.range(of: Self.toolCallOpen) {
                    pending = String(pending[open.upperBound...])
                    startXMLCall()
                    progressed = true
                } else {
                    // What is not a call comes out at the end, from the final parse.
                    _ = Self.splitOffPossiblePrefix(of: Self.toolCallOpen, from: &pending)
                }
            }
        }
        return events
    }

    private mutating func startXMLCall() {
        reader = XMLToolCallReader(tools: tools)
        readerIndex = nil
        state = .xmlCall
    }

    /// Ends the stream: the remaining events and the tool calls, if the output was one.
    public mutating func finish() -> (events: [Event], toolCalls: [ToolCall]) {
        let final = AssistantOutput.parse(whole, tools: tools, format: format, startsInReasoning: startsInReasoning)
        var events: [Event] = []
        switch state {
        case .reasoning:
            if !reasoningStarted { pending = String(pending.drop { $0.isWhitespace }) }
            let text = String(pending.dropLast(pending.reversed().prefix { $0.isWhitespace }.count))
            if !text.isEmpty { events.append(.reasoning(text)) }
        case .start, .content, .buffering, .xmlCall, .afterXMLCall:
            // What the final parse calls content, minus what was already streamed (compared by
            // scalars: a combining mark in a later piece may merge with a streamed character).
            if let content = final.content, content.unicodeScalars.starts(with: streamed.unicodeScalars) {
                let rest = String(content.unicodeScalars.dropFirst(streamed.unicodeScalars.count))
                if !rest.isEmpty { events.append(.content(rest)) }
            }
        }
        if format == .json {
            for (index, call) in final.toolCalls.enumerated() {
                events += [.toolCall(index: index, name: call.name), .toolCallArguments(index: index, call.arguments.pythonJSON)]
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
