/// Finds stop strings (`--stop`) in streamed text without printing anything that might turn out
/// to be part of one.
///
/// Feed each decoded chunk to ``feed(_:)``; print what it returns. Text that could still grow
/// into a stop string is held back until the next chunk settles it, and ``finish()`` releases it
/// at the end of generation. Once a stop string is complete, the output ends right before it and
/// every later call returns nothing.
///
/// Matching is exact, on Unicode scalars: no normalisation, and no grapheme-cluster rules (a stop
/// string "e" matches the "e" of "e" + U+0301), because the model's text arrives scalar by scalar
/// and a stop must be caught as soon as its last scalar arrives. Stopping happens at the first
/// complete match: with stops "abcd" and "bc", the text "abc" stops before "bc" right away rather
/// than waiting to see whether "abcd" follows. Empty stop strings are ignored.
public struct StopSequenceMatcher: Sendable {
    /// The result of feeding one chunk.
    public struct Output: Sendable, Equatable {
        /// Text that is now safe to emit (possibly empty).
        public var text: String
        /// True when a stop string has been completed; generation should end.
        public var stopped: Bool

        public init(text: String, stopped: Bool) {
            self.text = text
            self.stopped = stopped
        }
    }

    private let stops: [[Unicode.Scalar]]
    /// Scalars received but not yet released: always a proper prefix of some stop string.
    private var pending: [Unicode.Scalar] = []
    /// Set once a stop string has matched.
    public private(set) var isStopped = false

    /// - Parameter stops: the stop strings; empty ones are dropped.
    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
    }

    /// Consumes the next chunk of generated text.
    public mutating func feed(_ chunk: String) -> Output {
        if isStopped { return Output(text: "", stopped: true) }
        if stops.isEmpty { return Output(text: chunk, stopped: false) }
        pending.append(contentsOf: chunk.unicodeScalars)

        // The held part never contains a whole stop string, so scanning the buffer from the
        // start finds every match that involves the new text.
        var holdFrom = pending.count
        for start in pending.indices {
            let remaining = pending.count - start
            for stop in stops {
                let length = min(stop.count, remaining)
                guard pending[start..<(start + length)].elementsEqual(stop[0..<length]) else { continue }
                if length == stop.count {
                    let text = Self.string(pending[..<start])
                    pending.removeAll()
                    isStopped = true
                    return Output(text: text, stopped: true)
                }
                // A partial match running to the end of the buffer: it may complete later.
                holdFrom = min(holdFrom, start)
            }
        }
        let text = Self.string(pending[..<holdFrom])
        pending.removeSubrange(..<holdFrom)
        return Output(text: text, stopped: false)
    }

    /// Releases the held-back text at the end of generation (nothing after a stop).
    public mutating func finish() -> String {
        let text = Self.string(pending[...])
        pending.removeAll()
        return text
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }
}
