import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness

/// Options shared by `eval` and `watch`: where reports go and how results are shown.
struct ReportOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Folder for junit.xml, report.json and report.html (overrides the suite file's reports.dir).", valueName: "dir"))
    var reportDir: String?

    @Option(name: .long, help: "Report formats, comma separated (e.g. junit,json).")
    var format: CommaSeparated<ReportFormat>?

    func formats(default configured: [ReportFormat]) -> Set<ReportFormat> {
        Set(format?.values ?? configured)
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate checkpoints: repetition, preference accuracy, drift, weight delta, golden outputs, preflight.",
        discussion: """
        Loads the base, each checkpoint (an adapter folder or numbered file, a PEFT checkpoint-N folder, or a full \
        model folder) and fused models through the shared engine, runs every suite the inputs allow (or those of \
        --suites / the suite file), compares against golden outputs, writes JUnit, JSON and HTML reports and \
        exits 1 when a check fails (2 for bad input).

        Without a suite file, the evalsets come from --prompts, --pairs, --texts, --choices and --answers. --choices \
        (lines {"id", "context", "choices": [...], "answer": INDEX, "target_delimiter"?}) runs the choices suite: \
        lm-eval's multiple-choice acc/acc_norm, and against the base a paired difference with an exact McNemar test; \
        --texts also runs the perplexity suite (lm-eval's rolling word/byte perplexity, bits per byte). --answers \
        (lines {"id", "prompt", "answer", "checkpoint"?}) runs the text-only suites on answers produced elsewhere, \
        with no model. --fused DIR is checked against the adapter given with --checkpoint when exactly one is given.

        Sharding (CI build matrices): --shard I/N runs part I of N of the evaluation. A unit of work is one \
        checkpoint's evalset item (its answer, its pair's scores, its text's log-probs and KL, for every suite that \
        uses them); work that is not per item (weight delta, fused consistency, golden files) goes to one shard. The \
        split balances token counts and depends only on the settings and inputs. A shard writes only \
        tunecheck-part-I-of-N.json into its report folder and exits 0 (2 on bad input): no junit.xml and no verdict, \
        which `tunecheck merge` gives once all parts are there. --update-golden cannot be sharded.

        Examples:
          tunecheck eval --suite evalsets/default/suite.yaml
          tunecheck eval --suite evalsets/demo/suite.yaml --checkpoint 'run/checkpoint-*' \\
              --shard 2/4 --report-dir parts/2
          tunecheck eval --base models/tiny-default --checkpoint run/adapters/0000100_adapters.safetensors \\
              --prompts evalsets/default/prompts.jsonl --pairs evalsets/default/pairs.jsonl --report-dir out
          tunecheck eval --answers answers.jsonl --golden-dir golden
          tunecheck eval --base models/demo-base --checkpoint run/0000010_adapters.safetensors \\
              --choices evalsets/demo/choices.jsonl --texts evalsets/demo/texts.jsonl --suites choices,perplexity
        """
    )

    @OptionGroup var inputs: EvaluationInputOptions

    @Option(name: .long, help: ArgumentHelp("A checkpoint (repeatable; globs like 'run/*_adapters.safetensors' are expanded).", valueName: "path"))
    var checkpoint: [String] = []

    @Option(name: .long, help: ArgumentHelp("A fused model folder (repeatable).", valueName: "dir"))
    var fused: [String] = []

    @Option(name: .long, help: ArgumentHelp("Preference pairs (JSONL {\"id\", \"prompt\", \"chosen\", \"rejected\"}).", valueName: "file"))
    var pairs: String?

    @Option(name: .long, help: ArgumentHelp("Reference texts (JSONL {\"id\", \"text\"}).", valueName: "file"))
    var texts: String?

    @Option(name: .long, help: ArgumentHelp("Multiple-choice items (JSONL {\"id\", \"context\", \"choices\", \"answer\", \"target_delimiter\"?}).", valueName: "file"))
    var choices: String?

    @Option(name: .long, help: ArgumentHelp("Answers produced elsewhere (JSONL {\"id\", \"prompt\", \"answer\", \"checkpoint\"?}).", valueName: "file"))
    var answers: String?

    @Option(name: .long, help: "Suites to run, comma separated (e.g. repetition,drift).")
    var suites: CommaSeparated<SuiteKind>?

    @Option(name: .long, help: ArgumentHelp("Golden outputs folder.", valueName: "dir"))
    var goldenDir: String?

    @Flag(name: .long, help: "Rewrite the golden outputs (atomically) instead of comparing.")
    var updateGolden = false

    @Option(name: .long, help: "DPO β for implicit rewards (default 0.1).")
    var beta: Double?

    @Option(name: .long, help: "Fail when the mean reward margin exceeds this (default 5).")
    var maxMargin: Double?

    @Option(name: .long, help: "Fail when preference accuracy is below this (default 0.5).")
    var minAccuracy: Double?

    @Option(name: .long, help: ArgumentHelp(
        "Run part I of N (1 ≤ I ≤ N) and write only its part file into the report folder; combine the parts with `tunecheck merge`.",
        valueName: "I/N"))
    var shard: String?

    @OptionGroup var reportOptions: ReportOptions

    func run() throws {
        let shardSpec = try shard.map { try ShardSpec(parsing: $0) }
        if shardSpec != nil && updateGolden { throw ShardError.updateGoldenWithShard }
        var configuration = try inputs.configuration()
        if inputs.suite == nil { configuration.reports.dir = "tunecheck-report" }
        if !checkpoint.isEmpty { configuration.checkpoints = checkpoint }
        if let pairs { configuration.evalsets.pairs = pairs }
        if let texts { configuration.evalsets.texts = texts }
        if let answers { configuration.evalsets.answers = answers }
        if let choices { configuration.evalsets.choices = choices }
        if let suites { configuration.suites = suites.values }
        if let goldenDir { configuration.goldenDir = goldenDir }
        if let beta { configuration.thresholds.preference.beta = beta }
        if let maxMargin { configuration.thresholds.preference.maxMargin = maxMargin }
        if let minAccuracy { configuration.thresholds.preference.minAccuracy = minAccuracy }
        if !fused.isEmpty {
            let adapterCheckpoints = configuration.checkpoints.filter { !FileManager.default.fileExists(atPath: URL(fileURLWithPath: $0).appendingPathComponent("config.json").path) }
            configuration.fused = fused.map { SuiteConfiguration.FusedModel(path: $0, adapter: adapterCheckpoints.count == 1 ? adapterCheckpoints[0] : nil) }
        }
        if let reportDir = reportOptions.reportDir { configuration.reports.dir = reportDir }
        try configuration.validate(path: inputs.suite ?? "command line")
        guard configuration.base != nil || configuration.evalsets.answers != nil else {
            throw ValidationError("give --base DIR (or --answers FILE, or a --suite file naming a base)")
        }
        let formats = reportOptions.formats(default: configuration.reports.formats)

        var settings = try SessionSettings(configuration: configuration)
        settings.updateGolden = updateGolden
        if let shardSpec {
            let anchor = inputs.suite.map { URL(fileURLWithPath: $0).deletingLastPathComponent() }
                ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            try runShard(shardSpec, settings: settings, anchor: anchor, directory: URL(fileURLWithPath: configuration.reports.dir))
            return
        }
        let session = EvaluationSession(settings: settings, reports: ReportSettings(directory: URL(fileURLWithPath: configuration.reports.dir), formats: formats))
        let progress = ProgressLine("eval", total: max(settings.checkpoints.count, 1), unit: "checkpoints")
        var current = 0
        session.showProgress(on: progress) { current }
        session.onNotice = { text in progress.finish(); printNotice(text) }
        try session.prepare()
        if let preflight = session.preflightRan, preflight.verdict != .ok {
            progress.finish()
            fflush(nil)  // all output streams
            FileHandle.standardError.write(Data((preflight.describe() + "\n").utf8))
        }
        try session.evaluateAll { index, _ in
            current = index + 1
            progress.update(current)
        }
        progress.finish()
        let written = try session.writeReports()
        print(TerminalSummary.render(session.makeReport(), width: terminalWidth(), colored: stdoutIsTerminal()))
        for url in written { print("report: \(url.path)") }
        if let summary = session.cache?.summary { print(summary) }
        let failures = session.failures
        if !failures.isEmpty { throw ChecksFailed(summary: failures.description) }
    }
}

extension EvalCommand {
    /// One shard: its units computed and written as a part file; no reports, no verdict.
    func runShard(_ shard: ShardSpec, settings: SessionSettings, anchor: URL, directory: URL) throws {
        let session = EvaluationSession(settings: settings)
        var line: ProgressLine?
        var unitsDone = 0
        session.progress = { stage, done, total in
            if stage.hasPrefix("shard") {
                if line == nil, total > 0 { line = ProgressLine("eval \(shard)", total: total, unit: "units") }
                unitsDone = done
            }
            line?.update(unitsDone, detail: stage)
        }
        session.onNotice = { text in line?.finish(); printNotice(text) }
        let part = try session.recordShard(shard, anchor: anchor)
        line?.finish()
        let url = try part.write(into: directory)
        print("part: \(url.path) (shard \(shard); merge all \(shard.count) with `tunecheck merge --report-dir DIR PART_DIR...`)")
        if let summary = session.cache?.summary { print(summary) }
    }
}

func stdoutIsTerminal() -> Bool {
    isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
}

func terminalWidth() -> Int {
    var size = winsize()
    if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
    return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 100
}
