import Foundation

extension DecoderModel {
    /// A Mamba2 layer over packed rows (docs/granitemoehybrid.md §5): `in_proj` over all rows as one GEMM; per
    /// segment the causal conv + SiLU, the time steps and the chunked scan (each segment starts from a zero state, or
    /// continues the cache's); the gated norm over all rows; `residualMid += residual_multiplier · out_proj(·)`.
    func mambaMixer(_ mamba: MambaWeights, layerIndex: Int, buffers: Workspace.LayerBuffers, rows: Int, segments: [SequenceSegment],
                    cache: KVCache?, workspace: Workspace) {
        guard let shape = spec.mamba, let mambaBuffers = buffers.mamba else {
            preconditionFailure("Mamba layer \(layerIndex) without a MambaShape or buffers")
        }
        let hiddenSize = spec.hiddenSize
        let projectionWidth = shape.projectionWidth
        let intermediate = shape.intermediate
        let projected = mambaBuffers.projected
        mamba.inProjection.forward(buffers.normedAttention, rows: rows, ldx: hiddenSize, into: projected, ldy: projectionWidth,
                                   scratch: workspace.adapterScratch)
        let xBC = projected + intermediate
        let rawTimeStep = projected + intermediate + shape.convDim
        for segment in segments where segment.length > 0 {
            let start = segment.rowStart, length = segment.length
            let history: UnsafeMutablePointer<Float>?
            let state: UnsafeMutablePointer<Float>
            if let cache {
                history = cache.convHistory(layer: layerIndex)
                state = cache.ssmState(layer: layerIndex)
            } else {
                history = nil
                state = workspace.ssmState
                state.update(repeating: 0, count: shape.ssmStateCount)
            }
            Mamba2Kernels.convolve(shape, input: xBC + start * projectionWidth, ldi: projectionWidth, length: length, history: history.map { UnsafePointer($0) },
                                   weight: mamba.convWeight, bias: mamba.convBias, taps: workspace.convTaps,
                                   output: mambaBuffers.convolved + start * shape.convDim, ldo: shape.convDim)
            if let history {
                Mamba2Kernels.advanceHistory(shape, history: history, input: xBC + start * projectionWidth, ldi: projectionWidth, length: length)
            }
            Mamba2Kernels.timeSteps(shape, raw: rawTimeStep + start * projectionWidth, ldr: projectionWidth, length: length,
                                    bias: mamba.timeStepBias, into: mambaBuffers.delta + start * shape.heads)
            if length == 1 && cache != nil {
                Mamba2Kernels.step(shape, convolved: mambaBuffers.convolved + start * shape.convDim, delta: mambaBuffers.delta + start * shape.heads,
                                   logDecay: mamba.logDecay, skip: mamba.skip, state: state, y: mambaBuffers.scanned + start * intermediate)
            } else {
                withSingleThreadedBLAS {
                    Mamba2Kernels.scan(shape, convolved: mambaBuffers.convolved + start * shape.convDim, ldc: shape.convDim,
                                       delta: mambaBuffers.delta + start * shape.heads, length: length, logDecay: mamba.logDecay, skip: mamba.skip,
                                       state: state, y: mambaBuffers.scanned + start * intermediate, ldy: intermediate, scratch: workspace.scanScratch)
                }
            }
        }
        Mamba2Kernels.gatedNorm(shape, y: mambaBuffers.scanned, ldy: intermediate, z: projected, ldz: projectionWidth, rows: rows,
                                weight: mamba.normWeight, output: mambaBuffers.gated, ldo: intermediate)
        mamba.outProjection.forward(mambaBuffers.gated, rows: rows, ldx: intermediate, into: buffers.residualMid, ldy: hiddenSize,
                                    alpha: spec.residualMultiplier, beta: 1, scratch: workspace.adapterScratch)
    }
}
