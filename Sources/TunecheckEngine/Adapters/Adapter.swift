import Foundation
import TunecheckJSON

/// The on-disk kinds of LoRA adapter tunecheck reads. The kind is detected from the files, not declared.
public enum AdapterFormat: String, Sendable {
    /// `mlx_lm.lora`: `adapter_config.json` + `adapters.safetensors` (and `NNNNNNN_adapters.safetensors`
    /// checkpoints); `lora_a` (in, r), `lora_b` (r, out); `y += scale·(x·A)·B` with `lora_parameters.scale`.
    case mlx = "mlx_lm"
    /// Hugging Face PEFT: `adapter_config.json` + `adapter_model.safetensors`; `lora_A.weight` (r, in),
    /// `lora_B.weight` (out, r); scale `lora_alpha / r` (`/ sqrt(r)` with rslora), per-module patterns.
    case peft
}

/// One adapted linear layer: which block and module it targets, its two low-rank factors and its scale.
public struct AdapterModule: @unchecked Sendable {
    /// Block index (`model.layers.N` / `transformer.h.N`).
    public let layer: Int
    /// Path inside the block, e.g. `self_attn.q_proj`, `mlp.c_fc`.
    public let modulePath: String
    /// The tensor names it came from (for messages).
    public let downName: String
    public let upName: String
    public let down: FloatTensor
    public let up: FloatTensor
    public let rank: Int
    public let scale: Float
    public let format: AdapterFormat

    /// In and out features implied by the factors.
    public var inFeatures: Int { format == .mlx ? down.shape[0] : down.shape[1] }
    public var outFeatures: Int { format == .mlx ? up.shape[1] : up.shape[0] }

    public var lowRank: LowRankAdapter {
        LowRankAdapter(down: down.pointer, downLayout: format == .mlx ? .inOut : .outIn,
                       up: up.pointer, upLayout: format == .mlx ? .inOut : .outIn, rank: rank, scale: scale)
    }
}

/// A LoRA adapter loaded from disk (weights memory-mapped), ready to attach to a base model.
public final class Adapter: @unchecked Sendable {
    public let format: AdapterFormat
    /// The weights file read (e.g. `.../0000100_adapters.safetensors`).
    public let weightsURL: URL
    public let configURL: URL
    public let modules: [AdapterModule]
    /// The config as JSON, for reports.
    public let configSummary: [String: String]
    let store: WeightStore
    /// Whether the config says a (layer, full module name) should be adapted; used to catch targeted modules whose
    /// tensors are missing. nil when the config does not say (mlx_lm without explicit keys).
    let expectsModule: ((_ layer: Int, _ layerCount: Int, _ moduleName: String) -> Bool)?

    init(format: AdapterFormat, weightsURL: URL, configURL: URL, modules: [AdapterModule], configSummary: [String: String], store: WeightStore,
         expectsModule: ((Int, Int, String) -> Bool)?) {
        self.expectsModule = expectsModule
        self.format = format
        self.weightsURL = weightsURL
        self.configURL = configURL
        self.modules = modules
        self.configSummary = configSummary
        self.store = store
    }

