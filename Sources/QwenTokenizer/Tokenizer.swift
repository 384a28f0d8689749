import Foundation

/// The Qwen (Qwen2 / Qwen2.5 / Qwen3 / Qwen3.5) byte-level BPE tokenizer.
///
/// Encoding follows the Hugging Face `tokenizers` pipeline that the reference uses:
/// 1. added tokens (`<|im_start|>`, `<tool_call>`, …) are cut out of the raw text;
/// 2. each remaining text segment is NFC-normalized (when enabled);
/// 3. the segment is split by the Qwen2 or Qwen3.5 pre-tokenizer regex (see `SplitPattern`);
/// 4. each piece's UTF-8 bytes are merged by byte-level BPE.
///
/// Decoding maps ids back to bytes and decodes them as UTF-8, replacing invalid sequences
/// with U+FFFD. Ids outside `0..<vocabularySize`, or with no token, decode to nothing
/// (the reference skips ids it does not know, too).
///
/// The value is cheap to copy: its tables are shared, immutable storage.
public struct Tokenizer: Sendable {
    /// One added token: matched in raw text before normalization and BPE.
    struct AddedToken: Sendable {
        let id: Int
        let content: String
        let special: Bool
    }

    private let storage: Storage

    /// Immutable tables shared by all copies.
    private final class Storage: Sendable {
        let vocab: [String: Int]
        let addedTokenIDs: [String: Int]
        let addedTokens: [AddedToken]
        let matcher: AddedTokenMatcher
        let bpe: BPEModel
        /// Decoded bytes of every id, concatenated; id `i` owns `tokenBytes[tokenOffsets[i]..<tokenOffsets[i + 1]]`.
        let tokenBytes: [UInt8]
        let tokenOffsets: [Int]
        let special: [Bool]
        let normalizeNFC: Bool
        let splitPattern: SplitPattern

        init(vocab: [String: Int], addedTokens: [AddedToken], bpe: BPEModel, tokenBytes: [UInt8],
             tokenOffsets: [Int], special: [Bool], normalizeNFC: Bool, splitPattern: SplitPattern) {
            self.vocab = vocab
            var addedTokenIDs: [String: Int] = [:]
            for token in addedTokens where addedTokenIDs[token.content] == nil {
                addedTokenIDs[token.content] = token.id
            }
            self.addedTokenIDs = addedTokenIDs
            self.addedTokens = addedTokens
            self.matcher = AddedTokenMatcher(tokens: addedTokens.map(\.content))
            self.bpe = bpe
            self.tokenBytes = tokenBytes
            self.tokenOffsets = tokenOffsets
            self.special = special
            self.normalizeNFC = normalizeNFC
            self.splitPattern = splitPattern
        }
    }

