import Foundation
import TunecheckTestSupport
import Testing
import TunecheckEngine

/// `--adapter` on score and generate, `fuse` and `delta`, run as a user would. The adapter fixtures' bases have no
/// tokenizer, so the text commands run on the bundled default model with a PEFT adapter made here (random factors,
/// large enough to move log-probs by far more than the tolerances).
struct AdapterCLITests {
    static let fixtures = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures")

    /// A PEFT adapter for models/tiny-default on q_proj (64 → 64) and v_proj (64 → 32), r 4, alpha 8.
    static func makeDefaultModelAdapter(in folder: URL) throws -> URL {
        let adapter = folder.appendingPathComponent("adapter")
        try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
        let config: [String: Any] = ["peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
                                     "fan_in_fan_out": false, "bias": "none", "use_dora": false, "use_rslora": false]
        try JSONSerialization.data(withJSONObject: config).write(to: adapter.appendingPathComponent("adapter_config.json"))
        var generator = SplitMix(seed: 7)
        var arrays: [(String, [Int], [Float])] = []
        for layer in 0..<2 {
            for (module, out) in [("q_proj", 64), ("v_proj", 32)] {
                let prefix = "base_model.model.model.layers.\(layer).self_attn.\(module)"
                arrays.append(("\(prefix).lora_A.weight", [4, 64], (0..<256).map { _ in generator.uniform() * 0.3 }))
                arrays.append(("\(prefix).lora_B.weight", [out, 4], (0..<(out * 4)).map { _ in generator.uniform() * 0.3 }))
            }
        }
        let buffers = arrays.map { entry -> UnsafeMutableBufferPointer<Float> in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: entry.2.count)
            _ = buffer.initialize(from: entry.2)
            return buffer
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        try SafeTensorsWriter.write(zip(arrays, buffers).map { TensorToWrite(name: $0.0, dtype: .float32, shape: $0.1, values: UnsafeBufferPointer($1)) },
                                    to: adapter.appendingPathComponent("adapter_model.safetensors"))
        return adapter
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in [-1, 1).
        mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    }