    /// Loads an adapter from a directory (mlx_lm or PEFT, including a Trainer `checkpoint-N/` folder) or from one
    /// numbered mlx_lm checkpoint file (its `adapter_config.json` is read from the same directory).
    public static func load(path: URL) throws -> Adapter {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw AdapterError.notAnAdapter(path: path.path, reason: "no such file or folder")
        }
        let directory = isDirectory.boolValue ? path : path.deletingLastPathComponent()
        let configURL = directory.appendingPathComponent("adapter_config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            // A Trainer output folder holds the adapter in checkpoint-N/ sub-folders: say which to pass.
            let checkpoints = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
                .filter { $0.hasPrefix("checkpoint-") && FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).appendingPathComponent("adapter_config.json").path) }
                .sorted { (Int($0.dropFirst("checkpoint-".count)) ?? -1) < (Int($1.dropFirst("checkpoint-".count)) ?? -1) }
            let hint = checkpoints.isEmpty ? "" : "; pass one of its checkpoint folders (\(checkpoints.joined(separator: ", ")))"
            throw AdapterError.notAnAdapter(path: path.path, reason: "no adapter_config.json in \(directory.path)\(hint)")
        }
        let config = try readJSONObject(configURL)
        let weightsURL: URL
        if isDirectory.boolValue {
            let peftWeights = directory.appendingPathComponent("adapter_model.safetensors")
            let mlxWeights = directory.appendingPathComponent("adapters.safetensors")
            if FileManager.default.fileExists(atPath: peftWeights.path) {
                weightsURL = peftWeights
            } else if FileManager.default.fileExists(atPath: mlxWeights.path) {
                weightsURL = mlxWeights
            } else if FileManager.default.fileExists(atPath: directory.appendingPathComponent("adapter_model.bin").path) {
                throw AdapterError.unsupported(path: directory.path, feature: "adapter_model.bin (pickle); save the adapter with safe_serialization=True")
            } else {
                throw AdapterError.notAnAdapter(path: directory.path, reason: "no adapter_model.safetensors or adapters.safetensors")
            }
        } else {
            guard path.pathExtension == "safetensors" else {
                throw AdapterError.notAnAdapter(path: path.path, reason: "expected an adapter folder or a .safetensors adapter file")
            }
            weightsURL = path
        }
        let store = try WeightStore(files: [weightsURL])
        if config["peft_type"] != nil || weightsURL.lastPathComponent == "adapter_model.safetensors" {
            let parsed = try PEFTAdapterConfig(json: config, path: configURL.path)
            let modules = try parsed.modules(in: store, weightsPath: weightsURL.path)
            let layersToTransform = config["layers_to_transform"]?.array?.compactMap { SafeTensorsFile.exactInteger($0) }
                ?? config["layers_to_transform"].flatMap { SafeTensorsFile.exactInteger($0) }.map { [$0] }
            return Adapter(format: .peft, weightsURL: weightsURL, configURL: configURL, modules: modules, configSummary: parsed.summary, store: store,
                           expectsModule: { layer, _, name in
                               parsed.targets(name) && (layersToTransform.map { $0.contains(layer) } ?? true)
                           })
        }
        let parsed = try MLXAdapterConfig(json: config, path: configURL.path)
        let modules = try parsed.modules(in: store, weightsPath: weightsURL.path)
        // mlx_lm adapts the last `num_layers` blocks (-1 or absent: all), and in each the `keys` modules
        // (absent: every linear layer of the block).
        let expects: (Int, Int, String) -> Bool = { layer, layerCount, name in
            let firstAdapted = parsed.numLayers.map { $0 < 0 ? 0 : max(layerCount - $0, 0) } ?? 0
            return layer >= firstAdapted && (parsed.keys.map { $0.contains(Adapter.modulePath(ofLinearNamed: name)) } ?? true)
        }
        return Adapter(format: .mlx, weightsURL: weightsURL, configURL: configURL, modules: modules, configSummary: parsed.summary, store: store,
                       expectsModule: expects)
    }

    /// A new model whose linear layers carry this adapter, applied unfused as a low-rank path.
    /// Every module must exist in the base with matching in/out features.
    public func attach(to model: DecoderModel) throws -> DecoderModel {
        if let module = modules.first(where: { $0.layer >= model.spec.layerCount }) {
            throw AdapterError.doesNotFitBase(path: weightsURL.path, tensor: module.downName,
                                              reason: "layer \(module.layer) does not exist (the base has \(model.spec.layerCount) layers)")
        }
        // Layers can differ (Granite 4.0-H mixes Mamba and attention layers), so each module is checked against its own layer.
        let knownByLayer = model.weights.layers.map { Set($0.linears.map { Self.modulePath(ofLinearNamed: $0.name) }) }
        let (attachable, owner) = try attachableModules(knownByLayer: knownByLayer)
        var byLayer: [Int: [String: AttachableModule]] = [:]
        for module in attachable { byLayer[module.layer, default: [:]][module.modulePath] = module }
        if let stray = attachable.first(where: { !knownByLayer[$0.layer].contains($0.modulePath) }) {
            let known = knownByLayer[stray.layer]
            let elsewhere = knownByLayer.contains { $0.contains(stray.modulePath) } ? "layer \(stray.layer) has no module" : "the base has no module"
            throw AdapterError.doesNotFitBase(path: weightsURL.path, tensor: stray.downName,
                                              reason: "\(elsewhere) '\(stray.modulePath)' (it has \(known.sorted().joined(separator: ", ")))")
        }
        var attached = 0
        let result = try model.withLayers(retaining: owner) { layers in
            for index in layers.indices {
                guard let wanted = byLayer[index] else { continue }
                try layers[index].updateLinears { linear in
                    let path = Self.modulePath(ofLinearNamed: linear.name)
                    guard let module = wanted[path] else { return }
                    guard module.inFeatures == linear.inFeatures, module.outFeatures == linear.outFeatures else {
                        throw AdapterError.doesNotFitBase(
                            path: weightsURL.path, tensor: module.downName,
                            reason: "adapter is \(module.inFeatures)→\(module.outFeatures) but \(linear.name) is \(linear.inFeatures)→\(linear.outFeatures)")
                    }
                    linear.adapter = module.lowRank
                    attached += 1
                }
            }
        }
        // Every module was checked against `known` above, so each one found its linear layer.
        guard attached == attachable.count else {
            throw AdapterError.doesNotFitBase(path: weightsURL.path, tensor: modules.first?.downName ?? "?",
                                              reason: "\(attachable.count - attached) adapter modules found no linear layer")
        }
        if let expectsModule {
            for (index, layer) in result.weights.layers.enumerated() {
                for linear in layer.linears where linear.adapter == nil && expectsModule(index, model.spec.layerCount, linear.name) {
                    throw AdapterError.missingTensors(path: weightsURL.path, module: linear.name)
                }
            }
        }
        return result
    }

    /// `model.layers.3.self_attn.q_proj` → `self_attn.q_proj`; `transformer.h.0.attn.c_attn` → `attn.c_attn`.
    static func modulePath(ofLinearNamed name: String) -> String {
        guard let (_, path) = splitLayerKey(name) else { return name }
        return path
    }

    /// Splits `...layers.N.rest` or `...h.N.rest` into (N, rest).
    static func splitLayerKey(_ key: String) -> (layer: Int, path: String)? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for index in 0..<(parts.count - 1) where parts[index] == "layers" || parts[index] == "h" {
            if let layer = Int(parts[index + 1]), layer >= 0, index + 2 < parts.count {
                return (layer, parts[(index + 2)...].joined(separator: "."))
            }
        }
        return nil
    }

    static func readJSONObject(_ url: URL) throws -> JSONObject {
        let data: Data
        do { data = try BoundedFile.read(url, limit: BoundedFile.Limit.config) } catch {
            throw AdapterError.invalidConfig(path: url.path, reason: "cannot read: \(error.reason)")
        }
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch {
            throw AdapterError.invalidConfig(path: url.path, reason: "not valid JSON (\(error))")
        }
        guard let object = root.object else {
            throw AdapterError.invalidConfig(path: url.path, reason: "expected a JSON object")
        }
        return object
    }
}
