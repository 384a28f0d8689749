import XCTest
import QwenKernels
@testable import QwenKit

/// The batched (prefill) and one-token (decode) matrix products against a float64 reference, for
/// every weight type the batched paths specialise: the 16-row panel kernels on packed weights, the
/// multi-row integer dot and the float tile path on weights as stored. Rows and tokens are not
/// multiples of the tiles, so the edge tiles are covered.
final class MatMulTests: XCTestCase {
    /// Random blocks of `type` with small, finite f16 scales.
    private func randomRows(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        let rowBytes = type.rowBytes(count: cols) ?? 0
        var bytes = (0..<(rows * rowBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let blocks = rows * cols / type.blockSize
        for b in 0..<blocks {
            let scale = Float16(Float(rng.next() % 1000 + 1) / 40_000).bitPattern
            let o = b * type.bytesPerBlock + (type == .q6_K ? 208 : 0)
            bytes[o] = UInt8(scale & 0xFF)
            bytes[o + 1] = UInt8(scale >> 8)
            if type == .q4_K {  // dmin
                bytes[o + 2] = UInt8(scale & 0xFF)
                bytes[o + 3] = UInt8(scale >> 8)
            }
        }
        return bytes
    }

    private func check(_ type: GGMLType, rows: Int, cols: Int, tokens: Int, threads: Int, packed: Bool = false) {
        let weights = randomRows(type, rows: rows, cols: cols, seed: UInt64(rows * 31 + cols))
        var rng = SplitMix64(seed: 7)
        let x = (0..<(tokens * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 500 }
        var batched = [Float](repeating: 0, count: tokens * rows)
        var single = [Float](repeating: 0, count: tokens * rows)
        // Float64 reference from the dequantized weights, and Σ|w·x| per output as the error scale.
        var reference = [Double](repeating: 0, count: tokens * rows), magnitude = reference
        var row = [Float](repeating: 0, count: cols)
        let scratch = MatMulScratch(tokens: tokens, width: cols, threads: threads)
        let panelBytes = Panels.panelBytes(type, cols: cols), panelCount = Panels.panelCount(rows: rows)
        let panelStorage = max(1, packed ? panelCount * panelBytes : 1)
        let panels = UnsafeMutableRawPointer.allocate(byteCount: panelStorage, alignment: 64)
        panels.initializeMemory(as: UInt8.self, repeating: 0, count: panelStorage)   // pack ORs bits into zeros
        defer { panels.deallocate() }
        weights.withUnsafeBytes { w in
            guard let base = w.baseAddress else { return XCTFail("no weights") }
            var matrix = WeightMatrix(type: type, rows: rows, cols: cols, data: base, rowBytes: w.count / rows)
            if packed {
                Panels.pack(type, base, rowBytes: matrix.rowBytes, rows: rows, cols: cols, panels: 0..<panelCount,
                            into: panels)
                matrix.panels = UnsafeRawPointer(panels)
            }
            for r in 0..<rows {
                row.withUnsafeMutableBufferPointer { dequantize(type, matrix.row(r), $0.baseAddress.unsafelyUnwrapped, count: cols) }
                for t in 0..<tokens {
                    for c in 0..<cols {
                        let p = Double(row[c]) * Double(x[t * cols + c])
                        reference[t * rows + r] += p
                        magnitude[t * rows + r] += abs(p)
                    }
                }
            }
            x.withUnsafeBufferPointer { xs in
                guard let xp = xs.baseAddress else { return }
                batched.withUnsafeMutableBufferPointer { out in
                    matmul(matrix, xp, n: tokens, out.baseAddress.unsafelyUnwrapped, threads: threads, scratch: scratch)
                }
                single.withUnsafeMutableBufferPointer { out in
                    for t in 0..<tokens {
                        matmul(matrix, xp + t * cols, n: 1, out.baseAddress.unsafelyUnwrapped + t * rows,
                               threads: 1, scratch: scratch)
                    }
                }
            }
        }
        // Packed: split activations (~16 bits) for one token and many alike, and the same float
        // operations per token whatever the tile, so batched equals one token at a time exactly.
        if packed {
            XCTAssertEqual(batched, single, "\(type) \(rows)x\(cols) n=\(tokens) t=\(threads): batched vs one at a time")
            for i in 0..<(tokens * rows) where abs(Double(batched[i]) - reference[i]) > 1e-4 * magnitude[i] {
                return XCTFail("\(type) \(rows)x\(cols) n=\(tokens) t=\(threads) packed: [\(i)] \(batched[i]) vs \(reference[i])")
            }
            return
        }
        // One token: float activations (float32 rounding only). Batched: two-part quantized
        // activations (~16 bits) for the integer paths.
        for i in 0..<(tokens * rows) {
            let singleError = abs(Double(single[i]) - reference[i]), batchedError = abs(Double(batched[i]) - reference[i])
            XCTAssert(singleError <= 1e-5 * magnitude[i] && batchedError <= 1e-4 * magnitude[i],
                      "\(type) \(rows)x\(cols) n=\(tokens) t=\(threads): [\(i)] \(batched[i]), \(single[i]) vs \(reference[i])")
            if singleError > 1e-5 * magnitude[i] || batchedError > 1e-4 * magnitude[i] { return }
        }
    }

    func testBatchedMatchesOneTokenAtATime() {
        for threads in [1, 2] {
            check(.q5_0, rows: 13, cols: 128, tokens: 7, threads: threads)  // 4x4 micro-kernel, edges
            check(.q5_0, rows: 9, cols: 96, tokens: 6, threads: threads)    // odd block count: per-row path
            check(.q5_0, rows: 70, cols: 896, tokens: 70, threads: threads) // several token blocks
            check(.q4_K, rows: 11, cols: 512, tokens: 5, threads: threads)
            check(.q6_K, rows: 5, cols: 256, tokens: 9, threads: threads)
            check(.q8_0, rows: 7, cols: 64, tokens: 5, threads: threads)    // float path
        }
    }

    func testPackedPanelsMatchReference() throws {
        try XCTSkipUnless(Panels.available, "no AVX-512 VNNI panel kernels in this build")
        for threads in [1, 2] {
            check(.q5_0, rows: 37, cols: 128, tokens: 7, threads: threads, packed: true)    // partial panel, 4+2+1 tiles
            check(.q5_0, rows: 70, cols: 896, tokens: 70, threads: threads, packed: true)   // several token blocks
            check(.q4_K, rows: 21, cols: 512, tokens: 13, threads: threads, packed: true)
            check(.q6_K, rows: 16, cols: 4864, tokens: 30, threads: threads, packed: true)  // wide: 12-token blocks
            check(.q8_0, rows: 40, cols: 96, tokens: 9, threads: threads, packed: true)     // three parts
        }
    }
}

