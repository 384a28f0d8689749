import QwenTokenizer

/// A model ready to use: the transformer, its tokenizer, its chat template and the ids that end a turn.
public final class LanguageModel: Sendable {
    public let transformer: Transformer
    public let tokenizer: Tokenizer
    /// The Jinja chat template stored with the model, if any.
    public let chatTemplate: String?
    /// Ids that end generation: `<|im_end|>`, `<|endoftext|>` and the file's EOS id.
    public let stopTokenIDs: Set<Int>
    public let path: String

    /// Loads a GGUF model file.
    public init(path: String) throws {
        let gguf = try GGUFFile(path: path)
        transformer = try Transformer(gguf: gguf)
        let tokenizer = try Self.tokenizer(gguf: gguf)
        self.tokenizer = tokenizer
        chatTemplate = gguf["tokenizer.chat_template"]?.string
        var stops = Set(["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer.id(of: $0) })
        if let eos = gguf["tokenizer.ggml.eos_token_id"]?.integer, eos < transformer.config.vocabularySize {
            stops.insert(eos)
        }
        stopTokenIDs = stops
        self.path = path
    }

    /// Builds the byte-level BPE tokenizer from the `tokenizer.ggml.*` keys.
    private static func tokenizer(gguf: GGUFFile) throws -> Tokenizer {
        func strings(_ key: String) throws(ModelFileError) -> [String] {
            guard let array = gguf[key]?.array else { throw .missingMetadata(key: key) }
            var result: [String] = []
            result.reserveCapacity(array.count)
            for value in array {
                guard let s = value.string else { throw .invalid(field: key, reason: "expected an array of strings") }
                result.append(s)
            }
            return result
        }
        if let model = gguf["tokenizer.ggml.model"]?.string, model != "gpt2" {
            throw ModelFileError.invalid(field: "tokenizer.ggml.model", reason: "'\(model)' is not a byte-level BPE tokenizer (gpt2)")
        }
        var types: [Int32]?
        if let array = gguf["tokenizer.ggml.token_type"]?.array {
            types = try array.map { value throws(ModelFileError) in
                guard let t = value.integer, let t32 = Int32(exactly: t) else {
                    throw .invalid(field: "tokenizer.ggml.token_type", reason: "expected integers")
                }
                return t32
            }
        }
        return try Tokenizer(ggufTokens: try strings("tokenizer.ggml.tokens"),
                             merges: try strings("tokenizer.ggml.merges"), tokenTypes: types)
    }
}
