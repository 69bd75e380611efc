import Foundation
import Testing
@testable import TunecheckEngine

/// `AdapterFuser`: fused folders load in tunecheck and give the references' `fused_logprobs` (transformers on
/// PEFT's `merge_and_unload()` / W + ΔW in float32) and the unfused scores; half-precision outputs; refusal to
/// overwrite; nothing left behind on failure.
struct FuseTests {
    /// Fuses one fixture (or one numbered mlx checkpoint) into a temporary folder; returns (parent, fused folder).
    static func fuseFixture(_ name: String, checkpoint: String? = nil, base: URL? = nil, dtype: DType? = nil) throws -> (URL, URL) {
        let parent = try FixturePaths.temporaryDirectory("fuse-\(name)")
        let output = parent.appendingPathComponent("fused")
        var path = try AdapterFixtures.adapterPath(name)
        if let checkpoint { path = path.appendingPathComponent(checkpoint) }
        try AdapterFuser.fuse(baseFolder: base ?? AdapterFixtures.basePath(name), adapter: Adapter.load(path: path), output: output, dtype: dtype)
        return (parent, output)
    }

    static func scores(_ folder: URL, _ texts: [[Int]]) throws -> [[Double]] {
        let scorer = Scorer(model: try ModelLoader.loadDecoder(folder: folder))
        return try texts.map { try scorer.score([$0])[0] }
    }

