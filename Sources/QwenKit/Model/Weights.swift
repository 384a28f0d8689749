#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    /// The same weights repacked into panels of 16 rows for the panel kernels (``Panels``), when
    /// the model was packed at load time.
    public internal(set) var panels: UnsafeRawPointer? = nil

    /// The first byte of row `r`.
    @inline(__always)
    public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer, rowBytes: Int) {
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
        self.rowBytes = rowBytes
    }
}

/// Anonymous memory holding a model's panel-packed weights; unmapped with the model.
final class PanelStorage: @unchecked Sendable {
    let base: UnsafeMutableRawPointer?
    let size: Int

    /// `size` zeroed bytes, committed page by page as they are written; nil base if the mapping failed.
    init(size: Int) {
        self.size = size
        let address = size > 0 ? mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : nil
        // Fresh anonymous pages read as zero, which the packing relies on. Transparent huge pages
        // (MADV_HUGEPAGE) were measured: decode +5%, but loading 0.5 s slower (the kernel compacts
        // memory on each fault), so plain pages.
        base = address == MAP_FAILED ? nil : address
    }

    deinit {
        if let base { munmap(base, size) }
    }
}

/// Full attention's weights. The optional biases are Qwen2's q/k/v projection biases; the
/// optional norms are Qwen3's per-head RMSNorm of queries and keys (headDim weights each). With
/// an output gate (Qwen3.5), `q` yields `2 · headDim` rows per head: the query, then the gate.
struct AttentionWeights: @unchecked Sendable {
    var q: WeightMatrix, k: WeightMatrix, v: WeightMatrix, o: WeightMatrix
    var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
    var qNorm: [Float]?, kNorm: [Float]?
}

/// How a layer mixes information across positions.
enum TokenMixer: @unchecked Sendable {
    case attention(AttentionWeights)
    case deltaNet(DeltaNetWeights)
}

/// One transformer block's weights: `h = x + mixer(norm(x))`, `y = h + feedForward(norm(h))`.
struct LayerWeights: @unchecked Sendable {
    var attentionNorm: [Float]
    var mixer: TokenMixer
    var ffnNorm: [Float]
    var feedForward: FeedForward
}

