import Foundation
import XCTest
@testable import QwenKit

/// The Qwen3.5 hybrids (Gated DeltaNet + gated attention), dense and MoE, from the Hugging Face
/// directory and from llama.cpp's Q8_0 GGUF, against transformers' float32 reference
/// (`../shared/fixtures/models/tiny-qwen35*`), under the fixtures README's hybrid bound
/// 1e-3 + 1e-4·|logit|. The 65- and 140-token prompts cross the 64-token chunk boundaries.
final class Qwen35Tests: XCTestCase {
    /// The transformer of a Hugging Face directory (the tokenizer is tested on its own).
    static func directory(_ folder: String) throws -> Transformer {
        let path = Fixtures.url("models/\(folder)").path
        return try Transformer(safetensors: SafetensorsCheckpoint(directory: path),
                               config: ModelConfig(huggingFace: JSONFile(path: path + "/config.json")))
    }

    static func gguf(_ folder: String) throws -> Transformer {
        try Transformer(gguf: GGUFFile(path: Fixtures.url("models/\(folder)/\(folder)-q8_0.gguf").path))
    }

    func testDenseDirectory() throws {
        let model = try Self.directory("tiny-qwen35")
        let c = model.config
        XCTAssertEqual(c.architecture, "qwen35")
        XCTAssertEqual(c.layerKinds, [.deltaNet, .deltaNet, .deltaNet, .attention, .deltaNet, .deltaNet, .deltaNet, .attention])
        XCTAssertEqual(c.rotaryDims, 8)
        XCTAssertEqual(c.deltaNet?.valueHeads, 4)
        XCTAssertEqual(c.deltaNet?.tiledValueHeads, false)
        try TinyModelTests.check(model, folder: "tiny-qwen35", reference: "reference.json",
                                 tolerance: TinyModelTests.hybridTolerance)
        try checkLogSumExp(model, folder: "tiny-qwen35", reference: "reference.json")
    }

    func testDenseDirectoryOneThread() throws {
        try TinyModelTests.check(Self.directory("tiny-qwen35"), folder: "tiny-qwen35",
                                 reference: "reference.json", threads: 1, tolerance: TinyModelTests.hybridTolerance)
    }

    func testDenseQ8GGUF() throws {
        let model = try Self.gguf("tiny-qwen35")
        XCTAssertEqual(model.config.layerCount, 8, "the MTP block is not a layer")
        XCTAssertEqual(model.config.deltaNet?.tiledValueHeads, true)
        try TinyModelTests.check(model, folder: "tiny-qwen35", reference: "reference-q8_0.json",
                                 tolerance: TinyModelTests.hybridTolerance)
        try checkLogSumExp(model, folder: "tiny-qwen35", reference: "reference-q8_0.json")
    }

    func testMoEDirectory() throws {
        let model = try Self.directory("tiny-qwen35-moe")
        let c = model.config
        XCTAssertEqual(c.architecture, "qwen35moe")
        XCTAssertEqual(c.experts?.count, 8)
        XCTAssertEqual(c.experts?.sharedFeedForwardSize, 64)
        try TinyModelTests.check(model, folder: "tiny-qwen35-moe", reference: "reference.json",
                                 tolerance: TinyModelTests.hybridTolerance)
        try checkLogSumExp(model, folder: "tiny-qwen35-moe", reference: "reference.json")
    }

    func testMoEQ8GGUF() throws {
        let model = try Self.gguf("tiny-qwen35-moe")
        XCTAssertEqual(model.config.layerCount, 4)
        try TinyModelTests.check(model, folder: "tiny-qwen35-moe", reference: "reference-q8_0.json",
                                 tolerance: TinyModelTests.hybridTolerance)
    }

