import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness
import TunecheckJSON

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "Several training runs side by side: settings, what the reward margin did, when it broke, a verdict.",
        discussion: """
        Reads each RUN_DIR as written by tunecheck train (run.json, metrics.jsonl, numbered checkpoints, eval/), \
        the Hugging Face Trainer / TRL (checkpoint-N/ folders with trainer_state.json) or mlx_lm \
        (adapter_config.json, numbered adapters, and a console log in the folder or given as RUN_DIR:LOGFILE), \
        and prints one row per run: method, learning rate, beta, loss type, LoRA rank and scale or alpha, steps, \
        checkpoints, loss at start/end/minimum, the largest reward margin and its step, the first step whose \
        rewards/margins exceeds --margin-threshold, the guard that stopped the run, the first failing and the \
        best checkpoint, and a verdict (pass, fail, unknown) with its reason. Partially written checkpoints are \
        ignored with a notice.

        With --suite each run's checkpoints are evaluated against the suite's base as `tunecheck eval` does \
        (results in a run's eval/report.json are reused when they were made with the same settings); without it \
        the verdicts a tunecheck run recorded are used. The margin threshold defaults to the suite's \
        preference max_margin with --suite, else 5.

        Exit codes: 1 when a run's verdict is fail, 2 for bad input (unknown layouts name the folder and what \
        was looked for), 0 otherwise (unknown is not a failure).

        Examples:
          tunecheck runs tunecheck-out/demo-too-hot tunecheck-out/demo-healthy
          tunecheck runs runs/lr-1e-5 runs/lr-1e-4 --suite evalsets/demo/suite.yaml --format markdown
          tunecheck runs trl-output mlx-adapters:train.log --format html --output runs.html
        """
    )

    @Argument(help: ArgumentHelp("Training run folders (RUN_DIR, or RUN_DIR:LOGFILE for mlx_lm).", valueName: "run-dir"))
    var runDirs: [String]

    @Option(name: .long, help: ArgumentHelp("Evaluate every checkpoint with this suite file (YAML or JSON).", valueName: "file"))
    var suite: String?

    @Option(name: .long, help: "A logged rewards/margins above this is a margin explosion (default: the suite's max_margin, else 5).")
    var marginThreshold: Double?

    @Option(name: .long, help: "Output format.")
    var format = RunsFormat.terminal

    @Option(name: .long, help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    func validate() throws {
        guard !runDirs.isEmpty else { throw ValidationError("give at least one RUN_DIR") }
        if let marginThreshold, !(marginThreshold.isFinite && marginThreshold > 0) {
            throw ValidationError("--margin-threshold must be a positive number")
        }
        if let output { try validateOutputPath(output) }
    }

    func run() throws {
        let runs = try runDirs.map(RunReaders.read)
        var evaluator: RunSuiteEvaluator?
        var progressLine: ProgressLine?
        if let suite {
            var instance = RunSuiteEvaluator(configuration: try SuiteConfiguration.load(URL(fileURLWithPath: suite)))
            instance.onNotice = { printToStandardError("notice: \($0)") }
            let line = ProgressLine("evaluating", total: runs.reduce(0) { $0 + $1.checkpoints.count }, unit: "checkpoints")
            let counter = ProgressCounter()
            instance.progress = { stage in
                line.update(counter.done, detail: stage)
                if !stage.hasSuffix("loading the base") { counter.done += 1 }
            }
            evaluator = instance
            progressLine = line
        }
        var settings = RunHistorySettings()
        if let marginThreshold {
            settings.marginThreshold = marginThreshold
            settings.marginThresholdSource = "--margin-threshold"
        } else if let evaluator {
            settings.marginThreshold = evaluator.marginThreshold
            settings.marginThresholdSource = "the suite's preference max_margin"
        }
        settings.suite = suite
        var summaries: [RunSummary] = []
        for run in runs {
            for notice in run.notices { printToStandardError("notice: \(notice)") }
            let evaluations = try evaluator?.evaluate(run)
            summaries.append(RunSummary(run: run, settings: settings, evaluations: evaluations))
        }
        progressLine?.finish()
        let text: String
        switch format {
        case .terminal:
            text = RunTable.terminal(summaries, settings: settings, width: output == nil ? terminalWidth() : 1000,
                                     colored: output == nil && stdoutIsTerminal())
        case .markdown: text = RunTable.markdown(summaries, settings: settings)
        case .json: text = String(decoding: JSONWriter.prettyData(RunTable.jsonValue(summaries, settings: settings)), as: UTF8.self)
        case .html: text = RunHTML.render(summaries, settings: settings)
        }
        if let output {
            try AtomicWrite.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8), to: URL(fileURLWithPath: output))
            print("wrote \(output)")
        } else {
            print(text)
        }
        let failed = summaries.filter { $0.verdict == .fail }
        if !failed.isEmpty {
            throw ChecksFailed(summary: "runs failed: " + failed.map(\.run.path).joined(separator: ", "))
        }
    }
}

/// Checkpoints evaluated so far, for the progress line.
private final class ProgressCounter {
    var done = 0
}

/// Notices go to standard error so that `--format json` on standard output stays parseable.
func printToStandardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
