import Foundation

extension Tokenizer {
    /// Loads a Hugging Face `tokenizer.json`, with the optional `tokenizer_config.json` whose
    /// `added_tokens_decoder` may add tokens or override their `special` flag.
    ///
    /// Reads `model.vocab`, `model.merges` (`"a b"` strings or `["a", "b"]` pairs),
    /// `added_tokens`, `normalizer` (NFC or null) and the `pre_tokenizer`'s `Split` regex
    /// (one of `SplitPattern`'s, e.g. Qwen3.5's with `\p{M}`). Throws `TokenizerError` naming the field
    /// when something is missing or malformed, or when the file describes a tokenizer this
    /// type does not implement (another model type, normalizer or pre-tokenizer pattern).
    /// Added tokens' `lstrip`/`rstrip`/`single_word` flags are not implemented (Qwen sets none).
    public init(tokenizerJSON: Data, tokenizerConfigJSON: Data?) throws {
        let root = try JSONValue.parse(tokenizerJSON, file: "tokenizer.json")
        guard let rawModel = root["model"] else { throw TokenizerError.missingField("model") }
        guard let model = rawModel.object else { throw TokenizerError.invalidField("model", reason: "not an object") }
        if let type = model["type"], !type.isNull {
            guard let type = type.string else { throw TokenizerError.invalidField("model.type", reason: "not a string") }
            guard type == "BPE" else { throw TokenizerError.unsupported(field: "model.type", value: type) }
        }
        if model["ignore_merges"]?.bool == true {
            throw TokenizerError.unsupported(field: "model.ignore_merges", value: "true")
        }
        if model["byte_fallback"]?.bool == true {
            throw TokenizerError.unsupported(field: "model.byte_fallback", value: "true")
        }

        // model.vocab
        guard let rawVocab = model["vocab"] else { throw TokenizerError.missingField("model.vocab") }
        guard let vocabObject = rawVocab.object else {
            throw TokenizerError.invalidField("model.vocab", reason: "not an object")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = value.integer, id >= 0, id <= Int(Int32.max) else {
                throw TokenizerError.invalidField("model.vocab[\(token.debugDescription)]", reason: "not a non-negative integer id")
            }
            vocab[token] = id
        }

        // model.merges
        guard let rawMerges = model["merges"] else { throw TokenizerError.missingField("model.merges") }
        guard let mergeList = rawMerges.array else {
            throw TokenizerError.invalidField("model.merges", reason: "not an array")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeList.count)
        for (index, entry) in mergeList.enumerated() {
            if let string = entry.string, let pair = Self.splitMerge(string) {
                merges.append(pair)
            } else if let array = entry.array, array.count == 2,
                      let left = array[0].string, let right = array[1].string {
                merges.append((left, right))
            } else {
                throw TokenizerError.invalidField("model.merges[\(index)]", reason: "expected \"a b\" or [\"a\", \"b\"]")
            }
        }

        // added_tokens
        var addedTokens: [AddedToken] = []
        if let rawAdded = root["added_tokens"], !rawAdded.isNull {
            guard let list = rawAdded.array else {
                throw TokenizerError.invalidField("added_tokens", reason: "not an array")
            }
            for (index, entry) in list.enumerated() {
                addedTokens.append(try Self.addedToken(entry, id: nil, field: "added_tokens[\(index)]"))
            }
        }

        // tokenizer_config.json: added_tokens_decoder adds tokens or overrides them by id.
        if let configData = tokenizerConfigJSON {
            let config = try JSONValue.parse(configData, file: "tokenizer_config.json")
            if let rawDecoder = config["added_tokens_decoder"], !rawDecoder.isNull {
                guard let decoder = rawDecoder.object else {
                    throw TokenizerError.invalidField("added_tokens_decoder", reason: "not an object")
                }
                var entries: [(id: Int, value: JSONValue, field: String)] = []
                for (key, value) in decoder {
                    let field = "added_tokens_decoder[\(key.debugDescription)]"
                    guard let id = Int(key), id >= 0, id <= Int(Int32.max) else {
                        throw TokenizerError.invalidField(field, reason: "key is not a token id")
                    }
                    entries.append((id, value, field))
                }
                // Sorted so that the result does not depend on dictionary order.
                for entry in entries.sorted(by: { $0.id < $1.id }) {
                    let token = try Self.addedToken(entry.value, id: entry.id, field: entry.field)
                    if let existing = addedTokens.firstIndex(where: { $0.id == entry.id }) {
                        addedTokens[existing] = token
                    } else {
                        addedTokens.append(token)
                    }
                }
            }
        }

        // normalizer
        let normalizeNFC = try Self.parseNormalizer(root["normalizer"], field: "normalizer")

        // pre_tokenizer: only the Qwen splits are implemented; refuse anything else rather than
        // silently producing different ids.
        var patterns: [String] = []
        Self.collectSplitPatterns(root["pre_tokenizer"], into: &patterns)
        guard let firstPattern = patterns.first else {
            throw TokenizerError.unsupported(field: "pre_tokenizer", value: "no Split with a Qwen regex")
        }
        guard let splitPattern = SplitPattern.allCases.first(where: { $0.regex == firstPattern }) else {
            throw TokenizerError.unsupported(field: "pre_tokenizer.pattern", value: firstPattern)
        }
        for pattern in patterns where pattern != firstPattern {
            throw TokenizerError.unsupported(field: "pre_tokenizer.pattern", value: pattern)
        }

        try self.init(vocab: vocab, vocabField: "model.vocab", merges: merges, mergesField: "model.merges",
                      addedTokens: addedTokens, normalizeNFC: normalizeNFC, splitPattern: splitPattern)
    }

