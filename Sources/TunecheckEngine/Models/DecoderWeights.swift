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

/// Feed-forward projections of one block.
public struct FeedForwardWeights: Sendable {
    public enum Projection: Sendable {
        /// `gate` and `up`, written as the halves of one (rows, 2·intermediate) buffer.
        case separate(gate: Linear, up: Linear)
        /// One linear layer producing `[gate | up]` (Phi-3's `gate_up_proj`).
        case fused(Linear)
        /// A single up projection for a plain MLP (GPT-2's `c_fc`).
        case single(Linear)
    }
    public var projection: Projection
    public var down: Linear
}

public struct DecoderLayerWeights: Sendable {
    public var attentionNorm: NormWeights
    public var attention: AttentionWeights
    public var feedForwardNorm: NormWeights
    public var feedForward: FeedForwardWeights

    /// Every linear layer of the block, for adapters and fusing.
    public var linears: [Linear] {
        var result: [Linear] = []
        switch attention.projection {
        case let .separate(query, key, value): result += [query, key, value]
        case let .fused(linear): result.append(linear)
        }
        result.append(attention.output)
        switch feedForward.projection {
        case let .separate(gate, up): result += [gate, up]
        case let .fused(linear), let .single(linear): result.append(linear)
        }
        result.append(feedForward.down)
        return result
    }

    /// Applies `transform` to every linear layer of the block.
    public mutating func updateLinears(_ transform: (inout Linear) throws -> Void) rethrows {
        switch attention.projection {
        case .separate(var query, var key, var value):
            try transform(&query); try transform(&key); try transform(&value)
            attention.projection = .separate(query: query, key: key, value: value)
        case .fused(var linear):
            try transform(&linear)
            attention.projection = .fused(linear)
        }
        try transform(&attention.output)
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

/// All weights of a decoder, as float32 pointers into a `WeightStore`.
public struct DecoderWeights: @unchecked Sendable {
    /// (vocab, hidden)
    public var tokenEmbedding: UnsafePointer<Float>
    /// (maxPositions, hidden), GPT-2 only.
    public var positionEmbedding: UnsafePointer<Float>?
    public var layers: [DecoderLayerWeights]
    public var finalNorm: NormWeights
    /// (vocab, hidden); the token embedding itself when tied.
    public var outputProjection: UnsafePointer<Float>
    /// A bfloat16 copy of `outputProjection` (vocab, hidden), used instead of it when set (`withBFloat16Weights`).
    public var outputProjectionBF16: UnsafePointer<UInt16>? = nil
}

extension WeightStore {
    /// Loads `prefix.weight` (and `prefix.bias` when `bias`) as a linear layer, checking shapes.
    func linear(_ prefix: String, inFeatures: Int, outFeatures: Int, bias: Bool, layout: WeightLayout = .outIn) throws -> Linear {
        let shape = layout == .outIn ? [outFeatures, inFeatures] : [inFeatures, outFeatures]
        let weight = try floatTensor("\(prefix).weight", shape: shape)
        let biasTensor = bias ? try floatTensor("\(prefix).bias", shape: [outFeatures]) : nil
        return Linear(name: prefix, weight: weight.pointer, layout: layout, bias: biasTensor?.pointer,
                      inFeatures: inFeatures, outFeatures: outFeatures)
    }

    /// Loads a norm's `prefix.weight` (and `prefix.bias` when `bias`).
    func norm(_ prefix: String, dim: Int, bias: Bool) throws -> NormWeights {
        let weight = try floatTensor("\(prefix).weight", shape: [dim])
        let biasTensor = bias ? try floatTensor("\(prefix).bias", shape: [dim]) : nil
        return NormWeights(weight: weight.pointer, bias: biasTensor?.pointer)
    }
}
