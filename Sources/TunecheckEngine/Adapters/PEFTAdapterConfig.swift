import Foundation
import TunecheckJSON

/// PEFT's `adapter_config.json` for `peft_type: LORA`. Per-module rank and alpha come from `rank_pattern` /
/// `alpha_pattern` (a key matches a module when the module name ends with it as a dotted suffix or matches it as
/// a regex, as PEFT's `get_pattern_key` does); scale is `alpha / r`, or `alpha / sqrt(r)` with `use_rslora`.
/// Fields that change the computation in ways not implemented are rejected rather than ignored.
struct PEFTAdapterConfig {
    var rank: Int
    var alpha: Double
    var useRSLoRA: Bool
    var rankPattern: [String: Int]
    var alphaPattern: [String: Double]
    /// Pattern keys in file order: PEFT takes the first key that matches, so order matters when several do.
    var rankPatternOrder: [String]
    var alphaPatternOrder: [String]
    var targetModules: TargetModules
    var excludeModules: TargetModules?
    /// PEFT forces this to match the base layer (true for GPT-2 `Conv1D`, false for `nn.Linear`) whatever the file
    /// says, so the layer's own layout decides how ΔW is added when fusing; the flag is only reported.
    var fanInFanOut: Bool

    enum TargetModules {
        case names([String])
        case regex(String)
        case allLinear
    }

    init(json: JSONObject, path: String) throws {
        func fail(_ reason: String) -> AdapterError { .invalidConfig(path: path, reason: reason) }
        let peftType = json["peft_type"]?.string ?? "LORA"
        guard peftType == "LORA" else { throw AdapterError.unsupported(path: path, feature: "peft_type '\(peftType)' (only LORA)") }
        guard let rankValue = json["r"], let rank = SafeTensorsFile.exactInteger(rankValue), rank > 0 else {
            throw fail("\"r\" must be a positive integer")
        }
        self.rank = rank
        guard let alpha = json["lora_alpha"]?.double, alpha.isFinite else { throw fail("\"lora_alpha\" must be a number") }
        self.alpha = alpha
        useRSLoRA = json["use_rslora"]?.bool ?? false
        fanInFanOut = json["fan_in_fan_out"]?.bool ?? false
        if json["use_dora"]?.bool == true {
            throw AdapterError.unsupported(path: path, feature: "use_dora (DoRA); merge it with PEFT's merge_and_unload() and load the merged folder")
        }
        if let modules = json["modules_to_save"], !modules.isNull, !(modules.array?.isEmpty ?? false) {
            throw AdapterError.unsupported(path: path, feature: "modules_to_save (fully trained extra modules)")
        }
        if let bias = json["bias"]?.string, bias != "none" {
            throw AdapterError.unsupported(path: path, feature: "bias '\(bias)' (trained biases)")
        }
        if json["lora_bias"]?.bool == true { throw AdapterError.unsupported(path: path, feature: "lora_bias") }
        if let replication = json["layer_replication"], !replication.isNull {
            throw AdapterError.unsupported(path: path, feature: "layer_replication")
        }
        // Fields that change what the adapter computes, accepted only at their "off" values.
        for field in ["target_parameters", "alora_invocation_tokens", "trainable_token_indices", "use_qalora", "use_bdlora",
                      "arrow_config", "kasa_config", "velora_config", "monteclora_config"] {
            if let value = json[field], Self.isSet(value) {
                throw AdapterError.unsupported(path: path, feature: "\(field) (not a plain LoRA)")
            }
        }
        // Pattern keys in file order (the parser keeps it); a repeated key keeps its first value.
        var ranks: [String: Int] = [:]
        var rankOrder: [String] = []
        let rankObject = json["rank_pattern"]?.object ?? JSONObject()
        for (key, value) in zip(rankObject.keys, rankObject.values) where ranks[key] == nil {
            guard let rank = SafeTensorsFile.exactInteger(value), rank > 0 else { throw fail("rank_pattern['\(key)'] must be a positive integer") }
            ranks[key] = rank
            rankOrder.append(key)
        }
        rankPattern = ranks
        rankPatternOrder = rankOrder
        var alphas: [String: Double] = [:]
        var alphaOrder: [String] = []
        let alphaObject = json["alpha_pattern"]?.object ?? JSONObject()
        for (key, value) in zip(alphaObject.keys, alphaObject.values) where alphas[key] == nil {
            guard let alpha = value.double else { throw fail("alpha_pattern['\(key)'] must be a number") }
            alphas[key] = alpha
            alphaOrder.append(key)
        }
        alphaPattern = alphas
        alphaPatternOrder = alphaOrder
        targetModules = Self.moduleSelection(json["target_modules"]) ?? .allLinear
        excludeModules = Self.moduleSelection(json["exclude_modules"])
        if case .names(let names)? = excludeModules, names.isEmpty { excludeModules = nil }
        if case .regex(let text)? = excludeModules, text.isEmpty { excludeModules = nil }
        for case .regex(let pattern) in [targetModules, excludeModules].compactMap({ $0 }) {
            guard (try? NSRegularExpression(pattern: "^(?:\(pattern))$")) != nil else {
                throw fail("target_modules / exclude_modules regex '\(pattern)' does not compile")
            }
        }
    }

