import QwenKernels

/// `y[t, r] = Σ_c w[r, c] · x[t, c] (+ bias[r])` for `n` tokens: a matrix product against a
/// weight in any storage type, split by output rows across `threads` workers.
///
/// One token (decode) streams each weight row once through the fused dequantize-dot kernel.
/// Several tokens (prefill) dequantize a tile of rows once into float32 and reuse it for every
/// token, so the weights are decoded once per batch, not once per token.
/// - Parameters:
///   - x: `(n, w.cols)` row-major activations.
///   - y: `(n, w.rows)` row-major output.
///   - scratch: at least `threads * MatMul.tileRows * w.cols` floats.
func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>,
            bias: [Float]? = nil, threads: Int, scratch: UnsafeMutablePointer<Float>) {
    let xs = SendablePointer(UnsafeMutablePointer(mutating: x))
    let ys = SendablePointer(y)
    let tile = SendablePointer(scratch)
    let cols = w.cols
    withExtendedLifetime(bias) {
        parallel(threads) { worker in
            let x = UnsafePointer(xs.pointer), y = ys.pointer
            let rows = slice(w.rows, worker: worker, of: threads, granule: MatMul.tileRows)
            if n == 1 {
                for r in rows { y[r] = dot(w.type, w.row(r), x, count: cols) }
            } else {
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
            if let bias {
                for t in 0..<n {
                    let yt = y + t * w.rows
                    for r in rows { yt[r] += bias[r] }
                }
            }
        }
    }
}

enum MatMul {
    /// Weight rows dequantized at once in prefill: 16 rows × 4864 floats = 311 KB, within L2.
    static let tileRows = 16
}
