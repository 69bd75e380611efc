import Foundation
import Testing
@testable import TunecheckEngine

/// Helpers shared by the malformed-input suites: temporary folders that clean up after themselves, hand-built
/// safetensors bytes, and assertions on `EngineError` cases and their one-line messages.
enum BadInput {
    /// Runs `body` with a fresh temporary folder and removes it afterwards, whatever happens.
    static func withTemporaryFolder<T>(_ label: String, _ body: (URL) throws -> T) throws -> T {
        let folder = try FixturePaths.temporaryDirectory(label)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try body(folder)
    }

    /// Copies a fixture model folder into `destination` (which must not exist yet) and returns it.
    static func copyFixture(_ name: String, into parent: URL) throws -> URL {
        let destination = parent.appendingPathComponent(name)
        try FileManager.default.copyItem(at: FixturePaths.ownModel(name), to: destination)
        return destination
    }

    /// Bytes of a safetensors file built by hand: 8-byte little-endian header length, the header text padded with
    /// spaces to `headerLength` bytes (when given), then `data`. Nothing is validated: that is the point.
    static func safetensorsBytes(header: String, data: [UInt8] = [], headerLength: Int? = nil) -> Data {
        var headerBytes = Array(header.utf8)
        if let headerLength {
            precondition(headerLength >= headerBytes.count, "test bug: header longer than the requested length")
            headerBytes += [UInt8](repeating: UInt8(ascii: " "), count: headerLength - headerBytes.count)
        }
        var result = Data()
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { result.append(contentsOf: $0) }
        result.append(contentsOf: headerBytes)
        result.append(contentsOf: data)
        return result
    }

    /// Little-endian bytes of float32 values.
    static func bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { value -> [UInt8] in
            let bits = value.bitPattern.littleEndian
            return [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
        }
    }

    /// Writes `data` as `name` inside `folder` and returns its URL.
    @discardableResult
    static func write(_ data: Data, named name: String, in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    /// Reads a JSON object file.
    static func readJSONObject(_ url: URL) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let dictionary = object as? [String: Any] else {
            throw EngineError.invalidInput("test bug: \(url.path) is not a JSON object")
        }
        return dictionary
    }

    static func writeJSONObject(_ object: Any, to url: URL) throws {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]).write(to: url)
    }

    /// Edits `config.json` of `folder` in place.
    static func editConfig(_ folder: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent("config.json")
        var config = try readJSONObject(url)
        edit(&config)
        try writeJSONObject(config, to: url)
    }

    /// Rewrites a single-file model's `model.safetensors` through `SafeTensorsWriter`, letting `edit` drop or
    /// reshape tensors. Values and dtypes are preserved.
    static func rewriteWeights(_ folder: URL, _ edit: (inout [(name: String, dtype: DType, shape: [Int], values: [Float])]) -> Void) throws {
        let url = folder.appendingPathComponent("model.safetensors")
        var tensors: [(name: String, dtype: DType, shape: [Int], values: [Float])] = []
        do {
            let store = try WeightStore(folder: folder)
            for name in store.tensorNames {
                guard let info = store.info(name) else { continue }
                let tensor = try store.floatTensor(name)
                tensors.append((name, info.dtype, info.shape, Array(tensor.buffer)))
            }
        }
        edit(&tensors)
        try writeTensors(tensors, to: url)
    }

    static func writeTensors(_ tensors: [(name: String, dtype: DType, shape: [Int], values: [Float])],
                             metadata: [String: String]? = nil, to url: URL) throws {
        // Keep every value array alive while the writer reads through the buffer pointers.
        let storage = tensors.map { ContiguousArray($0.values) }
        var pointers: [UnsafeMutableBufferPointer<Float>] = []
        defer { for pointer in pointers { pointer.deallocate() } }
        var toWrite: [TensorToWrite] = []
        for (index, tensor) in tensors.enumerated() {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: storage[index].count)
            _ = buffer.initialize(from: storage[index])
            pointers.append(buffer)
            toWrite.append(TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, values: UnsafeBufferPointer(buffer)))
        }
        try SafeTensorsWriter.write(toWrite, metadata: metadata, to: url)
    }

    /// Evaluates `body`, expecting an `EngineError`; returns it (or records a failure and returns nil).
    static func engineError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> EngineError? {
        do {
            try body()
            Issue.record("expected an EngineError, but nothing was thrown", sourceLocation: sourceLocation)
            return nil
        } catch let error as EngineError {
            return error
        } catch {
            Issue.record("expected an EngineError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Checks that `error`'s one-line message contains every fragment (case-sensitive).
    static func expectMessage(_ error: EngineError?, contains fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error else { return }
        let message = error.errorDescription ?? ""
        for fragment in fragments {
            #expect(message.contains(fragment), "message \"\(message)\" lacks \"\(fragment)\"", sourceLocation: sourceLocation)
        }
    }
}

extension EngineError {
    /// The case name, for asserting the kind of error without spelling out every associated value.
    var caseName: String {
        switch self {
        case .unreadable: return "unreadable"
        case .invalidSafetensors: return "invalidSafetensors"
        case .invalidConfig: return "invalidConfig"
        case .unsupportedModelType: return "unsupportedModelType"
        case .unsupportedFeature: return "unsupportedFeature"
        case .missingTensor: return "missingTensor"
        case .tensorShapeMismatch: return "tensorShapeMismatch"
        case .unsupportedDType: return "unsupportedDType"
        case .nonFiniteWeights: return "nonFiniteWeights"
        case .invalidQuantizedWeights: return "invalidQuantizedWeights"
        case .invalidInput: return "invalidInput"
        case .writeFailed: return "writeFailed"
        case .insufficientMemory: return "insufficientMemory"
        }
    }

    /// The path the error names, when it names one.
    var path: String? {
        switch self {
        case let .unreadable(path, _), let .invalidSafetensors(path, _), let .invalidConfig(path, _),
             let .unsupportedModelType(path, _, _), let .unsupportedFeature(path, _), let .missingTensor(path, _),
             let .tensorShapeMismatch(path, _, _, _), let .unsupportedDType(path, _, _), let .nonFiniteWeights(path, _),
             let .invalidQuantizedWeights(path, _, _),
             let .writeFailed(path, _), let .insufficientMemory(path, _, _):
            return path
        case .invalidInput:
            return nil
        }
    }
}
