import Foundation

/// Attention projections of one block. Separate projections write into column slices of one
/// (rows, queryDim + 2·kvDim) buffer, so a fused `qkv_proj` (Phi-3) or `c_attn` (GPT-2) is just one GEMM into it.
public struct AttentionWeights: Sendable {
    public enum Projection: Sendable {
        case separate(query: Linear, key: Linear, value: Linear)
        /// One linear layer producing `[q | k | v]`.
        case fused(Linear)
    }
    public var projection: Projection
    public var output: Linear
    /// Qwen3's per-head RMSNorm weights `(headDim)`.
    public var queryNorm: NormWeights?
    public var keyNorm: NormWeights?
}

/// Weights of a Mamba2 mixer (shapes in `MambaShape`'s notation).
public struct MambaWeights: @unchecked Sendable {
    /// H → `[z | xBC | dt]` (projectionWidth).
    public var inProjection: Linear
    /// (convDim, K): depthwise conv taps, `[c, K−1]` multiplying the current token.
    public var convWeight: UnsafePointer<Float>
    /// (convDim), when `mamba_conv_bias`.
    public var convBias: UnsafePointer<Float>?
    /// (NH) each: added to dt before softplus; `A = −exp(A_log)`; the skip `D`.
    public var timeStepBias: UnsafePointer<Float>
    public var logDecay: UnsafePointer<Float>
    public var skip: UnsafePointer<Float>
    /// (I): the gated RMSNorm's weight.
    public var normWeight: UnsafePointer<Float>
    /// I → H.
    public var outProjection: Linear
}

/// What mixes tokens in one block.
public enum MixerWeights: Sendable {
    case attention(AttentionWeights)
    case mamba(MambaWeights)
}

/// Routed experts of a mixture-of-experts MLP, stored as 3-D tensors (no adapters can attach to them).
///
/// The experts are used in place in their stored form, like every other weight matrix (docs/weights-in-place.md,
/// docs/quantized-weights.md): each 3-D tensor (E, R, C) is viewed as one (E·R, C) matrix whose rows are the experts'
/// rows one after another, and `WeightMatrix.rows(_:)` slices one expert's (R, C) matrix out without copying, for
/// float and mlx-quantized storage alike. Two layouts exist: transformers' (the Hub's) `input_linear` (E, 2F, H) with
/// `[gate | up]` rows per expert, and mlx_lm's (after its `sanitize`) `switch_mlp.gate_proj` and `up_proj`, (E, F, H)
/// each; `down` is (E, H, F) in both (`output_linear` / `switch_mlp.down_proj`).
public struct ExpertWeights: @unchecked Sendable {
    /// The experts' input projections: all experts stacked (`projection`), or one expert's (`projection(expert:)`).
    public enum Projection: Sendable {
        /// Stacked (E·2F, H): expert e's `[gate | up]` is rows [2F·e, 2F·(e+1)). One expert's: (2F, H).
        case fused(WeightMatrix)
        /// Stacked (E·F, H) each: expert e's gate and up are rows [F·e, F·(e+1)). One expert's: (F, H) each.
        case separate(gate: WeightMatrix, up: WeightMatrix)
    }

    /// (E, H): router logits = W·u, no bias. Float32 (widened when stored in a half type), or mlx-quantized as stored
    /// (mlx_lm quantizes `router.layer` to 8 bits, groups of 64).
    public var router: WeightMatrix
    public var projection: Projection
    /// (E·H, F): expert e's down projection is rows [H·e, H·(e+1)).
    public var down: WeightMatrix
    /// H and F: the shape of one expert's matrices.
    public let hidden: Int
    public let width: Int

