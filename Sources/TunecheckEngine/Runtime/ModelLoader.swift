import Foundation
import TunecheckJSON

/// Loads a model folder's weights: `config.json` → `TransformerSpec` (through the architecture registry), then the
/// safetensors → `DecoderWeights`.
public enum ModelLoader {
    public static func loadDecoder(folder: URL) throws -> DecoderModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw EngineError.unreadable(path: folder.path, reason: "no such folder")
        }
        guard isDirectory.boolValue else {
            throw EngineError.unreadable(path: folder.path, reason: "expected a model folder, found a file")
        }
        let (spec, architecture) = try ModelConfigLoader.loadSpec(configURL: folder.appendingPathComponent("config.json"))
        // Mapping and header validation touch no weight data; the budget then knows the stored dtype.
        let store = try WeightStore(folder: folder)
        store.quantization = spec.quantization
        try MemoryBudget.check(spec: spec, folder: folder, storedBytesPerWeight: store.dominantDType.byteSize,
                               storedWeightBytes: spec.quantization == nil ? nil : Double(store.storedBytes))
        let weights = try architecture.loadWeights(from: store, spec: spec)
        return DecoderModel(spec: spec, weights: weights, store: store)
    }
}

