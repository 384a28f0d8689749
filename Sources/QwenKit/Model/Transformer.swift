import Foundation
import QwenKernels

/// A loaded Qwen model: configuration and memory-mapped weights. Immutable and shareable;
/// each conversation runs in its own ``InferenceState``.
public final class Transformer: Sendable {
    public let config: ModelConfig
    let weights: ModelWeights
    /// Keep the mappings (and so every ``WeightMatrix`` pointer) alive.
    let files: [MappedFile]

    /// A model from a GGUF file (architectures `qwen2`, `qwen3`, `qwen3moe`, `qwen35`, `qwen35moe`).
    public init(gguf: GGUFFile) throws(ModelFileError) {
        files = [gguf.file]
        config = try ModelConfig(gguf: gguf)
        var weights = try ModelWeights(gguf: gguf, config: config)
        weights.packPanels(file: gguf.file, threads: min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)))
        self.weights = weights
    }

    /// A model from a Hugging Face checkpoint and the config read from its `config.json`.
    public init(safetensors checkpoint: SafetensorsCheckpoint, config: ModelConfig) throws(ModelFileError) {
        files = checkpoint.files.map(\.file)
        self.config = config
        weights = try ModelWeights(safetensors: checkpoint, config: config)
    }
}

/// Which positions of a batch need logits.
public enum LogitsRequest: Sendable {
    /// Only the last position (generation).
    case last
    /// Every position (scoring).
    case all
}

/// A copy of a sequence's recurrent (Gated DeltaNet) state at a position, so that the sequence
/// can later resume from there: a recurrent state cannot be truncated like a KV cache.
public struct StateCheckpoint: Sendable {
    /// Tokens processed when the copy was taken.
    public let position: Int
    fileprivate let conv: [Float]
    fileprivate let recurrent: [Float]
}

/// The per-conversation state: the KV cache of the attention layers, the convolution and
/// recurrent state of the Gated DeltaNet layers, and scratch buffers, sized once so that the
/// per-token path allocates nothing.
public final class InferenceState {
    public let model: Transformer
    /// Maximum number of positions the KV cache holds.
    public let contextLength: Int
    public let threads: Int
    /// Number of positions processed so far (in the KV cache and the recurrent state).
    public private(set) var position = 0

    // (attention layer, position, kvDim) each. Reserved in full but touched only as positions fill,
    // so resident memory grows with the conversation, not with the context limit.
    let keyCache: UnsafeMutablePointer<Float>
    let valueCache: UnsafeMutablePointer<Float>
    /// Per model layer, its index among the attention layers or among the DeltaNet layers.
    let kindIndex: [Int]
    // (DeltaNet layer, convKernel − 1, convChannels) and (DeltaNet layer, valueHeads, keyDim, valueDim).
    let convState: UnsafeMutablePointer<Float>
    let recurrentState: UnsafeMutablePointer<Float>
    private let convStateCount: Int, recurrentStateCount: Int
    /// Cos and sin of every (position, frequency) pair: (contextLength, rotaryDims / 2) each.
    let ropeCos: UnsafeMutablePointer<Float>
    let ropeSin: UnsafeMutablePointer<Float>

    private var batchCapacity = 0
    private(set) var buffers: Buffers
    /// Routing scratch for mixture-of-experts layers; nil for dense models.
    private let expertScratch: ExpertScratch?

