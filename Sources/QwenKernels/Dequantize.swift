// Public entry points: dequantization and float-activation dot products for GGUF tensor
// types, each as a plain scalar reference (transcribed from ggml's `dequantize_row_*`) and a
// fast SIMD16 twin that gives the same weights bit for bit.
//
// The per-format code lives in FloatFormats.swift, LegacyQuants.swift and KQuants.swift.

import CQwenKernels

/// A format whose fast kernels decode one block at a time into registers.
///
/// `decode` hands each run of 16 consecutive weights of the block to `body` as
/// `(offset within the block, weights)`, computing every weight exactly as the reference
/// does, so `dequantize` (which stores them) matches `dequantizeReference` bit for bit and
/// `dot` (which multiply-adds them with the activations) differs from `dotReference` only
/// in summation order.
protocol BlockDecoder {
    static var weightsPerBlock: Int { get }
    static var bytesPerBlock: Int { get }
    static func decode(_ block: UnsafeRawPointer, _ body: (Int, SIMD16<Float>) -> Void)
}

@inline(__always)
func dequantizeBlocks<Format: BlockDecoder>(
    _: Format.Type, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int
) {
    for b in 0..<blocks {
        let out = dst + b * Format.weightsPerBlock
        Format.decode(src + b * Format.bytesPerBlock) { offset, weights in
            storeFloats16(weights, out + offset)
        }
    }
}

@inline(__always)
func dotBlocks<Format: BlockDecoder>(
    _: Format.Type, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int
) -> Float {
    // Two accumulators, alternating by 16-lane group, so consecutive FMAs don't wait on
    // each other.
    var even = SIMD16<Float>(), odd = SIMD16<Float>()
    for b in 0..<blocks {
        let xb = x + b * Format.weightsPerBlock
        Format.decode(row + b * Format.bytesPerBlock) { offset, weights in
            let activations = loadFloats16(xb + offset)
            if offset & 16 == 0 {
                even += weights * activations
            } else {
                odd += weights * activations
            }
        }
    }
    return horizontalSum(even + odd)
}

@inline(__always)
private func checkCount(_ type: GGMLType, _ count: Int) {
    precondition(count >= 0 && count % type.blockSize == 0,
                 "count \(count) is not a whole number of \(type) blocks")
}

/// Plain scalar reference, transcribed from ggml's dequantize_row_* (the slow twin).
public func dequantizeReference(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    checkCount(type, count)
    let blocks = count / type.blockSize
    switch type {
    case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * count)
    case .f16: dequantizeF16Reference(src, dst, count: count)
    case .bf16: dequantizeBF16Reference(src, dst, count: count)
    case .q4_0: dequantizeQ4_0Reference(src, dst, blocks: blocks)
    case .q4_1: dequantizeQ4_1Reference(src, dst, blocks: blocks)
    case .q5_0: dequantizeQ5_0Reference(src, dst, blocks: blocks)
    case .q5_1: dequantizeQ5_1Reference(src, dst, blocks: blocks)
    case .q8_0: dequantizeQ8_0Reference(src, dst, blocks: blocks)
    case .q2_K: dequantizeQ2_KReference(src, dst, blocks: blocks)
    case .q3_K: dequantizeQ3_KReference(src, dst, blocks: blocks)
    case .q4_K: dequantizeQ4_KReference(src, dst, blocks: blocks)
    case .q5_K: dequantizeQ5_KReference(src, dst, blocks: blocks)
    case .q6_K: dequantizeQ6_KReference(src, dst, blocks: blocks)
    case .q8_1, .q8_K: preconditionFailure("\(type) is an activation format; no weight dequantization")
    }
}

/// Fast version (SIMD16<Float> etc.), same results.
public func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    checkCount(type, count)
    let blocks = count / type.blockSize
    switch type {
    case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * count)
    case .f16, .bf16:
        // Float rows need not be a multiple of 16: SIMD for the bulk, the reference for the tail.
        let bulk = count & ~15
        if type == .f16 {
            dequantizeBlocks(F16Blocks.self, src, dst, blocks: bulk / 16)
            dequantizeF16Reference(src + 2 * bulk, dst + bulk, count: count - bulk)
        } else {
            dequantizeBlocks(BF16Blocks.self, src, dst, blocks: bulk / 16)
            dequantizeBF16Reference(src + 2 * bulk, dst + bulk, count: count - bulk)
        }
    case .q4_0: dequantizeBlocks(Q4_0Blocks.self, src, dst, blocks: blocks)
    case .q4_1: dequantizeBlocks(Q4_1Blocks.self, src, dst, blocks: blocks)
    case .q5_0: dequantizeBlocks(Q5_0Blocks.self, src, dst, blocks: blocks)
    case .q5_1: dequantizeBlocks(Q5_1Blocks.self, src, dst, blocks: blocks)
    case .q8_0: dequantizeBlocks(Q8_0Blocks.self, src, dst, blocks: blocks)
    case .q2_K: dequantizeBlocks(Q2_KBlocks.self, src, dst, blocks: blocks)
    case .q3_K: dequantizeBlocks(Q3_KBlocks.self, src, dst, blocks: blocks)
    case .q4_K: dequantizeBlocks(Q4_KBlocks.self, src, dst, blocks: blocks)
    case .q5_K: dequantizeBlocks(Q5_KBlocks.self, src, dst, blocks: blocks)
    case .q6_K: dequantizeBlocks(Q6_KBlocks.self, src, dst, blocks: blocks)
    case .q8_1, .q8_K: preconditionFailure("\(type) is an activation format; no weight dequantization")
    }
}

/// Dot product of one quantized row (count weights) with float32 activations: the reference dequantizes then sums in plain order.
public func dotReference(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
    checkCount(type, count)
    let weights = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        if let base = buffer.baseAddress {
            dequantizeReference(type, row, base, count: count)
        }
        initialized = count
    }
    var sum: Float = 0
    for i in 0..<count {
        sum += weights[i] * x[i]
    }
    return sum
}

/// Fast: dequantizes block by block in registers and accumulates with SIMD16<Float> multiplies and adds (not fused: a fused multiply-add is a libm call per lane on x86-64 CPUs without FMA, and the package is built for all of them). No allocation.
public func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
    checkCount(type, count)
    let blocks = count / type.blockSize
    switch type {
    case .f32: return dotF32(row.assumingMemoryBound(to: Float.self), x, count: count)
    case .f16, .bf16, .q8_0:
        // The C kernel of the CPU's level (F16C conversions where present).
        return qk_dot_float_row(Int32(type.rawValue), count, row, x)
    case .q4_0: return dotBlocks(Q4_0Blocks.self, row, x, blocks: blocks)
    case .q4_1: return dotBlocks(Q4_1Blocks.self, row, x, blocks: blocks)
    case .q5_0: return dotBlocks(Q5_0Blocks.self, row, x, blocks: blocks)
    case .q5_1: return dotBlocks(Q5_1Blocks.self, row, x, blocks: blocks)
    case .q2_K: return dotBlocks(Q2_KBlocks.self, row, x, blocks: blocks)
    case .q3_K: return dotBlocks(Q3_KBlocks.self, row, x, blocks: blocks)
    case .q4_K: return dotBlocks(Q4_KBlocks.self, row, x, blocks: blocks)
    case .q5_K: return dotBlocks(Q5_KBlocks.self, row, x, blocks: blocks)
    case .q6_K: return dotBlocks(Q6_KBlocks.self, row, x, blocks: blocks)
    case .q8_1, .q8_K: preconditionFailure("\(type) is an activation format; no float-activation dot")
    }
}
