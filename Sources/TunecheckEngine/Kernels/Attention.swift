import CBLAS
import CKernels
import Foundation

/// Geometry of multi-head attention with grouped-query heads.
public struct AttentionShape: Sendable, Equatable {
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var queryDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }
    public var headsPerKVHead: Int { heads / kvHeads }
}

enum AttentionKernels {
    /// Causal softmax attention of one sequence's queries against its keys.
    ///
    /// Shapes: `queries` (length, heads·headDim), row stride `ldq`; query `i` sits at absolute position
    /// `queryStart + i`. `keys`/`values` (keyCount, kvHeads·headDim), row strides `ldk`/`ldv`; key `j` sits at
    /// position `j`. `output` (length, heads·headDim), row stride `ldo`. `scores` is scratch for
    /// length × keyCount floats. A query sees keys `j ≤ its position` (and, with a sliding `window`, `j > position − window`).
    static func causalForward(queries: UnsafePointer<Float>, ldq: Int, length: Int, queryStart: Int,
                              keys: UnsafePointer<Float>, ldk: Int, values: UnsafePointer<Float>, ldv: Int, keyCount: Int,
                              shape: AttentionShape, scale: Float, window: Int?,
                              scores: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, ldo: Int) {
        // Per-head GEMMs are small: one thread each (see withSingleThreadedBLAS).
        withSingleThreadedBLAS {
            causalForwardHeads(queries: queries, ldq: ldq, length: length, queryStart: queryStart, keys: keys, ldk: ldk, values: values, ldv: ldv,
                               keyCount: keyCount, shape: shape, scale: scale, window: window, scores: scores, output: output, ldo: ldo)
        }
    }

