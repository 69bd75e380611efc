import Foundation

/// The architecture-independent description of a decoder-only transformer that the forward pass runs.
/// Each architecture file decodes its own `config.json` into one of these, so the kernels never look at
/// config keys.
public struct TransformerSpec: Sendable, Equatable {
    public enum Positions: Sendable, Equatable {
        case rotary(RotaryEmbedding)
        /// A learned table of `count` position vectors (GPT-2's `wpe`).
        case learned(count: Int)
        /// No positional encoding (Granite 4.0-H's `nope`): order reaches attention only through the causal mask and
        /// the recurrent layers.
        case none
    }

    /// What mixes tokens in a block: softmax attention, or a Mamba2 state-space layer (Granite 4.0-H).
    public enum LayerKind: String, Sendable, Equatable {
        case attention
        case mamba
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
    /// mlx affine quantization of the weights (`config.json` `quantization`), nil for float weights.
    public var quantization: QuantizationConfig? = nil
    /// Mistral/Qwen2-style sliding-window attention, when enabled.
    public var slidingWindow: Int?
    public var maxPositions: Int
    /// Per-layer mixer kinds; empty means every layer is attention.
    public var layerKinds: [LayerKind] = []
    /// Shape of the Mamba2 layers, when there are any.
    public var mamba: MambaShape?
    /// Routed experts added to the (shared) MLP, when there are any.
    public var experts: ExpertShape?
    /// The dtype the checkpoint declares (`torch_dtype` / `dtype`), used as the default when writing.
    public var declaredDType: DType?

    public func layerKind(_ layer: Int) -> LayerKind { layerKinds.isEmpty ? .attention : layerKinds[layer] }

    public var hasMambaLayers: Bool { layerKinds.contains(.mamba) }

    func attentionScale(forLayer layer: Int) -> Float {
        scaleAttentionByInverseLayerIndex ? attentionScale / Float(layer + 1) : attentionScale
    }
}

/// Dimensions of a Mamba2 mixer (notation of docs/granitemoehybrid.md): `heads` NH × `headDim` P = `intermediate`
/// I channels, `groups` G sharing B/C of `stateSize` N, a depthwise conv of `convKernel` K taps over
/// `convDim = I + 2·G·N` channels, and prefill scanned in chunks of `chunkSize` Q.
public struct MambaShape: Sendable, Equatable {
    public var heads: Int
    public var headDim: Int
    public var groups: Int
    public var stateSize: Int
    public var convKernel: Int
    public var chunkSize: Int
    public var convBias: Bool
    public var projectionBias: Bool
    /// `time_step_limit`: dt is clamped to this range (transformers clamps in prefill only; see the doc, pitfall 7).
    public var timeStepMin: Float
    public var timeStepMax: Float
    /// Epsilon of the gated RMSNorm (the model's `rms_norm_eps`).
    public var normEpsilon: Float

    public var intermediate: Int { heads * headDim }
    public var groupStateWidth: Int { groups * stateSize }
    public var convDim: Int { intermediate + 2 * groupStateWidth }
    /// in_proj output: `[z (I) | xBC (convDim) | dt (NH)]`.
    public var projectionWidth: Int { intermediate + convDim + heads }
    public var headsPerGroup: Int { heads / groups }
    /// Floats of one sequence's recurrent state: the last K−1 pre-conv xBC rows and the SSM state (NH, P, N).
    public var convStateCount: Int { (convKernel - 1) * convDim }
    public var ssmStateCount: Int { heads * headDim * stateSize }
}

/// A top-k mixture of `count` experts of width `width` (each a gated SiLU MLP), routed by a linear router.
public struct ExpertShape: Sendable, Equatable {
    public var count: Int
    public var topK: Int
    public var width: Int
}
