import Foundation
import Testing
@testable import TunecheckEngine

/// LoRA adapters applied unfused, against the references computed by PEFT and mlx_lm
/// (`Tests/Fixtures/adapters/*/reference.json`), and every way an adapter can be wrong.
struct AdapterTests {
    /// Scores the fixture's texts with base + adapter, one at a time and packed, and returns the rows.
    static func unfusedScores(_ name: String, adapterFile: String? = nil) throws -> (single: [[Double]], packed: [[Double]]) {
        let reference = try AdapterReference.load(name)
        let base = try ModelLoader.loadDecoder(folder: try AdapterFixtures.basePath(name))
        var path = try AdapterFixtures.adapterPath(name)
        if let adapterFile { path = path.appendingPathComponent(adapterFile) }
        let model = try Adapter.load(path: path).attach(to: base)
        let scorer = Scorer(model: model)
        let single = try reference.texts.map { try scorer.score([$0.ids])[0] }
        let packed = try scorer.score(reference.texts.map(\.ids))
        return (single, packed)
    }

    @Test("Unfused log-probs match PEFT / mlx_lm", arguments: AdapterFixtures.names)
    func unfusedMatchesReference(name: String) throws {
        let reference = try AdapterReference.load(name)
        let (single, packed) = try Self.unfusedScores(name)
        let expected = reference.texts.map(\.logprobs)
        let difference = max(maxDifference(single, expected), maxDifference(packed, expected))
        print("adapter \(name): unfused max |Δlogprob| = \(difference)")
        #expect(difference <= AdapterFixtures.tolerance(name), "\(name): \(difference)")
    }

    @Test("mlx_lm numbered checkpoints match their references", arguments: ["0000002_adapters.safetensors", "0000004_adapters.safetensors"])
    func mlxNumberedCheckpoint(file: String) throws {
        let reference = try AdapterReference.load("mlx-llama")
        let expected = try #require(reference.checkpoints?[file]).texts.map(\.logprobs)
        let (single, packed) = try Self.unfusedScores("mlx-llama", adapterFile: file)
        let difference = max(maxDifference(single, expected), maxDifference(packed, expected))
        print("adapter mlx-llama/\(file): unfused max |Δlogprob| = \(difference)")
        #expect(difference <= AdapterFixtures.tolerance("mlx-llama"))
        // The two checkpoints differ by far more than the tolerance, so loading the wrong file cannot pass.
        let other = try #require(reference.checkpoints?[file == "0000002_adapters.safetensors" ? "0000004_adapters.safetensors" : "0000002_adapters.safetensors"])
        #expect(maxDifference(single, other.texts.map(\.logprobs)) > 0.1)
    }

    @Test func formatAndScalesAreDetected() throws {
        let peft = try Adapter.load(path: AdapterFixtures.adapterPath("peft-llama-rslora"))
        #expect(peft.format == .peft)
        // rsLoRA: alpha / sqrt(r); rank_pattern gives layer-0 v rank 2; alpha_pattern gives layer-1 q alpha 4.
        let scales = Dictionary(uniqueKeysWithValues: peft.modules.map { ("\($0.layer).\($0.modulePath)", $0.scale) })
        #expect(abs(scales["0.self_attn.q_proj"]! - 4) < 1e-6)
        #expect(abs(scales["0.self_attn.v_proj"]! - 8 / Float(2).squareRoot()) < 1e-6)
        #expect(abs(scales["1.self_attn.q_proj"]! - 2) < 1e-6)
        #expect(abs(scales["1.self_attn.v_proj"]! - 4) < 1e-6)
        #expect(peft.modules.first { $0.layer == 0 && $0.modulePath == "self_attn.v_proj" }?.rank == 2)
        let mlx = try Adapter.load(path: AdapterFixtures.adapterPath("mlx-llama"))
        #expect(mlx.format == .mlx && mlx.modules.count == 6 && mlx.modules.allSatisfy { $0.scale == 20 && $0.rank == 4 })
        let numbered = try Adapter.load(path: AdapterFixtures.adapterPath("mlx-llama").appendingPathComponent("0000002_adapters.safetensors"))
        #expect(numbered.weightsURL.lastPathComponent == "0000002_adapters.safetensors")
    }

