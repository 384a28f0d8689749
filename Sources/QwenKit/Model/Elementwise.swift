import CQwenKernels
import QwenKernels
import Foundation

// Elementwise kernels of the transformer block in SIMD16<Float> (Swift does not vectorize scalar
// float loops: it keeps strict floating-point order). Each works on raw pointers and allocates
// nothing. Where a lane's result is the same expression as the scalar code (add, RMSNorm's
// scaling, RoPE), it is bit-identical; exp is a vector polynomial within ~2 ulp of expf.

@inline(__always)
private func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
private func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// `x[i] += y[i]`.
func addInPlace(_ y: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        store16(load16(x + i) + load16(y + i), x + i)
        i += 16
    }
    while i < count {
        x[i] += y[i]
        i += 1
    }
}

/// `out = x / sqrt(mean(x²) + ε) · weight` for one row of `count` values.
func rmsNormRow(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                count: Int, epsilon: Float) {
    let meanSquare = dotF32(x, x, count: count) / Float(count)
    let scale = 1 / (meanSquare + epsilon).squareRoot()
    let s = SIMD16<Float>(repeating: scale)
    var i = 0
    while i + 16 <= count {
        store16(load16(weight + i) * (load16(x + i) * s), out + i)
        i += 16
    }
    while i < count {
        out[i] = weight[i] * (x[i] * scale)
        i += 1
    }
}

