// Panels (CQwenKernels.h): Q8_0, Q5_0, Q4_K and Q6_K weights repacked at load time into panels
// of 16 rows, multiplied against split (~16-bit) activations by the micro-kernels (AVX2 or AVX-512 VNNI).
// Packing and the scalar twins that define what the kernels compute live here, in Swift; the
// kernels and the activation quantizer are the C helpers. The layouts are described in
// CQwenKernels.h.

import CQwenKernels

public enum Panels {
    /// Rows per panel.
    public static let rows = Int(QK_PANEL_ROWS)
    /// Bytes of one block of 32 activations of one token.
    public static let activationBlockBytes = Int(QK_ACT_BYTES)

    /// True when the active kernels (chosen at run time) have panel kernels (AVX2 or AVX-512 VNNI).
    public static var available: Bool { qk_panels_available() != 0 }

    /// Whether weights of `type` can be packed into panels (with this build's kernels).
    public static func supports(_ type: GGMLType) -> Bool {
        available && layout(type) != nil
    }

    /// Panels of a matrix with `rows` rows (the last one may be partial).
    public static func panelCount(rows: Int) -> Int { (rows + Self.rows - 1) / Self.rows }

    /// Bytes of one panel of a matrix with `cols` columns (a whole number of `type`'s blocks).
    public static func panelBytes(_ type: GGMLType, cols: Int) -> Int {
        guard let l = layout(type) else { return 0 }
        return cols / l.columns * l.bytes
    }

    /// Bytes of one token's activations of width `cols` (a multiple of 32) for weights of `type`
    /// (Q8_0 takes three parts, the others two).
    public static func activationBytes(cols: Int, for type: GGMLType) -> Int {
        cols / 32 * (type == .q8_0 ? Int(QK_ACT3_BYTES) : activationBlockBytes)
    }

    /// The most tokens one kernel call takes (tiles of 6 or 8 spill registers: no faster on one
    /// thread, slower on two).
    public static let maxTileTokens = 4

    /// What the weight format subtracts from its unsigned stored values (the kernels' seed).
    static func offset(_ type: GGMLType) -> Int32 {
        switch type {
        case .q8_0: 128
        case .q5_0: 16
        case .q6_K: 32
        default: 0
        }
    }

    /// The kernels' code for `type` (QK_PANEL_*).
    private static func code(_ type: GGMLType) -> Int32? {
        switch type {
        case .q8_0: Int32(QK_PANEL_Q8_0)
        case .q5_0: Int32(QK_PANEL_Q5_0)
        case .q4_K: Int32(QK_PANEL_Q4_K)
        case .q6_K: Int32(QK_PANEL_Q6_K)
        default: nil
        }
    }

    private static func layout(_ type: GGMLType) -> (columns: Int, bytes: Int)? {
        switch type {
        case .q8_0: (32, 544)
        case .q5_0: (32, 352)
        case .q4_K: (256, 2368)
        case .q6_K: (256, 3360)
        default: nil
        }
    }

    // MARK: Packing

    /// Packs panels `panels` of a `rows` × `cols` matrix stored row-major at `weights` (`rowBytes`
    /// per row, GGUF block layout) into `dst`, which holds the whole packed matrix
    /// (`panelBytes` per panel, panel after panel) and must be zero-filled (fresh anonymous
    /// memory is): bits are OR-ed in, and rows past `rows` in the last panel stay zero.
    /// Works on 32-bit words: 4 columns of one row are one word of the panel.
    public static func pack(_ type: GGMLType, _ weights: UnsafeRawPointer, rowBytes: Int, rows: Int, cols: Int,
                            panels: Range<Int>, into dst: UnsafeMutableRawPointer) {
        guard let l = layout(type) else { preconditionFailure("pack: \(type) has no panel layout") }
        let blocks = cols / l.columns, perPanel = blocks * l.bytes
        for p in panels {
            let panel = dst + p * perPanel
            for r in 0..<min(Self.rows, rows - p * Self.rows) {
                let row = weights + (p * Self.rows + r) * rowBytes
                for b in 0..<blocks {
                    packRow(type, block: row + b * type.bytesPerBlock, row: r, into: panel + b * l.bytes)
                }
            }
        }
    }

