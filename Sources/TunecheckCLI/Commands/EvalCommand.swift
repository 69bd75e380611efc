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

        Without a suite file, the evalsets come from --prompts, --pairs, --texts and --answers. --answers \
        (lines {"id", "prompt", "answer", "checkpoint"?}) runs the text-only suites on answers produced elsewhere, \
        with no model. --fused DIR is checked against the adapter given with --checkpoint when exactly one is given.

        Examples:
          tunecheck eval --suite evalsets/default/suite.yaml
          tunecheck eval --base models/tiny-default --checkpoint run/adapters/0000100_adapters.safetensors \\
              --prompts evalsets/default/prompts.jsonl --pairs evalsets/default/pairs.jsonl --report-dir out
          tunecheck eval --answers answers.jsonl --golden-dir golden
        """
    )

    @Option(name: .long, help: ArgumentHelp("Suite file (YAML or JSON); flags below override it.", valueName: "file"))
    var suite: String?

    @Option(name: .long, help: ArgumentHelp("Base model folder.", valueName: "dir"))
    var base: String?

    @Option(name: .long, help: ArgumentHelp("A checkpoint (repeatable; globs like 'run/*_adapters.safetensors' are expanded).", valueName: "path"))
    var checkpoint: [String] = []

    @Option(name: .long, help: ArgumentHelp("A fused model folder (repeatable).", valueName: "dir"))
    var fused: [String] = []

    @Option(name: .long, help: ArgumentHelp("Prompts evalset (JSONL {\"id\", \"prompt\"}).", valueName: "file"))
    var prompts: String?

    @Option(name: .long, help: ArgumentHelp("Preference pairs (JSONL {\"id\", \"prompt\", \"chosen\", \"rejected\"}).", valueName: "file"))
    var pairs: String?

    @Option(name: .long, help: ArgumentHelp("Reference texts (JSONL {\"id\", \"text\"}).", valueName: "file"))
    var texts: String?

    @Option(name: .long, help: ArgumentHelp("Answers produced elsewhere (JSONL {\"id\", \"prompt\", \"answer\", \"checkpoint\"?}).", valueName: "file"))
    var answers: String?

    @Option(name: .long, help: "Suites to run, comma separated (e.g. repetition,drift).")
    var suites: CommaSeparated<SuiteKind>?

    @Option(name: .long, help: "Most new tokens per generated answer.")
    var maxTokens: Int?

    @Option(name: .long, help: "Apply the model's chat template to prompts, or use them as written.")
    var chatTemplate: GenerationSettings.ChatTemplateMode?

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

    @OptionGroup var reportOptions: ReportOptions

    func run() throws {
        var configuration = try suite.map { try SuiteConfiguration.load(URL(fileURLWithPath: $0)) } ?? SuiteConfiguration()
        if suite == nil { configuration.reports.dir = "tunecheck-report" }
        if let base { configuration.base = base }
        if !checkpoint.isEmpty { configuration.checkpoints = checkpoint }
        if let prompts { configuration.evalsets.prompts = prompts }
        if let pairs { configuration.evalsets.pairs = pairs }
        if let texts { configuration.evalsets.texts = texts }
        if let answers { configuration.evalsets.answers = answers }
        if let suites { configuration.suites = suites.values }
        if let maxTokens { configuration.generation.maxTokens = maxTokens }
        if let chatTemplate { configuration.generation.chatTemplate = chatTemplate }
        if let goldenDir { configuration.goldenDir = goldenDir }
        if let beta { configuration.thresholds.preference.beta = beta }
        if let maxMargin { configuration.thresholds.preference.maxMargin = maxMargin }
        if let minAccuracy { configuration.thresholds.preference.minAccuracy = minAccuracy }
        if !fused.isEmpty {
            let adapterCheckpoints = configuration.checkpoints.filter { !FileManager.default.fileExists(atPath: URL(fileURLWithPath: $0).appendingPathComponent("config.json").path) }
            configuration.fused = fused.map { SuiteConfiguration.FusedModel(path: $0, adapter: adapterCheckpoints.count == 1 ? adapterCheckpoints[0] : nil) }
        }
        if let reportDir = reportOptions.reportDir { configuration.reports.dir = reportDir }
        try configuration.validate(path: suite ?? "command line")
        guard configuration.base != nil || configuration.evalsets.answers != nil else {
            throw ValidationError("give --base DIR (or --answers FILE, or a --suite file naming a base)")
        }
        let formats = reportOptions.formats(default: configuration.reports.formats)

        var options = try EvaluationOptions(configuration: configuration)
        options.updateGolden = updateGolden
        let evaluator = Evaluator(options: options)
        let progress = ProgressLine("eval", total: max(options.checkpoints.count, 1), unit: "checkpoints")
        evaluator.progress = { stage, _, _ in progress.update(0, detail: stage) }
        try evaluator.prepare()
        if let preflight = evaluator.preflight, preflight.verdict != .ok {
            progress.finish()
            fflush(nil)  // all output streams
            FileHandle.standardError.write(Data((preflight.describe() + "\n").utf8))
        }
        for (index, spec) in options.checkpoints.enumerated() {
            evaluator.progress = { stage, _, _ in progress.update(index, detail: stage) }
            try evaluator.evaluate(spec)
            progress.update(index + 1)
        }
        progress.finish()
        let report = evaluator.makeReport()
        let written = try ReportWriter.write(report, to: URL(fileURLWithPath: configuration.reports.dir), formats: formats)
        print(TerminalSummary.render(report, width: terminalWidth(), colored: stdoutIsTerminal()))
        for url in written { print("report: \(url.path)") }
        if !report.passed {
            let failed = report.suites.filter { !$0.passed }.map { "\($0.kind.rawValue) [\($0.checkpoint)]" }
            throw ChecksFailed(summary: "checks failed: \(failed.joined(separator: ", "))")
        }
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
