import Foundation
import QwenTokenizer

/// A model ready to use: the transformer, its tokenizer, its chat template and the ids that end a turn.
public final class LanguageModel: Sendable {
    public let transformer: Transformer
    /// The tokenizer; nil for a model directory without tokenizer files, which still runs on
    /// token ids (see ``requireTokenizer()``).
    public let tokenizer: Tokenizer?
    /// The Jinja chat template stored with the model, if any.
    public let chatTemplate: String?
    /// The template, parsed once; the error if it does not parse (reported when it is first used).
    private let parsedTemplate: Result<ChatTemplateRenderer, Error>
    /// Ids that end generation: `<|im_end|>`, `<|endoftext|>` and the model's EOS ids.
    public let stopTokenIDs: Set<Int>
    /// Sampling defaults from `generation_config.json`; empty for a GGUF file.
    public let generationDefaults: GenerationDefaults
    public let path: String

    /// Loads a GGUF model file or a Hugging Face model directory (`config.json`,
    /// `model.safetensors` or its shards, and optionally `tokenizer.json`,
    /// `tokenizer_config.json`, `generation_config.json`, `chat_template.jinja`).
    public convenience init(path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            try self.init(directory: path)
            return
        }
        let gguf = try GGUFFile(path: path)
        let transformer = try Transformer(gguf: gguf)
        let tokenizer = try Self.tokenizer(gguf: gguf)
        var stops = Set(["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer.id(of: $0) })
        if let eos = gguf["tokenizer.ggml.eos_token_id"]?.integer, eos < transformer.config.vocabularySize {
            stops.insert(eos)
        }
        self.init(transformer: transformer, tokenizer: tokenizer, chatTemplate: gguf["tokenizer.chat_template"]?.string,
                  stopTokenIDs: stops, generationDefaults: GenerationDefaults(), path: path)
    }

    private init(transformer: Transformer, tokenizer: Tokenizer?, chatTemplate: String?, stopTokenIDs: Set<Int>,
                 generationDefaults: GenerationDefaults, path: String) {
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        parsedTemplate = Result { try ChatTemplateRenderer(template: chatTemplate ?? Self.chatMLTemplate) }
        self.stopTokenIDs = stopTokenIDs
        self.generationDefaults = generationDefaults
        self.path = path
    }

    private convenience init(directory: String) throws {
        let folder = URL(fileURLWithPath: directory, isDirectory: true)
        func file(_ name: String) -> String? {
            let path = folder.appendingPathComponent(name).path
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        guard let configPath = file("config.json") else {
            throw ModelFileError.cannotOpen(path: folder.appendingPathComponent("config.json").path,
                                            reason: "a Hugging Face model directory needs a config.json")
        }
        let configFile = try JSONFile(path: configPath)
        let config = try ModelConfig(huggingFace: configFile)
        let transformer = try Transformer(safetensors: SafetensorsCheckpoint(directory: directory), config: config)

        var tokenizerConfig: JSONFile?
        let tokenizer: Tokenizer?
        if let tokenizerPath = file("tokenizer.json") {
            let configData = try file("tokenizer_config.json").map { path throws(ModelFileError) in Data(try readModelFile(path)) }
            tokenizer = try Tokenizer(tokenizerJSON: Data(try readModelFile(tokenizerPath)),
                                      tokenizerConfigJSON: configData)
            if let tokenizer, tokenizer.vocabularySize > config.vocabularySize {
                throw configFile.invalid("vocab_size", "\(config.vocabularySize) embedding rows, but the tokenizer has "
                                         + "\(tokenizer.vocabularySize) ids")
            }
            tokenizerConfig = try file("tokenizer_config.json").map { path throws(ModelFileError) in try JSONFile(path: path) }
        } else {
            tokenizer = nil
        }

        // The template: tokenizer_config.json's chat_template (a string, or a list of named
        // templates of which "default" is used), else chat_template.jinja.
        var template: String?
        if let tokenizerConfig, let value = tokenizerConfig.value("chat_template", in: tokenizerConfig.root) {
            if let string = value.stringValue {
                template = string
            } else if let list = value.arrayValue {
                template = list.first { $0["name"]?.stringValue == "default" }?["template"]?.stringValue
            } else {
                throw tokenizerConfig.invalid("chat_template", "expected a string or a list of named templates")
            }
        }
        if template == nil, let jinja = file("chat_template.jinja") {
            template = String(decoding: try readModelFile(jinja, limit: 16 << 20), as: UTF8.self)
        }

        var eos = try configFile.integers("eos_token_id", in: configFile.root)
        var defaults = GenerationDefaults()
        if let generationPath = file("generation_config.json") {
            let generation = try JSONFile(path: generationPath)
            defaults = try GenerationDefaults(file: generation)
            eos += try generation.integers("eos_token_id", in: generation.root)
        }
        var stops = Set(eos.filter { $0 >= 0 && $0 < config.vocabularySize })
        if let tokenizer {
            stops.formUnion(["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer.id(of: $0) })
        }
        self.init(transformer: transformer, tokenizer: tokenizer, chatTemplate: template, stopTokenIDs: stops,
                  generationDefaults: defaults, path: directory)
    }

    /// The tokenizer, or ``LanguageModelError/noTokenizer`` when the model has none.
    /// The parsed chat template; throws the template's syntax error.
    public func chatTemplateRenderer() throws -> ChatTemplateRenderer {
        try parsedTemplate.get()
    }

    public func requireTokenizer() throws(LanguageModelError) -> Tokenizer {
        guard let tokenizer else { throw .noTokenizer(path: path) }
        return tokenizer
    }

    /// Builds the byte-level BPE tokenizer from the `tokenizer.ggml.*` keys. `tokenizer.ggml.pre`
    /// picks the split regex: `qwen35` the Qwen3.5 one, anything else (or none) Qwen2's.
    /// Internal so that tests can check it without loading the model.
    static func tokenizer(gguf: GGUFFile) throws -> Tokenizer {
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
        let splitPattern = gguf["tokenizer.ggml.pre"]?.string.flatMap(Tokenizer.SplitPattern.init(rawValue:)) ?? .qwen2
        return try Tokenizer(ggufTokens: try strings("tokenizer.ggml.tokens"),
                             merges: try strings("tokenizer.ggml.merges"), tokenTypes: types, splitPattern: splitPattern)
    }
}

/// Why a loaded model cannot do what was asked.
public enum LanguageModelError: Error, Equatable, CustomStringConvertible {
    /// Text was needed, but the model directory has no `tokenizer.json`.
    case noTokenizer(path: String)

    public var description: String {
        switch self {
        case let .noTokenizer(path):
            "this model has no tokenizer ('\(path)' lacks tokenizer.json); it can only work on token ids (e.g. qwenkit score --ids)"
        }
    }
}
