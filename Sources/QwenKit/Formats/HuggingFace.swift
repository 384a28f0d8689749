import Foundation

/// A JSON file of a Hugging Face model directory, with typed accessors that throw a
/// ``ModelFileError`` naming the file and the field.
struct JSONFile {
    let path: String
    let root: JSONValue

    init(path: String) throws(ModelFileError) {
        self.path = path
        let data = Data(try readModelFile(path))
        do {
            root = try JSONValue.parse(data, maxDepth: 64)
        } catch {
            throw .invalidFile(path: path, field: "(document)", reason: "not valid JSON: \(error)")
        }
        guard root.objectValue != nil else {
            throw .invalidFile(path: path, field: "(document)", reason: "not a JSON object")
        }
    }

    func invalid(_ field: String, _ reason: String) -> ModelFileError {
        .invalidFile(path: path, field: field, reason: reason)
    }

    /// `object[key]`, treating JSON `null` as absent.
    func value(_ key: String, in object: JSONValue) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    func object(_ key: String, in object: JSONValue) throws(ModelFileError) -> [(String, JSONValue)] {
        guard let value = value(key, in: object) else { throw invalid(key, "missing") }
        guard let members = value.objectValue else { throw invalid(key, "expected an object") }
        return members
    }

    func integer(_ key: String, in object: JSONValue, range: ClosedRange<Int>, default fallback: Int? = nil,
                 field: String? = nil) throws(ModelFileError) -> Int {
        guard let value = value(key, in: object) else {
            if let fallback { return fallback }
            throw invalid(field ?? key, "missing")
        }
        guard let int = value.intValue, range.contains(int) else {
            throw invalid(field ?? key, "expected an integer in \(range)")
        }
        return int
    }

    func number(_ key: String, in object: JSONValue, default fallback: Double? = nil,
                field: String? = nil) throws(ModelFileError) -> Double {
        guard let value = value(key, in: object) else {
            if let fallback { return fallback }
            throw invalid(field ?? key, "missing")
        }
        guard let number = value.doubleValue, number.isFinite, number > 0 else {
            throw invalid(field ?? key, "expected a positive number")
        }
        return number
    }

    func bool(_ key: String, in object: JSONValue, default fallback: Bool) throws(ModelFileError) -> Bool {
        guard let value = value(key, in: object) else { return fallback }
        guard let bool = value.boolValue else { throw invalid(key, "expected true or false") }
        return bool
    }

    func string(_ key: String, in object: JSONValue) throws(ModelFileError) -> String? {
        guard let value = value(key, in: object) else { return nil }
        guard let string = value.stringValue else { throw invalid(key, "expected a string") }
        return string
    }

    /// An integer or a list of integers (`eos_token_id` takes both forms).
    func integers(_ key: String, in object: JSONValue) throws(ModelFileError) -> [Int] {
        guard let value = value(key, in: object) else { return [] }
        if let int = value.intValue { return [int] }
        guard let array = value.arrayValue else { throw invalid(key, "expected an integer or a list of integers") }
        var result: [Int] = []
        for element in array {
            guard let int = element.intValue else { throw invalid(key, "expected a list of integers") }
            result.append(int)
        }
        return result
    }
}

