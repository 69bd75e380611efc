import CKernels
import Foundation

/// Log-softmax pieces over a row of logits. Most time of scoring a large-vocabulary model outside the GEMMs is
/// spent here (one exp per vocabulary entry per token), so the exp is a branch-free polynomial over SIMD lanes
/// rather than a libm call per element.
enum LogSoftmaxKernels {
    /// `log Σ exp(x[i])` over `count` values, with max subtraction; accumulated in Double at the end. The C kernel
    /// runs 16 lanes with fused multiply-adds on AVX-512 (Swift's SIMD8 compiles to the x86-64 baseline, SSE2, here).
    static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> (logSumExp: Double, maximum: Float) {
        var maximum: Float = 0
        let value = tc_log_sum_exp(x, count, &maximum)
        return (value, maximum)
    }

    /// `x[i] = scale · exp(x[i] − shift)` in place (softmax-gradient rows), with the vectorised exp.
    static func scaledExp(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float, scale: Float) {
        let shiftVector = SIMD8<Float>(repeating: shift)
        let scaleVector = SIMD8<Float>(repeating: scale)
        let raw = UnsafeMutableRawPointer(x)
        var index = 0
        while index + 8 <= count {
            let values = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: scaleVector * exp8(values - shiftVector), toByteOffset: index * 4, as: SIMD8<Float>.self)
            index += 8
        }
        while index < count {
            x[index] = scale * Foundation.exp(x[index] - shift)
            index += 1
        }
    }

    static func maximumValue(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var vectorMaximum = SIMD8<Float>(repeating: -.infinity)
        var index = 0
        let raw = UnsafeRawPointer(x)
        while index + 8 <= count {
            let values = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            vectorMaximum.replace(with: values, where: values .> vectorMaximum)
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
        var x = input
        x.replace(with: SIMD8(repeating: 88.0), where: x .> 88.0)
        x.replace(with: SIMD8(repeating: -87.0), where: x .< -87.0)
        // Round x·log2(e) to the nearest integer with the 1.5·2²³ trick: adding it pushes the fraction out of the
        // mantissa, and the integer is left in the low mantissa bits. Branch-free and vectorisable, unlike a
        // generic Float → Int32 conversion.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = x * 1.442695040888963 + magic
        let n = shifted - magic
        var r = x - n * 0.693145751953125
        r = r - n * 1.428606765330187e-06
        var p = SIMD8<Float>(repeating: 1.0 / 720.0)
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let bits = (integer &+ 127) &<< 23
        return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
}
