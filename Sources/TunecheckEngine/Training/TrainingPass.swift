import CBLAS
import Foundation

/// One forward + backward over a packed batch, for training. The forward records every layer's activations;
/// `backward` walks the layers in reverse, mirroring the forward kernel by kernel, and accumulates parameter
/// gradients into a `ParameterGradients`.
///
/// The loss is expressed through the per-token log-probs: the caller gets `logprob[s][i] = log p(ids[i+1] | ids[..i])`
/// from `forward`, computes its loss (SFT cross-entropy, DPO, ...), and passes `∂L/∂logprob[s][i]` to `backward`.
public final class TrainingPass {
    public let model: DecoderModel
    let context: ForwardContext
    private(set) var batch = PackedBatch()
    var tokens: [Int32] { batch.tokens }
    var segments: [SequenceSegment] { batch.segments }

    /// Gradient buffers, one allocation carved like the workspace.
    private var storage: UnsafeMutablePointer<Float>?
    private var storageRows = 0
    private var storageSegment = 0
    var dHidden: UnsafeMutablePointer<Float>!       // (rows, hidden): gradient of the residual stream
    var dNormed: UnsafeMutablePointer<Float>!       // (rows, hidden): gradient of a norm's output
    private var dQueryKeyValue: UnsafeMutablePointer<Float>! // (rows, width)
    private var dRaw: UnsafeMutablePointer<Float>!          // (rows, width): before q/k norm
    private var dAttention: UnsafeMutablePointer<Float>!    // (rows, queryDim)
    private var dFeedForward: UnsafeMutablePointer<Float>!  // (rows, ffnWidth)
    private var dActivated: UnsafeMutablePointer<Float>!    // (rows, intermediate)
    private var probabilities: UnsafeMutablePointer<Float>! // (segment, segment)
    private var dProbabilities: UnsafeMutablePointer<Float>!
    var adapterScratch: UnsafeMutablePointer<Float>! // (rows, 2·maxRank)
    // Mamba layers (shapes in MambaShape's notation) and routed experts; empty when the model has none.
    var dMambaGated: UnsafeMutablePointer<Float>!      // (rows, I): ∂L/∂(out_proj input)
    var dMambaScanned: UnsafeMutablePointer<Float>!    // (rows, I): ∂L/∂y
    var dMambaProjected: UnsafeMutablePointer<Float>!  // (rows, projectionWidth): ∂L/∂[z | xBC | dt_raw]
    var dMambaConvolved: UnsafeMutablePointer<Float>!  // (rows, convDim): ∂L/∂(conv + SiLU output)
    var dMambaDelta: UnsafeMutablePointer<Float>!      // (rows, NH): ∂L/∂dt
    var mambaConvScratch: UnsafeMutablePointer<Float>! // (maxSegment, convDim)
    var mambaTaps: UnsafeMutablePointer<Float>!        // (K, convDim)
    var mambaScanScratch: UnsafeMutablePointer<Float>! // Mamba2BackwardKernels.scanScratchCount(maxSegment)
    var expertScratch: UnsafeMutablePointer<Float>!    // ExpertKernels.scratchCount(rows)
    private var logitRows: Int { model.logitChunkRows }

    /// Threads a batch of several sequences is split over (see `TrainingPass+Parallel.swift`).
    public let threads: Int
    /// Single-threaded passes over shares of the batch, made on first use, and the share each ran last.
    var workers: [TrainingPass] = []
    var shares: [Range<Int>]?
    /// Per-worker gradient buffers and the gradients object they shadow (kept alive, so identity stays meaningful);
    /// no buffers when that object cannot be shadowed.
    var shadowed: (owner: ParameterGradients, shadows: [ShadowGradients])?

    /// `threads` defaults to the cores this process may use; 1 runs every batch as one packed pass.
    public init(model: DecoderModel, threads: Int? = nil) {
        self.model = model
        self.threads = max(1, threads ?? MatrixVectorKernels.threads)
        context = ForwardContext(model: model, recording: true)
    }

    deinit { storage?.deallocate() }

