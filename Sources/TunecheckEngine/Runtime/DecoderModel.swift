import CBLAS
import Foundation

/// Where one sequence's tokens sit in a packed forward pass.
public struct SequenceSegment: Sendable, Equatable {
    /// First row of the sequence in the packed batch.
    public var rowStart: Int
    /// Number of rows (new tokens) of the sequence in this pass.
    public var length: Int

    public init(rowStart: Int, length: Int) {
        self.rowStart = rowStart
        self.length = length
    }
}

/// Sequences packed for one forward pass: their tokens concatenated, and where each starts.
struct PackedBatch {
    var tokens: [Int32] = []
    var segments: [SequenceSegment] = []
    /// Per row, the sequence it belongs to (rows are laid out sequence after sequence).
    private var sequenceOfRow: [Int32] = []

    init() {}

    /// Checks every id against the vocabulary and, when given, each sequence's minimum length.
    init(_ sequences: [[Int]], vocabularySize: Int, minimumLength: Int = 1, label: String = "sequence") throws {
        tokens.reserveCapacity(sequences.reduce(0) { $0 + $1.count })
        for (index, sequence) in sequences.enumerated() {
            guard sequence.count >= minimumLength else {
                throw EngineError.invalidInput("\(label) \(index) has \(sequence.count) token(s); at least \(minimumLength) are needed")
            }
            segments.append(SequenceSegment(rowStart: tokens.count, length: sequence.count))
            sequenceOfRow += repeatElement(Int32(index), count: sequence.count)
            for id in sequence {
                guard id >= 0, id < vocabularySize else {
                    throw EngineError.invalidInput("token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
                }
                tokens.append(Int32(id))
            }
        }
    }

    /// The one row-to-sequence mapping of scoring and training: row `r` predicts token `position + 1` of
    /// `sequence`; a sequence's last row predicts nothing (nil).
    func scoredPosition(ofRow row: Int) -> (sequence: Int, position: Int)? {
        let sequence = Int(sequenceOfRow[row])
        let position = row - segments[sequence].rowStart
        return position + 1 < segments[sequence].length ? (sequence, position) : nil
    }

    /// Every sequence's next-token log-probs (n−1 values each) after `model.forward` ran on this batch with
    /// `context`, computing the logits `chunkRows` rows at a time (never a rows × vocabulary matrix for the batch).
    func tokenLogprobs(model: DecoderModel, context: ForwardContext, chunkRows: Int) -> [[Double]] {
        var results = segments.map { [Double](repeating: 0, count: max($0.length - 1, 0)) }
        let vocabulary = model.spec.vocabularySize
        let logits = context.logits(rows: chunkRows)
        var chunkStart = 0
        while chunkStart < tokens.count {
            let rows = min(chunkRows, tokens.count - chunkStart)
            model.logits(context: context, firstRow: chunkStart, rows: rows, into: logits)
            for offset in 0..<rows {
                guard let (sequence, position) = scoredPosition(ofRow: chunkStart + offset) else { continue }
                let rowLogits = logits + offset * vocabulary
                let (logSumExp, _) = LogSoftmaxKernels.logSumExp(rowLogits, count: vocabulary)
                results[sequence][position] = Double(rowLogits[Int(tokens[chunkStart + offset + 1])]) - logSumExp
            }
            chunkStart += rows
        }
        return results
    }
}

/// A decoder-only transformer with its weights. Immutable after loading (adapters are attached by making a new
/// value through `withAdapters`), so one model can serve several threads, each with its own `ForwardContext`.
///
/// Batches are *packed*: the tokens of all sequences are concatenated into one (rows, hidden) matrix, every
/// linear layer is one GEMM over all rows, and attention runs per sequence over its own rows. No padding is
/// computed and a batch gives the same numbers as one sequence at a time.
public final class DecoderModel: @unchecked Sendable {
    public let spec: TransformerSpec
    public let weights: DecoderWeights
    /// Keeps the memory behind `weights` alive.
    public let store: WeightStore
    /// Extra owners of memory referenced by `weights` (e.g. adapter tensors).
    let retained: [AnyObject]
    let inverseFrequencies: [Float]

    public init(spec: TransformerSpec, weights: DecoderWeights, store: WeightStore, retained: [AnyObject] = []) {
        self.spec = spec
        self.weights = weights
        self.store = store
        self.retained = retained
        if case .rotary(let rotary) = spec.positions {
            inverseFrequencies = rotary.inverseFrequencies()
        } else {
            inverseFrequencies = []
        }
    }

