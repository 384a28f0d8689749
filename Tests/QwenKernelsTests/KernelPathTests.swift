import CQwenKernels
import Foundation
import XCTest
import QwenKernels

/// Every kernel path this CPU offers (forcing the lower ones, as `QWENKIT_ISA` does) against the
/// plain Swift references, on random data. The tiny-model tests at every path are in QwenKitTests
/// (`KernelPathModelTests`).
final class KernelPathTests: XCTestCase {
    /// Runs `body` once per available level, then restores the level that was active.
    static func forEachLevel(_ body: (InstructionSet) throws -> Void) rethrows {
        let before = InstructionSet.active
        defer { InstructionSet.select(before) }
        for level in InstructionSet.available {
            XCTAssertTrue(InstructionSet.select(level))
            XCTAssertEqual(InstructionSet.active, level)
            try body(level)
        }
    }

    func testLevels() {
        XCTAssertEqual(InstructionSet.available.first, .generic)
        XCTAssertEqual(InstructionSet.available.last, InstructionSet.supported)
        XCTAssertFalse(InstructionSet.supported.rawValue < InstructionSet.active.rawValue)
        #if arch(x86_64)
        // Independent of the code under test: the kernel's view of the CPU flags.
        if let flags = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            let words = Set(flags.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
            let avx2 = words.isSuperset(of: ["avx2", "fma", "f16c"])
            let avx512 = avx2 && words.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"])
            XCTAssertEqual(InstructionSet.supported, avx512 ? .avx512 : avx2 ? .avx2 : .generic)
        }
        #elseif arch(arm64) && os(Linux)
        if let flags = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            let words = Set(flags.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
            XCTAssertEqual(InstructionSet.supported, words.contains("asimddp") ? .dotprod : .generic)
        }
        #endif
        Self.forEachLevel { level in
            XCTAssertEqual(Panels.available, level != .generic, "\(level)")
        }
    }

    func testQuantizedDotsMatchReference() {
        Self.forEachLevel { level in
            var rng = SeededGenerator(seed: 0x15A)
            for t in integerTypes {
                let act = activationType(for: t)!
                for blocks in [1, 2, 7, t.blockSize == 32 ? 29 : 5] {
                    let count = blocks * t.blockSize
                    let w = randomWeights(t, blocks: blocks, rng: &rng)
                    let rowBytes = act.rowBytes(count: count)!
                    let n = 6   // a tile of 4 rows and 2 single rows
                    var xq = [UInt8]()
                    for _ in 0..<n { xq += quantized(randomActivations(count: count, rng: &rng), as: act) }
                    var rows = [Float](repeating: .nan, count: n)
                    w.withUnsafeBytes { wp in
                        xq.withUnsafeBytes { xp in
                            dotQuantizedRows(t, wp.baseAddress!, xp.baseAddress!, xqStride: rowBytes, rows: n,
                                             count: count, into: &rows)
                            for r in 0..<n {
                                let x = xp.baseAddress! + r * rowBytes
                                let fast = dotQuantized(t, wp.baseAddress!, x, count: count)
                                let reference = dotQuantizedReference(t, wp.baseAddress!, x, count: count)
                                // Exact integer sums; only the float summation order differs.
                                let tolerance = 1e-5 * (abs(reference) + 1) * Float(blocks)
                                XCTAssertEqual(fast, reference, accuracy: tolerance, "\(level) \(t) blocks \(blocks) row \(r)")
                                XCTAssertEqual(rows[r], reference, accuracy: tolerance, "\(level) \(t) rows \(r)")
                            }
                        }
                    }
                }
            }
        }
    }

