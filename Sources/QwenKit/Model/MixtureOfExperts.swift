import Foundation
import QwenKernels

/// A SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`. `gate` and `up` are
/// (width, hidden), `down` is (hidden, width).
struct FeedForwardWeights: @unchecked Sendable {
    var gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix
}

/// A layer's feed-forward block: one SwiGLU, or a routed mixture of them (Qwen3-MoE).
enum FeedForward: @unchecked Sendable {
    case dense(FeedForwardWeights)
    case mixture(MixtureOfExperts)
}

/// Qwen3-MoE's sparse feed-forward, as transformers computes it:
///
///     p = softmax(router · x)                       (float32, over all experts)
///     E = the `used` experts with the highest p;    w_e = p_e (/ Σ_{E} p if normalizeTopK)
///     y = Σ_{e ∈ E} w_e · down_e(silu(gate_e(x)) * up_e(x))
///       (+ sigmoid(sharedGate · x) · shared(x) when the model has a shared expert)
struct MixtureOfExperts: @unchecked Sendable {
    /// (experts, hidden): one routing logit per expert.
    var router: WeightMatrix
    var experts: [FeedForwardWeights]
    var used: Int
    var normalizeTopK: Bool
    /// Qwen2-MoE style always-on expert and its (1, hidden) gate.
    var shared: FeedForwardWeights?
    var sharedGate: WeightMatrix?

    /// `out[t] = moe(x[t])` for each of `n` tokens of width `hidden`. Each token is routed on
    /// its own: for each chosen expert, three matrix-vector products.
    func apply(_ x: UnsafePointer<Float>, n: Int, hidden: Int, into out: UnsafeMutablePointer<Float>,
               scratch s: ExpertScratch, threads: Int) {
        precondition(s.expertCount >= experts.count && s.width >= (experts.first?.gate.rows ?? 0))
        for t in 0..<n {
            let xt = x + t * hidden, yt = out + t * hidden
            yt.update(repeating: 0, count: hidden)

            matmul(router, xt, n: 1, s.routerLogits, threads: threads, scratch: s.tiles)
            let probabilities = softmax(s.routerLogits, count: experts.count)
            // Highest probability first; ties to the lower expert id, as torch.topk does in practice.
            let chosen = probabilities.indices.sorted {
                probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 < $1
            }.prefix(used)
            var total: Float = 0
            for e in chosen { total += probabilities[e] }

            for e in chosen.sorted() {
                let weight = normalizeTopK ? probabilities[e] / total : probabilities[e]
                swiGLU(experts[e], xt, scratch: s, threads: threads)
                for i in 0..<hidden { yt[i] += weight * s.output[i] }
            }
            if let shared, let sharedGate {
                matmul(sharedGate, xt, n: 1, s.routerLogits, threads: threads, scratch: s.tiles)
                let weight = 1 / (1 + expf(-s.routerLogits[0]))
                swiGLU(shared, xt, scratch: s, threads: threads)
                for i in 0..<hidden { yt[i] += weight * s.output[i] }
            }
        }
    }

    /// `s.output = down(silu(gate(x)) * up(x))` for one token.
    private func swiGLU(_ f: FeedForwardWeights, _ x: UnsafePointer<Float>, scratch s: ExpertScratch, threads: Int) {
        matmul(f.gate, x, n: 1, s.gate, threads: threads, scratch: s.tiles)
        matmul(f.up, x, n: 1, s.up, threads: threads, scratch: s.tiles)
        for i in 0..<f.gate.rows {
            let g = s.gate[i]
            s.gate[i] = g / (1 + expf(-g)) * s.up[i]
        }
        matmul(f.down, s.gate, n: 1, s.output, threads: threads, scratch: s.tiles)
    }

    private func softmax(_ logits: UnsafePointer<Float>, count: Int) -> [Float] {
        var maximum = -Float.infinity
        for i in 0..<count { maximum = max(maximum, logits[i]) }
        var values = (0..<count).map { expf(logits[$0] - maximum) }
        let sum = values.reduce(0, +)
        for i in values.indices { values[i] /= sum }
        return values
    }
}

/// Scratch memory for routing one token through a mixture of experts; shapes in the comments.
final class ExpertScratch {
    let expertCount: Int
    /// The widest expert hidden layer (routed or shared).
    let width: Int
    let routerLogits: UnsafeMutablePointer<Float>  // (expertCount)
    let gate: UnsafeMutablePointer<Float>          // (width)
    let up: UnsafeMutablePointer<Float>            // (width)
    let output: UnsafeMutablePointer<Float>        // (hiddenSize)
    let tiles: MatMulScratch                       // one token at a time, any input width
    private let all: [UnsafeMutablePointer<Float>]

    init?(config c: ModelConfig, threads: Int) {
        guard let moe = c.experts else { return nil }
        func make(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            return p
        }
        expertCount = moe.count
        width = max(moe.feedForwardSize, moe.sharedFeedForwardSize ?? 0)
        routerLogits = make(moe.count)
        gate = make(width)
        up = make(width)
        output = make(c.hiddenSize)
        tiles = MatMulScratch(tokens: 1, width: max(c.hiddenSize, width), threads: threads)
        all = [routerLogits, gate, up, output]
    }

    deinit { all.forEach { $0.deallocate() } }
}
