import CBLAS

/// Runs `body` with OpenBLAS single-threaded, then restores its thread count. For runs of small GEMMs (LoRA's
/// rank-r products, per-head attention): handed to OpenBLAS' pool, each costs more in thread hand-off than in
/// arithmetic, and the idle pool threads spin and `sched_yield` between calls (perf, LoRA training step on s15m:
/// ~30% of samples in the scheduler).
@inlinable
public func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
    let threads = openblas_get_num_threads()
    if threads == 1 { return try body() }
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(threads) }
    return try body()
}

/// How a weight matrix is laid out in memory. Hugging Face `nn.Linear` stores `(out, in)`; GPT-2's `Conv1D`
/// stores `(in, out)`. Both are used in place; the GEMM's transpose flag absorbs the difference.
public enum WeightLayout: Sendable {
    case outIn
    case inOut
}

/// A low-rank adapter on a linear layer: `y += scale · (x·A)·B`, with `A` `(in, r)` and `B` `(r, out)` in the
/// mlx_lm orientation, or their transposes (PEFT stores `lora_A` as `(r, in)` and `lora_B` as `(out, r)`).
public struct LowRankAdapter: @unchecked Sendable {
    public let down: UnsafePointer<Float>
    public let downLayout: WeightLayout   // .inOut: (in, r) like mlx_lm; .outIn: (r, in) like PEFT
    public let up: UnsafePointer<Float>
    public let upLayout: WeightLayout     // .inOut: (r, out) like mlx_lm; .outIn: (out, r) like PEFT
    public let rank: Int
    public let scale: Float

    public init(down: UnsafePointer<Float>, downLayout: WeightLayout, up: UnsafePointer<Float>, upLayout: WeightLayout, rank: Int, scale: Float) {
        self.down = down
        self.downLayout = downLayout
        self.up = up
        self.upLayout = upLayout
        self.rank = rank
        self.scale = scale
    }
}

/// A linear layer `y = x·Wᵀ + b` over weights used as stored (float32, bfloat16 or float16, usually in the
/// memory-mapped file), optionally with a low-rank adapter applied unfused. Activations, products and sums are float32.
public struct Linear: @unchecked Sendable {
    /// The module path, e.g. `model.layers.3.self_attn.q_proj` (tensor names add `.weight` / `.bias`).
    public let name: String
    /// Stored `(out, in)` for `.outIn`, `(in, out)` for `.inOut`.
    public let weight: WeightMatrix
    public let layout: WeightLayout
    public let bias: UnsafePointer<Float>?
    public let inFeatures: Int
    public let outFeatures: Int
    public var adapter: LowRankAdapter?
    /// A bfloat16 copy of a float32 `weight` (`.outIn` layout only), used instead of it when set (`withBFloat16Weights`).
    public var weightBF16: UnsafePointer<UInt16>? = nil

    public init(name: String, weight: WeightMatrix, layout: WeightLayout, bias: UnsafePointer<Float>?, inFeatures: Int, outFeatures: Int,
                adapter: LowRankAdapter? = nil) {
        precondition(weight.count == inFeatures * outFeatures, "Linear \(name): weight has \(weight.count) values for \(inFeatures)×\(outFeatures)")
        self.name = name
        self.weight = weight
        self.layout = layout
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.adapter = adapter
    }

    /// A layer over float32 weights.
    public init(name: String, weight: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?, inFeatures: Int, outFeatures: Int,
                adapter: LowRankAdapter? = nil) {
        let matrix = layout == .outIn ? WeightMatrix(weight, rows: outFeatures, columns: inFeatures)
                                      : WeightMatrix(weight, rows: inFeatures, columns: outFeatures)
        self.init(name: name, weight: matrix, layout: layout, bias: bias, inFeatures: inFeatures, outFeatures: outFeatures, adapter: adapter)
    }