    public init(model: Transformer, contextLength: Int, threads: Int) {
        let c = model.config
        precondition(contextLength > 0 && threads > 0)
        self.model = model
        self.contextLength = contextLength
        self.threads = threads
        var attentionLayers = 0, deltaLayers = 0
        kindIndex = c.layerKinds.map { kind in
            switch kind {
            case .attention: defer { attentionLayers += 1 }; return attentionLayers
            case .deltaNet: defer { deltaLayers += 1 }; return deltaLayers
            }
        }
        let cacheCount = attentionLayers * contextLength * c.kvDim
        keyCache = .allocate(capacity: max(cacheCount, 1))
        valueCache = .allocate(capacity: max(cacheCount, 1))
        if let d = c.deltaNet {
            convStateCount = deltaLayers * (d.convKernel - 1) * d.convChannels
            recurrentStateCount = deltaLayers * d.valueHeads * d.keyDim * d.valueDim
        } else {
            convStateCount = 0
            recurrentStateCount = 0
        }
        convState = .allocate(capacity: max(convStateCount, 1))
        convState.initialize(repeating: 0, count: max(convStateCount, 1))
        recurrentState = .allocate(capacity: max(recurrentStateCount, 1))
        recurrentState.initialize(repeating: 0, count: max(recurrentStateCount, 1))

        // As Hugging Face computes it, in float32: angle = pos · inv_freq (YaRN-scaled when
        // configured); cos and sin times the attention factor (1 without scaling).
        let half = c.rotaryDims / 2
        ropeCos = .allocate(capacity: contextLength * half)
        ropeSin = .allocate(capacity: contextLength * half)
        let rotary = RotaryFrequencies(config: c)
        for i in 0..<half {
            let inverseFrequency = rotary.inverseFrequencies[i]
            for p in 0..<contextLength {
                let angle = Double(Float(p) * inverseFrequency)
                ropeCos[p * half + i] = Float(cos(angle)) * rotary.attentionFactor
                ropeSin[p * half + i] = Float(sin(angle)) * rotary.attentionFactor
            }
        }
        expertScratch = ExpertScratch(config: c, threads: threads)
        buffers = Buffers(config: c, tokens: 1, threads: threads, contextLength: contextLength)
        batchCapacity = 1
    }

    deinit {
        keyCache.deallocate()
        valueCache.deallocate()
        convState.deallocate()
        recurrentState.deallocate()
        ropeCos.deallocate()
        ropeSin.deallocate()
    }

    /// Whether the model has recurrent layers, whose state can only go back to a ``StateCheckpoint``
    /// (or to the start), not be truncated to any position.
    public var isRecurrent: Bool { convStateCount + recurrentStateCount > 0 }

    /// Forgets positions from `position` on, so the cache can be reused for a shared prefix.
    /// A model with recurrent layers can only go back to 0 (see ``restore(_:)`` for the rest).
    public func truncate(to position: Int) {
        precondition(position >= 0 && position <= self.position)
        guard position != self.position else { return }
        if isRecurrent {
            precondition(position == 0, "a recurrent state goes back only to a checkpoint or to 0")
            convState.update(repeating: 0, count: convStateCount)
            recurrentState.update(repeating: 0, count: recurrentStateCount)
        }
        self.position = position
    }

    /// A copy of the recurrent state at the current position (empty for attention-only models).
    public func checkpoint() -> StateCheckpoint {
        StateCheckpoint(position: position,
                        conv: Array(UnsafeBufferPointer(start: convState, count: convStateCount)),
                        recurrent: Array(UnsafeBufferPointer(start: recurrentState, count: recurrentStateCount)))
    }

    /// Goes back to `checkpoint`, taken from this state when its first `checkpoint.position`
    /// tokens were the ones still in the cache now (the caller keeps track of the tokens).
    public func restore(_ checkpoint: StateCheckpoint) {
        precondition(checkpoint.position <= position && checkpoint.conv.count == convStateCount
                     && checkpoint.recurrent.count == recurrentStateCount, "checkpoint of another state")
        checkpoint.conv.withUnsafeBufferPointer { convState.update(from: $0.baseAddress.unsafelyUnwrapped, count: convStateCount) }
        checkpoint.recurrent.withUnsafeBufferPointer {
            recurrentState.update(from: $0.baseAddress.unsafelyUnwrapped, count: recurrentStateCount)
        }
        position = checkpoint.position
    }

