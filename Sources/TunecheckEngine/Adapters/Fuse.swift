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

    @discardableResult
    public static func fuse(baseFolder: URL, adapter: Adapter, output: URL, dtype: DType? = nil, replacing: Bool = false) throws -> FuseReport {
        let base = baseFolder.standardizedFileURL
        let target = output.standardizedFileURL
        try checkOutput(target, base: base, adapter: adapter, replacing: replacing)

        // Attaching validates that every adapter module fits the base (names, layers, shapes) before anything is
        // written, and gives, per linear layer, the factors in a layout-aware form.
        let model = try adapter.attach(to: ModelLoader.loadDecoder(folder: base))
        if model.spec.quantization != nil {
            // mlx_lm.fuse re-quantizes the fused layers (or writes float ones with --dequantize); until that is
            // implemented, an adapter on a quantized base is evaluated unfused (score, eval, generate apply it).
            throw EngineError.unsupportedFeature(path: base.path, feature: "fusing onto an mlx-quantized base (not implemented yet; "
                                                 + "tunecheck applies the adapter unfused: score, eval and generate take --adapter)")
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

        // Tensors grouped by the base file they come from; the output keeps the base's file names and sharding.
        var byFile: [String: [String]] = [:]
        for name in store.tensorNames {
            guard let info = store.info(name) else { continue }
            guard info.dtype.isFloatWeight else {
                throw EngineError.unsupportedDType(path: store.path(of: name), name: name, dtype: info.dtype.rawValue)
            }
            byFile[URL(fileURLWithPath: store.path(of: name)).lastPathComponent, default: []].append(name)
        }
        let fileNames = byFile.keys.sorted()
        var report = FuseReport(fusedTensors: [], tensorCount: 0, weightFiles: fileNames, copiedFiles: [], dtype: dtype)

        try AtomicWrite.writeDirectory(at: target, replacing: replacing) { staging in
            var totalBytes = 0
            for fileName in fileNames {
                let names = byFile[fileName]!.sorted {
                    (store.info($0)!.dataRange.lowerBound, $0) < (store.info($1)!.dataRange.lowerBound, $1)
                }
                let headers = names.map { TensorHeader(name: $0, dtype: dtype ?? store.info($0)!.dtype, shape: store.info($0)!.shape) }
                // Streamed tensor by tensor: an adapted weight is widened, merged and checked in one float32 buffer that
                // is freed once written; every other tensor goes through in chunks (its stored bytes when the dtype
                // stays). Peak memory is about the largest adapted tensor, not the model.
                try SafeTensorsWriter.write(streaming: headers, metadata: ["format": "pt"], to: staging.appendingPathComponent(fileName)) { index, sink in
                    let name = names[index]
                    let info = store.info(name)!
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
                    } else if headers[index].dtype == info.dtype, matrix.storage == WeightStorage(info.dtype) {
                        try sink.writeRaw(UnsafeRawBufferPointer(start: matrix.base, count: matrix.byteCount))
                    } else {
                        try streamWidened(matrix, into: sink)
                    }
                    totalBytes += info.elementCount * headers[index].dtype.byteSize
                }
                report.tensorCount += names.count
            }
            if FileManager.default.fileExists(atPath: base.appendingPathComponent("model.safetensors.index.json").path) {
                try writeIndex(byFile: byFile, totalBytes: totalBytes, to: staging.appendingPathComponent("model.safetensors.index.json"))
            }
            report.copiedFiles = try copyOtherFiles(from: base, to: staging, dtype: dtype)
        }
        return report
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
    static func copyOtherFiles(from base: URL, to staging: URL, dtype: DType?) throws -> [String] {
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
            if name == "config.json", let dtype {
                try AtomicWrite.write(try configWithDType(source, dtype: dtype), to: destination)
            } else {
                try fileManager.copyItem(at: source, to: destination)
            }
            copied.append(name)
        }
        return copied
    }

    /// config.json with `dtype` and `torch_dtype` (whichever are present; `dtype` when neither is) set to `dtype`.
    static func configWithDType(_ url: URL, dtype: DType) throws -> Data {
        let data: Data
        do { data = try BoundedFile.read(url, limit: BoundedFile.Limit.config) } catch {
            throw EngineError.unreadable(path: url.path, reason: error.reason)
        }
        guard let root = try? JSONParser.parse(Array(data)), var config = root.object else {
            throw EngineError.invalidConfig(path: url.path, reason: "not a JSON object")
        }
        var updated = false
        for key in ["dtype", "torch_dtype"] where config[key] != nil {
            config.set(key, .string(dtype.configName))
            updated = true
        }
        if !updated { config.set("dtype", .string(dtype.configName)) }
        return JSONWriter.data(.object(config)) + Data("\n".utf8)
    }
}
