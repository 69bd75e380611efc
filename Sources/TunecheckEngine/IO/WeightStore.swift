import CKernels
import Foundation
import TunecheckJSON

/// A float32 view of one weight tensor. The memory belongs to the `WeightStore` that made it (either the
/// memory-mapped file itself, for aligned F32 data, or a widened copy of F16/BF16 data) and lives as long as it.
public struct FloatTensor: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    public let pointer: UnsafePointer<Float>
    public var count: Int { shape.reduce(1, *) }
    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
}

/// All safetensors files of a model folder: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json`, or (as some exporters write) every `*.safetensors` in the folder.
/// Tensors are memory-mapped. Weight matrices (`weightMatrix`) are used in place in their stored dtype (F32, BF16,
/// F16); `floatTensor` gives float32 views, widening F16/BF16 into owned memory, for small tensors (norms, biases,
/// conv taps) and adapters.
public final class WeightStore: @unchecked Sendable {
    public let folder: URL
    private var files: [SafeTensorsFile] = []
    private var locations: [String: (file: Int, info: TensorInfo)] = [:]
    private var ownedBuffers: [UnsafeMutablePointer<Float>] = []
    private let lock = NSLock()

    /// The dtype most weights are stored in (used as the default when writing a fused model). For a quantized
    /// model, the dtype of its float tensors (scales, biases, norms), not the packed U32 words.
    public private(set) var dominantDType: DType = .float32

    /// The model's mlx affine quantization (`config.json`), set by the loader before any weight is read: a
    /// `P.weight` with a `P.scales` beside it is then read as a quantized matrix (`weightMatrix`).
    public var quantization: QuantizationConfig?

    /// Bytes of every tensor as stored (what the mapped weights occupy in the page cache when read).
    public var storedBytes: Int { locations.values.reduce(0) { $0 + $1.info.dataRange.count } }

