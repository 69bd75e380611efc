import CBLAS
import Foundation

/// Top-k routed experts (Granite 4.0-H's `block_sparse_moe`, docs/granitemoehybrid.md §6): router logits `W_r·u`,
/// the k largest, softmax over those k only, and `Σ_j w_j · down_j(silu(gate_j(u)) ⊙ up_j(u))`. Rows routed to the same
/// expert are gathered so each expert is two GEMMs over its rows, not a loop over tokens (three with mlx_lm's separate
/// gate and up). The experts' weights are read in their stored form, float or mlx-quantized (`ExpertWeights` views into
/// the mapped tensors), through `WeightProducts` like any linear layer.
enum ExpertKernels {
    /// Scratch floats for `rows` rows.
    static func scratchCount(_ shape: ExpertShape, hidden: Int, rows: Int) -> Int {
        rows * (shape.count + 3 * shape.topK + 2 * hidden + 3 * shape.width + 2)
    }

    /// Carves the scratch into named buffers.
    struct Scratch {
        /// (rows, E)
        var logits: UnsafeMutablePointer<Float>
        /// (rows, k): the selected experts (as floats) and their weights.
        var selected: UnsafeMutablePointer<Float>
        var routeWeights: UnsafeMutablePointer<Float>
        /// (rows, H): the rows routed to one expert, gathered.
        var gathered: UnsafeMutablePointer<Float>
        /// (rows, 2F): `[gate | up]` of the gathered rows.
        var gateUp: UnsafeMutablePointer<Float>
        /// (rows, F): `silu(gate) ⊙ up`.
        var activated: UnsafeMutablePointer<Float>
        /// (rows, H): one expert's outputs.
        var expertOutput: UnsafeMutablePointer<Float>
        /// (rows): which packed rows the gathered rows came from, and their route weights.
        var rowIndex: UnsafeMutablePointer<Float>
        var rowWeight: UnsafeMutablePointer<Float>
        /// (rows, k): backward only, ∂L/∂(route weight).
        var dRouteWeights: UnsafeMutablePointer<Float>

        init(_ base: UnsafeMutablePointer<Float>, shape: ExpertShape, hidden: Int, rows: Int) {
            logits = base
            selected = logits + rows * shape.count
            routeWeights = selected + rows * shape.topK
            gathered = routeWeights + rows * shape.topK
            gateUp = gathered + rows * hidden
            activated = gateUp + rows * 2 * shape.width
            expertOutput = activated + rows * shape.width
            rowIndex = expertOutput + rows * hidden
            rowWeight = rowIndex + rows
            dRouteWeights = rowWeight + rows
        }
    }

