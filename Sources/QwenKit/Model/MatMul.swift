import CQwenKernels
import QwenKernels

/// `y[t, r] = Σ_c w[r, c] · x[t, c] (+ bias[r])` for `n` tokens: a matrix product against a
/// weight in any storage type, split by output rows across `threads` workers.
///
/// - Weights packed into panels at load time (Q8_0, Q5_0, Q4_K, Q6_K with AVX2 or AVX-512 VNNI), any
///   number of tokens: the 16-row panel micro-kernels (CQwenKernels.h) against split activations
///   (``Panels``: ~16-bit in two 8-bit parts, so results stay within float-reference noise).
/// - Other quantized weights except Q8_0: the C integer dot products (`dotQuantized`, and
///   `dotQuantizedRows` for several tokens per weight block) against two-part activations
///   quantized once per product. (Decode used the Swift dequantize-dot with float activations
///   until the package stopped targeting the build machine: compiled for the x86-64 baseline it
///   ran 10× slower than the C kernels of the CPU's level.)
/// - One token, F32/F16/BF16/Q8_0: each weight row streams once through the fused
///   dequantize-dot kernel with exact float32 activations.
/// - Several tokens, F32/F16/BF16/Q8_0: a tile of rows is dequantized once into float32 and
///   reused for every token; Q8_0 stays float so the float-reference tests of Q8_0 models keep
///   their float32 accuracy.
/// - Parameters:
///   - x: `(n, w.cols)` row-major activations.
///   - y: `(n, w.rows)` row-major output.
///   - scratch: sized for at least `n` tokens of this width and `threads` workers.
func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>,
            bias: [Float]? = nil, threads: Int, scratch: MatMulScratch) {
    precondition(n <= scratch.tokens && w.cols <= scratch.width && threads <= scratch.threads,
                 "matmul scratch too small")
    if let panels = w.panels {
        matmulPanels(w, panels, x, n: n, y, threads: threads, scratch: scratch)
    } else if let act = MatMul.integerActivation(for: w.type) {
        matmulQuantized(w, act, x, n: n, y, threads: threads, scratch: scratch)
    } else {
        matmulFloat(w, x, n: n, y, threads: threads, scratch: scratch)
    }
    if let bias {
        precondition(bias.count == w.rows)
        bias.withUnsafeBufferPointer { b in
            for t in 0..<n { addInPlace(b.baseAddress.unsafelyUnwrapped, into: y + t * w.rows, count: w.rows) }
        }
    }
}

enum MatMul {
    /// Weight rows dequantized at once in float prefill: 16 rows × 4864 floats = 311 KB, within L2.
    static let tileRows = 16
    /// Integer prefill: weight rows and tokens per cache block (64 rows of 896 Q5_0 weights are
    /// 39 KB; 64 tokens of 896 Q8_0 activations are 61 KB).
    static let blockRows = 32
    /// Decode: how many bytes ahead of the row being read the weights are prefetched.
    static let prefetchBytes = 4096
    static let blockTokens = 64

    /// The activation format for the integer path, or nil for the exact float path. Q8_0 weights
    /// stay on the float path: they are 8-bit already (the float dot streams them at memory
    /// speed) and the float-reference tests of Q8_0 models keep their float32 accuracy.
    @inline(__always)
    static func integerActivation(for type: GGMLType) -> GGMLType? {
        type == .q8_0 ? nil : activationType(for: type)
    }

    /// Bytes of one token's quantized activations of width `cols` in any activation format.
    static func quantizedRowBytes(cols: Int) -> Int {
        let blocks32 = (cols + 31) / 32, blocks256 = (cols + 255) / 256
        return max(blocks32 * GGMLType.q8_1.bytesPerBlock, blocks256 * GGMLType.q8_K.bytesPerBlock)
    }
}

/// Scratch memory for ``matmul``: float weight tiles (per worker), quantized activations (per
/// token, high and low parts) and per-worker temporaries, allocated once per ``InferenceState``
/// batch size.
final class MatMulScratch: @unchecked Sendable {
    let tokens: Int, width: Int, threads: Int
    let tiles: UnsafeMutablePointer<Float>       // (threads, MatMul.tileRows, width)
    let quantized: UnsafeMutableRawPointer       // (2, tokens, quantizedStride): high parts, then low parts
    let quantizedStride: Int
    let activations: UnsafeMutableRawPointer     // (tokens, activationStride): split activations for panels
    let activationStride: Int
    let residual: UnsafeMutablePointer<Float>    // (threads, width)
    let rowTemp: UnsafeMutablePointer<Float>     // (threads, MatMul.blockTokens)
    private let raw: [UnsafeMutableRawPointer]

