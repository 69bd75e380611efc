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
/// The experts are used in place in their stored dtype, like every other weight matrix (docs/weights-in-place.md):
/// `gateUp` and `down` view the whole 3-D tensors as (E, rest) matrices, and `gateUp(expert:)` / `down(expert:)` slice
/// out one expert's (2F, H) / (H, F) matrix without copying. The router is small (E × H) and widened to float32.
public struct ExpertWeights: @unchecked Sendable {
    /// (E, H): router logits = W·u, no bias. Float32 (widened when stored in a half type).
    public var router: UnsafePointer<Float>
    /// (E, 2F·H): per expert `[gate | up]` rows, (2F, H) each, in the stored dtype.
    public var gateUp: WeightMatrix
    /// (E, H·F): per expert down projection, (H, F) each, in the stored dtype.
    public var down: WeightMatrix
    /// H and F: the shape of one expert's matrices.
    public let hidden: Int
    public let width: Int

    public init(router: UnsafePointer<Float>, gateUp: WeightMatrix, down: WeightMatrix, hidden: Int, width: Int) {
        precondition(gateUp.columns == 2 * width * hidden && down.columns == hidden * width && gateUp.rows == down.rows,
                     "ExpertWeights: (\(gateUp.rows), \(gateUp.columns)) and (\(down.rows), \(down.columns)) for H \(hidden), F \(width)")
        self.router = router
        self.gateUp = gateUp
        self.down = down
        self.hidden = hidden
        self.width = width
    }

    /// Expert `expert`'s `[gate | up]` weight (2F, H), a view into `gateUp`.
    func gateUp(expert: Int) -> WeightMatrix { Self.slice(gateUp, expert, rows: 2 * width, columns: hidden) }

    /// Expert `expert`'s down projection (H, F), a view into `down`.
    func down(expert: Int) -> WeightMatrix { Self.slice(down, expert, rows: hidden, columns: width) }

    /// Row `expert` of a 3-D tensor viewed as (E, rest), as a (rows, columns) matrix. The offset is the tensor's bytes
    /// per expert, so it holds for any storage whose rows are laid out one after another.
    private static func slice(_ tensor: WeightMatrix, _ expert: Int, rows: Int, columns: Int) -> WeightMatrix {
        WeightMatrix(storage: tensor.storage, base: tensor.base + expert * (tensor.byteCount / tensor.rows), rows: rows, columns: columns)
    }
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
