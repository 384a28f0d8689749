import CQwenKernels
import Foundation
import QwenKernels

/// One Gated DeltaNet layer's weights (Qwen3.5's linear attention), as Hugging Face's
/// `Qwen3_5GatedDeltaNet` computes it:
///
///     qkv = silu(causalConv(in_proj_qkv · x))            split into q (Hk, Dk), k (Hk, Dk), v (Hv, Dv)
///     q, k = l2norm(q), l2norm(k);  q ·= Dk^-½
///     β = sigmoid(in_proj_b · x);   g = −exp(A_log) · softplus(in_proj_a · x + dt_bias)
///     per value head (its key head per ``DeltaNetConfig/keyHead(forValueHead:)``), state S (Dk, Dv):
///         S ← e^g · S;   S ← S + k ⊗ β(v − Sᵀk);   o = Sᵀq
///     out_proj · (rmsNorm(o) · norm · silu(in_proj_z · x))
struct DeltaNetWeights: @unchecked Sendable {
    var qkv: WeightMatrix      // (convChannels, hidden)
    var z: WeightMatrix        // (valueHeads · valueDim, hidden): the output gate
    var beta: WeightMatrix     // (valueHeads, hidden)
    var alpha: WeightMatrix    // (valueHeads, hidden): the decay's input
    /// The depthwise convolution, tap-major: (convKernel, convChannels); tap K−1 multiplies the current token.
    var convTaps: [Float]
    /// −exp(A_log), per value head.
    var decayRate: [Float]
    var dtBias: [Float]        // (valueHeads)
    var norm: [Float]          // (valueDim): the output norm's plain (not zero-centred) weight
    var out: WeightMatrix      // (hidden, valueHeads · valueDim)

    /// - Parameter conv: the convolution as checkpoints store it, channel-major (convChannels, convKernel).
    init(qkv: WeightMatrix, z: WeightMatrix, beta: WeightMatrix, alpha: WeightMatrix, conv: [Float],
         decayRate: [Float], dtBias: [Float], norm: [Float], out: WeightMatrix) {
        self.qkv = qkv
        self.z = z
        self.beta = beta
        self.alpha = alpha
        let channels = qkv.rows, kernel = conv.count / max(channels, 1)
        var taps = [Float](repeating: 0, count: conv.count)
        for c in 0..<channels {
            for j in 0..<kernel { taps[j * channels + c] = conv[c * kernel + j] }
        }
        convTaps = taps
        self.decayRate = decayRate
        self.dtBias = dtBias
        self.norm = norm
        self.out = out
    }
}

/// Where one run of consecutive tokens of one sequence keeps its Gated DeltaNet state for a layer.
struct DeltaNetSegment {
    /// First row of the batch and number of rows.
    var start: Int, count: Int
    /// The last K−1 convolution inputs: (convKernel − 1, convChannels), oldest first.
    var conv: UnsafeMutablePointer<Float>
    /// The recurrent state: (valueHeads, keyDim, valueDim), float32.
    var recurrent: UnsafeMutablePointer<Float>
}

/// Scratch memory of the Gated DeltaNet layers for a batch of up to `tokens` tokens.
final class DeltaNetScratch {
    let tokens: Int, threads: Int
    let qkv: UnsafeMutablePointer<Float>        // (tokens, convChannels): projections, then convolved
    let window: UnsafeMutablePointer<Float>     // (convKernel − 1 + tokens, convChannels)
    let z: UnsafeMutablePointer<Float>          // (tokens, valueWidth)
    let beta: UnsafeMutablePointer<Float>       // (tokens, valueHeads)
    let decay: UnsafeMutablePointer<Float>      // (tokens, valueHeads): g
    let core: UnsafeMutablePointer<Float>       // (tokens, valueWidth): the rule's output, then gated
    let chunk: UnsafeMutablePointer<Float>      // (threads, ChunkScratch.floats)
    let chunkFloats: Int
    private let all: [UnsafeMutablePointer<Float>]

    init(config d: DeltaNetConfig, tokens n: Int, threads: Int) {
        func make(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            return p
        }
        tokens = n
        self.threads = threads
        qkv = make(n * d.convChannels)
        window = make((d.convKernel - 1 + n) * d.convChannels)
        z = make(n * d.valueWidth)
        beta = make(n * d.valueHeads)
        decay = make(n * d.valueHeads)
        core = make(n * d.valueWidth)
        chunkFloats = GatedDeltaRule.scratchFloats(keyDim: d.keyDim, valueDim: d.valueDim)
        chunk = make(threads * chunkFloats)
        all = [qkv, window, z, beta, decay, core, chunk]
    }