    /// Router logits, the top-k selection and its softmax weights, into `scratch.logits/selected/routeWeights`.
    /// `input` (rows, H) stride `ldi`.
    static func route(_ shape: ExpertShape, router: WeightMatrix, hidden: Int, input: UnsafePointer<Float>, ldi: Int, rows: Int,
                      scratch: Scratch) {
        let experts = shape.count, topK = shape.topK
        if let values = router.float32 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(experts), Int32(hidden),
                        1, input, Int32(ldi), values, Int32(hidden), 0, scratch.logits, Int32(experts))
        } else {
            WeightProducts.multiplyTransposed(router, x: input, rows: rows, ldx: ldi, into: scratch.logits, ldy: experts, alpha: 1, beta: 0)
        }
        for row in 0..<rows {
            let logits = scratch.logits + row * experts
            let selected = scratch.selected + row * topK
            let weights = scratch.routeWeights + row * topK
            // k passes of argmax (k is 1–8): the largest, then the largest not yet taken; ties go to the lower index.
            for slot in 0..<topK {
                var best = -1
                for expert in 0..<experts {
                    var taken = false
                    for previous in 0..<slot where Int(selected[previous]) == expert { taken = true }
                    if taken { continue }
                    if best < 0 || logits[expert] > logits[best] { best = expert }
                }
                selected[slot] = Float(best)
                weights[slot] = logits[best]
            }
            let maximum = weights[0]
            var sum: Float = 0
            for slot in 0..<topK {
                weights[slot] = exp(weights[slot] - maximum)
                sum += weights[slot]
            }
            for slot in 0..<topK { weights[slot] /= sum }
        }
    }

    /// Gathers the rows routed to `expert` into `scratch.gathered` (and their indices and weights); returns how many.
    static func gather(_ shape: ExpertShape, expert: Int, hidden: Int, input: UnsafePointer<Float>, ldi: Int, rows: Int, scratch: Scratch) -> Int {
        var count = 0
        for row in 0..<rows {
            for slot in 0..<shape.topK where Int(scratch.selected[row * shape.topK + slot]) == expert {
                (scratch.gathered + count * hidden).update(from: input + row * ldi, count: hidden)
                scratch.rowIndex[count] = Float(row)
                scratch.rowWeight[count] = scratch.routeWeights[row * shape.topK + slot]
                count += 1
            }
        }
        return count
    }

    /// One expert on its `count` gathered rows: `gateUp = gathered · W_inᵀ` (count, 2F), `activated = silu(gate) ⊙ up`
    /// (count, F), `expertOutput = activated · W_downᵀ` (count, H). Returns the expert's weight matrices, views into
    /// the stored tensors: W_in (2F, H) (or gate and up) and W_down (H, F) in their stored form, multiplied as every
    /// linear layer is (`WeightProducts`: panels widened or dequantized per thread for several rows, the 16-bit or
    /// packed-code GEMV for one row when decoding).
    static func runExpert(_ shape: ExpertShape, expert: Int, weights: ExpertWeights, hidden: Int, count: Int, scratch: Scratch)
        -> (projection: ExpertWeights.Projection, down: WeightMatrix) {
        let width = shape.width
        let projection = weights.projection(expert: expert)
        let downWeight = weights.down(expert: expert)
        projection.forward(x: scratch.gathered, rows: count, ldx: hidden, into: scratch.gateUp, width: width)
        ActivationKernels.gatedForward(.silu, gate: scratch.gateUp, up: scratch.gateUp + width, rows: count, dim: width, ld: 2 * width,
                                       into: scratch.activated, ldy: width)
        WeightProducts.multiplyTransposed(downWeight, x: scratch.activated, rows: count, ldx: width, into: scratch.expertOutput, ldy: hidden,
                                          alpha: 1, beta: 0)
        return (projection, downWeight)
    }

    /// `output[row] += alpha · Σ_j w_j · expert_j(input[row])`. `input` (rows, H) stride `ldi`; `output` (rows, H) stride `ldo`.
    static func forward(_ shape: ExpertShape, weights: ExpertWeights, hidden: Int, input: UnsafePointer<Float>, ldi: Int, rows: Int,
                        into output: UnsafeMutablePointer<Float>, ldo: Int, alpha: Float, scratch: Scratch) {
        route(shape, router: weights.router, hidden: hidden, input: input, ldi: ldi, rows: rows, scratch: scratch)
        for expert in 0..<shape.count {
            let count = gather(shape, expert: expert, hidden: hidden, input: input, ldi: ldi, rows: rows, scratch: scratch)
            guard count > 0 else { continue }
            _ = runExpert(shape, expert: expert, weights: weights, hidden: hidden, count: count, scratch: scratch)
            for index in 0..<count {
                let target = output + Int(scratch.rowIndex[index]) * ldo
                let source = scratch.expertOutput + index * hidden
                let scale = alpha * scratch.rowWeight[index]
                for column in 0..<hidden { target[column] += scale * source[column] }
            }
        }
    }

    /// Gradient buffers of the router (E, H) and the experts ((E, 2F, H), or (E, F, H) for each of mlx_lm's gate and
    /// up; (E, H, F)), for full fine-tuning (which trains float32 copies, so the experts' gradients are plain float32
    /// tensors of the same shapes).
    struct Gradients {
        var router: UnsafeMutablePointer<Float>?
        var gateUp: UnsafeMutablePointer<Float>?
        var gate: UnsafeMutablePointer<Float>?
        var up: UnsafeMutablePointer<Float>?
        var down: UnsafeMutablePointer<Float>?
    }

    /// Backward of `forward`: given `dOutput` (rows, H) stride `lddo` (∂L/∂output), adds ∂L/∂input into `dInput`
    /// (rows, H) stride `lddi`, and the router's and experts' gradients into `gradients` when given. Each expert is recomputed on
    /// its gathered rows; the route weights' gradients go back through the top-k softmax into the router logits,
    /// whose gradient is one GEMM with the router matrix. Top-k selection itself has no gradient.
    static func backward(_ shape: ExpertShape, weights: ExpertWeights, hidden: Int, input: UnsafePointer<Float>, ldi: Int, rows: Int,
                         dOutput: UnsafePointer<Float>, lddo: Int, alpha: Float, dInput: UnsafeMutablePointer<Float>, lddi: Int, scratch: Scratch,
                         gradients: Gradients = Gradients()) {
        let width = shape.width, topK = shape.topK
        route(shape, router: weights.router, hidden: hidden, input: input, ldi: ldi, rows: rows, scratch: scratch)
        for expert in 0..<shape.count {
            let count = gather(shape, expert: expert, hidden: hidden, input: input, ldi: ldi, rows: rows, scratch: scratch)
            guard count > 0 else { continue }
            let (projection, downWeight) = runExpert(shape, expert: expert, weights: weights, hidden: hidden, count: count, scratch: scratch)
            // ∂L/∂w for each (row, slot) routed here, then expertOutput becomes ∂L/∂(expert output) = alpha·w·dOutput.
            var index = 0
            for row in 0..<rows {
                for slot in 0..<topK where Int(scratch.selected[row * topK + slot]) == expert {
                    let gradient = dOutput + row * lddo
                    let output = scratch.expertOutput + index * hidden
                    var dot: Float = 0
                    for column in 0..<hidden { dot += gradient[column] * output[column] }
                    scratch.dRouteWeights[row * topK + slot] = alpha * dot
                    let scale = alpha * scratch.routeWeights[row * topK + slot]
                    for column in 0..<hidden { output[column] = scale * gradient[column] }
                    index += 1
                }
            }
            // d down_e (H, F) += d outᵀ · activated, before activated is overwritten.
            if let downGradient = gradients.down {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(hidden), Int32(width), Int32(count),
                            1, scratch.expertOutput, Int32(hidden), scratch.activated, Int32(width), 1, downGradient + expert * hidden * width, Int32(width))
            }
            // d activated = dOut · W_down (count, F); d[gate | up] in place; d input = d[gate | up] · W_in. Both products
            // read the stored weights as the forward does (W stored (k, n): `WeightProducts.multiply`).
            WeightProducts.multiply(downWeight, x: scratch.expertOutput, rows: count, ldx: hidden, into: scratch.activated, ldy: width,
                                    alpha: 1, beta: 0)
            ActivationKernels.gatedBackward(.silu, gate: scratch.gateUp, up: scratch.gateUp + width, ld: 2 * width, dy: scratch.activated,
                                            lddy: width, rows: count, dim: width, dgate: scratch.gateUp, dup: scratch.gateUp + width)
            // d gate_up_e (2F, H) (or d gate_e, d up_e (F, H) each) += d[gate | up]ᵀ · gathered inputs, before they are
            // overwritten.
            for (gradient, rowsPerExpert, offset) in [(gradients.gateUp, 2 * width, 0), (gradients.gate, width, 0), (gradients.up, width, width)] {
                guard let gradient else { continue }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rowsPerExpert), Int32(hidden), Int32(count),
                            1, scratch.gateUp + offset, Int32(2 * width), scratch.gathered, Int32(hidden), 1,
                            gradient + expert * rowsPerExpert * hidden, Int32(hidden))
            }
            projection.backward(dy: scratch.gateUp, rows: count, into: scratch.gathered, ldx: hidden, width: width)
            for index in 0..<count {
                let target = dInput + Int(scratch.rowIndex[index]) * lddi
                let source = scratch.gathered + index * hidden
                for column in 0..<hidden { target[column] += source[column] }
            }
        }
        // Softmax over the k selected logits: dlogit_j = w_j·(dw_j − Σ_i w_i·dw_i); other logits get nothing.
        let dLogits = scratch.logits
        dLogits.update(repeating: 0, count: rows * shape.count)
        for row in 0..<rows {
            let routeWeights = scratch.routeWeights + row * topK
            let dRouteWeights = scratch.dRouteWeights + row * topK
            var weighted: Float = 0
            for slot in 0..<topK { weighted += routeWeights[slot] * dRouteWeights[slot] }
            for slot in 0..<topK {
                dLogits[row * shape.count + Int(scratch.selected[row * topK + slot])] = routeWeights[slot] * (dRouteWeights[slot] - weighted)
            }
        }
        if let router = weights.router.float32 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hidden), Int32(shape.count),
                        1, dLogits, Int32(shape.count), router, Int32(hidden), 1, dInput, Int32(lddi))
        } else {
            WeightProducts.multiply(weights.router, x: dLogits, rows: rows, ldx: shape.count, into: dInput, ldy: lddi, alpha: 1, beta: 1)
        }
        // d router (E, H) += dlogitsᵀ · input.
        if let routerGradient = gradients.router {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(shape.count), Int32(hidden), Int32(rows),
                        1, dLogits, Int32(shape.count), input, Int32(ldi), 1, routerGradient, Int32(hidden))
        }
    }
}