    static func score(_ arguments: [String], input: URL, output: URL) throws -> [[Double]] {
        let result = try CLIRunner.run(["score"] + arguments + ["--input", input.path, "--output", output.path])
        #expect(result.status == 0, "\(result.standardError)")
        return try CLIRunner.readJSONLines(output).map { try #require($0["token_logprobs"] as? [Double]) }
    }

    static func maxDifference(_ a: [[Double]], _ b: [[Double]]) -> Double {
        guard a.count == b.count, zip(a, b).allSatisfy({ $0.count == $1.count }) else { return .infinity }
        return zip(a, b).flatMap { zip($0, $1).map { abs($0 - $1) } }.max() ?? 0
    }

    /// Base + adapter and the fused folder score the same within 1e-4 per token (float32; observed ~1e-6), and the
    /// adapter really changes the scores; generate takes --adapter and the fused folder generates the same ids.
    @Test func scoreAndGenerateWithAdapterEqualFusedFolder() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let adapter = try Self.makeDefaultModelAdapter(in: folder)
        let fused = folder.appendingPathComponent("fused")
        let fuse = try CLIRunner.run(["fuse", "--model", CLIRunner.defaultModel.path, "--adapter", adapter.path, "--output", fused.path])
        #expect(fuse.status == 0, "\(fuse.standardError)")
        #expect(fuse.standardOutput.contains("fused 4 of"))
        for file in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: fused.appendingPathComponent(file).path), "\(file) in the fused folder")
        }

        let input = folder.appendingPathComponent("in.jsonl")
        try CLIRunner.writeLines(["{\"text\": \"The quick brown fox jumps over the lazy dog.\"}", "{\"prompt\": \"Hello\", \"response\": \" there, friend\"}"], to: input)
        let base = try Self.score(["--model", CLIRunner.defaultModel.path], input: input, output: folder.appendingPathComponent("base.jsonl"))
        let unfused = try Self.score(["--model", CLIRunner.defaultModel.path, "--adapter", adapter.path], input: input, output: folder.appendingPathComponent("a.jsonl"))
        let merged = try Self.score(["--model", fused.path], input: input, output: folder.appendingPathComponent("f.jsonl"))
        let difference = Self.maxDifference(unfused, merged)
        print("CLI score: adapter vs fused max |Δlogprob| = \(difference); adapter effect \(Self.maxDifference(unfused, base))")
        #expect(difference <= 1e-4)
        #expect(Self.maxDifference(unfused, base) > 1e-2, "the adapter changes the scores")

        let arguments = ["--prompt", "Once upon a time", "--max-tokens", "12", "--ignore-eos", "--json"]
        let generatedWithAdapter = try CLIRunner.run(["generate", "--model", CLIRunner.defaultModel.path, "--adapter", adapter.path] + arguments)
        let generatedFused = try CLIRunner.run(["generate", "--model", fused.path] + arguments)
        #expect(generatedWithAdapter.status == 0 && generatedFused.status == 0, "\(generatedWithAdapter.standardError)")
        let ids = { (text: String) in (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["ids"] as? [Int] }
        #expect(ids(generatedWithAdapter.standardOutput) != nil)
        #expect(ids(generatedWithAdapter.standardOutput) == ids(generatedFused.standardOutput))
    }

    @Test func fuseRefusesExistingOutputWithoutForce() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let adapter = try Self.makeDefaultModelAdapter(in: folder)
        let output = folder.appendingPathComponent("fused")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let arguments = ["fuse", "--model", CLIRunner.defaultModel.path, "--adapter", adapter.path, "--output", output.path]
        try BadInputCLITests.expectInputError(arguments, mentions: [output.path, "already exists", "--force"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.path).isEmpty)
        let forced = try CLIRunner.run(arguments + ["--force", "--dtype", "bfloat16"])
        #expect(forced.status == 0, "\(forced.standardError)")
        let stored = try SafeTensorsFile(url: output.appendingPathComponent("model.safetensors"))
        #expect(stored.tensors.values.allSatisfy { $0.dtype == .bfloat16 })
        let bad = try CLIRunner.run(arguments + ["--force", "--dtype", "int8"])
        #expect(bad.status == 2 && bad.standardError.contains("int8"))
    }

    @Test func fuseOfAnAdapterThatDoesNotFitLeavesNothing() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("fused")
        // peft-llama targets a 64 → 112 up_proj; the default model's is 64 → 128.
        try BadInputCLITests.expectInputError(["fuse", "--model", CLIRunner.defaultModel.path, "--adapter",
                                               Self.fixtures.appendingPathComponent("adapters/peft-llama").path, "--output", output.path],
                                              mentions: ["adapter_model.safetensors", "lora_A.weight", "does not fit"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "no output and no staging folder")
    }

    @Test func scoreWithABadAdapterNamesTheFile() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let adapter = try Self.makeDefaultModelAdapter(in: folder)
        try Data("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_dora\": true}".utf8).write(to: adapter.appendingPathComponent("adapter_config.json"))
        let input = folder.appendingPathComponent("in.jsonl")
        let output = folder.appendingPathComponent("out.jsonl")
        try CLIRunner.writeLines(["{\"text\": \"hi there\"}"], to: input)
        try BadInputCLITests.expectInputError(["score", "--model", CLIRunner.defaultModel.path, "--adapter", adapter.path, "--input", input.path,
                                               "--output", output.path], mentions: ["adapter_config.json", "use_dora"], noFileAt: output)
        try BadInputCLITests.expectInputError(["generate", "--model", CLIRunner.defaultModel.path, "--adapter", folder.appendingPathComponent("nope").path,
                                               "--prompt", "hi"], mentions: ["nope", "no such file"])
    }

    @Test func deltaTableJSONAndFlags() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = Self.fixtures.appendingPathComponent("models/llama-rope-llama3-old-schema").path
        let adapter = Self.fixtures.appendingPathComponent("adapters/mlx-llama").path
        let jsonURL = folder.appendingPathComponent("delta.json")

        // mlx-llama's overall relative delta is 0.1034: flagged large-update by default, reported with exit 0.
        let table = try CLIRunner.run(["delta", "--base", base, "--adapter", adapter, "--json", jsonURL.path])
        #expect(table.status == 0, "\(table.standardError)")
        #expect(table.standardOutput.contains("model.layers.0.mlp.down_proj.weight"))
        #expect(table.standardOutput.contains("overall"))
        #expect(table.standardOutput.contains("flags: large-update"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: jsonURL)) as? [String: Any])
        #expect(report["kind"] as? String == "adapter")
        #expect((report["tensors"] as? [[String: Any]])?.count == 6)
        #expect((report["layers"] as? [[String: Any]])?.count == 2)
        let total = try #require(report["total"] as? [String: Any])
        #expect(abs((total["relative_frobenius"] as? Double ?? 0) - 0.10343812051733117) <= 1e-6)
        #expect(report["flags"] as? [String] == ["large-update"])

        // --fail-on-flags turns a flag into exit 1; raising the threshold clears it.
        let failing = try CLIRunner.run(["delta", "--base", base, "--adapter", adapter, "--fail-on-flags"])
        #expect(failing.status == 1)
        #expect(failing.standardError.contains("large-update"))
        let passing = try CLIRunner.run(["delta", "--base", base, "--adapter", adapter, "--fail-on-flags", "--large-update-threshold", "0.2"])
        #expect(passing.status == 0 && passing.standardOutput.contains("flags: none"))
        let noLearning = try CLIRunner.run(["delta", "--base", base, "--model", base, "--json", "-"])
        #expect(noLearning.status == 0)
        let same = try #require(try JSONSerialization.jsonObject(with: Data(noLearning.standardOutput.utf8)) as? [String: Any])
        #expect(same["kind"] as? String == "models" && (same["tensors"] as? [Any])?.isEmpty == true && same["flags"] as? [String] == ["no-learning"])
    }

    @Test func deltaUsageAndInputErrors() throws {
        let base = Self.fixtures.appendingPathComponent("models/llama-rope-llama3-old-schema").path
        let neither = try CLIRunner.run(["delta", "--base", base])
        #expect(neither.status == 2 && neither.standardError.contains("--adapter"))
        let both = try CLIRunner.run(["delta", "--base", base, "--adapter", "a", "--model", "b"])
        #expect(both.status == 2)
        try BadInputCLITests.expectInputError(["delta", "--base", base, "--model", CLIRunner.defaultModel.path],
                                              mentions: ["lm_head.weight", "tiny-default"])
    }
}
