import CBLAS
import Foundation
import TunecheckJSON

/// What `AdapterFuser.fuse` wrote.
public struct FuseReport: Sendable {
    /// Weight tensors that received `ΔW`, in file order.
    public var fusedTensors: [String]
    /// Every tensor written (fused ones included).
    public var tensorCount: Int
    /// The safetensors files of the output folder.
    public var weightFiles: [String]
    /// Other files copied from the base folder (config, tokenizer, generation config, templates, ...).
    public var copiedFiles: [String]
    /// The dtype written, or nil when every tensor kept its stored dtype.
    public var dtype: DType?
}

/// Merges a LoRA adapter into its base model and writes a complete model folder that transformers, mlx_lm and
/// tunecheck load: `W' = W + scale·(lora_a·lora_b)ᵀ` (mlx_lm) = `W + scale·B·A` (PEFT) for `(out, in)` weights, and
/// the transpose for GPT-2's `Conv1D` weights stored `(in, out)`.
///
/// The merge happens in float32 on a copy of each adapted weight (one GEMM each, never a per-element loop over
/// `ΔW`), tensor by tensor as the output is streamed (peak memory about one tensor, not the model); every tensor
/// of the base is written, unchanged ones copied through: in its stored dtype by default
/// (bf16/f16 bases get bf16/f16 fused weights, as PEFT's `merge_and_unload` and `mlx_lm.fuse` do), or all in
/// `dtype`. The folder is built beside `output` and renamed into place, so a failure leaves nothing behind.
public enum AdapterFuser {
    /// Files in a model folder that hold weights in some other form; never copied (the fused safetensors replace them).
    static let weightFileSuffixes = [".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".pt", ".pth", ".ckpt",
                                     ".gguf", ".h5", ".msgpack", ".npz", ".onnx"]