    @Test("Fused folder gives the fused and the unfused log-probs", arguments: AdapterFixtures.names)
    func fusedMatchesReference(name: String) throws {
        let reference = try AdapterReference.load(name)
        let (parent, fused) = try Self.fuseFixture(name)
        defer { try? FileManager.default.removeItem(at: parent) }
        let texts = reference.texts.map(\.ids)
        let scores = try Self.scores(fused, texts)
        let versusFused = maxDifference(scores, reference.fused_logprobs)
        let versusUnfused = maxDifference(scores, try AdapterTests.unfusedScores(name).single)
        print("fuse \(name): vs fused_logprobs \(versusFused), vs tunecheck unfused \(versusUnfused)")
        #expect(versusFused <= AdapterFixtures.tolerance(name))
        #expect(versusUnfused <= AdapterFixtures.tolerance(name))
        // A complete folder: config and generation config copied, one safetensors file like the base, F32 kept.
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: fused.path))
        #expect(files.isSuperset(of: ["config.json", "generation_config.json", "model.safetensors"]))
        #expect(!files.contains { $0.hasPrefix(".") }, "no temporary files left: \(files)")
        let stored = try SafeTensorsFile(url: fused.appendingPathComponent("model.safetensors"))
        #expect(stored.tensors.values.allSatisfy { $0.dtype == .float32 })
        #expect(stored.metadata?["format"] == "pt")
        let baseStore = try WeightStore(folder: AdapterFixtures.basePath(name))
        #expect(Set(stored.tensors.keys) == Set(baseStore.tensorNames))
        #expect(try Data(contentsOf: fused.appendingPathComponent("config.json")) ==
                Data(contentsOf: AdapterFixtures.basePath(name).appendingPathComponent("config.json")))
    }

    @Test func mlxNumberedCheckpointFuses() throws {
        let file = "0000002_adapters.safetensors"
        let reference = try AdapterReference.load("mlx-llama")
        let expected = try #require(reference.checkpoints?[file]).fused_logprobs
        let (parent, fused) = try Self.fuseFixture("mlx-llama", checkpoint: file)
        defer { try? FileManager.default.removeItem(at: parent) }
        let difference = maxDifference(try Self.scores(fused, reference.texts.map(\.ids)), expected)
        print("fuse mlx-llama/\(file): vs fused_logprobs \(difference)")
        #expect(difference <= AdapterFixtures.tolerance("mlx-llama"))
    }

    @Test func onlyAdaptedTensorsChange() throws {
        let (parent, fused) = try Self.fuseFixture("peft-gpt2")
        defer { try? FileManager.default.removeItem(at: parent) }
        let base = try WeightStore(folder: AdapterFixtures.basePath("peft-gpt2"))
        let output = try WeightStore(folder: fused)
        let adapted = Set(try AdapterReference.load("peft-gpt2").delta.modules.values.map(\.base_weight_key))
        for name in base.tensorNames {
            let before = try base.floatTensor(name), after = try output.floatTensor(name)
            #expect(before.shape == after.shape)
            let same = Array(before.buffer) == Array(after.buffer)
            #expect(same != adapted.contains(name), "\(name): changed \(!same), adapted \(adapted.contains(name))")
        }
    }

    /// Half-precision output rounds every weight (relative error up to 2⁻⁹ for bf16, 2⁻¹¹ for f16), which moves these
    /// random-weight models' log-probs by up to 0.117 (bf16) / 0.0092 (f16) observed; the tolerances are about 3×
    /// that and still far below the adapter's own effect (1.6). The exact check is the second one: every stored
    /// value is the float32 fused value rounded once (round-to-nearest-even).
    @Test(arguments: [(DType.bfloat16, 0.35), (DType.float16, 0.03)])
    func halfPrecisionOutput(dtype: DType, tolerance: Double) throws {
        let reference = try AdapterReference.load("peft-llama")
        let (parent, fused) = try Self.fuseFixture("peft-llama", dtype: dtype)
        defer { try? FileManager.default.removeItem(at: parent) }
        let stored = try SafeTensorsFile(url: fused.appendingPathComponent("model.safetensors"))
        #expect(stored.tensors.values.allSatisfy { $0.dtype == dtype })
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: fused.appendingPathComponent("config.json"))) as! [String: Any]
        #expect(config["torch_dtype"] as? String == dtype.configName)
        #expect(config["rope_scaling"] != nil && config["rope_theta"] != nil, "other fields kept")
        let difference = maxDifference(try Self.scores(fused, reference.texts.map(\.ids)), reference.fused_logprobs)
        print("fuse peft-llama as \(dtype): vs float32 fused_logprobs \(difference)")
        #expect(difference <= tolerance)

        let (parent32, fused32) = try Self.fuseFixture("peft-llama")
        defer { try? FileManager.default.removeItem(at: parent32) }
        let full = try WeightStore(folder: fused32), half = try WeightStore(folder: fused)
        for name in full.tensorNames {
            let rounded = try full.floatTensor(name).buffer.map { value -> Float in
                dtype == .float16 ? Float(Float16(value)) : Float(bitPattern: UInt32(SafeTensorsWriter.bfloat16Bits(value)) << 16)
            }
            #expect(Array(try half.floatTensor(name).buffer) == rounded, "\(name)")
        }
    }

    @Test func halfPrecisionShardedBaseKeepsDTypeAndShards() throws {
        // peft-llama on the f16, two-shard copy of the same architecture: output is f16 in the same two shards.
        let base = FixturePaths.ownModel("llama-f16-sharded")
        let (parent, fused) = try Self.fuseFixture("peft-llama", base: base)
        defer { try? FileManager.default.removeItem(at: parent) }
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: fused.path))
        #expect(files.isSuperset(of: ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]))
        #expect(!files.contains("model.safetensors"))
        let output = try WeightStore(folder: fused)
        #expect(output.dominantDType == .float16)
        #expect(output.tensorNames == (try WeightStore(folder: base).tensorNames))
        // Fused in float32, rounded to f16 once: the unfused f16 base + adapter is the reference here.
        let texts = try AdapterReference.load("peft-llama").texts.map(\.ids)
        let unfused = Scorer(model: try Adapter.load(path: AdapterFixtures.adapterPath("peft-llama")).attach(to: ModelLoader.loadDecoder(folder: base)))
        let difference = maxDifference(try Self.scores(fused, texts), try texts.map { try unfused.score([$0])[0] })
        print("fuse peft-llama onto llama-f16-sharded: vs unfused \(difference)")
        #expect(difference <= 0.03)
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: fused.appendingPathComponent("model.safetensors.index.json"))) as! [String: Any]
        #expect((index["weight_map"] as? [String: String])?.count == output.tensorNames.count)
    }

    @Test func existingOutputIsRefusedWithoutForce() throws {
        let parent = try FixturePaths.temporaryDirectory("fuse-existing")
        defer { try? FileManager.default.removeItem(at: parent) }
        let output = parent.appendingPathComponent("fused")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: output.appendingPathComponent("marker"))
        let adapter = try Adapter.load(path: AdapterFixtures.adapterPath("peft-llama"))
        let base = try AdapterFixtures.basePath("peft-llama")
        #expect(throws: EngineError.writeFailed(path: output.path, reason: "already exists (use --force to replace it)")) {
            try AdapterFuser.fuse(baseFolder: base, adapter: adapter, output: output)
        }
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("marker").path))
        try AdapterFuser.fuse(baseFolder: base, adapter: adapter, output: output, replacing: true)
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("marker").path))
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("model.safetensors").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path) == ["fused"], "no staging or old folders left")
        // Writing into the model folder itself is refused.
        #expect(throws: EngineError.self) { try AdapterFuser.fuse(baseFolder: base, adapter: adapter, output: base, replacing: true) }
    }

    @Test func failedFuseLeavesNothing() throws {
        let parent = try FixturePaths.temporaryDirectory("fuse-failed")
        defer { try? FileManager.default.removeItem(at: parent) }
        let output = parent.appendingPathComponent("fused")
        let adapter = try Adapter.load(path: AdapterFixtures.adapterPath("peft-llama"))
        // Does not fit (qwen3's q_proj is 64 → 128).
        #expect(throws: AdapterError.self) {
            try AdapterFuser.fuse(baseFolder: FixturePaths.ownModel("qwen3"), adapter: adapter, output: output)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path).isEmpty)
        // Fails after the staging folder exists: finite factors whose product overflows give an infinite merged
        // weight, detected while the folder is being built; the staging folder is removed.
        let huge = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: huge.deletingLastPathComponent()) }
        try AdapterTests.editTensors(huge, file: "adapter_model.safetensors") { tensors in
            for key in tensors.keys where key.contains("layers.1.mlp.down_proj") {
                tensors[key] = (tensors[key]!.shape, [Float](repeating: 1e30, count: tensors[key]!.values.count))
            }
        }
        #expect(throws: EngineError.nonFiniteWeights(path: huge.appendingPathComponent("adapter_model.safetensors").path,
                                                      name: "model.layers.1.mlp.down_proj.weight")) {
            try AdapterFuser.fuse(baseFolder: AdapterFixtures.basePath("peft-llama"), adapter: Adapter.load(path: huge), output: output)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path).isEmpty)
    }
}
