import CBLAS
import Foundation

/// Backward kernels of the Mamba2 mixer, one per forward kernel in Mamba2.swift, with the same shapes. Training
/// sequences start from a zero state and their final state is not used, so the scan's backward starts from dS = 0.
/// Gradients of the mixer's own parameters (conv taps and bias, dt bias, A_log, D, norm weight) accumulate (`+=`)
/// into the optional buffers (full fine-tuning); LoRA leaves them nil and trains the in/out projections, whose
/// `Linear.backward` handles them.
enum Mamba2BackwardKernels {
    /// Floats of scratch `scanBackward` needs for a sequence of `length` rows.
    static func scanScratchCount(_ shape: MambaShape, length: Int) -> Int {
        let chunk = shape.chunkSize
        let chunks = max(1, (length + chunk - 1) / chunk)
        return (chunks + 1) * shape.ssmStateCount + 4 * chunk * chunk + 4 * chunk * shape.stateSize + chunk * shape.heads + chunk
    }

    /// Backward of `gatedNorm`: given `dOutput` (rows, I), writes `dY` and `dZ` (rows, I each, strides `lddy`/`lddz`).
    /// With g = y ⊙ silu(z), r = 1/rms(g) per group and h = w ⊙ dOutput: dg = r·h − g·r³·mean(h ⊙ g),
    /// dy = dg ⊙ silu(z), dz = dg ⊙ y ⊙ silu'(z).
    static func gatedNorm(_ shape: MambaShape, y: UnsafePointer<Float>, ldy: Int, z: UnsafePointer<Float>, ldz: Int, rows: Int,
                          weight: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, ldd: Int,
                          dY: UnsafeMutablePointer<Float>, lddy: Int, dZ: UnsafeMutablePointer<Float>, lddz: Int,
                          weightGradient: UnsafeMutablePointer<Float>? = nil) {
        let intermediate = shape.intermediate
        let groupSize = intermediate / shape.groups
        for row in 0..<rows {
            let yRow = y + row * ldy, zRow = z + row * ldz, gradient = dOutput + row * ldd
            let dyRow = dY + row * lddy, dzRow = dZ + row * lddz
            for group in 0..<shape.groups {
                let start = group * groupSize
                var sumOfSquares = 0.0, dot = 0.0
                for index in start..<(start + groupSize) {
                    let gated = Double(yRow[index] * ActivationKernels.silu(zRow[index]))
                    sumOfSquares += gated * gated
                    dot += Double(weight[index] * gradient[index]) * gated
                }
                let inverse = 1.0 / (sumOfSquares / Double(groupSize) + Double(shape.normEpsilon)).squareRoot()
                let correction = Float(inverse * inverse * inverse * dot / Double(groupSize))
                let inverseFloat = Float(inverse)
                for index in start..<(start + groupSize) {
                    let gate = ActivationKernels.silu(zRow[index])
                    let gated = yRow[index] * gate
                    let dGated = inverseFloat * weight[index] * gradient[index] - gated * correction
                    dyRow[index] = dGated * gate
                    dzRow[index] = dGated * yRow[index] * ActivationKernels.derivative(.silu, zRow[index])
                    if let weightGradient { weightGradient[index] += gradient[index] * gated * inverseFloat }
                }
            }
        }
    }

    /// Backward of `timeSteps`: `dRaw[t, h] = dDelta[t, h] · softplus'(raw + bias)` inside the clamp range, 0 where
    /// the clamp was active. `dRaw` (length, NH) stride `lddr`.
    static func timeSteps(_ shape: MambaShape, raw: UnsafePointer<Float>, ldr: Int, length: Int, bias: UnsafePointer<Float>,
                          dDelta: UnsafePointer<Float>, dRaw: UnsafeMutablePointer<Float>, lddr: Int,
                          biasGradient: UnsafeMutablePointer<Float>? = nil) {
        let heads = shape.heads
        for time in 0..<length {
            let input = raw + time * ldr
            let gradient = dDelta + time * heads
            let output = dRaw + time * lddr
            for head in 0..<heads {
                let value = input[head] + bias[head]
                let softplus = value > 20 ? value : log1p(exp(value))
                let clamped = softplus < shape.timeStepMin || softplus > shape.timeStepMax
                output[head] = clamped ? 0 : gradient[head] * (value > 20 ? 1 : 1 / (1 + exp(-value)))
                biasGradient?[head] += output[head]
            }
        }
    }

