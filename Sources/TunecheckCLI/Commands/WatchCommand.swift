import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Evaluate each new checkpoint another trainer writes into a folder, as it appears.",
        discussion: """
        Watches DIR for numbered checkpoints (mlx_lm's and tunecheck's NNNNNNN_adapters.safetensors, \
        tunecheck's full fine-tuning NNNNNNN_model/ folders, Hugging Face Trainer checkpoint-N folders), \
        including those already there at start, and evaluates each exactly once, in step order, with the suite \
        file's base, evalsets and thresholds. A file still being written is retried until complete, never \
        reported as corrupt. Unless the suite file lists its suites, golden outputs are checked only for \
        checkpoints that have them (numbered checkpoints usually do not; each gets a notice). Reports are \
        rewritten after every checkpoint. With --once it \
        evaluates what is there, reports files it cannot read as broken, and exits; otherwise it runs until interrupted or until --idle-exit seconds pass \
        without a new checkpoint. Exit codes as eval: 1 when any check failed.

        Examples:
          tunecheck watch --suite evalsets/default/suite.yaml --dir run/adapters
          tunecheck watch --suite suite.yaml --dir output --once
        """
    )

    @Option(name: .long, help: ArgumentHelp("Suite file (YAML or JSON) naming the base and evalsets.", valueName: "file"))
    var suite: String

    @Option(name: .long, help: ArgumentHelp("Folder the trainer writes checkpoints into.", valueName: "dir"))
    var dir: String

    @Flag(name: .long, help: "Evaluate the checkpoints present now and exit.")
    var once = false

    @Option(name: .long, help: "Seconds between scans.")
    var interval: Double = 2

    @Option(name: .long, help: "Exit after this many seconds without a new checkpoint.")
    var idleExit: Double?

    @Option(name: .long, help: ArgumentHelp("Keep the base model's results here between runs (see eval --help).", valueName: "dir"))
    var cacheDir: String?

    @OptionGroup var reportOptions: ReportOptions

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
    }

    func run() throws {
        var configuration = try SuiteConfiguration.load(URL(fileURLWithPath: suite))
        configuration.checkpoints = []
        applyCacheDirectory(flag: cacheDir, to: &configuration)
        if let reportDir = reportOptions.reportDir { configuration.reports.dir = reportDir }
        let formats = reportOptions.formats(default: configuration.reports.formats)
        var settings = try SessionSettings(configuration: configuration)
        settings.checkpointsArriveLater = true
        let reportFolder = URL(fileURLWithPath: configuration.reports.dir)
        let session = EvaluationSession(settings: settings, reports: ReportSettings(directory: reportFolder, formats: formats))
        session.onNotice = printNotice
        try session.prepare()
        print("watching \(dir) (reports in \(reportFolder.path))")
        let evaluated = try session.watch(WatchSettings(folder: URL(fileURLWithPath: dir), once: once, interval: interval, idleExit: idleExit)) { event in
            switch event {
            case .evaluated(let evaluation):
                let failed = evaluation.failedSuites.map(\.kind.rawValue)
                print("\(evaluation.summary.name): \(failed.isEmpty ? "passed" : "FAILED (\(failed.joined(separator: ", ")))")")
            case let .broken(path, reason):
                print("\(path): cannot evaluate: \(reason)")
            }
        }
        try session.writeReports()
        print(TerminalSummary.render(session.makeReport(), width: terminalWidth(), colored: stdoutIsTerminal()))
        if let summary = session.cache?.summary { print(summary) }
        let failures = session.failures
        if evaluated == 0 && failures.isEmpty { print("no checkpoints found in \(dir)") }
        if !failures.isEmpty { throw ChecksFailed(summary: failures.description) }
    }
}