/// All weights of a Qwen model. Checkpoint tensor names are bound here and nowhere else.
struct ModelWeights: @unchecked Sendable {
    /// The panel-packed copies of the matrices, when ``packPanels(file:threads:)`` ran.
    private(set) var panelStorage: PanelStorage?

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
        /// A stacked expert tensor, [cols, rows, experts] innermost first: `experts` matrices back to back.
        func experts(_ name: String, rows: Int, cols: Int, count: Int) throws(ModelFileError) -> [WeightMatrix] {
            guard let t = gguf.tensor(named: name) else { throw .missingTensor(name: name) }
            guard t.shape == [cols, rows, count] else {
                throw .invalid(field: "shape of tensor '\(name)'", reason: "\(t.shape), expected [\(cols), \(rows), \(count)]")
            }
            let rowBytes = t.byteCount / (rows * count)
            return (0..<count).map { e in
                WeightMatrix(type: t.type, rows: rows, cols: cols, data: gguf.data(of: t) + e * rows * rowBytes,
                             rowBytes: rowBytes)
            }
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

        func feedForward(layer i: Int) throws(ModelFileError) -> FeedForward {
            let p = "blk.\(i)."
            guard c.isExpertLayer(i), let moe = c.experts else {
                return .dense(FeedForwardWeights(
                    gate: try matrix(p + "ffn_gate.weight", rows: c.feedForwardSize, cols: c.hiddenSize),
                    up: try matrix(p + "ffn_up.weight", rows: c.feedForwardSize, cols: c.hiddenSize),
                    down: try matrix(p + "ffn_down.weight", rows: c.hiddenSize, cols: c.feedForwardSize)))
            }
            let width = moe.feedForwardSize
            let gates = try experts(p + "ffn_gate_exps.weight", rows: width, cols: c.hiddenSize, count: moe.count)
            let ups = try experts(p + "ffn_up_exps.weight", rows: width, cols: c.hiddenSize, count: moe.count)
            let downs = try experts(p + "ffn_down_exps.weight", rows: c.hiddenSize, cols: width, count: moe.count)
            var shared: FeedForwardWeights?, sharedGate: WeightMatrix?
            if let sharedWidth = moe.sharedFeedForwardSize {
                shared = FeedForwardWeights(
                    gate: try matrix(p + "ffn_gate_shexp.weight", rows: sharedWidth, cols: c.hiddenSize),
                    up: try matrix(p + "ffn_up_shexp.weight", rows: sharedWidth, cols: c.hiddenSize),
                    down: try matrix(p + "ffn_down_shexp.weight", rows: c.hiddenSize, cols: sharedWidth))
                sharedGate = try matrix(p + "ffn_gate_inp_shexp.weight", rows: 1, cols: c.hiddenSize)
            }
            return .mixture(MixtureOfExperts(
                router: try matrix(p + "ffn_gate_inp.weight", rows: moe.count, cols: c.hiddenSize),
                experts: (0..<moe.count).map { FeedForwardWeights(gate: gates[$0], up: ups[$0], down: downs[$0]) },
                used: moe.used, normalizeTopK: moe.normalizeTopK, shared: shared, sharedGate: sharedGate))
        }

        func attention(_ p: String) throws(ModelFileError) -> AttentionWeights {
            let qRows = c.attentionOutputGate ? 2 * c.qDim : c.qDim
            return AttentionWeights(
                q: try matrix(p + "attn_q.weight", rows: qRows, cols: c.hiddenSize),
                k: try matrix(p + "attn_k.weight", rows: c.kvDim, cols: c.hiddenSize),
                v: try matrix(p + "attn_v.weight", rows: c.kvDim, cols: c.hiddenSize),
                o: try matrix(p + "attn_output.weight", rows: c.hiddenSize, cols: c.qDim),
                qBias: try optionalVector(p + "attn_q.bias", count: qRows),
                kBias: try optionalVector(p + "attn_k.bias", count: c.kvDim),
                vBias: try optionalVector(p + "attn_v.bias", count: c.kvDim),
                qNorm: c.hasQueryKeyNorm ? try vector(p + "attn_q_norm.weight", count: c.headDim) : nil,
                kNorm: c.hasQueryKeyNorm ? try vector(p + "attn_k_norm.weight", count: c.headDim) : nil)
        }
        /// llama.cpp's converter stores the Qwen3.5 norms as 1 + w, `A_log` as −exp(A_log), the
        /// convolution squeezed to [C, K], and the value heads in tiled order (see ``DeltaNetConfig``).
        func deltaNet(_ p: String, _ d: DeltaNetConfig) throws(ModelFileError) -> DeltaNetWeights {
            guard let conv = gguf.tensor(named: p + "ssm_conv1d.weight") else {
                throw .missingTensor(name: p + "ssm_conv1d.weight")
            }
            guard conv.shape == [d.convKernel, d.convChannels] else {
                throw .invalid(field: "shape of tensor '\(p)ssm_conv1d.weight'",
                               reason: "\(conv.shape), expected [\(d.convKernel), \(d.convChannels)]")
            }
            return DeltaNetWeights(
                qkv: try matrix(p + "attn_qkv.weight", rows: d.convChannels, cols: c.hiddenSize),
                z: try matrix(p + "attn_gate.weight", rows: d.valueWidth, cols: c.hiddenSize),
                beta: try matrix(p + "ssm_beta.weight", rows: d.valueHeads, cols: c.hiddenSize),
                alpha: try matrix(p + "ssm_alpha.weight", rows: d.valueHeads, cols: c.hiddenSize),
                conv: try dequantized(conv, name: p + "ssm_conv1d.weight"),
                decayRate: try vector(p + "ssm_a", count: d.valueHeads),
                dtBias: try vector(p + "ssm_dt.bias", count: d.valueHeads),
                norm: try vector(p + "ssm_norm.weight", count: d.valueDim),
                out: try matrix(p + "ssm_out.weight", rows: c.hiddenSize, cols: d.valueWidth))
        }
        func dequantized(_ t: GGUFTensorInfo, name: String) throws(ModelFileError) -> [Float] {
            var values = [Float](repeating: 0, count: t.elementCount)
            values.withUnsafeMutableBufferPointer {
                dequantize(t.type, gguf.data(of: t), $0.baseAddress.unsafelyUnwrapped, count: t.elementCount)
            }
            return values
        }

        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabularySize, cols: c.hiddenSize)
        var layers: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            let mixer: TokenMixer
            if c.layerKinds[i] == .deltaNet, let d = c.deltaNet {
                mixer = .deltaNet(try deltaNet(p, d))
            } else {
                mixer = .attention(try attention(p))
            }
            // Qwen3.5 files name the second norm after Hugging Face's post_attention_layernorm.
            let ffnNorm = gguf.tensor(named: p + "post_attention_norm.weight") != nil
                ? p + "post_attention_norm.weight" : p + "ffn_norm.weight"
            layers.append(LayerWeights(
                attentionNorm: try vector(p + "attn_norm.weight", count: c.hiddenSize),
                mixer: mixer,
                ffnNorm: try vector(ffnNorm, count: c.hiddenSize),
                feedForward: try feedForward(layer: i)))
        }
        self.layers = layers
        outputNorm = try vector("output_norm.weight", count: c.hiddenSize)
        output = gguf.tensor(named: "output.weight") == nil
            ? tokenEmbedding
            : try matrix("output.weight", rows: c.vocabularySize, cols: c.hiddenSize)
    }

    /// Binds Hugging Face's tensor names (`model.embed_tokens.weight`,
    /// `model.layers.N.self_attn.q_proj.weight`, ...) and checks every shape and dtype against
    /// the config. Weights are [out, in] row-major, the ``WeightMatrix`` layout, and stay in the
    /// mapped file: F32, F16 and BF16 rows are read in place by the kernels.
    init(safetensors checkpoint: SafetensorsCheckpoint, config c: ModelConfig) throws(ModelFileError) {
        func tensor(_ name: String, shape: [Int]) throws(ModelFileError)
            -> (info: SafetensorsTensorInfo, file: SafetensorsFile, type: GGMLType) {
            guard let (info, file) = checkpoint.tensor(named: name) else { throw .missingTensor(name: name) }
            guard info.shape == shape else {
                throw .invalidFile(path: file.file.path, field: "tensor '\(name)' shape",
                                   reason: "\(info.shape), expected \(shape)")
            }
            guard let type = info.dtype.ggmlType else {
                throw .invalidFile(path: file.file.path, field: "tensor '\(name)' dtype",
                                   reason: "\(info.dtype.rawValue) weights are not supported (F32, F16, BF16)")
            }
            return (info, file, type)
        }
        func matrix(_ name: String, rows: Int, cols: Int) throws(ModelFileError) -> WeightMatrix {
            let t = try tensor(name, shape: [rows, cols])
            return WeightMatrix(type: t.type, rows: rows, cols: cols, data: t.file.data(of: t.info),
                                rowBytes: cols * t.info.dtype.size)
        }
        func vector(_ name: String, count: Int) throws(ModelFileError) -> [Float] {
            let t = try tensor(name, shape: [count])
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBufferPointer { out in
                // Non-nil: count ≥ 1 for every vector the model has.
                dequantize(t.type, t.file.data(of: t.info), out.baseAddress.unsafelyUnwrapped, count: count)
            }
            return values
        }
        func optionalVector(_ name: String, count: Int) throws(ModelFileError) -> [Float]? {
            checkpoint.tensor(named: name) == nil ? nil : try vector(name, count: count)
        }
        func swiGLU(_ p: String, width: Int) throws(ModelFileError) -> FeedForwardWeights {
            FeedForwardWeights(gate: try matrix(p + "gate_proj.weight", rows: width, cols: c.hiddenSize),
                               up: try matrix(p + "up_proj.weight", rows: width, cols: c.hiddenSize),
                               down: try matrix(p + "down_proj.weight", rows: c.hiddenSize, cols: width))
        }
        func mixture(_ p: String, _ moe: ExpertConfig) throws(ModelFileError) -> MixtureOfExperts {
            let width = moe.feedForwardSize
            var experts: [FeedForwardWeights] = []
            if checkpoint.tensor(named: p + "experts.gate_up_proj") != nil {
                // transformers 5 saves the experts fused: gate_up_proj (E, 2·width, hidden) with
                // gate rows first, down_proj (E, hidden, width).
                let gateUp = try tensor(p + "experts.gate_up_proj", shape: [moe.count, 2 * width, c.hiddenSize])
                let down = try tensor(p + "experts.down_proj", shape: [moe.count, c.hiddenSize, width])
                let inRow = c.hiddenSize * gateUp.info.dtype.size, outRow = width * down.info.dtype.size
                for e in 0..<moe.count {
                    let base = gateUp.file.data(of: gateUp.info) + e * 2 * width * inRow
                    experts.append(FeedForwardWeights(
                        gate: WeightMatrix(type: gateUp.type, rows: width, cols: c.hiddenSize, data: base, rowBytes: inRow),
                        up: WeightMatrix(type: gateUp.type, rows: width, cols: c.hiddenSize, data: base + width * inRow,
                                         rowBytes: inRow),
                        down: WeightMatrix(type: down.type, rows: c.hiddenSize, cols: width,
                                           data: down.file.data(of: down.info) + e * c.hiddenSize * outRow,
                                           rowBytes: outRow)))
                }
            } else {
                for e in 0..<moe.count { experts.append(try swiGLU(p + "experts.\(e).", width: width)) }
            }
            var shared: FeedForwardWeights?, sharedGate: WeightMatrix?
            if let sharedWidth = moe.sharedFeedForwardSize {
                shared = try swiGLU(p + "shared_expert.", width: sharedWidth)
                sharedGate = try matrix(p + "shared_expert_gate.weight", rows: 1, cols: c.hiddenSize)
            }
            return MixtureOfExperts(router: try matrix(p + "gate.weight", rows: moe.count, cols: c.hiddenSize),
                                    experts: experts, used: moe.used, normalizeTopK: moe.normalizeTopK,
                                    shared: shared, sharedGate: sharedGate)
        }

        // Qwen3.5 releases keep the text model under `model.language_model.` (fine-tunes: `model.`).
        let hybrid = ModelConfig.isHybrid(c.architecture)
        let m = hybrid && checkpoint.tensor(named: "model.language_model.embed_tokens.weight") != nil
            ? "model.language_model." : "model."
        /// Qwen3.5's RMSNorm weights are zero-centred: the norm multiplies by 1 + w.
        func norm(_ name: String, count: Int) throws(ModelFileError) -> [Float] {
            let w = try vector(name, count: count)
            return hybrid ? w.map { 1 + $0 } : w
        }
        func attention(_ a: String) throws(ModelFileError) -> AttentionWeights {
            if let (_, file) = checkpoint.tensor(named: a + "o_proj.bias") {
                throw .invalidFile(path: file.file.path, field: "tensor '\(a)o_proj.bias'",
                                   reason: "an output projection bias is not supported")
            }
            let qRows = c.attentionOutputGate ? 2 * c.qDim : c.qDim
            return AttentionWeights(
                q: try matrix(a + "q_proj.weight", rows: qRows, cols: c.hiddenSize),
                k: try matrix(a + "k_proj.weight", rows: c.kvDim, cols: c.hiddenSize),
                v: try matrix(a + "v_proj.weight", rows: c.kvDim, cols: c.hiddenSize),
                o: try matrix(a + "o_proj.weight", rows: c.hiddenSize, cols: c.qDim),
                qBias: try optionalVector(a + "q_proj.bias", count: qRows),
                kBias: try optionalVector(a + "k_proj.bias", count: c.kvDim),
                vBias: try optionalVector(a + "v_proj.bias", count: c.kvDim),
                qNorm: c.hasQueryKeyNorm ? try norm(a + "q_norm.weight", count: c.headDim) : nil,
                kNorm: c.hasQueryKeyNorm ? try norm(a + "k_norm.weight", count: c.headDim) : nil)
        }
        func deltaNet(_ a: String, _ d: DeltaNetConfig) throws(ModelFileError) -> DeltaNetWeights {
            let conv = try tensor(a + "conv1d.weight", shape: [d.convChannels, 1, d.convKernel])
            var convWeights = [Float](repeating: 0, count: d.convChannels * d.convKernel)
            convWeights.withUnsafeMutableBufferPointer {
                dequantize(conv.type, conv.file.data(of: conv.info), $0.baseAddress.unsafelyUnwrapped, count: $0.count)
            }
            return DeltaNetWeights(
                qkv: try matrix(a + "in_proj_qkv.weight", rows: d.convChannels, cols: c.hiddenSize),
                z: try matrix(a + "in_proj_z.weight", rows: d.valueWidth, cols: c.hiddenSize),
                beta: try matrix(a + "in_proj_b.weight", rows: d.valueHeads, cols: c.hiddenSize),
                alpha: try matrix(a + "in_proj_a.weight", rows: d.valueHeads, cols: c.hiddenSize),
                conv: convWeights,
                decayRate: try vector(a + "A_log", count: d.valueHeads).map { -expf($0) },
                dtBias: try vector(a + "dt_bias", count: d.valueHeads),
                norm: try vector(a + "norm.weight", count: d.valueDim),
                out: try matrix(a + "out_proj.weight", rows: c.hiddenSize, cols: d.valueWidth))
        }

        tokenEmbedding = try matrix(m + "embed_tokens.weight", rows: c.vocabularySize, cols: c.hiddenSize)
        var layers: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "\(m)layers.\(i)."
            let mixer: TokenMixer
            if c.layerKinds[i] == .deltaNet, let d = c.deltaNet {
                mixer = .deltaNet(try deltaNet(p + "linear_attn.", d))
            } else {
                mixer = .attention(try attention(p + "self_attn."))
            }
            let feedForward: FeedForward
            if c.isExpertLayer(i), let moe = c.experts {
                feedForward = .mixture(try mixture(p + "mlp.", moe))
            } else {
                feedForward = .dense(try swiGLU(p + "mlp.", width: c.feedForwardSize))
            }
            layers.append(LayerWeights(
                attentionNorm: try norm(p + "input_layernorm.weight", count: c.hiddenSize),
                mixer: mixer,
                ffnNorm: try norm(p + "post_attention_layernorm.weight", count: c.hiddenSize),
                feedForward: feedForward))
        }
        self.layers = layers
        outputNorm = try norm(m + "norm.weight", count: c.hiddenSize)
        output = c.tieWordEmbeddings
            ? tokenEmbedding
            : try matrix("lm_head.weight", rows: c.vocabularySize, cols: c.hiddenSize)
    }
}