    /// Writes row `r`'s part of one panel block from one GGUF block.
    @inline(__always)
    private static func packRow(_ type: GGMLType, block: UnsafeRawPointer, row r: Int, into out: UnsafeMutableRawPointer) {
        @inline(__always) func word(_ offset: Int) -> UInt32 { block.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        @inline(__always) func put(_ value: UInt32, _ offset: Int) { out.storeBytes(of: value, toByteOffset: offset, as: UInt32.self) }
        @inline(__always) func putByte(_ value: UInt8, _ offset: Int) { out.storeBytes(of: value, toByteOffset: offset, as: UInt8.self) }
        @inline(__always) func putHalf(from offset: Int, _ to: Int) {
            out.storeBytes(of: block.loadUnaligned(fromByteOffset: offset, as: UInt16.self), toByteOffset: to, as: UInt16.self)
        }
        let low4: UInt32 = 0x0F0F_0F0F
        /// Pair p of a 32-column block's nibbles for row r: columns 8p...8p+3 low, 8p+4...8p+7 high,
        /// from 32 consecutive 4-bit values held in the low (`high` false) or high nibbles of 32
        /// bytes at `source`.
        @inline(__always) func putNibbles(from source: Int, high: Bool, _ to: Int) {
            for p in 0..<4 {
                var a = word(source + 8 * p), b = word(source + 8 * p + 4)
                if high { a >>= 4; b >>= 4 }
                put((a & low4) | (b & low4) << 4, to + 64 * p + 4 * r)
            }
        }
        switch type {
        case .q8_0:
            putHalf(from: 0, 2 * r)
            for c in 0..<8 { put(word(2 + 4 * c) ^ 0x8080_8080, 32 + 64 * c + 4 * r) }
        case .q5_0:
            putHalf(from: 0, 2 * r)
            let qh = word(2)
            for c in 0..<8 {
                let mask = out.loadUnaligned(fromByteOffset: 32 + 8 * c, as: UInt64.self)
                    | UInt64((qh >> UInt32(4 * c)) & 0xF) << UInt64(4 * r)
                out.storeBytes(of: mask, toByteOffset: 32 + 8 * c, as: UInt64.self)
            }
            // Columns 0...15 are the low nibbles of qs, 16...31 the high ones: 16 bytes, read twice.
            for p in 0..<4 {
                var a = word(6 + 8 * (p % 2)), b = word(6 + 8 * (p % 2) + 4)
                if p >= 2 { a >>= 4; b >>= 4 }
                put((a & low4) | (b & low4) << 4, 96 + 64 * p + 4 * r)
            }
        case .q4_K:
            putHalf(from: 0, 2 * r)
            putHalf(from: 2, 32 + 2 * r)
            for j in 0..<8 {
                let (scale, min) = scaleMinK4(j, block + 4)
                putByte(scale, 64 + 16 * j + r)
                putByte(min, 192 + 16 * j + r)
                putNibbles(from: 16 + (j / 2) * 32, high: j % 2 == 1, 320 + 256 * j)
            }
        case .q6_K:
            putHalf(from: 208, 2 * r)
            for g in 0..<16 { putByte(block.byte(192 + g), 32 + 16 * g + r) }
            for j in 0..<8 {
                // Columns 32j...32j+31 of the super-block: n = j / 4 (which 128), k = j % 4.
                let n = j / 4, k = j % 4
                putNibbles(from: 64 * n + (k & 1) * 32, high: k >= 2, 288 + 256 * j)
                for h in 0..<2 {
                    var bits: UInt32 = 0
                    for i in 0..<4 {
                        bits |= ((word(128 + 32 * n + 16 * h + 4 * i) >> UInt32(2 * k)) & 0x0303_0303) << UInt32(2 * i)
                    }
                    put(bits, 2336 + 128 * j + 64 * h + 4 * r)
                }
            }
        default: break
        }
    }

    /// Q5_0 value `j` (0...31) of a block, unsigned (0...31; the weight is `d · (q − 16)`).
    @inline(__always)
    static func unsignedQ5_0(_ block: UnsafeRawPointer, _ j: Int) -> UInt8 {
        let qh = block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
        let byte = block.byte(6 + j % 16)
        return (j < 16 ? byte & 0x0F : byte >> 4) | UInt8((qh >> UInt32(j)) & 1) << 4
    }

    /// Q6_K value `i` (0...255) of a super-block, unsigned (0...63; the weight is
    /// `d · scale[i / 16] · (q − 32)`).
    @inline(__always)
    static func unsignedQ6_K(_ block: UnsafeRawPointer, _ i: Int) -> UInt8 {
        let n = i >> 7, k = (i >> 5) & 3, l = i & 31
        let low = block.byte(64 * n + (k & 1) * 32 + l)
        let nibble = k >= 2 ? low >> 4 : low & 0x0F
        return nibble | ((block.byte(128 + 32 * n + l) >> UInt8(2 * k)) & 3) << 4
    }

    // MARK: Products

    /// Quantizes `cols` floats (a multiple of 32) into the activation layout for weights of `type`.
    @inline(__always)
    public static func quantize(_ x: UnsafePointer<Float>, cols: Int, for type: GGMLType,
                                into dst: UnsafeMutableRawPointer) {
        if type == .q8_0 {
            qk_quantize_act3(x, dst, Int32(cols / 32))
        } else {
            qk_quantize_act(x, dst, Int32(cols / 32), offset(type))
        }
    }

    /// `out[t * outStride + r]` = panel row r · token t for r < rows (1...16) and t < tokens
    /// (1...``maxTileTokens``; tiles of 1, 2 or 4 tokens, the rest computed on duplicates and not
    /// stored).
    /// `prefetch` > 0 prefetches the weights that many bytes ahead (decode). Fast C micro-kernel.
    @inline(__always)
    public static func gemm(_ type: GGMLType, _ panel: UnsafeRawPointer, rows: Int, _ a: UnsafeRawPointer,
                            aStride: Int, tokens: Int, cols: Int, _ out: UnsafeMutablePointer<Float>,
                            outStride: Int, prefetch: Int = 0) {
        precondition(tokens >= 1 && tokens <= maxTileTokens && rows >= 1 && rows <= Self.rows, "Panels.gemm: tile too large")
        guard let code = code(type) else { preconditionFailure("Panels.gemm: \(type) has no panel kernel") }
        qk_panel_gemm(code, panel, Int32(rows), a, aStride, Int32(tokens), Int32(cols / 32), out, outStride, prefetch)
    }

    // MARK: Scalar twins (for the tests)

    /// Plain scalar twin of ``quantize(_:cols:for:into:)``: identical bytes.
    public static func quantizeReference(_ x: UnsafePointer<Float>, cols: Int, for type: GGMLType,
                                         into dst: UnsafeMutableRawPointer) {
        precondition(cols % 32 == 0)
        if type == .q8_0 { return quantizeThreePartReference(x, cols: cols, into: dst) }
        let offset = Self.offset(type)
        for b in 0..<(cols / 32) {
            let xb = x + 32 * b, o = dst + b * activationBlockBytes
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(xb[j])) }
            let d = amax / 127, id: Float = amax != 0 ? 127 / amax : 0, id256 = id * 256
            var sums: [Int32] = [0, 0]
            for j in 0..<32 {
                let h = min(max((xb[j] * id).rounded(.toNearestOrEven), -127), 127)
                let l = min(max(((xb[j] - h * d) * id256).rounded(.toNearestOrEven), -127), 127)
                o.storeBytes(of: Int8(h), toByteOffset: j, as: Int8.self)
                o.storeBytes(of: Int8(l), toByteOffset: 32 + j, as: Int8.self)
                sums[j / 16] += 256 * Int32(h) + Int32(l)
            }
            let e = d * (1 / 256), s = sums[0] + sums[1]
            o.storeBytes(of: e, toByteOffset: 64, as: Float.self)
            o.storeBytes(of: e * Float(s), toByteOffset: 68, as: Float.self)
            o.storeBytes(of: -offset * s, toByteOffset: 72, as: Int32.self)
            o.storeBytes(of: -offset * sums[0], toByteOffset: 76, as: Int32.self)
        }
    }

    /// The three-part (Q8_0) layout: hi, mid and lo, each 256 times finer than the one before.
    private static func quantizeThreePartReference(_ x: UnsafePointer<Float>, cols: Int,
                                                   into dst: UnsafeMutableRawPointer) {
        let bytes = Int(QK_ACT3_BYTES)
        for b in 0..<(cols / 32) {
            let xb = x + 32 * b, o = dst + b * bytes
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(xb[j])) }
            let d = amax / 127, id: Float = amax != 0 ? 127 / amax : 0
            var sums: [Int32] = [0, 0, 0]
            for j in 0..<32 {
                var r = xb[j], step = d, inverse = id
                for part in 0..<3 {
                    let q = min(max((r * inverse).rounded(.toNearestOrEven), -127), 127)
                    r -= q * step
                    o.storeBytes(of: Int8(q), toByteOffset: 32 * part + j, as: Int8.self)
                    sums[part] += Int32(q)
                    step *= 1 / 256
                    inverse *= 256
                }
            }
            o.storeBytes(of: d * (1 / 65536), toByteOffset: 96, as: Float.self)
            for part in 0..<3 { o.storeBytes(of: -128 * sums[part], toByteOffset: 100 + 4 * part, as: Int32.self) }
        }
    }

    /// Plain scalar twin of ``gemm(_:_:rows:_:aStride:tokens:cols:_:outStride:prefetch:)``, reading
    /// the weights in their GGUF layout (`rowBytes` per row): the same integer sums and the same
    /// float operations in the same order, so the results are identical.
    public static func gemmReference(_ type: GGMLType, _ weights: UnsafeRawPointer, rowBytes: Int, rows: Int,
                                     _ a: UnsafeRawPointer, aStride: Int, tokens: Int, cols: Int,
                                     _ out: UnsafeMutablePointer<Float>, outStride: Int) {
        for t in 0..<tokens {
            for r in 0..<rows {
                let row = weights + r * rowBytes
                var sum: Float = 0
                for b in 0..<(cols / 32) {
                    let act = a + t * aStride + b * activationBytes(cols: 32, for: type)
                    let e = act.load(fromByteOffset: 64, as: Float.self)
                    let es = act.load(fromByteOffset: 68, as: Float.self)
                    let c = act.load(fromByteOffset: 72, as: Int32.self)
                    let c0 = act.load(fromByteOffset: 76, as: Int32.self)
                    // Σ q · (256 hi + lo) over columns `range` of this block, q from `value`.
                    func integerSum(_ range: Range<Int>, _ value: (Int) -> UInt8) -> Int32 {
                        var s: Int32 = 0
                        for j in range {
                            let v = 256 * Int32(act.load(fromByteOffset: j, as: Int8.self))
                                + Int32(act.load(fromByteOffset: 32 + j, as: Int8.self))
                            s += Int32(value(j)) * v
                        }
                        return s
                    }
                    switch type {
                    case .q8_0:
                        let block = row + b * type.bytesPerBlock
                        var parts: [Float] = []
                        for part in 0..<3 {
                            var s = act.load(fromByteOffset: 100 + 4 * part, as: Int32.self)
                            for j in 0..<32 {
                                s += Int32(block.byte(2 + j) ^ 0x80)
                                    * Int32(act.load(fromByteOffset: 32 * part + j, as: Int8.self))
                            }
                            parts.append(Float(s))
                        }
                        var f = parts[1]
                        f.addProduct(parts[0], 256)
                        var g = parts[2]
                        g.addProduct(f, 256)
                        sum.addProduct(g, block.half(0) * act.load(fromByteOffset: 96, as: Float.self))
                    case .q5_0:
                        let block = row + b * type.bytesPerBlock
                        let s = integerSum(0..<32) { unsignedQ5_0(block, $0) } + c
                        sum.addProduct(Float(s), block.half(0) * e)
                    case .q4_K:
                        let block = row + (b / 8) * 144, j = b % 8
                        let (scale, min) = scaleMinK4(j, block + 4)
                        let s = integerSum(0..<32) { i in
                            let byte = block.byte(16 + (j / 2) * 32 + i)
                            return j % 2 == 0 ? byte & 0x0F : byte >> 4
                        }
                        sum.addProduct(Float(s), (Float(scale) * block.half(0)) * e)
                        sum.addProduct(-(Float(min) * block.half(2)), es)
                    case .q6_K:
                        let block = row + (b / 8) * 210, j = b % 8
                        for half in 0..<2 {
                            let s = integerSum(16 * half..<16 * half + 16) { unsignedQ6_K(block, 32 * j + $0) }
                                + (half == 0 ? c0 : c - c0)
                            let scale = Float(block.load(fromByteOffset: 192 + 2 * j + half, as: Int8.self))
                            sum.addProduct(Float(s), (scale * block.half(208)) * e)
                        }
                    default:
                        preconditionFailure("Panels.gemmReference: \(type) has no panel layout")
                    }
                }
                out[t * outStride + r] = sum
            }
        }
    }
}
