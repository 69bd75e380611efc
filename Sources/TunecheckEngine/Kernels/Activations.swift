import Foundation

/// The `hidden_act` / `activation_function` values of the supported configs.
public enum Activation: String, Sendable {
    case silu
    /// tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast` differ only in how the constant is written).
    case geluTanh
    /// exact erf GELU (`gelu`).
    case gelu
    case relu

    public init?(configName: String) {
        switch configName {
        case "silu", "swish": self = .silu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        case "gelu": self = .gelu
        case "relu": self = .relu
        default: return nil
        }
    }
}

enum ActivationKernels {
    /// In place on `x` (rows, dim) with row stride `ld`.
    static func forward(_ activation: Activation, _ x: UnsafeMutablePointer<Float>, rows: Int, dim: Int, ld: Int) {
        for row in 0..<rows {
            let values = x + row * ld
            switch activation {
            case .silu:
                for index in 0..<dim { values[index] = silu(values[index]) }
            case .geluTanh:
                for index in 0..<dim { values[index] = geluTanh(values[index]) }
            case .gelu:
                for index in 0..<dim { values[index] = 0.5 * values[index] * (1 + erf(values[index] / 2.0.squareRoot().float)) }
            case .relu:
                for index in 0..<dim { values[index] = max(values[index], 0) }
            }
        }
    }

    /// Gated MLP: `gate ← act(gate) ⊙ up`. `gate` and `up` are (rows, dim) with row stride `ld` (they are the two
    /// halves of one (rows, 2·dim) buffer).
    static func gatedForward(_ activation: Activation, gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, rows: Int, dim: Int, ld: Int) {
        forward(activation, gate, rows: rows, dim: dim, ld: ld)
        for row in 0..<rows {
            let gateRow = gate + row * ld
            let upRow = up + row * ld
            for index in 0..<dim { gateRow[index] *= upRow[index] }
        }
    }

    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    @inline(__always) static func geluTanh(_ x: Float) -> Float {
        let inner: Float = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + tanh(inner))
    }
}

extension Double {
    var float: Float { Float(self) }
}
