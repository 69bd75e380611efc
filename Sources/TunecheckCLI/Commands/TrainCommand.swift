import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckTrainer

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "LoRA (or full) SFT and DPO that evaluates every checkpoint as it is saved and stops when a guard trips.",
        discussion: """
        The config uses mlx_lm's LoRA keys where they overlap (model, data, fine_tune_type, num_layers, \
        lora_parameters, learning_rate, iters, batch_size, grad_accumulation_steps, save_every, \
        steps_per_report, adapter_path, resume_adapter_file, seed, max_seq_length, mask_prompt, lr_schedule, \
        optimizer, optimizer_config) plus mode (sft|dpo), beta, loss_type (sigmoid|ipo|hinge), \
        normalize_by_length, reference (base or a JSONL of precomputed log-probs), eval_suite, guards, \
        max_grad_norm and shuffle. Unknown keys are an error. Checkpoints are written like mlx_lm's \
        (NNNNNNN_adapters.safetensors, adapters.safetensors, adapter_config.json), atomically; metrics go to \
        metrics.jsonl; with eval_suite each checkpoint gets JUnit/JSON reports and the run an HTML report.

        Exit codes: 0 finished, 1 a guard stopped the run, 2 bad input.

        Examples:
          tunecheck train --config evalsets/demo/dpo-too-hot.yaml
          tunecheck train --config train.yaml --set learning_rate=5e-6 --set iters=200
        """
    )

    @Option(name: .long, help: ArgumentHelp("Training config (YAML).", valueName: "file"))
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (repeatable), e.g. --set learning_rate=1e-5.", valueName: "key=value"))
    var overrides: [String] = []

    func run() throws {
        let configuration = try TrainingConfiguration.load(URL(fileURLWithPath: config), overrides: overrides)
        let trainer = Trainer(configuration: configuration)
        let observer = TerminalTrainingObserver(total: configuration.iters)
        trainer.observer = observer
        let summary = try trainer.run()
        observer.finish()
        print("trained \(summary.steps) steps, final loss \(String(format: "%.4f", summary.finalLoss)); checkpoints in \(summary.outputFolder.path)")
        if let best = summary.bestCheckpoint {
            print("best checkpoint (\(configuration.bestMetric.spelling), among those passing the suite): \(best)")
        } else if summary.reportFolder != nil {
            print("no checkpoint passed the eval suite")
        }
        if let folder = summary.reportFolder { print("reports: \(folder.path)/report.html, junit.xml, report.json") }
        if let stopped = summary.stoppedBy {
            throw ChecksFailed(summary: stopped.errorDescription ?? "stopped by a guard")
        }
    }
}

/// Progress line with loss, learning rate and throughput on a terminal; messages always.
final class TerminalTrainingObserver: TrainingObserver {
    let progress: ProgressLine

    init(total: Int) {
        progress = ProgressLine("train", total: total, unit: "steps")
    }

    func step(_ step: Int, of total: Int, loss: Double, learningRate: Double, tokensPerSecond: Double) {
        progress.update(step, detail: String(format: "loss %.4f  lr %.2e  %.0f tok/s", loss, learningRate, tokensPerSecond))
    }

    func message(_ text: String) {
        progress.finish()
        print(text)
    }

    func finish() { progress.finish() }
}
