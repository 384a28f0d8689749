import XCTest
import QwenKernels

let integerTypes: [GGMLType] = [.q4_K, .q6_K, .q5_0, .q8_0, .q5_K, .q4_0, .q2_K, .q3_K, .q4_1, .q5_1]

// MARK: - Test-local scalar dequantizers, written from ggml's dequantize_row_* formulas.

private func h(_ p: UnsafeRawPointer, _ o: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
}
private func b(_ p: UnsafeRawPointer, _ o: Int) -> Int { Int(p.load(fromByteOffset: o, as: UInt8.self)) }
private func sb(_ p: UnsafeRawPointer, _ o: Int) -> Int { Int(p.load(fromByteOffset: o, as: Int8.self)) }

private func scaleMin(_ j: Int, _ q: UnsafeRawPointer) -> (Int, Int) {
    if j < 4 { return (b(q, j) & 63, b(q, j + 4) & 63) }
    return ((b(q, j + 4) & 0xF) | ((b(q, j - 4) >> 6) << 4), (b(q, j + 4) >> 4) | ((b(q, j) >> 6) << 4))
}

/// Dequantizes `count` values of `type` (weights or activations) into Doubles.
private func dequantize(_ type: GGMLType, _ p: UnsafeRawPointer, count: Int) -> [Double] {
    var out = [Double](repeating: 0, count: count)
    let nb = count / type.blockSize
    for i in 0..<nb {
        let x = p + i * type.bytesPerBlock
        let o = i * type.blockSize
        func put(_ j: Int, _ v: Float) { out[o + j] = Double(v) }
        switch type {
        case .q8_0:
            let d = h(x, 0)
            for j in 0..<32 { put(j, d * Float(sb(x, 2 + j))) }
        case .q8_1:
            let d = h(x, 0)
            for j in 0..<32 { put(j, d * Float(sb(x, 4 + j))) }
        case .q8_K:
            let d = x.loadUnaligned(as: Float.self)
            for j in 0..<256 { put(j, d * Float(sb(x, 4 + j))) }
        case .q4_0:
            let d = h(x, 0)
            for j in 0..<16 {
                put(j, Float((b(x, 2 + j) & 0xF) - 8) * d)
                put(j + 16, Float((b(x, 2 + j) >> 4) - 8) * d)
            }
        case .q4_1:
            let d = h(x, 0), m = h(x, 2)
            for j in 0..<16 {
                put(j, Float(b(x, 4 + j) & 0xF) * d + m)
                put(j + 16, Float(b(x, 4 + j) >> 4) * d + m)
            }
        case .q5_0, .q5_1:
            let one = type == .q5_1
            let d = h(x, 0), m: Float = one ? h(x, 2) : 0
            let qh = Int(x.loadUnaligned(fromByteOffset: one ? 4 : 2, as: UInt32.self))
            let qs = one ? 8 : 6
            for j in 0..<16 {
                let xh0 = ((qh >> j) << 4) & 0x10
                let xh1 = (qh >> (j + 12)) & 0x10
                let x0 = ((b(x, qs + j) & 0x0F) | xh0) - (one ? 0 : 16)
                let x1 = ((b(x, qs + j) >> 4) | xh1) - (one ? 0 : 16)
                put(j, Float(x0) * d + m)
                put(j + 16, Float(x1) * d + m)
            }
        case .q2_K:
            let d = h(x, 80), dmin = h(x, 82)
            var y = 0, isc = 0, q = 16
            for _ in 0..<2 {
                var shift = 0
                for _ in 0..<4 {
                    var sc = b(x, isc); isc += 1
                    var dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 { put(y, dl * Float((b(x, q + l) >> shift) & 3) - ml); y += 1 }
                    sc = b(x, isc); isc += 1
                    dl = d * Float(sc & 0xF); ml = dmin * Float(sc >> 4)
                    for l in 0..<16 { put(y, dl * Float((b(x, q + l + 16) >> shift) & 3) - ml); y += 1 }
                    shift += 2
                }
                q += 32
            }
        case .q3_K:
            // scales: 12 bytes at 96 -> 16 six-bit values (ggml's kmask unpacking).
            var aux = [UInt32](repeating: 0, count: 4)
            for k in 0..<3 { aux[k] = x.loadUnaligned(fromByteOffset: 96 + 4 * k, as: UInt32.self) }
            let km1: UInt32 = 0x0303_0303, km2: UInt32 = 0x0f0f_0f0f
            let tmp = aux[2]
            aux[2] = ((aux[0] >> 4) & km2) | (((tmp >> 4) & km1) << 4)
            aux[3] = ((aux[1] >> 4) & km2) | (((tmp >> 6) & km1) << 4)
            aux[0] = (aux[0] & km2) | (((tmp >> 0) & km1) << 4)
            aux[1] = (aux[1] & km2) | (((tmp >> 2) & km1) << 4)
            let scales = aux.flatMap { w in (0..<4).map { Int(Int8(bitPattern: UInt8(truncatingIfNeeded: w >> (8 * $0)))) } }
            let d = h(x, 108)
            var y = 0, isc = 0, q = 32, m = 1
            for _ in 0..<2 {
                var shift = 0
                for _ in 0..<4 {
                    var dl = d * Float(scales[isc] - 32); isc += 1
                    for l in 0..<16 {
                        put(y, dl * Float(((b(x, q + l) >> shift) & 3) - ((b(x, l) & m) != 0 ? 0 : 4))); y += 1
                    }
                    dl = d * Float(scales[isc] - 32); isc += 1
                    for l in 0..<16 {
                        put(y, dl * Float(((b(x, q + l + 16) >> shift) & 3) - ((b(x, l + 16) & m) != 0 ? 0 : 4))); y += 1
                    }
                    shift += 2
                    m <<= 1
                }
                q += 32
            }
        case .q4_K, .q5_K:
            let five = type == .q5_K
            let d = h(x, 0), dmin = h(x, 2)
            var q = five ? 48 : 16, isc = 0, y = 0, u1 = 1, u2 = 2
            for _ in 0..<4 {
                let (sc1, m1) = scaleMin(isc, x + 4), (sc2, m2) = scaleMin(isc + 1, x + 4)
                let d1 = d * Float(sc1), mm1 = dmin * Float(m1), d2 = d * Float(sc2), mm2 = dmin * Float(m2)
                for l in 0..<32 {
                    let hb = five && (b(x, 16 + l) & u1) != 0 ? 16 : 0
                    put(y, d1 * Float((b(x, q + l) & 0xF) + hb) - mm1); y += 1
                }
                for l in 0..<32 {
                    let hb = five && (b(x, 16 + l) & u2) != 0 ? 16 : 0
                    put(y, d2 * Float((b(x, q + l) >> 4) + hb) - mm2); y += 1
                }
                q += 32; isc += 2; u1 <<= 2; u2 <<= 2
            }
        case .q6_K:
            let d = h(x, 208)
            var ql = 0, qh = 128, sc = 192, y = 0
            for _ in 0..<2 {
                for l in 0..<32 {
                    let isc = l / 16
                    let q1 = ((b(x, ql + l) & 0xF) | (((b(x, qh + l) >> 0) & 3) << 4)) - 32
                    let q2 = ((b(x, ql + l + 32) & 0xF) | (((b(x, qh + l) >> 2) & 3) << 4)) - 32
                    let q3 = ((b(x, ql + l) >> 4) | (((b(x, qh + l) >> 4) & 3) << 4)) - 32
                    let q4 = ((b(x, ql + l + 32) >> 4) | (((b(x, qh + l) >> 6) & 3) << 4)) - 32
                    put(y + l, d * Float(sb(x, sc + isc + 0)) * Float(q1))
                    put(y + l + 32, d * Float(sb(x, sc + isc + 2)) * Float(q2))
                    put(y + l + 64, d * Float(sb(x, sc + isc + 4)) * Float(q3))
                    put(y + l + 96, d * Float(sb(x, sc + isc + 6)) * Float(q4))
                }
                y += 128; ql += 64; qh += 32; sc += 8
            }
        default:
            fatalError("no test dequantizer for \(type)")
        }
    }
    return out
}