    @Test func peftPatternOrderFollowsTheFile() throws {
        // Two alpha_pattern keys match model.layers.1.self_attn.q_proj; PEFT takes the first in file order
        // ("[q]_proj" sorts before "model..." but comes second in the file).
        let folder = try AdapterFixtures.editableCopy("peft-llama-rslora")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let configURL = folder.appendingPathComponent("adapter_config.json")
        var text = try String(contentsOf: configURL, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"model.layers.1.self_attn.q_proj\": 4", with: "\"model.layers.1.self_attn.q_proj\": 4,\n    \"[q]_proj\": 6")
        try text.write(to: configURL, atomically: true, encoding: .utf8)
        let adapter = try Adapter.load(path: folder)
        let scale = { (layer: Int) in adapter.modules.first { $0.layer == layer && $0.modulePath == "self_attn.q_proj" }?.scale }
        #expect(scale(1) == 2, "alpha 4 from the first matching key, / sqrt(4)")
        #expect(scale(0) == 3, "alpha 6 from the regex key, / sqrt(4)")
    }

    // MARK: - Adapters that do not fit their base

    @Test func wrongBaseNamesTheTensor() throws {
        // peft-llama on qwen3: q_proj there is 64 → 128 (head_dim 32), the adapter's is 64 → 64.
        let adapter = try Adapter.load(path: AdapterFixtures.adapterPath("peft-llama"))
        let qwen3 = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel("qwen3"))
        try expectAdapterError(["self_attn.q_proj.lora_A.weight", "64→64", "64→128"]) { _ = try adapter.attach(to: qwen3) }
        // peft-llama on GPT-2: no such modules at all.
        let gpt2 = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel("gpt2-inner96"))
        try expectAdapterError(["lora_A.weight", "no module"]) { _ = try adapter.attach(to: gpt2) }
    }

    @Test func shapeMismatchVsBase() throws {
        let folder = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let key = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"
        try Self.editTensors(folder, file: "adapter_model.safetensors") { tensors in
            tensors[key] = (shape: [100, 4], values: [Float](repeating: 0.01, count: 400))
        }
        let adapter = try Adapter.load(path: folder)
        let base = try ModelLoader.loadDecoder(folder: AdapterFixtures.basePath("peft-llama"))
        try expectAdapterError(["layers.1.mlp.up_proj.lora_A.weight", "64→100", "64→112"]) { _ = try adapter.attach(to: base) }
    }

    @Test func layerThatDoesNotExist() throws {
        let folder = try AdapterFixtures.editableCopy("mlx-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Self.editTensors(folder, file: "adapters.safetensors") { tensors in
            for suffix in ["lora_a", "lora_b"] {
                tensors["model.layers.7.self_attn.q_proj.\(suffix)"] = tensors.removeValue(forKey: "model.layers.1.self_attn.q_proj.\(suffix)")
            }
        }
        let adapter = try Adapter.load(path: folder)
        let base = try ModelLoader.loadDecoder(folder: AdapterFixtures.basePath("mlx-llama"))
        try expectAdapterError(["model.layers.7.self_attn.q_proj.lora_a", "layer 7 does not exist", "2 layers"]) { _ = try adapter.attach(to: base) }
    }

    /// mlx_lm puts LoRA on the router and the routed experts of MoE models by default; those are not linear layers
    /// here, so such an adapter is refused by name (and a Mamba-only module in an attention layer names its layer).
    @Test func hybridAdapterOnRouterOrWrongLayerKind() throws {
        let base = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel("granite-hybrid-moe-nope"))
        let folder = try AdapterFixtures.editableCopy("mlx-granite-hybrid")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Self.editTensors(folder, file: "adapters.safetensors") { tensors in
            let a = tensors.removeValue(forKey: "model.layers.1.self_attn.q_proj.lora_a")!
            let b = tensors.removeValue(forKey: "model.layers.1.self_attn.q_proj.lora_b")!
            tensors = tensors.filter { $0.key.hasPrefix("model.layers.0.self_attn") }
            tensors["model.layers.0.block_sparse_moe.router.layer.lora_a"] = a
            tensors["model.layers.0.block_sparse_moe.router.layer.lora_b"] = b
        }
        try expectAdapterError(["block_sparse_moe.router.layer", "router or routed experts"]) { _ = try Adapter.load(path: folder).attach(to: base) }

        let dense = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel("granite-hybrid-dense-rope"))
        let misplaced = try AdapterFixtures.editableCopy("mlx-granite-hybrid")
        defer { try? FileManager.default.removeItem(at: misplaced.deletingLastPathComponent()) }
        try Self.editTensors(misplaced, file: "adapters.safetensors") { tensors in
            for suffix in ["lora_a", "lora_b"] {
                tensors["model.layers.1.mamba.out_proj.\(suffix)"] = tensors.removeValue(forKey: "model.layers.0.mamba.out_proj.\(suffix)")
            }
        }
        try expectAdapterError(["layer 1 has no module 'mamba.out_proj'"]) { _ = try Adapter.load(path: misplaced).attach(to: dense) }
    }

    @Test func unknownModule() throws {
        let folder = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Self.editTensors(folder, file: "adapter_model.safetensors") { tensors in
            for factor in ["lora_A", "lora_B"] {
                tensors["base_model.model.model.layers.0.self_attn.qq_proj.\(factor).weight"] =
                    tensors.removeValue(forKey: "base_model.model.model.layers.0.self_attn.q_proj.\(factor).weight")
            }
        }
        // A tensor the base has no place for is reported as such (before the config's q_proj counts as missing).
        let adapter = try Adapter.load(path: folder)
        let base = try ModelLoader.loadDecoder(folder: AdapterFixtures.basePath("peft-llama"))
        try expectAdapterError(["self_attn.qq_proj.lora_A.weight", "no module 'self_attn.qq_proj'"]) { _ = try adapter.attach(to: base) }
    }

    @Test func configTargetsModuleWithoutTensors() throws {
        for name in ["peft-llama", "mlx-llama"] {
            let folder = try AdapterFixtures.editableCopy(name)
            defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
            let file = name.hasPrefix("mlx") ? "adapters.safetensors" : "adapter_model.safetensors"
            try Self.editTensors(folder, file: file) { tensors in
                for key in tensors.keys where key.contains("layers.1.self_attn.v_proj") { tensors.removeValue(forKey: key) }
            }
            let adapter = try Adapter.load(path: folder)
            let base = try ModelLoader.loadDecoder(folder: AdapterFixtures.basePath(name))
            try expectAdapterError([file, "targets 'model.layers.1.self_attn.v_proj'"]) { _ = try adapter.attach(to: base) }
        }
        // mlx_lm without lora_parameters.keys adapts every linear layer, so k_proj's tensors are missing.
        let folder = try AdapterFixtures.editableCopy("mlx-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Self.editConfig(folder) { $0["lora_parameters"] = ["rank": 4, "scale": 20.0, "dropout": 0.0] }
        let adapter = try Adapter.load(path: folder)
        let base = try ModelLoader.loadDecoder(folder: AdapterFixtures.basePath("mlx-llama"))
        try expectAdapterError(["targets 'model.layers.0.self_attn.k_proj'"]) { _ = try adapter.attach(to: base) }
        // ... and PEFT's exclude_modules takes modules out of target_modules.
        let peft = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: peft.deletingLastPathComponent()) }
        try Self.editTensors(peft, file: "adapter_model.safetensors") { tensors in
            for key in tensors.keys where key.contains("mlp.down_proj") { tensors.removeValue(forKey: key) }
        }
        try expectAdapterError(["targets 'model.layers.0.mlp.down_proj'"]) { _ = try Adapter.load(path: peft).attach(to: base) }
        try Self.editConfig(peft) { $0["exclude_modules"] = ["down_proj"] }
        #expect(try Adapter.load(path: peft).attach(to: base).weights.layers[1].feedForward.down.adapter == nil)
    }

    // MARK: - Bad adapter files and configs

    @Test func mlxDoRAIsRejected() throws {
        try expectLoadError("mlx-llama", mentions: ["adapter_config.json", "dora"]) { $0["fine_tune_type"] = "dora" }
    }

    @Test func mlxFullFineTuneIsRejected() throws {
        try expectLoadError("mlx-llama", mentions: ["adapter_config.json", "'full'", "model folder"]) { $0["fine_tune_type"] = "full" }
    }

    @Test func mlxAlphaWithoutScaleIsRejected() throws {
        try expectLoadError("mlx-llama", mentions: ["adapter_config.json", "alpha", "scale"]) {
            $0["lora_parameters"] = ["rank": 4, "alpha": 16, "dropout": 0.0]
            $0["lora_layers"] = 2
            $0.removeValue(forKey: "num_layers")
        }
    }

    @Test func mlxLoraLayersIsMappedToNumLayers() throws {
        let folder = try AdapterFixtures.editableCopy("mlx-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        // lora_layers is the pre-0.11 name of num_layers.
        try Self.editConfig(folder) { $0["lora_layers"] = 2; $0.removeValue(forKey: "num_layers") }
        let adapter = try Adapter.load(path: folder)
        #expect(adapter.configSummary["num_layers"] == "2")
    }

    @Test func peftDoRAIsRejected() throws {
        try expectLoadError("peft-llama", mentions: ["adapter_config.json", "use_dora"]) { $0["use_dora"] = true }
    }

    @Test func peftModulesToSaveIsRejected() throws {
        try expectLoadError("peft-llama", mentions: ["adapter_config.json", "modules_to_save"]) { $0["modules_to_save"] = ["lm_head"] }
    }

    @Test func peftOtherUnsupportedFieldsAreRejected() throws {
        try expectLoadError("peft-llama", mentions: ["bias 'all'"]) { $0["bias"] = "all" }
        try expectLoadError("peft-llama", mentions: ["layer_replication"]) { $0["layer_replication"] = [[0, 2]] }
        try expectLoadError("peft-llama", mentions: ["alora_invocation_tokens"]) { $0["alora_invocation_tokens"] = [5, 6] }
        try expectLoadError("peft-llama", mentions: ["use_qalora"]) { $0["use_qalora"] = true }
        try expectLoadError("peft-llama", mentions: ["peft_type 'IA3'"]) { $0["peft_type"] = "IA3" }
    }

    @Test func missingLoraB() throws {
        let folder = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Self.editTensors(folder, file: "adapter_model.safetensors") { tensors in
            tensors.removeValue(forKey: "base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight")
        }
        try expectAdapterError(["adapter_model.safetensors", "layers.0.mlp.gate_proj.lora_A.weight", "lora_B"]) { _ = try Adapter.load(path: folder) }
    }

    @Test func rankMismatchVsConfig() throws {
        try expectLoadError("peft-llama", mentions: ["lora_A.weight", "rank 4", "r = 8"]) { $0["r"] = 8 }
        try expectLoadError("mlx-llama", mentions: ["lora_a", "rank 4", "rank is 8"]) {
            var parameters = $0["lora_parameters"] as! [String: Any]
            parameters["rank"] = 8
            $0["lora_parameters"] = parameters
        }
    }

    @Test func configThatIsNotJSON() throws {
        let folder = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Data("{\"r\": 4,".utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
        try expectAdapterError(["adapter_config.json", "not valid JSON (expected a string key at byte 8)"]) { _ = try Adapter.load(path: folder) }
    }

    @Test func missingConfig() throws {
        let folder = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("adapter_config.json"))
        try expectAdapterError([folder.path, "no adapter_config.json"]) { _ = try Adapter.load(path: folder) }
    }

    @Test func pickleWeightsOnly() throws {
        let folder = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try FileManager.default.moveItem(at: folder.appendingPathComponent("adapter_model.safetensors"),
                                         to: folder.appendingPathComponent("adapter_model.bin"))
        try expectAdapterError(["adapter_model.bin", "safe_serialization"]) { _ = try Adapter.load(path: folder) }
    }

    @Test func missingPathAndNonAdapterFolder() throws {
        try expectAdapterError(["/nonexistent/adapter", "no such file"]) { _ = try Adapter.load(path: URL(fileURLWithPath: "/nonexistent/adapter")) }
        // The folder above a Trainer checkpoint: the message points at the checkpoint inside.
        try expectAdapterError(["peft-checkpoint-dir", "checkpoint-5"]) { _ = try Adapter.load(path: AdapterFixtures.folder("peft-checkpoint-dir")) }
        // A model folder is not an adapter.
        try expectAdapterError(["no adapter_config.json"]) { _ = try Adapter.load(path: FixturePaths.ownModel("qwen2")) }
    }

    @Test func nonLoRATensorIsRejected() throws {
        let folder = try AdapterFixtures.editableCopy("mlx-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Self.editTensors(folder, file: "adapters.safetensors") { tensors in
            tensors["model.layers.0.self_attn.q_proj.m"] = (shape: [64], values: [Float](repeating: 1, count: 64))
        }
        try expectAdapterError(["model.layers.0.self_attn.q_proj.m", "not a LoRA factor"]) { _ = try Adapter.load(path: folder) }
    }

    // MARK: - Helpers

    /// Runs `body`, which must throw an `AdapterError` whose message contains every fragment.
    func expectAdapterError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) throws {
        do {
            try body()
            Issue.record("expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
        } catch let error as AdapterError {
            let message = error.errorDescription ?? ""
            for fragment in fragments {
                #expect(message.contains(fragment), "\(message.debugDescription) should mention \(fragment.debugDescription)", sourceLocation: sourceLocation)
            }
        }
    }

    /// Copies `fixture`, edits its config with `edit`, and expects `Adapter.load` to fail naming `fragments`.
    func expectLoadError(_ fixture: String, mentions fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                         _ edit: (inout [String: Any]) -> Void) throws {
        let folder = try AdapterFixtures.editableCopy(fixture)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Self.editConfig(folder, edit)
        try expectAdapterError(fragments, sourceLocation: sourceLocation) { _ = try Adapter.load(path: folder) }
    }

    static func editConfig(_ folder: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent("adapter_config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: url)
    }

    /// Rewrites one safetensors file of `folder` after `edit` changed its tensors (float32 values).
    static func editTensors(_ folder: URL, file: String, _ edit: (inout [String: (shape: [Int], values: [Float])]) -> Void) throws {
        let url = folder.appendingPathComponent(file)
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        do {
            let store = try WeightStore(files: [url])
            for name in store.tensorNames {
                let tensor = try store.floatTensor(name)
                tensors[name] = (tensor.shape, Array(tensor.buffer))
            }
        }
        edit(&tensors)
        let names = tensors.keys.sorted()
        let arrays = names.map { tensors[$0]!.values }
        try withBuffers(arrays) { buffers in
            try SafeTensorsWriter.write(zip(names, buffers).map { name, buffer in
                TensorToWrite(name: name, dtype: .float32, shape: tensors[name]!.shape, values: buffer)
            }, to: url)
        }
    }

    static func withBuffers(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> Void) throws {
        let pointers: [UnsafeMutableBufferPointer<Float>] = arrays.map {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.count)
            _ = buffer.initialize(from: $0)
            return buffer
        }
        defer { for pointer in pointers { pointer.deallocate() } }
        try body(pointers.map { UnsafeBufferPointer($0) })
    }
}
