import Foundation

/// The activations of one forward pass, carved out of a single allocation into named buffers.
///
/// Sized for `rows` packed tokens, sequences of at most `maxSegment` queries attending to at most `maxKeys` keys,
/// and adapters of rank up to `maxRank`; a pass that fits reuses it, a larger one grows it once.
///
/// In inference every layer uses the same buffers and the residual stream is updated in place. When
/// `recording` (training), every layer gets its own buffers, so the backward pass finds each layer's inputs
/// where the forward pass left them: one set of kernels serves both, only the aliasing differs.
final class Workspace {
    struct Capacity: Equatable {
        var rows: Int
        var maxSegment: Int
        var maxKeys: Int
        var maxRank: Int

        func covers(_ other: Capacity) -> Bool {
            rows >= other.rows && maxSegment >= other.maxSegment && maxKeys >= other.maxKeys && maxRank >= other.maxRank
        }
    }

    /// One layer's activations. Shapes are (rows, ·) with the row stride named beside each.
    struct LayerBuffers {
        /// (rows, hidden): the residual stream entering the block.
        var residualIn: UnsafeMutablePointer<Float>
        /// (rows, hidden): `norm(residualIn)`, the input of the q/k/v projections.
        var normedAttention: UnsafeMutablePointer<Float>
        /// (rows, queryDim + 2·kvDim): projections before the q/k norm and rotation (recorded only with q/k norm).
        var rawQueryKeyValue: UnsafeMutablePointer<Float>?
        /// (rows, queryDim + 2·kvDim): `[q | k | v]` after the q/k norm and rotation.
        var queryKeyValue: UnsafeMutablePointer<Float>
        /// (rows, queryDim): attention output, the input of o_proj.
        var attentionOutput: UnsafeMutablePointer<Float>
        /// (rows, hidden): the residual stream after the attention sub-block.
        var residualMid: UnsafeMutablePointer<Float>
        /// (rows, hidden): `norm(residualMid)`, the input of the MLP.
        var normedFeedForward: UnsafeMutablePointer<Float>
        /// (rows, feedForwardWidth): MLP projections before the activation (`[gate | up]` or `up`).
        var feedForward: UnsafeMutablePointer<Float>
        /// (rows, intermediate) with row stride `activatedStride`: the input of the down projection.
        var activated: UnsafeMutablePointer<Float>
        var activatedStride: Int
        /// (rows, hidden): the residual stream leaving the block.
        var residualOut: UnsafeMutablePointer<Float>
        /// Mamba layers only: `MambaBuffers`.
        var mamba: MambaBuffers?
    }

    /// One Mamba layer's activations (shapes in `MambaShape`'s notation).
    struct MambaBuffers {
        /// (rows, projectionWidth): in_proj output `[z | xBC | dt_raw]`.
        var projected: UnsafeMutablePointer<Float>
        /// (rows, convDim): xBC after the conv and SiLU, `[x | B | C]`.
        var convolved: UnsafeMutablePointer<Float>
        /// (rows, NH): dt after softplus and clamping.
        var delta: UnsafeMutablePointer<Float>
        /// (rows, I): the scan output `y` (including `D·x`).
        var scanned: UnsafeMutablePointer<Float>
        /// (rows, I): the gated norm's output, the input of out_proj.
        var gated: UnsafeMutablePointer<Float>
    }

    let spec: TransformerSpec
    let recording: Bool
    private(set) var capacity = Capacity(rows: 0, maxSegment: 0, maxKeys: 0, maxRank: 0)
    private var storage: UnsafeMutablePointer<Float>?
    private var layers: [LayerBuffers] = []

    /// (rows, hidden): the final norm's output, the input of the logits.
    private(set) var normed: UnsafeMutablePointer<Float>!
    /// (maxSegment, maxKeys): attention probabilities of one head.
    private(set) var scores: UnsafeMutablePointer<Float>!
    /// (rows, rotaryDim/2) each: rotation tables for the rows' positions.
    private(set) var rotaryCos: UnsafeMutablePointer<Float>!
    private(set) var rotarySin: UnsafeMutablePointer<Float>!
    /// (rows, maxRank): the low-rank intermediate of an adapter.
    private(set) var adapterScratch: UnsafeMutablePointer<Float>!
    /// Mamba: the scan's scratch, the conv taps (K, convDim), a sequence's conv history (K−1, convDim) and SSM state
    /// (NH, P, N) when no cache holds them.
    private(set) var scanScratch: UnsafeMutablePointer<Float>!
    private(set) var convTaps: UnsafeMutablePointer<Float>!
    private(set) var convHistory: UnsafeMutablePointer<Float>!
    private(set) var ssmState: UnsafeMutablePointer<Float>!
    /// Routed experts' scratch (`ExpertKernels.Scratch`).
    private(set) var expertScratch: UnsafeMutablePointer<Float>!

    init(spec: TransformerSpec, recording: Bool = false) {
        self.spec = spec
        self.recording = recording
    }

    deinit { storage?.deallocate() }

    var queryKeyValueWidth: Int { spec.attention.queryDim + 2 * spec.attention.kvDim }

    var feedForwardWidth: Int {
        if case .gated = spec.feedForward { return 2 * spec.intermediateSize }
        return spec.intermediateSize
    }

    var rotaryHalf: Int {
        if case .rotary(let rotary) = spec.positions { return rotary.rotaryDim / 2 }
        return 0
    }

