import CBLAS
import CKernels
import Foundation

/// How a weight matrix is stored. Products read every kind in place (widened to float32 a panel at a time, or
/// converted in registers by the decoding GEMV); activations and sums stay float32.
public enum WeightStorage: Sendable, Equatable {
    case float32, bfloat16, float16
    /// mlx's affine quantization (`AffineQuantization`): `base` points at the packed uint32 codes.
    case affine(AffineQuantization)

    /// The C kernels' element type (TC_F32 / TC_BF16 / TC_F16); affine matrices have their own kernels.
    var kernelKind: Int32 {
        switch self {
        case .float32: return Int32(TC_F32)
        case .bfloat16: return Int32(TC_BF16)
        case .float16: return Int32(TC_F16)
        case .affine: preconditionFailure("affine weights have no element kind")
        }
    }

    /// Bytes of one stored element: 4, 2, 2, and for affine matrices one uint32 word of packed codes (the alignment
    /// the kernels need).
    public var byteSize: Int {
        switch self {
        case .float32, .affine: return 4
        case .bfloat16, .float16: return 2
        }
    }

    /// Whether the values are rounded to a few bits per weight (mlx affine quantization).
    public var isQuantized: Bool {
        if case .affine = self { return true }
        return false
    }

    init?(_ dtype: DType) {
        switch dtype {
        case .float32: self = .float32
        case .bfloat16: self = .bfloat16
        case .float16: self = .float16
        default: return nil
        }
    }
}

/// mlx affine quantization of a (rows, columns) weight, as `mx.quantize` / `mlx_lm.convert -q` write it
/// (docs/quantized-weights.md): `P.weight` holds (rows, columns·bits/32) uint32 words, each row one little-endian bit
/// stream of its `bits`-bit codes q (code c at bits [c·bits, (c+1)·bits), so 3-, 5- and 6-bit codes straddle words);
/// `P.scales` and `P.biases` are (rows, columns/groupSize) in the model's float dtype; the weight is
/// w[r][c] = scales[r][g] · q[r][c] + biases[r][g] with g = c / groupSize, computed in float32.
public struct AffineQuantization: @unchecked Sendable, Equatable {
    /// Bits per code: 2, 3, 4, 5, 6 or 8.
    public let bits: Int
    /// Codes sharing one scale and bias: 32, 64 or 128 (divides `columns`).
    public let groupSize: Int
    /// (rows, columns / groupSize) scales, element type `scaleType`. Like the packed codes, at any byte offset: mlx's
    /// safetensors writer does not pad its header, so its tensors are often misaligned; the C kernels copy as they read.
    public let scales: UnsafeRawPointer
    /// (rows, columns / groupSize) biases, element type `scaleType`.
    public let biases: UnsafeRawPointer
    /// F32, BF16 or F16 (scales and biases share it).
    public let scaleType: DType

    public static let supportedBits: Set<Int> = [2, 3, 4, 5, 6, 8]
    public static let supportedGroupSizes: Set<Int> = [32, 64, 128]

    public init(bits: Int, groupSize: Int, scales: UnsafeRawPointer, biases: UnsafeRawPointer, scaleType: DType) {
        self.bits = bits
        self.groupSize = groupSize
        self.scales = scales
        self.biases = biases
        self.scaleType = scaleType
    }

    var scaleKind: Int32 { WeightStorage(scaleType)!.kernelKind }
}

/// A row-major (rows, columns) weight matrix in its stored dtype, usually straight in the memory-mapped safetensors
/// file (never copied to float32 as a whole: a 3B bfloat16 model stays 6.4 GB of page cache instead of 12.8 GB of
/// anonymous memory). For a tensor of more than two dimensions, `columns` is the product of the trailing ones.
///
/// The memory belongs to whoever made it (`WeightStore`, an arena) and must outlive every copy of this value.
public struct WeightMatrix: @unchecked Sendable {
    public let storage: WeightStorage
    public let base: UnsafeRawPointer
    public let rows: Int
    public let columns: Int