    deinit { all.forEach { $0.deallocate() } }
}

extension DeltaNetWeights {
    /// `out[t] = deltaNet(x[t])` for the `n` rows of a batch; each segment is a run of
    /// consecutive tokens of one sequence, carrying that sequence's state forward.
    func apply(_ x: UnsafePointer<Float>, n: Int, segments: [DeltaNetSegment], config d: DeltaNetConfig,
               epsilon: Float, into out: UnsafeMutablePointer<Float>, scratch s: DeltaNetScratch,
               tiles: MatMulScratch, threads: Int) {
        let channels = d.convChannels
        matmul(qkv, x, n: n, s.qkv, threads: threads, scratch: tiles)
        matmul(z, x, n: n, s.z, threads: threads, scratch: tiles)
        matmul(beta, x, n: n, s.beta, threads: threads, scratch: tiles)
        matmul(alpha, x, n: n, s.decay, threads: threads, scratch: tiles)

        // β = sigmoid(b); g = −exp(A_log) · softplus(a + dt_bias).
        for t in 0..<n {
            for h in 0..<d.valueHeads {
                let i = t * d.valueHeads + h
                s.beta[i] = 1 / (1 + expf(-s.beta[i]))
                s.decay[i] = decayRate[h] * softplus(s.decay[i] + dtBias[h])
            }
        }

        for segment in segments {
            convolve(segment, config: d, scratch: s)
            // q and k L2-normalised per head, q scaled by Dk^-½.
            let keyWidth = d.keyHeads * d.keyDim, scale = 1 / Float(d.keyDim).squareRoot()
            for t in segment.start..<segment.start + segment.count {
                let row = s.qkv + t * channels
                for h in 0..<d.keyHeads {
                    l2Normalize(row + h * d.keyDim, count: d.keyDim, scale: scale)
                    l2Normalize(row + keyWidth + h * d.keyDim, count: d.keyDim, scale: 1)
                }
            }
            GatedDeltaRule.run(segment: segment, config: d, scratch: s, threads: threads)
        }

        // Gated RMSNorm per value head: rmsNorm(o) · norm · silu(z).
        norm.withUnsafeBufferPointer { w in
            for i in 0..<n * d.valueHeads {
                let o = s.core + i * d.valueDim
                rmsNormRow(o, w.baseAddress.unsafelyUnwrapped, into: o, count: d.valueDim, epsilon: epsilon)
                siluGateInPlace(o, s.z + i * d.valueDim, count: d.valueDim)
            }
        }
        matmul(self.out, s.core, n: n, out, threads: threads, scratch: tiles)
    }

    /// The causal depthwise convolution and SiLU over a segment's rows of `s.qkv`, in place:
    /// `y[t, c] = silu(Σ_j taps[j, c] · x[t − (K−1) + j, c])`, with the K−1 inputs before the
    /// segment taken from (and the last K−1 written back to) the segment's conv state.
    private func convolve(_ segment: DeltaNetSegment, config d: DeltaNetConfig, scratch s: DeltaNetScratch) {
        let channels = d.convChannels, kernel = d.convKernel, history = kernel - 1
        let window = s.window, rows = s.qkv + segment.start * channels
        window.update(from: segment.conv, count: history * channels)
        (window + history * channels).update(from: rows, count: segment.count * channels)
        convTaps.withUnsafeBufferPointer { taps in
            let w = taps.baseAddress.unsafelyUnwrapped
            for t in 0..<segment.count {
                let y = rows + t * channels
                y.update(repeating: 0, count: channels)
                for j in 0..<kernel {
                    multiplyAdd(w + j * channels, window + (t + j) * channels, into: y, count: channels)
                }
                siluInPlace(y, count: channels)
            }
        }
        segment.conv.update(from: window + segment.count * channels, count: history * channels)
    }
}

/// torch's softplus (β 1, threshold 20): `log(1 + eˣ)`, or `x` above 20.
@inline(__always)
func softplus(_ x: Float) -> Float {
    x > 20 ? x : log1pf(expf(x))
}

