import Foundation

/// How rotary frequencies are rescaled for long contexts (`rope_scaling` / `rope_parameters`).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// Position interpolation: every frequency divided by `factor`.
    case linear(factor: Double)
    /// Llama 3.1's band-wise rescaling.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Double)
}

/// Rotary position embedding as transformers computes it (`rotate_half` convention: dimension `i` pairs with
/// `i + rotaryDim/2`), applied to the first `rotaryDim` dimensions of each head.
public struct RotaryEmbedding: Sendable, Equatable {
    public var theta: Double
    public var rotaryDim: Int
    public var scaling: RopeScaling

    /// Inverse frequencies `(rotaryDim/2)`, in float32 exactly as transformers builds them
    /// (`1 / base^(arange(0, dim, 2) / dim)`, then the scaling rule).
    public func inverseFrequencies() -> [Float] {
        let half = rotaryDim / 2
        var frequencies = [Float](repeating: 0, count: half)
        let base = Float(theta)
        for index in 0..<half {
            let exponent = Float(2 * index) / Float(rotaryDim)
            frequencies[index] = 1 / powf(base, exponent)
        }
        switch scaling {
        case .none:
            break
        case .linear(let factor):
            for index in 0..<half { frequencies[index] /= Float(factor) }
        case let .llama3(factor, lowFactor, highFactor, originalMax):
            let lowFrequencyWavelength = Float(originalMax / lowFactor)
            let highFrequencyWavelength = Float(originalMax / highFactor)
            for index in 0..<half {
                let frequency = frequencies[index]
                let wavelength = 2 * Float.pi * (1 / frequency)
                if wavelength > lowFrequencyWavelength {
                    frequencies[index] = frequency / Float(factor)
                } else if wavelength >= highFrequencyWavelength {
                    let smooth = (Float(originalMax) / wavelength - Float(lowFactor)) / Float(highFactor - lowFactor)
                    frequencies[index] = (1 - smooth) * frequency / Float(factor) + smooth * frequency
                }
            }
        }
        return frequencies
    }

    /// Fills `cos` and `sin`, each (rows, rotaryDim/2), for the given absolute positions.
    func fillTables(positions: UnsafePointer<Int32>, rows: Int, inverseFrequencies: [Float],
                    cos cosTable: UnsafeMutablePointer<Float>, sin sinTable: UnsafeMutablePointer<Float>) {
        let half = rotaryDim / 2
        inverseFrequencies.withUnsafeBufferPointer { frequencies in
            for row in 0..<rows {
                let position = Float(positions[row])
                for index in 0..<half {
                    let angle = position * frequencies[index]
                    cosTable[row * half + index] = cos(angle)
                    sinTable[row * half + index] = sin(angle)
                }
            }
        }
    }
}

enum RotaryKernels {
    /// Rotates `heads` heads of `headDim` in each row of `x` (rows, ≥ heads·headDim) with row stride `ld`, in place.
    /// `cos`/`sin` are (rows, rotaryDim/2).
    static func forward(_ x: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int, headDim: Int, rotaryDim: Int,
                        cos cosTable: UnsafePointer<Float>, sin sinTable: UnsafePointer<Float>) {
        let half = rotaryDim / 2
        for row in 0..<rows {
            let cosRow = cosTable + row * half
            let sinRow = sinTable + row * half
            for head in 0..<heads {
                let vector = x + row * ld + head * headDim
                for index in 0..<half {
                    let first = vector[index]
                    let second = vector[index + half]
                    vector[index] = first * cosRow[index] - second * sinRow[index]
                    vector[index + half] = second * cosRow[index] + first * sinRow[index]
                }
            }
        }
    }

    /// Backward of `forward`: the rotation is orthogonal, so the gradient rotates back by −θ, in place.
    static func backward(_ dx: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int, headDim: Int, rotaryDim: Int,
                         cos cosTable: UnsafePointer<Float>, sin sinTable: UnsafePointer<Float>) {
        let half = rotaryDim / 2
        for row in 0..<rows {
            let cosRow = cosTable + row * half
            let sinRow = sinTable + row * half
            for head in 0..<heads {
                let vector = dx + row * ld + head * headDim
                for index in 0..<half {
                    let first = vector[index]
                    let second = vector[index + half]
                    vector[index] = first * cosRow[index] + second * sinRow[index]
                    vector[index + half] = second * cosRow[index] - first * sinRow[index]
                }
            }
        }
    }
}
