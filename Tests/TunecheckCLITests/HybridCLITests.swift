import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckEngine

/// Granite 4.0-H through the whole CLI, as on llama: a small random `granitemoehybrid` folder (Mamba2 and attention
/// blocks, the default model's tokenizer) is scored, generated from, preflighted, trained with LoRA DPO (checkpoints
/// evaluated as they are written), evaluated, compared, fused and measured with `delta`. The numbers themselves are
/// checked against transformers by the engine's fixture tests; here the pipeline must run and agree with itself.
struct HybridCLITests {
    /// 4 blocks (Mamba2, attention, Mamba2, attention), hidden 64, Mamba2 8 heads × 16 with state 16 in 2 groups,
    /// scan chunks of 8 (prompts are longer, so prefill crosses chunks), vocabulary of the default model's tokenizer.
    static let shape = ModelShape(name: "hybrid-tiny", hidden: 64, layers: 4, heads: 4, kvHeads: 2, intermediate: 96, vocabulary: 512, tied: false,
                                  hybrid: .init(attentionLayers: [1, 3], mambaHeads: 8, mambaHeadDim: 16, stateSize: 16, groups: 2, chunkSize: 8))

    static func makeModel(in folder: URL) throws -> URL {
        let model = folder.appendingPathComponent("hybrid")
        try RandomModel.write(shape, to: model, seed: 7)
        for file in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            try FileManager.default.copyItem(at: CLIRunner.defaultModel.appendingPathComponent(file), to: model.appendingPathComponent(file))
        }
        return model
    }

    @Test func scoreGenerateAndPreflightRunOnAHybridModel() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try Self.makeModel(in: folder)

        let scored = folder.appendingPathComponent("scored.jsonl")
        let score = try CLIRunner.run(["score", "--model", model.path, "--input", EvalFixtures.pairs.path, "--output", scored.path])
        #expect(score.status == 0, "\(score.standardError)")
        let lines = try CLIRunner.readJSONLines(scored)
        #expect(lines.count == 4)
        for line in lines {
            let gap = try #require(line["gap_sum"] as? Double)
            #expect(gap.isFinite)
        }
        // Scoring one pair at a time gives the numbers of the packed batch.
        let single = folder.appendingPathComponent("single.jsonl")
        try CLIRunner.writeLines([try String(contentsOf: EvalFixtures.pairs, encoding: .utf8).split(separator: "\n")[2].description],
                                 to: folder.appendingPathComponent("one.jsonl"))
        _ = try CLIRunner.run(["score", "--model", model.path, "--input", folder.appendingPathComponent("one.jsonl").path, "--output", single.path])
        let alone = try #require(try CLIRunner.readJSONLines(single).first?["gap_sum"] as? Double)
        #expect(abs(alone - (lines[2]["gap_sum"] as? Double ?? .nan)) < 1e-4)

        let generated = folder.appendingPathComponent("generated.jsonl")
        let generate = try CLIRunner.run(["generate", "--model", model.path, "--input", EvalFixtures.prompts.path, "--output", generated.path,
                                          "--max-tokens", "12"])
        #expect(generate.status == 0, "\(generate.standardError)")
        let answers = try CLIRunner.readJSONLines(generated)
        #expect(answers.count == 4)
        for answer in answers {
            let ids = try #require(answer["ids"] as? [Int])
            #expect(ids.count == 12 || answer["finish_reason"] as? String == "stop", "\(answer)")
            #expect(answer["text"] is String)
        }

        let preflight = try CLIRunner.run(["preflight", "--model", model.path, "--pairs", EvalFixtures.pairs.path])
        #expect([0, 1].contains(preflight.status), "\(preflight.standardError)")
        #expect(preflight.standardOutput.contains("gap"))
    }

    @Test func dpoTrainingEvalCompareFuseAndDeltaRunOnAHybridModel() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try Self.makeModel(in: folder)
        let (train, heldOut) = try TrainCLITests.writeStylePairs(in: folder)
        try TrainCLITests.write("name: held-out\nevalsets: {pairs: \(heldOut.path), prompts: \(EvalFixtures.prompts.path)}\ngeneration: {max_tokens: 12}\n",
                                to: folder.appendingPathComponent("suite.yaml"))
        try TrainCLITests.write("""
        model: \(model.path)
        data: \(train.path)
        mode: dpo
        optimizer: adamw
        learning_rate: 3e-4
        lora_parameters: {rank: 4, scale: 20}
        iters: 12
        batch_size: 4
        save_every: 6
        steps_per_report: 4
        adapter_path: run
        eval_suite: suite.yaml
        """, to: folder.appendingPathComponent("dpo.yaml"))
        let trained = try CLIRunner.run(["train", "--config", folder.appendingPathComponent("dpo.yaml").path])
        #expect(trained.status == 0, "stdout: \(trained.standardOutput)\nstderr: \(trained.standardError)")
        let checkpoint = folder.appendingPathComponent("run/0000012_adapters.safetensors")
        #expect(FileManager.default.fileExists(atPath: checkpoint.path))
        // The LoRA reached the Mamba2 projections as well as attention and the shared MLP.
        let names = try SafeTensorsFile(url: folder.appendingPathComponent("run/adapters.safetensors")).orderedNames
        for module in ["mamba.in_proj", "mamba.out_proj", "self_attn.q_proj", "shared_mlp.input_linear"] {
            #expect(names.contains { $0.contains(module) }, "no LoRA on \(module): \(names.prefix(6))")
        }
        let report = try EvalFixtures.readJSON(folder.appendingPathComponent("run/eval/report.json"))
        let suites = (report["suites"] as? [[String: Any]]) ?? []
        let accuracy = suites.first { $0["kind"] as? String == "preference" && $0["checkpoint"] as? String == "0000012_adapters" }
            .flatMap { ($0["metrics"] as? [String: Any])?["rewards/accuracies"] as? Double }
        let heldOutAccuracy = try #require(accuracy, "\(suites.map { ($0["kind"] ?? "", $0["checkpoint"] ?? "") })")
        #expect(heldOutAccuracy >= 0.75, "held-out rewards/accuracies \(heldOutAccuracy)")

        let evaluated = try CLIRunner.run(["eval", "--base", model.path, "--checkpoint", checkpoint.path, "--prompts", EvalFixtures.prompts.path,
                                           "--pairs", heldOut.path, "--report-dir", folder.appendingPathComponent("report").path])
        #expect([0, 1].contains(evaluated.status), "\(evaluated.standardError)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report/report.json").path))

        let compare = try CLIRunner.run(["compare", "--base", model.path, "--checkpoint", checkpoint.path, "--prompts", EvalFixtures.prompts.path,
                                         "--max-tokens", "8", "--format", "markdown"])
        #expect(compare.status == 0, "\(compare.standardError)")

        // Fused: the same log-probs as the unfused checkpoint.
        let fused = folder.appendingPathComponent("fused")
        let fuse = try CLIRunner.run(["fuse", "--model", model.path, "--adapter", checkpoint.path, "--output", fused.path])
        #expect(fuse.status == 0, "\(fuse.standardError)")
        let viaAdapter = folder.appendingPathComponent("adapter.jsonl"), viaFused = folder.appendingPathComponent("fused.jsonl")
        _ = try CLIRunner.run(["score", "--model", model.path, "--adapter", checkpoint.path, "--input", heldOut.path, "--output", viaAdapter.path])
        _ = try CLIRunner.run(["score", "--model", fused.path, "--input", heldOut.path, "--output", viaFused.path])
        for (a, b) in zip(try CLIRunner.readJSONLines(viaAdapter), try CLIRunner.readJSONLines(viaFused)) {
            let gapA = try #require(a["gap_sum"] as? Double), gapB = try #require(b["gap_sum"] as? Double)
            #expect(abs(gapA - gapB) < 1e-3, "unfused \(gapA) vs fused \(gapB)")
        }
        let delta = try CLIRunner.run(["delta", "--base", model.path, "--adapter", checkpoint.path, "--json", "-"])
        #expect(delta.status == 0, "\(delta.standardError)")
        #expect(delta.standardOutput.contains("mamba.in_proj"))
    }
}
