import Foundation
import XCTest
import QwenKernels

/// Dequantization against gguf-py's `gguf.quants.dequantize`, on fixtures written by
/// scripts/make-quant-fixtures.py (see its header to regenerate them).
///
/// The comparison is bit-exact for every type: gguf-py computes in float32 with the same
/// operations in the same order as ggml (`d * q`, `d * q + m`, `(d * scale) * q - dmin * min`,
/// no fused multiply-add), and so do both of our kernels.
final class FixtureTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func testDequantizeMatchesGGUFPy() throws {
        for type in weightTypes {
            let blocks = try Data(contentsOf: Self.fixtures.appendingPathComponent("\(type).blocks"))
            let expectedBytes = try Data(contentsOf: Self.fixtures.appendingPathComponent("\(type).f32"))
            let expected = expectedBytes.withUnsafeBytes { raw in
                (0 ..< raw.count / 4).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
                }
            }
            let count = expected.count
            XCTAssertEqual(type.rowBytes(count: count), blocks.count, "\(type): fixture sizes disagree")
            guard type.rowBytes(count: count) == blocks.count, count > 0 else { continue }

            var reference = [Float](repeating: .nan, count: count)
            var fast = [Float](repeating: .nan, count: count)
            blocks.withUnsafeBytes { raw in
                guard let src = raw.baseAddress else { return }
                dequantizeReference(type, src, &reference, count: count)
                dequantize(type, src, &fast, count: count)
            }
            for (name, actual) in [("reference", reference), ("fast", fast)] {
                let mismatch = expected.indices.first { expected[$0].bitPattern != actual[$0].bitPattern }
                XCTAssertNil(mismatch, "\(type) \(name): first mismatch at \(mismatch ?? -1): "
                             + "\(mismatch.map { "\(actual[$0]) vs gguf-py \(expected[$0])" } ?? "")")
            }
        }
    }
}