extension ModelConfig {
    /// Reads a Hugging Face `config.json`, checking each value is sane before it sizes anything.
    init(huggingFace file: JSONFile) throws(ModelFileError) {
        // The family: the first `architectures` class, else `model_type`.
        var className: String?
        if let names = file.value("architectures", in: file.root) {
            guard let list = names.arrayValue, let first = list.first?.stringValue else {
                throw file.invalid("architectures", "expected a list of class names")
            }
            className = first
        }
        let modelType = try file.string("model_type", in: file.root)
        guard let family = ModelFamily.huggingFace(className: className, modelType: modelType) else {
            guard let name = className ?? modelType else { throw file.invalid("architectures", "missing") }
            throw .unsupportedArchitecture(name)
        }
        let hybrid = family.hybrid
        // Qwen3.5 releases are multimodal: the text model's fields sit in `text_config`
        // (fine-tunes may write them flat, at the top level).
        var root = file.root
        if hybrid, let text = file.value("text_config", in: file.root) {
            guard text.objectValue != nil else { throw file.invalid("text_config", "expected an object") }
            root = text
        }
        func integer(_ key: String, _ range: ClosedRange<Int>, default fallback: Int? = nil) throws(ModelFileError) -> Int {
            try file.integer(key, in: root, range: range, default: fallback)
        }

        if let activation = try file.string("hidden_act", in: root), activation != "silu" {
            throw file.invalid("hidden_act", "'\(activation)' is not supported (silu)")
        }
        if try file.bool("use_sliding_window", in: root, default: false) {
            throw file.invalid("use_sliding_window", "sliding-window attention is not supported")
        }

        self.family = family
        layerCount = try integer("num_hidden_layers", 1...1024)
        hiddenSize = try integer("hidden_size", 1...65536)
        // A Qwen3.5 mixture-of-experts config has no dense width.
        feedForwardSize = hybrid && family.experts && file.value("intermediate_size", in: root) == nil
            ? 0 : try integer("intermediate_size", 1...1 << 20)
        headCount = try integer("num_attention_heads", 1...1024)
        kvHeadCount = try integer("num_key_value_heads", 1...headCount, default: headCount)
        guard headCount % kvHeadCount == 0 else {
            throw file.invalid("num_key_value_heads", "\(kvHeadCount) does not divide num_attention_heads \(headCount)")
        }
        if file.value("head_dim", in: root) != nil {
            headDim = try integer("head_dim", 2...4096)
        } else {
            guard hiddenSize % headCount == 0 else {
                throw file.invalid("hidden_size", "not a multiple of num_attention_heads and no head_dim given")
            }
            headDim = hiddenSize / headCount
        }
        guard headDim % 2 == 0 else { throw file.invalid("head_dim", "head size \(headDim) must be even for RoPE") }
        rmsNormEpsilon = Float(try file.number("rms_norm_eps", in: root, default: 1e-6))
        trainedContextLength = try integer("max_position_embeddings", 1...1 << 24)
        vocabularySize = try integer("vocab_size", 1...1 << 24)
        hasQueryKeyNorm = family.queryKeyNorm
        tieWordEmbeddings = try file.bool("tie_word_embeddings", in: root,
                                          default: try file.bool("tie_word_embeddings", in: file.root, default: false))
        attentionOutputGate = hybrid ? try file.bool("attn_output_gate", in: root, default: true) : false

        // RoPE: transformers ≤ 4 writes `rope_theta` and `rope_scaling`; transformers 5 writes
        // `rope_parameters` holding both.
        let parameters = file.value("rope_parameters", in: root)
        if let parameters, parameters.objectValue == nil { throw file.invalid("rope_parameters", "expected an object") }
        if file.value("rope_theta", in: root) != nil {
            ropeTheta = Float(try file.number("rope_theta", in: root))
        } else if let parameters, file.value("rope_theta", in: parameters) != nil {
            ropeTheta = Float(try file.number("rope_theta", in: parameters, field: "rope_parameters.rope_theta"))
        } else {
            ropeTheta = 10_000
        }
        var scalingField = "rope_scaling"
        var scaling = file.value("rope_scaling", in: root)
        if scaling == nil, let parameters {
            scaling = parameters
            scalingField = "rope_parameters"
        }
        ropeScaling = nil
        if let scaling {
            guard scaling.objectValue != nil else { throw file.invalid(scalingField, "expected an object") }
            let typeKey = file.value("rope_type", in: scaling) != nil ? "rope_type" : "type"
            let type = try file.string(typeKey, in: scaling) ?? "default"
            switch type {
            case "default":
                break
            case "yarn":
                func number(_ key: String) throws(ModelFileError) -> Double? {
                    file.value(key, in: scaling) == nil
                        ? nil : try file.number(key, in: scaling, field: "\(scalingField).\(key)")
                }
                let original = try file.integer("original_max_position_embeddings", in: scaling, range: 1...1 << 24,
                                                field: "\(scalingField).original_max_position_embeddings")
                // transformers: a missing factor is max_position_embeddings / original.
                let factor = try number("factor") ?? Double(trainedContextLength) / Double(original)
                var yarn = YaRNScaling(factor: factor, originalContextLength: original)
                yarn.betaFast = try number("beta_fast") ?? 32
                yarn.betaSlow = try number("beta_slow") ?? 1
                yarn.truncate = try file.bool("truncate", in: scaling, default: true)
                if let attention = try number("attention_factor") {
                    yarn.attentionFactor = attention
                } else if let mscale = try number("mscale"), let mscaleAllDim = try number("mscale_all_dim") {
                    yarn.attentionFactor = YaRNScaling.magnitudeScale(factor, mscale) / YaRNScaling.magnitudeScale(factor, mscaleAllDim)
                }
                ropeScaling = yarn
            default:
                throw file.invalid("\(scalingField).\(typeKey)", "'\(type)' is not supported (default, yarn)")
            }
        }

        // Partial RoPE (Qwen3.5): only the first `head_dim · partial_rotary_factor` dims rotate.
        var rotaryFactor = 1.0
        if let parameters, file.value("partial_rotary_factor", in: parameters) != nil {
            rotaryFactor = try file.number("partial_rotary_factor", in: parameters,
                                           field: "rope_parameters.partial_rotary_factor")
        } else if file.value("partial_rotary_factor", in: root) != nil {
            rotaryFactor = try file.number("partial_rotary_factor", in: root)
        }
        rotaryDims = Int((Double(headDim) * rotaryFactor).rounded())
        guard rotaryFactor <= 1, rotaryDims >= 2, rotaryDims % 2 == 0 else {
            throw file.invalid("partial_rotary_factor", "\(rotaryFactor) of head size \(headDim) is not an even number of dims")
        }

        experts = family.experts ? try ExpertConfig(huggingFace: file, in: root, family: family, layers: layerCount) : nil
        layerKinds = Array(repeating: .attention, count: layerCount)
        deltaNet = nil
        if hybrid {
            layerKinds = try DeltaNetConfig.layerKinds(huggingFace: file, in: root, count: layerCount)
            deltaNet = try DeltaNetConfig(huggingFace: file, in: root)
        }
    }
}

