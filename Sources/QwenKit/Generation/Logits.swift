import Foundation

/// Small reductions over one position's logits.
public enum Logits {
    /// The `k` highest logits with their ids (indices into `row`), highest first; ties keep the lower id first.
    public static func top(_ row: UnsafeBufferPointer<Float>, k: Int) -> [(id: Int, logit: Float)] {
        var best: [(id: Int, logit: Float)] = []
        let k = min(k, row.count)
        guard k > 0 else { return best }
        best.reserveCapacity(k + 1)
        for (id, logit) in row.enumerated() {
            if best.count == k, let last = best.last, !(logit > last.logit) { continue }
            let at = best.firstIndex { logit > $0.logit } ?? best.count
            best.insert((id, logit), at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    /// `log Σ exp(logit)`, computed stably in double precision.
    public static func logSumExp(_ row: UnsafeBufferPointer<Float>) -> Float {
        let maximum = row.max() ?? 0
        var sum: Double = 0
        for logit in row { sum += exp(Double(logit - maximum)) }
        return maximum + Float(log(sum))
    }
}
