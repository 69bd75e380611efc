import Foundation
import TunecheckEngine
import TunecheckJSON

/// The Hugging Face Trainer / TRL: `checkpoint-N/` folders, each with `trainer_state.json` (its `log_history`
/// has `loss`, `learning_rate`, `grad_norm` and, for DPO, TRL's `rewards/*`; the newest checkpoint's state holds
/// the whole history) and, for PEFT, `adapter_config.json`. The Trainer does not save its arguments as JSON
/// (only the pickled `training_args.bin`), so the learning rate is the peak logged one and β and the loss type
/// are unknown.
public enum HuggingFaceRunReader: RunReader {
    public static let trainer = TrainingRun.Trainer.huggingface
    public static let signature = "checkpoint-N/ folders with trainer_state.json (Hugging Face Trainer / TRL)"

    public static func recognises(_ folder: URL) -> Bool {
        CheckpointWatcher.candidates(in: folder).contains { candidate in
            candidate.path.lastPathComponent.hasPrefix("checkpoint-")
                && FileManager.default.fileExists(atPath: candidate.path.appendingPathComponent("trainer_state.json").path)
        }
    }

    public static func read(_ folder: URL, path: String, logFile: URL?) throws -> TrainingRun {
        var run = TrainingRun(path: path, folder: folder, trainer: trainer)
        run.findCheckpoints()
        // The newest complete checkpoint's state has the whole history.
        guard let newest = run.checkpoints.last(where: {
            FileManager.default.fileExists(atPath: $0.path.appendingPathComponent("trainer_state.json").path)
        }) else {
            throw RunError.missingFile(path: folder.appendingPathComponent("checkpoint-N/trainer_state.json").path,
                                       what: "a complete checkpoint's trainer state")
        }
        let state = try RunReaders.object(at: newest.path.appendingPathComponent("trainer_state.json"))
        var sawDPO = false, sawSFT = false
        for entry in state["log_history"]?.array?.compactMap(\.object) ?? [] {
            // Training log entries carry `loss`; the final summary carries `train_loss`, evaluations `eval_*`.
            guard let step = entry["step"]?.int, entry["loss"] != nil || entry["rewards/margins"] != nil else { continue }
            if entry["rewards/margins"] != nil { sawDPO = true }
            if entry["mean_token_accuracy"] != nil { sawSFT = true }  // TRL's SFTTrainer
            run.history.append(TrainingRun.Step(step: step, loss: entry.number("loss"), learningRate: entry.number("learning_rate"),
                                                gradNorm: entry.number("grad_norm"), margin: entry.number("rewards/margins"),
                                                accuracy: entry.number("rewards/accuracies")))
        }
        run.method = sawDPO ? "dpo" : sawSFT ? "sft" : "unknown"
        run.steps = state["global_step"]?.int ?? run.history.last?.step
        if let peak = run.history.compactMap(\.learningRate).max() {
            run.learningRate = peak
            run.learningRateIsPeak = true
        }
        if let best = state.text("best_model_checkpoint") { run.bestCheckpoint = URL(fileURLWithPath: best).lastPathComponent }
        let adapterConfig = newest.path.appendingPathComponent("adapter_config.json")
        if FileManager.default.fileExists(atPath: adapterConfig.path) {
            let config = try RunReaders.object(at: adapterConfig)
            run.loraRank = config["r"]?.int
            run.loraAlpha = config.number("lora_alpha")
            run.base = config.text("base_model_name_or_path")
            if let targets = config["target_modules"]?.array?.compactMap(\.string) {
                run.loraTargets = targets.sorted()
            } else if let target = config.text("target_modules") {
                run.loraTargets = [target]
            }
        }
        return run
    }
}
