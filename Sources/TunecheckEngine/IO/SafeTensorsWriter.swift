import Foundation
import TunecheckJSON

/// A tensor to be written: its name, the dtype to store it as, its shape, and float32 values.
public struct TensorToWrite {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let values: UnsafeBufferPointer<Float>

    public init(name: String, dtype: DType, shape: [Int], values: UnsafeBufferPointer<Float>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.values = values
    }
}

/// One tensor of a streamed write: its name, the dtype to store it as, and its shape (values come later).
public struct TensorHeader: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

/// Where a streamed write takes one tensor's values, in order, a chunk at a time (float32 values encoded to the
/// tensor's dtype, or bytes already in it). The writer checks that exactly the declared size arrives.
public final class TensorSink {
    let handle: FileHandle
    let dtype: DType
    let url: URL
    let name: String
    let expectedBytes: Int
    private(set) var writtenBytes = 0

    init(handle: FileHandle, dtype: DType, url: URL, name: String, expectedBytes: Int) {
        self.handle = handle
        self.dtype = dtype
        self.url = url
        self.name = name
        self.expectedBytes = expectedBytes
    }

    /// Appends float32 values, rounded to the tensor's dtype (nearest even for the half types, as torch does).
    public func write(_ values: UnsafeBufferPointer<Float>) throws {
        guard dtype.isFloatWeight else {
            throw EngineError.writeFailed(path: url.path, reason: "tensor '\(name)' is \(dtype.rawValue): its bytes are written raw, not from floats")
        }
        try writeRaw(SafeTensorsWriter.encode(values, as: dtype))
    }

    /// Appends bytes already encoded in the tensor's dtype (a tensor copied through unchanged).
    public func writeRaw(_ bytes: UnsafeRawBufferPointer) throws {
        try writeRaw(Data(bytes: bytes.baseAddress!, count: bytes.count))
    }

    private func writeRaw(_ data: Data) throws {
        guard writtenBytes + data.count <= expectedBytes else {
            throw EngineError.writeFailed(path: url.path, reason: "tensor '\(name)' got more than its \(expectedBytes) bytes")
        }
        try handle.write(contentsOf: data)
        writtenBytes += data.count
    }
}

/// Writes safetensors files (F32, F16 or BF16) atomically. The header is padded with spaces to a multiple of 8
/// bytes, as the reference implementation does, so float data stays aligned when memory-mapped.
public enum SafeTensorsWriter {
    public static func write(_ tensors: [TensorToWrite], metadata: [String: String]? = nil, to url: URL) throws {
        for tensor in tensors where tensor.shape.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? -1 : $0 * $1 }) != tensor.values.count {
            throw EngineError.writeFailed(path: url.path, reason: "tensor '\(tensor.name)' has shape \(tensor.shape) but \(tensor.values.count) values")
        }
        try write(streaming: tensors.map { TensorHeader(name: $0.name, dtype: $0.dtype, shape: $0.shape) }, metadata: metadata, to: url) { index, sink in
            try sink.write(tensors[index].values)
        }
    }

    /// Writes the header for `tensors`, then asks `produce(index, sink)` for each tensor's values in file order, so a
    /// file of any size is written holding one chunk at a time (fusing and generating benchmark models stream).
    public static func write(streaming tensors: [TensorHeader], metadata: [String: String]? = nil, to url: URL,
                             produce: (Int, TensorSink) throws -> Void) throws {
        func fail(_ reason: String) -> EngineError { .writeFailed(path: url.path, reason: reason) }
        var header: [String: JSONValue] = [:]
        var offset = 0
        var byteCounts: [Int] = []
        for tensor in tensors {
            // U32: mlx-quantized packed codes, written raw (`TensorSink.writeRaw`).
            guard tensor.dtype.isFloatWeight || tensor.dtype == .uint32 else {
                throw fail("tensor '\(tensor.name)' has dtype \(tensor.dtype.rawValue); only F32, F16, BF16 and U32 can be written")
            }
            guard tensor.name != "__metadata__", header[tensor.name] == nil else {
                throw fail("tensor name '\(tensor.name)' is used twice or is reserved")
            }
            var elementCount = 1
            for dimension in tensor.shape {
                let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
                guard dimension >= 0, !overflow else { throw fail("tensor '\(tensor.name)' has an invalid shape \(tensor.shape)") }
                elementCount = product
            }
            let byteCount = elementCount * tensor.dtype.byteSize
            header[tensor.name] = .object(JSONObject(["data_offsets": .from([offset, offset + byteCount]), "dtype": .string(tensor.dtype.rawValue),
                                                      "shape": .from(tensor.shape)]))
            byteCounts.append(byteCount)
            offset += byteCount
        }
        if let metadata {
            var object = JSONObject()
            for key in metadata.keys.sorted() { object.set(key, .string(metadata[key]!)) }
            header["__metadata__"] = .object(object)
        }
        // Keys sorted (as before, and as a reproducible file needs); compact JSON as the reference writer's.
        var headerObject = JSONObject()
        for key in header.keys.sorted() { headerObject.set(key, header[key]!) }
        var headerData = JSONWriter.data(.object(headerObject))
        let padding = (8 - headerData.count % 8) % 8
        headerData.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: padding))
        try AtomicWrite.write(to: url) { handle in
            var length = UInt64(headerData.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: headerData)
            for (index, tensor) in tensors.enumerated() {
                let sink = TensorSink(handle: handle, dtype: tensor.dtype, url: url, name: tensor.name, expectedBytes: byteCounts[index])
                try produce(index, sink)
                guard sink.writtenBytes == byteCounts[index] else {
                    throw fail("tensor '\(tensor.name)' got \(sink.writtenBytes) of its \(byteCounts[index]) bytes")
                }
            }
        }
    }

    /// Little-endian bytes of `values` in `dtype` (round-to-nearest-even for the half types, as torch does).
    static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType) -> Data {
        switch dtype {
        case .float32:
            return Data(buffer: values)
        case .float16:
            var halves = [UInt16](repeating: 0, count: values.count)
            for index in 0..<values.count { halves[index] = Float16(values[index]).bitPattern.littleEndian }
            return halves.withUnsafeBufferPointer { Data(buffer: $0) }
        case .bfloat16:
            var halves = [UInt16](repeating: 0, count: values.count)
            for index in 0..<values.count { halves[index] = bfloat16Bits(values[index]).littleEndian }
            return halves.withUnsafeBufferPointer { Data(buffer: $0) }
        default:
            // Unreachable: `write` only passes float dtypes.
            return Data(buffer: values)
        }
    }

    @inline(__always)
    static func bfloat16Bits(_ value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let bits = value.bitPattern
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