// MARK: - Random data

/// Byte offsets of a block's f16 scale fields (set to sane values: random bytes can be NaN/huge).
private func f16Fields(_ t: GGMLType) -> [Int] {
    switch t {
    case .q4_0, .q5_0, .q8_0: [0]
    case .q4_1, .q5_1: [0, 2]
    case .q2_K: [80, 82]
    case .q3_K: [108]
    case .q4_K, .q5_K: [0, 2]
    case .q6_K: [208]
    default: []
    }
}

func randomWeights(_ t: GGMLType, blocks: Int, rng: inout SeededGenerator, allOnes: Bool = false) -> [UInt8] {
    var bytes = (0..<(blocks * t.bytesPerBlock)).map { _ in allOnes ? UInt8(0xFF) : UInt8.random(in: 0...255, using: &rng) }
    for i in 0..<blocks {
        for (k, o) in f16Fields(t).enumerated() {
            // d in [0.001, 0.05]; Q4_1/Q5_1's m may be negative.
            var v = Float.random(in: 0.001...0.05, using: &rng)
            if k == 1 && (t == .q4_1 || t == .q5_1) && Bool.random(using: &rng) { v = -v }
            let bits = Float16(v).bitPattern
            bytes[i * t.bytesPerBlock + o] = UInt8(bits & 0xFF)
            bytes[i * t.bytesPerBlock + o + 1] = UInt8(bits >> 8)
        }
    }
    return bytes
}

