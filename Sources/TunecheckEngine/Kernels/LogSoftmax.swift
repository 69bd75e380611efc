import Foundation

/// Log-softmax pieces over a row of logits. Most time of scoring a large-vocabulary model outside the GEMMs is
/// spent here (one exp per vocabulary entry per token), so the exp is a branch-free polynomial over SIMD lanes
/// rather than a libm call per element.
enum LogSoftmaxKernels {
    /// `log Σ exp(x[i])` over `count` values, with max subtraction; accumulated in Double at the end.
    static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> (logSumExp: Double, maximum: Float) {
        let maximum = maximumValue(x, count: count)
        var vectorSum = SIMD8<Float>(repeating: 0)
        let shift = SIMD8<Float>(repeating: maximum)
        var index = 0
        let raw = UnsafeRawPointer(x)
        while index + 8 <= count {
            let values = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            vectorSum += exp8(values - shift)
            index += 8
        }
        var sum = Double(vectorSum.sum())
        while index < count {
            sum += Double(Foundation.exp(x[index] - maximum))
            index += 1
        }
        return (Double(maximum) + Foundation.log(sum), maximum)
    }

    static func maximumValue(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var vectorMaximum = SIMD8<Float>(repeating: -.infinity)
        var index = 0
        let raw = UnsafeRawPointer(x)
        while index + 8 <= count {
            vectorMaximum = pointwiseMax(vectorMaximum, raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self))
            index += 8
        }
        var maximum = vectorMaximum.max()
        while index < count {
            maximum = max(maximum, x[index])
            index += 1
        }
        return maximum
    }

    /// exp on 8 lanes: x = n·ln2 + r with |r| ≤ ln2/2, exp(r) by a degree-6 polynomial, 2ⁿ through the exponent
    /// bits. Relative error below 2e-7 over the range used (x ≤ 0 after max subtraction); inputs below −87 give ~0.
    @inline(__always)
    static func exp8(_ input: SIMD8<Float>) -> SIMD8<Float> {
        let x = pointwiseMax(pointwiseMin(input, SIMD8(repeating: 88.0)), SIMD8(repeating: -87.0))
        let n = (x * 1.442695040888963).rounded(.toNearestOrEven)
        var r = x - n * 0.693145751953125
        r = r - n * 1.428606765330187e-06
        var p = SIMD8<Float>(repeating: 1.0 / 720.0)
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        let exponentBits = (SIMD8<Int32>(n) &+ 127) &<< 23
        let bits = SIMD8<UInt32>(truncatingIfNeeded: exponentBits)
        return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
}