    /// Forward over a block of rows.
    ///
    /// Shapes: `x` is (rows, in) with row stride `ldx`; `y` is (rows, out) with row stride `ldy`.
    /// `y = alpha · (x·Wᵀ + b) + beta · y`, so `beta = 1` adds into a residual stream in place.
    /// `scratch` must hold `rows × rank` floats when an adapter is present.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                        alpha: Float = 1, beta: Float = 0, scratch: UnsafeMutablePointer<Float>? = nil) {
        guard rows > 0 else { return }
        if let weightBF16 {
            BFloat16Kernels.forward(weight: weightBF16, outFeatures: outFeatures, inFeatures: inFeatures, x: x, rows: rows, ldx: ldx,
                                    into: y, ldy: ldy, alpha: alpha, beta: beta)
        } else if layout == .outIn {
            // One token (decoding) is a matrix-vector product (sgemm with M = 1 does not reach a GEMV's bandwidth).
            WeightProducts.multiplyTransposed(weight, x: x, rows: rows, ldx: ldx, into: y, ldy: ldy, alpha: alpha, beta: beta)
        } else {
            WeightProducts.multiply(weight, x: x, rows: rows, ldx: ldx, into: y, ldy: ldy, alpha: alpha, beta: beta)
        }
        if let bias {
            for row in 0..<rows {
                let output = y + row * ldy
                for column in 0..<outFeatures { output[column] += alpha * bias[column] }
            }
        }
        if let adapter {
            // Without scratch the low-rank path would be skipped silently; every caller must pass it.
            guard let scratch else { preconditionFailure("Linear.forward on \(name): an adapter needs a scratch buffer") }
            withSingleThreadedBLAS { adapterForward(adapter, x, rows: rows, ldx: ldx, into: y, ldy: ldy, alpha: alpha, scratch: scratch) }
        }
    }

    /// `y += alpha · scale · (x·A)·B` (see `forward`).
    @inlinable
    func adapterForward(_ adapter: LowRankAdapter, _ x: UnsafePointer<Float>, rows: Int, ldx: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                        alpha: Float, scratch: UnsafeMutablePointer<Float>) {
        do {
            // t (rows, r) = x · A ; y += alpha · scale · t · B
            let rank = adapter.rank
            cblas_sgemm(CblasRowMajor, CblasNoTrans, adapter.downLayout == .inOut ? CblasNoTrans : CblasTrans,
                        Int32(rows), Int32(rank), Int32(inFeatures), 1, x, Int32(ldx),
                        adapter.down, Int32(adapter.downLayout == .inOut ? rank : inFeatures), 0, scratch, Int32(rank))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, adapter.upLayout == .inOut ? CblasNoTrans : CblasTrans,
                        Int32(rows), Int32(outFeatures), Int32(rank), alpha * adapter.scale, scratch, Int32(rank),
                        adapter.up, Int32(adapter.upLayout == .inOut ? outFeatures : rank), 1, y, Int32(ldy))
        }
    }
}

/// Where a linear layer's parameter gradients accumulate (each optional: LoRA training fills only the adapter's).
/// Layouts match the parameters': `adapterDown`/`adapterUp` follow the adapter's layouts, `weight` the layer's.
public struct LinearGradients {
    public var weight: UnsafeMutablePointer<Float>?
    public var bias: UnsafeMutablePointer<Float>?
    public var adapterDown: UnsafeMutablePointer<Float>?
    public var adapterUp: UnsafeMutablePointer<Float>?

    public init(weight: UnsafeMutablePointer<Float>? = nil, bias: UnsafeMutablePointer<Float>? = nil,
                adapterDown: UnsafeMutablePointer<Float>? = nil, adapterUp: UnsafeMutablePointer<Float>? = nil) {
        self.weight = weight
        self.bias = bias
        self.adapterDown = adapterDown
        self.adapterUp = adapterUp
    }
}