    public init(storage: WeightStorage, base: UnsafeRawPointer, rows: Int, columns: Int) {
        self.storage = storage
        self.base = base
        self.rows = rows
        self.columns = columns
    }

    /// A float32 matrix (`pointer` must be 4-byte aligned).
    public init(_ pointer: UnsafePointer<Float>, rows: Int, columns: Int) {
        self.init(storage: .float32, base: UnsafeRawPointer(pointer), rows: rows, columns: columns)
    }

    /// A quantized matrix: `packed` is the (rows, columns·bits/32) uint32 words of `quantization`'s codes; `rows` and
    /// `columns` are the logical (dequantized) shape.
    public init(affine quantization: AffineQuantization, packed: UnsafeRawPointer, rows: Int, columns: Int) {
        self.init(storage: .affine(quantization), base: packed, rows: rows, columns: columns)
    }

    /// Logical values (rows × columns), also for quantized matrices.
    public var count: Int { rows * columns }

    /// Bytes as stored: values, or for a quantized matrix packed codes + scales + biases.
    public var byteCount: Int {
        guard let quantization else { return count * storage.byteSize }
        return count * quantization.bits / 8 + 2 * rows * (columns / quantization.groupSize) * quantization.scaleType.byteSize
    }

    /// The float32 values in place, when stored as float32 (nil for bfloat16/float16/quantized).
    public var float32: UnsafePointer<Float>? {
        storage == .float32 ? base.assumingMemoryBound(to: Float.self) : nil
    }

    /// The quantization parameters of an affine-quantized matrix (nil for float matrices).
    public var quantization: AffineQuantization? {
        if case .affine(let quantization) = storage { return quantization }
        return nil
    }

    /// The C kernels' view of a quantized matrix.
    var affineKernelMatrix: tc_affine_matrix {
        let quantization = quantization!
        return tc_affine_matrix(packed: base, scales: quantization.scales, biases: quantization.biases,
                                rows: rows, cols: columns, bits: Int32(quantization.bits), group_size: Int32(quantization.groupSize),
                                scale_kind: quantization.scaleKind)
    }

