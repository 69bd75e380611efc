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

    /// The dtype most weights are stored in (used as the default when writing a fused model).
    public private(set) var dominantDType: DType = .float32

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

    /// The path of the file holding `name` (for messages).
    public func path(of name: String) -> String {
        guard let location = locations[name], location.file >= 0 else { return folder.path }
        return files[location.file].path
    }

    /// `name` as a (shape[0], rest) matrix in its stored dtype, in place in the mapped file (no copy), checked against
    /// `shape` when given and checked to be finite. Data the kernels cannot read in place (a misaligned offset, which
    /// safetensors writers do not produce) is widened into owned float32 memory instead.
    public func weightMatrix(_ name: String, shape expected: [Int]? = nil) throws -> WeightMatrix {
        guard let location = locations[name] else {
            throw EngineError.missingTensor(path: folder.path, name: name)
        }
        let info = location.info
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
        guard let address = raw.baseAddress, Int(bitPattern: address) % storage.byteSize == 0 else {
            let tensor = try floatTensor(name, shape: expected)
            return WeightMatrix(tensor.pointer, rows: rows, columns: columns)
        }
        let matrix = WeightMatrix(storage: storage, base: address, rows: rows, columns: columns)
        guard matrix.allFinite() else {
            throw EngineError.nonFiniteWeights(path: file.path, name: name)
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
        case .float16:
            if Int(bitPattern: base) % 2 == 0 {
                tc_f16_to_f32(base.assumingMemoryBound(to: UInt16.self), output, count)
                return
            }
            for index in 0..<count {
                output[index] = Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))))
            }
        case .bfloat16:
            if Int(bitPattern: base) % 2 == 0 {
                tc_bf16_to_f32(base.assumingMemoryBound(to: UInt16.self), output, count)
                return
            }
            for index in 0..<count {
                let bits = UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
                output[index] = Float(bitPattern: bits << 16)
            }
        default:
            preconditionFailure("widen called for \(dtype)")
        }
    }

    /// Branch-free finiteness scan: `x - x` is 0 for finite values and NaN otherwise, and NaN poisons the sum.
    static func allFinite(_ pointer: UnsafePointer<Float>, count: Int) -> Bool {
        var accumulator: Float = 0
        for index in 0..<count { accumulator += (pointer[index] - pointer[index]) }
        return accumulator == 0
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
