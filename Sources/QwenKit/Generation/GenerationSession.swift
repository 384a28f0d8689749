import QwenTokenizer

/// One generation in progress: sampling, stop conditions and streamed text, one token at a time.
/// The forward pass is the caller's, so several sessions can share one batched step.
public final class GenerationSession {
    public let generator: Generator
    public let prompt: [Int]
    let options: GenerationOptions
    private var logits: [Float]
    private var sampler: Sampler
    private var constraint: (any TokenConstraint)?
    private var logprobs: [TokenLogprob] = []
    // Without a tokenizer (a model for token ids only) the result has tokens but no text.
    private var decoder: Tokenizer.StreamingDecoder?
    private var stops: StopSequenceMatcher
    private var generated: [Int] = []
    private var text = ""
    private var finish = FinishReason.length
    private var hitStopString = false
    private var timings: GenerationTimings
    private let generationStart = ContinuousClock.now
    /// The log-probabilities recorded so far (when ``GenerationOptions/logprobs`` is set).
    public var tokenLogprobs: [TokenLogprob] { logprobs }
    /// Set once the session has produced its last token.
    public private(set) var isFinished = false

    init(generator: Generator, prompt: [Int], options: GenerationOptions, logits: [Float], timings: GenerationTimings) {
        self.generator = generator
        self.prompt = prompt
        self.options = options
        self.logits = logits
        self.timings = timings
        sampler = Sampler(options.sampling)
        constraint = options.constraint
        decoder = generator.model.tokenizer.map { Tokenizer.StreamingDecoder(tokenizer: $0) }
        stops = StopSequenceMatcher(stops: options.stop)
    }

    /// Picks the next token from the current logits and streams its text through `onText`
    /// (which returns false to stop). Returns the token that must now go through the model,
    /// or nil when the generation is over.
    public func next(onText: (String) -> Bool) -> Int? {
        guard !isFinished else { return nil }
        let state = generator.state
        if let limit = options.maxTokens, generated.count >= limit { return end(onText) }
        if generator.cachedTokens.count >= state.contextLength { return end(onText) }
        // The sampler writes penalties into the logits, so keep the model's own when they are needed.
        let raw = options.logprobs != nil || constraint != nil ? logits : []
        let next = generator.choose(&logits, raw: raw, sampler: &sampler, constraint: &constraint)
        if let k = options.logprobs { logprobs.append(TokenLogprob(logits: raw, chosen: next, top: k)) }
        constraint?.accept(next)
        generated.append(next)
        if generator.model.stopTokenIDs.contains(next) {
            finish = .stop
            return end(onText)
        }
        let piece = stops.feed(decoder?.append(next) ?? "")
        let keepGoing = emit(piece.text, onText)
        if piece.stopped {
            finish = .stop
            hitStopString = true
            return end(onText)
        }
        if !keepGoing || generator.cachedTokens.count >= state.contextLength { return end(onText) }
        return next
    }

    /// The logits after the token that ``next(onText:)`` returned went through the model.
    public func receive(_ logits: [Float]) {
        precondition(!isFinished, "receive after the session ended")
        if let last = generated.last { generator.appendCached(last) }
        self.logits = logits
    }

    /// Ends the generation now (the client went away); the result keeps what was produced.
    public func stop() {
        if !isFinished { _ = end { _ in false } }
    }

    /// The outcome, once ``isFinished``.
    public func result() -> GenerationResult {
        GenerationResult(text: text, promptTokens: prompt, tokens: generated, finishReason: finish,
                         timings: timings, logprobs: logprobs)
    }

    private func emit(_ piece: String, _ onText: (String) -> Bool) -> Bool {
        guard !piece.isEmpty else { return true }
        text += piece
        return onText(piece)
    }

    /// Flushes held text (unless a stop string cut it) and closes the session.
    private func end(_ onText: (String) -> Bool) -> Int? {
        if !hitStopString {
            let piece = stops.feed(decoder?.finish() ?? "")
            _ = emit(piece.text, onText)
            if !piece.stopped { _ = emit(stops.finish(), onText) }
        }
        timings.generatedTokens = generated.count
        timings.generationMilliseconds = generationStart.duration(to: .now).inMilliseconds
        isFinished = true
        return nil
    }
}
