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

/// Writes safetensors files (F32, F16 or BF16) atomically. The header is padded with spaces to a multiple of 8
/// bytes, as the reference implementation does, so float data stays aligned when memory-mapped.
public enum SafeTensorsWriter {
    public static func write(_ tensors: [TensorToWrite], metadata: [String: String]? = nil, to url: URL) throws {
        func fail(_ reason: String) -> EngineError { .writeFailed(path: url.path, reason: reason) }
        var header: [String: JSONValue] = [:]
        var offset = 0
        for tensor in tensors {
            guard tensor.dtype.isFloatWeight else {
                throw fail("tensor '\(tensor.name)' has dtype \(tensor.dtype.rawValue); only F32, F16 and BF16 can be written")
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
            guard elementCount == tensor.values.count else {
                throw fail("tensor '\(tensor.name)' has shape \(tensor.shape) but \(tensor.values.count) values")
            }
            let byteCount = tensor.values.count * tensor.dtype.byteSize
            header[tensor.name] = .object(JSONObject(["data_offsets": .from([offset, offset + byteCount]), "dtype": .string(tensor.dtype.rawValue),
                                                      "shape": .from(tensor.shape)]))
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
            for tensor in tensors {
                try handle.write(contentsOf: encode(tensor.values, as: tensor.dtype))
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
