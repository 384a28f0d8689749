import XCTest
import QwenKernels

/// The portable half-precision conversions (used where Swift has no `Float16`: Intel Macs)
/// against `Float16`, which this platform has: every half, and floats across the whole range.
final class HalfConversionTests: XCTestCase {
    func testEveryHalfWidensExactly() {
        for bits in 0 ... UInt16.max {
            let expected = Float(Float16(bitPattern: bits)), got = portableFloatFromHalfBits(bits)
            if expected.isNaN {
                XCTAssertTrue(got.isNaN, "\(bits)")
            } else {
                XCTAssertEqual(got.bitPattern, expected.bitPattern, "half bits \(String(bits, radix: 16))")
            }
        }
    }

    func testFloatsRoundToNearestEven() {
        var cases: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 65536, -65520, .infinity, -.infinity,
                              .greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude,
                              0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1p-26, 0x1.8p-24, 0x1.4p-24, 0x1.ffcp-15, 0x1p-14]
        // Every half, and the midpoints between neighbours (the ties), and just beside them.
        for bits in UInt16(0) ..< 0x7C00 {
            let a = Float(Float16(bitPattern: bits)), b = Float(Float16(bitPattern: bits + 1))
            let mid = (a + b) / 2
            cases += [a, -a, mid, -mid, mid.nextUp, mid.nextDown]
        }
        var rng = SeededGenerator(seed: 5)
        for _ in 0 ..< 200_000 { cases.append(Float(bitPattern: UInt32.random(in: 0 ... .max, using: &rng))) }
        var mismatches = 0
        for x in cases {
            let expected = Float16(x).bitPattern, got = portableHalfBits(from: x)
            if x.isNaN {
                XCTAssertEqual(got & 0x7C00, 0x7C00, "\(x)")
                XCTAssertNotEqual(got & 0x3FF, 0, "\(x)")
            } else if got != expected {
                mismatches += 1
                if mismatches <= 5 { XCTFail("\(x) (\(String(x.bitPattern, radix: 16))): \(String(got, radix: 16)), Float16 \(String(expected, radix: 16))") }
            }
        }
        XCTAssertEqual(mismatches, 0)
        // The public conversions agree with both.
        XCTAssertEqual(halfBits(from: 0.1), Float16(0.1).bitPattern)
        XCTAssertEqual(floatFromHalfBits(0x3C00), 1)
    }
}