    /// Backward of `convolve` (+ SiLU) for a sequence starting from zero history: writes `dInput` (length, convDim)
    /// stride `lddi`. `preActivation` is scratch of length·convDim floats (the conv output is recomputed), `taps` of
    /// K·convDim. dpre = dOutput ⊙ silu'(pre); dX[τ, c] = Σ_k w[c, k] · dpre[τ + (K−1) − k, c].
    static func convolve(_ shape: MambaShape, input: UnsafePointer<Float>, ldi: Int, length: Int, weight: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>?, dOutput: UnsafePointer<Float>, lddo: Int, preActivation: UnsafeMutablePointer<Float>,
                         taps: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>, lddi: Int,
                         weightGradient: UnsafeMutablePointer<Float>? = nil, biasGradient: UnsafeMutablePointer<Float>? = nil) {
        let channels = shape.convDim, kernel = shape.convKernel
        Mamba2Kernels.convolve(shape, input: input, ldi: ldi, length: length, history: nil, weight: weight, bias: bias, taps: taps,
                               output: preActivation, ldo: channels, activate: false)
        for time in 0..<length {
            let pre = preActivation + time * channels
            let gradient = dOutput + time * lddo
            for channel in 0..<channels { pre[channel] = gradient[channel] * ActivationKernels.derivative(.silu, pre[channel]) }
        }
        // dw[c, k] += Σ_t dpre[t, c] · X[t − (K−1) + k, c];  db[c] += Σ_t dpre[t, c].
        if let weightGradient {
            for time in 0..<length {
                let dPre = preActivation + time * channels
                for tap in 0..<kernel {
                    let source = time - (kernel - 1) + tap
                    guard source >= 0 else { continue }
                    let row = input + source * ldi
                    for channel in 0..<channels { weightGradient[channel * kernel + tap] += dPre[channel] * row[channel] }
                }
            }
        }
        if let biasGradient {
            for time in 0..<length {
                let dPre = preActivation + time * channels
                for channel in 0..<channels { biasGradient[channel] += dPre[channel] }
            }
        }
        for time in 0..<length {
            let output = dInput + time * lddi
            output.update(repeating: 0, count: channels)
            for tap in 0..<kernel {
                let target = time + (kernel - 1) - tap
                guard target < length else { continue }
                let tapRow = taps + tap * channels
                let dPre = preActivation + target * channels
                for channel in 0..<channels { output[channel] += tapRow[channel] * dPre[channel] }
            }
        }
    }

    /// Backward of `scan` over one sequence that started from a zero state. Adds into `dConvolved` (length, convDim)
    /// stride `lddc` (the x, B and C columns) and `dDelta` (length, NH).
    ///
    /// Chunk-start states are recomputed forward first; then chunks are visited last to first carrying dS, the
    /// gradient of the state entering the later chunk. Per chunk and head, with the forward's notation
    /// (acs, M = gram ⊙ L ⊙ dt, Ĉ = diag(exp(acs))·C, B̂ = diag(exp(acs_last − acs)·dt)·B, E = exp(acs_last)):
    ///
    ///     dx  += D·dy + Mᵀ·dy + B̂·dSᵀ                 dM = dy·xᵀ,  dgram += dM ⊙ L ⊙ dt
    ///     dĈ   = dy·S_start,  dC += diag(exp(acs))·dĈ   dS_start = dyᵀ·Ĉ + E·dS
    ///     dB̂   = x·dS,        dB += diag(wB)·dB̂         dC += dgram·B,  dB += dgramᵀ·C   (per group)
    ///
    /// and the decay terms reach dt through d acs (reverse cumulative sum) times A, plus dt's direct appearances in M
    /// and B̂.
    static func scan(_ shape: MambaShape, convolved: UnsafePointer<Float>, ldc: Int, delta: UnsafePointer<Float>, length: Int,
                     logDecay: UnsafePointer<Float>, skip: UnsafePointer<Float>, dY: UnsafePointer<Float>, lddy: Int,
                     dConvolved: UnsafeMutablePointer<Float>, lddc: Int, dDelta: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                     skipGradient: UnsafeMutablePointer<Float>? = nil, logDecayGradient: UnsafeMutablePointer<Float>? = nil) {
        let heads = shape.heads, headDim = shape.headDim, stateSize = shape.stateSize
        let intermediate = shape.intermediate, groupWidth = shape.groupStateWidth
        let chunkSize = shape.chunkSize, stateCount = shape.ssmStateCount, headStateCount = headDim * stateSize
        let chunks = (length + chunkSize - 1) / chunkSize
        guard chunks > 0 else { return }
        let startStates = scratch                                   // (chunks, NH, P, N): state entering each chunk
        let dState = startStates + chunks * stateCount              // (NH, P, N): gradient of the state leaving the chunk
        let gram = dState + stateCount                              // (Q, Q)
        let mixing = gram + chunkSize * chunkSize                   // (Q, Q)
        let dMixing = mixing + chunkSize * chunkSize                // (Q, Q)
        let dGram = dMixing + chunkSize * chunkSize                 // (Q, Q)
        let scaledC = dGram + chunkSize * chunkSize                 // (Q, N)
        let dScaledC = scaledC + chunkSize * stateSize              // (Q, N)
        let weightedB = dScaledC + chunkSize * stateSize            // (Q, N)
        let dWeightedB = weightedB + chunkSize * stateSize          // (Q, N)
        let cumulative = dWeightedB + chunkSize * stateSize         // (Q, NH)
        let dCumulative = cumulative + chunkSize * heads            // (Q)

        // Chunk-start states: the forward scan, keeping each chunk's entering state.
        startStates.update(repeating: 0, count: stateCount)
        func fillCumulative(_ chunkStart: Int, _ rows: Int) {
            for head in 0..<heads {
                let decay = -exp(logDecay[head])
                var sum: Float = 0
                for row in 0..<rows {
                    sum += delta[(chunkStart + row) * heads + head] * decay
                    cumulative[row * heads + head] = sum
                }
            }
        }
        for chunk in 0..<(chunks - 1) {
            let chunkStart = chunk * chunkSize
            let rows = min(chunkSize, length - chunkStart)
            fillCumulative(chunkStart, rows)
            let next = startStates + (chunk + 1) * stateCount
            next.update(from: startStates + chunk * stateCount, count: stateCount)
            for head in 0..<heads {
                let group = head / shape.headsPerGroup
                let groupB = convolved + chunkStart * ldc + intermediate + group * stateSize
                let last = cumulative[(rows - 1) * heads + head]
                for l in 0..<rows {
                    let weight = exp(last - cumulative[l * heads + head]) * delta[(chunkStart + l) * heads + head]
                    for n in 0..<stateSize { weightedB[l * stateSize + n] = groupB[l * ldc + n] * weight }
                }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(headDim), Int32(stateSize), Int32(rows),
                            1, convolved + chunkStart * ldc + head * headDim, Int32(ldc), weightedB, Int32(stateSize),
                            exp(last), next + head * headStateCount, Int32(stateSize))
            }
        }