    public init(router: WeightMatrix, projection: Projection, down: WeightMatrix, hidden: Int, width: Int) {
        let expertCount = router.rows
        switch projection {
        case .fused(let gateUp):
            precondition(gateUp.rows == expertCount * 2 * width && gateUp.columns == hidden, "ExpertWeights: gate_up (\(gateUp.rows), \(gateUp.columns))")
        case let .separate(gate, up):
            precondition(gate.rows == expertCount * width && gate.columns == hidden && up.rows == gate.rows && up.columns == hidden,
                         "ExpertWeights: gate (\(gate.rows), \(gate.columns)), up (\(up.rows), \(up.columns))")
        }
        precondition(router.columns == hidden && down.rows == expertCount * hidden && down.columns == width,
                     "ExpertWeights: router (\(router.rows), \(router.columns)), down (\(down.rows), \(down.columns)) for H \(hidden), F \(width)")
        self.router = router
        self.projection = projection
        self.down = down
        self.hidden = hidden
        self.width = width
    }

    /// The stacked expert matrices (gate/up or `[gate | up]`, then down), e.g. for memory accounting and tests.
    public var matrices: [WeightMatrix] {
        switch projection {
        case .fused(let gateUp): return [gateUp, down]
        case let .separate(gate, up): return [gate, up, down]
        }
    }

    /// Expert `expert`'s input projection, views into the stacks: `[gate | up]` (2F, H), or gate and up (F, H) each.
    func projection(expert: Int) -> Projection {
        switch projection {
        case .fused(let gateUp): return .fused(gateUp.rows(expert * 2 * width..<(expert + 1) * 2 * width))
        case let .separate(gate, up):
            return .separate(gate: gate.rows(expert * width..<(expert + 1) * width), up: up.rows(expert * width..<(expert + 1) * width))
        }
    }

    /// Expert `expert`'s down projection (H, F), a view into `down`.
    func down(expert: Int) -> WeightMatrix { down.rows(expert * hidden..<(expert + 1) * hidden) }
}

/// Feed-forward projections of one block.
public struct FeedForwardWeights: Sendable {
    public enum Projection: Sendable {
        /// `gate` and `up`, written as the halves of one (rows, 2·intermediate) buffer.
        case separate(gate: Linear, up: Linear)
        /// One linear layer producing `[gate | up]` (Phi-3's `gate_up_proj`, Granite 4.0-H's `shared_mlp.input_linear`).
        case fused(Linear)
        /// A single up projection for a plain MLP (GPT-2's `c_fc`).
        case single(Linear)
    }
    public var projection: Projection
    public var down: Linear
    /// Routed experts whose weighted outputs are added to this MLP's (Granite 4.0-H MoE).
    public var experts: ExpertWeights? = nil
}

public struct DecoderLayerWeights: Sendable {
    public var attentionNorm: NormWeights
    public var mixer: MixerWeights
    public var feedForwardNorm: NormWeights
    public var feedForward: FeedForwardWeights

    public init(attentionNorm: NormWeights, attention: AttentionWeights, feedForwardNorm: NormWeights, feedForward: FeedForwardWeights) {
        self.init(attentionNorm: attentionNorm, mixer: .attention(attention), feedForwardNorm: feedForwardNorm, feedForward: feedForward)
    }

    public init(attentionNorm: NormWeights, mixer: MixerWeights, feedForwardNorm: NormWeights, feedForward: FeedForwardWeights) {
        self.attentionNorm = attentionNorm
        self.mixer = mixer
        self.feedForwardNorm = feedForwardNorm
        self.feedForward = feedForward
    }

    /// The attention weights of an attention layer (nil for a Mamba layer).
    public var attention: AttentionWeights? {
        if case .attention(let weights) = mixer { return weights }
        return nil
    }

    /// The Mamba weights of a Mamba layer (nil for an attention layer).
    public var mamba: MambaWeights? {
        if case .mamba(let weights) = mixer { return weights }
        return nil
    }

    /// Every linear layer of the block, for adapters and fusing.
    public var linears: [Linear] {
        var result: [Linear] = []
        switch mixer {
        case .attention(let attention):
            switch attention.projection {
            case let .separate(query, key, value): result += [query, key, value]
            case let .fused(linear): result.append(linear)
            }
            result.append(attention.output)
        case .mamba(let mamba):
            result += [mamba.inProjection, mamba.outProjection]
        }
        switch feedForward.projection {
        case let .separate(gate, up): result += [gate, up]
        case let .fused(linear), let .single(linear): result.append(linear)
        }
        result.append(feedForward.down)
        return result
    }