    /// Builds the tables shared by both loaders.
    ///
    /// - Parameters:
    ///   - vocab: model vocabulary, byte-level token string → id; `vocabField` names it in errors.
    ///   - merges: merge pairs in rank order; `mergesField` names them in errors.
    ///   - addedTokens: tokens matched verbatim in the input.
    ///   - splitPattern: the pre-tokenizer regex.
    init(vocab: [String: Int], vocabField: String, merges: [(String, String)], mergesField: String,
         addedTokens: [AddedToken], normalizeNFC: Bool, splitPattern: SplitPattern) throws {
        var tokenByID: [Int: String] = [:]
        var maxID = -1
        // Per-id tables are allocated up to the largest id, so a corrupt file naming id 2^31
        // must be refused rather than exhaust memory. Real vocabularies are far smaller.
        let idLimit = 1 << 24
        for (token, id) in vocab where id >= idLimit {
            throw TokenizerError.invalidField("\(vocabField)[\(token.debugDescription)]", reason: "id \(id) is too large")
        }
        for token in addedTokens where token.id >= idLimit {
            throw TokenizerError.invalidField("added token \(token.content.debugDescription)", reason: "id \(token.id) is too large")
        }
        for (token, id) in vocab {
            // On duplicate ids keep the lexicographically smallest token, so the choice is deterministic.
            if let existing = tokenByID[id], existing < token { continue }
            tokenByID[id] = token
            maxID = max(maxID, id)
        }
        for token in addedTokens {
            tokenByID[token.id] = token.content
            maxID = max(maxID, token.id)
        }
        let size = maxID + 1

        var mergeTable: [UInt64: BPEModel.Merge] = [:]
        mergeTable.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            let field = "\(mergesField)[\(rank)]"
            guard let leftID = vocab[left] else { throw TokenizerError.unknownMergeToken(field: field, token: left) }
            guard let rightID = vocab[right] else { throw TokenizerError.unknownMergeToken(field: field, token: right) }
            guard let resultID = vocab[left + right] else {
                throw TokenizerError.unknownMergeToken(field: field, token: left + right)
            }
            guard rank < Int(UInt32.max), let l = Int32(exactly: leftID), let r = Int32(exactly: rightID),
                  let result = Int32(exactly: resultID) else {
                throw TokenizerError.invalidField(field, reason: "id or rank out of range")
            }
            // A repeated pair keeps its last rank, as the reference's hash map does.
            mergeTable[BPEModel.pairKey(l, r)] = BPEModel.Merge(rank: UInt32(rank), result: result)
        }

        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = vocab[String(ByteLevel.byteToScalar[byte])], let id32 = Int32(exactly: id) {
                byteIDs[byte] = id32
            }
        }

        var tokenBytes: [UInt8] = []
        tokenBytes.reserveCapacity(size * 7)
        var tokenOffsets = [Int]()
        tokenOffsets.reserveCapacity(size + 1)
        tokenOffsets.append(0)
        for id in 0..<size {
            if let token = tokenByID[id] { tokenBytes.append(contentsOf: ByteLevel.decode(token: token)) }
            tokenOffsets.append(tokenBytes.count)
        }
        var special = [Bool](repeating: false, count: size)
        for token in addedTokens where token.special { special[token.id] = true }

        storage = Storage(vocab: vocab, addedTokens: addedTokens,
                          bpe: BPEModel(merges: mergeTable, byteIDs: byteIDs),
                          tokenBytes: tokenBytes, tokenOffsets: tokenOffsets, special: special,
                          normalizeNFC: normalizeNFC, splitPattern: splitPattern)
    }

    private init(storage: Storage) { self.storage = storage }

    /// The same tokenizer with another BPE word limit (`BPEModel.maxWordBytes`): for tests.
    func withMaxWordBytes(_ limit: Int) -> Tokenizer {
        Tokenizer(storage: Storage(vocab: storage.vocab, addedTokens: storage.addedTokens,
                                   bpe: storage.bpe.withMaxWordBytes(limit), tokenBytes: storage.tokenBytes,
                                   tokenOffsets: storage.tokenOffsets, special: storage.special,
                                   normalizeNFC: storage.normalizeNFC, splitPattern: storage.splitPattern))
    }

    // MARK: - Queries

    /// Number of ids: one more than the largest id in the vocabulary or added tokens
    /// (151,936 for Qwen2.5, including the `[PADnnnnnn]` placeholders).
    public var vocabularySize: Int { storage.special.count }

    /// The id of an exact token string: an added token (e.g. `"<|im_end|>"`) or a vocabulary
    /// entry in its byte-level spelling (e.g. `"Ġworld"`). Returns nil when there is none.
    public func id(of token: String) -> Int? {
        storage.addedTokenIDs[token] ?? storage.vocab[token]
    }

    /// The pre-tokenizer regex this tokenizer splits text with.
    public var splitPattern: SplitPattern { storage.splitPattern }

    /// Whether `id` is a special added token (CONTROL in GGUF terms), e.g. `<|im_end|>`.
    /// Non-special added tokens such as `<tool_call>` and out-of-range ids return false.
    public func isSpecial(_ id: Int) -> Bool {
        id >= 0 && id < storage.special.count && storage.special[id]
    }

    // MARK: - Encoding

    /// Token ids of `text`, without adding any BOS/EOS.
    ///
    /// - Parameter splitSpecialTokens: when true, special tokens written in the text are
    ///   encoded as plain text (the reference's `split_special_tokens=True`); non-special
    ///   added tokens such as `<tool_call>` are still recognised.
    public func encode(_ text: String, splitSpecialTokens: Bool = false) -> [Int] {
        var work = EncodingWork()
        return encode(text, splitSpecialTokens: splitSpecialTokens, work: &work)
    }

    /// Work done by one encoding, in elementary steps, for tests that check it is linear in
    /// the input (speed itself is measured by benchmarks, not asserted).
    struct EncodingWork {
        /// Characters decomposed, sorted and composed by NFC.
        var normalization = 0
        /// Characters the pre-tokenizer scanned (some more than once, see `encodeSegment`).
        var preTokenization = 0
        /// BPE merge steps: symbols, heap pushes, pops and sift steps.
        var merging = 0
    }

    /// `encode`, also reporting the work done. `window`: see `encodeSegment` (tests make it small).
    func encode(_ text: String, splitSpecialTokens: Bool = false, window: Int = Tokenizer.preTokenizerWindow,
                work: inout EncodingWork) -> [Int] {
        let bytes = Array(text.utf8)
        var output: [Int] = []
        output.reserveCapacity(bytes.count / 3 + 1)
        var segmentStart = 0
        for match in storage.matcher.matches(in: bytes) {
            let token = storage.addedTokens[match.tokenIndex]
            // Skipped matches stay part of the surrounding text segment, as in the reference.
            if splitSpecialTokens && token.special { continue }
            if segmentStart < match.range.lowerBound {
                encodeSegment(bytes[segmentStart..<match.range.lowerBound], window: window, into: &output, work: &work)
            }
            output.append(token.id)
            segmentStart = match.range.upperBound
        }
        if segmentStart < bytes.count {
            encodeSegment(bytes[segmentStart...], window: window, into: &output, work: &work)
        }
        return output
    }

    /// Characters normalized before the pre-tokenizer first runs over them.
    static let preTokenizerWindow = 1 << 16

    /// Encodes text that contains no (recognised) added token.
    ///
    /// The text streams through the stages in windows, so that memory stays a small multiple
    /// of the window (plus the longest pre-token) rather than of the text: NFC emits
    /// characters as their segments complete; the pre-tokenizer splits the window; the pieces
    /// that no later character can change go to BPE, and the rest stays for the next window.
    /// The pre-tokenizer scans again only after the window has at least doubled, so a piece
    /// that spans many windows (a megabyte of one letter) is scanned O(1) times per character.
    private func encodeSegment(_ segment: ArraySlice<UInt8>, window windowSize: Int, into output: inout [Int],
                               work: inout EncodingWork) {
        var normalizer = storage.normalizeNFC ? NFCNormalizer() : nil
        var window: [Unicode.Scalar] = []
        var nextScan = windowSize
        var pieceBytes: [UInt8] = []

        func splitWindow(atEnd: Bool) {
            let ends = PreTokenizer.split(window, pattern: storage.splitPattern)
            work.preTokenization += window.count
            let count = window.count
            // A piece is final when its match read nothing at or past the window's end: it
            // ends before it and reads at most two characters ahead of its start (the
            // contractions), and it does not start in the whitespace run that reaches the
            // end (whitespace matching reads to the end of its run).
            var trailingWhitespace = count
            while trailingWhitespace > 0
                    && PreTokenizer.classify(window[trailingWhitespace - 1], marksAreLetters: false).contains(.whitespace) {
                trailingWhitespace -= 1
            }
            var start = 0
            for end in ends {
                if !atEnd && (end >= count || start + 2 >= count || start >= trailingWhitespace) { break }
                pieceBytes.removeAll(keepingCapacity: true)
                for scalar in window[start..<end] { Self.appendUTF8(of: scalar, to: &pieceBytes) }
                storage.bpe.encode(word: pieceBytes[...], into: &output, work: &work.merging)
                start = end
            }
            window.removeFirst(start)
            nextScan = window.count + max(windowSize, window.count)
        }

        var iterator = segment.makeIterator()
        var decoder = UTF8()
        decoding: while true {
            let scalar: Unicode.Scalar
            switch decoder.decode(&iterator) {
            case .scalarValue(let value): scalar = value
            case .emptyInput: break decoding
            case .error: scalar = "\u{FFFD}"  // unreachable: the bytes come from a String
            }
            if normalizer != nil {
                normalizer?.append(scalar, to: &window)
            } else {
                window.append(scalar)
            }
            if window.count >= nextScan { splitWindow(atEnd: false) }
        }
        if var normalizer {
            normalizer.finish(to: &window)
            work.normalization += normalizer.operations
        }
        splitWindow(atEnd: true)
    }

    private static func appendUTF8(of scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
        let value = scalar.value
        switch value {
        case 0..<0x80:
            bytes.append(UInt8(value))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | value >> 6))
            bytes.append(UInt8(0x80 | value & 0x3F))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | value >> 12))
            bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | value >> 18))
            bytes.append(UInt8(0x80 | value >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        }
    }

    // MARK: - Decoding

    /// The text of `ids`. Invalid UTF-8 (e.g. a character cut in half) becomes U+FFFD;
    /// out-of-range ids are skipped.
    ///
    /// - Parameter skipSpecialTokens: leave out special added tokens (not `<tool_call>`).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes one id stands for (possibly part of a UTF-8 character); empty for an out-of-range id.
    public func bytes(of id: Int) -> ArraySlice<UInt8> {
        guard id >= 0 && id < storage.special.count else { return [] }
        return storage.tokenBytes[storage.tokenOffsets[id]..<storage.tokenOffsets[id + 1]]
    }

    /// The raw bytes of one id; nothing for an out-of-range id.
    func appendBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
        guard id >= 0 && id < storage.special.count else { return }
        if skipSpecialTokens && storage.special[id] { return }
        bytes.append(contentsOf: storage.tokenBytes[storage.tokenOffsets[id]..<storage.tokenOffsets[id + 1]])
    }
}