    /// The same base weights with `transform` applied to the layers (used to attach adapters).
    public func withLayers(retaining owner: AnyObject?, _ transform: (inout [DecoderLayerWeights]) throws -> Void) rethrows -> DecoderModel {
        var newWeights = weights
        try transform(&newWeights.layers)
        return DecoderModel(spec: spec, weights: newWeights, store: store, retained: retained + (owner.map { [$0] } ?? []))
    }

    /// Largest adapter rank attached to any layer (sizes the scratch buffer).
    var maxAdapterRank: Int {
        weights.layers.flatMap { $0.linears }.compactMap { $0.adapter?.rank }.max() ?? 0
    }

    /// Runs the blocks over packed `tokens` and leaves the final-norm output in `context.workspace.normed`
    /// (rows, hidden).
    ///
    /// Without a cache every segment starts at position 0 and attends to its own rows. With a cache there must be
    /// one segment; its tokens continue at `cache.length`, their keys and values are appended to the cache, and
    /// they attend to everything cached.
    func forward(tokens: UnsafeBufferPointer<Int32>, segments: [SequenceSegment], cache: KVCache?, context: ForwardContext) throws {
        let rows = tokens.count
        let hiddenSize = spec.hiddenSize
        precondition(cache == nil || segments.count == 1, "a KV cache holds one sequence")
        let maxSegment = segments.map(\.length).max() ?? 0
        let past = cache?.length ?? 0
        if let cache, past + rows > cache.capacity {
            throw EngineError.invalidInput("sequence of \(past + rows) tokens exceeds the cache capacity \(cache.capacity)")
        }
        let longest = past + maxSegment
        if longest > spec.maxPositions, case .learned = spec.positions {
            throw EngineError.invalidInput("sequence of \(longest) tokens exceeds the model's \(spec.maxPositions) positions")
        }
        for token in tokens where token < 0 || Int(token) >= spec.vocabularySize {
            throw EngineError.invalidInput("token id \(token) is outside the vocabulary (0..<\(spec.vocabularySize))")
        }
        let workspace = context.workspace
        workspace.reserve(.init(rows: rows, maxSegment: maxSegment, maxKeys: past + maxSegment, maxRank: maxAdapterRank))

        // Positions of each row.
        var positions = [Int32](repeating: 0, count: rows)
        for segment in segments {
            for offset in 0..<segment.length { positions[segment.rowStart + offset] = Int32(past + offset) }
        }

        // Embeddings (× Granite's multiplier, + GPT-2's learned positions).
        let hidden = workspace.layer(0).residualIn
        for row in 0..<rows {
            let target = hidden + row * hiddenSize
            weights.tokenEmbedding.copyRow(Int(tokens[row]), into: target)
            if spec.embeddingMultiplier != 1 {
                for index in 0..<hiddenSize { target[index] *= spec.embeddingMultiplier }
            }
            if let positionTable = weights.positionEmbedding {
                let position = positionTable + Int(positions[row]) * hiddenSize
                for index in 0..<hiddenSize { target[index] += position[index] }
            }
        }

        var rotaryDim = 0
        if case .rotary(let rotary) = spec.positions {
            rotaryDim = rotary.rotaryDim
            positions.withUnsafeBufferPointer { positionBuffer in
                rotary.fillTables(positions: positionBuffer.baseAddress!, rows: rows, inverseFrequencies: inverseFrequencies,
                                  cos: workspace.rotaryCos, sin: workspace.rotarySin)
            }
        }

        let scratch = workspace.adapterScratch
        let residual = spec.residualMultiplier
        let ffnWidth = workspace.feedForwardWidth
        let intermediate = spec.intermediateSize

        for (layerIndex, layer) in weights.layers.enumerated() {
            let buffers = workspace.layer(layerIndex)
            // Mixer sub-block: normed = norm(residual); residualMid = residual + residual_multiplier · mixer(normed).
            NormalizationKernels.forward(spec.norm, buffers.residualIn, rows: rows, dim: hiddenSize, ldx: hiddenSize,
                                         weights: layer.attentionNorm, into: buffers.normedAttention, ldy: hiddenSize)
            if buffers.residualMid != buffers.residualIn {
                buffers.residualMid.update(from: buffers.residualIn, count: rows * hiddenSize)
            }
            switch layer.mixer {
            case .attention(let attentionWeights):
                attentionMixer(attentionWeights, layerIndex: layerIndex, buffers: buffers, rows: rows, segments: segments, cache: cache,
                               past: past, rotaryDim: rotaryDim, workspace: workspace)
            case .mamba(let mambaWeights):
                mambaMixer(mambaWeights, layerIndex: layerIndex, buffers: buffers, rows: rows, segments: segments, cache: cache, workspace: workspace)
            }

            // Feed-forward sub-block.
            NormalizationKernels.forward(spec.norm, buffers.residualMid, rows: rows, dim: hiddenSize, ldx: hiddenSize,
                                         weights: layer.feedForwardNorm, into: buffers.normedFeedForward, ldy: hiddenSize)
            let feedForward = buffers.feedForward
            switch layer.feedForward.projection {
            case let .separate(gate, up):
                gate.forward(buffers.normedFeedForward, rows: rows, ldx: hiddenSize, into: feedForward, ldy: ffnWidth, scratch: scratch)
                up.forward(buffers.normedFeedForward, rows: rows, ldx: hiddenSize, into: feedForward + intermediate, ldy: ffnWidth, scratch: scratch)
            case let .fused(linear), let .single(linear):
                linear.forward(buffers.normedFeedForward, rows: rows, ldx: hiddenSize, into: feedForward, ldy: ffnWidth, scratch: scratch)
            }
            switch spec.feedForward {
            case .gated(let activation):
                ActivationKernels.gatedForward(activation, gate: feedForward, up: feedForward + intermediate, rows: rows, dim: intermediate,
                                               ld: ffnWidth, into: buffers.activated, ldy: buffers.activatedStride)
            case .plain(let activation):
                ActivationKernels.forward(activation, feedForward, rows: rows, dim: intermediate, ldx: ffnWidth,
                                          into: buffers.activated, ldy: buffers.activatedStride)
            }
            if buffers.residualOut != buffers.residualMid {
                buffers.residualOut.update(from: buffers.residualMid, count: rows * hiddenSize)
            }
            layer.feedForward.down.forward(buffers.activated, rows: rows, ldx: buffers.activatedStride, into: buffers.residualOut, ldy: hiddenSize,
                                           alpha: residual, beta: 1, scratch: scratch)
            if let experts = layer.feedForward.experts, let expertShape = spec.experts {
                ExpertKernels.forward(expertShape, weights: experts, hidden: hiddenSize, input: buffers.normedFeedForward, ldi: hiddenSize, rows: rows,
                                      into: buffers.residualOut, ldo: hiddenSize, alpha: residual,
                                      scratch: .init(workspace.expertScratch, shape: expertShape, hidden: hiddenSize, rows: rows))
            }
        }
        NormalizationKernels.forward(spec.norm, workspace.finalHidden, rows: rows, dim: hiddenSize, ldx: hiddenSize,
                                     weights: weights.finalNorm, into: workspace.normed, ldy: hiddenSize)
        cache?.length += rows
    }