    /// log-sum-exp over the whole vocabulary at the last position (the reference keeps only the top 50 logits).
    private func checkLogSumExp(_ model: Transformer, folder: String, reference: String) throws {
        for c in try TinyModelTests.cases(reference, folder: folder) {
            let logits = InferenceState(model: model, contextLength: c.inputIDs.count, threads: 2).forward(c.inputIDs)
            let ours = logits.withUnsafeBufferPointer { Logits.logSumExp($0) }
            XCTAssertEqual(ours, c.lastLogSumExp, accuracy: TinyModelTests.hybridTolerance(c.lastLogSumExp),
                           "\(folder)/\(reference) \(c.name): log-sum-exp")
        }
    }

    /// The longest prompt (140 tokens: chunks of 64, 64, 12) in one batch, token by token, and in
    /// uneven batches give the same logits within the hybrid bound.
    func testPrefillEqualsTokenByToken() throws {
        for model in [try Self.directory("tiny-qwen35"), try Self.gguf("tiny-qwen35")] {
            let v = model.config.vocabularySize
            let prompt = try XCTUnwrap(try TinyModelTests.cases("reference.json", folder: "tiny-qwen35")
                .map(\.inputIDs).max { $0.count < $1.count })
            XCTAssertGreaterThan(prompt.count, 128)
            let batch = InferenceState(model: model, contextLength: 256, threads: 2).forward(prompt, logits: .all)
            let stepper = InferenceState(model: model, contextLength: 256, threads: 2)
            let pieces = InferenceState(model: model, contextLength: 256, threads: 2)
            var piecewise: [Float] = []
            var start = 0
            for size in [3, 70, 1, 9, 64] + Array(repeating: 1, count: prompt.count) where start < prompt.count {
                let end = min(prompt.count, start + size)
                piecewise += pieces.forward(Array(prompt[start..<end]), logits: .all)
                start = end
            }
            var worst: Float = 0
            for (p, id) in prompt.enumerated() {
                let step = stepper.forward([id])
                for i in 0..<v {
                    let expected = batch[p * v + i]
                    worst = max(worst, abs(step[i] - expected), abs(piecewise[p * v + i] - expected))
                    if abs(step[i] - expected) > TinyModelTests.hybridTolerance(expected)
                        || abs(piecewise[p * v + i] - expected) > TinyModelTests.hybridTolerance(expected) {
                        XCTFail("position \(p) id \(i): batch \(expected), step \(step[i]), pieces \(piecewise[p * v + i])")
                        return
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-3)
        }
    }

    /// Sequences stepped together (each with its own KV cache and recurrent state) get the
    /// logits they get alone.
    func testBatchedDecodeEqualsSeparateDecodes() throws {
        for model in [try Self.directory("tiny-qwen35"), try Self.directory("tiny-qwen35-moe")] {
            let prompts = [[9419], [760, 3841, 13477, 37550, 34987], [14556, 1814, 11, 419, 1000, 1001, 1002, 7, 8, 9, 10]]
            let next = [1814, 916, 5]
            func prefilled() -> [InferenceState] {
                prompts.map { prompt in
                    let state = InferenceState(model: model, contextLength: 32, threads: 2)
                    _ = state.forward(prompt.map { $0 % model.config.vocabularySize })
                    return state
                }
            }
            let single = prefilled(), batched = prefilled()
            for step in 0..<3 {
                let tokens = next.map { ($0 + step) % model.config.vocabularySize }
                let alone = zip(single, tokens).map { $0.forward([$1]) }
                let together = InferenceState.forward(batch: batched, tokens: tokens)
                for s in prompts.indices {
                    for (a, b) in zip(alone[s], together[s]) where abs(a - b) > TinyModelTests.hybridTolerance(a) {
                        XCTFail("step \(step) sequence \(s): \(a) alone vs \(b) batched")
                        return
                    }
                }
            }
        }
    }

    /// Restoring a checkpoint and continuing gives what recomputing from scratch gives.
    func testCheckpointRestoreEqualsRecompute() throws {
        let model = try Self.directory("tiny-qwen35")
        let prompt = Array(1000..<1080)
        let fresh = InferenceState(model: model, contextLength: 128, threads: 2)
        let expected = fresh.forward(prompt, logits: .all)

        let state = InferenceState(model: model, contextLength: 128, threads: 2)
        _ = state.forward(Array(prompt[..<50]))
        let checkpoint = state.checkpoint()
        XCTAssertEqual(checkpoint.position, 50)
        _ = state.forward([7, 8, 9, 10, 11, 12])          // a different continuation
        state.restore(checkpoint)
        XCTAssertEqual(state.position, 50)
        let resumed = state.forward(Array(prompt[50...]), logits: .all)
        let v = model.config.vocabularySize
        for (i, value) in resumed.enumerated() where abs(value - expected[50 * v + i]) > TinyModelTests.hybridTolerance(value) {
            XCTFail("index \(i): resumed \(value) vs recomputed \(expected[50 * v + i])")
            return
        }
        // Going back to the start forgets everything.
        state.truncate(to: 0)
        let again = state.forward(prompt, logits: .all)
        XCTAssertEqual(again, expected)
    }

    /// The chunked gated delta rule equals the plain recurrence on random inputs, across block
    /// boundaries, with grouped and tiled value heads, head sizes on and off the 16-wide tiles,
    /// and a carried-in state.
    func testChunkedRuleEqualsRecurrence() {
        var random = SplitMix64(seed: 35)
        func uniform() -> Float { Float(Double(random.next() >> 11) / Double(1 << 53)) * 2 - 1 }
        // Sizes of 16-multiples take the tiled products; 20 and 12 the plain loops.
        for (tiled, keyDim, valueDim) in [(false, 32, 16), (true, 32, 16), (false, 20, 12)] {
            let d = DeltaNetConfig(keyHeads: 2, keyDim: keyDim, valueHeads: 4, valueDim: valueDim, convKernel: 4,
                                   tiledValueHeads: tiled)
            let n = 150
            let scratch = DeltaNetScratch(config: d, tokens: n, threads: 2)
            for i in 0..<n * d.convChannels { scratch.qkv[i] = uniform() }
            for t in 0..<n {
                let row = scratch.qkv + t * d.convChannels
                for h in 0..<2 * d.keyHeads { l2Normalize(row + h * d.keyDim, count: d.keyDim, scale: 1) }
                for h in 0..<d.valueHeads {
                    scratch.beta[t * d.valueHeads + h] = (uniform() + 1) / 2
                    scratch.decay[t * d.valueHeads + h] = -0.2 * (uniform() + 1)
                }
            }
            let stateSize = d.valueHeads * d.keyDim * d.valueDim
            let initial = (0..<stateSize).map { _ in uniform() * 0.1 }
            func run(recurrent: Bool) -> (out: [Float], state: [Float]) {
                var state = initial
                let conv = UnsafeMutablePointer<Float>.allocate(capacity: 1)
                defer { conv.deallocate() }
                state.withUnsafeMutableBufferPointer { s in
                    GatedDeltaRule.run(segment: DeltaNetSegment(start: 0, count: n, conv: conv,
                                                                recurrent: s.baseAddress.unsafelyUnwrapped),
                                       config: d, scratch: scratch, threads: 2, forceRecurrent: recurrent)
                }
                return (Array(UnsafeBufferPointer(start: scratch.core, count: n * d.valueWidth)), state)
            }
            let reference = run(recurrent: true), chunked = run(recurrent: false)
            let outError = zip(reference.out, chunked.out).map { abs($0 - $1) }.max() ?? .infinity
            let stateError = zip(reference.state, chunked.state).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(outError, 1e-4, "tiled \(tiled): outputs")
            XCTAssertLessThan(stateError, 1e-4, "tiled \(tiled): final state")
            XCTAssertGreaterThan(reference.out.map(abs).max() ?? 0, 0.01, "the outputs are not trivially zero")
        }
    }
}
