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
    /// `y = act(x)`. `x` and `y` are (rows, dim) with row strides `ldx` and `ldy`; `y` may alias `x`.
    static func forward(_ activation: Activation, _ x: UnsafePointer<Float>, rows: Int, dim: Int, ldx: Int,
                        into y: UnsafeMutablePointer<Float>, ldy: Int) {
        for row in 0..<rows {
            let input = x + row * ldx
            let output = y + row * ldy
            switch activation {
            case .silu:
                for index in 0..<dim { output[index] = silu(input[index]) }
            case .geluTanh:
                for index in 0..<dim { output[index] = geluTanh(input[index]) }
            case .gelu:
                for index in 0..<dim { output[index] = gelu(input[index]) }
            case .relu:
                for index in 0..<dim { output[index] = max(input[index], 0) }
            }
        }
    }

    /// Gated MLP: `y = act(gate) ⊙ up`. `gate` and `up` are (rows, dim) with row stride `ld` (the two halves of one
    /// (rows, 2·dim) buffer); `y` is (rows, dim) with row stride `ldy` and may alias `gate`.
    static func gatedForward(_ activation: Activation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, dim: Int, ld: Int,
                             into y: UnsafeMutablePointer<Float>, ldy: Int) {
        forward(activation, gate, rows: rows, dim: dim, ldx: ld, into: y, ldy: ldy)
        for row in 0..<rows {
            let output = y + row * ldy
            let upRow = up + row * ld
            for index in 0..<dim { output[index] *= upRow[index] }
        }
    }

    /// Backward of `y = act(x)`: `dx = dy ⊙ act'(x)`. `dx` may alias `dy`.
    static func backward(_ activation: Activation, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int,
                         rows: Int, dim: Int, into dx: UnsafeMutablePointer<Float>, lddx: Int) {
        for row in 0..<rows {
            let input = x + row * ldx
            let gradient = dy + row * lddy
            let output = dx + row * lddx
            for index in 0..<dim { output[index] = gradient[index] * derivative(activation, input[index]) }
        }
    }

    /// Backward of `y = act(gate) ⊙ up`: `dgate = dy ⊙ up ⊙ act'(gate)`, `dup = dy ⊙ act(gate)`.
    /// `gate`/`up` and `dgate`/`dup` are halves of (rows, 2·dim) buffers with row stride `ld`; `dy` (rows, dim), stride `lddy`.
    static func gatedBackward(_ activation: Activation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, ld: Int,
                              dy: UnsafePointer<Float>, lddy: Int, rows: Int, dim: Int,
                              dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>) {
        for row in 0..<rows {
            let g = gate + row * ld, u = up + row * ld, gradient = dy + row * lddy
            let dg = dgate + row * ld, du = dup + row * ld
            for index in 0..<dim {
                let value = g[index]
                let upValue = u[index]
                let activated: Float
                switch activation {
                case .silu: activated = silu(value)
                case .geluTanh: activated = geluTanh(value)
                case .gelu: activated = gelu(value)
                case .relu: activated = max(value, 0)
                }
                dg[index] = gradient[index] * upValue * derivative(activation, value)
                du[index] = gradient[index] * activated
            }
        }
    }

    @inline(__always) static func derivative(_ activation: Activation, _ x: Float) -> Float {
        switch activation {
        case .silu:
            let sigmoid = 1 / (1 + exp(-x))
            return sigmoid * (1 + x * (1 - sigmoid))
        case .geluTanh:
            let c: Float = 0.7978845608028654
            let inner = c * (x + 0.044715 * x * x * x)
            let t = tanh(inner)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        case .gelu:
            let cdf = 0.5 * (1 + erf(x / Float(2.0.squareRoot())))
            let pdf = exp(-0.5 * x * x) / Float((2 * Double.pi).squareRoot())
            return cdf + x * pdf
        case .relu:
            return x > 0 ? 1 : 0
        }
    }

    @inline(__always) static func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erf(x / Float(2.0.squareRoot()))) }

    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    @inline(__always) static func geluTanh(_ x: Float) -> Float {
        let inner: Float = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + tanh(inner))
    }
}

extension Double {
    var float: Float { Float(self) }
}