    /// Attention of one layer over packed rows: q/k/v projections of `buffers.normedAttention`, rotation, causal
    /// attention per segment (against the cache when given), and `residualMid += residual_multiplier · o_proj(·)`.
    private func attentionMixer(_ attentionWeights: AttentionWeights, layerIndex: Int, buffers: Workspace.LayerBuffers, rows: Int,
                                segments: [SequenceSegment], cache: KVCache?, past: Int, rotaryDim: Int, workspace: Workspace) {
        let hiddenSize = spec.hiddenSize
        let attention = spec.attention
        let width = workspace.queryKeyValueWidth
        let scratch = workspace.adapterScratch
        let normed = buffers.normedAttention
        let qkv = buffers.queryKeyValue
        switch attentionWeights.projection {
        case let .separate(query, key, value):
            query.forward(normed, rows: rows, ldx: hiddenSize, into: qkv, ldy: width, scratch: scratch)
            key.forward(normed, rows: rows, ldx: hiddenSize, into: qkv + attention.queryDim, ldy: width, scratch: scratch)
            value.forward(normed, rows: rows, ldx: hiddenSize, into: qkv + attention.queryDim + attention.kvDim, ldy: width, scratch: scratch)
        case let .fused(linear):
            linear.forward(normed, rows: rows, ldx: hiddenSize, into: qkv, ldy: width, scratch: scratch)
        }
        if let queryNorm = attentionWeights.queryNorm, let keyNorm = attentionWeights.keyNorm {
            buffers.rawQueryKeyValue?.update(from: qkv, count: rows * width)
            for row in 0..<rows {
                let rowPointer = qkv + row * width
                NormalizationKernels.forward(spec.norm, rowPointer, rows: attention.heads, dim: attention.headDim, ldx: attention.headDim,
                                             weights: queryNorm, into: rowPointer, ldy: attention.headDim)
                NormalizationKernels.forward(spec.norm, rowPointer + attention.queryDim, rows: attention.kvHeads, dim: attention.headDim,
                                             ldx: attention.headDim, weights: keyNorm, into: rowPointer + attention.queryDim, ldy: attention.headDim)
            }
        }
        if rotaryDim > 0 {
            RotaryKernels.forward(qkv, rows: rows, ld: width, heads: attention.heads, headDim: attention.headDim, rotaryDim: rotaryDim,
                                  cos: workspace.rotaryCos, sin: workspace.rotarySin)
            RotaryKernels.forward(qkv + attention.queryDim, rows: rows, ld: width, heads: attention.kvHeads, headDim: attention.headDim,
                                  rotaryDim: rotaryDim, cos: workspace.rotaryCos, sin: workspace.rotarySin)
        }
        let scale = spec.attentionScale(forLayer: layerIndex)
        let attentionOutput = buffers.attentionOutput
        if let cache {
            let segment = segments[0]
            let keys = cache.keys(layer: layerIndex)
            let values = cache.values(layer: layerIndex)
            for offset in 0..<segment.length {
                let source = qkv + (segment.rowStart + offset) * width + attention.queryDim
                (keys + (past + offset) * attention.kvDim).update(from: source, count: attention.kvDim)
                (values + (past + offset) * attention.kvDim).update(from: source + attention.kvDim, count: attention.kvDim)
            }
            AttentionKernels.causalForward(
                queries: qkv + segment.rowStart * width, ldq: width, length: segment.length, queryStart: past,
                keys: keys, ldk: attention.kvDim, values: values, ldv: attention.kvDim, keyCount: past + segment.length,
                shape: attention, scale: scale, window: spec.slidingWindow, scores: workspace.scores,
                output: attentionOutput + segment.rowStart * attention.queryDim, ldo: attention.queryDim)
        } else {
            for segment in segments where segment.length > 0 {
                let base = qkv + segment.rowStart * width
                AttentionKernels.causalForward(
                    queries: base, ldq: width, length: segment.length, queryStart: 0,
                    keys: base + attention.queryDim, ldk: width, values: base + attention.queryDim + attention.kvDim, ldv: width,
                    keyCount: segment.length, shape: attention, scale: scale, window: spec.slidingWindow, scores: workspace.scores,
                    output: attentionOutput + segment.rowStart * attention.queryDim, ldo: attention.queryDim)
            }
        }
        attentionWeights.output.forward(attentionOutput, rows: rows, ldx: attention.queryDim, into: buffers.residualMid, ldy: hiddenSize,
                                        alpha: spec.residualMultiplier, beta: 1, scratch: scratch)
    }