extension ModelWeights {
    /// Every matrix the dense forward pass multiplies by: attention, dense feed-forward, output.
    private mutating func forEachDenseMatrix(_ body: (inout WeightMatrix) -> Void) {
        for i in layers.indices {
            switch layers[i].mixer {
            case var .attention(a):
                body(&a.q)
                body(&a.k)
                body(&a.v)
                body(&a.o)
                layers[i].mixer = .attention(a)
            case var .deltaNet(d):
                body(&d.qkv)
                body(&d.z)
                body(&d.beta)
                body(&d.alpha)
                body(&d.out)
                layers[i].mixer = .deltaNet(d)
            }
            if case .dense(var ffn) = layers[i].feedForward {
                body(&ffn.gate)
                body(&ffn.up)
                body(&ffn.down)
                layers[i].feedForward = .dense(ffn)
            }
        }
        body(&output)
    }

    /// Repacks every Q8_0, Q5_0, Q4_K and Q6_K matrix of the dense forward pass into panels of 16
    /// rows (``Panels``), when this build has the panel kernels. The file pages each matrix was
    /// read from are released as soon as they are packed, so the resident set stays at about the
    /// file's size instead of doubling (the token embedding is still read in place).
    mutating func packPanels(file: MappedFile, threads: Int) {
        var total = 0
        forEachDenseMatrix { w in
            if Panels.supports(w.type) { total += Panels.panelCount(rows: w.rows) * Panels.panelBytes(w.type, cols: w.cols) }
        }
        guard total > 0 else { return }
        let storage = PanelStorage(size: total)
        guard let base = storage.base else { return }   // no memory for the copy: the row kernels still work
        let fileBase = file.bytes.baseAddress.map { UnsafeRawPointer($0) }
        var offset = 0
        forEachDenseMatrix { w in
            guard Panels.supports(w.type) else { return }
            let panelBytes = Panels.panelBytes(w.type, cols: w.cols), count = Panels.panelCount(rows: w.rows)
            let dst = SendableRawPointer(base + offset), matrix = w
            // Where the matrix lies in the file, to release its pages (nil: not in this file).
            let inFile = fileBase.map { matrix.data - $0 }
            parallel(threads) { worker in
                let mine = slice(count, worker: worker, of: threads)
                var start = mine.lowerBound
                while start < mine.upperBound {
                    // 64 panels at a time, each chunk's file pages released right after.
                    let end = min(start + 64, mine.upperBound)
                    Panels.pack(matrix.type, matrix.data, rowBytes: matrix.rowBytes, rows: matrix.rows, cols: matrix.cols,
                                panels: start..<end, into: dst.pointer)
                    if let inFile {
                        file.release(inFile + start * Panels.rows * matrix.rowBytes
                                     ..< inFile + min(end * Panels.rows, matrix.rows) * matrix.rowBytes)
                    }
                    start = end
                }
            }
            w.panels = UnsafeRawPointer(base + offset)
            offset += count * panelBytes
        }
        panelStorage = storage
    }
}