    /// Rows `range` as a matrix of their own, a view into the same memory (no copy). For a quantized matrix the codes,
    /// scales and biases are offset alike: a row is `columns·bits/32` words and `columns/groupSize` scales and biases.
    /// Routed experts stored as one 3-D tensor (E, R, C) are viewed as (E·R, C) and sliced expert by expert with it.
    public func rows(_ range: Range<Int>) -> WeightMatrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) of a (\(rows), \(columns)) matrix")
        guard let quantization else {
            return WeightMatrix(storage: storage, base: base + range.lowerBound * columns * storage.byteSize, rows: range.count, columns: columns)
        }
        let groupBytes = range.lowerBound * (columns / quantization.groupSize) * quantization.scaleType.byteSize
        let slice = AffineQuantization(bits: quantization.bits, groupSize: quantization.groupSize, scales: quantization.scales + groupBytes,
                                       biases: quantization.biases + groupBytes, scaleType: quantization.scaleType)
        return WeightMatrix(affine: slice, packed: base + range.lowerBound * columns * quantization.bits / 8, rows: range.count, columns: columns)
    }

    /// The raw 16-bit values (bfloat16 or float16 bits), when stored in a half type. Only handed to the C kernels, which
    /// read them at any alignment (a tensor in an mlx-written file may start at an odd address); never dereferenced here.
    var halves: UnsafePointer<UInt16> { base.assumingMemoryBound(to: UInt16.self) }

    /// Element `index` (row-major) as float32. For occasional reads (norms of a whole tensor use `widen`).
    public subscript(index: Int) -> Float {
        switch storage {
        case .float32: return base.load(fromByteOffset: index * 4, as: Float.self)
        case .bfloat16: return Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)) << 16)
        case .float16: return Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
        case .affine:
            var value: Float = 0
            var matrix = affineKernelMatrix
            tc_dequantize_block(&matrix, index / columns, 1, index % columns, 1, &value)
            return value
        }
    }

    /// Widens rows `rowRange`, columns `columnRange` into `target` (row stride `columnRange.count`). Exact.
    /// A quantized matrix is dequantized (scale · q + bias in float32, as mlx does).
    public func widen(rows rowRange: Range<Int>, columns columnRange: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        guard !rowRange.isEmpty, !columnRange.isEmpty else { return }
        if storage.isQuantized {
            var matrix = affineKernelMatrix
            tc_dequantize_block(&matrix, rowRange.lowerBound, rowRange.count, columnRange.lowerBound, columnRange.count, target)
            return
        }
        let start = base + (rowRange.lowerBound * columns + columnRange.lowerBound) * storage.byteSize
        tc_widen_block(start, storage.kernelKind, columns, rowRange.count, columnRange.count, target)
    }

    /// Elements `range` (row-major) widened into `target`.
    public func widen(elements range: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        guard !range.isEmpty else { return }
        if storage.isQuantized {
            // Row by row: a leading partial row, whole rows, a trailing partial row.
            var index = range.lowerBound
            while index < range.upperBound {
                let row = index / columns, column = index % columns
                let end = min(range.upperBound, (row + 1) * columns)
                widen(rows: row..<(row + 1), columns: column..<(column + end - index), into: target + (index - range.lowerBound))
                index = end
            }
            return
        }
        tc_widen_block(base + range.lowerBound * storage.byteSize, storage.kernelKind, range.count, 1, range.count, target)
    }

    /// Row `row` as float32 into `target` (`columns` values): embedding lookups.
    public func copyRow(_ row: Int, into target: UnsafeMutablePointer<Float>) {
        widen(rows: row..<(row + 1), columns: 0..<columns, into: target)
    }

    /// Whether every value is finite, scanned on the engine's threads (a 6.4 GB model in well under a second when
    /// it is in the page cache).
    /// A quantized matrix's codes are integers: its scales and biases are scanned.
    public func allFinite() -> Bool {
        if storage.isQuantized {
            var matrix = affineKernelMatrix
            return tc_affine_scales_finite(&matrix) != 0
        }
        return tc_all_finite(base, storage.kernelKind, count, Int32(MatrixVectorKernels.threads)) != 0
    }

    /// `Σ w²` in float64, a chunk at a time (no widened copy of the matrix).
    public func sumOfSquares() -> Double {
        if let values = float32 { return cblas_dsdot(Int32(count), values, 1, values, 1) }
        let chunk = 1 << 16
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        defer { scratch.deallocate() }
        var total = 0.0
        var start = 0
        while start < count {
            let end = min(count, start + chunk)
            widen(elements: start..<end, into: scratch)
            total += cblas_dsdot(Int32(end - start), scratch, 1, scratch, 1)
            start = end
        }
        return total
    }
}

/// Products with a `WeightMatrix` in any stored dtype; float32 weights go to sgemm / the float32 GEMV directly.
///
/// Several rows (prefill, scoring, training) widen the weights a panel at a time into a per-thread buffer of
/// about 4 MB and multiply each panel with single-threaded sgemm, the panels split over the engine's
/// threads: the widening is linear in the weights while the product is linear in weights × rows, so it vanishes
/// beside the arithmetic, and products and sums stay float32 (exactly the float32 forward of the stored values).
/// One row (decoding) is a GEMV reading the 16-bit values directly (AVX-512 conversion in registers), or for a
/// quantized matrix the packed codes (`tc_gemv_affine_parallel`).
public enum WeightProducts {
    /// Floats per widened panel (4 MB). sgemm re-packs the activations for every panel, so a panel must span enough
    /// output columns (341 rows of a 3072-wide weight) for that to vanish beside the product: with 1 MB panels (85
    /// rows) the packing took ~10% of an l3b scoring pass. `TUNECHECK_PANEL_FLOATS` overrides it (measurements).
    nonisolated(unsafe) static var panelFloats: Int = {
        ProcessInfo.processInfo.environment["TUNECHECK_PANEL_FLOATS"].flatMap(Int.init).map { max($0, 4096) } ?? 1 << 20
    }()

