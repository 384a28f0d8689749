import Foundation
import QwenKernels

/// Where a model's weights come from — a GGUF file or a safetensors checkpoint — looked up by the
/// file's own names (``TensorNames``), each checked against the shape the config implies before
/// its bytes are used. Matrices stay in the mapped file; vectors are dequantized to float32.
protocol TensorSource {
    /// Every tensor name the checkpoint holds.
    var names: [String] { get }
    func contains(_ name: String) -> Bool
    /// A (rows, cols) weight matrix.
    func matrix(_ name: String, rows: Int, cols: Int) throws(ModelFileError) -> WeightMatrix
    func vector(_ name: String, count: Int) throws(ModelFileError) -> [Float]
    /// A depthwise convolution's weight, channel-major: (channels, kernel).
    func convolution(_ name: String, channels: Int, kernel: Int) throws(ModelFileError) -> [Float]
    /// A layer's `count` routed experts, each a SwiGLU of `width` over `hidden`.
    func experts(_ names: ExpertNames, layer prefix: String, count: Int, width: Int, hidden: Int)
        throws(ModelFileError) -> [FeedForwardWeights]
}

extension TensorSource {
    func optionalVector(_ name: String, count: Int) throws(ModelFileError) -> [Float]? {
        contains(name) ? try vector(name, count: count) : nil
    }
}

/// float32 copies of `count` values of any storage type.
private func dequantized(_ type: GGMLType, _ data: UnsafeRawPointer, count: Int) -> [Float] {
    var values = [Float](repeating: 0, count: count)
    values.withUnsafeMutableBufferPointer { out in
        // Non-nil: count ≥ 1 for every tensor the model reads.
        dequantize(type, data, out.baseAddress.unsafelyUnwrapped, count: count)
    }
    return values
}

/// A GGUF file's tensors. GGUF lists dimensions innermost first, so a (rows, cols) matrix has shape `[cols, rows]`.
struct GGUFTensors: TensorSource {
    let gguf: GGUFFile

    private func tensor(_ name: String, shape: [Int]) throws(ModelFileError) -> GGUFTensorInfo {
        guard let t = gguf.tensor(named: name) else { throw .missingTensor(name: name) }
        guard t.shape == shape else {
            throw .invalid(field: "shape of tensor '\(name)'", reason: "\(t.shape), expected \(shape)")
        }
        return t
    }

    var names: [String] { gguf.tensors.map(\.name) }

    func contains(_ name: String) -> Bool { gguf.tensor(named: name) != nil }

    func matrix(_ name: String, rows: Int, cols: Int) throws(ModelFileError) -> WeightMatrix {
        let t = try tensor(name, shape: [cols, rows])
        // The reader already checked that the row size is whole blocks and the data lies in the file.
        return WeightMatrix(type: t.type, rows: rows, cols: cols, data: gguf.data(of: t), rowBytes: t.byteCount / rows)
    }

    func vector(_ name: String, count: Int) throws(ModelFileError) -> [Float] {
        let t = try tensor(name, shape: [count])
        return dequantized(t.type, gguf.data(of: t), count: count)
    }

    func convolution(_ name: String, channels: Int, kernel: Int) throws(ModelFileError) -> [Float] {
        let t = try tensor(name, shape: [kernel, channels])
        return dequantized(t.type, gguf.data(of: t), count: channels * kernel)
    }

    /// Stacked tensors, [cols, rows, experts] innermost first: the experts' matrices back to back.
    func experts(_ names: ExpertNames, layer p: String, count: Int, width: Int, hidden: Int)
        throws(ModelFileError) -> [FeedForwardWeights] {
        func stacked(_ name: String, rows: Int, cols: Int) throws(ModelFileError) -> [WeightMatrix] {
            let t = try tensor(p + name, shape: [cols, rows, count])
            let rowBytes = t.byteCount / (rows * count)
            return (0..<count).map { e in
                WeightMatrix(type: t.type, rows: rows, cols: cols, data: gguf.data(of: t) + e * rows * rowBytes,
                             rowBytes: rowBytes)
            }
        }
        let gates = try stacked(names.gate, rows: width, cols: hidden)
        let ups = try stacked(names.up, rows: width, cols: hidden)
        let downs = try stacked(names.down, rows: hidden, cols: width)
        return (0..<count).map { FeedForwardWeights(gate: gates[$0], up: ups[$0], down: downs[$0]) }
    }
}

