import Foundation
import TunecheckTestSupport
import Testing

/// `tunecheck train` on the tiny default model: an absurd learning rate trips a guard, a sane DPO run improves
/// held-out preference metrics, `resume_adapter_file` continues exactly, unknown keys are refused.
struct TrainCLITests {
    static let model = CLIRunner.defaultModel.path

    static func pairLine(id: String, question: String, chosen: String, rejected: String) -> String {
        let object: [String: String] = ["id": id, "prompt": "Question: \(question)\nAnswer:", "chosen": chosen, "rejected": rejected]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Sixteen pairs with one consistent preference (plain words over jargon), split 12 for training and 4 held out:
    /// the held-out questions and answers are new sentences in the same two styles.
    static func writeStylePairs(in folder: URL) throws -> (train: URL, heldOut: URL) {
        let questions = ["How much water should I drink?", "Is a short walk after meals useful?", "Which foods are rich in fibre?",
                         "How many hours of sleep do adults need?", "Should I eat breakfast?", "Is coffee bad for me?",
                         "How can I lower stress?", "Are eggs healthy?", "How often should I exercise?", "Is sugar harmful?",
                         "Do I need vitamins?", "Is fruit juice healthy?", "How do I sleep better?", "Is walking good exercise?",
                         "Should I drink milk?", "How much salt is too much?"]
        let plain = ["yes", "it", "helps", "a", "little", "every", "day", "eat", "more", "fruit", "and", "beans", "walk", "sleep",
                     "well", "drink", "water", "keep", "simple"]
        let jargon = ["homeostatic", "glycaemic", "postprandial", "oligosaccharide", "circadian", "vasopressin", "insulin",
                      "metabolic", "modulation", "attenuates", "kinetics", "regulated", "mediated", "excursions", "fermentation"]
        func answer(_ words: [String], _ index: Int) -> String {
            " " + (0..<6).map { words[(index * 7 + $0 * 5) % words.count] }.joined(separator: " ") + "."
        }
        let lines = questions.enumerated().map { index, question in
            pairLine(id: "style-\(index)", question: question, chosen: answer(plain, index), rejected: answer(jargon, index))
        }
        let train = folder.appendingPathComponent("train.jsonl")
        let heldOut = folder.appendingPathComponent("held-out.jsonl")
        try CLIRunner.writeLines(Array(lines[..<12]), to: train)
        try CLIRunner.writeLines(Array(lines[12...]), to: heldOut)
        return (train, heldOut)
    }

    static func write(_ text: String, to url: URL) throws {
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    static func metricsLines(_ url: URL) throws -> [[String: Any]] {
        try CLIRunner.readJSONLines(url)
    }

    @Test func absurdLearningRateTripsAGuardAndStops() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.write("""
        name: train-eval
        evalsets: {prompts: \(EvalFixtures.prompts.path)}
        generation: {max_tokens: 16}
        """, to: folder.appendingPathComponent("suite.yaml"))
        try Self.write("""
        model: \(Self.model)
        data: \(EvalFixtures.pairs.path)
        mode: dpo
        optimizer: adamw
        learning_rate: 1.0
        iters: 40
        batch_size: 2
        save_every: 5
        steps_per_report: 5
        adapter_path: run
        eval_suite: suite.yaml
        """, to: folder.appendingPathComponent("hot.yaml"))
        let result = try CLIRunner.run(["train", "--config", folder.appendingPathComponent("hot.yaml").path])
        #expect(result.status == 1, "stdout: \(result.standardOutput)\nstderr: \(result.standardError)")
        let stopped = try #require(result.standardError.firstMatch(of: /guard '([a-z-]+)' stopped the run at (step \d+|\d{7}_adapters): .+/),
                                   "stderr names the guard and the checkpoint: \(result.standardError)")
        #expect(["non-finite", "min-loss", "max-margin", "repetition", "no-learning"].contains(String(stopped.1)))
        let run = try EvalFixtures.readJSON(folder.appendingPathComponent("run/run.json"))
        let steps = try #require(run["steps"] as? Int)
        #expect(steps < 40, "the run stopped early")
        #expect((run["stopped_by"] as? String ?? "").contains("guard '\(stopped.1)'"))
    }

