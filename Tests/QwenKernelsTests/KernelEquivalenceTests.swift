import XCTest
import QwenKernels

/// The fast kernels against their plain reference twins, on random blocks.
final class KernelEquivalenceTests: XCTestCase {
    func testDequantizeMatchesReferenceBitForBit() {
        var rng = SeededGenerator(seed: 1)
        for type in weightTypes {
            // Float rows get an odd length so the SIMD bulk and scalar tail are both exercised.
            let blocks = type.blockSize == 1 ? 16 * 37 + 5 : 9
            let count = blocks * type.blockSize
            let bytes = randomBlocks(type, blocks: blocks, using: &rng)
            var expected = [Float](repeating: .nan, count: count)
            var actual = [Float](repeating: .nan, count: count)
            withBase(bytes) { src in
                dequantizeReference(type, src, &expected, count: count)
                dequantize(type, src, &actual, count: count)
            }
            let mismatch = expected.indices.first { expected[$0].bitPattern != actual[$0].bitPattern }
            XCTAssertNil(mismatch, "\(type): first mismatch at \(mismatch ?? -1)")
            XCTAssertFalse(expected.contains { !$0.isFinite }, "\(type): test data should be finite")
        }
    }

    func testDotMatchesReference() {
        var rng = SeededGenerator(seed: 2)
        for type in weightTypes {
            let blocks = type.blockSize == 1 ? 16 * 37 + 5 : 9
            let count = blocks * type.blockSize
            let bytes = randomBlocks(type, blocks: blocks, using: &rng)
            let x = (0 ..< count).map { _ in Float.random(in: -2 ... 2, using: &rng) }
            var weights = [Float](repeating: 0, count: count)
            let (expected, actual) = withBase(bytes) { src in
                dequantizeReference(type, src, &weights, count: count)
                return (dotReference(type, src, x, count: count), dot(type, src, x, count: count))
            }
            // Only the summation order differs (and FMA rounding), so the error is bounded by
            // a few ulps of the sum of |terms|.
            let magnitude = zip(weights, x).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
            XCTAssertEqual(actual, expected, accuracy: 1e-5 * magnitude, "\(type)")
        }
    }

    func testDotF32() {
        var rng = SeededGenerator(seed: 3)
        for count in [0, 1, 15, 16, 17, 63, 64, 65, 200, 1000] {
            let a = (0 ..< count).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let b = (0 ..< count).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let expected = zip(a, b).reduce(Double(0)) { $0 + Double($1.0) * Double($1.1) }
            let magnitude = zip(a, b).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
            XCTAssertEqual(Double(dotF32(a, b, count: count)), expected,
                           accuracy: Double(1e-6 * magnitude) + 1e-30, "count \(count)")
        }
    }

    func testFloatConversions() {
        XCTAssertEqual(floatFromHalfBits(0x3C00), 1)
        XCTAssertEqual(floatFromHalfBits(0xC000), -2)
        XCTAssertEqual(floatFromHalfBits(0x0001), Float(Float16.leastNonzeroMagnitude))
        XCTAssertEqual(floatFromBFloat16Bits(0x3F80), 1)
        XCTAssertEqual(floatFromBFloat16Bits(0xC040), -3)
        XCTAssertTrue(floatFromBFloat16Bits(0x7FC0).isNaN)
    }

    /// Timings of fast against reference kernels, printed for a human; not asserted.
    func testPrintTimings() {
        var rng = SeededGenerator(seed: 4)
        let count = 4096
        let rows = 256
        let x = (0 ..< count).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        var out = [Float](repeating: 0, count: count)
        func seconds(_ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        var report = "weights/ns   dequantize ref → fast   dot ref → fast\n"
        for type in weightTypes {
            let bytes = randomBlocks(type, blocks: rows * count / type.blockSize, using: &rng)
            let rowBytes = type.rowBytes(count: count) ?? 0
            var sink: Float = 0
            let times = withBase(bytes) { base -> [Double] in
                let each: [(UnsafeRawPointer) -> Void] = [
                    { dequantizeReference(type, $0, &out, count: count) },
                    { dequantize(type, $0, &out, count: count) },
                    { sink += dotReference(type, $0, x, count: count) },
                    { sink += dot(type, $0, x, count: count) },
                ]
                return each.map { kernel in
                    // Best of 3 passes over the rows.
                    (0 ..< 3).map { _ in seconds { for r in 0 ..< rows { kernel(base + r * rowBytes) } } }.min() ?? 0
                }
            }
            let rates = times.map { Double(rows * count) / $0 / 1e9 }
            report += "\(type)".padding(toLength: 6, withPad: " ", startingAt: 0)
                + String(format: "   %6.2f → %6.2f   %6.2f → %6.2f   (%g)\n", rates[0], rates[1], rates[2], rates[3], sink)
        }
        print(report)
    }
}