    init(tokens: Int, width: Int, threads: Int) {
        self.tokens = max(tokens, 1)
        self.width = width
        self.threads = max(threads, 1)
        func make(_ bytes: Int) -> UnsafeMutableRawPointer {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 64))
            return p
        }
        quantizedStride = (MatMul.quantizedRowBytes(cols: width) + 63) & ~63
        activationStride = (Panels.activationBytes(cols: (width + 31) / 32 * 32, for: .q8_0) + 63) & ~63
        let t = self.tokens, w = self.threads
        let tilesRaw = make(w * MatMul.tileRows * width * 4)
        quantized = make(2 * t * quantizedStride)
        activations = make(t * activationStride)
        let residualRaw = make(w * width * 4)
        let rowTempRaw = make(w * MatMul.blockTokens * 4)
        tiles = tilesRaw.assumingMemoryBound(to: Float.self)
        residual = residualRaw.assumingMemoryBound(to: Float.self)
        rowTemp = rowTempRaw.assumingMemoryBound(to: Float.self)
        raw = [tilesRaw, quantized, activations, residualRaw, rowTempRaw]
    }

    deinit { raw.forEach { $0.deallocate() } }
}

/// Quantizes `x` (`cols` values) in two parts: `hi` = the activations in `act`, `lo` = what
/// `hi` misses (x − hi), quantized again. `dot(w, hi) + dot(w, lo)` then carries ~16-bit
/// activations (error ~max|x| / 65000 per 32 or 256 values) for the price of a second integer dot,
/// close enough to float32 activations that greedy decoding matches the float reference.
@inline(__always)
private func quantizeTwoPart(_ x: UnsafePointer<Float>, cols: Int, as act: GGMLType, hi: UnsafeMutableRawPointer,
                             lo: UnsafeMutableRawPointer, residual: UnsafeMutablePointer<Float>) {
    quantizeActivations(x, count: cols, as: act, into: hi)
    let code: Int32 = act == .q8_0 ? 0 : (act == .q8_1 ? 1 : 2)
    qk_q8_residual(x, hi, code, Int32(cols), residual)
    quantizeActivations(residual, count: cols, as: act, into: lo)
}

private func matmulQuantized(_ w: WeightMatrix, _ act: GGMLType, _ x: UnsafePointer<Float>, n: Int,
                             _ y: UnsafeMutablePointer<Float>, threads: Int, scratch: MatMulScratch) {
    let cols = w.cols, stride = scratch.quantizedStride, loOffset = scratch.tokens * stride
    let xq = SendableRawPointer(scratch.quantized), residual = SendablePointer(scratch.residual)
    let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ys = SendablePointer(y)
    let temps = SendablePointer(scratch.rowTemp)
    // Quantize once: each token's row on its own (cheap next to the product).
    if n < 4 || threads == 1 {
        for t in 0..<n {
            quantizeTwoPart(x + t * cols, cols: cols, as: act, hi: xq.pointer + t * stride,
                            lo: xq.pointer + loOffset + t * stride, residual: residual.pointer)
        }
    } else {
        parallel(threads) { worker in
            for t in slice(n, worker: worker, of: threads) {
                quantizeTwoPart(xs.pointer + t * cols, cols: cols, as: act, hi: xq.pointer + t * stride,
                                lo: xq.pointer + loOffset + t * stride, residual: residual.pointer + worker * cols)
            }
        }
    }
    parallel(threads) { worker in
        let y = ys.pointer, q = UnsafeRawPointer(xq.pointer), lo = q + loOffset
        if n == 1 {
            for r in slice(w.rows, worker: worker, of: threads) {
                let row = w.row(r)
                y[r] = dotQuantized(w.type, row, q, count: cols) + dotQuantized(w.type, row, lo, count: cols)
            }
            return
        }
        let temp = temps.pointer + worker * MatMul.blockTokens
        let rows = slice(w.rows, worker: worker, of: threads, granule: MatMul.blockRows)
        var r0 = rows.lowerBound
        while r0 < rows.upperBound {
            let r1 = min(r0 + MatMul.blockRows, rows.upperBound)
            var t0 = 0
            while t0 < n {
                let tn = min(MatMul.blockTokens, n - t0)
                for r in r0..<r1 {
                    let out = y + t0 * w.rows + r
                    dotQuantizedRows(w.type, w.row(r), q + t0 * stride, xqStride: stride, rows: tn, count: cols,
                                     into: out, outStride: w.rows)
                    dotQuantizedRows(w.type, w.row(r), lo + t0 * stride, xqStride: stride, rows: tn, count: cols,
                                     into: temp, outStride: 1)
                    for t in 0..<tn { out[t * w.rows] += temp[t] }
                }
                t0 += tn
            }
            r0 = r1
        }
    }
}

