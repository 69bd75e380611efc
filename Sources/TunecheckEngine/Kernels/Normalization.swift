import Foundation

/// Weights of a normalisation layer: RMSNorm has only `weight`; LayerNorm has `weight` and `bias`.
public struct NormWeights: @unchecked Sendable {
    public let weight: UnsafePointer<Float>
    public let bias: UnsafePointer<Float>?
}

public enum NormKind: Sendable, Equatable {
    /// `x / sqrt(mean(x²) + eps) · w` (Llama family).
    case rms(epsilon: Float)
    /// `(x − mean) / sqrt(var + eps) · w + b`, biased variance (GPT-2).
    case layer(epsilon: Float)
}

enum NormalizationKernels {
    /// Shapes: `x` (rows, dim) with row stride `ldx`; `y` (rows, dim) with row stride `ldy` (may alias `x` when
    /// the strides match). Statistics are accumulated in Double: it costs nothing next to the GEMMs and keeps the
    /// result within float32 rounding of PyTorch's.
    static func forward(_ kind: NormKind, _ x: UnsafePointer<Float>, rows: Int, dim: Int, ldx: Int,
                        weights: NormWeights, into y: UnsafeMutablePointer<Float>, ldy: Int) {
        let weight = weights.weight
        switch kind {
        case .rms(let epsilon):
            for row in 0..<rows {
                let input = x + row * ldx
                let output = y + row * ldy
                var sumOfSquares: Double = 0
                for index in 0..<dim { sumOfSquares += Double(input[index]) * Double(input[index]) }
                let inverse = Float(1.0 / (sumOfSquares / Double(dim) + Double(epsilon)).squareRoot())
                for index in 0..<dim { output[index] = weight[index] * (input[index] * inverse) }
            }
        case .layer(let epsilon):
            for row in 0..<rows {
                let input = x + row * ldx
                let output = y + row * ldy
                var sum: Double = 0
                for index in 0..<dim { sum += Double(input[index]) }
                let mean = sum / Double(dim)
                var squares: Double = 0
                for index in 0..<dim {
                    let centered = Double(input[index]) - mean
                    squares += centered * centered
                }
                let inverse = Float(1.0 / (squares / Double(dim) + Double(epsilon)).squareRoot())
                let meanFloat = Float(mean)
                if let bias = weights.bias {
                    for index in 0..<dim { output[index] = (input[index] - meanFloat) * inverse * weight[index] + bias[index] }
                } else {
                    for index in 0..<dim { output[index] = (input[index] - meanFloat) * inverse * weight[index] }
                }
            }
        }
    }
}