extension YaRNScaling {
    /// YaRN's `get_mscale`: `0.1 · m · ln(s) + 1`, or 1 when the scale does not stretch.
    static func magnitudeScale(_ scale: Double, _ m: Double = 1) -> Double {
        scale <= 1 ? 1 : 0.1 * m * log(scale) + 1
    }
}

/// Sampling defaults a model ships with (`generation_config.json`); nil where it says nothing.
public struct GenerationDefaults: Sendable, Equatable {
    public var temperature: Float?
    public var topP: Float?
    public var topK: Int?
    public var repetitionPenalty: Float?
    /// `do_sample`: false asks for greedy decoding.
    public var doSample: Bool?

    public init() {}

    /// Reads `generation_config.json`, returning the defaults and the EOS ids it names.
    init(file: JSONFile) throws(ModelFileError) {
        let root = file.root
        // The same ranges as the command line's flags (--temperature, --top-p, --repeat-penalty):
        // a default the user could not have typed is refused, not applied.
        func float(_ key: String, _ accepted: (Double) -> Bool, _ range: String) throws(ModelFileError) -> Float? {
            guard let value = file.value(key, in: root) else { return nil }
            guard let number = value.doubleValue, number.isFinite, accepted(number),
                  Float(number).isFinite else {
                throw file.invalid(key, "expected a number \(range)")
            }
            return Float(number)
        }
        temperature = try float("temperature", { $0 >= 0 }, "≥ 0")
        topP = try float("top_p", { $0 > 0 && $0 <= 1 }, "in (0, 1]")
        topK = file.value("top_k", in: root) == nil ? nil : try file.integer("top_k", in: root, range: 0...Int(Int32.max))
        repetitionPenalty = try float("repetition_penalty", { $0 > 0 }, "> 0")
        doSample = file.value("do_sample", in: root) == nil ? nil : try file.bool("do_sample", in: root, default: false)
    }
}
