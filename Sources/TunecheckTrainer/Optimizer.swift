import Foundation
import TunecheckEngine

/// SGD, Adam and AdamW with PyTorch's semantics (bias-corrected moments; Adam's weight decay is L2 added to the
/// gradient, AdamW's is decoupled), updating the trainable tensors in place.
public final class Optimizer {
    public let name: TrainingConfiguration.OptimizerName
    let weightDecay: Double
    let beta1: Double
    let beta2: Double
    let epsilon: Double
    let momentum: Double
    /// First and second moments (Adam) or velocity (SGD with momentum), one buffer per tensor.
    private var first: [UnsafeMutablePointer<Float>] = []
    private var second: [UnsafeMutablePointer<Float>] = []
    public private(set) var step = 0

    public init(name: TrainingConfiguration.OptimizerName, settings: OptimizerSettings?, tensors: [TrainableTensor]) {
        self.name = name
        let defaultDecay = name == .adamw ? 0.01 : 0
        weightDecay = settings?.weightDecay ?? defaultDecay
        beta1 = settings?.betas?.first ?? 0.9
        beta2 = settings?.betas?.last ?? 0.999
        epsilon = settings?.eps ?? 1e-8
        momentum = settings?.momentum ?? 0
        for tensor in tensors {
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(tensor.count, 1))
            buffer.initialize(repeating: 0, count: max(tensor.count, 1))
            first.append(buffer)
            if name != .sgd {
                let second = UnsafeMutablePointer<Float>.allocate(capacity: max(tensor.count, 1))
                second.initialize(repeating: 0, count: max(tensor.count, 1))
                self.second.append(second)
            }
        }
    }

    deinit {
        first.forEach { $0.deallocate() }
        second.forEach { $0.deallocate() }
    }

    /// One update of every tensor with learning rate `rate`, from the gradients currently in the tensors.
    public func update(_ tensors: [TrainableTensor], rate: Double) {
        step += 1
        let lr = Float(rate)
        switch name {
        case .sgd:
            let decay = Float(weightDecay), mu = Float(momentum)
            for (index, tensor) in tensors.enumerated() {
                let values = tensor.values, gradient = tensor.gradient, velocity = first[index]
                for i in 0..<tensor.count {
                    var g = gradient[i] + decay * values[i]
                    if mu != 0 {
                        velocity[i] = step == 1 ? g : mu * velocity[i] + g
                        g = velocity[i]
                    }
                    values[i] -= lr * g
                }
            }
        case .adam, .adamw:
            let b1 = Float(beta1), b2 = Float(beta2), eps = Float(epsilon)
            let correction1 = Float(1 - pow(beta1, Double(step)))
            let correction2Root = Float((1 - pow(beta2, Double(step))).squareRoot())
            let stepSize = lr / correction1
            let decoupled = name == .adamw
            let decay = Float(weightDecay)
            for (index, tensor) in tensors.enumerated() {
                let values = tensor.values, gradient = tensor.gradient, m = first[index], v = second[index]
                for i in 0..<tensor.count {
                    var g = gradient[i]
                    if decoupled {
                        values[i] *= 1 - lr * decay
                    } else if decay != 0 {
                        g += decay * values[i]
                    }
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    values[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2Root + eps)
                }
            }
        }
    }
}

/// Scales all gradients by `min(1, maximum / (norm + 1e-6))`, exactly as `torch.nn.utils.clip_grad_norm_`;
/// returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: TrainableParameters, maximum: Double) -> Double {
    let norm = parameters.gradientNorm()
    let coefficient = maximum / (norm + 1e-6)
    if coefficient < 1, norm.isFinite {
        let factor = Float(coefficient)
        for tensor in parameters.tensors {
            for index in 0..<tensor.count { tensor.gradient[index] *= factor }
        }
    }
    return norm
}
