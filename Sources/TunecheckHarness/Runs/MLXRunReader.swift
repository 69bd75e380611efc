import Foundation
import TunecheckEngine
import TunecheckJSON

/// mlx_lm (`mlx_lm.lora`) and mlx-lm-lora: `adapter_config.json` holds the training arguments (learning rate,
/// iterations, `lora_parameters`; mlx-lm-lora adds `train_mode`, `beta`), numbered adapters
/// (`NNNNNNN_adapters.safetensors`), and metrics only in the console output: a log file in the folder (`*.log`,
/// `*.txt`) or given as `RUN_DIR:LOGFILE`. Lines read (from mlx_lm's `tuner/trainer.py`):
///
///     Iter 10: Train loss 2.345, Learning Rate 1.000e-05, It/sec 1.2, Tokens/sec 300.1, Trained Tokens 2560, Peak mem 1.2 GB
///
/// and, when present, the DPO values mlx-lm-lora prints on the same kind of line (`Rewards margin`/`margin`,
/// `Accuracy`/`accuracy`). Validation lines (`Iter N: Val loss …`) are not training steps and are skipped.
public enum MLXRunReader: RunReader {
    public static let trainer = TrainingRun.Trainer.mlxLM
    public static let signature = "adapter_config.json with NNNNNNN_adapters.safetensors or a console log (mlx_lm)"

    public static func recognises(_ folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent("adapter_config.json").path)
    }

    public static func read(_ folder: URL, path: String, logFile: URL?) throws -> TrainingRun {
        var run = TrainingRun(path: path, folder: folder, trainer: trainer)
        let config = try RunReaders.object(at: folder.appendingPathComponent("adapter_config.json"))
        let mode = config.text("train_mode") ?? config.text("mode")
        run.method = mode?.lowercased() ?? (config["fine_tune_type"] != nil ? "sft" : "unknown")
        run.learningRate = config.number("learning_rate")
        run.beta = config.number("beta")
        run.lossType = config.text("dpo_loss_type") ?? config.text("loss_type")
        if let lora = config["lora_parameters"]?.object {
            run.loraRank = lora["rank"]?.int
            run.loraScale = lora.number("scale")
            run.loraTargets = lora["keys"]?.array?.compactMap(\.string)
        }
        run.steps = config["iters"]?.int
        run.base = config.text("model")
        run.findCheckpoints()
        let log = logFile ?? findLog(in: folder)
        if let log {
            let text: String
            do { text = try BoundedFile.readText(log, limit: BoundedFile.Limit.jsonLines) } catch {
                throw RunError.invalidFile(path: log.path, reason: error.reason)
            }
            run.history = parseLog(text)
            if run.history.isEmpty { run.notices.append("\(log.path): no \"Iter N: Train loss …\" lines in it") }
            if run.method == "sft", run.history.contains(where: { $0.margin != nil }) { run.method = "dpo" }
        }
        // Steps trained: the last logged step or checkpoint (a run cut short trained fewer than `iters`).
        let trained = max(run.history.last?.step ?? 0, run.checkpoints.last?.step ?? 0)
        if trained > 0 { run.steps = trained }
        return run
    }

    static func findLog(in folder: URL) -> URL? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && ($0.hasSuffix(".log") || $0.hasSuffix(".txt")) }.sorted().first
            .map { folder.appendingPathComponent($0) }
    }

    /// The training steps of an mlx_lm console log, in order (a step logged twice keeps its last line).
    static func parseLog(_ text: String) -> [TrainingRun.Step] {
        var steps: [TrainingRun.Step] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            guard let colon = line.firstIndex(of: ":"), line.hasPrefix("Iter ") else { continue }
            guard let step = Int(line[line.index(line.startIndex, offsetBy: 5)..<colon].trimmingCharacters(in: .whitespaces)) else { continue }
            var fields: [String: Double] = [:]
            for part in line[line.index(after: colon)...].split(separator: ",") {
                let words = part.split(separator: " ")
                guard words.count >= 2, let value = Double(words.last!) else { continue }
                fields[words.dropLast().joined(separator: " ").lowercased()] = value
            }
            guard let loss = fields["train loss"] ?? fields["loss"], fields["val loss"] == nil else { continue }
            let entry = TrainingRun.Step(step: step, loss: loss, learningRate: fields["learning rate"],
                                         margin: fields["rewards margin"] ?? fields["margin"] ?? fields["reward margin"],
                                         accuracy: fields["accuracy"] ?? fields["rewards accuracy"])
            if let index = steps.lastIndex(where: { $0.step == step }) { steps[index] = entry } else { steps.append(entry) }
        }
        return steps
    }
}