/// `v ← v · rsqrt(Σv² + 1e-6) · scale` (Hugging Face's `l2norm`, eps 1e-6).
@inline(__always)
func l2Normalize(_ v: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
    let inverse = 1 / (dotF32(v, v, count: count) + 1e-6).squareRoot()
    for i in 0..<count { v[i] = v[i] * inverse * scale }
}

/// The gated delta rule over runs of tokens, per value head: a chunked (blocked) algorithm for
/// prompts and the plain recurrence for single tokens and as the reference.
enum GatedDeltaRule {
    /// Tokens per block of the chunked algorithm (transformers' `chunk_size`).
    static let chunkSize = 64
    /// Below this many tokens the recurrence runs instead of the blocks.
    static let chunkedMinimum = 8

    static func scratchFloats(keyDim: Int, valueDim: Int) -> Int {
        let l = chunkSize
        // q, k, w, kβ·e^gc, q·e^gc: (L, Dk) each; (k·e^(gc_last − gc))ᵀ: (Dk, L); βv, u, v': (L, Dv)
        // each; A and P: (L, L); gc, row: L; the recurrence's kS, δ: Dv.
        return 6 * l * keyDim + 3 * l * valueDim + 2 * l * l + 2 * l + 2 * valueDim
    }

    /// Runs every value head of `segment` through the rule, reading q, k, v from `s.qkv` (convolved,
    /// normalised), β and g from `s.beta`, `s.decay`, writing `s.core`, updating `segment.recurrent`.
    static func run(segment: DeltaNetSegment, config d: DeltaNetConfig, scratch s: DeltaNetScratch,
                    threads: Int, forceRecurrent: Bool = false) {
        let qkv = SendablePointer(s.qkv), beta = SendablePointer(s.beta), decay = SendablePointer(s.decay)
        let core = SendablePointer(s.core), chunk = SendablePointer(s.chunk), chunkFloats = s.chunkFloats
        let state = SendablePointer(segment.recurrent), first = segment.start, count = segment.count
        let chunked = !forceRecurrent && segment.count >= chunkedMinimum
        let workers = min(threads, d.valueHeads)
        parallel(workers) { worker in
            for h in slice(d.valueHeads, worker: worker, of: workers) {
                let head = HeadView(config: d, valueHead: h, qkv: qkv.pointer, beta: beta.pointer,
                                    decay: decay.pointer, core: core.pointer,
                                    state: state.pointer + h * d.keyDim * d.valueDim, first: first)
                if chunked {
                    head.chunked(count: count, scratch: chunk.pointer + worker * chunkFloats)
                } else {
                    head.recurrent(count: count, scratch: chunk.pointer + worker * chunkFloats)
                }
            }
        }
    }

    /// One value head's inputs, outputs and state inside the batch buffers.
    struct HeadView {
        let dk: Int, dv: Int
        let channels: Int, heads: Int, valueWidth: Int
        let q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
        let beta: UnsafePointer<Float>, decay: UnsafePointer<Float>
        let out: UnsafeMutablePointer<Float>
        let state: UnsafeMutablePointer<Float>   // (dk, dv)

        init(config d: DeltaNetConfig, valueHead h: Int, qkv: UnsafeMutablePointer<Float>,
             beta: UnsafeMutablePointer<Float>, decay: UnsafeMutablePointer<Float>,
             core: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, first: Int) {
            dk = d.keyDim
            dv = d.valueDim
            channels = d.convChannels
            heads = d.valueHeads
            valueWidth = d.valueWidth
            let keyHead = d.keyHead(forValueHead: h), keyWidth = d.keyHeads * d.keyDim
            let row = qkv + first * channels
            q = UnsafePointer(row + keyHead * dk)
            k = UnsafePointer(row + keyWidth + keyHead * dk)
            v = UnsafePointer(row + 2 * keyWidth + h * dv)
            self.beta = UnsafePointer(beta + first * heads + h)
            self.decay = UnsafePointer(decay + first * heads + h)
            out = core + first * valueWidth + h * dv
            self.state = state
        }