    /// `y (rows, n) = alpha · x (rows, k) · Wᵀ + beta · y` for `W` stored (n, k): a linear layer's `(out, in)`
    /// weight in the forward pass, or an `(in, out)` weight in the input-gradient pass.
    /// `x` has row stride `ldx`, `y` row stride `ldy`.
    public static func multiplyTransposed(_ weight: WeightMatrix, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                                          into y: UnsafeMutablePointer<Float>, ldy: Int, alpha: Float, beta: Float) {
        let n = weight.rows, k = weight.columns
        guard rows > 0, n > 0 else { return }
        if let values = weight.float32 {
            if rows == 1 {
                MatrixVectorKernels.multiply(values, rows: n, columns: k, x: x, alpha: alpha, beta: beta, y: y)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k), alpha, x, Int32(ldx),
                            values, Int32(k), beta, y, Int32(ldy))
            }
            return
        }
        if rows == 1 {
            MatrixVectorKernels.multiply(weight, x: x, alpha: alpha, beta: beta, y: y)
            return
        }
        run(PanelJob(weight: weight, mode: .rowsAreOutputs, x: x, rows: rows, ldx: ldx, y: y, ldy: ldy, alpha: alpha, beta: beta))
    }

    /// `y (rows, n) = alpha · x (rows, k) · W + beta · y` for `W` stored (k, n): a GPT-2 `(in, out)` weight in the
    /// forward pass, or an `(out, in)` weight (and the tied output projection) in the input-gradient pass.
    public static func multiply(_ weight: WeightMatrix, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                                into y: UnsafeMutablePointer<Float>, ldy: Int, alpha: Float, beta: Float) {
        let k = weight.rows, n = weight.columns
        guard rows > 0, n > 0 else { return }
        if let values = weight.float32 {
            if rows == 1 {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, values, Int32(n), x, 1, beta, y, 1)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(k), alpha, x, Int32(ldx),
                            values, Int32(n), beta, y, Int32(ldy))
            }
            return
        }
        run(PanelJob(weight: weight, mode: .rowsAreReduction, x: x, rows: rows, ldx: ldx, y: y, ldy: ldy, alpha: alpha, beta: beta))
    }

    /// Splits `job` over the engine's threads, or runs it on this thread when OpenBLAS is single-threaded (inside a
    /// data-parallel split of the batch, where every core already has its own share of the sequences).
    ///
    /// The panels are a fixed grid of the weight matrix (their bounds depend on its shape only) and parts take whole
    /// panels, so the numbers do not depend on how many threads run them: sgemm's edge kernels sum in another order
    /// for other widths, and the thread count is global state that other work changes (a run that split differently
    /// moved log-probs in the 7th digit).
    private static func run(_ job: PanelJob) {
        let available = openblas_get_num_threads() == 1 ? 1 : MatrixVectorKernels.threads
        let parts = max(1, min(available, job.tileCount))
        if parts == 1 {
            withSingleThreadedBLAS { job.run(tiles: 0..<job.tileCount) }
            return
        }
        var job = job
        job.parts = parts
        withSingleThreadedBLAS {
            withUnsafeMutablePointer(to: &job) { pointer in
                tc_parallel_for(Int32(parts), Int32(parts), { context, part in
                    let job = context!.assumingMemoryBound(to: PanelJob.self).pointee
                    let first = Int(part) * job.tileCount / job.parts, end = (Int(part) + 1) * job.tileCount / job.parts
                    job.run(tiles: first..<end)
                }, pointer)
            }
        }
    }

    /// One product over widened panels, split over parts by output columns, in tiles of fixed width.
    struct PanelJob {
        enum Mode {
            /// W (n, k): y = x·Wᵀ. A tile is a block of W's rows (= output columns), widened whole.
            case rowsAreOutputs
            /// W (k, n): y = x·W. A tile is a block of `reductionTileWidth` of W's columns (= output columns); W's
            /// rows are walked in blocks, accumulating (the first block applies `beta`).
            case rowsAreReduction
        }
        static let reductionTileWidth = 512
        let weight: WeightMatrix
        let mode: Mode
        let x: UnsafePointer<Float>
        let rows: Int, ldx: Int
        let y: UnsafeMutablePointer<Float>
        let ldy: Int
        let alpha: Float, beta: Float
        var parts = 1

        init(weight: WeightMatrix, mode: Mode, x: UnsafePointer<Float>, rows: Int, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
             alpha: Float, beta: Float) {
            self.weight = weight; self.mode = mode; self.x = x; self.rows = rows; self.ldx = ldx; self.y = y; self.ldy = ldy
            self.alpha = alpha; self.beta = beta
        }

        /// Output columns per tile.
        var tileWidth: Int {
            switch mode {
            case .rowsAreOutputs: return max(1, min(weight.rows, WeightProducts.panelFloats / max(weight.columns, 1)))
            case .rowsAreReduction: return min(weight.columns, Self.reductionTileWidth)
            }
        }

        /// Output columns: what the tiles cover.
        var outputColumns: Int { mode == .rowsAreOutputs ? weight.rows : weight.columns }

        var tileCount: Int { (outputColumns + tileWidth - 1) / tileWidth }

        func run(tiles: Range<Int>) {
            guard !tiles.isEmpty else { return }
            let panel = tc_thread_scratch(WeightProducts.panelFloats)!
            let width = tileWidth
            for tile in tiles {
                let first = tile * width
                let end = min(outputColumns, first + width)
                switch mode {
                case .rowsAreOutputs:
                    let k = weight.columns
                    weight.widen(rows: first..<end, columns: 0..<k, into: panel)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(end - first), Int32(k), alpha, x, Int32(ldx),
                                panel, Int32(k), beta, y + first, Int32(ldy))
                case .rowsAreReduction:
                    let k = weight.rows
                    let columns = end - first
                    let blockRows = max(1, min(k, WeightProducts.panelFloats / columns))
                    var start = 0
                    while start < k {
                        let count = min(blockRows, k - start)
                        weight.widen(rows: start..<(start + count), columns: first..<end, into: panel)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns), Int32(count), alpha,
                                    x + start, Int32(ldx), panel, Int32(columns), start == 0 ? beta : 1, y + first, Int32(ldy))
                        start += count
                    }
                }
            }
        }
    }
}

