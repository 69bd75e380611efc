import CBLAS
import CKernels
import Foundation

/// Linear layers over bfloat16 weights with float32 inputs, products and accumulation (the opt-in
/// `DecoderModel.withBFloat16Weights()`): half the weight bytes per token, which is what decoding is bound by.
///
/// Only the weights are rounded (to 8 significant bits); activations stay float32 and every sum is float32, so the
/// result is the float32 forward of a model whose weights were rounded to bfloat16.
public enum BFloat16Kernels {
    /// `y (rows, out) = alpha · x (rows, in) · Wᵀ + beta · y` for `W` (out, in) in bfloat16, row stride `inFeatures`.
    /// `x` has row stride `ldx`, `y` row stride `ldy`.
    ///
    /// One row (decoding) is a matrix-vector product read straight from the bfloat16 bytes, split over the cores in
    /// row blocks. Several rows widen blocks of about 1 MB of `W` to float32 and hand each to sgemm (one share of the
    /// rows per core): the widening is linear in the weights while the GEMM is linear in weights × rows, so it
    /// disappears for prefill and scoring.
    @inlinable
    public static func forward(weight: UnsafePointer<UInt16>, outFeatures: Int, inFeatures: Int, x: UnsafePointer<Float>, rows: Int,
                               ldx: Int, into y: UnsafeMutablePointer<Float>, ldy: Int, alpha: Float, beta: Float) {
        guard rows > 0, outFeatures > 0 else { return }
        if rows == 1 {
            MatrixVectorKernels.multiply(weight, rows: outFeatures, columns: inFeatures, x: x, alpha: alpha, beta: beta, y: y)
            return
        }
        // Each part widens its own share of W's rows, block by block, and runs single-threaded sgemm on it: the
        // widening is spread over the cores too, and no GEMM is small enough to hand to OpenBLAS' threads.
        let parts = max(1, min(MatrixVectorKernels.threads, outFeatures / 16))
        var job = WideningJob(weight: weight, outFeatures: outFeatures, inFeatures: inFeatures, x: x, rows: rows, ldx: ldx, y: y, ldy: ldy,
                              alpha: alpha, beta: beta, partRows: ((outFeatures + parts - 1) / parts + 3) / 4 * 4)
        withSingleThreadedBLAS {
            withUnsafeMutablePointer(to: &job) { pointer in
                tc_parallel_for(Int32(parts), Int32(parts), { context, part in
                    context!.assumingMemoryBound(to: WideningJob.self).pointee.run(part: Int(part))
                }, pointer)
            }
        }
    }

    /// One `forward` over several rows, split by output rows (`partRows` per part).
    @usableFromInline
    struct WideningJob {
        let weight: UnsafePointer<UInt16>
        let outFeatures: Int, inFeatures: Int
        let x: UnsafePointer<Float>
        let rows: Int, ldx: Int
        let y: UnsafeMutablePointer<Float>
        let ldy: Int
        let alpha: Float, beta: Float
        let partRows: Int

        @usableFromInline
        init(weight: UnsafePointer<UInt16>, outFeatures: Int, inFeatures: Int, x: UnsafePointer<Float>, rows: Int, ldx: Int,
             y: UnsafeMutablePointer<Float>, ldy: Int, alpha: Float, beta: Float, partRows: Int) {
            self.weight = weight; self.outFeatures = outFeatures; self.inFeatures = inFeatures; self.x = x; self.rows = rows
            self.ldx = ldx; self.y = y; self.ldy = ldy; self.alpha = alpha; self.beta = beta; self.partRows = partRows
        }

        /// Widens ~1 MB blocks of this part's rows of W and multiplies each with sgemm.
        @usableFromInline
        func run(part: Int) {
            let first = part * partRows
            let end = min(outFeatures, first + partRows)
            guard first < end else { return }
            let blockRows = max(16, min(end - first, 262_144 / max(inFeatures, 1)))
            let block = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * inFeatures)
            defer { block.deallocate() }
            var start = first
            while start < end {
                let count = min(blockRows, end - start)
                tc_bf16_to_f32(weight + start * inFeatures, block, count * inFeatures)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(inFeatures), alpha, x, Int32(ldx),
                            block, Int32(inFeatures), beta, y + start, Int32(ldy))
                start += count
            }
        }
    }

    /// float32 values of `count` bfloat16 numbers (exact).
    public static func widen(_ source: UnsafePointer<UInt16>, count: Int, into target: UnsafeMutablePointer<Float>) {
        tc_bf16_to_f32(source, target, count)
    }

    /// bfloat16 copies (round to nearest even) of `count` floats.
    public static func round(_ source: UnsafePointer<Float>, count: Int, into target: UnsafeMutablePointer<UInt16>) {
        tc_f32_to_bf16(source, target, count)
    }
}

/// Owns the bfloat16 copies of a model's weights (one allocation).
final class BFloat16Arena: @unchecked Sendable {
    let storage: UnsafeMutablePointer<UInt16>
    let capacity: Int
    private var used = 0

    init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: max(capacity, 1))
    }

    deinit { storage.deallocate() }

    /// A bfloat16 copy (rounded to nearest even) of `matrix`, carved from the arena; float16 weights are widened a
    /// chunk at a time first.
    func copy(_ matrix: WeightMatrix) -> UnsafePointer<UInt16> {
        let count = matrix.count
        precondition(used + count <= capacity, "bfloat16 arena sized too small")
        let target = storage + used
        if let values = matrix.float32 {
            BFloat16Kernels.round(values, count: count, into: target)
        } else {
            let chunk = 1 << 16
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
            defer { scratch.deallocate() }
            var start = 0
            while start < count {
                let end = min(count, start + chunk)
                matrix.widen(elements: start..<end, into: scratch)
                BFloat16Kernels.round(scratch, count: end - start, into: target + start)
                start = end
            }
        }
        used += count
        return UnsafePointer(target)
    }
}

extension DecoderModel {
    /// The same model with every `(out, in)` linear layer of the blocks and the output projection kept as a bfloat16
    /// copy (weights stored in bfloat16 are already read that way, in place, and get none), used for inference in their place (see `BFloat16Kernels`). Off unless asked for: log-probs move by the
    /// bfloat16 rounding of the weights (FastPathTests states the tolerance). Training keeps using float32 weights.
    public func withBFloat16Weights() -> DecoderModel {
        var total = spec.vocabularySize * spec.hiddenSize  // an upper bound: skipped matrices leave their share unused
        for layer in weights.layers {
            for linear in layer.linears where linear.layout == .outIn { total += linear.inFeatures * linear.outFeatures }
        }
        let arena = BFloat16Arena(capacity: total)
        var newWeights = weights
        for index in newWeights.layers.indices {
            newWeights.layers[index].updateLinears { linear in
                guard linear.layout == .outIn, Self.roundsToBFloat16(linear.weight) else { return }
                linear.weightBF16 = arena.copy(linear.weight)
            }
        }
        // Weights already stored in bfloat16 are read in place; float32 and float16 ones get a rounded copy.
        if Self.roundsToBFloat16(weights.outputProjection) {
            newWeights.outputProjectionBF16 = arena.copy(weights.outputProjection)
        }
        return DecoderModel(spec: spec, weights: newWeights, store: store, retained: retained + [arena])
    }

    /// Float32 and float16 weights get a bfloat16 copy; bfloat16 ones are already read that way, and quantized ones
    /// are smaller as stored than any copy (and rounding their dequantized values would change the model).
    static func roundsToBFloat16(_ weight: WeightMatrix) -> Bool {
        weight.storage == .float32 || weight.storage == .float16
    }
}
