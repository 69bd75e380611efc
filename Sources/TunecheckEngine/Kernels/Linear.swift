import CBLAS

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

/// A linear layer `y = x·Wᵀ + b` over float32 weights that live in a `WeightStore`, optionally with a
/// low-rank adapter applied unfused.
public struct Linear: @unchecked Sendable {
    /// The module path, e.g. `model.layers.3.self_attn.q_proj` (tensor names add `.weight` / `.bias`).
    public let name: String
    public let weight: UnsafePointer<Float>
    public let layout: WeightLayout
    public let bias: UnsafePointer<Float>?
    public let inFeatures: Int
    public let outFeatures: Int
    public var adapter: LowRankAdapter?

    public init(name: String, weight: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?, inFeatures: Int, outFeatures: Int, adapter: LowRankAdapter? = nil) {
        self.name = name
        self.weight = weight
        self.layout = layout
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.adapter = adapter
    }

    /// Forward over a block of rows.
    ///
    /// Shapes: `x` is (rows, in) with row stride `ldx`; `y` is (rows, out) with row stride `ldy`.
    /// `y = alpha · (x·Wᵀ + b) + beta · y`, so `beta = 1` adds into a residual stream in place.
    /// `scratch` must hold `rows × rank` floats when an adapter is present.
    @inlinable
    public func forward(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                        alpha: Float = 1, beta: Float = 0, scratch: UnsafeMutablePointer<Float>? = nil) {
        guard rows > 0 else { return }
        let transposeWeight = layout == .outIn ? CblasTrans : CblasNoTrans
        let ldw = layout == .outIn ? inFeatures : outFeatures
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeWeight, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                    alpha, x, Int32(ldx), weight, Int32(ldw), beta, y, Int32(ldy))
        if let bias {
            for row in 0..<rows {
                let output = y + row * ldy
                for column in 0..<outFeatures { output[column] += alpha * bias[column] }
            }
        }
        if let adapter, let scratch {
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