func randomActivations(count: Int, rng: inout SeededGenerator, saturate: Bool = false) -> [Float] {
    (0..<count).map { _ in
        if saturate { return Bool.random(using: &rng) ? 1.5 : -1.5 }
        // Mixed magnitudes, like real activations (a few large outliers).
        let v = Float.random(in: -1...1, using: &rng)
        return Int.random(in: 0..<50, using: &rng) == 0 ? v * 20 : v
    }
}

func quantized(_ x: [Float], as t: GGMLType) -> [UInt8] {
    var q = [UInt8](repeating: 0xAA, count: t.rowBytes(count: x.count)!)
    x.withUnsafeBufferPointer { xp in
        q.withUnsafeMutableBytes { quantizeActivations(xp.baseAddress!, count: x.count, as: t, into: $0.baseAddress!) }
    }
    return q
}

final class QuantizedDotTests: XCTestCase {
    func testActivationTypes() {
        XCTAssertEqual(activationType(for: .q4_K), .q8_K)
        XCTAssertEqual(activationType(for: .q6_K), .q8_K)
        XCTAssertEqual(activationType(for: .q2_K), .q8_K)
        XCTAssertEqual(activationType(for: .q5_0), .q8_0)
        XCTAssertEqual(activationType(for: .q8_0), .q8_0)
        XCTAssertEqual(activationType(for: .q4_1), .q8_1)
        XCTAssertEqual(activationType(for: .q5_1), .q8_1)
        XCTAssertNil(activationType(for: .f32))
        XCTAssertNil(activationType(for: .f16))
        XCTAssertNil(activationType(for: .bf16))
    }

    /// Runs body(weights, activations, count) for every integer type on a few random shapes.
    private func forEachCase(_ body: (GGMLType, [UInt8], [UInt8], Int, String) -> Void) {
        var rng = SeededGenerator(seed: 0x5EED_0001)
        for t in integerTypes {
            let act = activationType(for: t)!
            // Odd block counts exercise the loop tail.
            for (blocks, extreme) in [(1, false), (7, false), (t.blockSize == 32 ? 29 : 5, false), (3, true)] {
                let count = blocks * t.blockSize
                let w = randomWeights(t, blocks: blocks, rng: &rng, allOnes: extreme && Bool.random(using: &rng))
                let xq = quantized(randomActivations(count: count, rng: &rng, saturate: extreme), as: act)
                body(t, w, xq, count, "\(t) blocks=\(blocks) extreme=\(extreme)")
            }
        }
    }

    private func magnitude(_ t: GGMLType, _ w: [UInt8], _ xq: [UInt8], _ count: Int) -> Double {
        let wd = w.withUnsafeBytes { dequantize(t, $0.baseAddress!, count: count) }
        let xd = xq.withUnsafeBytes { dequantize(activationType(for: t)!, $0.baseAddress!, count: count) }
        return zip(wd, xd).reduce(0) { $0 + abs($1.0 * $1.1) }
    }

    func testFastMatchesReference() {
        forEachCase { t, w, xq, count, label in
            let (fast, ref) = w.withUnsafeBytes { wp in
                xq.withUnsafeBytes { xp in
                    (dotQuantized(t, wp.baseAddress!, xp.baseAddress!, count: count),
                     dotQuantizedReference(t, wp.baseAddress!, xp.baseAddress!, count: count))
                }
            }
            // Same integer sums; only the float summation order differs.
            let tol = 1e-5 * magnitude(t, w, xq, count) + 1e-6
            XCTAssertEqual(Double(fast), Double(ref), accuracy: tol, label)
        }
    }

    func testReferenceMatchesDequantizedFloatMath() {
        forEachCase { t, w, xq, count, label in
            let ref = w.withUnsafeBytes { wp in
                xq.withUnsafeBytes { dotQuantizedReference(t, wp.baseAddress!, $0.baseAddress!, count: count) }
            }
            let wd = w.withUnsafeBytes { dequantize(t, $0.baseAddress!, count: count) }
            let xd = xq.withUnsafeBytes { dequantize(activationType(for: t)!, $0.baseAddress!, count: count) }
            let exact = zip(wd, xd).reduce(0) { $0 + $1.0 * $1.1 }
            let mag = zip(wd, xd).reduce(0) { $0 + abs($1.0 * $1.1) }
            XCTAssertEqual(Double(ref), exact, accuracy: 1e-4 * mag + 1e-6, label)
        }
    }

