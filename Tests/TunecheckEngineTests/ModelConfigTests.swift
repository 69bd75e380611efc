import Foundation
import Testing
@testable import TunecheckEngine

/// `config.json` and weights of real fixture folders, copied to a temporary folder and broken one way at a time.
/// Each case checks the `EngineError` case, that it names `config.json` (or the weights file), and that the message
/// says what is wrong.
@Suite struct ModelConfigTests {

    struct ConfigCase: Sendable, CustomTestStringConvertible {
        let label: String
        let fixture: String
        let edit: @Sendable (inout [String: Any]) -> Void
        let expectedCase: String
        let fragments: [String]
        var testDescription: String { "\(fixture): \(label)" }

        init(_ label: String, _ fixture: String = "llama-bf16", _ expectedCase: String = "invalidConfig", _ fragments: [String],
             edit: @escaping @Sendable (inout [String: Any]) -> Void) {
            self.label = label
            self.fixture = fixture
            self.edit = edit
            self.expectedCase = expectedCase
            self.fragments = fragments
        }

        /// Sets `key` to the JSON value `json` (nil removes the key).
        static func set(_ label: String, _ key: String, _ json: String?, _ fragments: [String], fixture: String = "llama-bf16",
                        expect expectedCase: String = "invalidConfig") -> ConfigCase {
            ConfigCase(label, fixture, expectedCase, fragments) { config in
                config[key] = json.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8), options: .fragmentsAllowed) }
            }
        }
    }

    static let configCases: [ConfigCase] = [
        .set("missing model_type", "model_type", nil, ["\"model_type\""]),
        .set("model_type not a string", "model_type", "7", ["\"model_type\""]),
        .set("unknown model_type", "model_type", #""mamba""#, ["'mamba'", "supported:", "llama", "gpt2", "qwen3"], expect: "unsupportedModelType"),
        .set("missing hidden_size", "hidden_size", nil, ["missing field \"hidden_size\""]),
        .set("hidden_size as a string", "hidden_size", #""64""#, ["\"hidden_size\"", "integer"]),
        .set("hidden_size fractional", "hidden_size", "64.5", ["\"hidden_size\""]),
        .set("hidden_size null", "hidden_size", "null", ["\"hidden_size\""]),
        .set("hidden_size negative", "hidden_size", "-64", ["hidden size -64", "out of range"]),
        .set("hidden_size zero", "hidden_size", "0", ["hidden size 0", "out of range"]),
        .set("hidden_size absurd", "hidden_size", "1000000000", ["hidden size 1000000000", "out of range"]),
        .set("hidden_size beyond Int", "hidden_size", "1e30", ["\"hidden_size\""]),
        .set("vocab_size zero", "vocab_size", "0", ["vocab_size 0"]),
        .set("vocab_size absurd", "vocab_size", "1000000000", ["vocab_size 1000000000"]),
        .set("missing vocab_size", "vocab_size", nil, ["missing field \"vocab_size\""]),
        .set("num_hidden_layers zero", "num_hidden_layers", "0", ["layer count 0"]),
        .set("num_hidden_layers absurd", "num_hidden_layers", "1000000000", ["layer count 1000000000"]),
        .set("intermediate_size negative", "intermediate_size", "-1", ["intermediate size -1"]),
        .set("intermediate_size absurd", "intermediate_size", "1000000000", ["intermediate size 1000000000"]),
        .set("num_attention_heads zero", "num_attention_heads", "0", ["num_attention_heads"]),
        .set("num_attention_heads negative", "num_attention_heads", "-4", ["num_attention_heads"]),
        .set("kv heads not dividing heads", "num_key_value_heads", "3", ["num_key_value_heads 3", "num_attention_heads 4"]),
        .set("kv heads zero", "num_key_value_heads", "0", ["num_key_value_heads 0"]),
        .set("head_dim absurd", "head_dim", "1000000000", ["head_dim 1000000000"]),
        .set("head_dim odd", "head_dim", "15", ["rotary dimension 15", "even"]),
        .set("max_position_embeddings zero", "max_position_embeddings", "0", ["max positions 0"]),
        .set("max_position_embeddings absurd", "max_position_embeddings", "1000000000", ["max positions 1000000000"]),
        .set("rms_norm_eps negative", "rms_norm_eps", "-1e-5", ["norm epsilon"]),
        .set("unknown hidden_act", "hidden_act", #""swishy""#, ["hidden_act 'swishy'", "silu"]),
        .set("tie_word_embeddings a string", "tie_word_embeddings", #""yes""#, ["\"tie_word_embeddings\"", "true or false"]),
        .set("quantization bits 7", "quantization", #"{"group_size": 64, "bits": 7}"#, ["quantization.bits is 7", "2, 3, 4, 5, 6 or 8"]),
        .set("quantization group size 48", "quantization", #"{"group_size": 48, "bits": 4}"#, ["group_size is 48"]),
        .set("quantization without bits", "quantization", #"{"group_size": 64}"#, ["\"group_size\" and \"bits\""]),
        .set("quantization module entry a number", "quantization", #"{"group_size": 64, "bits": 4, "lm_head": 3}"#,
             ["quantization.lm_head", "or false"]),
        .set("quantization module bits 1", "quantization", #"{"group_size": 64, "bits": 4, "lm_head": {"group_size": 64, "bits": 1}}"#,
             ["quantization.lm_head.bits is 1"]),
        .set("quantization mode mxfp4", "quantization", #"{"group_size": 32, "bits": 4, "mode": "mxfp4"}"#, ["quantization mode 'mxfp4'"],
             expect: "unsupportedFeature"),
        .set("quantization module mode nvfp4", "quantization",
             #"{"group_size": 64, "bits": 4, "lm_head": {"group_size": 16, "bits": 4, "mode": "nvfp4"}}"#, ["quantization mode 'nvfp4'"],
             expect: "unsupportedFeature"),
        .set("quantization_config gptq", "quantization_config", #"{"quant_method": "gptq", "bits": 4}"#, ["quantization method 'gptq'"],
             expect: "unsupportedFeature"),
        .set("quantization_config awq", "quantization_config", #"{"quant_method": "awq"}"#, ["quantization method 'awq'"], expect: "unsupportedFeature"),
        .set("quantization_config bitsandbytes", "quantization_config", #"{"quant_method": "bitsandbytes", "load_in_4bit": true}"#,
             ["quantization method 'bitsandbytes'"], expect: "unsupportedFeature"),
        .set("rope type yarn", "rope_parameters", #"{"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0}"#, ["rope scaling type 'yarn'"], expect: "unsupportedFeature"),
        ConfigCase("legacy rope type yarn", "llama-bf16", "unsupportedFeature", ["'yarn'"]) { config in
            config["rope_parameters"] = nil
            config["rope_theta"] = 10000.0
            config["rope_scaling"] = ["type": "yarn", "factor": 4.0]
        },
        .set("linear rope without factor", "rope_parameters", #"{"rope_type": "linear", "rope_theta": 10000.0}"#, ["linear", "factor"]),
        .set("rope_parameters a string", "rope_parameters", #""default""#, ["\"rope_parameters\"", "an object"]),
        .set("rope_theta zero", "rope_parameters", #"{"rope_type": "default", "rope_theta": 0.0}"#, ["rope_theta"]),
        .set("rope_theta a string", "rope_parameters", #"{"rope_type": "default", "rope_theta": "1e4"}"#, ["rope_theta", "a number"]),
        .set("partial_rotary_factor absurd", "partial_rotary_factor", "1e300", ["partial_rotary_factor"]),
        .set("partial_rotary_factor negative", "partial_rotary_factor", "-1.0", ["rotary dimension -16"]),
        ConfigCase("llama3 rope missing low_freq_factor", "llama-rope-llama3-old-schema", "invalidConfig", ["llama3", "low_freq_factor"]) { config in
            var scaling = config["rope_scaling"] as? [String: Any] ?? [:]
            scaling["low_freq_factor"] = nil
            config["rope_scaling"] = scaling
        },
        ConfigCase("llama3 rope missing original_max_position_embeddings", "llama-rope-llama3-old-schema", "invalidConfig",
                   ["llama3", "original_max_position_embeddings"]) { config in
            var scaling = config["rope_scaling"] as? [String: Any] ?? [:]
            scaling["original_max_position_embeddings"] = nil
            config["rope_scaling"] = scaling
        },
        ConfigCase("llama3 rope low_freq_factor above high", "llama-rope-llama3-old-schema", "invalidConfig", ["llama3"]) { config in
            var scaling = config["rope_scaling"] as? [String: Any] ?? [:]
            scaling["low_freq_factor"] = 8.0
            config["rope_scaling"] = scaling
        },
        .set("gpt2 n_embd absurd", "n_embd", "4000000000000000000", ["hidden size 4000000000000000000"], fixture: "gpt2-inner96"),
        ConfigCase("gpt2 n_embd absurd, default n_inner", "gpt2-inner96", "invalidConfig", ["n_embd"]) { config in
            config["n_embd"] = 4_000_000_000_000_000_000
            config["n_head"] = 1
            config["n_inner"] = nil
        },
        .set("gpt2 n_head zero", "n_head", "0", ["n_head"], fixture: "gpt2-inner96"),
        .set("gpt2 n_embd not divisible", "n_embd", "66", ["n_embd 66", "n_head 4"], fixture: "gpt2-inner96"),
        .set("gpt2 missing n_layer", "n_layer", nil, ["missing field \"n_layer\""], fixture: "gpt2-inner96"),
        .set("gpt2 unknown activation", "activation_function", #""gelu_fast2""#, ["activation_function 'gelu_fast2'"], fixture: "gpt2-inner96"),
        .set("granite logits_scaling zero", "logits_scaling", "0.0", ["logits_scaling"], fixture: "granite"),
        .set("granite attention_multiplier negative", "attention_multiplier", "-0.05", ["attention scale"], fixture: "granite"),
        .set("qwen2 per-layer sliding windows", "use_sliding_window", "true", ["use_sliding_window"], fixture: "qwen2"),
        .set("mistral sliding_window zero", "sliding_window", "0", ["sliding_window"], fixture: "mistral"),
        .set("hybrid unknown layer type", "layer_types", #"["mamba", "attention", "mamba2", "attention"]"#, ["layer_types", "'mamba2'"],
             fixture: "granite-hybrid-moe-nope"),
        .set("hybrid layer_types too short", "layer_types", #"["mamba", "attention"]"#, ["layer_types has 2 entries", "num_hidden_layers is 4"],
             fixture: "granite-hybrid-moe-nope"),
        .set("hybrid mamba heads × head size ≠ expand × hidden", "mamba_d_head", "12", ["mamba_n_heads 4 × mamba_d_head 12"],
             fixture: "granite-hybrid-moe-nope"),
        .set("hybrid groups do not divide heads", "mamba_n_groups", "3", ["mamba_n_groups 3"], fixture: "granite-hybrid-dense-rope"),
        .set("hybrid top-k above the experts", "num_experts_per_tok", "5", ["num_experts_per_tok 5"], fixture: "granite-hybrid-moe-nope"),
        .set("hybrid time_step_limit unordered", "time_step_limit", "[1.0, 0.5]", ["time_step_limit"], fixture: "granite-hybrid-dense-rope"),
        .set("hybrid time_step_limit tag unknown", "time_step_limit", #"[0.0, {"__float__": "Huge"}]"#, ["time_step_limit"],
             fixture: "granite-hybrid-dense-rope"),
        .set("hybrid chunk size zero", "mamba_chunk_size", "0", ["mamba_chunk_size"], fixture: "granite-hybrid-dense-rope"),
        // Products of these would overflow Int (a trap) if they were not range-checked first.
        .set("hybrid mamba_d_head absurd", "mamba_d_head", "4611686018427387904", ["mamba_d_head 4611686018427387904"],
             fixture: "granite-hybrid-moe-nope"),
        .set("hybrid hidden_size absurd", "hidden_size", "4611686018427387904", ["invalid config", "1152921504606846976"],
             fixture: "granite-hybrid-moe-nope"),
    ]

    @Test(arguments: configCases)
    func brokenConfigIsRejected(_ testCase: ConfigCase) throws {
        try BadInput.withTemporaryFolder("config") { parent in
            let folder = try BadInput.copyFixture(testCase.fixture, into: parent)
            try BadInput.editConfig(folder, testCase.edit)
            let configPath = folder.appendingPathComponent("config.json").path
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            #expect(error?.caseName == testCase.expectedCase, "\(testCase.label): \(String(describing: error))")
            #expect(error?.path == configPath, "\(testCase.label)")
            BadInput.expectMessage(error, contains: [configPath] + testCase.fragments)
        }
    }

    /// The unsupported-type message lists every type the fixtures use (read from their configs, not the registry).
    @Test func unknownModelTypeListsSupportedTypes() throws {
        var fixtureTypes = Set<String>()
        for name in FixturePaths.ownModelNames {
            let config = try BadInput.readJSONObject(FixturePaths.ownModel(name).appendingPathComponent("config.json"))
            fixtureTypes.insert(try #require(config["model_type"] as? String))
        }
        #expect(fixtureTypes.count >= 6)
        try BadInput.withTemporaryFolder("config-type") { parent in
            let folder = try BadInput.copyFixture("llama-bf16", into: parent)
            try BadInput.editConfig(folder) { $0["model_type"] = "llama4_text" }
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            guard case let .unsupportedModelType(_, modelType, supported) = error else {
                Issue.record("expected unsupportedModelType, got \(String(describing: error))")
                return
            }
            #expect(modelType == "llama4_text")
            #expect(fixtureTypes.isSubset(of: Set(supported)), "supported \(supported) lacks some of \(fixtureTypes)")
            BadInput.expectMessage(error, contains: fixtureTypes.sorted())
        }
    }

    @Test(arguments: [("not JSON", "{\"model_type\": \"llama\",", "not valid JSON"), ("JSON array", "[{\"model_type\": \"llama\"}]", "JSON object"),
                      ("JSON string", "\"llama\"", "JSON object"), ("empty file", "", "not valid JSON")])
    func configThatIsNotAnObject(label: String, text: String, fragment: String) throws {
        try BadInput.withTemporaryFolder("config-text") { parent in
            let folder = try BadInput.copyFixture("mistral", into: parent)
            let url = try BadInput.write(Data(text.utf8), named: "config.json", in: folder)
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            #expect(error?.caseName == "invalidConfig", "\(label)")
            BadInput.expectMessage(error, contains: [url.path, fragment])
        }
    }

    @Test func missingOrUnreadableConfig() throws {
        try BadInput.withTemporaryFolder("config-missing") { parent in
            let folder = try BadInput.copyFixture("mistral", into: parent)
            let url = folder.appendingPathComponent("config.json")
            try FileManager.default.removeItem(at: url)
            var error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            #expect(error == .unreadable(path: url.path, reason: "no such file"))
            BadInput.expectMessage(error, contains: [url.path, "no such file"])

            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
            error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            #expect(error?.caseName == "unreadable")
            #expect(error?.path == url.path)
        }
    }

    @Test func loaderNeedsAnExistingFolder() throws {
        let file = FixturePaths.ownModel("mistral").appendingPathComponent("config.json")
        var error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: file) }
        #expect(error?.caseName == "unreadable")
        BadInput.expectMessage(error, contains: [file.path, "found a file"])

        let nowhere = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-no-such-model-\(UUID().uuidString)")
        error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: nowhere) }
        #expect(error?.caseName == "unreadable")
        BadInput.expectMessage(error, contains: [nowhere.path, "no such folder"])
    }

    // MARK: - Weights that do not fit the config

    /// Dropping a tensor the architecture needs gives `.missingTensor` naming it (and the folder).
    @Test(arguments: [("llama-rope-llama3-old-schema", "model.layers.1.mlp.down_proj.weight"),
                      ("llama-rope-llama3-old-schema", "lm_head.weight"),
                      ("qwen2", "model.layers.0.self_attn.q_proj.bias"),
                      ("qwen3", "model.layers.1.self_attn.k_norm.weight"),
                      ("phi3", "model.layers.0.self_attn.qkv_proj.weight"),
                      ("gpt2-inner96", "transformer.h.1.ln_2.bias")])
    func missingTensor(fixture: String, tensor: String) throws {
        try BadInput.withTemporaryFolder("weights-missing") { parent in
            let folder = try BadInput.copyFixture(fixture, into: parent)
            var found = false
            try BadInput.rewriteWeights(folder) { tensors in
                found = tensors.contains { $0.name == tensor }
                tensors.removeAll { $0.name == tensor }
            }
            try #require(found, "test bug: \(fixture) has no tensor \(tensor)")
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            #expect(error == .missingTensor(path: folder.path, name: tensor))
            BadInput.expectMessage(error, contains: [folder.path, "missing tensor '\(tensor)'"])
        }
    }

    /// The same tensor written transposed: same byte count, wrong shape.
    @Test(arguments: [("llama-rope-llama3-old-schema", "model.layers.0.mlp.down_proj.weight"),
                      ("llama-bf16", "model.embed_tokens.weight"),
                      ("gpt2-inner96", "transformer.h.0.attn.c_attn.weight")])
    func wrongTensorShape(fixture: String, tensor: String) throws {
        try BadInput.withTemporaryFolder("weights-shape") { parent in
            let folder = try BadInput.copyFixture(fixture, into: parent)
            var original: [Int] = []
            try BadInput.rewriteWeights(folder) { tensors in
                guard let index = tensors.firstIndex(where: { $0.name == tensor }) else { return }
                original = tensors[index].shape
                tensors[index].shape = original.reversed()
            }
            try #require(original.count == 2 && original[0] != original[1], "test bug: \(tensor) in \(fixture) is \(original)")
            let file = folder.appendingPathComponent("model.safetensors").path
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            #expect(error == .tensorShapeMismatch(path: file, name: tensor, expected: original, actual: original.reversed()))
            BadInput.expectMessage(error, contains: [file, "'\(tensor)'"])
        }
    }

    @Test func nonFiniteWeightInAModel() throws {
        try BadInput.withTemporaryFolder("weights-nan") { parent in
            let folder = try BadInput.copyFixture("llama-bf16", into: parent)
            let tensor = "model.layers.1.self_attn.o_proj.weight"
            try BadInput.rewriteWeights(folder) { tensors in
                if let index = tensors.firstIndex(where: { $0.name == tensor }) { tensors[index].values[5] = .nan }
            }
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: folder) }
            #expect(error == .nonFiniteWeights(path: folder.appendingPathComponent("model.safetensors").path, name: tensor))
        }
    }

    // MARK: - Both config schemas

    /// transformers 5 (`rope_parameters`, `dtype`) and older (`rope_theta` + `rope_scaling`, `torch_dtype`) configs of
    /// the same model must give the same spec. Each fixture is converted to the other schema here.
    @Test(arguments: ["llama-bf16", "llama-rope-linear-tied", "llama-rope-llama3-old-schema", "qwen3", "phi3"])
    func bothSchemasGiveTheSameSpec(fixture: String) throws {
        try BadInput.withTemporaryFolder("config-schema") { parent in
            let source = FixturePaths.ownModel(fixture).appendingPathComponent("config.json")
            let config = try BadInput.readJSONObject(source)
            var modern = config
            var legacy = config
            // Modern: everything rotary inside rope_parameters, `dtype`.
            var parameters = (config["rope_parameters"] as? [String: Any]) ?? (config["rope_scaling"] as? [String: Any]) ?? [:]
            if let theta = config["rope_theta"] { parameters["rope_theta"] = theta }
            if parameters["rope_type"] == nil { parameters["rope_type"] = parameters["type"] ?? "default" }
            parameters["type"] = nil
            modern["rope_parameters"] = parameters
            modern["rope_scaling"] = nil
            modern["rope_theta"] = nil
            modern["dtype"] = config["dtype"] ?? config["torch_dtype"]
            modern["torch_dtype"] = nil
            // Legacy: top-level rope_theta, rope_scaling with the old `type` key (null when default), `torch_dtype`.
            var scaling = parameters
            legacy["rope_theta"] = scaling.removeValue(forKey: "rope_theta")
            if let type = scaling.removeValue(forKey: "rope_type") as? String, type != "default" {
                scaling["type"] = type
                legacy["rope_scaling"] = scaling
            } else {
                legacy["rope_scaling"] = NSNull()
                if let factor = scaling["partial_rotary_factor"] { legacy["partial_rotary_factor"] = factor }
            }
            legacy["rope_parameters"] = nil
            legacy["torch_dtype"] = modern["dtype"]
            legacy["dtype"] = nil

            let modernURL = parent.appendingPathComponent("modern.json")
            let legacyURL = parent.appendingPathComponent("legacy.json")
            try BadInput.writeJSONObject(modern, to: modernURL)
            try BadInput.writeJSONObject(legacy, to: legacyURL)
            let modernSpec = try ModelConfigLoader.loadSpec(configURL: modernURL).spec
            let legacySpec = try ModelConfigLoader.loadSpec(configURL: legacyURL).spec
            #expect(modernSpec == legacySpec)

            // And the spec carries the config's own numbers (so two equally wrong readings cannot pass).
            guard case .rotary(let rotary) = modernSpec.positions else {
                Issue.record("\(fixture): expected rotary positions")
                return
            }
            #expect(rotary.theta == (parameters["rope_theta"] as? Double))
            #expect(modernSpec.declaredDType?.configName == (modern["dtype"] as? String))
            switch parameters["rope_type"] as? String {
            case "linear":
                #expect(rotary.scaling == .linear(factor: try #require(parameters["factor"] as? Double)))
            case "llama3":
                #expect(rotary.scaling == .llama3(factor: try #require(parameters["factor"] as? Double),
                                                  lowFrequencyFactor: try #require(parameters["low_freq_factor"] as? Double),
                                                  highFrequencyFactor: try #require(parameters["high_freq_factor"] as? Double),
                                                  originalMaxPositions: try #require(parameters["original_max_position_embeddings"] as? Double)))
            default:
                #expect(rotary.scaling == .none)
            }
        }
    }
}
