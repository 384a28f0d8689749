import Foundation

/// The rotary embedding's frequencies, as Hugging Face transformers computes them (float32 where
/// it computes in float32): `inverseFrequencies[i]` is the angle per position of pair `i`, and
/// cos and sin are multiplied by `attentionFactor` (1 without scaling).
struct RotaryFrequencies {
    var inverseFrequencies: [Float]
    var attentionFactor: Float

    init(config c: ModelConfig) {
        let dim = c.rotaryDims, half = dim / 2
        // pos_freqs = base^(2i / dim); plain RoPE uses 1 / pos_freqs.
        let positionFrequencies = (0..<half).map { i in powf(c.ropeTheta, Float(2 * i) / Float(dim)) }
        guard let yarn = c.ropeScaling else {
            inverseFrequencies = positionFrequencies.map { 1 / $0 }
            attentionFactor = 1
            return
        }
        // transformers' _compute_yarn_parameters: blend interpolated (÷ factor) and extrapolated
        // frequencies with a linear ramp over the dimensions between the correction bounds.
        let factor = Float(yarn.factor)
        let base = Double(c.ropeTheta)
        func correctionDimension(_ rotations: Double) -> Double {
            Double(dim) * log(Double(yarn.originalContextLength) / (rotations * 2 * Double.pi)) / (2 * log(base))
        }
        var low = correctionDimension(yarn.betaFast), high = correctionDimension(yarn.betaSlow)
        if yarn.truncate {
            low = low.rounded(.down)
            high = high.rounded(.up)
        }
        low = max(low, 0)
        high = min(high, Double(dim - 1))
        if low == high { high += 0.001 }  // transformers: "prevent singularity"
        let lowF = Float(low), spanF = Float(high - low)
        inverseFrequencies = positionFrequencies.enumerated().map { i, frequency in
            let extrapolation = 1 / frequency
            let interpolation = 1 / (factor * frequency)
            let ramp = min(max((Float(i) - lowF) / spanF, 0), 1)
            let extrapolationWeight = 1 - ramp
            return interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight
        }
        attentionFactor = Float(yarn.attentionFactor ?? YaRNScaling.magnitudeScale(yarn.factor))
    }
}

/// Qwen3's query/key norm: RMSNorm of each of `heads` consecutive heads of `v` in place,
/// `head = head / sqrt(mean(head²) + ε) · weight` with `weight` of `headDim` values.
func rmsNormHeads(_ v: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, weight: [Float], epsilon: Float) {
    precondition(weight.count == d)
    for h in 0..<heads {
        let head = v + h * d
        var sumSquares: Float = 0
        for i in 0..<d { sumSquares += head[i] * head[i] }
        let scale = 1 / (sumSquares / Float(d) + epsilon).squareRoot()
        for i in 0..<d { head[i] = weight[i] * (head[i] * scale) }
    }
}
