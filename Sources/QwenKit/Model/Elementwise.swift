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

/// `gate[i] = silu(gate[i]) · up[i]`, silu(g) = g / (1 + e^-g).
func swiGLUInPlace(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    qk_gate(Int32(QK_GATE_SWIGLU), gate, up, count)
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
    qk_attend(score, Int32(length), values, stride, Int32(d), out)
}

/// `y[i] += a · x[i]`.
func multiplyAdd(_ a: Float, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    qk_axpy(a, x, y, count)
}

/// `y[i] += w[i] · x[i]`.
func multiplyAdd(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                 count: Int) {
    qk_mul_add(w, x, y, count)
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
    qk_gate(Int32(QK_GATE_SILU), v, v, count)
}

/// `v[i] *= silu(gate[i])`.
func siluGateInPlace(_ v: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, count: Int) {
    qk_gate(Int32(QK_GATE_SILU_OF_GATE), v, gate, count)
}

/// `v[i] *= sigmoid(gate[i])`.
func sigmoidGateInPlace(_ v: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, count: Int) {
    qk_gate(Int32(QK_GATE_SIGMOID), v, gate, count)
}