/// Products with one expert's input projection (`ExpertWeights.projection(expert:)`): `[gate | up]` (2F, H) as
/// transformers stores it, or mlx_lm's gate and up (F, H) each, written into / read from the halves of one (rows, 2F)
/// buffer either way.
extension ExpertWeights.Projection {
    /// `y (rows, 2F) = x (rows, H) · [gate | up]ᵀ`; `y` has row stride `2F`.
    func forward(x: UnsafePointer<Float>, rows: Int, ldx: Int, into y: UnsafeMutablePointer<Float>, width: Int) {
        switch self {
        case .fused(let gateUp):
            WeightProducts.multiplyTransposed(gateUp, x: x, rows: rows, ldx: ldx, into: y, ldy: 2 * width, alpha: 1, beta: 0)
        case let .separate(gate, up):
            WeightProducts.multiplyTransposed(gate, x: x, rows: rows, ldx: ldx, into: y, ldy: 2 * width, alpha: 1, beta: 0)
            WeightProducts.multiplyTransposed(up, x: x, rows: rows, ldx: ldx, into: y + width, ldy: 2 * width, alpha: 1, beta: 0)
        }
    }

    /// `dx (rows, H) = d[gate | up] (rows, 2F) · [gate | up]` (overwrites `dx`); `dy` has row stride `2F`.
    func backward(dy: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>, ldx: Int, width: Int) {
        switch self {
        case .fused(let gateUp):
            WeightProducts.multiply(gateUp, x: dy, rows: rows, ldx: 2 * width, into: dx, ldy: ldx, alpha: 1, beta: 0)
        case let .separate(gate, up):
            WeightProducts.multiply(gate, x: dy, rows: rows, ldx: 2 * width, into: dx, ldy: ldx, alpha: 1, beta: 0)
            WeightProducts.multiply(up, x: dy + width, rows: rows, ldx: 2 * width, into: dx, ldy: ldx, alpha: 1, beta: 1)
        }
    }
}
