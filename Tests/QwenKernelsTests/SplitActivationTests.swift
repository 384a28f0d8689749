import XCTest
import QwenKernels

/// The split-activation C helpers (CQwenGemm.h) against their scalar Swift twins, and the split
/// Q5_0 products against the float-activation reference.
final class SplitActivationTests: XCTestCase {
    func testQuantizeMatchesReferenceBytes() throws {
        try XCTSkipUnless(SplitActivations.available, "no AVX-512 VNNI split kernels in this build")
        var rng = SeededGenerator(seed: 11)
        for cols in [64, 128, 896] {
            // Mixed magnitudes, exact zeros, an all-zero block and outliers.
            var x = (0 ..< cols).map { _ in Float.random(in: -3 ... 3, using: &rng) * (Bool.random(using: &rng) ? 1 : 0.01) }
            for j in 0 ..< 32 { x[j] = 0 }
            x[cols - 1] = 40
            x[cols / 2] = 0.5   // ties in rounding are likely with round values
            let bytes = SplitActivations.rowBytes(cols: cols)
            var fast = [UInt8](repeating: 0xAA, count: bytes), slow = [UInt8](repeating: 0x55, count: bytes)
            fast.withUnsafeMutableBytes { SplitActivations.quantize(x, cols: cols, into: $0.baseAddress!) }
            slow.withUnsafeMutableBytes { SplitActivations.quantizeReference(x, cols: cols, into: $0.baseAddress!) }
            XCTAssertEqual(fast, slow, "cols \(cols)")
        }
    }

    func testGemmQ5_0MatchesReferenceAndFloat() throws {
        try XCTSkipUnless(SplitActivations.available, "no AVX-512 VNNI split kernels in this build")
        var rng = SeededGenerator(seed: 12)
        for cols in [64, 192, 896] {
            let blocks = cols / 32, rowBytes = blocks * 22
            let weights = randomBlocks(.q5_0, blocks: 4 * blocks, using: &rng)
            let x = (0 ..< 4 * cols).map { _ in Float.random(in: -2 ... 2, using: &rng) }
            let stride = SplitActivations.rowBytes(cols: cols) + 16   // a stride that is not the row size
            var act = [UInt8](repeating: 0, count: 4 * stride)
            act.withUnsafeMutableBytes { a in
                for t in 0 ..< 4 { SplitActivations.quantizeReference(x.withUnsafeBufferPointer { $0.baseAddress! } + t * cols, cols: cols, into: a.baseAddress! + t * stride) }
            }
            for rows in 1 ... 4 {
                for tokens in 1 ... 4 {
                    var fast = [Float](repeating: .nan, count: 16), slow = [Float](repeating: .nan, count: 16)
                    withBase(weights) { w in
                        withBase(act) { a in
                            SplitActivations.gemmQ5_0(w, rowBytes: rowBytes, rows: rows, a, aStride: stride, tokens: tokens,
                                                      blocks: blocks, &fast, outStride: 4)
                            SplitActivations.gemmQ5_0Reference(w, rowBytes: rowBytes, rows: rows, a, aStride: stride,
                                                               tokens: tokens, blocks: blocks, &slow, outStride: 4)
                        }
                    }
                    for t in 0 ..< 4 {
                        for r in 0 ..< 4 {
                            let i = t * 4 + r
                            guard t < tokens && r < rows else {
                                XCTAssert(fast[i].isNaN, "wrote outside rows/tokens: \(rows)x\(tokens) [\(i)]")
                                continue
                            }
                            // Float dot of the dequantized row with the float activations.
                            var wf = [Float](repeating: 0, count: cols)
                            withBase(weights) { dequantizeReference(.q5_0, $0 + r * rowBytes, &wf, count: cols) }
                            var exact = 0.0, magnitude = 0.0
                            for c in 0 ..< cols {
                                exact += Double(wf[c]) * Double(x[t * cols + c])
                                magnitude += abs(Double(wf[c]) * Double(x[t * cols + c]))
                            }
                            XCTAssertEqual(Double(fast[i]), Double(slow[i]), accuracy: 1e-6 * magnitude, "\(rows)x\(tokens) [\(i)]")
                            XCTAssertEqual(Double(fast[i]), exact, accuracy: 2e-5 * magnitude, "\(rows)x\(tokens) [\(i)] vs float")
                        }
                    }
                }
            }
        }
    }
}