    private static func causalForwardHeads(queries: UnsafePointer<Float>, ldq: Int, length: Int, queryStart: Int,
                                           keys: UnsafePointer<Float>, ldk: Int, values: UnsafePointer<Float>, ldv: Int, keyCount: Int,
                                           shape: AttentionShape, scale: Float, window: Int?,
                                           scores: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, ldo: Int) {
        let headDim = shape.headDim
        for head in 0..<shape.heads {
            let kvHead = head / shape.headsPerKVHead
            if length == 1 {
                // One query (decoding): scores = scale · K_h · q, output = V_hᵀ · p as matrix-vector products, on this
                // thread (tiny; handing them to OpenBLAS' thread pool costs more than the products).
                tc_gemv_f32(keys + kvHead * headDim, keyCount, headDim, ldk, queries + head * headDim, scale, 0, scores)
                maskedSoftmax(scores, length: 1, keyCount: keyCount, queryStart: queryStart, window: window)
                tc_gemv_t_f32(values + kvHead * headDim, keyCount, headDim, ldv, scores, 1, output + head * headDim)
                continue
            }
            // Blocks of query rows, each against only the keys its last row can see: the causal square's upper
            // triangle is mostly skipped (T = 256: 37% fewer multiply-adds) instead of computed and masked.
            var blockStart = 0
            while blockStart < length {
                let blockLength = min(causalBlockRows, length - blockStart)
                let visible = min(keyCount, queryStart + blockStart + blockLength)
                // scores (blockLength, visible) = scale · Q_h[block] · K_h[..<visible]ᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(blockLength), Int32(visible), Int32(headDim),
                            scale, queries + blockStart * ldq + head * headDim, Int32(ldq), keys + kvHead * headDim, Int32(ldk),
                            0, scores, Int32(visible))
                maskedSoftmax(scores, length: blockLength, keyCount: visible, queryStart: queryStart + blockStart, window: window)
                // output_h[block] (blockLength, headDim) = P · V_h[..<visible]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(blockLength), Int32(headDim), Int32(visible),
                            1, scores, Int32(visible), values + kvHead * headDim, Int32(ldv),
                            0, output + blockStart * ldo + head * headDim, Int32(ldo))
                blockStart += blockLength
            }
        }
    }

    /// Query rows per block of the causal forward.
    static let causalBlockRows = 64

    /// Row-wise softmax over the visible keys of each query; invisible keys get probability 0.
    static func maskedSoftmax(_ scores: UnsafeMutablePointer<Float>, length: Int, keyCount: Int, queryStart: Int, window: Int?) {
        for row in 0..<length {
            let values = scores + row * keyCount
            let position = queryStart + row
            let last = min(position, keyCount - 1)
            let first = window.map { max(0, position - $0 + 1) } ?? 0
            var maximum = -Float.infinity
            for index in first...last { maximum = max(maximum, values[index]) }
            var sum: Float = 0
            for index in first...last {
                let weight = exp(values[index] - maximum)
                values[index] = weight
                sum += weight
            }
            let inverse = 1 / sum
            for index in 0..<first { values[index] = 0 }
            for index in first...last { values[index] *= inverse }
            if last + 1 < keyCount {
                for index in (last + 1)..<keyCount { values[index] = 0 }
            }
        }
    }

    /// Backward of `causalForward` for one sequence without a cache (training): probabilities are recomputed from
    /// Q and K rather than stored.
    ///
    /// Shapes: `qkv` (length, queryDim + 2·kvDim) stride `ld` holds the forward's rotated q, k and v;
    /// `dOutput` (length, queryDim) stride `lddo`; `dqkv` (length, queryDim + 2·kvDim) stride `ld` receives `+=`
    /// the gradients of q, k and v (k and v summed over the query heads of a group). `probabilities` and
    /// `dProbabilities` are scratch of length² floats each.
    static func causalBackward(qkv: UnsafePointer<Float>, ld: Int, length: Int, dOutput: UnsafePointer<Float>, lddo: Int,
                               shape: AttentionShape, scale: Float, window: Int?,
                               probabilities: UnsafeMutablePointer<Float>, dProbabilities: UnsafeMutablePointer<Float>,
                               dqkv: UnsafeMutablePointer<Float>) {
        withSingleThreadedBLAS {
            causalBackwardHeads(qkv: qkv, ld: ld, length: length, dOutput: dOutput, lddo: lddo, shape: shape, scale: scale, window: window,
                                probabilities: probabilities, dProbabilities: dProbabilities, dqkv: dqkv)
        }
    }

    private static func causalBackwardHeads(qkv: UnsafePointer<Float>, ld: Int, length: Int, dOutput: UnsafePointer<Float>, lddo: Int,
                                            shape: AttentionShape, scale: Float, window: Int?,
                                            probabilities: UnsafeMutablePointer<Float>, dProbabilities: UnsafeMutablePointer<Float>,
                                            dqkv: UnsafeMutablePointer<Float>) {
        let headDim = shape.headDim
        let n = Int32(length)
        for head in 0..<shape.heads {
            let kvHead = head / shape.headsPerKVHead
            let query = qkv + head * headDim
            let key = qkv + shape.queryDim + kvHead * headDim
            let value = qkv + shape.queryDim + shape.kvDim + kvHead * headDim
            let dQuery = dqkv + head * headDim
            let dKey = dqkv + shape.queryDim + kvHead * headDim
            let dValue = dqkv + shape.queryDim + shape.kvDim + kvHead * headDim
            let dOut = dOutput + head * headDim
            // P = softmax(scale · Q Kᵀ) with the causal mask.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, Int32(headDim), scale, query, Int32(ld), key, Int32(ld),
                        0, probabilities, n)
            maskedSoftmax(probabilities, length: length, keyCount: length, queryStart: 0, window: window)
            // dV += Pᵀ · dO
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, Int32(headDim), n, 1, probabilities, n, dOut, Int32(lddo),
                        1, dValue, Int32(ld))
            // dP = dO · Vᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, Int32(headDim), 1, dOut, Int32(lddo), value, Int32(ld),
                        0, dProbabilities, n)
            // dS = P ⊙ (dP − Σⱼ P·dP), in place in dProbabilities (masked entries have P = 0).
            for row in 0..<length {
                let p = probabilities + row * length
                let dp = dProbabilities + row * length
                var dot: Float = 0
                for column in 0..<length { dot += p[column] * dp[column] }
                for column in 0..<length { dp[column] = p[column] * (dp[column] - dot) }
            }
            // dQ += scale · dS · K ; dK += scale · dSᵀ · Q
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, Int32(headDim), n, scale, dProbabilities, n, key, Int32(ld),
                        1, dQuery, Int32(ld))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, Int32(headDim), n, scale, dProbabilities, n, query, Int32(ld),
                        1, dKey, Int32(ld))
        }
    }
}