        dState.update(repeating: 0, count: stateCount)
        for chunk in stride(from: chunks - 1, through: 0, by: -1) {
            let chunkStart = chunk * chunkSize
            let rows = min(chunkSize, length - chunkStart)
            fillCumulative(chunkStart, rows)
            let chunkRows = convolved + chunkStart * ldc
            let dChunkRows = dConvolved + chunkStart * lddc
            let chunkDelta = delta + chunkStart * heads
            let dChunkDelta = dDelta + chunkStart * heads
            let chunkState = startStates + chunk * stateCount
            for group in 0..<shape.groups {
                let groupB = chunkRows + intermediate + group * stateSize
                let groupC = chunkRows + intermediate + groupWidth + group * stateSize
                let dGroupB = dChunkRows + intermediate + group * stateSize
                let dGroupC = dChunkRows + intermediate + groupWidth + group * stateSize
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(rows), Int32(stateSize),
                            1, groupC, Int32(ldc), groupB, Int32(ldc), 0, gram, Int32(rows))
                dGram.update(repeating: 0, count: rows * rows)
                for head in (group * shape.headsPerGroup)..<((group + 1) * shape.headsPerGroup) {
                    let x = chunkRows + head * headDim
                    let dx = dChunkRows + head * headDim
                    let dy = dY + chunkStart * lddy + head * headDim
                    let headState = chunkState + head * headStateCount
                    let dHeadState = dState + head * headStateCount
                    let last = cumulative[(rows - 1) * heads + head]
                    let decay = -exp(logDecay[head])
                    for l in 0..<rows {
                        let acsL = cumulative[l * heads + head]
                        for s in 0..<rows {
                            mixing[l * rows + s] = s <= l ? gram[l * rows + s] * exp(acsL - cumulative[s * heads + head]) * chunkDelta[s * heads + head] : 0
                        }
                        let scale = exp(acsL)
                        let weight = exp(last - acsL) * chunkDelta[l * heads + head]
                        for n in 0..<stateSize {
                            scaledC[l * stateSize + n] = groupC[l * ldc + n] * scale
                            weightedB[l * stateSize + n] = groupB[l * ldc + n] * weight
                        }
                        dCumulative[l] = 0
                    }
                    // Skip and intra-chunk terms: dx += D·dy + Mᵀ·dy; dM = dy·xᵀ.
                    let skipValue = skip[head]
                    for l in 0..<rows {
                        for p in 0..<headDim { dx[l * lddc + p] += skipValue * dy[l * lddy + p] }
                    }
                    if let skipGradient {
                        var dot: Float = 0
                        for l in 0..<rows {
                            for p in 0..<headDim { dot += dy[l * lddy + p] * x[l * ldc + p] }
                        }
                        skipGradient[head] += dot
                    }
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(headDim), Int32(rows),
                                1, mixing, Int32(rows), dy, Int32(lddy), 1, dx, Int32(lddc))
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(rows), Int32(headDim),
                                1, dy, Int32(lddy), x, Int32(ldc), 0, dMixing, Int32(rows))
                    for l in 0..<rows {
                        let acsL = cumulative[l * heads + head]
                        for s in 0...l {
                            let decayLS = exp(acsL - cumulative[s * heads + head])
                            let dtS = chunkDelta[s * heads + head]
                            let gradient = dMixing[l * rows + s]
                            dGram[l * rows + s] += gradient * decayLS * dtS
                            dChunkDelta[s * heads + head] += gradient * gram[l * rows + s] * decayLS
                            let product = gradient * mixing[l * rows + s]
                            dCumulative[l] += product
                            dCumulative[s] -= product
                        }
                    }
                    // Inter-chunk output: dĈ = dy·S_start; dC += diag(exp(acs))·dĈ; d acs_l += dĈ_l·Ĉ_l.
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(stateSize), Int32(headDim),
                                1, dy, Int32(lddy), headState, Int32(stateSize), 0, dScaledC, Int32(stateSize))
                    for l in 0..<rows {
                        let scale = exp(cumulative[l * heads + head])
                        var dot: Float = 0
                        for n in 0..<stateSize {
                            dGroupC[l * lddc + n] += scale * dScaledC[l * stateSize + n]
                            dot += dScaledC[l * stateSize + n] * scaledC[l * stateSize + n]
                        }
                        dCumulative[l] += dot
                    }
                    // State update S_end = E·S_start + xᵀ·B̂ (dS is ∂L/∂S_end): dx += B̂·dSᵀ; dB̂ = x·dS.
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(headDim), Int32(stateSize),
                                1, weightedB, Int32(stateSize), dHeadState, Int32(stateSize), 1, dx, Int32(lddc))
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(stateSize), Int32(headDim),
                                1, x, Int32(ldc), dHeadState, Int32(stateSize), 0, dWeightedB, Int32(stateSize))
                    var endDot: Float = 0
                    for index in 0..<headStateCount { endDot += dHeadState[index] * headState[index] }
                    dCumulative[rows - 1] += exp(last) * endDot
                    for l in 0..<rows {
                        let acsL = cumulative[l * heads + head]
                        let decayToEnd = exp(last - acsL)
                        let weight = decayToEnd * chunkDelta[l * heads + head]
                        var dot: Float = 0
                        for n in 0..<stateSize {
                            dGroupB[l * lddc + n] += weight * dWeightedB[l * stateSize + n]
                            dot += dWeightedB[l * stateSize + n] * groupB[l * ldc + n]
                        }
                        dChunkDelta[l * heads + head] += dot * decayToEnd
                        dCumulative[rows - 1] += dot * weight
                        dCumulative[l] -= dot * weight
                    }
                    // dS_start = dyᵀ·Ĉ + E·dS (becomes the previous chunk's dS).
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(headDim), Int32(stateSize), Int32(rows),
                                1, dy, Int32(lddy), scaledC, Int32(stateSize), exp(last), dHeadState, Int32(stateSize))
                    // acs_l = Σ_{j≤l} dt_j·A: d dt_j += A · Σ_{l≥j} d acs_l, dA += Σ_j dt_j · Σ_{l≥j} d acs_l,
                    // and A = −exp(A_log) gives dA_log = dA · A.
                    var running: Float = 0
                    var decayGradient: Float = 0
                    for l in stride(from: rows - 1, through: 0, by: -1) {
                        running += dCumulative[l]
                        dChunkDelta[l * heads + head] += running * decay
                        decayGradient += running * chunkDelta[l * heads + head]
                    }
                    logDecayGradient?[head] += decayGradient * decay
                }
                // gram = C·Bᵀ: dC += dgram·B, dB += dgramᵀ·C.
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(stateSize), Int32(rows),
                            1, dGram, Int32(rows), groupB, Int32(ldc), 1, dGroupC, Int32(lddc))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(stateSize), Int32(rows),
                            1, dGram, Int32(rows), groupC, Int32(ldc), 1, dGroupB, Int32(lddc))
            }
        }
    }
}
