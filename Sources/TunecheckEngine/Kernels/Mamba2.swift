import CBLAS
import Foundation

/// Forward kernels of the Mamba2 mixer (docs/granitemoehybrid.md §5, names as in `MambaShape`): the causal depthwise
/// conv over xBC, the time steps, the chunked selective scan and the gated RMSNorm. Each works on one sequence's rows
/// (the scan and the conv carry state along the sequence); the in/out projections are ordinary `Linear` GEMMs over
/// all packed rows. Backward kernels are in Mamba2Backward.swift.
enum Mamba2Kernels {
    /// Floats of scratch `scan` needs: cumulative decays (Q, NH), the Gram and mixing matrices (Q, Q) each, and
    /// decay-weighted C and B (Q, N) each.
    static func scanScratchCount(_ shape: MambaShape) -> Int {
        let chunk = shape.chunkSize
        return chunk * shape.heads + 2 * chunk * chunk + 2 * chunk * shape.stateSize
    }

    /// Causal depthwise conv + SiLU over one sequence.
    ///
    /// `input` (length, convDim) stride `ldi`: pre-conv xBC. `history` (K−1, convDim), oldest first: the pre-conv rows
    /// before this sequence's first row (nil = zeros, a sequence start). `taps` is scratch of K·convDim floats.
    /// `output` (length, convDim) stride `ldo`: `silu(bias[c] + Σ_k w[c, k] · X[t − (K−1) + k, c])`.
    static func convolve(_ shape: MambaShape, input: UnsafePointer<Float>, ldi: Int, length: Int, history: UnsafePointer<Float>?,
                         weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, taps: UnsafeMutablePointer<Float>,
                         output: UnsafeMutablePointer<Float>, ldo: Int, activate: Bool = true) {
        let channels = shape.convDim
        let kernel = shape.convKernel
        // (K, convDim) copy of the (convDim, K) taps, so the inner loop runs over contiguous channels.
        for channel in 0..<channels {
            for tap in 0..<kernel { taps[tap * channels + channel] = weight[channel * kernel + tap] }
        }
        for time in 0..<length {
            let out = output + time * ldo
            if let bias {
                out.update(from: bias, count: channels)
            } else {
                out.update(repeating: 0, count: channels)
            }
            for tap in 0..<kernel {
                let source = time - (kernel - 1) + tap
                let row: UnsafePointer<Float>
                if source >= 0 {
                    row = input + source * ldi
                } else if let history {
                    row = history + (kernel - 1 + source) * channels
                } else {
                    continue
                }
                let tapRow = taps + tap * channels
                for channel in 0..<channels { out[channel] += tapRow[channel] * row[channel] }
            }
            if activate {
                for channel in 0..<channels { out[channel] = ActivationKernels.silu(out[channel]) }
            }
        }
    }

    /// After `length` more pre-conv rows, the last K−1 of `[history; input]` become the history (in place).
    static func advanceHistory(_ shape: MambaShape, history: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, ldi: Int, length: Int) {
        let channels = shape.convDim
        let keep = shape.convKernel - 1
        guard keep > 0, length > 0 else { return }
        if length < keep {
            // Shift the surviving rows up (overlapping, so front to back), then append the new ones.
            for row in 0..<(keep - length) {
                (history + row * channels).update(from: history + (row + length) * channels, count: channels)
            }
        }
        for row in max(0, keep - length)..<keep {
            let source = length - keep + row
            (history + row * channels).update(from: input + source * ldi, count: channels)
        }
    }

    /// `delta[t, h] = clamp(softplus(raw[t, h] + bias[h]), min, max)`, torch's softplus (identity above 20).
    /// `raw` (length, NH) stride `ldr`; `delta` (length, NH) dense.
    static func timeSteps(_ shape: MambaShape, raw: UnsafePointer<Float>, ldr: Int, length: Int, bias: UnsafePointer<Float>,
                          into delta: UnsafeMutablePointer<Float>) {
        let heads = shape.heads
        for time in 0..<length {
            let input = raw + time * ldr
            let output = delta + time * heads
            for head in 0..<heads {
                let value = input[head] + bias[head]
                let softplus = value > 20 ? value : log1p(exp(value))
                output[head] = min(max(softplus, shape.timeStepMin), shape.timeStepMax)
            }
        }
    }