    func testFloatKernelsMatchReference() {
        Self.forEachLevel { level in
            var rng = SeededGenerator(seed: 0x15B)
            func random(_ n: Int, _ range: ClosedRange<Float> = -2...2) -> [Float] {
                (0..<n).map { _ in Float.random(in: range, using: &rng) }
            }
            func close(_ actual: [Float], _ expected: [Double], _ tolerance: Double, _ label: String) {
                XCTAssertEqual(actual.count, expected.count, label)
                let worst = zip(actual, expected).map { abs(Double($0) - $1) / (abs($1) + 1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, tolerance, "\(level) \(label)")
            }
            for n in [1, 15, 16, 17, 64, 100, 897] {
                let a = random(n, -20...20), b = random(n)
                let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let magnitude = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                XCTAssertEqual(Double(dotF32(a, b, count: n)), exact, accuracy: 1e-6 * magnitude, "\(level) dot \(n)")

                func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }
                let ad = a.map(Double.init), bd = b.map(Double.init)
                for (kind, expected) in [(QK_GATE_SWIGLU, zip(ad, bd).map { silu($0) * $1 }),
                                         (QK_GATE_SILU, ad.map(silu)),
                                         (QK_GATE_SILU_OF_GATE, zip(bd, ad).map { $0 * silu($1) }),
                                         (QK_GATE_SIGMOID, zip(bd, ad).map { $0 / (1 + exp(-$1)) })] {
                    // silu of the first operand for SWIGLU and SILU; of the second (the gate) otherwise.
                    var v = kind == QK_GATE_SWIGLU || kind == QK_GATE_SILU ? a : b
                    let g = kind == QK_GATE_SWIGLU ? b : a
                    v.withUnsafeMutableBufferPointer { qk_gate(Int32(kind), $0.baseAddress!, g, n) }
                    close(v, expected, 2e-6, "gate \(kind) n \(n)")
                }

                var y = b
                y.withUnsafeMutableBufferPointer { qk_axpy(0.75, a, $0.baseAddress!, n) }
                close(y, zip(ad, bd).map { $1 + 0.75 * $0 }, 1e-6, "axpy \(n)")
                y = b
                y.withUnsafeMutableBufferPointer { qk_mul_add(a, a, $0.baseAddress!, n) }
                close(y, zip(ad, bd).map { $1 + $0 * $0 }, 1e-6, "mul_add \(n)")
            }
            // Attention over `length` positions for head sizes in registers (16, 64) and not (80, 128).
            for (length, d) in [(1, 64), (15, 16), (40, 64), (33, 80), (70, 128)] {
                let stride = d + 8
                var scores = random(length, -6...6)
                let values = random(length * stride)
                let maximum = scores.map(Double.init).max()!
                let weights = scores.map { exp(Double($0) - maximum) }
                let total = weights.reduce(0, +)
                let expected = (0..<d).map { i in (0..<length).reduce(0.0) { $0 + weights[$1] / total * Double(values[$1 * stride + i]) } }
                var out = [Float](repeating: .nan, count: d)
                scores.withUnsafeMutableBufferPointer { sp in
                    out.withUnsafeMutableBufferPointer { qk_attend(sp.baseAddress!, Int32(length), values, stride, Int32(d), $0.baseAddress!) }
                }
                close(out, expected, 2e-6, "attend \(length)x\(d)")
            }
            // Small products, full and lower triangular, accumulating and not, on and off the 16-column tiles.
            for (rows, inner, cols) in [(1, 1, 16), (5, 7, 32), (64, 64, 16), (6, 3, 20)] {
                let aStride = max(inner, rows) + 3, bStride = cols + 5, yStride = cols + 2
                let a = random(rows * aStride), b = random(max(inner, rows) * bStride), y0 = random(rows * yStride)
                for triangular in [false, true] {
                    for accumulate in [false, true] where accumulate || triangular {
                        let sign: Float = triangular ? 1 : -1
                        var expected = [Double](), actual = y0
                        for i in 0..<rows {
                            for c in 0..<cols {
                                let k = triangular ? i + 1 : inner
                                let sum = (0..<k).reduce(0.0) { $0 + Double(a[i * aStride + $1]) * Double(b[$1 * bStride + c]) }
                                expected.append((accumulate ? Double(y0[i * yStride + c]) : 0) + Double(sign) * sum)
                            }
                        }
                        actual.withUnsafeMutableBufferPointer {
                            qk_small_product(Int32(rows), Int32(inner), triangular ? 1 : 0, a, aStride, b, bStride,
                                             $0.baseAddress!, yStride, Int32(cols), sign, accumulate ? 1 : 0)
                        }
                        let got = (0..<rows).flatMap { i in (0..<cols).map { actual[i * yStride + $0] } }
                        close(got, expected, 1e-5, "small product \(rows)x\(inner)x\(cols) triangular \(triangular)")
                    }
                }
            }
        }
    }
}
