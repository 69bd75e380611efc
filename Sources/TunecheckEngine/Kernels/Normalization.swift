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

extension NormalizationKernels {
    /// Backward of `forward`: `dx += ∂L/∂x` given `dy`; weight (and bias) gradients accumulate when given.
    ///
    /// Shapes: `x` (rows, dim) stride `ldx` (the forward input), `dy` (rows, dim) stride `lddy`, `dx` (rows, dim)
    /// stride `lddx`; `weightGradient`/`biasGradient` (dim). RMSNorm: with g = w⊙dy and r = 1/rms,
    /// dx = r·g − x·r³·mean(g⊙x). LayerNorm: with x̂ = (x−μ)·r, dx = r·(g − mean(g) − x̂·mean(g⊙x̂)).
    static func backward(_ kind: NormKind, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int, rows: Int, dim: Int,
                         weights: NormWeights, dx: UnsafeMutablePointer<Float>, lddx: Int,
                         weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?) {
        let weight = weights.weight
        let count = Double(dim)
        for row in 0..<rows {
            let input = x + row * ldx
            let gradient = dy + row * lddy
            let output = dx + row * lddx
            switch kind {
            case .rms(let epsilon):
                var sumOfSquares = 0.0
                var dot = 0.0
                for index in 0..<dim {
                    sumOfSquares += Double(input[index]) * Double(input[index])
                    dot += Double(weight[index] * gradient[index]) * Double(input[index])
                }
                let inverse = 1.0 / (sumOfSquares / count + Double(epsilon)).squareRoot()
                let correction = Float(inverse * inverse * inverse * dot / count)
                let inverseFloat = Float(inverse)
                for index in 0..<dim {
                    output[index] += inverseFloat * weight[index] * gradient[index] - input[index] * correction
                }
                if let weightGradient {
                    for index in 0..<dim { weightGradient[index] += gradient[index] * input[index] * inverseFloat }
                }
            case .layer(let epsilon):
                var sum = 0.0
                for index in 0..<dim { sum += Double(input[index]) }
                let mean = sum / count
                var squares = 0.0
                for index in 0..<dim {
                    let centered = Double(input[index]) - mean
                    squares += centered * centered
                }
                let inverse = 1.0 / (squares / count + Double(epsilon)).squareRoot()
                var meanG = 0.0
                var meanGX = 0.0
                for index in 0..<dim {
                    let g = Double(weight[index] * gradient[index])
                    let normalized = (Double(input[index]) - mean) * inverse
                    meanG += g
                    meanGX += g * normalized
                }
                meanG /= count
                meanGX /= count
                for index in 0..<dim {
                    let normalized = (Double(input[index]) - mean) * inverse
                    let g = Double(weight[index] * gradient[index])
                    output[index] += Float(inverse * (g - meanG - normalized * meanGX))
                    if let weightGradient { weightGradient[index] += gradient[index] * Float(normalized) }
                }
                if let biasGradient {
                    for index in 0..<dim { biasGradient[index] += gradient[index] }
                }
            }
        }
    }
}
