import Foundation
import QwenKit
import QwenTokenizer

/// The fuzz targets: each takes any bytes and must end in a value or a thrown error — never a
/// trap, a sanitizer report, a hang or a huge allocation. Where the API promises more (a parse
/// that round-trips, a stream that adds up to the whole), the target checks it and traps if not.
///
/// Seeds live in `Tests/fuzz/corpus/<target>/`, inputs that once crashed in `Tests/fuzz/crashes/<target>/`.
enum FuzzTarget: String, CaseIterable {
    /// A GGUF file, loaded as a model: header, metadata, tensors, config, weights, tokenizer, template.
    case gguf
    /// A Hugging Face model directory: `config.json`, `model.safetensors` and `generation_config.json`,
    /// one after another in the input, each ended by ``FuzzInput/fileSeparator``.
    case safetensors
    /// Text for the real Qwen2.5 tokenizer (first byte: options), or a whole `tokenizer.json`.
    case tokenizer
    /// A chat template, rendered over a fixed conversation with tools.
    case jinja
    /// A conversation (messages and tools, as a client sends them) rendered by the real Qwen templates.
    case chat
    /// A JSON document: parsed, written out and parsed again, to the same value.
    case json
    /// A JSON schema, compiled and stepped through byte by byte as the decoding constraint.
    case schema
    /// Model output with tool calls, JSON or XML (first byte: options), parsed whole and streamed.
    case toolcall

    /// The target named by `QWENKIT_FUZZ_TARGET` (libFuzzer passes no argument for it).
    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["QWENKIT_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("qwenkit-fuzz: set QWENKIT_FUZZ_TARGET to one of \(names)\n".utf8))
            exit(2)
        }
        return target
    }()

    /// Loads what the target shares between inputs.
    func prepare() {
        switch self {
        case .tokenizer: _ = qwenTokenizer
        case .schema: _ = byteTokenizer
        case .chat: _ = qwenTemplates
        default: break
        }
    }

    func run(_ data: Data) {
        switch self {
        case .gguf: fuzzGGUF(data)
        case .safetensors: fuzzSafetensors(data)
        case .tokenizer: fuzzTokenizer(data)
        case .jinja: fuzzJinja(data)
        case .chat: fuzzChat(data)
        case .json: fuzzJSON(data)
        case .schema: fuzzSchema(data)
        case .toolcall: fuzzToolCall(data)
        }
    }
}

/// Helpers for splitting one fuzz input into several.
enum FuzzInput {
    /// Ends each file of a multi-file input (the `safetensors` and `schema` targets).
    static let fileSeparator = Array("\n#qwenkit-fuzz-next-file#\n".utf8)