    /// `target_modules` / `exclude_modules`: a list of names, `all-linear`, or a regex; nil when absent or neither.
    static func moduleSelection(_ value: JSONValue?) -> TargetModules? {
        switch value {
        case .array(let list)?:
            let names = list.compactMap(\.string)
            return names.count == list.count ? .names(names) : nil
        case .string(let text)?: return text == "all-linear" ? .allLinear : .regex(text)
        default: return nil
        }
    }

    /// Whether a config value is something other than null, false, an empty list or an empty object.
    static func isSet(_ value: JSONValue) -> Bool {
        switch value {
        case .null: return false
        case .array(let list): return !list.isEmpty
        case .object(let object): return !object.keys.isEmpty
        case .bool(let flag): return flag
        default: return true
        }
    }

    var summary: [String: String] {
        ["format": "peft", "r": "\(rank)", "lora_alpha": "\(alpha)", "use_rslora": "\(useRSLoRA)"]
    }

    /// The pattern key PEFT would pick for `moduleName`: the first key that matches as a dotted suffix or regex.
    static func patternKey(_ keys: [String], for moduleName: String) -> String? {
        for key in keys {
            if moduleName == key || moduleName.hasSuffix("." + key) { return key }
            if let regex = try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$"),
               regex.firstMatch(in: moduleName, range: NSRange(moduleName.startIndex..., in: moduleName)) != nil {
                return key
            }
        }
        return nil
    }

    func scale(for moduleName: String) -> (rank: Int, scale: Double) {
        let moduleRank = Self.patternKey(rankPatternOrder, for: moduleName).flatMap { rankPattern[$0] } ?? rank
        let moduleAlpha = Self.patternKey(alphaPatternOrder, for: moduleName).flatMap { alphaPattern[$0] } ?? alpha
        let denominator = useRSLoRA ? Double(moduleRank).squareRoot() : Double(moduleRank)
        return (moduleRank, moduleAlpha / denominator)
    }

    /// Whether PEFT would have adapted `moduleName` (used to find targeted modules with no tensors):
    /// `exclude_modules` first, then `target_modules` (a list: exact name or dotted suffix; a string: full regex match).
    func targets(_ moduleName: String) -> Bool {
        if let excludeModules, Self.matches(excludeModules, moduleName) { return false }
        return Self.matches(targetModules, moduleName)
    }

    static func matches(_ targetModules: TargetModules, _ moduleName: String) -> Bool {
        switch targetModules {
        case .allLinear: return true
        case .names(let names): return names.contains { moduleName == $0 || moduleName.hasSuffix("." + $0) }
        case .regex(let pattern):
            guard let regex = try? NSRegularExpression(pattern: "^(?:\(pattern))$") else { return false }
            return regex.firstMatch(in: moduleName, range: NSRange(moduleName.startIndex..., in: moduleName)) != nil
        }
    }

    func modules(in store: WeightStore, weightsPath: String) throws -> [AdapterModule] {
        let names = Set(store.tensorNames)
        var modules: [AdapterModule] = []
        for name in store.tensorNames where name.hasSuffix(".lora_A.weight") {
            let modulePrefix = String(name.dropLast(".lora_A.weight".count))
            let upName = modulePrefix + ".lora_B.weight"
            guard names.contains(upName) else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name, reason: "no matching \(upName)")
            }
            // `base_model.model.` wraps the base model's own names.
            let moduleName = modulePrefix.hasPrefix("base_model.model.") ? String(modulePrefix.dropFirst("base_model.model.".count)) : modulePrefix
            guard let (layer, path) = Adapter.splitLayerKey(moduleName) else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name, reason: "not inside a transformer block (model.layers.N...)")
            }
            let down = try store.floatTensor(name)
            let up = try store.floatTensor(upName)
            guard down.shape.count == 2, up.shape.count == 2, down.shape[0] == up.shape[1] else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name,
                                                  reason: "lora_A \(down.shape) and lora_B \(up.shape) are not (r, in) and (out, r)")
            }
            let (expectedRank, scale) = self.scale(for: moduleName)
            guard down.shape[0] == expectedRank else {
                throw AdapterError.doesNotFitBase(path: weightsPath, tensor: name, reason: "rank \(down.shape[0]) but the config says r = \(expectedRank)")
            }
            modules.append(AdapterModule(layer: layer, modulePath: path, downName: name, upName: upName, down: down, up: up,
                                         rank: expectedRank, scale: Float(scale), format: .peft))
        }
        if let other = names.first(where: { !$0.hasSuffix(".lora_A.weight") && !$0.hasSuffix(".lora_B.weight") }) {
            throw AdapterError.unsupported(path: weightsPath, feature: "tensor '\(other)' is not a LoRA factor (modules_to_save, DoRA or embedding adapters?)")
        }
        guard !modules.isEmpty else { throw AdapterError.notAnAdapter(path: weightsPath, reason: "no lora_A/lora_B tensors") }
        return modules.sorted { ($0.layer, $0.modulePath) < ($1.layer, $1.modulePath) }
    }
}
