import Foundation
import TunecheckJSON

/// `adapter_config.json` as `mlx_lm.lora` writes it: `fine_tune_type`, `num_layers`,
/// `lora_parameters {rank, scale, dropout, keys}` and the training settings (ignored here).
/// Pre-0.11 configs used `lora_layers` for `num_layers` (mapped) and `lora_parameters.alpha` without `scale`
/// (rejected: its meaning changed between versions, so guessing would give silently wrong numbers).
struct MLXAdapterConfig {
    var fineTuneType: String
    var rank: Int
    var scale: Double
    var numLayers: Int?
    var keys: [String]?

    init(json: JSONObject, path: String) throws {
        fineTuneType = json["fine_tune_type"]?.string ?? "lora"
        switch fineTuneType {
        case "lora": break
        case "dora":
            throw AdapterError.unsupported(path: path, feature: "fine_tune_type 'dora' (DoRA magnitude vectors); fuse it with mlx_lm.fuse and load the fused folder")
        case "full":
            throw AdapterError.unsupported(path: path, feature: "fine_tune_type 'full' holds full weights, not an adapter; load it as a model folder")
        default:
            throw AdapterError.unsupported(path: path, feature: "fine_tune_type '\(fineTuneType)'")
        }
        guard let parameters = json["lora_parameters"]?.object else {
            throw AdapterError.invalidConfig(path: path, reason: "missing \"lora_parameters\" object")
        }
        guard let rankValue = parameters["rank"], let rank = SafeTensorsFile.exactInteger(rankValue), rank > 0 else {
            throw AdapterError.invalidConfig(path: path, reason: "lora_parameters.rank must be a positive integer")
        }
        self.rank = rank
        if let scale = parameters["scale"]?.double, scale.isFinite {
            self.scale = scale
        } else if parameters["alpha"] != nil {
            throw AdapterError.unsupported(path: path, feature: "lora_parameters.alpha without scale (a pre-0.11 mlx_lm config); add \"scale\" (the multiplier of x·A·B) to the config")
        } else {
            throw AdapterError.invalidConfig(path: path, reason: "lora_parameters.scale must be a number")
        }
        let layersValue = json["num_layers"] ?? json["lora_layers"]
        numLayers = layersValue.flatMap { SafeTensorsFile.exactInteger($0) }
        keys = parameters["keys"]?.array.flatMap { list in
            let names = list.compactMap(\.string)
            return names.count == list.count ? names : nil
        }
    }

    var summary: [String: String] {
        ["format": "mlx_lm", "fine_tune_type": fineTuneType, "rank": "\(rank)", "scale": "\(scale)",
         "num_layers": numLayers.map(String.init) ?? "all"]
    }

    /// Pairs every `<module>.lora_a` with its `<module>.lora_b` and checks their shapes and rank.
    func modules(in store: WeightStore, weightsPath: String) throws -> [AdapterModule] {
        var modules: [AdapterModule] = []
        let names = Set(store.tensorNames)
        for name in store.tensorNames where name.hasSuffix(".lora_a") {
            let prefix = String(name.dropLast(".lora_a".count))
            let upName = prefix + ".lora_b"
            guard names.contains(upName) else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name, reason: "no matching \(upName)")
            }
            guard let (layer, path) = Adapter.splitLayerKey(prefix) else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name, reason: "not inside a transformer block (model.layers.N...)")
            }
            let down = try store.floatTensor(name)
            let up = try store.floatTensor(upName)
            guard down.shape.count == 2, up.shape.count == 2, down.shape[1] == up.shape[0] else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name,
                                                  reason: "lora_a \(down.shape) and lora_b \(up.shape) are not (in, r) and (r, out)")
            }
            guard down.shape[1] == rank else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name, reason: "rank \(down.shape[1]) but lora_parameters.rank is \(rank)")
            }
            modules.append(AdapterModule(layer: layer, modulePath: path, downName: name, upName: upName, down: down, up: up,
                                         rank: rank, scale: Float(scale), format: .mlx))
        }
        if let stray = names.first(where: { $0.hasSuffix(".lora_b") && !names.contains(String($0.dropLast(7)) + ".lora_a") }) {
            throw AdapterError.doesNotFitBase(path: weightsPath, tensor: stray, reason: "no matching lora_a")
        }
        if let other = names.first(where: { !$0.hasSuffix(".lora_a") && !$0.hasSuffix(".lora_b") }) {
            throw AdapterError.unsupported(path: weightsPath, feature: "tensor '\(other)' is not a LoRA factor (DoRA or trained non-LoRA weights?)")
        }
        guard !modules.isEmpty else { throw AdapterError.notAnAdapter(path: weightsPath, reason: "no lora_a/lora_b tensors") }
        return modules.sorted { ($0.layer, $0.modulePath) < ($1.layer, $1.modulePath) }
    }
}
