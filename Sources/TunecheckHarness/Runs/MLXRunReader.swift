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
/// and mlx-lm-lora's DPO lines (its `trainer/dpo_trainer.py`, 0.8):
///
///     Iter 10: loss 0.693, chosen_r 0.000, rejected_r 0.000, acc 0.500, margin 0.000, lr 1.000e-05, it/s 1.0, tok/s 300.0, peak_mem 1.2GB
///
/// Validation lines (`Iter N: Val loss …`) are not training steps and are skipped.
/// mlx_lm 0.3x prints a table instead (`cli_ui.py`, rich, ANSI-coloured even into a pipe, no learning rate):
///
///       iter   train_loss     tok/s     tokens
///          2    1.873 ▼       10      0.5k
///          6    val 3.455    0.70s
///
/// Both are read (`Tests/Fixtures/runs/mlx-lora-0.28` and `mlx-lora` are the two, from the same run).
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
        for rawLine in stripANSI(text).split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard let entry = classicLine(line) ?? tableLine(line) else { continue }
            if let index = steps.lastIndex(where: { $0.step == entry.step }) { steps[index] = entry } else { steps.append(entry) }
        }
        return steps
    }

    /// `Iter 10: Train loss 2.345, Learning Rate 1.000e-05, …` (mlx_lm up to 0.28) or
    /// `Iter 10: loss 0.693, …, acc 0.5, margin 0.1, lr 1e-05, …` (mlx-lm-lora DPO).
    static func classicLine(_ line: String) -> TrainingRun.Step? {
        guard line.hasPrefix("Iter "), let colon = line.firstIndex(of: ":"),
              let step = Int(line[line.index(line.startIndex, offsetBy: 5)..<colon].trimmingCharacters(in: .whitespaces)) else { return nil }
        var fields: [String: Double] = [:]
        for part in line[line.index(after: colon)...].split(separator: ",") {
            let words = part.split(separator: " ")
            guard words.count >= 2, let value = Double(words.last!) else { continue }
            fields[words.dropLast().joined(separator: " ").lowercased()] = value
        }
        guard fields["val loss"] == nil, let loss = fields["train loss"] ?? fields["loss"] else { return nil }
        return TrainingRun.Step(step: step, loss: loss, learningRate: fields["learning rate"] ?? fields["lr"],
                                margin: fields["margin"], accuracy: fields["acc"])
    }

    /// `2    1.873 ▼    10    0.5k` (mlx_lm 0.3x's table: iteration, train loss and its trend arrow, tok/s, tokens).
    static func tableLine(_ line: String) -> TrainingRun.Step? {
        let words = line.split(separator: " ")
        guard words.count >= 3, let step = Int(words[0]), let loss = Double(words[1]), words[2] == "▼" || words[2] == "▲" else { return nil }
        return TrainingRun.Step(step: step, loss: loss)
    }

    /// The text without ANSI escape sequences (`ESC [ … letter`).
    static func stripANSI(_ text: String) -> String {
        guard text.contains("\u{1B}") else { return text }
        var result = String.UnicodeScalarView()
        var scalars = text.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar == "\u{1B}" else { result.append(scalar); continue }
            guard let next = scalars.next(), next == "[" else { continue }
            while let inner = scalars.next(), !(inner.properties.isAlphabetic && inner.isASCII) {}
        }
        return String(result)
    }
}
