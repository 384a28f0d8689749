import CQwenKernels
import QwenKernels

/// `y[t, r] = Σ_c w[r, c] · x[t, c] (+ bias[r])` for `n` tokens: a matrix product against a
/// weight in any storage type, split by output rows across `threads` workers.
///
/// - One token (decode), other types: each weight row streams once through the fused
///   dequantize-dot kernel with exact float32 activations. Measured at least as fast as the
///   integer kernels with two-part activations (docs/PERFORMANCE.md).
/// - Q5_0 weights (with AVX-512 VNNI and a multiple of 64 columns), any number of tokens: the
///   4-row micro-kernels (CQwenGemm.h) against split activations (``SplitActivations``: ~16-bit
///   in two 8-bit parts, so results stay within float-reference noise).
/// - Several tokens (prefill), other quantized weights except Q8_0: `dotQuantizedRows` (several
///   tokens per weight block) against two-part activations quantized once per product.
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
    if MatMul.hasSplitKernel(for: w) {
        matmulSplitQ5_0(w, x, n: n, y, threads: threads, scratch: scratch)
    } else if n > 1, let act = MatMul.integerActivation(for: w.type) {
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
    /// Decode: how far ahead of the row being read the weights are prefetched (rows of the Q5_0
    /// kernel; bytes of the float path).
    static let prefetchRows = 8
    static let prefetchBytes = 4096
    static let blockTokens = 64

    /// The activation format for the integer path, or nil for the exact float path. Q8_0 weights
    /// stay on the float path: they are 8-bit already (the float dot streams them at memory
    /// speed) and the float-reference tests of Q8_0 models keep their float32 accuracy.
    @inline(__always)
    static func integerActivation(for type: GGMLType) -> GGMLType? {
        type == .q8_0 ? nil : activationType(for: type)
    }

    /// Q5_0 weights with an even number of blocks per row go through the 4-row micro-kernels on
    /// split activations (CQwenGemm.h) when the build has AVX-512 VNNI, for any number of tokens.
    static func hasSplitKernel(for w: WeightMatrix) -> Bool {
        w.type == .q5_0 && w.cols % 64 == 0 && SplitActivations.available
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
    let split: UnsafeMutableRawPointer           // (tokens, splitStride)
    let splitStride: Int
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
        splitStride = (SplitActivations.rowBytes(cols: width) + 63) & ~63
        let t = self.tokens, w = self.threads
        let tilesRaw = make(w * MatMul.tileRows * width * 4)
        quantized = make(2 * t * quantizedStride)
        split = make(t * splitStride)
        let residualRaw = make(w * width * 4)
        let rowTempRaw = make(w * MatMul.blockTokens * 4)
        tiles = tilesRaw.assumingMemoryBound(to: Float.self)
        residual = residualRaw.assumingMemoryBound(to: Float.self)
        rowTemp = rowTempRaw.assumingMemoryBound(to: Float.self)
        raw = [tilesRaw, quantized, split, residualRaw, rowTempRaw]
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

/// Q5_0, any number of tokens: quantize each token once into split activations (~16-bit,
/// ``SplitActivations``), then run the 4-row micro-kernel over blocks of `MatMul.blockTokens`
/// tokens (4, 2 or 1 tokens per call), so a worker's weight rows are read once per token block
/// and the block's activations stay in cache. One token (decode) reads each weight row once
/// and shares the activation loads between 4 rows.
private func matmulSplitQ5_0(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>,
                             threads: Int, scratch: MatMulScratch) {
    let cols = w.cols, blocks = cols / 32, ss = scratch.splitStride
    let split = SendableRawPointer(scratch.split)
    let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ys = SendablePointer(y)
    if n < 4 || threads == 1 {
        for t in 0..<n { SplitActivations.quantize(x + t * cols, cols: cols, into: split.pointer + t * ss) }
    } else {
        parallel(threads) { worker in
            for t in slice(n, worker: worker, of: threads) {
                SplitActivations.quantize(xs.pointer + t * cols, cols: cols, into: split.pointer + t * ss)
            }
        }
    }
    parallel(threads) { worker in
        let y = ys.pointer, a = UnsafeRawPointer(split.pointer)
        let rows = slice(w.rows, worker: worker, of: threads, granule: 4)
        var t0 = 0
        while t0 < n {
            let t1 = min(t0 + MatMul.blockTokens, n)
            var r = rows.lowerBound
            while r < rows.upperBound {
                let nr = min(4, rows.upperBound - r)
                if n == 1 && r + MatMul.prefetchRows + 4 <= rows.upperBound {
                    qk_prefetch(w.row(r + MatMul.prefetchRows), 4 * w.rowBytes)
                }
                var t = t0
                while t < t1 {
                    let left = t1 - t, nt = left >= 3 ? min(4, left) : left
                    SplitActivations.gemmQ5_0(w.row(r), rowBytes: w.rowBytes, rows: nr, a + t * ss, aStride: ss,
                                              tokens: nt, blocks: blocks, y + t * w.rows + r, outStride: w.rows)
                    t += nt
                }
                r += 4
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