    /// `dequantize` (mlx_lm.fuse's `--dequantize`) matters for an mlx affine-quantized base only: without it every
    /// fused layer is dequantized, merged and re-quantized with its own group size and bits (mlx's `mx.quantize`
    /// rounding, `QuantizedModel.quantize`), other tensors are copied byte for byte and config.json keeps its
    /// `quantization`; with it every quantized matrix is written as a float one (the scales' dtype, or `dtype`) and
    /// config.json loses `quantization` and `quantization_config`. As `mlx_lm.fuse` (LoRALinear.fuse): the dequantized
    /// weight and `scale·ΔW` are each rounded to the float dtype before they are added, and the sum is rounded again.
    @discardableResult
    public static func fuse(baseFolder: URL, adapter: Adapter, output: URL, dtype: DType? = nil, dequantize: Bool = false,
                            replacing: Bool = false) throws -> FuseReport {
        let base = baseFolder.standardizedFileURL
        let target = output.standardizedFileURL
        try checkOutput(target, base: base, adapter: adapter, replacing: replacing)

        // Attaching validates that every adapter module fits the base (names, layers, shapes) before anything is
        // written, and gives, per linear layer, the factors in a layout-aware form.
        let model = try adapter.attach(to: ModelLoader.loadDecoder(folder: base))
        let quantizedBase = model.spec.quantization != nil
        if quantizedBase, !dequantize, let dtype {
            throw EngineError.invalidInput("fuse: --dtype \(dtype.configName) on a quantized base needs --dequantize (the re-quantized "
                                           + "layers keep their scales' dtype, as mlx_lm.fuse writes them)")
        }
        var adapted: [String: (linear: Linear, adapter: LowRankAdapter)] = [:]
        for layer in model.weights.layers {
            for linear in layer.linears {
                if let lowRank = linear.adapter { adapted[linear.name + ".weight"] = (linear, lowRank) }
            }
        }
        let store = model.store
        for name in adapted.keys where !store.contains(name) {
            throw EngineError.missingTensor(path: base.path, name: name)
        }
        // Quantized modules `P` (P.weight packed, P.scales, P.biases), by module path.
        var quantized: [String: WeightMatrix] = [:]
        if quantizedBase {
            for name in store.tensorNames where name.hasSuffix(".weight") {
                let matrix = try store.weightMatrix(name)
                if matrix.quantization != nil { quantized[String(name.dropLast(".weight".count))] = matrix }
            }
        }
        func module(of name: String) -> String? {
            for suffix in [".weight", ".scales", ".biases"] where name.hasSuffix(suffix) {
                let path = String(name.dropLast(suffix.count))
                if quantized[path] != nil { return path }
            }
            return nil
        }

        // Tensors grouped by the base file they come from; the output keeps the base's file names and sharding.
        var byFile: [String: [String]] = [:]
        for name in store.tensorNames {
            guard let info = store.info(name) else { continue }
            guard info.dtype.isFloatWeight || module(of: name) != nil else {
                throw EngineError.unsupportedDType(path: store.path(of: name), name: name, dtype: info.dtype.rawValue)
            }
            byFile[URL(fileURLWithPath: store.path(of: name)).lastPathComponent, default: []].append(name)
        }
        let fileNames = byFile.keys.sorted()
        var report = FuseReport(fusedTensors: [], tensorCount: 0, weightFiles: fileNames, copiedFiles: [], dtype: dtype)
        var outputNames: [String: [String]] = [:]
        // A re-quantized fused module's codes, scales and biases, made when the first of its three tensors is written
        // (mlx orders them biases, scales, weight) and dropped after the last.
        var requantized: [String: (words: [UInt32], scales: [Float], biases: [Float], remaining: Int)] = [:]

        try AtomicWrite.writeDirectory(at: target, replacing: replacing) { staging in
            var totalBytes = 0
            for fileName in fileNames {
                var names = byFile[fileName]!.sorted {
                    (store.info($0)!.dataRange.lowerBound, $0) < (store.info($1)!.dataRange.lowerBound, $1)
                }
                var headers: [TensorHeader] = []
                if dequantize {
                    // Scales and biases go; a quantized weight becomes a float (rows, columns) one, or (E, rows, columns)
                    // for routed experts (their codes are (E, rows, words); the matrix views them as (E·rows, columns)).
                    names = names.filter { !(module(of: $0) != nil && !$0.hasSuffix(".weight")) }
                    for name in names {
                        if let path = module(of: name), let matrix = quantized[path] {
                            headers.append(TensorHeader(name: name, dtype: dtype ?? matrix.quantization!.scaleType,
                                                        shape: Array(store.info(name)!.shape.dropLast()) + [matrix.columns]))
                        } else {
                            headers.append(TensorHeader(name: name, dtype: dtype ?? store.info(name)!.dtype, shape: store.info(name)!.shape))
                        }
                    }
                } else {
                    headers = names.map {
                        let info = store.info($0)!
                        return TensorHeader(name: $0, dtype: module(of: $0) != nil ? info.dtype : dtype ?? info.dtype, shape: info.shape)
                    }
                }
                outputNames[fileName] = names
                // Streamed tensor by tensor: an adapted weight is widened, merged and checked in one float32 buffer that
                // is freed once written; every other tensor goes through in chunks (its stored bytes when the dtype
                // stays). Peak memory is about the largest adapted tensor, not the model.
                try SafeTensorsWriter.write(streaming: headers, metadata: ["format": quantizedBase ? "mlx" : "pt"],
                                            to: staging.appendingPathComponent(fileName)) { index, sink in
                    let name = names[index]
                    let header = headers[index]
                    let info = store.info(name)!
                    defer { totalBytes += header.shape.reduce(1, *) * header.dtype.byteSize }
                    if let path = module(of: name), let matrix = quantized[path] {
                        let quantization = matrix.quantization!
                        let weightName = path + ".weight"
                        if dequantize {
                            // Only the weight is left of the module here.
                            if let (linear, lowRank) = adapted[weightName] {
                                let merged = try mergedQuantized(matrix, linear: linear, adapter: lowRank, roundingTo: header.dtype,
                                                                 name: weightName, adapterPath: adapter.weightsURL.path)
                                defer { merged.deallocate() }
                                try sink.write(UnsafeBufferPointer(merged))
                                report.fusedTensors.append(weightName)
                            } else {
                                let values = dequantized(matrix, roundingTo: header.dtype)
                                defer { values.deallocate() }
                                try sink.write(UnsafeBufferPointer(values))
                            }
                        } else if let (linear, lowRank) = adapted[weightName] {
                            if requantized[path] == nil {
                                let merged = try mergedQuantized(matrix, linear: linear, adapter: lowRank, roundingTo: quantization.scaleType,
                                                                 name: weightName, adapterPath: adapter.weightsURL.path)
                                defer { merged.deallocate() }
                                var words: [UInt32] = []
                                words.reserveCapacity(matrix.rows * matrix.columns * quantization.bits / 32)
                                let (scales, biases) = try QuantizedModel.quantize(
                                    WeightMatrix(UnsafePointer(merged.baseAddress!), rows: matrix.rows, columns: matrix.columns),
                                    bits: quantization.bits, groupSize: quantization.groupSize) { block in
                                        words.append(contentsOf: block.bindMemory(to: UInt32.self))
                                    }
                                requantized[path] = (words, scales, biases, 3)
                                report.fusedTensors.append(weightName)
                            }
                            let parts = requantized[path]!
                            if name == weightName {
                                try parts.words.withUnsafeBytes { try sink.writeRaw($0) }
                            } else {
                                try (name.hasSuffix(".scales") ? parts.scales : parts.biases).withUnsafeBufferPointer { try sink.write($0) }
                            }
                            requantized[path]!.remaining -= 1
                            if requantized[path]!.remaining == 0 { requantized[path] = nil }
                        } else {
                            // Untouched quantized tensors: their stored bytes.
                            try sink.writeRaw(try store.rawBytes(of: name))
                        }
                        return
                    }
                    let matrix = try store.weightMatrix(name)
                    if let (linear, lowRank) = adapted[name] {
                        let merged = UnsafeMutableBufferPointer<Float>.allocate(capacity: matrix.count)
                        defer { merged.deallocate() }
                        matrix.widen(elements: 0..<matrix.count, into: merged.baseAddress!)
                        addDelta(lowRank, to: merged.baseAddress!, layout: linear.layout, inFeatures: linear.inFeatures,
                                 outFeatures: linear.outFeatures)
                        guard WeightMatrix(UnsafePointer(merged.baseAddress!), rows: 1, columns: merged.count).allFinite() else {
                            throw EngineError.nonFiniteWeights(path: adapter.weightsURL.path, name: name)
                        }
                        try sink.write(UnsafeBufferPointer(merged))
                        report.fusedTensors.append(name)
                    } else if header.dtype == info.dtype, matrix.storage == WeightStorage(info.dtype) {
                        try sink.writeRaw(UnsafeRawBufferPointer(start: matrix.base, count: matrix.byteCount))
                    } else {
                        try streamWidened(matrix, into: sink)
                    }
                }
                report.tensorCount += names.count
            }
            if FileManager.default.fileExists(atPath: base.appendingPathComponent("model.safetensors.index.json").path) {
                try writeIndex(byFile: outputNames, totalBytes: totalBytes, to: staging.appendingPathComponent("model.safetensors.index.json"))
            }
            report.copiedFiles = try copyOtherFiles(from: base, to: staging, dtype: dtype, removeQuantization: quantizedBase && dequantize)
        }
        return report
    }

