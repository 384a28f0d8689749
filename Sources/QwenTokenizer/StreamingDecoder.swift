extension Tokenizer {
    /// Incremental detokenizer for generation: feed ids one at a time and get back only
    /// complete characters (Unicode scalars). Bytes of a character split across tokens are
    /// held until the character is complete.
    ///
    /// The concatenation of all `append` results and `finish()` equals `decode` of the whole
    /// id sequence, including U+FFFD for invalid bytes: bytes are held only while they are a
    /// valid but incomplete UTF-8 prefix, and a sequence that can no longer become valid is
    /// replaced exactly as whole-text decoding would replace it.
    public struct StreamingDecoder: Sendable {
        private let tokenizer: Tokenizer
        private let skipSpecialTokens: Bool
        /// Bytes not yet emitted: at most an incomplete character (≤ 3 bytes) between calls.
        private var pending: [UInt8] = []

        /// - Parameter skipSpecialTokens: leave out special tokens, as in `decode`.
        public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
            self.tokenizer = tokenizer
            self.skipSpecialTokens = skipSpecialTokens
        }

        /// Adds one id; returns the text completed by it (often empty mid-character).
        /// Out-of-range ids add nothing.
        public mutating func append(_ id: Int) -> String {
            tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &pending)
            let complete = Self.completePrefixLength(pending)
            guard complete > 0 else { return "" }
            let text = String(decoding: pending[..<complete], as: UTF8.self)
            pending.removeFirst(complete)
            return text
        }

        /// Ends the stream: any held incomplete character is returned as U+FFFD.
        public mutating func finish() -> String {
            defer { pending.removeAll() }
            return String(decoding: pending, as: UTF8.self)
        }

        /// Length of the prefix of `bytes` that can be decoded now: everything except a
        /// trailing sequence that is a valid, unfinished start of a UTF-8 character.
        /// Because that tail begins with a lead byte, no earlier sequence can extend into it,
        /// so decoding the prefix alone gives the same text as decoding everything.
        static func completePrefixLength(_ bytes: [UInt8]) -> Int {
            let count = bytes.count
            // The lead byte of an incomplete character is at most 3 bytes from the end.
            var start = count - 1
            while start >= 0 && start >= count - 3 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
            guard start >= 0 && start >= count - 3 else { return count }
            let lead = bytes[start]
            let needed: Int
            switch lead {
            case 0xC2...0xDF: needed = 2
            case 0xE0...0xEF: needed = 3
            case 0xF0...0xF4: needed = 4
            default: return count  // ASCII or an invalid lead byte: nothing to wait for
            }
            let have = count - start
            guard have < needed else { return count }
            if have >= 2 {
                // The second byte's range is narrower after some lead bytes (no overlongs,
                // no surrogates, nothing above U+10FFFF).
                let second = bytes[start + 1]
                let valid: ClosedRange<UInt8>
                switch lead {
                case 0xE0: valid = 0xA0...0xBF
                case 0xED: valid = 0x80...0x9F
                case 0xF0: valid = 0x90...0xBF
                case 0xF4: valid = 0x80...0x8F
                default: valid = 0x80...0xBF
                }
                guard valid.contains(second) else { return count }
            }
            return start
        }
    }
}