    /// `data` cut at each separator.
    static func split(_ data: Data, count: Int) -> [Data] {
        var parts: [Data] = []
        var rest = data[...]
        while parts.count < count - 1, let range = rest.firstRange(of: fileSeparator) {
            parts.append(Data(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(Data(rest))
        return parts
    }

    /// A folder of this process, for the targets whose API reads files; emptied file by file.
    static let scratch: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("qwenkit-fuzz-\(ProcessInfo.processInfo.processIdentifier)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Where the fixtures are: `$QWENKIT_FIXTURES`, else `../shared/fixtures` beside the repository.
    static let fixtures: URL = {
        if let path = ProcessInfo.processInfo.environment["QWENKIT_FIXTURES"] {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return repository.deletingLastPathComponent().appendingPathComponent("shared/fixtures", isDirectory: true)
    }()

    /// Whether to report each thrown error on stderr (QWENKIT_FUZZ_VERBOSE=1), to check that seeds get far.
    static let verbose = ProcessInfo.processInfo.environment["QWENKIT_FUZZ_VERBOSE"] == "1"

    /// `body`'s value, or nil if it throws (the expected end for most inputs).
    static func attempt<T>(_ body: () throws -> T) -> T? {
        do {
            return try body()
        } catch {
            if verbose { FileHandle.standardError.write(Data("qwenkit-fuzz: \(error)\n".utf8)) }
            return nil
        }
    }

    static func write(_ data: Data, to name: String) -> String {
        let url = scratch.appendingPathComponent(name)
        do {
            try data.write(to: url)
        } catch {
            fatalError("qwenkit-fuzz: cannot write \(url.path): \(error)")
        }
        return url.path
    }
}

// MARK: Model files

func fuzzGGUF(_ data: Data) {
    let path = FuzzInput.write(data, to: "model.gguf")
    guard let model = FuzzInput.attempt({ try LanguageModel(path: path) }) else { return }
    _ = FuzzInput.attempt { try model.chatTemplateRenderer() }
}

func fuzzSafetensors(_ data: Data) {
    let parts = FuzzInput.split(data, count: 3)
    let names = ["config.json", "model.safetensors", "generation_config.json"]
    for (index, name) in names.enumerated() {
        let path = FuzzInput.scratch.appendingPathComponent(name).path
        if index < parts.count {
            _ = FuzzInput.write(parts[index], to: name)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
    _ = FuzzInput.attempt { try LanguageModel(path: FuzzInput.scratch.path) }
}

// MARK: Tokenizer

/// The real Qwen2.5 tokenizer, read once from the fixtures.
let qwenTokenizer: Tokenizer = {
    let folder = FuzzInput.fixtures.appendingPathComponent("qwen2.5-tokenizer")
    do {
        return try Tokenizer(tokenizerJSON: Data(contentsOf: folder.appendingPathComponent("tokenizer.json")),
                             tokenizerConfigJSON: Data(contentsOf: folder.appendingPathComponent("tokenizer_config.json")))
    } catch {
        fatalError("qwenkit-fuzz: cannot load the Qwen2.5 tokenizer from \(folder.path) (set QWENKIT_FIXTURES): \(error)")
    }
}()

/// First byte: 0–63 encodes the rest as text (which must decode back to itself when in NFC),
/// 64–127 the same with special tokens split,
/// 128–191 decodes the rest read as little-endian u32 ids, 192–255 loads the rest as a `tokenizer.json`.
func fuzzTokenizer(_ data: Data) {
    guard let mode = data.first else { return }
    let rest = data.dropFirst()
    switch mode >> 6 {
    case 0, 1:
        let text = String(decoding: rest, as: UTF8.self)
        let ids = qwenTokenizer.encode(text, splitSpecialTokens: mode >> 6 == 1)
        for id in ids where id < 0 || id >= qwenTokenizer.vocabularySize {
            fatalError("encode produced id \(id) outside the vocabulary of \(qwenTokenizer.vocabularySize)")
        }
        // Byte-level BPE loses nothing: text already in NFC (the normalizer's form) comes back whole.
        let decoded = qwenTokenizer.decode(ids)
        if text == text.precomposedStringWithCanonicalMapping, decoded != text {
            fatalError("decode(encode(text)) != text for NFC text \(String(reflecting: text.prefix(200)))")
        }
    case 2:
        var ids: [Int] = []
        var index = rest.startIndex
        while rest.distance(from: index, to: rest.endIndex) >= 4 {
            var id = 0
            for shift in 0..<4 { id |= Int(rest[rest.index(index, offsetBy: shift)]) << (8 * shift) }
            ids.append(Int(Int32(truncatingIfNeeded: id)))
            index = rest.index(index, offsetBy: 4)
        }
        _ = qwenTokenizer.decode(ids)
        _ = qwenTokenizer.decode(ids, skipSpecialTokens: true)
    default:
        guard let tokenizer = FuzzInput.attempt({ try Tokenizer(tokenizerJSON: Data(rest), tokenizerConfigJSON: nil) })
        else { return }
        let ids = tokenizer.encode("Hello world! 123 <|im_end|> ไทย 😀\n\n  x", splitSpecialTokens: false)
        _ = tokenizer.decode(ids)
    }
}

// MARK: Chat templates

/// A conversation that reaches most template branches: system prompt, tools, a tool call, its answer.
let fuzzConversation: [ChatMessage] = [
    .system("You are a helpful assistant."),
    .user("What is the weather in Paris?"),
    .assistant("", toolCalls: [ToolCall(id: "call_1", name: "get_weather", arguments: ["city": "Paris", "days": 2])]),
    .tool("{\"temperature\": 21}", toolCallID: "call_1", name: "get_weather"),
    .assistant("<think>\nIt is warm.\n</think>\n\nIt is 21 °C in Paris."),
    .user("Thanks! And in 東京?"),
]

let fuzzTools: [JSONValue] = [
    ["type": "function", "function": [
        "name": "get_weather", "description": "Get the weather",
        "parameters": ["type": "object", "properties": [
            "city": ["type": "string", "description": "The city"],
            "days": ["type": "integer"],
        ], "required": ["city"]],
    ]],
]

func fuzzJinja(_ data: Data) {
    let source = String(decoding: data, as: UTF8.self)
    guard let renderer = FuzzInput.attempt({ try ChatTemplateRenderer(template: source) }) else { return }
    _ = FuzzInput.attempt { try renderer.render(messages: fuzzConversation, tools: fuzzTools, addGenerationPrompt: true,
                             extraContext: ["bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
                                            "enable_thinking": false]) }
}

/// The Qwen2.5, Qwen3 and Qwen3.5 chat templates from the fixtures, parsed once.
let qwenTemplates: [ChatTemplateRenderer] = ["qwen2.5", "qwen3", "qwen3.5"].map { name in
    let url = FuzzInput.fixtures.appendingPathComponent("templates/\(name).jinja")
    do {
        return try ChatTemplateRenderer(template: String(decoding: Data(contentsOf: url), as: UTF8.self))
    } catch {
        fatalError("qwenkit-fuzz: cannot load \(url.path) (set QWENKIT_FIXTURES): \(error)")
    }
}

/// First byte: template (mod 3), bit 2 add_generation_prompt, bits 3–4 enable_thinking
/// (unset, false, true). The rest: `{"messages": [...], "tools": [...]}` as a client sends it.
func fuzzChat(_ data: Data) {
    guard let options = data.first,
          let request = FuzzInput.attempt({ try JSONValue.parse(data.dropFirst(), maxDepth: 64) }),
          let messages = request["messages"]?.arrayValue else { return }
    var extra: [String: JSONValue] = [:]
    switch (options >> 3) & 3 {
    case 1: extra["enable_thinking"] = false
    case 2: extra["enable_thinking"] = true
    default: break
    }
    let renderer = qwenTemplates[Int(options) % qwenTemplates.count]
    _ = FuzzInput.attempt {
        try renderer.render(messageObjects: messages, tools: request["tools"]?.arrayValue,
                            addGenerationPrompt: options & 4 != 0, extraContext: extra)
    }
}

// MARK: JSON

func fuzzJSON(_ data: Data) {
    guard let value = try? JSONValue.parse(data) else { return }
    let written = value.pythonJSON
    let reread: JSONValue
    do {
        reread = try JSONValue.parse(written)
    } catch {
        fatalError("JSON written by pythonJSON does not parse: \(error)\n\(written.prefix(500))")
    }
    guard reread == value else {
        fatalError("JSON does not round-trip through pythonJSON:\n\(written.prefix(500))")
    }
}

// MARK: JSON schema and constrained decoding

/// A byte-level tokenizer: one token per byte (GPT-2's byte-to-character mapping) and `<|im_end|>`.
let byteTokenizer: Tokenizer = {
    var tokens: [String] = []
    for byte in 0..<256 {
        let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
        var shifted = 256
        if !printable {
            shifted += (0..<byte).filter { !((33...126).contains($0) || (161...172).contains($0) || (174...255).contains($0)) }.count
        }
        tokens.append(String(Character(Unicode.Scalar(UInt32(printable ? byte : shifted)) ?? " ")))
    }
    tokens.append("<|im_end|>")
    do {
        return try Tokenizer(ggufTokens: tokens, merges: [], tokenTypes: Array(repeating: 1, count: 256) + [3])
    } catch {
        fatalError("qwenkit-fuzz: byte tokenizer: \(error)")
    }
}()

/// Input: a JSON schema, ``FuzzInput/fileSeparator``, then bytes that choose among the allowed
/// next tokens, one byte a step. The schema is compiled with the server's limits and used as a
/// response format (first byte of the choices even) or as the parameters of a tool in JSON or XML form.
func fuzzSchema(_ data: Data) {
    let parts = FuzzInput.split(data, count: 2)
    guard let schema = FuzzInput.attempt({ try JSONValue.parse(parts[0], maxDepth: 64) }),
          let compiled = FuzzInput.attempt({ try CompiledJSONSchema(schema) }) else { return }
    let choices = parts.count > 1 ? Array(parts[1].prefix(100)) : []
    let mode = choices.first ?? 0
    switch mode % 3 {
    case 0: stepConstraint(JSONConstraint(tokenizer: byteTokenizer, compiled: compiled), choices)
    case 1: stepConstraint(JSONConstraint(tokenizer: byteTokenizer, compiledToolCalls: [("f", compiled)]), choices)
    default: stepConstraint(XMLToolCallConstraint(tokenizer: byteTokenizer, toolCalls: [("f", schema)],
                                                  startsInReasoning: mode & 4 != 0), choices)
    }
}

func stepConstraint(_ constraint: some TokenConstraint, _ choices: [UInt8]) {
    var constraint = constraint
    let vocabulary = byteTokenizer.vocabularySize
    for choice in choices.dropFirst() {
        // The first allowed token from the one the byte names (every token is tried before giving up).
        guard let id = (0..<vocabulary).lazy.map({ (Int(choice) + $0) % vocabulary }).first(where: constraint.allows)
        else { return }
        constraint.accept(id)
    }
    _ = constraint.isComplete
}

// MARK: Tool calls

/// First byte: bit 0 XML (else JSON), bit 1 the prompt opened `<think>`, bit 2 tools known only by
/// name, bits 3–5 the size of the streamed pieces (1–8 scalars). The rest is the model's text.
func fuzzToolCall(_ data: Data) {
    guard let options = data.first else { return }
    let text = String(decoding: data.dropFirst(), as: UTF8.self)
    let format: ToolCallFormat = options & 1 != 0 ? .xml : .json
    let startsInReasoning = options & 2 != 0
    let tools = options & 4 != 0 ? OfferedTools(names: ["get_weather", "search"]) : OfferedTools(definitions: fuzzTools)
    let whole = AssistantOutput.parse(text, tools: tools, format: format, startsInReasoning: startsInReasoning)

    // Streamed in pieces, the events add up to the whole parse.
    var parser = AssistantStreamParser(tools: tools, format: format, startsInReasoning: startsInReasoning)
    let size = Int((options >> 3) & 7) + 1
    var reasoning = ""
    var content = ""
    func collect(_ events: [AssistantStreamParser.Event]) {
        for event in events {
            switch event {
            case let .reasoning(piece): reasoning += piece
            case let .content(piece): content += piece
            case .toolCall, .toolCallArguments: break
            }
        }
    }
    var scalars = text.unicodeScalars[...]
    while !scalars.isEmpty {
        var piece = String.UnicodeScalarView()
        piece.append(contentsOf: scalars.prefix(size))
        scalars = scalars.dropFirst(size)
        collect(parser.feed(String(piece)))
    }
    let (events, calls) = parser.finish()
    collect(events)
    guard reasoning == (whole.reasoning ?? ""), content == (whole.content ?? ""), calls == whole.toolCalls else {
        fatalError("""
            streamed parse differs from the whole parse
            whole: reasoning \(String(reflecting: whole.reasoning)) content \(String(reflecting: whole.content)) calls \(whole.toolCalls)
            streamed: reasoning \(String(reflecting: reasoning)) content \(String(reflecting: content)) calls \(calls)
            """)
    }
}