    /// Forward over `sequences` (each ≥ 2 tokens); returns each sequence's n−1 next-token log-probs.
    public func forward(_ sequences: [[Int]]) throws -> [[Double]] {
        if let split = try forwardSplit(sequences) { return split }
        shares = nil
        batch = try PackedBatch(sequences, vocabularySize: model.spec.vocabularySize, minimumLength: 2, label: "training sequence")
        try batch.tokens.withUnsafeBufferPointer { buffer in
            try model.forward(tokens: buffer, segments: batch.segments, cache: nil, context: context)
        }
        return batch.tokenLogprobs(model: model, context: context, chunkRows: logitRows)
    }

    /// Backward of the last `forward`, given `∂L/∂logprob` for every scored position (same shape as its result).
    public func backward(_ dLogprobs: [[Double]], into gradients: ParameterGradients) {
        if backwardSplit(dLogprobs, into: gradients) { return }
        let spec = model.spec
        let rows = tokens.count
        let hiddenSize = spec.hiddenSize
        let workspace = context.workspace
        let ffnWidth = workspace.feedForwardWidth
        let intermediate = spec.intermediateSize
        let maxSegment = segments.map(\.length).max() ?? 0
        reserve(rows: rows, maxSegment: maxSegment)
        let residual = spec.residualMultiplier
        let scratch = adapterScratch

        // Logits: dlogits = ∂L/∂logprob · (onehot(target) − softmax); dNormed = multiplier · dlogits · E.
        dNormed.update(repeating: 0, count: rows * hiddenSize)
        let vocabulary = spec.vocabularySize
        let logits = context.logits(rows: logitRows)
        forEachScoredChunk { chunkStart, chunkRows in
            var any = false
            for offset in 0..<chunkRows {
                if let (segment, position) = location(ofRow: chunkStart + offset), dLogprobs[segment][position] != 0 { any = true }
            }
            guard any else { return }
            model.logits(context: context, firstRow: chunkStart, rows: chunkRows, into: logits)
            for offset in 0..<chunkRows {
                let row = logits + offset * vocabulary
                guard let (segment, position) = location(ofRow: chunkStart + offset), dLogprobs[segment][position] != 0 else {
                    row.update(repeating: 0, count: vocabulary)
                    continue
                }
                let coefficient = Float(dLogprobs[segment][position])
                let (logSumExp, _) = LogSoftmaxKernels.logSumExp(row, count: vocabulary)
                let shift = Float(logSumExp)
                LogSoftmaxKernels.scaledExp(row, count: vocabulary, shift: shift, scale: -coefficient)
                row[Int(tokens[chunkStart + offset + 1])] += coefficient
            }
            // dNormed (chunk, hidden) += multiplier · dlogits (chunk, vocab) · E (vocab, hidden), E as stored.
            WeightProducts.multiply(model.weights.outputProjection, x: logits, rows: chunkRows, ldx: vocabulary,
                                    into: dNormed + chunkStart * hiddenSize, ldy: hiddenSize, alpha: spec.logitsMultiplier, beta: 1)
            if let outputGradient = gradients.outputProjection {
                // dE (vocab, hidden) += multiplier · dlogitsᵀ · normed
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(vocabulary), Int32(hiddenSize), Int32(chunkRows),
                            spec.logitsMultiplier, logits, Int32(vocabulary), workspace.normed + chunkStart * hiddenSize, Int32(hiddenSize),
                            1, outputGradient, Int32(hiddenSize))
            }
        }
        dHidden.update(repeating: 0, count: rows * hiddenSize)
        let finalNorm = gradients.norm(model.weights.finalNorm)
        NormalizationKernels.backward(spec.norm, x: workspace.finalHidden, ldx: hiddenSize, dy: dNormed, lddy: hiddenSize, rows: rows,
                                      dim: hiddenSize, weights: model.weights.finalNorm, dx: dHidden, lddx: hiddenSize,
                                      weightGradient: finalNorm.weight, biasGradient: finalNorm.bias)

