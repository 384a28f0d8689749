import Foundation
import QwenKit
import XCTest

/// Continuous batching: several sequences stepped in one forward pass give each the logits it
/// would get alone.
final class BatchTests: XCTestCase {
    func testBatchedStepEqualsSeparateSteps() throws {
        for file in ["tiny-qwen2-f32.gguf", "tiny-qwen2-q8_0.gguf"] {
            let model = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/tiny-qwen2/\(file)").path))
            let v = model.config.vocabularySize
            // Three sequences of different lengths, so their positions differ in the batch.
            let prompts = [[9707], [785, 3974, 13876, 38835, 34208], [14990, 1879, 11, 419]]
            let next = [1879, 916, 0]
            func prefilled() -> [InferenceState] {
                prompts.map { prompt in
                    let state = InferenceState(model: model, contextLength: 32, threads: 2)
                    _ = state.forward(prompt)
                    return state
                }
            }
            let alone = zip(prefilled(), next).map { $0.forward([$1]) }
            let batchStates = prefilled()
            let batched = InferenceState.forward(batch: batchStates, tokens: next)
            for s in 0..<prompts.count {
                XCTAssertEqual(batchStates[s].position, prompts[s].count + 1)
                let worst = zip(alone[s], batched[s]).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(file) sequence \(s)")
                XCTAssertEqual(batched[s].count, v)
            }
            // A second batched step continues from the right positions.
            let again = InferenceState.forward(batch: batchStates, tokens: next)
            let single = prefilled()
            for s in 0..<prompts.count {
                _ = single[s].forward([next[s]])
                let expected = single[s].forward([next[s]])
                let worst = zip(expected, again[s]).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(file) sequence \(s), second step")
            }
        }
    }
}
