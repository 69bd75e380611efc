import Foundation
import TunecheckJSON
#if canImport(Glibc)
import Glibc
#endif

/// Element types a safetensors file can declare. Weights are computed in float32; F16 and BF16 are widened on load.
public enum DType: String, Sendable, CaseIterable {
    case float32 = "F32", float16 = "F16", bfloat16 = "BF16", float64 = "F64"
    case int64 = "I64", int32 = "I32", int16 = "I16", int8 = "I8", uint8 = "U8", bool = "BOOL"
    case uint16 = "U16", uint32 = "U32", uint64 = "U64", float8E4M3 = "F8_E4M3", float8E5M2 = "F8_E5M2"

    public var byteSize: Int {
        switch self {
        case .float64, .int64, .uint64: return 8
        case .float32, .int32, .uint32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool, .float8E4M3, .float8E5M2: return 1
        }
    }

    /// Whether the engine can use tensors of this type as float weights.
    public var isFloatWeight: Bool { self == .float32 || self == .float16 || self == .bfloat16 }

    /// The names transformers uses in `config.json` (`torch_dtype` / `dtype`).
    public init?(configName: String) {
        switch configName {
        case "float32": self = .float32
        case "float16": self = .float16
        case "bfloat16": self = .bfloat16
        default: return nil
        }
    }

    public var configName: String {
        switch self {
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        default: return "float32"
        }
    }
}

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data section (after the 8-byte length and the header).
    public let dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped safetensors file whose header has been fully validated: bounded header length, JSON object,
