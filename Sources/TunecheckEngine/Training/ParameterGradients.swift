import Foundation

/// Gradient buffers of the trainable parameters, found by what they belong to: linear layers by module name,
/// norms by the address of their weight, embeddings directly. Whatever has no entry is frozen.
public final class ParameterGradients {
    public var linears: [String: LinearGradients] = [:]
    /// Keyed by `Int(bitPattern:)` of the norm's weight pointer.
    public var norms: [Int: (weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?)] = [:]
    public var tokenEmbedding: UnsafeMutablePointer<Float>?
    public var positionEmbedding: UnsafeMutablePointer<Float>?
    /// (vocab, hidden); the token embedding's buffer when the embeddings are tied.
    public var outputProjection: UnsafeMutablePointer<Float>?
    /// Other parameters (the Mamba2 mixer's conv taps, dt bias, A_log, D and gated-norm weight; routers and experts),
    /// keyed by `Int(bitPattern:)` of the parameter's pointer.
    public var tensors: [Int: UnsafeMutablePointer<Float>] = [:]

    public init() {}

    /// The gradient buffer of the parameter at `pointer`, when it is trained.
    func gradient(of pointer: UnsafePointer<Float>?) -> UnsafeMutablePointer<Float>? {
        pointer.flatMap { tensors[Int(bitPattern: $0)] }
    }

    func norm(_ weights: NormWeights) -> (weight: UnsafeMutablePointer<Float>?, bias: UnsafeMutablePointer<Float>?) {
        guard let entry = norms[Int(bitPattern: weights.weight)] else { return (nil, nil) }
        return (entry.weight, entry.bias)
    }
}