extension Linear {
    /// Backward of `y = alpha·(x·Wᵀ + b + s·(x·A)·B)`.
    ///
    /// Shapes: `x` (rows, in) stride `ldx` (the forward input); `dy` (rows, out) stride `lddy` (gradient wrt `y`);
    /// `dx` (rows, in) stride `lddx` receives `+=` the input gradient (pass nil when it is not needed).
    /// Parameter gradients accumulate (`+=`) into `gradients`. `scratch` holds 2·rows·rank floats with an adapter.
    public func backward(x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int, rows: Int, alpha: Float = 1,
                         dx: UnsafeMutablePointer<Float>?, lddx: Int, gradients: LinearGradients?, scratch: UnsafeMutablePointer<Float>?) {
        guard rows > 0 else { return }
        // dx += alpha · dy · W   (W stored (out, in)); for (in, out) storage, dy · Wᵀ. Half-precision weights are
        // widened a panel at a time, as in the forward pass.
        if let dx {
            if layout == .outIn {
                WeightProducts.multiply(weight, x: dy, rows: rows, ldx: lddy, into: dx, ldy: lddx, alpha: alpha, beta: 1)
            } else {
                WeightProducts.multiplyTransposed(weight, x: dy, rows: rows, ldx: lddy, into: dx, ldy: lddx, alpha: alpha, beta: 1)
            }
        }
        if let weightGradient = gradients?.weight {
            if layout == .outIn {
                // dW (out, in) += alpha · dyᵀ · x
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(rows),
                            alpha, dy, Int32(lddy), x, Int32(ldx), 1, weightGradient, Int32(inFeatures))
            } else {
                // dW (in, out) += alpha · xᵀ · dy
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(inFeatures), Int32(outFeatures), Int32(rows),
                            alpha, x, Int32(ldx), dy, Int32(lddy), 1, weightGradient, Int32(outFeatures))
            }
        }
        if let biasGradient = gradients?.bias, bias != nil {
            for row in 0..<rows {
                let gradientRow = dy + row * lddy
                for column in 0..<outFeatures { biasGradient[column] += alpha * gradientRow[column] }
            }
        }
        guard let adapter, let scratch else { return }
        withSingleThreadedBLAS {
            adapterBackward(adapter, x: x, ldx: ldx, dy: dy, lddy: lddy, rows: rows, alpha: alpha, dx: dx, lddx: lddx, gradients: gradients, scratch: scratch)
        }
    }

    /// The adapter's part of `backward`.
    func adapterBackward(_ adapter: LowRankAdapter, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int, rows: Int, alpha: Float,
                         dx: UnsafeMutablePointer<Float>?, lddx: Int, gradients: LinearGradients?, scratch: UnsafeMutablePointer<Float>) {
        let rank = adapter.rank
        let t = scratch                    // (rows, r) = x · A, recomputed rather than stored
        let dt = scratch + rows * rank     // (rows, r) = alpha·s · dy · Bᵀ
        let downIsInOut = adapter.downLayout == .inOut
        let upIsInOut = adapter.upLayout == .inOut
        cblas_sgemm(CblasRowMajor, CblasNoTrans, downIsInOut ? CblasNoTrans : CblasTrans, Int32(rows), Int32(rank), Int32(inFeatures),
                    1, x, Int32(ldx), adapter.down, Int32(downIsInOut ? rank : inFeatures), 0, t, Int32(rank))
        let coefficient = alpha * adapter.scale
        if let upGradient = gradients?.adapterUp {
            if upIsInOut {
                // dB (r, out) += c · tᵀ · dy
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rank), Int32(outFeatures), Int32(rows),
                            coefficient, t, Int32(rank), dy, Int32(lddy), 1, upGradient, Int32(outFeatures))
            } else {
                // dB (out, r) += c · dyᵀ · t
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(rank), Int32(rows),
                            coefficient, dy, Int32(lddy), t, Int32(rank), 1, upGradient, Int32(rank))
            }
        }
        // dt (rows, r) = c · dy · Bᵀ   (B (r, out)); for (out, r) storage, dy · B.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, upIsInOut ? CblasTrans : CblasNoTrans, Int32(rows), Int32(rank), Int32(outFeatures),
                    coefficient, dy, Int32(lddy), adapter.up, Int32(upIsInOut ? outFeatures : rank), 0, dt, Int32(rank))
        if let downGradient = gradients?.adapterDown {
            if downIsInOut {
                // dA (in, r) += xᵀ · dt
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(inFeatures), Int32(rank), Int32(rows),
                            1, x, Int32(ldx), dt, Int32(rank), 1, downGradient, Int32(rank))
            } else {
                // dA (r, in) += dtᵀ · x
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rank), Int32(inFeatures), Int32(rows),
                            1, dt, Int32(rank), x, Int32(ldx), 1, downGradient, Int32(inFeatures))
            }
        }
        if let dx {
            // dx += dt · Aᵀ  (A (in, r)); for (r, in) storage, dt · A.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, downIsInOut ? CblasTrans : CblasNoTrans, Int32(rows), Int32(inFeatures), Int32(rank),
                        1, dt, Int32(rank), adapter.down, Int32(downIsInOut ? rank : inFeatures), 1, dx, Int32(lddx))
        }
    }
}