    @Test func saneDPORunImprovesHeldOutPreferences() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (train, heldOut) = try Self.writeStylePairs(in: folder)
        try Self.write("name: held-out\nevalsets: {pairs: \(heldOut.path)}\n", to: folder.appendingPathComponent("suite.yaml"))
        try Self.write("""
        model: \(Self.model)
        data: \(train.path)
        mode: dpo
        optimizer: adamw
        learning_rate: 3e-4
        lora_parameters: {rank: 4, scale: 20}
        iters: 12
        batch_size: 4
        save_every: 12
        steps_per_report: 4
        adapter_path: run
        eval_suite: suite.yaml
        """, to: folder.appendingPathComponent("sane.yaml"))
        let result = try CLIRunner.run(["train", "--config", folder.appendingPathComponent("sane.yaml").path])
        #expect(result.status == 0, "stdout: \(result.standardOutput)\nstderr: \(result.standardError)")
        let report = try EvalFixtures.readJSON(folder.appendingPathComponent("run/eval/report.json"))
        let suites = (report["suites"] as? [[String: Any]]) ?? []
        func metric(_ kind: String, _ checkpoint: String, _ name: String) -> Double? {
            let suite = suites.first { $0["kind"] as? String == kind && $0["checkpoint"] as? String == checkpoint }
            return (suite?["metrics"] as? [String: Any])?[name] as? Double
        }
        // The base against itself has zero rewards: accuracy 0, margin 0. The trained checkpoint ranks the
        // held-out pairs right and widened their log-prob gap.
        let accuracy = try #require(metric("preference", "0000012_adapters", "rewards/accuracies"), "\(suites.map { $0["kind"] ?? "" })")
        let margin = try #require(metric("preference", "0000012_adapters", "rewards/margins"))
        let gapDrift = try #require(metric("drift", "0000012_adapters", "gap_sum_drift"))
        #expect(accuracy >= 0.75, "held-out rewards/accuracies \(accuracy)")
        #expect(margin > 0.05, "held-out rewards/margins \(margin)")
        #expect(gapDrift > 0.5, "held-out chosen − rejected gap grew by \(gapDrift) nats")
        let training = try Self.metricsLines(folder.appendingPathComponent("run/metrics.jsonl"))
        // One line per step, each with its own loss, learning rate, gradient norm and TRL's reward metrics.
        #expect(training.compactMap { $0["step"] as? Int } == Array(1...12))
        #expect(training.allSatisfy { $0["rewards/margins"] is Double && $0["rewards/accuracies"] is Double && $0["grad_norm"] is Double })
        let losses = training.compactMap { $0["loss"] as? Double }
        #expect(losses.count == 12 && losses.suffix(4).reduce(0, +) < losses.prefix(4).reduce(0, +), "training loss fell: \(losses)")
    }

    @Test func resumeContinuesFromTheSavedStep() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("sft.jsonl")
        let pairs = try String(contentsOf: EvalFixtures.pairs, encoding: .utf8).split(separator: "\n")
        try CLIRunner.writeLines(try pairs.map { line in
            let pair = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let object = ["prompt": pair["prompt"] as! String, "completion": pair["chosen"] as! String]
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }, to: data)
        // Plain SGD on one fixed full batch keeps no optimizer state, so a resumed run must reproduce the
        // uninterrupted run's losses exactly.
        func config(iters: Int, folder name: String, resume: String? = nil) -> String {
            """
            model: \(Self.model)
            data: \(data.path)
            mode: sft
            optimizer: sgd
            learning_rate: 0.05
            iters: \(iters)
            batch_size: 4
            shuffle: false
            save_every: 3
            steps_per_report: 1
            adapter_path: \(name)
            """ + (resume.map { "\nresume_adapter_file: \($0)" } ?? "")
        }
        try Self.write(config(iters: 9, folder: "whole"), to: folder.appendingPathComponent("whole.yaml"))
        let whole = try CLIRunner.run(["train", "--config", folder.appendingPathComponent("whole.yaml").path])
        #expect(whole.status == 0, "\(whole.standardError)")
        try Self.write(config(iters: 3, folder: "resumed", resume: "whole/0000006_adapters.safetensors"), to: folder.appendingPathComponent("resumed.yaml"))
        let resumed = try CLIRunner.run(["train", "--config", folder.appendingPathComponent("resumed.yaml").path])
        #expect(resumed.status == 0, "\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("at step 6"), "\(resumed.standardOutput)")

        #expect(EvalFixtures.listing(folder.appendingPathComponent("resumed")).contains("0000009_adapters.safetensors"))
        let wholeLines = try Self.metricsLines(folder.appendingPathComponent("whole/metrics.jsonl"))
        let resumedLines = try Self.metricsLines(folder.appendingPathComponent("resumed/metrics.jsonl"))
        #expect(resumedLines.compactMap { $0["step"] as? Int } == [7, 8, 9])
        let expected = wholeLines.filter { ($0["step"] as? Int ?? 0) > 6 }.compactMap { $0["loss"] as? Double }
        let actual = resumedLines.compactMap { $0["loss"] as? Double }
        #expect(expected.count == 3 && actual.count == 3)
        for (a, b) in zip(actual, expected) { #expect(abs(a - b) < 1e-6, "resumed loss \(a) vs uninterrupted \(b)") }
        let first = try #require(wholeLines.first?["loss"] as? Double)
        #expect(actual[0] < first - 1, "the resumed run starts where training left off, not from scratch")
    }

    @Test(arguments: [("learning_rat: 1e-4", "learning_rat"), ("guards: {max_margn: 3}", "max_margn"),
                      ("lora_parameters: {rnk: 4}", "rnk")])
    func unknownConfigKeyIsAnInputError(_ line: String, _ key: String) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("train.yaml")
        try Self.write("model: \(Self.model)\ndata: \(EvalFixtures.pairs.path)\nmode: dpo\n\(line)\n", to: config)
        try BadInputCLITests.expectInputError(["train", "--config", config.path], mentions: ["train.yaml", "unknown key '\(key)'"])
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("adapters").path), "nothing was trained")
        // The same through --set.
        let valid = folder.appendingPathComponent("valid.yaml")
        try Self.write("model: \(Self.model)\ndata: \(EvalFixtures.pairs.path)\nmode: dpo\n", to: valid)
        try BadInputCLITests.expectInputError(["train", "--config", valid.path, "--set", "bogus_key=1"], mentions: ["unknown key 'bogus_key'"])
    }
}