    /// The fused float weight of a quantized module, as mlx_lm's `LoRALinear.fuse` computes it in the float dtype
    /// `dtype`: `round(dequantized(W) + round(scale·ΔW))` (`dequantized` below, `scale·ΔW` computed in float32), each
    /// step rounded to `dtype` (no-ops for float32). The caller deallocates the (rows, columns) buffer.
    static func mergedQuantized(_ matrix: WeightMatrix, linear: Linear, adapter: LowRankAdapter, roundingTo dtype: DType,
                                name: String, adapterPath: String) throws -> UnsafeMutableBufferPointer<Float> {
        let count = matrix.rows * matrix.columns
        let merged = dequantized(matrix, roundingTo: dtype)
        let delta = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { delta.deallocate() }
        delta.initialize(repeating: 0)
        addDelta(adapter, to: delta.baseAddress!, layout: linear.layout, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures)
        let round = roundingFunction(dtype)
        for index in 0..<count { merged[index] = round(merged[index] + round(delta[index])) }
        guard WeightMatrix(UnsafePointer(merged.baseAddress!), rows: 1, columns: count).allFinite() else {
            merged.deallocate()
            throw EngineError.nonFiniteWeights(path: adapterPath, name: name)
        }
        return merged
    }

    /// A quantized matrix dequantized as `mx.dequantize` does in a half dtype: `round(round(scale·q) + bias)`, the
    /// product and the sum each rounded to `dtype` (mlx computes in the scales' type; checked bit for bit against
    /// mlx_lm fuse --dequantize's bf16 output); for float32 the float32 `scale·q + bias` of the loader.
    /// The caller deallocates the (rows, columns) buffer.
    static func dequantized(_ matrix: WeightMatrix, roundingTo dtype: DType) -> UnsafeMutableBufferPointer<Float> {
        let count = matrix.rows * matrix.columns
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        guard dtype != .float32, let quantization = matrix.quantization else {
            matrix.widen(elements: 0..<count, into: values.baseAddress!)
            return values
        }
        // scale·q alone: the same codes and scales with zero biases (exact in float32: a half-precision scale times a
        // code of at most 8 bits), then the biases added per group.
        let groups = matrix.columns / quantization.groupSize
        let scaleBytes = quantization.scaleType.byteSize
        let zeros = UnsafeMutableRawPointer.allocate(byteCount: matrix.rows * groups * scaleBytes, alignment: 16)
        let biases = UnsafeMutablePointer<Float>.allocate(capacity: matrix.rows * groups)
        defer { zeros.deallocate(); biases.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0, count: matrix.rows * groups * scaleBytes)
        let products = WeightMatrix(affine: AffineQuantization(bits: quantization.bits, groupSize: quantization.groupSize, scales: quantization.scales,
                                                               biases: UnsafeRawPointer(zeros), scaleType: quantization.scaleType),
                                    packed: matrix.base, rows: matrix.rows, columns: matrix.columns)
        products.widen(elements: 0..<count, into: values.baseAddress!)
        WeightMatrix(storage: WeightStorage(quantization.scaleType)!, base: quantization.biases, rows: matrix.rows, columns: groups)
            .widen(elements: 0..<(matrix.rows * groups), into: biases)
        let round = roundingFunction(dtype)
        for row in 0..<matrix.rows {
            for column in 0..<matrix.columns {
                let index = row * matrix.columns + column
                values[index] = round(round(values[index]) + biases[row * groups + column / quantization.groupSize])
            }
        }
        return values
    }