        for layerIndex in stride(from: spec.layerCount - 1, through: 0, by: -1) {
            let layer = model.weights.layers[layerIndex]
            let buffers = workspace.layer(layerIndex)
            // MLP: residualOut = residualMid + m · down(act(f)); dHidden is ∂L/∂residualOut and becomes ∂L/∂residualMid.
            dActivated.update(repeating: 0, count: rows * intermediate)
            layer.feedForward.down.backward(x: buffers.activated, ldx: buffers.activatedStride, dy: dHidden, lddy: hiddenSize, rows: rows,
                                            alpha: residual, dx: dActivated, lddx: intermediate,
                                            gradients: gradients.linears[layer.feedForward.down.name], scratch: scratch)
            switch spec.feedForward {
            case .gated(let activation):
                ActivationKernels.gatedBackward(activation, gate: buffers.feedForward, up: buffers.feedForward + intermediate, ld: ffnWidth,
                                                dy: dActivated, lddy: intermediate, rows: rows, dim: intermediate,
                                                dgate: dFeedForward, dup: dFeedForward + intermediate)
            case .plain(let activation):
                ActivationKernels.backward(activation, x: buffers.feedForward, ldx: ffnWidth, dy: dActivated, lddy: intermediate,
                                           rows: rows, dim: intermediate, into: dFeedForward, lddx: ffnWidth)
            }
            dNormed.update(repeating: 0, count: rows * hiddenSize)
            switch layer.feedForward.projection {
            case let .separate(gate, up):
                gate.backward(x: buffers.normedFeedForward, ldx: hiddenSize, dy: dFeedForward, lddy: ffnWidth, rows: rows,
                              dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[gate.name], scratch: scratch)
                up.backward(x: buffers.normedFeedForward, ldx: hiddenSize, dy: dFeedForward + intermediate, lddy: ffnWidth, rows: rows,
                            dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[up.name], scratch: scratch)
            case let .fused(linear), let .single(linear):
                linear.backward(x: buffers.normedFeedForward, ldx: hiddenSize, dy: dFeedForward, lddy: ffnWidth, rows: rows,
                                dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[linear.name], scratch: scratch)
            }
            if let experts = layer.feedForward.experts, let expertShape = spec.experts {
                withSingleThreadedBLAS {
                    ExpertKernels.backward(expertShape, weights: experts, hidden: hiddenSize, input: buffers.normedFeedForward, ldi: hiddenSize,
                                           rows: rows, dOutput: dHidden, lddo: hiddenSize, alpha: residual, dInput: dNormed, lddi: hiddenSize,
                                           scratch: .init(expertScratch, shape: expertShape, hidden: hiddenSize, rows: rows),
                                           gradients: expertGradients(experts, in: gradients))
                }
            }
            let feedForwardNorm = gradients.norm(layer.feedForwardNorm)
            NormalizationKernels.backward(spec.norm, x: buffers.residualMid, ldx: hiddenSize, dy: dNormed, lddy: hiddenSize, rows: rows,
                                          dim: hiddenSize, weights: layer.feedForwardNorm, dx: dHidden, lddx: hiddenSize,
                                          weightGradient: feedForwardNorm.weight, biasGradient: feedForwardNorm.bias)

            // Mixer: residualMid = residualIn + m · mixer(norm(residualIn)); dNormed becomes ∂L/∂norm output.
            dNormed.update(repeating: 0, count: rows * hiddenSize)
            switch layer.mixer {
            case .attention(let attentionWeights):
                attentionBackward(attentionWeights, layerIndex: layerIndex, buffers: buffers, gradients: gradients)
            case .mamba(let mambaWeights):
                mambaBackward(mambaWeights, buffers: buffers, gradients: gradients)
            }
            let attentionNorm = gradients.norm(layer.attentionNorm)
            NormalizationKernels.backward(spec.norm, x: buffers.residualIn, ldx: hiddenSize, dy: dNormed, lddy: hiddenSize, rows: rows,
                                          dim: hiddenSize, weights: layer.attentionNorm, dx: dHidden, lddx: hiddenSize,
                                          weightGradient: attentionNorm.weight, biasGradient: attentionNorm.bias)
        }