    func layer(_ index: Int) -> LayerBuffers { layers[recording ? index : 0] }

    /// (rows, hidden): the residual stream after the last block.
    var finalHidden: UnsafeMutablePointer<Float> { layer(spec.layerCount - 1).residualOut }

    func reserve(_ needed: Capacity) {
        if capacity.covers(needed) { return }
        let grown = Capacity(rows: max(needed.rows, capacity.rows), maxSegment: max(needed.maxSegment, capacity.maxSegment),
                             maxKeys: max(needed.maxKeys, capacity.maxKeys), maxRank: max(needed.maxRank, capacity.maxRank))
        let rows = grown.rows
        let hidden = rows * spec.hiddenSize
        let qkv = rows * queryKeyValueWidth
        let gated: Bool
        if case .gated = spec.feedForward { gated = true } else { gated = false }
        let layerSets = recording ? spec.layerCount : 1

        // Sizes in floats, each rounded up to 16 floats (64 bytes) so every buffer starts aligned.
        var sizes: [Int] = []
        func add(_ count: Int) -> Int {
            sizes.append((count + 15) / 16 * 16)
            return sizes.count - 1
        }
        let normedIndex = add(hidden)
        let scoresIndex = add(grown.maxSegment * grown.maxKeys)
        let cosIndex = add(rows * rotaryHalf)
        let sinIndex = add(rows * rotaryHalf)
        let scratchIndex = add(rows * grown.maxRank)
        let mambaShape = spec.mamba
        let scanScratchIndex = add(mambaShape.map { Mamba2Kernels.scanScratchCount($0) } ?? 0)
        let tapsIndex = add(mambaShape.map { $0.convKernel * $0.convDim } ?? 0)
        let historyIndex = add(mambaShape?.convStateCount ?? 0)
        let ssmIndex = add(mambaShape?.ssmStateCount ?? 0)
        let expertIndex = add(spec.experts.map { ExpertKernels.scratchCount($0, hidden: spec.hiddenSize, rows: rows) } ?? 0)
        // Residual streams: one in place for inference; layers + 1 (block inputs and the final output) plus one
        // mid-block stream per layer when recording.
        let streamIndices = (0..<(recording ? spec.layerCount + 1 : 1)).map { _ in add(hidden) }
        let midIndices = recording ? (0..<spec.layerCount).map { _ in add(hidden) } : []
        var perLayer: [[Int]] = []
        var mambaPerLayer: [[Int]?] = []
        for set in 0..<layerSets {
            // Inference shares one set of buffers between all layers; it needs the Mamba ones if any layer is Mamba.
            if let mambaShape, recording ? spec.layerKind(set) == .mamba : spec.hasMambaLayers {
                mambaPerLayer.append([add(rows * mambaShape.projectionWidth), add(rows * mambaShape.convDim), add(rows * mambaShape.heads),
                                      add(rows * mambaShape.intermediate), add(rows * mambaShape.intermediate)])
            } else {
                mambaPerLayer.append(nil)
            }
            let normedAttention = add(hidden)
            let raw = recording && spec.queryKeyNorm ? add(qkv) : -1
            let queryKeyValue = add(qkv)
            let attentionOutput = add(rows * spec.attention.queryDim)
            let normedFeedForward = recording ? add(hidden) : normedAttention
            let feedForward = add(rows * feedForwardWidth)
            let activated = recording ? add(rows * spec.intermediateSize) : feedForward
            perLayer.append([normedAttention, raw, queryKeyValue, attentionOutput, normedFeedForward, feedForward, activated])
        }
        storage?.deallocate()
        let base = UnsafeMutablePointer<Float>.allocate(capacity: max(sizes.reduce(0, +), 16))
        storage = base
        var offsets: [Int] = []
        var offset = 0
        for size in sizes {
            offsets.append(offset)
            offset += size
        }
        func pointer(_ index: Int) -> UnsafeMutablePointer<Float> { base + offsets[index] }
        normed = pointer(normedIndex)
        scores = pointer(scoresIndex)
        rotaryCos = pointer(cosIndex)
        rotarySin = pointer(sinIndex)
        adapterScratch = pointer(scratchIndex)
        scanScratch = pointer(scanScratchIndex)
        convTaps = pointer(tapsIndex)
        convHistory = pointer(historyIndex)
        ssmState = pointer(ssmIndex)
        expertScratch = pointer(expertIndex)
        layers = perLayer.enumerated().map { index, set in
            let residualIn = pointer(streamIndices[recording ? index : 0])
            return LayerBuffers(
                residualIn: residualIn,
                normedAttention: pointer(set[0]),
                rawQueryKeyValue: set[1] >= 0 ? pointer(set[1]) : nil,
                queryKeyValue: pointer(set[2]),
                attentionOutput: pointer(set[3]),
                residualMid: recording ? pointer(midIndices[index]) : residualIn,
                normedFeedForward: pointer(set[4]),
                feedForward: pointer(set[5]),
                activated: pointer(set[6]),
                activatedStride: recording || !gated ? spec.intermediateSize : feedForwardWidth,
                residualOut: pointer(streamIndices[recording ? index + 1 : 0]),
                mamba: mambaPerLayer[index].map {
                    MambaBuffers(projected: pointer($0[0]), convolved: pointer($0[1]), delta: pointer($0[2]), scanned: pointer($0[3]), gated: pointer($0[4]))
                })
        }
        capacity = grown
    }
}