    /// Runs `tokens` through the model at the next positions of the cache, as one batch,
    /// and returns the logits: `(vocabularySize)` for `.last`, `(tokens.count, vocabularySize)` for `.all`.
    /// Token ids and the context limit are the caller's to check (see ``Generator``).
    public func forward(_ tokens: [Int], logits request: LogitsRequest = .last) -> [Float] {
        let n = tokens.count
        precondition(n > 0 && position + n <= contextLength, "batch exceeds the context")
        let rows = (0..<n).map { RowTarget(state: self, position: position + $0) }
        let logits = run(tokens, rows: rows, logitsFrom: request == .last ? n - 1 : 0)
        position += n
        return logits
    }

    /// One step for several sequences at once (continuous batching): `tokens[i]` goes through
    /// `states[i]` at that state's next position. The weights are read once for all of them;
    /// attention uses each sequence's own KV cache, DeltaNet layers each sequence's own state.
    /// Returns each sequence's logits. All states must belong to the same model and have the
    /// same context length.
    public static func forward(batch states: [InferenceState], tokens: [Int]) -> [[Float]] {
        precondition(!states.isEmpty && states.count == tokens.count, "one token per sequence")
        let leader = states[0]
        precondition(states.allSatisfy { $0.model === leader.model && $0.contextLength == leader.contextLength
            && $0.position < $0.contextLength }, "sequences must share a model and have room")
        precondition(Set(states.map { ObjectIdentifier($0) }).count == states.count, "a sequence appears twice")
        let rows = states.map { RowTarget(state: $0, position: $0.position) }
        let logits = leader.run(tokens, rows: rows, logitsFrom: 0)
        for state in states { state.position += 1 }
        let v = leader.model.config.vocabularySize
        return (0..<states.count).map { Array(logits[$0 * v ..< ($0 + 1) * v]) }
    }

    /// Where one row of a batch belongs: its sequence's cache and its position there.
    struct RowTarget {
        let state: InferenceState
        let position: Int
    }

    /// The transformer over the rows of a batch, using this state's scratch buffers; each row's
    /// keys and values go to its own sequence's cache. Returns the logits of rows `logitsFrom...`.
    private func run(_ tokens: [Int], rows: [RowTarget], logitsFrom first: Int) -> [Float] {
        let c = model.config, w = model.weights
        let n = tokens.count
        precondition(tokens.allSatisfy { $0 >= 0 && $0 < c.vocabularySize }, "token id out of range")
        if n > batchCapacity {
            buffers = Buffers(config: c, tokens: n, threads: threads, contextLength: contextLength)
            batchCapacity = n
        }
        let b = buffers
        let x = b.residual

        // Embedding: dequantize each token's row.
        for (t, id) in tokens.enumerated() {
            dequantize(w.tokenEmbedding.type, w.tokenEmbedding.row(id), x + t * c.hiddenSize, count: c.hiddenSize)
        }

        for (l, layer) in w.layers.enumerated() {
            // Token mixing: x += attention(norm(x)) or deltaNet(norm(x))
            rmsNorm(x, layer.attentionNorm, into: b.normed, n: n)
            switch layer.mixer {
            case let .attention(a):
                attentionBlock(a, layer: l, rows: rows)
            case let .deltaNet(d):
                deltaNetBlock(d, layer: l, rows: rows)
            }
            add(b.projected, into: x, count: n * c.hiddenSize)

            // Feed-forward block: x += down(silu(gate(norm(x))) * up(norm(x))), or a mixture of such experts
            rmsNorm(x, layer.ffnNorm, into: b.normed, n: n)
            switch layer.feedForward {
            case let .dense(ffn):
                matmul(ffn.gate, b.normed, n: n, b.gate, threads: threads, scratch: b.tiles)
                matmul(ffn.up, b.normed, n: n, b.up, threads: threads, scratch: b.tiles)
                swiGLU(b.gate, b.up, count: n * ffn.gate.rows)
                matmul(ffn.down, b.gate, n: n, b.projected, threads: threads, scratch: b.tiles)
            case let .mixture(moe):
                // Non-nil: a config with experts always makes the scratch.
                moe.apply(b.normed, n: n, hidden: c.hiddenSize, into: b.projected,
                          scratch: expertScratch.unsafelyUnwrapped, threads: threads)
            }
            add(b.projected, into: x, count: n * c.hiddenSize)
        }

        let count = n - first
        rmsNorm(x + first * c.hiddenSize, w.outputNorm, into: b.normed, n: count)
        var logits = [Float](repeating: 0, count: count * c.vocabularySize)
        logits.withUnsafeMutableBufferPointer { out in
            // Non-nil: vocabularySize ≥ 1.
            matmul(w.output, b.normed, n: count, out.baseAddress.unsafelyUnwrapped, threads: threads, scratch: b.tiles)
        }
        return logits
    }

