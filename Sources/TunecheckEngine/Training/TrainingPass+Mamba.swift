import Foundation

extension TrainingPass {
    /// Float counts of the Mamba and expert gradient buffers, in the order `reserve` carves them (see the stored
    /// properties); zeros for a model without such layers.
    func mambaAndExpertSizes(rows: Int, maxSegment: Int) -> [Int] {
        let spec = model.spec
        var sizes = [Int](repeating: 0, count: 9)
        if let shape = spec.mamba {
            sizes[0] = rows * shape.intermediate
            sizes[1] = rows * shape.intermediate
            sizes[2] = rows * shape.projectionWidth
            sizes[3] = rows * shape.convDim
            sizes[4] = rows * shape.heads
            sizes[5] = maxSegment * shape.convDim
            sizes[6] = shape.convKernel * shape.convDim
            sizes[7] = Mamba2BackwardKernels.scanScratchCount(shape, length: maxSegment)
        }
        if let experts = spec.experts { sizes[8] = ExpertKernels.scratchCount(experts, hidden: spec.hiddenSize, rows: rows) }
        return sizes
    }

    /// Backward of one Mamba2 mixer (the forward is `DecoderModel.mambaMixer`): from dHidden (∂L/∂residualMid) into
    /// dNormed (∂L/∂normedAttention, zeroed by the caller), with gradients of in_proj and out_proj (LoRA or full) and,
    /// in full fine-tuning, of the mixer's own parameters.
    /// out_proj ← gated norm ← (scan ← dt, conv + SiLU) per segment ← in_proj.
    func mambaBackward(_ mamba: MambaWeights, buffers: Workspace.LayerBuffers, gradients: ParameterGradients) {
        let spec = model.spec
        guard let shape = spec.mamba, let recorded = buffers.mamba else { preconditionFailure("Mamba backward without Mamba buffers") }
        let rows = tokens.count
        let hiddenSize = spec.hiddenSize
        let intermediate = shape.intermediate, projectionWidth = shape.projectionWidth, convDim = shape.convDim, heads = shape.heads
        dMambaGated.update(repeating: 0, count: rows * intermediate)
        mamba.outProjection.backward(x: recorded.gated, ldx: intermediate, dy: dHidden, lddy: hiddenSize, rows: rows, alpha: spec.residualMultiplier,
                                     dx: dMambaGated, lddx: intermediate, gradients: gradients.linears[mamba.outProjection.name],
                                     scratch: adapterScratch)
        Mamba2BackwardKernels.gatedNorm(shape, y: recorded.scanned, ldy: intermediate, z: recorded.projected, ldz: projectionWidth, rows: rows,
                                        weight: mamba.normWeight, dOutput: dMambaGated, ldd: intermediate,
                                        dY: dMambaScanned, lddy: intermediate, dZ: dMambaProjected, lddz: projectionWidth,
                                        weightGradient: gradients.gradient(of: mamba.normWeight))
        dMambaConvolved.update(repeating: 0, count: rows * convDim)
        dMambaDelta.update(repeating: 0, count: rows * heads)
        for segment in segments where segment.length > 0 {
            let start = segment.rowStart, length = segment.length
            withSingleThreadedBLAS {
                Mamba2BackwardKernels.scan(shape, convolved: recorded.convolved + start * convDim, ldc: convDim, delta: recorded.delta + start * heads,
                                           length: length, logDecay: mamba.logDecay, skip: mamba.skip,
                                           dY: dMambaScanned + start * intermediate, lddy: intermediate,
                                           dConvolved: dMambaConvolved + start * convDim, lddc: convDim, dDelta: dMambaDelta + start * heads,
                                           scratch: mambaScanScratch, skipGradient: gradients.gradient(of: mamba.skip),
                                           logDecayGradient: gradients.gradient(of: mamba.logDecay))
            }
            let row = recorded.projected + start * projectionWidth
            let dRow = dMambaProjected + start * projectionWidth
            Mamba2BackwardKernels.timeSteps(shape, raw: row + intermediate + convDim, ldr: projectionWidth, length: length, bias: mamba.timeStepBias,
                                            dDelta: dMambaDelta + start * heads, dRaw: dRow + intermediate + convDim, lddr: projectionWidth,
                                            biasGradient: gradients.gradient(of: mamba.timeStepBias))
            Mamba2BackwardKernels.convolve(shape, input: row + intermediate, ldi: projectionWidth, length: length, weight: mamba.convWeight,
                                           bias: mamba.convBias, dOutput: dMambaConvolved + start * convDim, lddo: convDim,
                                           preActivation: mambaConvScratch, taps: mambaTaps, dInput: dRow + intermediate, lddi: projectionWidth,
                                           weightGradient: gradients.gradient(of: mamba.convWeight), biasGradient: gradients.gradient(of: mamba.convBias))
        }
        mamba.inProjection.backward(x: buffers.normedAttention, ldx: hiddenSize, dy: dMambaProjected, lddy: projectionWidth, rows: rows,
                                    dx: dNormed, lddx: hiddenSize, gradients: gradients.linears[mamba.inProjection.name], scratch: adapterScratch)
    }
}
