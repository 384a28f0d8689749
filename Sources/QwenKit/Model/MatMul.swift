import QwenKernels

/// `y[t, r] = Σ_c w[r, c] · x[t, c] (+ bias[r])` for `n` tokens: a matrix product against a
/// weight in any storage type, split by output rows across `threads` workers.
///
/// Two paths:
/// - Integer (quantized weights other than Q8_0, as llama.cpp does): the activations are
///   quantized once per product (Q8_0/Q8_1/Q8_K, `activationType(for:)`), then every weight row
///   is dotted against them with integer dot products (`dotQuantized` for one token,
///   `dotQuantizedRows` for a block of tokens, which reads each weight block once per block).
/// - Float (F32, F16, BF16 and Q8_0): exact float32 activations. One token streams each row
///   through the fused dequantize-dot kernel; several tokens dequantize a tile of rows once into
///   float32 and reuse it for every token.
/// - Parameters:
///   - x: `(n, w.cols)` row-major activations.
///   - y: `(n, w.rows)` row-major output.
///   - scratch: sized for at least `n` tokens of this width and `threads` workers.
func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>,
            bias: [Float]? = nil, threads: Int, scratch: MatMulScratch) {
    precondition(n <= scratch.tokens && w.cols <= scratch.width && threads <= scratch.threads,
                 "matmul scratch too small")
    if let act = MatMul.integerActivation(for: w.type) {
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

/// Scratch memory for ``matmul``: float weight tiles (per worker) and quantized activations
/// (per token), allocated once per ``InferenceState`` batch size.
final class MatMulScratch: @unchecked Sendable {
    let tokens: Int, width: Int, threads: Int
    let tiles: UnsafeMutablePointer<Float>       // (threads, MatMul.tileRows, width)
    let quantized: UnsafeMutableRawPointer       // (tokens, quantizedRowBytes(width))
    let quantizedStride: Int

    init(tokens: Int, width: Int, threads: Int) {
        self.tokens = max(tokens, 1)
        self.width = width
        self.threads = max(threads, 1)
        let tileCount = max(self.threads * MatMul.tileRows * width, 1)
        tiles = .allocate(capacity: tileCount)
        tiles.initialize(repeating: 0, count: tileCount)
        quantizedStride = (MatMul.quantizedRowBytes(cols: width) + 63) & ~63
        quantized = .allocate(byteCount: max(self.tokens * quantizedStride, 1), alignment: 64)
        quantized.initializeMemory(as: UInt8.self, repeating: 0, count: max(self.tokens * quantizedStride, 1))
    }

    deinit {
        tiles.deallocate()
        quantized.deallocate()
    }
}

private func matmulQuantized(_ w: WeightMatrix, _ act: GGMLType, _ x: UnsafePointer<Float>, n: Int,
                             _ y: UnsafeMutablePointer<Float>, threads: Int, scratch: MatMulScratch) {
    let cols = w.cols, stride = scratch.quantizedStride
    let xq = SendableRawPointer(scratch.quantized)
    let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ys = SendablePointer(y)
    // Quantize once: each token's row on its own (cheap next to the product).
    if n < 4 || threads == 1 {
        for t in 0..<n { quantizeActivations(x + t * cols, count: cols, as: act, into: xq.pointer + t * stride) }
    } else {
        parallel(threads) { worker in
            for t in slice(n, worker: worker, of: threads) {
                quantizeActivations(xs.pointer + t * cols, count: cols, as: act, into: xq.pointer + t * stride)
            }
        }
    }
    parallel(threads) { worker in
        let y = ys.pointer, q = UnsafeRawPointer(xq.pointer)
        if n == 1 {
            for r in slice(w.rows, worker: worker, of: threads) {
                y[r] = dotQuantized(w.type, w.row(r), q, count: cols)
            }
            return
        }
        let rows = slice(w.rows, worker: worker, of: threads, granule: MatMul.blockRows)
        var r0 = rows.lowerBound
        while r0 < rows.upperBound {
            let r1 = min(r0 + MatMul.blockRows, rows.upperBound)
            var t0 = 0
            while t0 < n {
                let tn = min(MatMul.blockTokens, n - t0)
                for r in r0..<r1 {
                    dotQuantizedRows(w.type, w.row(r), q + t0 * stride, xqStride: stride, rows: tn, count: cols,
                                     into: y + t0 * w.rows + r, outStride: w.rows)
                }
                t0 += tn
            }
            r0 = r1
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
            for r in rows { y[r] = dot(w.type, w.row(r), x, count: cols) }
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