    // MARK: - Blocks

    /// `out[t] = x[t] / sqrt(mean(x[t]²) + ε) · weight`, per token.
    private func rmsNorm(_ x: UnsafePointer<Float>, _ weight: [Float], into out: UnsafeMutablePointer<Float>, n: Int) {
        let d = model.config.hiddenSize
        weight.withUnsafeBufferPointer { w in
            for t in 0..<n {
                rmsNormRow(x + t * d, w.baseAddress.unsafelyUnwrapped, into: out + t * d, count: d,
                           epsilon: model.config.rmsNormEpsilon)
            }
        }
    }

    private func swiGLU(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        swiGLUInPlace(gate, up, count: count)
    }

    private func add(_ y: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count: Int) {
        addInPlace(y, into: x, count: count)
    }
}

/// Scratch memory for a batch of up to `tokens` tokens; shapes in the comments.
final class Buffers {
    let residual: UnsafeMutablePointer<Float>    // (tokens, hiddenSize)
    let normed: UnsafeMutablePointer<Float>      // (tokens, hiddenSize)
    let q: UnsafeMutablePointer<Float>           // (tokens, qDim)
    let k: UnsafeMutablePointer<Float>           // (tokens, kvDim)
    let v: UnsafeMutablePointer<Float>           // (tokens, kvDim)
    let attention: UnsafeMutablePointer<Float>   // (tokens, qDim)
    let projected: UnsafeMutablePointer<Float>   // (tokens, hiddenSize)
    let gate: UnsafeMutablePointer<Float>        // (tokens, feedForwardSize)
    let up: UnsafeMutablePointer<Float>          // (tokens, feedForwardSize)
    let scores: UnsafeMutablePointer<Float>      // (threads, contextLength)
    let queryAndGate: UnsafeMutablePointer<Float> // (tokens, 2 · qDim) with an attention output gate
    let tiles: MatMulScratch                     // matmul's weight tiles and quantized activations
    let deltaNet: DeltaNetScratch?               // the Gated DeltaNet layers' scratch, when the model has them
    private let all: [UnsafeMutablePointer<Float>]

    init(config c: ModelConfig, tokens n: Int, threads: Int, contextLength: Int) {
        func make(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            return p
        }
        residual = make(n * c.hiddenSize)
        normed = make(n * c.hiddenSize)
        q = make(n * c.qDim)
        k = make(n * c.kvDim)
        v = make(n * c.kvDim)
        attention = make(n * c.qDim)
        projected = make(n * c.hiddenSize)
        // The gate buffer also holds the attention output gate (n, qDim).
        gate = make(n * max(c.feedForwardSize, c.attentionOutputGate ? c.qDim : 0))
        up = make(n * c.feedForwardSize)
        scores = make(threads * contextLength)
        queryAndGate = make(c.attentionOutputGate ? n * 2 * c.qDim : 0)
        let deltaWidth = c.deltaNet.map { $0.valueWidth } ?? 0
        tiles = MatMulScratch(tokens: n, width: max(c.hiddenSize, c.feedForwardSize, c.qDim, deltaWidth),
                              threads: threads)
        deltaNet = c.deltaNet.map { DeltaNetScratch(config: $0, tokens: n, threads: threads) }
        all = [residual, normed, q, k, v, attention, projected, gate, up, scores, queryAndGate]
    }

    deinit { all.forEach { $0.deallocate() } }
}