/// `e^x` per lane (Cephes' expf polynomial after range reduction by ln 2; inputs clamped to
/// ±88, so large negative inputs give ~1e-38 rather than 0 and no lane overflows to inf).
@inline(__always)
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let clamped = qk_clamp16(x, -87.33, 88.37)
    // n = round(x / ln 2) by the magic-number trick: the float's low mantissa bits hold n + 127.
    let magic = SIMD16<Float>(repeating: 12_582_912 + 127)
    let t = magic.addingProduct(clamped, SIMD16(repeating: 1.442_695_04))
    let n = t - magic
    var r = clamped.addingProduct(n, SIMD16(repeating: -0.693_359_375))
    r = r.addingProduct(n, SIMD16(repeating: 2.121_944_4e-4))
    var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
    p = SIMD16(repeating: 1.398_199_95e-3).addingProduct(p, r)
    p = SIMD16(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = SIMD16(repeating: 4.166_579_59e-2).addingProduct(p, r)
    p = SIMD16(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = SIMD16(repeating: 5.000_000_12e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    let bits = unsafeBitCast(t, to: SIMD16<UInt32>.self) &<< 23
    return y * unsafeBitCast(bits, to: SIMD16<Float>.self)
}

/// `gate[i] = silu(gate[i]) · up[i]`, silu(g) = g / (1 + e^-g).
func swiGLUInPlace(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let g = load16(gate + i)
        store16(g / (1 + exp16(-g)) * load16(up + i), gate + i)
        i += 16
    }
    while i < count {
        let g = gate[i]
        gate[i] = g / (1 + expf(g * -1)) * up[i]
        i += 1
    }
}

/// Qwen's "rotate half" RoPE on the first `rotary` dims of each of `heads` heads of `headDim`
/// values: `(a, b) ↦ (a·cos − b·sin, b·cos + a·sin)` for `a = v[i]`, `b = v[i + rotary/2]`;
/// dims `rotary ..< headDim` pass through (Qwen3.5's partial rotary).
func rotateHalf(_ v: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, rotary: Int,
                cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
    let half = rotary / 2
    for h in 0..<heads {
        let head = v + h * d
        var i = 0
        while i + 16 <= half {
            let a = load16(head + i), b = load16(head + i + half)
            let c = load16(cos + i), s = load16(sin + i)
            store16(a * c - b * s, head + i)
            store16(b * c + a * s, head + i + half)
            i += 16
        }
        while i < half {
            let a = head[i], b = head[i + half]
            head[i] = a * cos[i] - b * sin[i]
            head[i + half] = b * cos[i] + a * sin[i]
            i += 1
        }
    }
}

/// Softmax-weighted sum for one query head: `score[0..<length]` holds the raw scores on entry
/// (overwritten), and `out[0..<d] = Σ_p softmax(score)[p] · values[p * stride ..< + d]`.
func attendHead(scores score: UnsafeMutablePointer<Float>, length: Int, values: UnsafePointer<Float>,
                stride: Int, headDim d: Int, into out: UnsafeMutablePointer<Float>) {
    var maximum = -Float.infinity
    for p in 0..<length { maximum = max(maximum, score[p]) }
    let m = SIMD16<Float>(repeating: maximum)
    var sums = SIMD16<Float>()
    var p = 0
    while p + 16 <= length {
        let e = exp16(load16(score + p) - m)
        store16(e, score + p)
        sums += e
        p += 16
    }
    var sum = horizontalSum(sums)
    while p < length {
        let e = expf(score[p] - maximum)
        score[p] = e
        sum += e
        p += 1
    }
    let inverse = 1 / sum
    if d % 16 == 0 && d <= 256 {
        // Accumulate in registers (up to 16 vectors), one pass over the value rows.
        let chunks = d / 16
        var acc = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
        if chunks <= 4 {
            for p in 0..<length {
                let w = SIMD16<Float>(repeating: score[p] * inverse)
                let value = values + p * stride
                acc.0 = acc.0.addingProduct(w, load16(value))
                if chunks > 1 { acc.1 = acc.1.addingProduct(w, load16(value + 16)) }
                if chunks > 2 { acc.2 = acc.2.addingProduct(w, load16(value + 32)) }
                if chunks > 3 { acc.3 = acc.3.addingProduct(w, load16(value + 48)) }
            }
            store16(acc.0, out)
            if chunks > 1 { store16(acc.1, out + 16) }
            if chunks > 2 { store16(acc.2, out + 32) }
            if chunks > 3 { store16(acc.3, out + 48) }
            return
        }
        out.update(repeating: 0, count: d)
        for p in 0..<length {
            let w = SIMD16<Float>(repeating: score[p] * inverse)
            let value = values + p * stride
            var i = 0
            while i < d {
                store16(load16(out + i).addingProduct(w, load16(value + i)), out + i)
                i += 16
            }
        }
        return
    }
    out.update(repeating: 0, count: d)
    for p in 0..<length {
        let weight = score[p] * inverse
        let value = values + p * stride
        for i in 0..<d { out[i] = out[i].addingProduct(weight, value[i]) }
    }
}

/// `y[i] += a · x[i]`.
func multiplyAdd(_ a: Float, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    let s = SIMD16<Float>(repeating: a)
    var i = 0
    while i + 16 <= count {
        store16(load16(y + i).addingProduct(s, load16(x + i)), y + i)
        i += 16
    }
    while i < count {
        y[i] = y[i].addingProduct(a, x[i])
        i += 1
    }
}

/// `y[i] += w[i] · x[i]`.
func multiplyAdd(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                 count: Int) {
    var i = 0
    while i + 16 <= count {
        store16(load16(y + i).addingProduct(load16(w + i), load16(x + i)), y + i)
        i += 16
    }
    while i < count {
        y[i] = y[i].addingProduct(w[i], x[i])
        i += 1
    }
}

/// `v[i] *= a`.
func scale(_ v: UnsafeMutablePointer<Float>, by a: Float, count: Int) {
    let s = SIMD16<Float>(repeating: a)
    var i = 0
    while i + 16 <= count {
        store16(load16(v + i) * s, v + i)
        i += 16
    }
    while i < count {
        v[i] *= a
        i += 1
    }
}

/// `v[i] = silu(v[i])`, silu(x) = x / (1 + e^-x).
func siluInPlace(_ v: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let x = load16(v + i)
        store16(x / (1 + exp16(-x)), v + i)
        i += 16
    }
    while i < count {
        let x = v[i]
        v[i] = x / (1 + expf(x * -1))
        i += 1
    }
}

/// `v[i] *= silu(gate[i])`.
func siluGateInPlace(_ v: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let g = load16(gate + i)
        store16(load16(v + i) * (g / (1 + exp16(-g))), v + i)
        i += 16
    }
    while i < count {
        let g = gate[i]
        v[i] *= g / (1 + expf(g * -1))
        i += 1
    }
}

/// `v[i] *= sigmoid(gate[i])`.
func sigmoidGateInPlace(_ v: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        store16(load16(v + i) / (1 + exp16(-load16(gate + i))), v + i)
        i += 16
    }
    while i < count {
        v[i] /= 1 + expf(gate[i] * -1)
        i += 1
    }
}
