import XCTest
import QwenKernels

/// The panel kernels (CQwenPanels.h) on packed weights against their scalar Swift twins on the
/// GGUF layout (identical results), and against the float dot product of the dequantized weights
/// with the float activations (within the activations' ~16-bit quantization error), at every
/// level this CPU offers that has them (AVX2 and AVX-512 VNNI: the same bits).
final class PanelTests: XCTestCase {
    static let types: [GGMLType] = [.q8_0, .q5_0, .q4_K, .q6_K]

    /// Runs `body` at each available level with panel kernels; skips when there is none.
    private func forEachPanelLevel(_ body: (InstructionSet) throws -> Void) throws {
        var ran = false
        try KernelPathTests.forEachLevel { level in
            guard Panels.available else { return }
            ran = true
            try body(level)
        }
        try XCTSkipUnless(ran, "no panel kernels on this CPU")
    }

    func testQuantizeMatchesReferenceBytes() throws {
        try forEachPanelLevel { level in
        var rng = SeededGenerator(seed: 21)
        for type in Self.types {
            for cols in [32, 96, 896] {
                // Mixed magnitudes, an all-zero block, outliers and round values (rounding ties).
                var x = (0 ..< cols).map { _ in Float.random(in: -3 ... 3, using: &rng) * (Bool.random(using: &rng) ? 1 : 0.01) }
                for j in 0 ..< 32 { x[j] = 0 }
                x[cols - 1] = 40
                x[cols / 2] = 0.5
                let bytes = Panels.activationBytes(cols: cols, for: type)
                var fast = [UInt8](repeating: 0xAA, count: bytes), slow = [UInt8](repeating: 0x55, count: bytes)
                fast.withUnsafeMutableBytes { Panels.quantize(x, cols: cols, for: type, into: $0.baseAddress!) }
                slow.withUnsafeMutableBytes { Panels.quantizeReference(x, cols: cols, for: type, into: $0.baseAddress!) }
                XCTAssertEqual(fast, slow, "\(level) \(type) cols \(cols)")
            }
        }
        }
    }

    func testPackedProductsMatchReferenceAndFloat() throws {
        try forEachPanelLevel { level in
        var rng = SeededGenerator(seed: 22)
        for type in Self.types {
            let wide = type.blockSize == 256
            for cols in wide ? [256, 768] : [64, 96, 896] {
                let rows = 21   // a full panel and a partial one
                let rowBytes = cols / type.blockSize * type.bytesPerBlock
                let weights = randomBlocks(type, blocks: rows * cols / type.blockSize, using: &rng)
                let panelBytes = Panels.panelBytes(type, cols: cols)
                var packed = [UInt8](repeating: 0, count: 2 * panelBytes)
                packed.withUnsafeMutableBytes { dst in
                    withBase(weights) { w in
                        Panels.pack(type, w, rowBytes: rowBytes, rows: rows, cols: cols, panels: 0 ..< 2,
                                    into: dst.baseAddress!)
                    }
                }
                let maxTokens = 6
                let x = (0 ..< maxTokens * cols).map { _ in Float.random(in: -2 ... 2, using: &rng) }
                let stride = Panels.activationBytes(cols: cols, for: type) + 16   // a stride that is not the row size
                var act = [UInt8](repeating: 0, count: maxTokens * stride)
                act.withUnsafeMutableBytes { a in
                    x.withUnsafeBufferPointer { xp in
                        for t in 0 ..< maxTokens {
                            Panels.quantizeReference(xp.baseAddress! + t * cols, cols: cols, for: type,
                                                     into: a.baseAddress! + t * stride)
                        }
                    }
                }
                var wf = [Float](repeating: 0, count: rows * cols)
                withBase(weights) { dequantizeReference(type, $0, &wf, count: rows * cols) }
                for tokens in 1 ... Panels.maxTileTokens {
                    let outStride = 40
                    var fast = [Float](repeating: .nan, count: maxTokens * outStride)
                    var slow = [Float](repeating: .nan, count: maxTokens * outStride)
                    for p in 0 ..< 2 {
                        let panelRows = min(16, rows - 16 * p)
                        withBase(packed) { panel in
                            withBase(act) { a in
                                fast.withUnsafeMutableBufferPointer { out in
                                    Panels.gemm(type, panel + p * panelBytes, rows: panelRows, a, aStride: stride,
                                                tokens: tokens, cols: cols, out.baseAddress! + 16 * p, outStride: outStride)
                                }
                            }
                        }
                        withBase(weights) { w in
                            withBase(act) { a in
                                slow.withUnsafeMutableBufferPointer { out in
                                    Panels.gemmReference(type, w + 16 * p * rowBytes, rowBytes: rowBytes, rows: panelRows,
                                                         a, aStride: stride, tokens: tokens, cols: cols,
                                                         out.baseAddress! + 16 * p, outStride: outStride)
                                }
                            }
                        }
                    }
                    for t in 0 ..< maxTokens {
                        for r in 0 ..< outStride {
                            let i = t * outStride + r
                            guard t < tokens && r < rows else {
                                XCTAssert(fast[i].isNaN, "\(type) \(tokens) tokens: wrote outside [\(t), \(r)]")
                                continue
                            }
                            XCTAssertEqual(fast[i], slow[i], "\(level) \(type) cols \(cols) \(tokens) tokens [\(t), \(r)]")
                            var exact = 0.0, magnitude = 0.0
                            for c in 0 ..< cols {
                                let product = Double(wf[r * cols + c]) * Double(x[t * cols + c])
                                exact += product
                                magnitude += abs(product)
                            }
                            XCTAssertEqual(Double(fast[i]), exact, accuracy: 2e-5 * magnitude,
                                           "\(type) cols \(cols) [\(t), \(r)] vs float")
                        }
                    }
                }
            }
        }
        }
    }
}