/// Panel-packed weights (Q8_0, Q5_0, Q4_K, Q6_K), any number of tokens: quantize each token once
/// into split activations (~16-bit, ``Panels``), then run the 16-row panel micro-kernel over
/// blocks of tokens (tiles of 4, 2 or 1 tokens per call), so a worker's panels are read once
/// per token block and the block's activations stay in cache. One token (decode) streams each
/// panel once, prefetched ahead.
private func matmulPanels(_ w: WeightMatrix, _ panels: UnsafeRawPointer, _ x: UnsafePointer<Float>, n: Int,
                          _ y: UnsafeMutablePointer<Float>, threads: Int, scratch: MatMulScratch) {
    let cols = w.cols, stride = scratch.activationStride
    let act = SendableRawPointer(scratch.activations), packed = SendableRawPointer(UnsafeMutableRawPointer(mutating: panels))
    let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ys = SendablePointer(y)
    if n < 4 || threads == 1 {
        for t in 0..<n { Panels.quantize(x + t * cols, cols: cols, for: w.type, into: act.pointer + t * stride) }
    } else {
        parallel(threads) { worker in
            for t in slice(n, worker: worker, of: threads) {
                Panels.quantize(xs.pointer + t * cols, cols: cols, for: w.type, into: act.pointer + t * stride)
            }
        }
    }
    // Tokens per cache block: their activations within ~256 KB (L2), in whole tiles of 4.
    let blockTokens = max(4, min(64, (256 << 10) / stride / 4 * 4))
    let panelCount = Panels.panelCount(rows: w.rows), panelBytes = Panels.panelBytes(w.type, cols: cols)
    let prefetch = n == 1 ? MatMul.prefetchBytes : 0
    parallel(threads) { worker in
        let y = ys.pointer, a = UnsafeRawPointer(act.pointer)
        let mine = slice(panelCount, worker: worker, of: threads)
        var t0 = 0
        while t0 < n {
            let t1 = min(t0 + blockTokens, n)
            for p in mine {
                let r = p * Panels.rows, rows = min(Panels.rows, w.rows - r)
                var t = t0
                while t < t1 {
                    let left = t1 - t, nt = left >= 4 ? 4 : (left >= 2 ? 2 : 1)
                    Panels.gemm(w.type, packed.pointer + p * panelBytes, rows: rows, a + t * stride, aStride: stride,
                                tokens: nt, cols: cols, y + t * w.rows + r, outStride: w.rows, prefetch: prefetch)
                    t += nt
                }
            }
            t0 = t1
        }
    }
}

private func matmulFloat(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>,
                         threads: Int, scratch: MatMulScratch) {
    let xs = SendablePointer(UnsafeMutablePointer(mutating: x))
    let ys = SendablePointer(y)
    let tile = SendablePointer(scratch.tiles)
    let cols = w.cols
    parallel(threads) { worker in
        let x = UnsafePointer(xs.pointer), y = ys.pointer
        let rows = slice(w.rows, worker: worker, of: threads, granule: MatMul.tileRows)
        if n == 1 {
            let ahead = max(1, MatMul.prefetchBytes / max(w.rowBytes, 1))
            for r in rows {
                if r + ahead < rows.upperBound { qk_prefetch(w.row(r + ahead), w.rowBytes) }
                y[r] = dot(w.type, w.row(r), x, count: cols)
            }
            return
        }
        let buffer = tile.pointer + worker * MatMul.tileRows * cols
        var r0 = rows.lowerBound
        while r0 < rows.upperBound {
            let r1 = min(r0 + MatMul.tileRows, rows.upperBound)
            let tileData: UnsafePointer<Float>
            if w.type == .f32 {
                tileData = w.row(r0).assumingMemoryBound(to: Float.self)
            } else {
                dequantize(w.type, w.row(r0), buffer, count: (r1 - r0) * cols)
                tileData = UnsafePointer(buffer)
            }
            for t in 0..<n {
                let xt = x + t * cols, yt = y + t * w.rows
                for r in r0..<r1 {
                    yt[r] = dotF32(tileData + (r - r0) * cols, xt, count: cols)
                }
            }
            r0 = r1
        }
    }
}

/// A raw pointer that may cross into worker closures. The workers write disjoint slices.
struct SendableRawPointer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
}
