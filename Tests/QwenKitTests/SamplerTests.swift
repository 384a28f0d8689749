import Foundation
import XCTest
@testable import QwenKit

final class SamplerTests: XCTestCase {
    /// Samples from a copy of `logits` (the sampler writes penalties into its buffer).
    func draw(_ sampler: inout Sampler, _ logits: [Float], history: [Int] = []) -> Int {
        var copy = logits
        return copy.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, history: history) }
    }

    func randomLogits(count: Int, seed: UInt64, scale: Double = 3) -> [Float] {
        var rng = Xoshiro256StarStar(seed: seed)
        // Sum of uniforms: roughly normal, enough spread for the filters to bite.
        return (0..<count).map { _ in
            Float((rng.nextUnitDouble() + rng.nextUnitDouble() + rng.nextUnitDouble() - 1.5) * 2 * scale)
        }
    }

    func testGreedyIsArgmax() {
        for seed in 0..<20 as Range<UInt64> {
            let logits = randomLogits(count: 1000, seed: seed)
            var expected = 0
            for i in logits.indices where logits[i] > logits[expected] { expected = i }
            var sampler = Sampler(.greedy)
            XCTAssertEqual(draw(&sampler, logits), expected)
        }
    }

    func testGreedyTiesPickLowestID() {
        var sampler = Sampler(SamplingParameters(temperature: 0))
        XCTAssertEqual(draw(&sampler, [0, 5, 1, 5, 5]), 1)
    }

    func testTopKOneIsGreedy() {
        for seed in 0..<20 as Range<UInt64> {
            let logits = randomLogits(count: 5000, seed: 100 + seed, scale: 0.5)
            var greedy = Sampler(.greedy)
            var topOne = Sampler(SamplingParameters(temperature: 1.5, topK: 1, topP: 1, minP: 0, seed: seed))
            XCTAssertEqual(draw(&topOne, logits), draw(&greedy, logits))
        }
    }

    func testSeedsReproduceAndDiffer() {
        let logits = randomLogits(count: 200, seed: 7, scale: 0.5)
        let parameters = SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42)
        func sequence(_ seed: UInt64) -> [Int] {
            var p = parameters
            p.seed = seed
            var sampler = Sampler(p)
            return (0..<200).map { _ in draw(&sampler, logits) }
        }
        XCTAssertEqual(sequence(42), sequence(42))
        XCTAssertNotEqual(sequence(42), sequence(43))
        // Nearly flat distribution over 200 tokens: two seeds should rarely agree on a draw.
        let agreement = zip(sequence(1), sequence(2)).filter { $0 == $1 }.count
        XCTAssertLessThan(agreement, 20)
    }

    func testEmpiricalFrequenciesMatchSoftmax() {
        let logits: [Float] = [1.0, 2.0, 0.5, -1.0, 1.5]
        let temperature: Float = 0.7
        let expected: [Double] = {
            let e = logits.map { exp(Double($0) / Double(temperature)) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }()
        var sampler = Sampler(SamplingParameters(temperature: temperature, topK: 0, topP: 1, minP: 0, seed: 2024))
        let n = 20_000
        var counts = [Int](repeating: 0, count: logits.count)
        for _ in 0..<n { counts[draw(&sampler, logits)] += 1 }
        for i in logits.indices {
            let frequency = Double(counts[i]) / Double(n)
            let standardError = (expected[i] * (1 - expected[i]) / Double(n)).squareRoot()
            XCTAssertLessThan(abs(frequency - expected[i]), 4 * standardError + 1e-9,
                              "token \(i): \(frequency) vs \(expected[i])")
        }
    }

    /// The allowed set computed the slow, obvious way: sort everything, then apply each filter.
    func allowedSet(_ logits: [Float], topK: Int, topP: Float, minP: Float) -> Set<Int> {
        var order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if topK > 0 { order = Array(order.prefix(topK)) }
        let maxLogit = Double(logits[order[0]])
        let weights = order.map { exp(Double(logits[$0]) - maxLogit) }
        let total = weights.reduce(0, +)
        if topP < 1 {
            var cumulative = 0.0
            var keep = order.count
            for (i, w) in weights.enumerated() {
                cumulative += w / total
                if cumulative >= Double(topP) { keep = i + 1; break }
            }
            order = Array(order.prefix(keep))
        }
        if minP > 0 {
            // p_i / p_max = w_i / w_max = w_i.
            order = order.enumerated().filter { $0.offset == 0 || exp(Double(logits[$0.element]) - maxLogit) >= Double(minP) }.map(\.element)
        }
        return Set(order)
    }

    func checkNeverLeavesAllowedSet(count: Int, topK: Int, topP: Float, minP: Float, draws: Int, scale: Double = 2, file: StaticString = #filePath, line: UInt = #line) {
        let logits = randomLogits(count: count, seed: UInt64(count + topK), scale: scale)
        let allowed = allowedSet(logits, topK: topK, topP: topP, minP: minP)
        XCTAssertGreaterThan(allowed.count, 1, "the filter should leave a choice", file: file, line: line)
        XCTAssertLessThan(allowed.count, count, "the filter should exclude something", file: file, line: line)
        var sampler = Sampler(SamplingParameters(temperature: 1.3, topK: topK, topP: topP, minP: minP, seed: 9))
        var seen = Set<Int>()
        for _ in 0..<draws {
            let token = draw(&sampler, logits)
            XCTAssertTrue(allowed.contains(token), "token \(token) is outside the allowed set", file: file, line: line)
            seen.insert(token)
        }
        XCTAssertGreaterThan(seen.count, 1, "sampling should not collapse to one token", file: file, line: line)
    }

    func testTopKNeverReturnsExcludedToken() {
        checkNeverLeavesAllowedSet(count: 2000, topK: 10, topP: 1, minP: 0, draws: 2000)
    }

    func testTopPNeverReturnsExcludedToken() {
        checkNeverLeavesAllowedSet(count: 2000, topK: 0, topP: 0.5, minP: 0, draws: 2000)
        // After top-k, top-p renormalises over the k survivors.
        checkNeverLeavesAllowedSet(count: 2000, topK: 50, topP: 0.6, minP: 0, draws: 2000)
    }

    func testMinPNeverReturnsExcludedToken() {
        checkNeverLeavesAllowedSet(count: 2000, topK: 0, topP: 1, minP: 0.2, draws: 2000)
        checkNeverLeavesAllowedSet(count: 2000, topK: 40, topP: 0.95, minP: 0.05, draws: 2000)
    }

    func testTopPOnFullVocabularyWithSmallNucleus() {
        // Large vocabulary, top-k off, peaked logits: the nucleus fits in the partial top-256.
        checkNeverLeavesAllowedSet(count: 151_936, topK: 0, topP: 0.9, minP: 0, draws: 25, scale: 12)
    }

    func testTopPOnFullVocabularyWithLargeNucleus() {
        // Flat logits: the nucleus holds many thousands of tokens, so the full-sort path runs.
        checkNeverLeavesAllowedSet(count: 151_936, topK: 0, topP: 0.9, minP: 0, draws: 20, scale: 2)
        checkNeverLeavesAllowedSet(count: 151_936, topK: 0, topP: 0.9, minP: 0.3, draws: 20, scale: 2)
    }

    func testPenaltiesByHand() {
        var logits: [Float] = [2.0, -1.0, 0.5, 3.0]
        var sampler = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 2, repeatLastN: 64,
                                                 presencePenalty: 0.5, frequencyPenalty: 0.25))
        // Token 0 once, token 1 twice, token 3 once; 7 and -1 are outside the vocabulary.
        let token = logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, history: [0, 1, 1, 3, 7, -1]) }
        // 0:  2/2 − 0.25 − 0.5 = 0.25;  1: −1·2 − 0.5 − 0.5 = −3;  2: untouched;  3: 3/2 − 0.75 = 0.75
        XCTAssertEqual(logits, [0.25, -3.0, 0.5, 0.75])
        XCTAssertEqual(token, 3)
    }

    func testRepeatPenaltyWindowAndEffectOnGreedy() {
        var logits: [Float] = [2.0, 1.9, -0.5]
        var sampler = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.1, repeatLastN: 2))
        // Only the last two tokens (0 and 2) count; token 1 at the front is outside the window.
        let token = logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, history: [1, 0, 2]) }
        XCTAssertEqual(logits[0], 2.0 / 1.1, accuracy: 1e-6)
        XCTAssertEqual(logits[1], 1.9)
        XCTAssertEqual(logits[2], -0.55, accuracy: 1e-6)
        XCTAssertEqual(token, 1)
    }

    func testNoPenaltyWhenDisabled() {
        var logits: [Float] = [2.0, -1.0]
        var sampler = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.5, repeatLastN: 0, presencePenalty: 1))
        _ = logits.withUnsafeMutableBufferPointer { sampler.sample(logits: $0, history: [0, 1]) }
        XCTAssertEqual(logits, [2.0, -1.0])
    }

    func testXoshiroKnownOutput() {
        // SplitMix64 from 0 gives the state below; the first output of xoshiro256** for it was
        // computed with the reference C code (s = {e220a8397b1dcdaf, 6e789e6aa1b965f4,
        // 06c45d188009454f, f88bb8a8724c81ec}).
        var rng = Xoshiro256StarStar(seed: 0)
        let first = rng.next()
        let s1: UInt64 = 0x6E78_9E6A_A1B9_65F4
        let rotated = ((s1 &* 5) << 7) | ((s1 &* 5) >> 57)
        XCTAssertEqual(first, rotated &* 9)
    }
}
