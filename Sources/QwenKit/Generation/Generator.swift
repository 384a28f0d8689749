import Foundation
import QwenTokenizer

/// Why generation ended, with OpenAI's names.
public enum FinishReason: String, Sendable, Codable {
    /// A stop token or stop string.
    case stop
    /// `maxTokens` or the context limit.
    case length
    case toolCalls = "tool_calls"
}

/// What to generate and when to stop.
public struct GenerationOptions: Sendable {
    public var sampling = SamplingParameters()
    /// At most this many new tokens; nil: until a stop or the context is full.
    public var maxTokens: Int?
    /// Stop strings: generation ends before the first of them and it is not returned.
    public var stop: [String] = []
    /// When set, record each generated token's log-probability and this many most likely alternatives.
    public var logprobs: Int?
    /// When set, only tokens it allows are generated (grammar-constrained decoding).
    public var constraint: (any TokenConstraint)?

    public init() {}
}

/// Wall-clock timings of one generation, in milliseconds.
public struct GenerationTimings: Sendable, Codable {
    public var promptMilliseconds: Double = 0
    public var promptTokens = 0
    public var generationMilliseconds: Double = 0
    public var generatedTokens = 0

    public var promptTokensPerSecond: Double { rate(promptTokens, promptMilliseconds) }
    public var generationTokensPerSecond: Double { rate(generatedTokens, generationMilliseconds) }

    private func rate(_ tokens: Int, _ ms: Double) -> Double { ms > 0 ? Double(tokens) * 1000 / ms : 0 }
}

/// The outcome of one generation.
public struct GenerationResult: Sendable {
    public var text: String
    public var promptTokens: [Int]
    /// Generated ids, including the stop token when one ended generation.
    public var tokens: [Int]
    public var finishReason: FinishReason
    public var timings: GenerationTimings
    /// Per generated token, when ``GenerationOptions/logprobs`` was set.
    public var logprobs: [TokenLogprob] = []
}

/// The log-probability of a generated token under the model (before sampling adjustments),
/// with the most likely alternatives at that step.
public struct TokenLogprob: Sendable {
    public var id: Int
    public var logprob: Float
    public var top: [(id: Int, logprob: Float)]
}

/// Restricts which tokens may be generated next, e.g. to keep the output valid JSON.
public protocol TokenConstraint: Sendable {
    /// Whether appending token `id` keeps the output a valid prefix.
    func allows(_ id: Int) -> Bool
    /// Records that token `id` was generated.
    mutating func accept(_ id: Int)
    /// Whether the output so far is complete, so that a stop token may end it.
    var isComplete: Bool { get }
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case promptTooLong(tokens: Int, context: Int)
    case emptyPrompt
    case tokenOutOfRange(id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case let .promptTooLong(tokens, context):
            "the prompt is \(tokens) tokens long, but the context holds \(context); shorten it or raise --context"
        case .emptyPrompt:
            "the prompt is empty"
        case let .tokenOutOfRange(id, vocabularySize):
            "token id \(id) is out of range (the vocabulary has \(vocabularySize) ids)"
        }
    }
}

/// Generates text from a model while keeping its KV cache between calls: a new prompt that
/// starts with tokens already in the cache (the previous turns of a chat) processes only the rest.
public final class Generator {
    public let model: LanguageModel
    public let state: InferenceState
    /// The tokens whose keys and values are in the cache, in order.
    public private(set) var cachedTokens: [Int] = []
    /// Models with recurrent layers: copies of the state before each turn (`<|im_start|>`) and
    /// before the last token of each prompt, by increasing position. A recurrent state cannot be
    /// truncated, so a prompt that diverges from the cache resumes from the nearest of these.
    private var checkpoints: [StateCheckpoint] = []
    /// Checkpoints kept; the oldest go first.
    public static let maxCheckpoints = 8
    private let turnStart: Int?

    public init(model: LanguageModel, contextLength: Int, threads: Int) {
        self.model = model
        state = InferenceState(model: model.transformer, contextLength: contextLength, threads: threads)
        turnStart = model.tokenizer?.id(of: "<|im_start|>")
    }

