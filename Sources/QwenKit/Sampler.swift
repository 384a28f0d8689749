import Foundation

/// Settings for choosing the next token, named and ordered as in llama.cpp's default sampler chain.
///
/// The defaults are llama.cpp's: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no repeat
/// penalty, a 64-token penalty window, no presence/frequency penalty, random seed.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature; 0 (or less) means greedy: argmax after the penalties.
    public var temperature: Float
    /// Keep only the `topK` most likely tokens; 0 (or ≥ vocabulary size) turns it off.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches `topP`; 1 turns it off.
    public var topP: Float
    /// Drop tokens whose probability is below `minP` × the top token's probability; 0 turns it off.
    public var minP: Float
    /// Repetition penalty over the last `repeatLastN` tokens: positive logits are divided by it,
    /// negative ones multiplied. 1 turns it off.
    public var repeatPenalty: Float
    /// How many of the most recent history tokens the three penalties look at; 0 turns the
    /// penalties off, −1 means the whole history (llama.cpp uses the context size for −1).
    public var repeatLastN: Int
    /// Subtracted once from the logit of every token present in the window (OpenAI's definition).
    public var presencePenalty: Float
    /// Subtracted from a token's logit once per occurrence in the window (OpenAI's definition).
    public var frequencyPenalty: Float
    /// Seed for the random generator; nil draws one from the system generator.
    public var seed: UInt64?

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repeatPenalty: Float = 1, repeatLastN: Int = 64, presencePenalty: Float = 0,
                frequencyPenalty: Float = 0, seed: UInt64? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.seed = seed
    }

    /// Deterministic argmax decoding with no penalties.
    public static let greedy = SamplingParameters(temperature: 0, topK: 0, topP: 1, minP: 0)
}

/// SplitMix64 (Steele, Lea & Flood): a tiny generator whose sequence is fixed by its seed on every
/// platform. Seeds ``Xoshiro256StarStar``, the agent's demo database and test data.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64 so that any 64-bit seed, zero
/// included, gives a well-mixed non-zero state. Small, fast and reproducible across platforms,
/// which `SystemRandomNumberGenerator` is not.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var mix = SplitMix64(seed: seed)
        s0 = mix.next()
        s1 = mix.next()
        s2 = mix.next()
        s3 = mix.next()
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) <<< 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 <<< 45
        return result
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}

