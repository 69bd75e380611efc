import CKernels
import Foundation

/// Matrix-vector products for decoding (one token: every linear layer is `W·x`), on the engine's own threads.
///
/// Decoding reads every weight once per token and is bound by memory bandwidth, not arithmetic. OpenBLAS' sgemv
/// hands each call to its thread pool, whose idle threads spin and `sched_yield`; at ~85 calls per token that hand-off
/// cost more than the products (and on a busy machine it collapsed: 2 tokens/s for stories110M). Here a call is split
/// into one row block per thread on the C pool's workers and each block runs the C kernel (AVX-512 when the CPU has it).
public enum MatrixVectorKernels {
    /// Threads for one product: `OPENBLAS_NUM_THREADS` when set, else the active cores. Set it (before running
    /// passes) to compare against the single-threaded path; results do not depend on it (each row is summed by one
    /// thread in the same order).
    nonisolated(unsafe) public static var threads: Int = {
        let environment = ProcessInfo.processInfo.environment
        if let value = environment["OPENBLAS_NUM_THREADS"].flatMap(Int.init), value >= 1 { return value }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Below this many weights a product stays on the calling thread. Handing a block to a spinning pool worker costs
    /// about a microsecond, so even stories15M's 288×288 projections (83k weights) are worth splitting: left on one
    /// thread they cost s15m decoding a sixth of its speed.
    static let parallelThreshold = 16_384

    /// `y (rows) = alpha · W x + beta · y` for `W` (rows, columns) float32 with row stride `columns`.
    /// `parts` overrides the number of row blocks (tests compare 1 with several).
    public static func multiply(_ weight: UnsafePointer<Float>, rows: Int, columns: Int, x: UnsafePointer<Float>, alpha: Float, beta: Float,
                                y: UnsafeMutablePointer<Float>, parts: Int? = nil) {
        guard rows > 0 else { return }
        tc_gemv_f32_parallel(weight, rows, columns, columns, x, alpha, beta, y, Int32(partCount(rows: rows, columns: columns, requested: parts)))
    }

    /// The same for `W` in bfloat16 (float32 products and sums).
    public static func multiply(_ weight: UnsafePointer<UInt16>, rows: Int, columns: Int, x: UnsafePointer<Float>, alpha: Float, beta: Float,
                                y: UnsafeMutablePointer<Float>, parts: Int? = nil) {
        guard rows > 0 else { return }
        tc_gemv_bf16_parallel(weight, rows, columns, columns, x, alpha, beta, y, Int32(partCount(rows: rows, columns: columns, requested: parts)))
    }

    /// Threads for one product: all of them for large products, one otherwise. The C side cuts the rows into blocks of
    /// a multiple of 4 (the kernel's unroll), one per thread or several for large matrices. The blocks run on
    /// `tc_parallel_for`'s persistent workers (C, Sources/CKernels/pool.c), which spin briefly between calls: the ~85
    /// products of a decoding step come faster than a sleeping thread wakes up.
    static func partCount(rows: Int, columns: Int, requested: Int?) -> Int {
        max(1, min(requested ?? (rows * columns >= parallelThreshold ? min(threads, rows / 16) : 1), (rows + 3) / 4))
    }
}