        // Embeddings (full fine-tuning only).
        if let embeddingGradient = gradients.tokenEmbedding {
            for row in 0..<rows {
                let target = embeddingGradient + Int(tokens[row]) * hiddenSize
                let source = dHidden + row * hiddenSize
                for index in 0..<hiddenSize { target[index] += spec.embeddingMultiplier * source[index] }
            }
        }
        if let positionGradient = gradients.positionEmbedding {
            for segment in segments {
                for offset in 0..<segment.length {
                    let target = positionGradient + offset * hiddenSize
                    let source = dHidden + (segment.rowStart + offset) * hiddenSize
                    for index in 0..<hiddenSize { target[index] += source[index] }
                }
            }
        }
    }

    /// Where the routed experts' gradients go (full fine-tuning's float32 copies; nil buffers when they are frozen).
    private func expertGradients(_ experts: ExpertWeights, in gradients: ParameterGradients) -> ExpertKernels.Gradients {
        var result = ExpertKernels.Gradients(router: gradients.gradient(of: experts.router.float32), down: gradients.gradient(of: experts.down.float32))
        switch experts.projection {
        case .fused(let gateUp): result.gateUp = gradients.gradient(of: gateUp.float32)
        case let .separate(gate, up):
            result.gate = gradients.gradient(of: gate.float32)
            result.up = gradients.gradient(of: up.float32)
        }
        return result
    }

    /// Backward of one attention mixer: from dHidden (∂L/∂residualMid) into dNormed (∂L/∂normedAttention, zeroed by
    /// the caller), with LoRA gradients of q/k/v/o.
    private func attentionBackward(_ attentionWeights: AttentionWeights, layerIndex: Int, buffers: Workspace.LayerBuffers,
                                   gradients: ParameterGradients) {
        let spec = model.spec
        let rows = tokens.count
        let hiddenSize = spec.hiddenSize
        let attention = spec.attention
        let workspace = context.workspace
        let width = workspace.queryKeyValueWidth
        let residual = spec.residualMultiplier
        let scratch = adapterScratch
        // Attention: residualMid = residualIn + m · o(attention(qkv)); dHidden becomes ∂L/∂residualIn.
        dAttention.update(repeating: 0, count: rows * attention.queryDim)
        attentionWeights.output.backward(x: buffers.attentionOutput, ldx: attention.queryDim, dy: dHidden, lddy: hiddenSize, rows: rows,
                                        alpha: residual, dx: dAttention, lddx: attention.queryDim,
                                        gradients: gradients.linears[attentionWeights.output.name], scratch: scratch)
        dQueryKeyValue.update(repeating: 0, count: rows * width)
        let scale = spec.attentionScale(forLayer: layerIndex)
        for segment in segments {
            AttentionKernels.causalBackward(
                qkv: buffers.queryKeyValue + segment.rowStart * width, ld: width, length: segment.length,
                dOutput: dAttention + segment.rowStart * attention.queryDim, lddo: attention.queryDim, shape: attention, scale: scale,
                window: spec.slidingWindow, probabilities: probabilities, dProbabilities: dProbabilities,
                dqkv: dQueryKeyValue + segment.rowStart * width)
        }
        if case .rotary(let rotary) = spec.positions {
            RotaryKernels.backward(dQueryKeyValue, rows: rows, ld: width, heads: attention.heads, headDim: attention.headDim,
                                   rotaryDim: rotary.rotaryDim, cos: workspace.rotaryCos, sin: workspace.rotarySin)
            RotaryKernels.backward(dQueryKeyValue + attention.queryDim, rows: rows, ld: width, heads: attention.kvHeads,
                                   headDim: attention.headDim, rotaryDim: rotary.rotaryDim, cos: workspace.rotaryCos, sin: workspace.rotarySin)
        }
        var dProjection = dQueryKeyValue!
        if let queryNorm = attentionWeights.queryNorm, let keyNorm = attentionWeights.keyNorm, let raw = buffers.rawQueryKeyValue {
            // q/k norm per head: gradients into dRaw; v passes through unchanged.
            dRaw.update(repeating: 0, count: rows * width)
            let queryGradient = gradients.norm(queryNorm)
            let keyGradient = gradients.norm(keyNorm)
            for row in 0..<rows {
                let offset = row * width
                NormalizationKernels.backward(spec.norm, x: raw + offset, ldx: attention.headDim, dy: dQueryKeyValue + offset,
                                              lddy: attention.headDim, rows: attention.heads, dim: attention.headDim, weights: queryNorm,
                                              dx: dRaw + offset, lddx: attention.headDim,
                                              weightGradient: queryGradient.weight, biasGradient: nil)
                let keyOffset = offset + attention.queryDim
                NormalizationKernels.backward(spec.norm, x: raw + keyOffset, ldx: attention.headDim, dy: dQueryKeyValue + keyOffset,
                                              lddy: attention.headDim, rows: attention.kvHeads, dim: attention.headDim, weights: keyNorm,
                                              dx: dRaw + keyOffset, lddx: attention.headDim,
                                              weightGradient: keyGradient.weight, biasGradient: nil)
                let valueOffset = offset + attention.queryDim + attention.kvDim
                (dRaw + valueOffset).update(from: dQueryKeyValue + valueOffset, count: attention.kvDim)
            }
            dProjection = dRaw
        }
        switch attentionWeights.projection {
        case let .separate(query, key, value):
            query.backward(x: buffers.normedAttention, ldx: hiddenSize, dy: dProjection, lddy: width, rows: rows,
                           dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[query.name], scratch: scratch)
            key.backward(x: buffers.normedAttention, ldx: hiddenSize, dy: dProjection + attention.queryDim, lddy: width, rows: rows,
                         dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[key.name], scratch: scratch)
            value.backward(x: buffers.normedAttention, ldx: hiddenSize, dy: dProjection + attention.queryDim + attention.kvDim, lddy: width,
                           rows: rows, dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[value.name], scratch: scratch)
        case let .fused(linear):
            linear.backward(x: buffers.normedAttention, ldx: hiddenSize, dy: dProjection, lddy: width, rows: rows,
                            dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[linear.name], scratch: scratch)
        }
    }

    /// Calls `body(chunkStart, chunkRows)` over all rows in chunks of `logitRows`.
    private func forEachScoredChunk(_ body: (Int, Int) -> Void) {
        var start = 0
        while start < tokens.count {
            let count = min(logitRows, tokens.count - start)
            body(start, count)
            start += count
        }
    }

    /// The (sequence, position) a row predicts from, or nil for a sequence's last row.
    private func location(ofRow row: Int) -> (Int, Int)? {
        batch.scoredPosition(ofRow: row).map { ($0.sequence, $0.position) }
    }

    private func reserve(rows: Int, maxSegment: Int) {
        guard rows > storageRows || maxSegment > storageSegment else { return }
        let spec = model.spec
        let workspace = context.workspace
        let width = workspace.queryKeyValueWidth
        let maxRank = model.maxAdapterRank
        let unrounded = [rows * spec.hiddenSize, rows * spec.hiddenSize, rows * width, rows * width, rows * spec.attention.queryDim,
                     rows * workspace.feedForwardWidth, rows * spec.intermediateSize, maxSegment * maxSegment, maxSegment * maxSegment,
                     2 * rows * max(maxRank, 1)] + mambaAndExpertSizes(rows: rows, maxSegment: maxSegment)
        let sizes = unrounded.map { ($0 + 15) / 16 * 16 }
        storage?.deallocate()
        let base = UnsafeMutablePointer<Float>.allocate(capacity: max(sizes.reduce(0, +), 16))
        storage = base
        var offset = 0
        var pointers: [UnsafeMutablePointer<Float>] = []
        for size in sizes {
            pointers.append(base + offset)
            offset += size
        }
        dHidden = pointers[0]
        dNormed = pointers[1]
        dQueryKeyValue = pointers[2]
        dRaw = pointers[3]
        dAttention = pointers[4]
        dFeedForward = pointers[5]
        dActivated = pointers[6]
        probabilities = pointers[7]
        dProbabilities = pointers[8]
        adapterScratch = pointers[9]
        dMambaGated = pointers[10]
        dMambaScanned = pointers[11]
        dMambaProjected = pointers[12]
        dMambaConvolved = pointers[13]
        dMambaDelta = pointers[14]
        mambaConvScratch = pointers[15]
        mambaTaps = pointers[16]
        mambaScanScratch = pointers[17]
        expertScratch = pointers[18]
        storageRows = rows
        storageSegment = maxSegment
    }
}