extension MatrixVectorKernels {
    /// `y (rows) = alpha · W x + beta · y` for `W` in any stored dtype, read in place.
    public static func multiply(_ weight: WeightMatrix, x: UnsafePointer<Float>, alpha: Float, beta: Float,
                                y: UnsafeMutablePointer<Float>, parts: Int? = nil) {
        switch weight.storage {
        case .float32:
            multiply(weight.float32!, rows: weight.rows, columns: weight.columns, x: x, alpha: alpha, beta: beta, y: y, parts: parts)
        case .bfloat16:
            multiply(weight.halves, rows: weight.rows, columns: weight.columns, x: x, alpha: alpha, beta: beta, y: y, parts: parts)
        case .float16:
            guard weight.rows > 0 else { return }
            tc_gemv_f16_parallel(weight.halves, weight.rows, weight.columns, weight.columns, x, alpha, beta, y,
                                 Int32(partCount(rows: weight.rows, columns: weight.columns, requested: parts)))
        case .affine:
            guard weight.rows > 0 else { return }
            var matrix = weight.affineKernelMatrix
            tc_gemv_affine_parallel(&matrix, x, alpha, beta, y, Int32(partCount(rows: weight.rows, columns: weight.columns, requested: parts)))
        }
    }

    /// The portable C loop of the quantized GEMV, on this thread, whatever the CPU has (tests compare it with the
    /// AVX2 path `multiply` takes).
    static func multiplyPortable(_ weight: WeightMatrix, x: UnsafePointer<Float>, alpha: Float, beta: Float, y: UnsafeMutablePointer<Float>) {
        var matrix = weight.affineKernelMatrix
        tc_gemv_affine_portable(&matrix, x, alpha, beta, y)
    }
}