    /// Checks that `tokens` fit the context and the vocabulary.
    public func validate(prompt tokens: [Int]) throws(GenerationError) {
        guard !tokens.isEmpty else { throw .emptyPrompt }
        guard tokens.count <= state.contextLength else {
            throw .promptTooLong(tokens: tokens.count, context: state.contextLength)
        }
        let vocabularySize = model.transformer.config.vocabularySize
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw .tokenOutOfRange(id: bad, vocabularySize: vocabularySize)
        }
    }

    /// Processes `prompt` (reusing the cached common prefix) and returns the logits of its last
    /// position and the number of tokens that had to run.
    public func prefill(_ prompt: [Int]) throws(GenerationError) -> (logits: [Float], processed: Int) {
        try validate(prompt: prompt)
        var common = zip(cachedTokens, prompt).prefix { $0 == $1 }.count
        // At least one token must run to produce logits.
        common = min(common, prompt.count - 1)
        if state.isRecurrent {
            common = rewindRecurrentState(to: common)
        } else {
            state.truncate(to: common)
        }
        cachedTokens.removeSubrange(common...)
        let logits = state.isRecurrent ? forwardTakingCheckpoints(Array(prompt[common...]))
                                       : state.forward(Array(prompt[common...]))
        cachedTokens.append(contentsOf: prompt[common...])
        return (logits, prompt.count - common)
    }

    /// Brings a recurrent state back to at most `common` tokens: unchanged when the prompt extends
    /// the cache, else the latest checkpoint at or before `common`, else the start. Returns the position.
    private func rewindRecurrentState(to common: Int) -> Int {
        if common == state.position { return common }
        checkpoints.removeAll { $0.position > common }
        if let nearest = checkpoints.last {
            state.restore(nearest)
        } else {
            state.truncate(to: 0)
        }
        return state.position
    }

    /// Runs new prompt tokens through a recurrent model in runs that end before each
    /// `<|im_start|>` and before the last token, checkpointing the state after each run.
    private func forwardTakingCheckpoints(_ tokens: [Int]) -> [Float] {
        var cuts = tokens.indices.dropFirst().filter { tokens[$0] == turnStart }
        if tokens.count > 1 && cuts.last != tokens.count - 1 { cuts.append(tokens.count - 1) }
        var start = 0
        for cut in cuts {
            _ = state.forward(Array(tokens[start..<cut]))
            start = cut
            checkpoints.append(state.checkpoint())
            if checkpoints.count > Self.maxCheckpoints { checkpoints.removeFirst() }
        }
        return state.forward(Array(tokens[start...]))
    }

    /// Generates a continuation of `prompt`, calling `onText` with each piece of text as soon
    /// as it is complete (never half a UTF-8 character, never a prefix of a stop string).
    /// `onText` returns false to stop early.
    public func generate(prompt: [Int], options: GenerationOptions,
                         onText: (String) -> Bool = { _ in true }) throws(GenerationError) -> GenerationResult {
        let session = try start(prompt: prompt, options: options)
        while let next = session.next(onText: onText) {
            session.receive(state.forward([next]))
        }
        return session.result()
    }

    /// Processes `prompt` and returns a session that produces the continuation one token at a
    /// time: ``GenerationSession/next(onText:)`` picks a token, the caller runs it through the
    /// model (alone, or batched with other sequences) and hands back the logits.
    public func start(prompt: [Int], options: GenerationOptions) throws(GenerationError) -> GenerationSession {
        let clock = ContinuousClock()
        let promptStart = clock.now
        let (logits, processed) = try prefill(prompt)
        var timings = GenerationTimings()
        timings.promptTokens = processed
        timings.promptMilliseconds = promptStart.duration(to: clock.now).inMilliseconds
        return GenerationSession(generator: self, prompt: prompt, options: options, logits: logits, timings: timings)
    }

    /// Records that `token` went through the model at the next position.
    func appendCached(_ token: Int) {
        cachedTokens.append(token)
    }

    /// Samples the next token; with a constraint, by rejection: a disallowed draw is masked out
    /// and the draw repeated, which samples exactly from the distribution restricted to allowed
    /// tokens. After many rejections the allowed set is computed outright.
    func choose(_ logits: inout [Float], raw: [Float], sampler: inout Sampler,
                        constraint: inout (any TokenConstraint)?) -> Int {
        guard let constraint else {
            return logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, history: cachedTokens) }
        }
        var masked = raw
        let stops = model.stopTokenIDs
        func allowed(_ id: Int) -> Bool {
            stops.contains(id) ? constraint.isComplete : constraint.allows(id)
        }
        for attempt in 0..<Self.rejectionAttempts {
            if attempt > 0 { logits = masked }
            let next = logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, history: cachedTokens) }
            if allowed(next) { return next }
            masked[next] = -.infinity
        }
        var any = false
        for id in masked.indices where masked[id] > -.infinity {
            if allowed(id) { any = true } else { masked[id] = -.infinity }
        }
        // A constraint that allows nothing cannot be satisfied; end the output instead of looping.
        guard any, let stop = stops.min() else { return stops.min() ?? 0 }
        logits = masked
        let next = logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, history: cachedTokens) }
        return allowed(next) ? next : stop
    }

    private static let rejectionAttempts = 16
}

extension TokenLogprob {
    /// The log-softmax of `logits` at `chosen`, and the `top` most likely ids.
    init(logits: [Float], chosen: Int, top k: Int) {
        let (logSumExp, best) = logits.withUnsafeBufferPointer { (Logits.logSumExp($0), Logits.top($0, k: k)) }
        self.init(id: chosen, logprob: logits[chosen] - logSumExp,
                  top: best.map { ($0.id, $0.logit - logSumExp) })
    }
}

extension Duration {
    /// The duration in milliseconds.
    public var inMilliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
