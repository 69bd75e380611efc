import Foundation

/// Parameter and FLOP counts implied by a config: the one counter the memory check, the benchmarks and reports use.
public enum ModelArithmetic {
    /// Every weight the architecture stores: embeddings (and an untied output projection), each block's attention or
    /// Mamba2 projections and MLP (all routed experts with their routers), learned positions. Norms, biases and conv
    /// taps are left out (a fraction of a percent).
    public static func parameterCount(_ spec: TransformerSpec) -> Int {
        var total = spec.vocabularySize * spec.hiddenSize * (spec.tiedEmbeddings ? 1 : 2)
        for layer in 0..<spec.layerCount {
            total += mixerParameters(spec, layer: layer) + denseFeedForwardParameters(spec)
            if let experts = spec.experts { total += experts.count * spec.hiddenSize * (1 + 3 * experts.width) }
        }
        if case .learned(let count) = spec.positions { total += count * spec.hiddenSize }
        return total
    }

    /// Weights one token is multiplied with (each block's projections and MLP, only the `topK` routed experts it
    /// is sent to plus the router, and the output projection): 2 FLOPs each per token.
    public static func linearParametersPerToken(_ spec: TransformerSpec) -> Int {
        var total = spec.vocabularySize * spec.hiddenSize
        for layer in 0..<spec.layerCount {
            total += mixerParameters(spec, layer: layer) + denseFeedForwardParameters(spec)
            if let experts = spec.experts { total += spec.hiddenSize * (experts.count + 3 * experts.topK * experts.width) }
        }
        return total
    }

    /// Weight bytes one decoded token streams from memory: every weight it is multiplied with, once, at
    /// `bytesPerWeight` (2 for bfloat16). Decoding is bound by this: tokens/s × this = the achieved bandwidth.
    public static func weightBytesPerToken(_ spec: TransformerSpec, bytesPerWeight: Int) -> Double {
        Double(linearParametersPerToken(spec)) * Double(bytesPerWeight)
    }

    /// Token-mixing work beyond the linear layers, per sequence of `length` tokens: for attention layers Q·Kᵀ and P·V
    /// over the visible (causal) keys only, 2·T·(T+1)·queryDim (ci/bench/common.py counts the same for the peers); for
    /// Mamba2 layers the recurrence's state update and read-out, 4·I·N per token.
    public static func tokenMixingFlops(_ spec: TransformerSpec, length: Int) -> Double {
        var total = 0.0
        for layer in 0..<spec.layerCount {
            if spec.layerKind(layer) == .mamba, let mamba = spec.mamba {
                total += 4 * Double(mamba.intermediate * mamba.stateSize) * Double(length)
            } else {
                total += 2 * Double(length * (length + 1)) * Double(spec.attention.queryDim)
            }
        }
        return total
    }

    /// Scoring `batch` sequences of `length` tokens: every token through every linear layer (2 FLOPs per weight) plus
    /// each sequence's token mixing.
    public static func scoreFlops(_ spec: TransformerSpec, batch: Int, length: Int) -> Double {
        2 * Double(linearParametersPerToken(spec)) * Double(batch * length) + tokenMixingFlops(spec, length: length) * Double(batch)
    }

    /// Decoding `tokens` new tokens after a `prompt`-token prompt: every token (prompt and new) through every linear
    /// layer. Attention over the cache is left out: at decode lengths it is a few percent.
    public static func decodeFlops(_ spec: TransformerSpec, prompt: Int, tokens: Int) -> Double {
        2 * Double(linearParametersPerToken(spec)) * Double(prompt + tokens)
    }

    /// One LoRA training step on `sequences` of `length` tokens: forward 2·P per token, backward ≈ 2·P per token for
    /// the input gradients (weight gradients are the adapters' only, negligible at small rank), and token mixing three
    /// times (forward, and its two backward products).
    public static func loraStepFlops(_ spec: TransformerSpec, sequences: Int, length: Int) -> Double {
        4 * Double(linearParametersPerToken(spec)) * Double(sequences * length) + 3 * tokenMixingFlops(spec, length: length) * Double(sequences)
    }

    /// A block's attention projections (q, k, v, o) or Mamba2 in/out projections.
    static func mixerParameters(_ spec: TransformerSpec, layer: Int) -> Int {
        let hidden = spec.hiddenSize
        if spec.layerKind(layer) == .mamba, let mamba = spec.mamba {
            return hidden * mamba.projectionWidth + mamba.intermediate * hidden
        }
        let attention = spec.attention
        return hidden * (attention.queryDim + 2 * attention.kvDim) + attention.queryDim * hidden
    }

    /// A block's dense (or shared) MLP: gate, up, down for a gated MLP; up, down for a plain one.
    static func denseFeedForwardParameters(_ spec: TransformerSpec) -> Int {
        let matrices: Int
        switch spec.feedForward {
        case .gated: matrices = 3
        case .plain: matrices = 2
        }
        return matrices * spec.hiddenSize * spec.intermediateSize
    }
}