        /// Token by token: `S ← e^g S; δ = β(v − Sᵀk); S ← S + k δᵀ; o = Sᵀq`, two passes over S.
        func recurrent(count: Int, scratch: UnsafeMutablePointer<Float>) {
            let kS = scratch, delta = scratch + dv
            for t in 0..<count {
                let qt = q + t * channels, kt = k + t * channels, vt = v + t * channels
                let g = expf(decay[t * heads]), b = beta[t * heads]
                let o = out + t * valueWidth
                kS.update(repeating: 0, count: dv)
                for i in 0..<dk {
                    let row = state + i * dv
                    scale(row, by: g, count: dv)
                    multiplyAdd(kt[i], row, into: kS, count: dv)
                }
                for j in 0..<dv { delta[j] = (vt[j] - kS[j]) * b }
                o.update(repeating: 0, count: dv)
                for i in 0..<dk {
                    let row = state + i * dv
                    multiplyAdd(kt[i], delta, into: row, count: dv)
                    multiplyAdd(qt[i], row, into: o, count: dv)
                }
            }
        }

        /// Blocks of up to ``chunkSize`` tokens (transformers' `torch_chunk_gated_delta_rule`):
        /// within a block, with cumulative decays gc and the strictly lower triangle
        /// `A[i][j] = −β_i (k_i·k_j) e^(gc_i − gc_j)` turned into `T = (I − A)⁻¹` by forward substitution,
        ///
        ///     u = T (β v),  w = T (β e^gc k),  v' = u − w S
        ///     o_i = e^gc_i (q_i S) + Σ_{j ≤ i} (q_i·k_j) e^(gc_i − gc_j) v'_j
        ///     S ← e^gc_last S + Σ_j e^(gc_last − gc_j) k_j ⊗ v'_j
        func chunked(count: Int, scratch: UnsafeMutablePointer<Float>) {
            let l = GatedDeltaRule.chunkSize
            let qs = scratch, ks = qs + l * dk, ws = ks + l * dk, kbe = ws + l * dk, qe = kbe + l * dk
            let kpT = qe + l * dk, vs = kpT + l * dk, us = vs + l * dv, vnew = us + l * dv
            let a = vnew + l * dv, p = a + l * l, gc = p + l * l, row = gc + l
            var start = 0
            while start < count {
                let n = min(l, count - start)
                // Gather the block, contiguous: q, k, βv, cumulative decay; q·e^gc and β·e^gc·k.
                var cumulative: Float = 0
                for i in 0..<n {
                    let t = start + i
                    (qs + i * dk).update(from: q + t * channels, count: dk)
                    (ks + i * dk).update(from: k + t * channels, count: dk)
                    let b = beta[t * heads]
                    for j in 0..<dv { vs[i * dv + j] = v[t * channels + j] * b }
                    cumulative += decay[t * heads]
                    gc[i] = cumulative
                    let e = expf(cumulative)
                    for c in 0..<dk {
                        qe[i * dk + c] = qs[i * dk + c] * e
                        kbe[i * dk + c] = ks[i * dk + c] * (b * e)
                    }
                }
                // A (strictly lower): −β_i (k_i·k_j) e^(gc_i − gc_j); forward substitution; T = A + I.
                for i in 0..<n {
                    let b = beta[(start + i) * heads]
                    for j in 0..<i {
                        a[i * l + j] = -b * dotF32(ks + i * dk, ks + j * dk, count: dk) * expf(gc[i] - gc[j])
                    }
                }
                for i in 1..<max(n, 1) {
                    for j in 0..<i { row[j] = a[i * l + j] }
                    for j in 0..<i {
                        var sum = row[j]
                        for m in (j + 1)..<i { sum += row[m] * a[m * l + j] }
                        a[i * l + j] = sum
                    }
                }
                for i in 0..<n { a[i * l + i] = 1 }
                // u = T (βv), w = T (β e^gc k).
                SmallProduct.lowerTriangular(n, a, l, vs, dv, into: us, dv, cols: dv, accumulate: false)
                SmallProduct.lowerTriangular(n, a, l, kbe, dk, into: ws, dk, cols: dk, accumulate: false)
                // v' = u − w S; the inter-block output e^gc_i (q_i S).
                vnew.update(from: us, count: n * dv)
                SmallProduct.full(n, inner: dk, ws, dk, state, dv, into: vnew, dv, cols: dv, sign: -1)
                for i in 0..<n { (out + (start + i) * valueWidth).update(repeating: 0, count: dv) }
                SmallProduct.full(n, inner: dk, qe, dk, state, dv, into: out + start * valueWidth, valueWidth, cols: dv,
                                  sign: 1)
                // Intra-block: o_i += Σ_{j ≤ i} (q_i·k_j) e^(gc_i − gc_j) v'_j.
                for i in 0..<n {
                    for j in 0...i {
                        p[i * l + j] = dotF32(qs + i * dk, ks + j * dk, count: dk) * expf(gc[i] - gc[j])
                    }
                }
                SmallProduct.lowerTriangular(n, p, l, vnew, dv, into: out + start * valueWidth, valueWidth, cols: dv,
                                             accumulate: true)
                // S ← e^gc_last S + Σ_j (e^(gc_last − gc_j) k_j) ⊗ v'_j.
                let last = gc[n - 1]
                for j in 0..<n {
                    let decayToEnd = expf(last - gc[j])
                    for c in 0..<dk { kpT[c * l + j] = ks[j * dk + c] * decayToEnd }
                }
                scale(state, by: expf(last), count: dk * dv)
                SmallProduct.full(dk, inner: n, kpT, l, vnew, dv, into: state, dv, cols: dv, sign: 1)
                start += n
            }
        }
    }
}

