import Foundation
import QwenKernels

/// Full attention, the block of every Qwen2/Qwen3 layer and of every few Qwen3.5 layers: causal
/// grouped-query attention over each sequence's KV cache, with Qwen2's q/k/v biases, Qwen3's
/// per-head q/k norms, and Qwen3.5's output gate and partial RoPE, as the layer's weights and
/// the config say.
extension InferenceState {
    /// `b.projected = o(attention(rope(q(b.normed)), rope(k(...)), v(...)))`, each row's keys and
    /// values appended to its own sequence's cache. With an output gate (Qwen3.5), `q` yields the
    /// query and a gate per head, and the attention output is scaled by sigmoid(gate).
    func attentionBlock(_ a: AttentionWeights, layer l: Int, rows: [RowTarget]) {
        let c = model.config, b = buffers, n = rows.count
        if c.attentionOutputGate {
            // Per head: headDim query values, then headDim gate values.
            matmul(a.q, b.normed, n: n, b.queryAndGate, bias: a.qBias, threads: threads, scratch: b.tiles)
            for head in 0..<n * c.headCount {
                let source = b.queryAndGate + head * 2 * c.headDim
                (b.q + head * c.headDim).update(from: source, count: c.headDim)
                (b.gate + head * c.headDim).update(from: source + c.headDim, count: c.headDim)
            }
        } else {
            matmul(a.q, b.normed, n: n, b.q, bias: a.qBias, threads: threads, scratch: b.tiles)
        }
        matmul(a.k, b.normed, n: n, b.k, bias: a.kBias, threads: threads, scratch: b.tiles)
        matmul(a.v, b.normed, n: n, b.v, bias: a.vBias, threads: threads, scratch: b.tiles)
        if let qNorm = a.qNorm, let kNorm = a.kNorm {
            rmsNormHeads(b.q, heads: n * c.headCount, headDim: c.headDim, weight: qNorm, epsilon: c.rmsNormEpsilon)
            rmsNormHeads(b.k, heads: n * c.kvHeadCount, headDim: c.headDim, weight: kNorm, epsilon: c.rmsNormEpsilon)
        }
        let layerCache = kindIndex[l] * contextLength * c.kvDim
        for (t, row) in rows.enumerated() {
            applyRoPE(b.q + t * c.qDim, heads: c.headCount, position: row.position)
            applyRoPE(b.k + t * c.kvDim, heads: c.kvHeadCount, position: row.position)
            let slot = layerCache + row.position * c.kvDim
            (row.state.keyCache + slot).update(from: b.k + t * c.kvDim, count: c.kvDim)
            (row.state.valueCache + slot).update(from: b.v + t * c.kvDim, count: c.kvDim)
        }
        attention(layer: l, rows: rows)
        if c.attentionOutputGate { sigmoidGateInPlace(b.attention, b.gate, count: n * c.qDim) }
        matmul(a.o, b.attention, n: n, b.projected, threads: threads, scratch: b.tiles)
    }

    /// Rotates the two halves of each head's rotary dims by the position's angles (Qwen's
    /// "rotate half" RoPE): `(a, b) ↦ (a·cos − b·sin, b·cos + a·sin)` for `a = v[i]`, `b = v[i + r/2]`.
    func applyRoPE(_ v: UnsafeMutablePointer<Float>, heads: Int, position: Int) {
        let c = model.config, half = c.rotaryDims / 2
        rotateHalf(v, heads: heads, headDim: c.headDim, rotary: c.rotaryDims,
                   cos: ropeCos + position * half, sin: ropeSin + position * half)
    }

    /// Causal grouped-query attention of each row's query over its own sequence's cache,
    /// positions `0 ... row.position`, in parallel over (row, head) pairs.
    func attention(layer l: Int, rows: [RowTarget]) {
        let c = model.config, b = buffers
        let d = c.headDim, group = c.headCount / c.kvHeadCount
        let scale = 1 / Float(d).squareRoot()
        let layerCache = kindIndex[l] * contextLength * c.kvDim
        let keys = rows.map { SendablePointer($0.state.keyCache + layerCache) }
        let values = rows.map { SendablePointer($0.state.valueCache + layerCache) }
        let lengths = rows.map { $0.position + 1 }
        let q = SendablePointer(b.q), out = SendablePointer(b.attention), scores = SendablePointer(b.scores)
        let threads = threads, contextLength = contextLength, n = rows.count
        parallel(threads) { worker in
            let score = scores.pointer + worker * contextLength
            for job in slice(n * c.headCount, worker: worker, of: threads) {
                let t = job / c.headCount, h = job % c.headCount
                let kvHead = h / group
                let query = q.pointer + t * c.qDim + h * d
                let length = lengths[t], keys = keys[t].pointer
                for p in 0..<length {
                    score[p] = dotF32(query, keys + p * c.kvDim + kvHead * d, count: d) * scale
                }
                attendHead(scores: score, length: length, values: values[t].pointer + kvHead * d, stride: c.kvDim,
                           headDim: d, into: out.pointer + t * c.qDim + h * d)
            }
        }
    }

}
