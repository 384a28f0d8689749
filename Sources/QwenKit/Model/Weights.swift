import QwenKernels

/// A weight matrix of `rows` outputs × `cols` inputs, stored row-major in any ``GGMLType``
/// inside the memory-mapped model file. The model code never sees the storage format:
/// ``matmul`` picks the kernel from `type`.
public struct WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    public let rowBytes: Int

    /// The first byte of row `r`.
    @inline(__always)
    public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}

/// One transformer block's weights. The optional biases are Qwen2's q/k/v projection biases.
struct LayerWeights: @unchecked Sendable {
    var attentionNorm: [Float]
    var q: WeightMatrix, k: WeightMatrix, v: WeightMatrix, o: WeightMatrix
    var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
    var ffnNorm: [Float]
    var gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix
}

/// All weights of a Qwen model. Checkpoint tensor names are bound here and nowhere else.
struct ModelWeights: @unchecked Sendable {
    var tokenEmbedding: WeightMatrix
    var layers: [LayerWeights]
    var outputNorm: [Float]
    /// The output head; the token embedding itself when the model ties them.
    var output: WeightMatrix

    /// Binds llama.cpp's tensor names (`token_embd.weight`, `blk.N.attn_q.weight`, ...) and checks
    /// every shape against the config.
    init(gguf: GGUFFile, config c: ModelConfig) throws(ModelFileError) {
        func matrix(_ name: String, rows: Int, cols: Int) throws(ModelFileError) -> WeightMatrix {
            guard let t = gguf.tensor(named: name) else { throw .missingTensor(name: name) }
            guard t.shape.count == 2, t.shape[0] == cols, t.shape[1] == rows else {
                throw .invalid(field: "shape of tensor '\(name)'", reason: "\(t.shape), expected [\(cols), \(rows)]")
            }
            // The reader already checked that the row size is whole blocks and the data lies in the file.
            return WeightMatrix(type: t.type, rows: rows, cols: cols, data: gguf.data(of: t),
                                rowBytes: t.byteCount / rows)
        }
        func vector(_ name: String, count: Int) throws(ModelFileError) -> [Float] {
            guard let t = gguf.tensor(named: name) else { throw .missingTensor(name: name) }
            guard t.shape == [count] else {
                throw .invalid(field: "shape of tensor '\(name)'", reason: "\(t.shape), expected [\(count)]")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBufferPointer { dequantize(t.type, gguf.data(of: t), $0.baseAddress!, count: count) }
            return values
        }
        func optionalVector(_ name: String, count: Int) throws(ModelFileError) -> [Float]? {
            gguf.tensor(named: name) == nil ? nil : try vector(name, count: count)
        }

        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabularySize, cols: c.hiddenSize)
        var layers: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            layers.append(LayerWeights(
                attentionNorm: try vector(p + "attn_norm.weight", count: c.hiddenSize),
                q: try matrix(p + "attn_q.weight", rows: c.qDim, cols: c.hiddenSize),
                k: try matrix(p + "attn_k.weight", rows: c.kvDim, cols: c.hiddenSize),
                v: try matrix(p + "attn_v.weight", rows: c.kvDim, cols: c.hiddenSize),
                o: try matrix(p + "attn_output.weight", rows: c.hiddenSize, cols: c.qDim),
                qBias: try optionalVector(p + "attn_q.bias", count: c.qDim),
                kBias: try optionalVector(p + "attn_k.bias", count: c.kvDim),
                vBias: try optionalVector(p + "attn_v.bias", count: c.kvDim),
                ffnNorm: try vector(p + "ffn_norm.weight", count: c.hiddenSize),
                gate: try matrix(p + "ffn_gate.weight", rows: c.feedForwardSize, cols: c.hiddenSize),
                up: try matrix(p + "ffn_up.weight", rows: c.feedForwardSize, cols: c.hiddenSize),
                down: try matrix(p + "ffn_down.weight", rows: c.hiddenSize, cols: c.feedForwardSize)))
        }
        self.layers = layers
        outputNorm = try vector("output_norm.weight", count: c.hiddenSize)
        output = gguf.tensor(named: "output.weight") == nil
            ? tokenEmbedding
            : try matrix("output.weight", rows: c.vocabularySize, cols: c.hiddenSize)
    }
}