/// Small dense products of the chunked rule, `y[i, :] (+)= Σ_k a[i, k] · b[k, :]`, row-major with
/// strides, tiled four rows × 16 columns so each loaded row of `b` feeds four accumulators.
enum SmallProduct {
    /// `y[i, :] += sign · Σ_{k < inner} a[i, k] b[k, :]` for `rows` rows.
    static func full(_ rows: Int, inner: Int, _ a: UnsafePointer<Float>, _ aStride: Int,
                     _ b: UnsafePointer<Float>, _ bStride: Int, into y: UnsafeMutablePointer<Float>, _ yStride: Int,
                     cols: Int, sign: Float) {
        tiled(rows, a, aStride, b, bStride, into: y, yStride, cols: cols, sign: sign, accumulate: true, inner: inner)
    }

    /// `y[i, :] (+)= Σ_{k ≤ i} a[i, k] b[k, :]` (a lower triangular, diagonal included).
    static func lowerTriangular(_ rows: Int, _ a: UnsafePointer<Float>, _ aStride: Int,
                                _ b: UnsafePointer<Float>, _ bStride: Int, into y: UnsafeMutablePointer<Float>,
                                _ yStride: Int, cols: Int, accumulate: Bool) {
        tiled(rows, a, aStride, b, bStride, into: y, yStride, cols: cols, sign: 1, accumulate: accumulate, inner: nil)
    }

    @inline(__always)
    private static func tiled(_ rows: Int, _ a: UnsafePointer<Float>, _ aStride: Int,
                              _ b: UnsafePointer<Float>, _ bStride: Int, into y: UnsafeMutablePointer<Float>,
                              _ yStride: Int, cols: Int, sign: Float, accumulate: Bool, inner: Int?) {
        // The C kernel (CQwenKernels.h): tiles of four rows × 16 columns.
        qk_small_product(Int32(rows), Int32(inner ?? 0), inner == nil ? 1 : 0, a, aStride, b, bStride, y, yStride,
                         Int32(cols), sign, accumulate ? 1 : 0)
    }
}

extension InferenceState {
    /// `b.projected = deltaNet(b.normed)`: each run of consecutive rows of one sequence (the whole
    /// batch in a prompt, single rows in a batched decode step) carries that sequence's state.
    func deltaNetBlock(_ weights: DeltaNetWeights, layer l: Int, rows: [RowTarget]) {
        let c = model.config, b = buffers
        // Non-nil: DeltaNet layers exist only with a DeltaNet config, which makes the scratch.
        let d = c.deltaNet.unsafelyUnwrapped, scratch = b.deltaNet.unsafelyUnwrapped
        let index = kindIndex[l]
        let convSize = (d.convKernel - 1) * d.convChannels, recurrentSize = d.valueHeads * d.keyDim * d.valueDim
        var segments: [DeltaNetSegment] = []
        var start = 0
        while start < rows.count {
            let state = rows[start].state
            var end = start + 1
            while end < rows.count && rows[end].state === state { end += 1 }
            segments.append(DeltaNetSegment(start: start, count: end - start,
                                            conv: state.convState + index * convSize,
                                            recurrent: state.recurrentState + index * recurrentSize))
            start = end
        }
        weights.apply(b.normed, n: rows.count, segments: segments, config: d, epsilon: c.rmsNormEpsilon,
                      into: b.projected, scratch: scratch, tiles: b.tiles, threads: threads)
    }

}