    func testQuantizeRoundTrip() {
        var rng = SeededGenerator(seed: 0x5EED_0002)
        for t in [GGMLType.q8_0, .q8_1, .q8_K] {
            for _ in 0..<4 {
                let count = 4 * 256
                var x = randomActivations(count: count, rng: &rng)
                // One all-zero block.
                for j in 0..<t.blockSize { x[t.blockSize + j] = 0 }
                let q = quantized(x, as: t)
                let deq = q.withUnsafeBytes { dequantize(t, $0.baseAddress!, count: count) }
                for blk in 0..<(count / t.blockSize) {
                    let r = (blk * t.blockSize)..<((blk + 1) * t.blockSize)
                    let amax = x[r].map { abs($0) }.max()!
                    let step = Double(amax) / 127
                    // The stored scale is rounded (f16 for Q8_0/Q8_1) after q was chosen: allow that too.
                    let stored: Double = q.withUnsafeBytes { p in
                        let base = p.baseAddress! + blk * t.bytesPerBlock
                        return t == .q8_K ? Double(abs(base.loadUnaligned(as: Float.self))) : Double(h(base, 0))
                    }
                    let tol = 0.5 * step + 127 * abs(stored - step) + 1e-7
                    for j in r {
                        XCTAssertEqual(deq[j], Double(x[j]), accuracy: tol, "\(t) block \(blk) j \(j)")
                    }
                    let qsOff = blk * t.bytesPerBlock + (t == .q8_0 ? 2 : 4)
                    let qs = (0..<t.blockSize).map { Int(Int8(bitPattern: q[qsOff + $0])) }
                    XCTAssertTrue(qs.allSatisfy { $0 >= -127 && $0 <= 127 })
                    if t == .q8_1 {
                        let s = q.withUnsafeBytes { Double(h($0.baseAddress! + blk * 36, 2)) }
                        XCTAssertEqual(s, Double(Float16(Float(qs.reduce(0, +)) * (amax / 127))))
                    }
                    if t == .q8_K {
                        for g in 0..<16 {
                            let bs = q.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: blk * 292 + 260 + 2 * g, as: Int16.self)) }
                            XCTAssertEqual(bs, qs[(16 * g)..<(16 * g + 16)].reduce(0, +))
                        }
                    }
                }
            }
        }
    }

    func testQ8_KMatchesGGMLRounding() {
        // x = max * k / 127 + half steps: ties go to even (ggml's nearest_int), q8_0 ties away from zero.
        var x = [Float](repeating: 0, count: 256)
        x[0] = -127            // max |x| is negative: iscale = -127 / max = 1, d = 1, q = nearest(x)
        x[1] = 2.5; x[2] = 3.5; x[3] = -2.5
        let q = quantized(x, as: .q8_K)
        XCTAssertEqual(q.withUnsafeBytes { $0.loadUnaligned(as: Float.self) }, 1)
        XCTAssertEqual(Int8(bitPattern: q[4]), -127)
        XCTAssertEqual(Int8(bitPattern: q[5]), 2)
        XCTAssertEqual(Int8(bitPattern: q[6]), 4)
        XCTAssertEqual(Int8(bitPattern: q[7]), -2)
        var y = [Float](repeating: 0, count: 32)
        y[0] = 127; y[1] = 2.5; y[2] = -2.5
        let q0 = quantized(y, as: .q8_0)
        XCTAssertEqual(Int8(bitPattern: q0[3]), 3)
        XCTAssertEqual(Int8(bitPattern: q0[4]), -3)
    }
}

final class QuantizedDotRowsTests: XCTestCase {
    func testRowsMatchSingleRowDots() {
        var rng = SeededGenerator(seed: 0x5EED_0003)
        for t in integerTypes {
            let act = activationType(for: t)!
            let count = 2 * 256
            let w = randomWeights(t, blocks: count / t.blockSize, rng: &rng)
            for n in [1, 4, 7] {
                let rowBytes = act.rowBytes(count: count)!
                let stride = rowBytes + 16   // padded rows
                var xq = [UInt8](repeating: 0, count: n * stride)
                for r in 0..<n {
                    let q = quantized(randomActivations(count: count, rng: &rng), as: act)
                    xq.replaceSubrange((r * stride)..<(r * stride + rowBytes), with: q)
                }
                var out = [Float](repeating: .nan, count: 2 * n)
                w.withUnsafeBytes { wp in
                    xq.withUnsafeBytes { xp in
                        out.withUnsafeMutableBufferPointer { op in
                            dotQuantizedRows(t, wp.baseAddress!, xp.baseAddress!, xqStride: stride, rows: n,
                                             count: count, into: op.baseAddress!, outStride: 2)
                        }
                        for r in 0..<n {
                            let single = dotQuantized(t, wp.baseAddress!, xp.baseAddress! + r * stride, count: count)
                            XCTAssertEqual(out[2 * r], single, accuracy: 1e-4 * max(1, abs(single)), "\(t) n=\(n) r=\(r)")
                            XCTAssertTrue(out[2 * r + 1].isNaN)
                        }
                    }
                }
            }
        }
    }
}