    /// Applies `transform` to every linear layer of the block.
    public mutating func updateLinears(_ transform: (inout Linear) throws -> Void) rethrows {
        switch mixer {
        case .attention(var attention):
            switch attention.projection {
            case .separate(var query, var key, var value):
                try transform(&query); try transform(&key); try transform(&value)
                attention.projection = .separate(query: query, key: key, value: value)
            case .fused(var linear):
                try transform(&linear)
                attention.projection = .fused(linear)
            }
            try transform(&attention.output)
            mixer = .attention(attention)
        case .mamba(var mamba):
            try transform(&mamba.inProjection)
            try transform(&mamba.outProjection)
            mixer = .mamba(mamba)
        }
        switch feedForward.projection {
        case .separate(var gate, var up):
            try transform(&gate); try transform(&up)
            feedForward.projection = .separate(gate: gate, up: up)
        case .fused(var linear):
            try transform(&linear)
            feedForward.projection = .fused(linear)
        case .single(var linear):
            try transform(&linear)
            feedForward.projection = .single(linear)
        }
        try transform(&feedForward.down)
    }
}

/// All weights of a decoder, pointers into a `WeightStore`: matrices in their stored dtype, small tensors as float32.
public struct DecoderWeights: @unchecked Sendable {
    /// (vocab, hidden); rows are widened on lookup.
    public var tokenEmbedding: WeightMatrix
    /// (maxPositions, hidden), GPT-2 only.
    public var positionEmbedding: UnsafePointer<Float>?
    public var layers: [DecoderLayerWeights]
    public var finalNorm: NormWeights
    /// (vocab, hidden); the token embedding itself when tied.
    public var outputProjection: WeightMatrix
    /// A bfloat16 copy of `outputProjection` (vocab, hidden), used instead of it when set (`withBFloat16Weights`).
    public var outputProjectionBF16: UnsafePointer<UInt16>? = nil
}

extension WeightStore {
    /// A 3-D expert tensor `name` of shape (E, R, C) as one (E·R, C) matrix in place (see `ExpertWeights`): float, or
    /// mlx-quantized (codes (E, R, C·bits/32), scales and biases (E, R, C/group_size)).
    func expertStack(_ name: String, shape: [Int]) throws -> WeightMatrix {
        let matrix = try weightMatrix(name, shape: shape)
        if matrix.quantization != nil { return matrix }  // already (E·R, C)
        return WeightMatrix(storage: matrix.storage, base: matrix.base, rows: shape[0] * shape[1], columns: shape[2])
    }

    /// A small matrix that products read as float32 when stored in a float dtype (widened once, like norms), or in place
    /// when mlx-quantized (a router: mlx_lm quantizes it to 8 bits).
    func smallMatrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
        if isAffineQuantized(name) { return try weightMatrix(name, shape: [rows, columns]) }
        return WeightMatrix(try floatTensor(name, shape: [rows, columns]).pointer, rows: rows, columns: columns)
    }

    /// Loads `prefix.weight` (and `prefix.bias` when `bias`) as a linear layer, checking shapes.
    func linear(_ prefix: String, inFeatures: Int, outFeatures: Int, bias: Bool, layout: WeightLayout = .outIn) throws -> Linear {
        let shape = layout == .outIn ? [outFeatures, inFeatures] : [inFeatures, outFeatures]
        let weight = try weightMatrix("\(prefix).weight", shape: shape)
        let biasTensor = bias ? try floatTensor("\(prefix).bias", shape: [outFeatures]) : nil
        return Linear(name: prefix, weight: weight, layout: layout, bias: biasTensor?.pointer,
                      inFeatures: inFeatures, outFeatures: outFeatures)
    }

    /// Loads a norm's `prefix.weight` (and `prefix.bias` when `bias`).
    func norm(_ prefix: String, dim: Int, bias: Bool) throws -> NormWeights {
        let weight = try floatTensor("\(prefix).weight", shape: [dim])
        let biasTensor = bias ? try floatTensor("\(prefix).bias", shape: [dim]) : nil
        return NormWeights(weight: weight.pointer, bias: biasTensor?.pointer)
    }
}