    /// Rounds a float32 value to `dtype`'s nearest value (nearest even), kept in float32.
    static func roundingFunction(_ dtype: DType) -> (Float) -> Float {
        switch dtype {
        case .bfloat16: return { Float(bitPattern: UInt32(SafeTensorsWriter.bfloat16Bits($0)) << 16) }
        case .float16: return { Float(Float16($0)) }
        default: return { $0 }
        }
    }

    /// Writes `matrix` through `sink` a chunk of 1M values at a time (converted to the sink's dtype).
    static func streamWidened(_ matrix: WeightMatrix, into sink: TensorSink) throws {
        let chunk = 1 << 20
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        var start = 0
        while start < matrix.count {
            let end = min(matrix.count, start + chunk)
            matrix.widen(elements: start..<end, into: buffer)
            try sink.write(UnsafeBufferPointer(start: buffer, count: end - start))
            start = end
        }
    }

    /// `W += scale · ΔW₀` in place, one GEMM: for `(out, in)` storage `W += scale · Bᵀ·Aᵀ` in mlx_lm's terms
    /// (`A` (in, r), `B` (r, out)), i.e. PEFT's `scale · lora_B · lora_A`; for `(in, out)` storage `W += scale · A·B`.
    /// Each factor's own layout picks its transpose flag.
    static func addDelta(_ adapter: LowRankAdapter, to weight: UnsafeMutablePointer<Float>, layout: WeightLayout, inFeatures: Int, outFeatures: Int) {
        let rank = adapter.rank
        // Leading dimensions of the stored factors: down is (in, r) [.inOut] or (r, in) [.outIn]; up is (r, out) or (out, r).
        let lddown = Int32(adapter.downLayout == .inOut ? rank : inFeatures)
        let ldup = Int32(adapter.upLayout == .inOut ? outFeatures : rank)
        switch layout {
        case .outIn:
            // W (out, in) += scale · U (out, r) · D (r, in)
            cblas_sgemm(CblasRowMajor, adapter.upLayout == .outIn ? CblasNoTrans : CblasTrans,
                        adapter.downLayout == .outIn ? CblasNoTrans : CblasTrans,
                        Int32(outFeatures), Int32(inFeatures), Int32(rank), adapter.scale,
                        adapter.up, ldup, adapter.down, lddown, 1, weight, Int32(inFeatures))
        case .inOut:
            // W (in, out) += scale · D (in, r) · U (r, out)
            cblas_sgemm(CblasRowMajor, adapter.downLayout == .inOut ? CblasNoTrans : CblasTrans,
                        adapter.upLayout == .inOut ? CblasNoTrans : CblasTrans,
                        Int32(inFeatures), Int32(outFeatures), Int32(rank), adapter.scale,
                        adapter.down, lddown, adapter.up, ldup, 1, weight, Int32(outFeatures))
        }
    }