    /// The selective scan of one sequence, chunk by chunk, as matrix products (the SSD form transformers'
    /// `torch_forward` uses): per chunk of q ≤ Q rows, head h of group g,
    ///
    ///     acs_l  = Σ_{j≤l} dt_j·A_h                                   (A_h = −exp(A_log_h))
    ///     M[l,s] = (C_l·B_s) · exp(acs_l − acs_s) · dt_s   (s ≤ l)       intra-chunk mixing, (q, q)
    ///     y_h    = M · x_h + diag(exp(acs)) · C · S_hᵀ + D_h · x_h       (q, P)
    ///     S_h   ← exp(acs_{q−1}) · S_h + x_hᵀ · diag(exp(acs_{q−1} − acs) · dt) · B      (P, N)
    ///
    /// which equals the recurrence `S_t = exp(dt_t·A)·S_{t−1} + dt_t·x_t⊗B_t`, `y_t = S_t·C_t + D·x_t`.
    ///
    /// Shapes: `convolved` (length, convDim) stride `ldc` holds `[x (I) | B (G·N) | C (G·N)]` after the conv and SiLU;
    /// `delta` (length, NH); `state` (NH, P, N) is the state before the first row on entry and after the last on
    /// exit; `y` (length, I) stride `ldy`. `scratch` holds `scanScratchCount` floats.
    static func scan(_ shape: MambaShape, convolved: UnsafePointer<Float>, ldc: Int, delta: UnsafePointer<Float>, length: Int,
                     logDecay: UnsafePointer<Float>, skip: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>,
                     y: UnsafeMutablePointer<Float>, ldy: Int, scratch: UnsafeMutablePointer<Float>) {
        let heads = shape.heads, headDim = shape.headDim, stateSize = shape.stateSize
        let intermediate = shape.intermediate, groupWidth = shape.groupStateWidth
        let chunkSize = shape.chunkSize
        let cumulative = scratch                                  // (Q, NH)
        let gram = cumulative + chunkSize * heads                 // (Q, Q)
        let mixing = gram + chunkSize * chunkSize                 // (Q, Q)
        let scaledC = mixing + chunkSize * chunkSize              // (Q, N)
        let weightedB = scaledC + chunkSize * stateSize           // (Q, N)

        var chunkStart = 0
        while chunkStart < length {
            let rows = min(chunkSize, length - chunkStart)
            let chunkDelta = delta + chunkStart * heads
            for head in 0..<heads {
                let decay = -exp(logDecay[head])
                var sum: Float = 0
                for row in 0..<rows {
                    sum += chunkDelta[row * heads + head] * decay
                    cumulative[row * heads + head] = sum
                }
            }
            let chunkRows = convolved + chunkStart * ldc
            for group in 0..<shape.groups {
                let groupB = chunkRows + intermediate + group * stateSize
                let groupC = chunkRows + intermediate + groupWidth + group * stateSize
                // gram (q, q) = C · Bᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(rows), Int32(stateSize),
                            1, groupC, Int32(ldc), groupB, Int32(ldc), 0, gram, Int32(rows))
                for head in (group * shape.headsPerGroup)..<((group + 1) * shape.headsPerGroup) {
                    let x = chunkRows + head * headDim
                    let output = y + chunkStart * ldy + head * headDim
                    let headState = state + head * headDim * stateSize
                    for l in 0..<rows {
                        let acsL = cumulative[l * heads + head]
                        let mixingRow = mixing + l * rows
                        let gramRow = gram + l * rows
                        for s in 0...l {
                            mixingRow[s] = gramRow[s] * exp(acsL - cumulative[s * heads + head]) * chunkDelta[s * heads + head]
                        }
                        for s in (l + 1)..<rows { mixingRow[s] = 0 }
                        let scale = exp(acsL)
                        let sourceC = groupC + l * ldc
                        let targetC = scaledC + l * stateSize
                        for n in 0..<stateSize { targetC[n] = sourceC[n] * scale }
                        let last = cumulative[(rows - 1) * heads + head]
                        let weight = exp(last - acsL) * chunkDelta[l * heads + head]
                        let sourceB = groupB + l * ldc
                        let targetB = weightedB + l * stateSize
                        for n in 0..<stateSize { targetB[n] = sourceB[n] * weight }
                    }
                    // y_h = M · x_h + Ĉ · S_hᵀ
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(headDim), Int32(rows),
                                1, mixing, Int32(rows), x, Int32(ldc), 0, output, Int32(ldy))
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(headDim), Int32(stateSize),
                                1, scaledC, Int32(stateSize), headState, Int32(stateSize), 1, output, Int32(ldy))
                    let skipValue = skip[head]
                    for l in 0..<rows {
                        let outputRow = output + l * ldy
                        let xRow = x + l * ldc
                        for p in 0..<headDim { outputRow[p] += skipValue * xRow[p] }
                    }
                    // S_h = exp(acs_last) · S_h + x_hᵀ · B̂
                    let chunkDecay = exp(cumulative[(rows - 1) * heads + head])
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(headDim), Int32(stateSize), Int32(rows),
                                1, x, Int32(ldc), weightedB, Int32(stateSize), chunkDecay, headState, Int32(stateSize))
                }
            }
            chunkStart += rows
        }
    }

    /// One token of the recurrence, for cached decoding (the scan with q = 1, without the GEMM calls).
    /// `convolved` (convDim), `delta` (NH), `state` (NH, P, N) in/out, `y` (I).
    static func step(_ shape: MambaShape, convolved: UnsafePointer<Float>, delta: UnsafePointer<Float>, logDecay: UnsafePointer<Float>,
                     skip: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let headDim = shape.headDim, stateSize = shape.stateSize
        let intermediate = shape.intermediate
        for head in 0..<shape.heads {
            let group = head / shape.headsPerGroup
            let b = convolved + intermediate + group * stateSize
            let c = convolved + intermediate + shape.groupStateWidth + group * stateSize
            let x = convolved + head * headDim
            let dt = delta[head]
            let decay = exp(dt * -exp(logDecay[head]))
            let headState = state + head * headDim * stateSize
            for p in 0..<headDim {
                let row = headState + p * stateSize
                let input = dt * x[p]
                var sum: Float = 0
                for n in 0..<stateSize {
                    let value = decay * row[n] + input * b[n]
                    row[n] = value
                    sum += value * c[n]
                }
                y[head * headDim + p] = sum + skip[head] * x[p]
            }
        }
    }

    /// Gated RMSNorm (mamba_ssm's `norm_before_gate=False`): `g = y ⊙ silu(z)`, normalised over each group of I/G
    /// channels, times `weight`. `y` (rows, I) stride `ldy`, `z` (rows, I) stride `ldz`, `output` (rows, I) stride `ldo`.
    static func gatedNorm(_ shape: MambaShape, y: UnsafePointer<Float>, ldy: Int, z: UnsafePointer<Float>, ldz: Int, rows: Int,
                          weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, ldo: Int) {
        let intermediate = shape.intermediate
        let groupSize = intermediate / shape.groups
        for row in 0..<rows {
            let yRow = y + row * ldy, zRow = z + row * ldz, out = output + row * ldo
            for index in 0..<intermediate { out[index] = yRow[index] * ActivationKernels.silu(zRow[index]) }
            for group in 0..<shape.groups {
                let start = group * groupSize
                var sumOfSquares: Double = 0
                for index in start..<(start + groupSize) { sumOfSquares += Double(out[index]) * Double(out[index]) }
                let inverse = Float(1.0 / (sumOfSquares / Double(groupSize) + Double(shape.normEpsilon)).squareRoot())
                for index in start..<(start + groupSize) { out[index] = weight[index] * (out[index] * inverse) }
            }
        }
    }
}