    /// Logit rows computed at once: enough that the output projection's GEMM packs the (vocabulary, hidden) matrix
    /// rarely (re-packing it for every 32-row chunk cost a quarter of scoring time), capped at ~64 MB of logits.
    var logitChunkRows: Int { max(32, min(512, 16_777_216 / spec.vocabularySize)) }

    /// logits (rows, vocab) = multiplier · normed[firstRow ..< firstRow+rows] · Eᵀ.
    func logits(context: ForwardContext, firstRow: Int, rows: Int, into output: UnsafeMutablePointer<Float>) {
        let hiddenSize = spec.hiddenSize
        if let projection = weights.outputProjectionBF16 {
            BFloat16Kernels.forward(weight: projection, outFeatures: spec.vocabularySize, inFeatures: hiddenSize,
                                    x: context.workspace.normed + firstRow * hiddenSize, rows: rows, ldx: hiddenSize,
                                    into: output, ldy: spec.vocabularySize, alpha: spec.logitsMultiplier, beta: 0)
            return
        }
        // One row (decoding) is a GEMV over the stored weights; several rows widen them a panel at a time.
        WeightProducts.multiplyTransposed(weights.outputProjection, x: context.workspace.normed + firstRow * hiddenSize, rows: rows,
                                          ldx: hiddenSize, into: output, ldy: spec.vocabularySize, alpha: spec.logitsMultiplier, beta: 0)
    }
}

/// Per-thread state of forward passes over one model: the activation workspace and a logits buffer.
public final class ForwardContext {
    let workspace: Workspace
    private(set) var logitsBuffer: UnsafeMutablePointer<Float>?
    private var logitsCapacity = 0
    let vocabularySize: Int

    /// `recording` keeps every layer's activations for a backward pass (training).
    public init(model: DecoderModel, recording: Bool = false) {
        workspace = Workspace(spec: model.spec, recording: recording)
        vocabularySize = model.spec.vocabularySize
    }

    deinit { logitsBuffer?.deallocate() }

    /// A (rows, vocab) buffer, reused between calls.
    func logits(rows: Int) -> UnsafeMutablePointer<Float> {
        if rows * vocabularySize > logitsCapacity {
            logitsBuffer?.deallocate()
            logitsCapacity = rows * vocabularySize
            logitsBuffer = .allocate(capacity: logitsCapacity)
        }
        return logitsBuffer!
    }
}