    static func checkOutput(_ target: URL, base: URL, adapter: Adapter, replacing: Bool) throws {
        let fileManager = FileManager.default
        let sources = [base, adapter.weightsURL.deletingLastPathComponent().standardizedFileURL]
        for source in sources where target.path == source.path || source.path.hasPrefix(target.path + "/") || target.path.hasPrefix(source.path + "/") {
            throw EngineError.writeFailed(path: target.path, reason: "the output folder must not be, contain or sit inside the model or adapter folder (\(source.path))")
        }
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: target.path, isDirectory: &isDirectory) {
            guard replacing else { throw EngineError.writeFailed(path: target.path, reason: "already exists (use --force to replace it)") }
            guard isDirectory.boolValue else { throw EngineError.writeFailed(path: target.path, reason: "exists and is not a folder") }
        }
        let parent = target.deletingLastPathComponent()
        guard fileManager.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EngineError.writeFailed(path: target.path, reason: "its parent folder \(parent.path) does not exist")
        }
    }

    static func writeIndex(byFile: [String: [String]], totalBytes: Int, to url: URL) throws {
        var fileOf: [String: String] = [:]
        for (file, names) in byFile { for name in names { fileOf[name] = file } }
        var weightMap = JSONObject()
        for name in fileOf.keys.sorted() { weightMap.set(name, .string(fileOf[name]!)) }
        // transformers' layout: sorted keys, two-space indent, a final newline.
        let index = JSONObject(["metadata": .object(JSONObject(["total_size": .from(totalBytes)])), "weight_map": .object(weightMap)])
        try AtomicWrite.write(JSONWriter.prettyData(.object(index)) + Data("\n".utf8), to: url)
    }

    /// Copies the base folder's other top-level files (config, tokenizer, generation config, chat template, README,
    /// ...) and, when the dtype changes, rewrites `dtype` / `torch_dtype` in config.json (keeping everything else).
    static func copyOtherFiles(from base: URL, to staging: URL, dtype: DType?, removeQuantization: Bool = false) throws -> [String] {
        let fileManager = FileManager.default
        var copied: [String] = []
        for name in try fileManager.contentsOfDirectory(atPath: base.path).sorted() where !name.hasPrefix(".") {
            guard !weightFileSuffixes.contains(where: { name.hasSuffix($0) }) else { continue }
            let source = base.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: source.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            // A named pipe or device among the files would block or never end the copy.
            guard BoundedFile.isRegularFile(source) else {
                throw EngineError.unreadable(path: source.path, reason: "is not a regular file (a named pipe, socket or device); cannot copy it into the output")
            }
            let destination = staging.appendingPathComponent(name)
            if name == "config.json", dtype != nil || removeQuantization {
                try AtomicWrite.write(try configWithDType(source, dtype: dtype, removeQuantization: removeQuantization), to: destination)
            } else {
                try fileManager.copyItem(at: source, to: destination)
            }
            copied.append(name)
        }
        return copied
    }

    /// config.json with `dtype` and `torch_dtype` (whichever are present; `dtype` when neither is) set to `dtype`, and
    /// without `quantization` / `quantization_config` when `removeQuantization` (a dequantized fuse, as mlx_lm.fuse).
    static func configWithDType(_ url: URL, dtype: DType?, removeQuantization: Bool = false) throws -> Data {
        let data: Data
        do { data = try BoundedFile.read(url, limit: BoundedFile.Limit.config) } catch {
            throw EngineError.unreadable(path: url.path, reason: error.reason)
        }
        guard let root = try? JSONParser.parse(Array(data)), var config = root.object else {
            throw EngineError.invalidConfig(path: url.path, reason: "not a JSON object")
        }
        if removeQuantization {
            config.removeMember("quantization")
            config.removeMember("quantization_config")
        }
        if let dtype {
            var updated = false
            for key in ["dtype", "torch_dtype"] where config[key] != nil {
                config.set(key, .string(dtype.configName))
                updated = true
            }
            if !updated { config.set("dtype", .string(dtype.configName)) }
        }
        return JSONWriter.data(.object(config)) + Data("\n".utf8)
    }
}
