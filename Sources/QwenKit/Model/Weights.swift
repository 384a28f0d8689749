#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
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

    /// Binds llama.cpp's tensor names (`token_embd.weight`, `blk.N.attn_q.weight`, ...).
    init(gguf: GGUFFile, config c: ModelConfig) throws(ModelFileError) {
        // Qwen3.5 files count their multi-token-prediction blocks in `block_count`; they are not run.
        let key = "\(c.architecture).block_count"
        try self.init(source: GGUFTensors(gguf: gguf), names: .gguf(family: c.family), config: c,
                      declaredLayers: gguf[key]?.integer ?? c.layerCount,
                      inconsistent: { reason in .invalid(field: key, reason: reason) })
    }

    /// Binds Hugging Face's tensor names (`model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`,
    /// ...). Weights are [out, in] row-major, the ``WeightMatrix`` layout, and stay in the mapped file:
    /// F32, F16 and BF16 rows are read in place by the kernels.
    init(safetensors checkpoint: SafetensorsCheckpoint, config c: ModelConfig) throws(ModelFileError) {
        let source = SafetensorsTensors(checkpoint: checkpoint)
        // Qwen3.5 releases keep the text model under `model.language_model.` (fine-tunes: `model.`).
        let prefix = source.contains("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        let shard = checkpoint.files.first?.file.path ?? ""
        let folder = shard.lastIndex(of: "/").map { String(shard[..<$0]) } ?? "."
        try self.init(source: source, names: .huggingFace(prefix: prefix, family: c.family), config: c,
                      declaredLayers: c.layerCount, inconsistent: { reason in
                          .invalidFile(path: folder + "/config.json", field: "num_hidden_layers", reason: reason)
                      })
    }

    /// Binds every weight the config calls for, checking each shape against it. The one binder
    /// for every format: the formats differ only in their names and in a few stored forms.
    /// `declaredLayers` is the layer count the file states (more than the config runs when it has
    /// extra blocks); a tensor of a later layer means the metadata and the weights disagree, and
    /// `inconsistent` makes the error naming the count's field.
    init(source: some TensorSource, names n: TensorNames, config c: ModelConfig, declaredLayers: Int,
         inconsistent: (String) -> ModelFileError) throws(ModelFileError) {
        // Layers beyond the stated count would be silently dropped: refuse the file instead.
        if let extra = source.names.compactMap(n.layerIndex(of:)).max(), extra >= max(declaredLayers, c.layerCount) {
            throw inconsistent("\(max(declaredLayers, c.layerCount)) layers stated, but the weights hold layer \(extra)")
        }
        /// Qwen3.5's norm weights are zero-centred (the norm multiplies by 1 + w) where the file stores w.
        func norm(_ name: String, count: Int) throws(ModelFileError) -> [Float] {
            let w = try source.vector(name, count: count)
            return n.storesZeroCentredNorms ? w.map { 1 + $0 } : w
        }
        func swiGLU(gate: String, up: String, down: String, width: Int) throws(ModelFileError) -> FeedForwardWeights {
            FeedForwardWeights(gate: try source.matrix(gate, rows: width, cols: c.hiddenSize),
                               up: try source.matrix(up, rows: width, cols: c.hiddenSize),
                               down: try source.matrix(down, rows: c.hiddenSize, cols: width))
        }
        /// A q/k/v bias: required where the family has them, else optional.
        func bias(_ name: String, count: Int) throws(ModelFileError) -> [Float]? {
            c.family.queryKeyValueBias ? try source.vector(name, count: count) : try source.optionalVector(name, count: count)
        }
        func attention(_ p: String) throws(ModelFileError) -> AttentionWeights {
            if source.contains(p + n.oBias) {
                throw .invalid(field: "tensor '\(p)\(n.oBias)'", reason: "an output projection bias is not supported")
            }
            // With an output gate, q yields the query and the gate of each head.
            let qRows = c.attentionOutputGate ? 2 * c.qDim : c.qDim
            return AttentionWeights(
                q: try source.matrix(p + n.q, rows: qRows, cols: c.hiddenSize),
                k: try source.matrix(p + n.k, rows: c.kvDim, cols: c.hiddenSize),
                v: try source.matrix(p + n.v, rows: c.kvDim, cols: c.hiddenSize),
                o: try source.matrix(p + n.o, rows: c.hiddenSize, cols: c.qDim),
                qBias: try bias(p + n.qBias, count: qRows),
                kBias: try bias(p + n.kBias, count: c.kvDim),
                vBias: try bias(p + n.vBias, count: c.kvDim),
                qNorm: c.hasQueryKeyNorm ? try norm(p + n.qNorm, count: c.headDim) : nil,
                kNorm: c.hasQueryKeyNorm ? try norm(p + n.kNorm, count: c.headDim) : nil)
        }
        func deltaNet(_ p: String, _ d: DeltaNetConfig) throws(ModelFileError) -> DeltaNetWeights {
            let decay = try source.vector(p + n.decay, count: d.valueHeads)
            return DeltaNetWeights(
                qkv: try source.matrix(p + n.qkv, rows: d.convChannels, cols: c.hiddenSize),
                z: try source.matrix(p + n.z, rows: d.valueWidth, cols: c.hiddenSize),
                beta: try source.matrix(p + n.beta, rows: d.valueHeads, cols: c.hiddenSize),
                alpha: try source.matrix(p + n.alpha, rows: d.valueHeads, cols: c.hiddenSize),
                conv: try source.convolution(p + n.conv, channels: d.convChannels, kernel: d.convKernel),
                decayRate: n.storesDecayLog ? decay.map { -expf($0) } : decay,
                dtBias: try source.vector(p + n.dtBias, count: d.valueHeads),
                norm: try source.vector(p + n.deltaNorm, count: d.valueDim),
                out: try source.matrix(p + n.deltaOut, rows: c.hiddenSize, cols: d.valueWidth))
        }
        func mixture(_ p: String, _ moe: ExpertConfig) throws(ModelFileError) -> MixtureOfExperts {
            var shared: FeedForwardWeights?, sharedGate: WeightMatrix?
            if let width = moe.sharedFeedForwardSize {
                shared = try swiGLU(gate: p + n.sharedGate, up: p + n.sharedUp, down: p + n.sharedDown, width: width)
                sharedGate = try source.matrix(p + n.sharedRouter, rows: 1, cols: c.hiddenSize)
            }
            return MixtureOfExperts(
                router: try source.matrix(p + n.router, rows: moe.count, cols: c.hiddenSize),
                experts: try source.experts(n.experts, layer: p, count: moe.count, width: moe.feedForwardSize,
                                            hidden: c.hiddenSize),
                used: moe.used, normalizeTopK: moe.normalizeTopK, shared: shared, sharedGate: sharedGate)
        }

        tokenEmbedding = try source.matrix(n.embedding, rows: c.vocabularySize, cols: c.hiddenSize)
        var layers: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = n.layer(i)
            let mixer: TokenMixer
            if c.layerKinds[i] == .deltaNet, let d = c.deltaNet {
                mixer = .deltaNet(try deltaNet(p, d))
            } else {
                mixer = .attention(try attention(p))
            }
            let feedForward: FeedForward
            if c.isExpertLayer(i), let moe = c.experts {
                feedForward = .mixture(try mixture(p, moe))
            } else {
                feedForward = .dense(try swiGLU(gate: p + n.gate, up: p + n.up, down: p + n.down, width: c.feedForwardSize))
            }
            layers.append(LayerWeights(attentionNorm: try norm(p + n.mixerNorm, count: c.hiddenSize), mixer: mixer,
                                       ffnNorm: try norm(p + n.ffnNorm, count: c.hiddenSize), feedForward: feedForward))
        }
        self.layers = layers
        outputNorm = try norm(n.outputNorm, count: c.hiddenSize)
        output = c.tieWordEmbeddings
            ? tokenEmbedding
            : try source.matrix(n.output, rows: c.vocabularySize, cols: c.hiddenSize)
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