    public init(folder: URL) throws {
        self.folder = folder
        let fileManager = FileManager.default
        let indexURL = folder.appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        if fileManager.fileExists(atPath: indexURL.path) || (try? fileManager.destinationOfSymbolicLink(atPath: indexURL.path)) != nil {
            shardNames = try Self.shardNames(fromIndex: indexURL)
            for name in shardNames where !fileManager.fileExists(atPath: folder.appendingPathComponent(name).path) {
                throw EngineError.invalidConfig(path: indexURL.path, reason: "weight_map names '\(name)', which is not in the folder")
            }
        } else if fileManager.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) {
            shardNames = ["model.safetensors"]
        } else {
            let contents = (try? fileManager.contentsOfDirectory(atPath: folder.path)) ?? []
            shardNames = contents.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") && !$0.contains("adapter") }.sorted()
            guard !shardNames.isEmpty else {
                throw EngineError.unreadable(path: folder.path, reason: "no model.safetensors (or model.safetensors.index.json) in the folder")
            }
        }
        try load(shardNames.map { folder.appendingPathComponent($0) })
    }

    /// A store over explicit safetensors files (e.g. one adapter file).
    public init(files: [URL]) throws {
        folder = files.first?.deletingLastPathComponent() ?? URL(fileURLWithPath: ".")
        try load(files)
    }

    /// A store over float32 tensors that already live in memory the caller owns (trainable copies).
    public init(ownedTensors: [(name: String, shape: [Int], pointer: UnsafePointer<Float>)], folder: URL) {
        self.folder = folder
        for tensor in ownedTensors {
            let count = tensor.shape.reduce(1, *)
            inMemory[tensor.name] = FloatTensor(name: tensor.name, shape: tensor.shape, pointer: tensor.pointer)
            locations[tensor.name] = (-1, TensorInfo(name: tensor.name, dtype: .float32, shape: tensor.shape, dataRange: 0..<(count * 4)))
        }
    }

    private var inMemory: [String: FloatTensor] = [:]

    private func load(_ urls: [URL]) throws {
        var dtypeBytes: [DType: Int] = [:]
        for (fileIndex, url) in urls.enumerated() {
            let file = try SafeTensorsFile(url: url)
            files.append(file)
            for name in file.orderedNames {
                guard let info = file.tensors[name] else { continue }
                if let existing = locations[name] {
                    throw EngineError.invalidSafetensors(path: file.path, reason: "tensor '\(name)' also appears in \(files[existing.file].path)")
                }
                locations[name] = (fileIndex, info)
                dtypeBytes[info.dtype, default: 0] += info.dataRange.count
            }
        }
        dominantDType = dtypeBytes.filter { $0.key.isFloatWeight }.max { $0.value < $1.value }?.key ?? .float32
    }

    deinit {
        for buffer in ownedBuffers { buffer.deallocate() }
    }

    public var tensorNames: [String] { locations.keys.sorted() }

    public func info(_ name: String) -> TensorInfo? { locations[name]?.info }

    public func contains(_ name: String) -> Bool { locations[name] != nil }

    /// The mapped file holding `name` (nil for owned tensors): readers that go through the store share its mapping
    /// instead of mapping the file again.
    func file(of name: String) -> SafeTensorsFile? {
        guard let location = locations[name], location.file >= 0 else { return nil }
        return files[location.file]
    }

    /// The path of the file holding `name` (for messages).
    public func path(of name: String) -> String {
        guard let location = locations[name], location.file >= 0 else { return folder.path }
        return files[location.file].path
    }

    /// `name`'s bytes as stored in its mapped file (fuse copies untouched quantized tensors through them).
    func rawBytes(of name: String) throws -> UnsafeRawBufferPointer {
        guard let location = locations[name], location.file >= 0 else {
            throw EngineError.missingTensor(path: folder.path, name: name)
        }
        return files[location.file].bytes(of: location.info)
    }

    /// `name` as a (shape[0], rest) matrix in its stored dtype, in place in the mapped file (no copy), checked against
    /// `shape` when given and checked to be finite. BF16/F16 data is read in place at any alignment (mlx's writer does
    /// not pad its header, so about half of the folders it writes put every 16-bit tensor at an odd address; the
    /// kernels read through unaligned loads). F32 data at an address that is not a multiple of 4 (mlx-written float32
    /// folders, likewise) goes to OpenBLAS as `float *`, which needs 4-byte alignment: it is copied once into owned
    /// float32 memory, the same size as stored.
    public func weightMatrix(_ name: String, shape expected: [Int]? = nil) throws -> WeightMatrix {
        guard let location = locations[name] else {
            throw EngineError.missingTensor(path: folder.path, name: name)
        }
        let info = location.info
        if isAffineQuantized(name) {
            return try affineMatrix(name, shape: expected)
        }
        let rows = info.shape.first ?? 1
        let columns = info.shape.dropFirst().reduce(1, *)
        guard location.file >= 0, let storage = WeightStorage(info.dtype) else {
            let tensor = try floatTensor(name, shape: expected)
            return WeightMatrix(tensor.pointer, rows: rows, columns: columns)
        }
        let file = files[location.file]
        if let expected, expected != info.shape {
            throw EngineError.tensorShapeMismatch(path: file.path, name: name, expected: expected, actual: info.shape)
        }
        let raw = file.bytes(of: info)
        guard let address = raw.baseAddress, storage != .float32 || Int(bitPattern: address) % 4 == 0 else {
            let tensor = try floatTensor(name, shape: expected)
            return WeightMatrix(tensor.pointer, rows: rows, columns: columns)
        }
        let matrix = WeightMatrix(storage: storage, base: address, rows: rows, columns: columns)
        guard matrix.allFinite() else {
            throw EngineError.nonFiniteWeights(path: file.path, name: name)
        }
        return matrix
    }

    /// Whether `name` (`P.weight`) is stored mlx-quantized: a packed U32 weight, or one with `P.scales` beside it
    /// (mlx_lm decides by `P.scales` too).
    public func isAffineQuantized(_ name: String) -> Bool {
        guard name.hasSuffix(".weight"), let location = locations[name], location.file >= 0 else { return false }
        return location.info.dtype == .uint32 || contains(String(name.dropLast(".weight".count)) + ".scales")
    }

    /// `name` (`P.weight`) as an mlx affine-quantized matrix of logical shape `expected` (out, in), read in place: the
    /// packed words, `P.scales` and `P.biases` are checked against the config's group size and bits for module `P` and
    /// against each other, and the scales and biases are checked finite. Errors name the file and the tensor.
    ///
    /// Routed experts (mlx's `QuantizedSwitchLinear`) are 3-D: codes (E, out, in·bits/32), scales and biases
    /// (E, out, in/group_size), `expected` (E, out, in). They become one (E·out, in) matrix whose rows are the experts'
    /// rows one after another (`WeightMatrix.rows(_:)` slices one expert out).
    private func affineMatrix(_ name: String, shape expected: [Int]?) throws -> WeightMatrix {
        let module = String(name.dropLast(".weight".count))
        let packedInfo = locations[name]!.info
        let file = files[locations[name]!.file]
        func fail(_ tensor: String, _ reason: String) -> EngineError {
            .invalidQuantizedWeights(path: contains(tensor) ? path(of: tensor) : file.path, name: tensor, reason: reason)
        }
        guard let quantization else {
            throw fail(module + ".scales", "the weights are quantized but config.json has no \"quantization\" entry")
        }
        guard let parameters = quantization.parameters(forModule: module) else {
            throw fail(module + ".scales", "config.json's quantization says '\(module)' is not quantized (false), but its weights are")
        }
        let bits = parameters.bits, groupSize = parameters.groupSize
        guard packedInfo.dtype == .uint32 else {
            throw fail(name, "a quantized weight must be U32 (packed \(bits)-bit codes), found \(packedInfo.dtype.rawValue)")
        }
        // (out, words) for a linear layer, (E, out, words) for routed experts; the model says which it needs (readers
        // without a model, such as fuse, take either).
        let dimensions = packedInfo.shape.count
        guard dimensions == (expected?.count ?? dimensions), dimensions == 2 || dimensions == 3 else {
            let wanted = expected.map { $0.count == 3 ? "3-D (experts, out, in·bits/32)" : "2-D (out, in·bits/32)" }
                ?? "2-D (out, in·bits/32) or 3-D (experts, out, in·bits/32)"
            throw fail(name, "a quantized weight here must be \(wanted), found shape \(packedInfo.shape)")
        }
        let leading = Array(packedInfo.shape.dropLast())
        let rows = leading.reduce(1, *)
        let columns = expected?.last ?? packedInfo.shape[dimensions - 1] * 32 / bits
        if let expected {
            guard Array(expected.dropLast()) == leading else {
                throw fail(name, "shape \(packedInfo.shape) holds \(leading) rows, the model needs \(expected)")
            }
        }
        guard columns % groupSize == 0 else {
            throw fail(name, "group size \(groupSize) does not divide the input dimension \(columns)")
        }
        guard packedInfo.shape[dimensions - 1] * 32 == columns * bits else {
            throw fail(name, "shape \(packedInfo.shape) does not hold \(columns) \(bits)-bit codes per row "
                             + "(expected \(leading + [columns * bits / 32]) for group_size \(groupSize), bits \(bits))")
        }
        let groupShape = leading + [columns / groupSize]
        var pointers: [UnsafeRawPointer] = []
        var scaleType: DType?
        for part in ["scales", "biases"] {
            let tensor = "\(module).\(part)"
            guard let location = locations[tensor], location.file >= 0 else {
                throw fail(tensor, "missing (an affine-quantized weight needs \(module).scales and \(module).biases)")
            }
            let info = location.info
            guard info.dtype.isFloatWeight else {
                throw fail(tensor, "dtype \(info.dtype.rawValue); scales and biases must be F32, BF16 or F16 (mode 'affine')")
            }
            guard scaleType == nil || scaleType == info.dtype else {
                throw fail(tensor, "dtype \(info.dtype.rawValue) differs from \(module).scales' \(scaleType!.rawValue)")
            }
            scaleType = info.dtype
            guard info.shape == groupShape else {
                throw fail(tensor, "shape \(info.shape), expected \(groupShape) for group_size \(groupSize), bits \(bits)")
            }
            // Any alignment: the kernels copy as they read (mlx's writer does not align tensors).
            guard let address = files[location.file].bytes(of: info).baseAddress else { throw fail(tensor, "empty") }
            pointers.append(address)
        }
        guard let packed = file.bytes(of: packedInfo).baseAddress else { throw fail(name, "empty") }
        let matrix = WeightMatrix(affine: AffineQuantization(bits: bits, groupSize: groupSize, scales: pointers[0], biases: pointers[1],
                                                             scaleType: scaleType!),
                                  packed: packed, rows: rows, columns: columns)
        guard matrix.allFinite() else {
            throw EngineError.nonFiniteWeights(path: file.path, name: "\(module).scales/biases")
        }
        return matrix
    }

    /// Bytes of the float32 copies this store owns (widened small tensors; weights used in place are not counted).
    public var ownedBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return ownedByteCount
    }
    private var ownedByteCount = 0

    /// A float32 view of `name`, checked against `shape` when given, and checked to be finite.
    public func floatTensor(_ name: String, shape expected: [Int]? = nil) throws -> FloatTensor {
        guard let location = locations[name] else {
            throw EngineError.missingTensor(path: folder.path, name: name)
        }
        let info = location.info
        if let tensor = inMemory[name] {
            if let expected, expected != info.shape {
                throw EngineError.tensorShapeMismatch(path: folder.path, name: name, expected: expected, actual: info.shape)
            }
            return tensor
        }
        let file = files[location.file]
        if let expected, expected != info.shape {
            throw EngineError.tensorShapeMismatch(path: file.path, name: name, expected: expected, actual: info.shape)
        }
        guard info.dtype.isFloatWeight else {
            throw EngineError.unsupportedDType(path: file.path, name: name, dtype: info.dtype.rawValue)
        }
        let raw = file.bytes(of: info)
        let count = info.elementCount
        let pointer: UnsafePointer<Float>
        if info.dtype == .float32, Int(bitPattern: raw.baseAddress) % MemoryLayout<Float>.alignment == 0 {
            pointer = raw.baseAddress!.assumingMemoryBound(to: Float.self)
        } else {
            let owned = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            Self.widen(raw, dtype: info.dtype, into: owned, count: count)
            lock.lock()
            ownedBuffers.append(owned)
            ownedByteCount += count * 4
            lock.unlock()
            pointer = UnsafePointer(owned)
        }
        guard WeightMatrix(pointer, rows: 1, columns: count).allFinite() else {
            throw EngineError.nonFiniteWeights(path: file.path, name: name)
        }
        return FloatTensor(name: name, shape: info.shape, pointer: pointer)
    }

    /// Converts little-endian F32/F16/BF16 bytes (any alignment) into float32.
    static func widen(_ raw: UnsafeRawBufferPointer, dtype: DType, into output: UnsafeMutablePointer<Float>, count: Int) {
        guard let base = raw.baseAddress else { return }
        switch dtype {
        case .float32:
            for index in 0..<count {
                output[index] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
            }
        case .float16, .bfloat16:
            // The C conversion reads 16-bit values at any alignment.
            tc_widen_block(base, WeightStorage(dtype)!.kernelKind, count, 1, count, output)
        default:
            preconditionFailure("widen called for \(dtype)")
        }
    }

    static func shardNames(fromIndex url: URL) throws -> [String] {
        let data: Data
        do { data = try BoundedFile.read(url, limit: BoundedFile.Limit.index) } catch {
            throw EngineError.unreadable(path: url.path, reason: error.reason)
        }
        guard let root = try? JSONParser.parse([UInt8](data)), let weightMap = root.object?["weight_map"]?.object else {
            throw EngineError.invalidConfig(path: url.path, reason: "expected a JSON object with a \"weight_map\" object")
        }
        var names = Set<String>()
        for (tensor, file) in zip(weightMap.keys, weightMap.values) {
            guard let fileName = file.string else {
                throw EngineError.invalidConfig(path: url.path, reason: "weight_map entry for '\(tensor)' is not a file name")
            }
            guard !fileName.contains("/"), fileName != "..", fileName.hasSuffix(".safetensors") else {
                throw EngineError.invalidConfig(path: url.path, reason: "weight_map names '\(fileName)', which is not a .safetensors file in this folder")
            }
            names.insert(fileName)
        }
        guard !names.isEmpty else { throw EngineError.invalidConfig(path: url.path, reason: "weight_map is empty") }
        return names.sorted()
    }
}
