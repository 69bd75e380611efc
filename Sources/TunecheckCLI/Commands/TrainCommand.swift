import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness
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
        (NNNNNNN_adapters.safetensors, adapters.safetensors, adapter_config.json; full fine-tuning \
        NNNNNNN_model/), atomically; run.json records the whole configuration and how the run ended (written \
        at the start and at every save), metrics.jsonl one line per step; with eval_suite each checkpoint is \
        evaluated as it is written (JUnit/JSON per checkpoint, the run's HTML report in <adapter_path>/eval).

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
        var reportFolder: URL?
        if let suite = configuration.evalSuite {
            let callback = try SessionTrainingCallback(suite: URL(fileURLWithPath: suite), configuration: configuration, log: observer.message)
            trainer.callback = callback
            reportFolder = callback.session.reports?.directory
        }
        let summary = try trainer.run()
        observer.finish()
        print("trained \(summary.steps) steps, final loss \(String(format: "%.4f", summary.finalLoss)); checkpoints in \(summary.outputFolder.path)")
        if let best = summary.bestCheckpoint {
            print("best checkpoint (\(configuration.bestMetric.spelling), among those passing the suite): \(best)")
        } else if reportFolder != nil {
            print("no checkpoint passed the eval suite")
        }
        if let folder = reportFolder { print("reports: \(folder.path)/report.html, junit.xml, report.json") }
        if let stopped = summary.stoppedBy {
            throw ChecksFailed(summary: stopped.errorDescription ?? "stopped by a guard")
        }
    }
}

/// Evaluates each checkpoint the trainer writes with the run's eval suite (against the run's base), writing each
/// checkpoint's JUnit/JSON and the run's cumulative reports into `<adapter_path>/eval/`.
final class SessionTrainingCallback: TrainingCallback {
    let session: EvaluationSession
    let log: (String) -> Void

    init(suite: URL, configuration: TrainingConfiguration, log: @escaping (String) -> Void) throws {
        var suiteConfiguration = try SuiteConfiguration.load(suite)
        suiteConfiguration.base = configuration.model
        suiteConfiguration.checkpoints = []
        applyCacheDirectory(flag: nil, to: &suiteConfiguration)
        var settings = try SessionSettings(configuration: suiteConfiguration)
        settings.checkpointsArriveLater = true
        let folder = URL(fileURLWithPath: configuration.adapterPath).appendingPathComponent("eval")
        session = EvaluationSession(settings: settings, reports: ReportSettings(directory: folder, formats: [.junit, .json, .html], perCheckpoint: true))
        self.log = log
        session.onNotice = { log("notice: \($0)") }
    }

    func trainingWillStart(_ record: RunRecord, base: LanguageModel) throws {
        try session.prepare(base: base)
    }

    func checkpointSaved(_ checkpoint: SavedCheckpoint) throws -> CheckpointFeedback? {
        var spec = try CheckpointSpec.from(path: checkpoint.url.path)
        spec.step = checkpoint.step
        log("evaluating \(spec.name)")
        let evaluation = try session.evaluate(spec, trainingLoss: checkpoint.loss)
        var failures: [String] = []
        var repetition: String?
        for suite in evaluation.failedSuites {
            guard case let .failed(message, _)? = suite.checks.first(where: { $0.status.isFailure })?.status else { continue }
            failures.append("\(suite.kind.rawValue) failed on \(spec.name): \(message)")
            if suite.kind == .repetition { repetition = message }
        }
        if repetition == nil, evaluation.failedSuites.contains(where: { $0.kind == .repetition }) { repetition = "repetition suite failed" }
        return CheckpointFeedback(passed: evaluation.passed, metrics: CheckpointSummary.metrics(of: evaluation.suites),
                                  failures: failures, repetition: repetition)
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