/// A safetensors checkpoint's tensors: (rows, cols) row-major, F32, F16 or BF16 read in place.
struct SafetensorsTensors: TensorSource {
    let checkpoint: SafetensorsCheckpoint

    private func tensor(_ name: String, shape: [Int]) throws(ModelFileError)
        -> (info: SafetensorsTensorInfo, file: SafetensorsFile, type: GGMLType) {
        guard let (info, file) = checkpoint.tensor(named: name) else { throw .missingTensor(name: name) }
        guard info.shape == shape else {
            throw .invalidFile(path: file.file.path, field: "tensor '\(name)' shape", reason: "\(info.shape), expected \(shape)")
        }
        guard let type = info.dtype.ggmlType else {
            throw .invalidFile(path: file.file.path, field: "tensor '\(name)' dtype",
                               reason: "\(info.dtype.rawValue) weights are not supported (F32, F16, BF16)")
        }
        return (info, file, type)
    }

    var names: [String] { checkpoint.files.flatMap { $0.tensors.map(\.name) } }

    func contains(_ name: String) -> Bool { checkpoint.tensor(named: name) != nil }

    func matrix(_ name: String, rows: Int, cols: Int) throws(ModelFileError) -> WeightMatrix {
        let t = try tensor(name, shape: [rows, cols])
        return WeightMatrix(type: t.type, rows: rows, cols: cols, data: t.file.data(of: t.info),
                            rowBytes: cols * t.info.dtype.size)
    }

    func vector(_ name: String, count: Int) throws(ModelFileError) -> [Float] {
        let t = try tensor(name, shape: [count])
        return dequantized(t.type, t.file.data(of: t.info), count: count)
    }

    func convolution(_ name: String, channels: Int, kernel: Int) throws(ModelFileError) -> [Float] {
        let t = try tensor(name, shape: [channels, 1, kernel])
        return dequantized(t.type, t.file.data(of: t.info), count: channels * kernel)
    }

    /// One tensor per expert, or transformers 5's fused `gate_up_proj` / `down_proj`.
    func experts(_ names: ExpertNames, layer p: String, count: Int, width: Int, hidden: Int)
        throws(ModelFileError) -> [FeedForwardWeights] {
        guard let fused = names.fusedGateUp, contains(p + fused.gateUp) else {
            return try (0..<count).map { e throws(ModelFileError) in
                FeedForwardWeights(gate: try matrix(p + names.expert(names.gate, e), rows: width, cols: hidden),
                                   up: try matrix(p + names.expert(names.up, e), rows: width, cols: hidden),
                                   down: try matrix(p + names.expert(names.down, e), rows: hidden, cols: width))
            }
        }
        let gateUp = try tensor(p + fused.gateUp, shape: [count, 2 * width, hidden])
        let down = try tensor(p + fused.down, shape: [count, hidden, width])
        let inRow = hidden * gateUp.info.dtype.size, outRow = width * down.info.dtype.size
        return (0..<count).map { e in
            let base = gateUp.file.data(of: gateUp.info) + e * 2 * width * inRow
            return FeedForwardWeights(
                gate: WeightMatrix(type: gateUp.type, rows: width, cols: hidden, data: base, rowBytes: inRow),
                up: WeightMatrix(type: gateUp.type, rows: width, cols: hidden, data: base + width * inRow, rowBytes: inRow),
                down: WeightMatrix(type: down.type, rows: hidden, cols: width,
                                   data: down.file.data(of: down.info) + e * hidden * outRow, rowBytes: outRow))
        }
    }
}
