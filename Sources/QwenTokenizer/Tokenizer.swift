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
        let bytes = Array(text.utf8)
        var output: [Int] = []
        output.reserveCapacity(bytes.count / 3 + 1)
        var segmentStart = 0
        for match in storage.matcher.matches(in: bytes) {
            let token = storage.addedTokens[match.tokenIndex]
            // Skipped matches stay part of the surrounding text segment, as in the reference.
            if splitSpecialTokens && token.special { continue }
            if segmentStart < match.range.lowerBound {
                encodeSegment(bytes[segmentStart..<match.range.lowerBound], into: &output)
            }
            output.append(token.id)
            segmentStart = match.range.upperBound
        }
        if segmentStart < bytes.count {
            encodeSegment(bytes[segmentStart...], into: &output)
        }
        return output
    }

    /// Encodes text that contains no (recognised) added token.
    private func encodeSegment(_ segment: ArraySlice<UInt8>, into output: inout [Int]) {
        var utf8 = Array(segment)
        var string = String(decoding: utf8, as: UTF8.self)
        if storage.normalizeNFC {
            string = Normalization.nfc(string)
            utf8 = Array(string.utf8)
        }
        let scalars = Array(string.unicodeScalars)
        let ends = PreTokenizer.split(scalars, pattern: storage.splitPattern)

        var scalarIndex = 0
        var byteIndex = 0
        for end in ends {
            let pieceStart = byteIndex
            while scalarIndex < end {
                byteIndex += UTF8.width(scalars[scalarIndex])
                scalarIndex += 1
            }
            storage.bpe.encode(word: utf8[pieceStart..<byteIndex], into: &output)
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
