import QwenKernels
import XCTest
@testable import QwenKit

/// The tiny fixture models against their Hugging Face reference logits at every kernel path this
/// CPU offers (forcing the lower ones, as `QWENKIT_ISA` does): the same bounds as at the best path.
final class KernelPathModelTests: XCTestCase {
    private func forEachLowerLevel(_ body: (InstructionSet) throws -> Void) throws {
        let before = InstructionSet.active
        defer { InstructionSet.select(before) }
        // The best level is what every other model test runs.
        for level in InstructionSet.available where level != InstructionSet.supported {
            XCTAssertTrue(InstructionSet.select(level))
            // Models are loaded after the switch: panels are packed only for a level that has them.
            try body(level)
        }
    }

    func testQwen2Q8AtEveryPath() throws {
        try forEachLowerLevel { _ in
            let model = try Transformer(gguf: GGUFFile(path: Fixtures.url("models/tiny-qwen2/tiny-qwen2-q8_0.gguf").path))
            try TinyModelTests.check(model, folder: "tiny-qwen2", reference: "reference-q8_0.json")
        }
    }

    func testQwen3DirectoryAtEveryPath() throws {
        try forEachLowerLevel { _ in
            let model = try Qwen35Tests.directory("tiny-qwen3")
            try TinyModelTests.check(model, folder: "tiny-qwen3", reference: "reference.json")
        }
    }

    func testQwen35AtEveryPath() throws {
        try forEachLowerLevel { _ in
            try TinyModelTests.check(Qwen35Tests.gguf("tiny-qwen35"), folder: "tiny-qwen35",
                                     reference: "reference-q8_0.json", tolerance: TinyModelTests.hybridTolerance)
            try TinyModelTests.check(Qwen35Tests.directory("tiny-qwen35-moe"), folder: "tiny-qwen35-moe",
                                     reference: "reference.json", tolerance: TinyModelTests.hybridTolerance)
        }
    }
}