infix operator <<< : BitwiseShiftPrecedence
private func <<< (x: UInt64, k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

/// Picks the next token from a logit vector: penalties → top-k → top-p → min-p → temperature →
/// a draw from the softmax, as llama.cpp's default chain does (top-p and min-p therefore see
/// temperature-1 probabilities).
public struct Sampler: Sendable {
    /// The settings this sampler was made with.
    public let parameters: SamplingParameters
    private var rng: Xoshiro256StarStar
    // Scratch space reused between calls so that a decode loop does not allocate per token.
    private var candidates: [Candidate] = []

    struct Candidate {
        var id: Int
        var logit: Float
    }

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        var system = SystemRandomNumberGenerator()
        rng = Xoshiro256StarStar(seed: parameters.seed ?? system.next())
    }

    /// Chooses a token id in `0 ..< logits.count`.
    ///
    /// - Parameters:
    ///   - logits: one score per vocabulary entry. **Modified in place**: the penalties are written
    ///     into it (this avoids copying 152k floats per token); do not reuse it afterwards.
    ///   - history: the tokens so far (prompt and generated), oldest first; only the last
    ///     `repeatLastN` are read, and ids outside the vocabulary are ignored.
    /// - Returns: the chosen id; 0 for an empty vocabulary. NaN logits are never chosen unless
    ///   every logit is NaN.
    public mutating func sample(logits: UnsafeMutableBufferPointer<Float>, history: some Collection<Int>) -> Int {
        let n = logits.count
        guard n > 0 else { return 0 }
        applyPenalties(logits: logits, history: history)

        let p = parameters
        if p.temperature <= 0 {
            return Sampler.argmax(logits)
        }

        // Candidates in descending order when any truncation is on; unsorted otherwise.
        candidates.removeAll(keepingCapacity: true)
        let topK = p.topK > 0 && p.topK < n ? p.topK : 0
        let topPOn = p.topP < 1
        let minPOn = p.minP > 0
        // Top-p normalises over everything top-k left: the whole vocabulary when top-k is off,
        // even though only a prefix of it is materialised as candidates.
        var fullVocabularyMass: Double?
        if topK > 0 {
            Sampler.selectTop(topK, from: logits, into: &candidates)
        } else if topPOn || minPOn {
            fullVocabularyMass = selectForNucleus(logits: logits)
        } else {
            candidates.reserveCapacity(n)
            for i in 0..<n where !logits[i].isNaN { candidates.append(Candidate(id: i, logit: logits[i])) }
        }
        guard let best = candidates.first else { return Sampler.argmax(logits) }

        if topPOn, candidates.count > 1 {
            // Probabilities renormalised over what top-k left, as llama.cpp's top-p does.
            let maxLogit = Double(best.logit)
            var total = 0.0
            if let fullVocabularyMass {
                total = fullVocabularyMass
            } else {
                for c in candidates { total += exp(Double(c.logit) - maxLogit) }
            }
            let target = Double(p.topP) * total
            var cumulative = 0.0
            var keep = candidates.count
            for (i, c) in candidates.enumerated() {
                cumulative += exp(Double(c.logit) - maxLogit)
                if cumulative >= target {
                    keep = i + 1
                    break
                }
            }
            candidates.removeSubrange(keep...)
        }
        if minPOn, candidates.count > 1 {
            // p_i ≥ minP · p_max  ⇔  logit_i ≥ max logit + ln(minP); no normalisation needed.
            let threshold = Double(best.logit) + log(Double(p.minP))
            let keep = candidates.firstIndex { Double($0.logit) < threshold } ?? candidates.count
            candidates.removeSubrange(max(keep, 1)...)
        }

        // Temperature, then an inverse-CDF draw. Accumulating in Double keeps the tail accurate.
        let invT = 1 / Double(p.temperature)
        let maxLogit = candidates.reduce(-Double.infinity) { max($0, Double($1.logit)) }
        guard maxLogit.isFinite else { return best.id }
        var total = 0.0
        for c in candidates { total += exp((Double(c.logit) - maxLogit) * invT) }
        let u = rng.nextUnitDouble() * total
        var cumulative = 0.0
        for c in candidates {
            cumulative += exp((Double(c.logit) - maxLogit) * invT)
            if u < cumulative { return c.id }
        }
        // Rounding can leave u a hair above the final sum; the last candidate with mass owns it.
        return candidates.last(where: { Double($0.logit) > -.infinity })?.id ?? best.id
    }

    /// Repeat, presence and frequency penalties over the last `repeatLastN` history tokens.
    private func applyPenalties(logits: UnsafeMutableBufferPointer<Float>, history: some Collection<Int>) {
        let p = parameters
        guard p.repeatLastN != 0, p.repeatPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0 else { return }
        let window = p.repeatLastN < 0 ? history.count : min(p.repeatLastN, history.count)
        guard window > 0 else { return }
        var counts: [Int: Int] = [:]
        for token in history.suffix(window) where token >= 0 && token < logits.count {
            counts[token, default: 0] += 1
        }
        for (token, count) in counts {
            var logit = logits[token]
            if p.repeatPenalty != 1 {
                logit = logit > 0 ? logit / p.repeatPenalty : logit * p.repeatPenalty
            }
            logit -= Float(count) * p.frequencyPenalty + p.presencePenalty
            logits[token] = logit
        }
    }

    /// Index of the largest logit; ties go to the lowest id; NaNs are skipped.
    static func argmax(_ logits: UnsafeMutableBufferPointer<Float>) -> Int {
        var bestIndex = 0
        var bestValue = -Float.infinity
        var found = false
        for i in 0..<logits.count {
            let v = logits[i]
            if !found ? !v.isNaN : v > bestValue {
                bestIndex = i
                bestValue = v
                found = true
            }
        }
        return bestIndex
    }

    /// "a ranks above b": higher logit, then lower id, so every ordering here is deterministic.
    @inline(__always)
    static func above(_ a: Candidate, _ b: Candidate) -> Bool {
        a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
    }

    /// The `k` best entries of `logits`, sorted best first, by a size-k min-heap: O(n log k)
    /// instead of sorting all 152k entries. NaNs are skipped.
    static func selectTop(_ k: Int, from logits: UnsafeMutableBufferPointer<Float>, into out: inout [Candidate]) {
        var heap: [Candidate] = []  // heap[0] is the worst of the kept entries
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var worst = i
                if l < heap.count, above(heap[worst], heap[l]) { worst = l }
                if r < heap.count, above(heap[worst], heap[r]) { worst = r }
                if worst == i { return }
                heap.swapAt(i, worst)
                i = worst
            }
        }
        for i in 0..<logits.count {
            let v = logits[i]
            if v.isNaN { continue }
            let c = Candidate(id: i, logit: v)
            if heap.count < k {
                heap.append(c)
                var j = heap.count - 1
                while j > 0 {
                    let parent = (j - 1) / 2
                    guard above(heap[parent], heap[j]) else { break }
                    heap.swapAt(parent, j)
                    j = parent
                }
            } else if above(c, heap[0]) {
                heap[0] = c
                siftDown(0)
            }
        }
        heap.sort(by: above)
        out.append(contentsOf: heap)
    }

    /// Sorted candidates for top-p / min-p without top-k. Sorting the whole vocabulary per token
    /// is wasteful when the nucleus is small (the usual case), so first try a partial top-256 and
    /// keep it when it provably contains the nucleus or the min-p set. Otherwise sort, but only
    /// the tokens above the min-p threshold (the rest are cut anyway, and being the tail they do
    /// not change the top-p prefix sums).
    /// Returns Σ exp(logit − max logit) over the whole vocabulary, the normaliser top-p needs.
    private mutating func selectForNucleus(logits: UnsafeMutableBufferPointer<Float>) -> Double {
        let n = logits.count
        let p = parameters
        var maxLogit = -Double.infinity
        for i in 0..<n where Double(logits[i]) > maxLogit { maxLogit = Double(logits[i]) }
        var total = 0.0
        if maxLogit.isFinite {
            for i in 0..<n where !logits[i].isNaN { total += exp(Double(logits[i]) - maxLogit) }
        }
        let minPThreshold = p.minP > 0 ? maxLogit + log(Double(p.minP)) : -Double.infinity

        candidates.removeAll(keepingCapacity: true)
        Sampler.selectTop(min(256, n), from: logits, into: &candidates)
        if candidates.count >= n || !maxLogit.isFinite { return total }
        if let last = candidates.last, Double(last.logit) < minPThreshold { return total }
        if p.topP < 1 {
            var kept = 0.0
            for c in candidates { kept += exp(Double(c.logit) - maxLogit) }
            if kept >= Double(p.topP) * total { return total }
        }

        candidates.removeAll(keepingCapacity: true)
        candidates.reserveCapacity(n)
        for i in 0..<n {
            let v = logits[i]
            // `!(v < t)` keeps the max even if the threshold rounds above it; NaN fails `>=`.
            if !v.isNaN, !(Double(v) < minPThreshold) { candidates.append(Candidate(id: i, logit: v)) }
        }
        candidates.sort(by: Sampler.above)
        return total
    }
}