    /// Builds the tokenizer from GGUF metadata arrays (`tokenizer.ggml.*`, with
    /// `tokenizer.ggml.model == "gpt2"`; `splitPattern` is chosen by `tokenizer.ggml.pre`).
    ///
    /// Token types, chosen to reproduce the reference built from the same GGUF:
    /// - 3 CONTROL → special added token (`<|im_start|>`, `<|endoftext|>`, `<|fim_prefix|>`, …);
    /// - 4 USER_DEFINED → non-special added token (`<tool_call>`, `</tool_call>`);
    /// - everything else (1 NORMAL, 2 UNKNOWN, 5 UNUSED such as `[PAD151665]`, 6 BYTE) is an
    ///   ordinary vocabulary entry: never matched in text, decoded as its text. No merge
    ///   makes an UNUSED placeholder, so encoding never produces one.
    /// With `tokenTypes == nil` there are no added tokens.
    ///
    /// - Parameter normalizeNFC: apply NFC before splitting, as Qwen's own `tokenizer.json`
    ///   and the fixture reference do (a GGUF carries no normalizer; llama.cpp skips it).
    /// - Parameter splitPattern: the pre-tokenizer regex.
    public init(ggufTokens: [String], merges: [String], tokenTypes: [Int32]?, normalizeNFC: Bool = true,
                splitPattern: SplitPattern = .qwen2) throws {
        guard !ggufTokens.isEmpty else {
            throw TokenizerError.invalidField("tokenizer.ggml.tokens", reason: "empty")
        }
        guard ggufTokens.count <= Int(Int32.max) else {
            throw TokenizerError.invalidField("tokenizer.ggml.tokens", reason: "too many tokens")
        }
        if let tokenTypes, tokenTypes.count != ggufTokens.count {
            throw TokenizerError.lengthMismatch(field: "tokenizer.ggml.token_type",
                                                expected: ggufTokens.count, actual: tokenTypes.count)
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(ggufTokens.count)
        var addedTokens: [AddedToken] = []
        for (id, token) in ggufTokens.enumerated() {
            // A repeated string maps to its last id, like the reference's `{token: id}` dict.
            vocab[token] = id
            switch tokenTypes?[id] {
            case 3: addedTokens.append(AddedToken(id: id, content: token, special: true))
            case 4: addedTokens.append(AddedToken(id: id, content: token, special: false))
            default: break
            }
        }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            guard let pair = Self.splitMerge(merge) else {
                throw TokenizerError.invalidField("tokenizer.ggml.merges[\(index)]", reason: "expected \"a b\"")
            }
            pairs.append(pair)
        }
        try self.init(vocab: vocab, vocabField: "tokenizer.ggml.tokens", merges: pairs, mergesField: "tokenizer.ggml.merges",
                      addedTokens: addedTokens, normalizeNFC: normalizeNFC, splitPattern: splitPattern)
    }

    // MARK: - Helpers

    /// Splits `"a b"` into its two tokens. Byte-level tokens never contain a space (it is `Ġ`).
    private static func splitMerge(_ merge: String) -> (String, String)? {
        let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    private static func addedToken(_ entry: JSONValue, id fixedID: Int?, field: String) throws -> AddedToken {
        guard let object = entry.object else {
            throw TokenizerError.invalidField(field, reason: "not an object")
        }
        let id: Int
        if let fixedID {
            id = fixedID
        } else {
            guard let rawID = object["id"] else { throw TokenizerError.missingField("\(field).id") }
            guard let value = rawID.integer, value >= 0, value <= Int(Int32.max) else {
                throw TokenizerError.invalidField("\(field).id", reason: "not a non-negative integer")
            }
            id = value
        }
        guard let rawContent = object["content"] else { throw TokenizerError.missingField("\(field).content") }
        guard let content = rawContent.string, !content.isEmpty else {
            throw TokenizerError.invalidField("\(field).content", reason: "not a non-empty string")
        }
        var special = false
        if let rawSpecial = object["special"], !rawSpecial.isNull {
            guard let flag = rawSpecial.bool else {
                throw TokenizerError.invalidField("\(field).special", reason: "not a boolean")
            }
            special = flag
        }
        return AddedToken(id: id, content: content, special: special)
    }

    /// true for NFC (alone or inside a Sequence), false for null / absent.
    private static func parseNormalizer(_ value: JSONValue?, field: String) throws -> Bool {
        guard let value, !value.isNull else { return false }
        guard let object = value.object, let type = object["type"]?.string else {
            throw TokenizerError.invalidField(field, reason: "expected an object with a `type`")
        }
        switch type {
        case "NFC":
            return true
        case "Sequence":
            guard let list = object["normalizers"]?.array else {
                throw TokenizerError.missingField("\(field).normalizers")
            }
            var nfc = false
            for (index, item) in list.enumerated() {
                nfc = try parseNormalizer(item, field: "\(field).normalizers[\(index)]") || nfc
            }
            return nfc
        default:
            throw TokenizerError.unsupported(field: "\(field).type", value: type)
        }
    }

    /// Gathers the regex of every `Split` pre-tokenizer, descending into `Sequence`s.
    private static func collectSplitPatterns(_ value: JSONValue?, into patterns: inout [String]) {
        guard let object = value?.object else { return }
        if let list = object["pretokenizers"]?.array {
            for item in list { collectSplitPatterns(item, into: &patterns) }
        }
        if object["type"]?.string == "Split", let regex = object["pattern"]?.object?["Regex"]?.string {
            patterns.append(regex)
        }
    }
}
