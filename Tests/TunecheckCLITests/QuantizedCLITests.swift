import Foundation
import TunecheckEngine
import TunecheckTestSupport
import Testing

/// The read-only commands on an mlx 4-bit base (Tests/Fixtures/quantized/llama-q4-g64) and its QLoRA adapter written by
/// mlx_lm lora: each runs to completion (the numbers themselves are checked against mlx_lm in the engine's
/// QuantizedWeightsTests; here the scored ids' log-probs are compared with a second run through --adapter-free scoring
/// of the same text to make sure the adapter is applied). fuse re-quantizes (or, with --dequantize, writes float) as
/// mlx_lm fuse; its numbers are checked against mlx_lm's in the engine's QuantizedFuseTests.
struct QuantizedCLITests {
    static let fixtures = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/quantized")
    static let base = fixtures.appendingPathComponent("llama-q4-g64")
    static let adapter = fixtures.appendingPathComponent("qlora-llama-q4-g64")

    @Test func readOnlyCommandsRunOnAQuantizedBase() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let texts = folder.appendingPathComponent("texts.jsonl"), prompts = folder.appendingPathComponent("prompts.jsonl")
        let pairs = folder.appendingPathComponent("pairs.jsonl")
        try CLIRunner.writeLines([#"{"text": "the model checks weights"}"#, #"{"text": "quantized adapter learns fast"}"#], to: texts)
        try CLIRunner.writeLines([#"{"prompt": "the model"}"#, #"{"prompt": "quantized data"}"#], to: prompts)
        try CLIRunner.writeLines([#"{"prompt": "the model", "chosen": " checks weights", "rejected": " runs"}"#,
                                  #"{"prompt": "the adapter", "chosen": " learns", "rejected": " data small"}"#], to: pairs)

        var scores: [[Double]] = []
        for adapterArguments in [[], ["--adapter", Self.adapter.path]] {
            let output = folder.appendingPathComponent("scores\(scores.count).jsonl")
            let result = try CLIRunner.run(["score", "--model", Self.base.path, "--input", texts.path, "--output", output.path] + adapterArguments)
            #expect(result.status == 0, "score: \(result.standardError)")
            let records = try CLIRunner.readJSONLines(output)
            scores.append(records.flatMap { ($0["token_logprobs"] as? [Double]) ?? [] })
        }
        #expect(scores[0].count == scores[1].count && !scores[0].isEmpty)
        #expect(zip(scores[0], scores[1]).contains { abs($0 - $1) > 0.1 }, "the QLoRA adapter changes the log-probs")

        let generate = try CLIRunner.run(["generate", "--model", Self.base.path, "--adapter", Self.adapter.path, "--prompt", "the model",
                                          "--max-tokens", "6", "--ignore-eos", "--json"])
        #expect(generate.status == 0, "generate: \(generate.standardError)")

        let preflight = try CLIRunner.run(["preflight", "--model", Self.base.path, "--adapter", Self.adapter.path, "--pairs", pairs.path])
        #expect(preflight.status == 0, "preflight: \(preflight.standardError)")

        let delta = try CLIRunner.run(["delta", "--base", Self.base.path, "--adapter", Self.adapter.path])
        #expect(delta.status == 0, "delta: \(delta.standardError)")
        #expect(delta.standardOutput.contains("model.layers.1.mlp.down_proj.weight"))

        let compare = try CLIRunner.run(["compare", "--base", Self.base.path, "--checkpoint", Self.adapter.appendingPathComponent("adapters.safetensors").path,
                                         "--prompts", prompts.path, "--max-tokens", "4"])
        #expect(compare.status == 0, "compare: \(compare.standardError)")

        // eval's checks may fail (exit 1: the adapter is a large update on a random model), but it runs and reports.
        let reports = folder.appendingPathComponent("reports")
        let eval = try CLIRunner.run(["eval", "--base", Self.base.path, "--checkpoint", Self.adapter.appendingPathComponent("adapters.safetensors").path,
                                      "--prompts", prompts.path, "--pairs", pairs.path, "--report-dir", reports.path])
        #expect(eval.status == 0 || eval.status == 1, "eval: \(eval.standardError)")
        #expect(FileManager.default.fileExists(atPath: reports.appendingPathComponent("report.json").path))

        // watch: a run folder holding the QLoRA checkpoint, evaluated once against the quantized base.
        let run = folder.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.adapter.appendingPathComponent("adapters.safetensors"),
                                         to: run.appendingPathComponent("0000006_adapters.safetensors"))
        try FileManager.default.copyItem(at: Self.adapter.appendingPathComponent("adapter_config.json"), to: run.appendingPathComponent("adapter_config.json"))
        let suite = folder.appendingPathComponent("suite.yaml")
        try Data("""
            name: quantized
            base: \(Self.base.path)
            evalsets:
              prompts: prompts.jsonl
              pairs: pairs.jsonl
            generation:
              max_tokens: 4
            reports:
              dir: watch-reports
            """.utf8).write(to: suite)
        let watch = try CLIRunner.run(["watch", "--suite", suite.path, "--dir", run.path, "--once"])
        #expect(watch.status == 0 || watch.status == 1, "watch: \(watch.standardError)")  // 1: the large-update check fails
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("watch-reports/report.json").path))

        // fuse: re-quantized (as mlx_lm fuse), then --dequantize; the fused folders score like base + --adapter
        // (re-quantizing rounds the merged weights to 4 bits again, so only the dequantized float32 one is close).
        let fused = folder.appendingPathComponent("fused")
        let fuse = try CLIRunner.run(["fuse", "--model", Self.base.path, "--adapter", Self.adapter.path, "--output", fused.path])
        #expect(fuse.status == 0 && fuse.standardOutput.contains("fused 6 of"), "fuse: \(fuse.standardError)")
        #expect(try String(contentsOf: fused.appendingPathComponent("config.json"), encoding: .utf8).contains("\"quantization\""))
        let dequantized = folder.appendingPathComponent("fused-f32")
        let fuseFloat = try CLIRunner.run(["fuse", "--model", Self.base.path, "--adapter", Self.adapter.path, "--output", dequantized.path,
                                           "--dequantize", "--dtype", "float32"])
        #expect(fuseFloat.status == 0, "fuse --dequantize: \(fuseFloat.standardError)")
        #expect(!(try String(contentsOf: dequantized.appendingPathComponent("config.json"), encoding: .utf8).contains("quantization")))
        for (index, model) in [fused, dequantized].enumerated() {
            let output = folder.appendingPathComponent("fused-scores\(index).jsonl")
            let result = try CLIRunner.run(["score", "--model", model.path, "--input", texts.path, "--output", output.path])
            #expect(result.status == 0, "score fused: \(result.standardError)")
            let fusedScores = try CLIRunner.readJSONLines(output).flatMap { ($0["token_logprobs"] as? [Double]) ?? [] }
            #expect(fusedScores.count == scores[1].count)
            if model == dequantized {
                #expect(zip(fusedScores, scores[1]).allSatisfy { abs($0 - $1) <= 1e-4 }, "float32 fused = base + adapter")
            }
        }
        // QLoRA: two LoRA SFT steps on the 4-bit base (frozen packed codes); the adapter it writes applies with --adapter.
        let train = folder.appendingPathComponent("train.yaml"), adapters = folder.appendingPathComponent("qlora-adapters")
        try Data("""
            model: \(Self.base.path)
            data: \(texts.path)
            adapter_path: \(adapters.path)
            iters: 2
            save_every: 1
            batch_size: 1
            max_seq_length: 32
            learning_rate: 0.001
            lora_parameters: {rank: 2, scale: 2.0}
            """.utf8).write(to: train)
        let trained = try CLIRunner.run(["train", "--config", train.path])
        #expect(trained.status == 0 && trained.standardOutput.contains("trained 2 steps"), "train: \(trained.standardError)")
        let metrics = try CLIRunner.readJSONLines(adapters.appendingPathComponent("metrics.jsonl"))
        let losses = metrics.compactMap { $0["loss"] as? Double }
        #expect(losses.count == 2 && losses.allSatisfy { $0.isFinite && $0 > 0 }, "losses \(losses)")
        let trainedScores = folder.appendingPathComponent("trained-scores.jsonl")
        let scoreTrained = try CLIRunner.run(["score", "--model", Self.base.path, "--adapter", adapters.path, "--input", texts.path,
                                              "--output", trainedScores.path])
        #expect(scoreTrained.status == 0, "score --adapter (trained): \(scoreTrained.standardError)")

        let refused = folder.appendingPathComponent("refused")
        let fuseDType = try CLIRunner.run(["fuse", "--model", Self.base.path, "--adapter", Self.adapter.path, "--output", refused.path,
                                           "--dtype", "float32"])
        #expect(fuseDType.status == 2 && fuseDType.standardError.contains("--dequantize"), "fuse --dtype: \(fuseDType.standardError)")
        #expect(!FileManager.default.fileExists(atPath: refused.path))
    }

    /// `tunecheck train` DPO (LoRA on every linear layer) on the quantized granitemoehybrid (4-bit experts sliced from
    /// 3-D codes, 8-bit router, quantized Mamba projections), then the trained adapter through score, and fuse with
    /// `--dequantize --dtype float32`, whose folder scores like base + adapter (float32 dequantized weights + float32
    /// ΔW: the same products, 1e-4 as the other fused-vs-unfused checks).
    @Test func dpoTrainingScoreAndFuseOnQuantizedGraniteHybrid() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = Self.fixtures.appendingPathComponent("granitemoehybrid-q4-g32")
        let pairs = folder.appendingPathComponent("pairs.jsonl"), texts = folder.appendingPathComponent("texts.jsonl")
        try CLIRunner.writeLines([#"{"prompt": "the model", "chosen": " checks weights", "rejected": " runs"}"#,
                                  #"{"prompt": "the adapter", "chosen": " learns", "rejected": " data small"}"#,
                                  #"{"prompt": "quantized", "chosen": " experts route tokens", "rejected": " fast"}"#], to: pairs)
        try CLIRunner.writeLines([#"{"text": "the quantized experts route every token"}"#], to: texts)
        let train = folder.appendingPathComponent("train.yaml"), adapters = folder.appendingPathComponent("dpo-adapters")
        try Data("""
            model: \(base.path)
            data: \(pairs.path)
            mode: dpo
            beta: 0.1
            adapter_path: \(adapters.path)
            iters: 2
            save_every: 2
            batch_size: 3
            learning_rate: 0.01
            lora_parameters: {rank: 2, scale: 4.0}
            """.utf8).write(to: train)
        let trained = try CLIRunner.run(["train", "--config", train.path])
        #expect(trained.status == 0 && trained.standardOutput.contains("trained 2 steps"), "train: \(trained.standardError)")
        let metrics = try CLIRunner.readJSONLines(adapters.appendingPathComponent("metrics.jsonl"))
        #expect(metrics.count == 2)
        for name in ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"] {
            #expect(metrics.allSatisfy { ($0[name] as? Double)?.isFinite == true }, "\(name) in \(metrics)")
        }
        // Step 2's policy has moved away from the reference (the quantized base): its rewards are not all zero.
        #expect(abs(metrics[1]["rewards/chosen"] as? Double ?? 0) > 0, "step 2 rewards: \(metrics[1])")

        var scores: [[Double]] = []
        for (model, extra) in [(base, ["--adapter", adapters.path]), (folder.appendingPathComponent("fused"), [])] {
            if extra.isEmpty {
                let fused = try CLIRunner.run(["fuse", "--model", base.path, "--adapter", adapters.path, "--output", model.path,
                                               "--dequantize", "--dtype", "float32"])
                #expect(fused.status == 0, "fuse --dequantize: \(fused.standardError)")
            }
            let output = folder.appendingPathComponent("scores\(scores.count).jsonl")
            let result = try CLIRunner.run(["score", "--model", model.path, "--input", texts.path, "--output", output.path] + extra)
            #expect(result.status == 0, "score \(model.lastPathComponent): \(result.standardError)")
            scores.append(try CLIRunner.readJSONLines(output).flatMap { ($0["token_logprobs"] as? [Double]) ?? [] })
        }
        #expect(scores[0].count == scores[1].count && !scores[0].isEmpty)
        let difference = zip(scores[0], scores[1]).map { abs($0 - $1) }.max() ?? .infinity
        print("granitemoehybrid-q4-g32 DPO adapter: fused (--dequantize float32) vs unfused \(difference)")
        #expect(difference <= 1e-4, "fused float32 folder = quantized base + adapter")
        let dequantized = try SafeTensorsFile(url: folder.appendingPathComponent("fused/model.safetensors"))
        #expect(dequantized.tensors["model.layers.0.block_sparse_moe.switch_mlp.gate_proj.weight"]?.shape == [4, 32, 64])
        #expect(dequantized.tensors["model.layers.0.block_sparse_moe.switch_mlp.gate_proj.scales"] == nil)

        // The default fuse re-quantizes the adapted layers; the experts and the router (no LoRA can reach them) are
        // copied as stored, and the folder scores.
        let requantized = folder.appendingPathComponent("fused-quantized")
        let fused = try CLIRunner.run(["fuse", "--model", base.path, "--adapter", adapters.path, "--output", requantized.path])
        #expect(fused.status == 0, "fuse: \(fused.standardError)")
        let stored = try SafeTensorsFile(url: base.appendingPathComponent("model.safetensors"))
        let written = try SafeTensorsFile(url: requantized.appendingPathComponent("model.safetensors"))
        let untouched = stored.orderedNames.filter { $0.contains("block_sparse_moe") }
        #expect(untouched.count == 3 * 4 * 3)
        for name in untouched {
            let (a, b) = (try #require(stored.tensors[name]), try #require(written.tensors[name]))
            #expect(a.shape == b.shape && Data(stored.bytes(of: a)) == Data(written.bytes(of: b)), "\(name) copied as stored")
        }
        let output = folder.appendingPathComponent("scores-requantized.jsonl")
        let scored = try CLIRunner.run(["score", "--model", requantized.path, "--input", texts.path, "--output", output.path])
        #expect(scored.status == 0, "score (re-quantized fused): \(scored.standardError)")
    }
}