/// known dtypes, offsets inside the file, `shape × dtype size == byte length`, no two tensors overlapping.
/// Gaps between tensors are allowed (mlx writes them); `__metadata__` may be absent, null or a string map.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest header accepted. The format's reference implementation uses 100 MB.
    public static let maximumHeaderLength = 100_000_000

    public let path: String
    public let tensors: [String: TensorInfo]
    /// Tensor names in file order (by data offset).
    public let orderedNames: [String]
    public let metadata: [String: String]?
    private let mapping: UnsafeMutableRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    public init(url: URL) throws {
        path = url.path
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer; the fstat check below then
        // rejects it. It changes nothing for regular files.
        let fd = open(url.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw EngineError.unreadable(path: url.path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw EngineError.unreadable(path: url.path, reason: String(cString: strerror(errno)))
        }
        switch status.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw EngineError.unreadable(path: url.path, reason: "is a directory, expected a file")
        case S_IFIFO: throw EngineError.unreadable(path: url.path, reason: "is a named pipe, expected a regular file")
        default: throw EngineError.unreadable(path: url.path, reason: "is not a regular file (a device or socket)")
        }
        let fileSize = Int(status.st_size)
        guard fileSize >= 8 else {
            throw EngineError.invalidSafetensors(path: url.path, reason: "file is \(fileSize) bytes, shorter than the 8-byte header length")
        }
        guard let base = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw EngineError.unreadable(path: url.path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        mapping = base
        mappedLength = fileSize
        do {
            let headerLength = base.loadUnaligned(as: UInt64.self).littleEndian
            guard headerLength <= UInt64(Self.maximumHeaderLength) else {
                throw EngineError.invalidSafetensors(path: url.path, reason: "header length \(headerLength) exceeds the \(Self.maximumHeaderLength)-byte limit")
            }
            guard Int(headerLength) + 8 <= fileSize else {
                throw EngineError.invalidSafetensors(path: url.path, reason: "header length \(headerLength) runs past the end of the \(fileSize)-byte file (truncated?)")
            }
            dataStart = 8 + Int(headerLength)
            let headerData = Data(bytesNoCopy: base + 8, count: Int(headerLength), deallocator: .none)
            let parsed = try Self.parseHeader(headerData, dataSize: fileSize - dataStart, path: url.path)
            tensors = parsed.tensors
            orderedNames = parsed.ordered
            metadata = parsed.metadata
        } catch {
            munmap(base, fileSize)
            throw error
        }
    }

    deinit {
        if let mapping { munmap(mapping, mappedLength) }
    }

    /// Raw bytes of a tensor, valid while this file object lives.
    public func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping! + dataStart + info.dataRange.lowerBound, count: info.dataRange.count)
    }

    /// Parses and validates a header; `dataSize` is the number of bytes after it.
    static func parseHeader(_ data: Data, dataSize: Int, path: String) throws -> (tensors: [String: TensorInfo], ordered: [String], metadata: [String: String]?) {
        func fail(_ reason: String) -> EngineError { .invalidSafetensors(path: path, reason: reason) }
        guard let firstByte = data.first, firstByte == UInt8(ascii: "{") else {
            throw fail("header does not start with a JSON object")
        }
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch {
            throw fail("header is not valid JSON (\(error))")
        }
        guard case .object(let header) = root else { throw fail("header is not a JSON object") }
        var metadata: [String: String]?
        var tensors: [String: TensorInfo] = [:]
        tensors.reserveCapacity(header.keys.count)
        // Sorted, so that a file with several problems always gets the same message whatever the header's order.
        var firstPastEnd: TensorInfo?
        for index in header.keys.indices.sorted(by: { header.keys[$0] < header.keys[$1] }) {
            let name = header.keys[index]
            let value = header.values[index]
            if name == "__metadata__" {
                if value.isNull { continue }
                guard let map = value.object else { throw fail("__metadata__ is not an object") }
                var strings: [String: String] = [:]
                for (key, entry) in zip(map.keys, map.values) {
                    guard let text = entry.string else { throw fail("__metadata__ value for '\(key)' is not a string") }
                    strings[key] = text
                }
                metadata = strings
                continue
            }
            guard tensors[name] == nil else { throw fail("tensor '\(name)' appears twice in the header") }
            guard let entry = value.object else { throw fail("entry for tensor '\(name)' is not an object") }
            guard let dtypeName = entry["dtype"]?.string else { throw fail("tensor '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw fail("tensor '\(name)' has unknown dtype '\(dtypeName)'") }
            guard let shapeValues = entry["shape"]?.array else { throw fail("tensor '\(name)' has no shape array") }
            var shape: [Int] = []
            shape.reserveCapacity(shapeValues.count)
            for dimension in shapeValues {
                guard let number = exactInteger(dimension), number >= 0 else {
                    throw fail("tensor '\(name)' has an invalid dimension \(JSONWriter.string(dimension))")
                }
                shape.append(number)
            }
            guard let offsets = entry["data_offsets"]?.array, offsets.count == 2,
                  let begin = exactInteger(offsets[0]), let end = exactInteger(offsets[1]) else {
                throw fail("tensor '\(name)' has no valid data_offsets [begin, end]")
            }
            guard begin >= 0 else { throw fail("tensor '\(name)' has data_offsets [\(begin), \(end)] with a negative begin") }
            guard begin <= end else { throw fail("tensor '\(name)' has data_offsets [\(begin), \(end)] with begin > end") }

            var byteCount = dtype.byteSize
            for dimension in shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw fail("tensor '\(name)' has a shape \(shape) whose size overflows") }
                byteCount = product
            }
            guard byteCount == end - begin else {
                throw fail("tensor '\(name)' has shape \(shape) × \(dtype.rawValue) = \(byteCount) bytes but data_offsets span \(end - begin)")
            }
            let info = TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
            if end > dataSize, (firstPastEnd?.dataRange.lowerBound ?? Int.max) > begin { firstPastEnd = info }
            tensors[name] = info
        }
        // A truncated file: name the first tensor (in file order) that it cuts.
        if let info = firstPastEnd {
            throw fail("tensor '\(info.name)' ends at byte \(info.dataRange.upperBound) of the data section, past its end (\(dataSize) bytes; truncated?)")
        }
        let ordered = tensors.values.sorted { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var previousEnd = 0
        var previousName = ""
        for info in ordered where !info.dataRange.isEmpty {
            guard info.dataRange.lowerBound >= previousEnd else {
                throw fail("tensors '\(previousName)' and '\(info.name)' overlap")
            }
            previousEnd = info.dataRange.upperBound
            previousName = info.name
        }
        return (tensors, ordered.map(\.name), metadata)
    }

    /// Accepts only integral numbers (`2` or `2.0`; not booleans, not 2.5, not beyond 2^53).
    static func exactInteger(_ value: JSONValue) -> Int? {
        guard case .number(let double, _) = value, double.rounded() == double, abs(double) < 9.0e15 else { return nil }
        return Int(double)
    }
}
