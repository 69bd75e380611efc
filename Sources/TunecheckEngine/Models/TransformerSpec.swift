import Foundation

/// The architecture-independent description of a decoder-only transformer that the forward pass runs.
/// Each architecture file decodes its own `config.json` into one of these, so the kernels never look at
/// config keys.
public struct TransformerSpec: Sendable, Equatable {
    public enum Positions: Sendable, Equatable {
        case rotary(RotaryEmbedding)
        /// A learned table of `count` position vectors (GPT-2's `wpe`).
        case learned(count: Int)
    }

    public enum FeedForward: Sendable, Equatable {
        /// `down(act(gate(x)) ⊙ up(x))` (Llama family).
        case gated(Activation)
        /// `down(act(up(x)))` (GPT-2).
        case plain(Activation)
    }

    public var modelType: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var attention: AttentionShape
    public var intermediateSize: Int
    public var norm: NormKind
    public var positions: Positions
    public var feedForward: FeedForward
    /// Softmax scale of attention scores (usually `1/sqrt(headDim)`; Granite's `attention_multiplier`).
    public var attentionScale: Float
    /// GPT-2's `scale_attn_by_inverse_layer_idx`: layer `l` divides its scores by `l + 1` as well.
    public var scaleAttentionByInverseLayerIndex: Bool = false
    /// Biases on the q/k/v projections, the attention output projection and the MLP projections.
    public var queryKeyValueBias: Bool = false
    public var outputBias: Bool = false
    public var mlpBias: Bool = false
    /// Qwen3's per-head RMSNorm of queries and keys before the rotation.
    public var queryKeyNorm: Bool = false
    /// Granite: the token embeddings are multiplied by this.
    public var embeddingMultiplier: Float = 1
    /// Granite: each block's attention and MLP outputs are multiplied by this before the residual add.
    public var residualMultiplier: Float = 1
    /// Logits are multiplied by this (Granite divides by `logits_scaling`).
    public var logitsMultiplier: Float = 1
    public var tiedEmbeddings: Bool
    /// Mistral/Qwen2-style sliding-window attention, when enabled.
    public var slidingWindow: Int?
    public var maxPositions: Int
    /// The dtype the checkpoint declares (`torch_dtype` / `dtype`), used as the default when writing.
    public var declaredDType: DType?

    func attentionScale(forLayer layer: Int) -> Float {
        scaleAttentionByInverseLayerIndex ? attentionScale / Float(layer + 1) : attentionScale
    }
}
