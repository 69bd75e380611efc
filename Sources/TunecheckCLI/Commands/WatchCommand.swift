import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Evaluate each new checkpoint another trainer writes into a folder, as it appears.",
        discussion: """
        Watches DIR for mlx_lm numbered adapters (NNNNNNN_adapters.safetensors) and Hugging Face Trainer \
        checkpoint-N folders, including those already there at start, and evaluates each exactly once, in step \
        order, with the suite file's base, evalsets and thresholds. A file still being written is retried until \
        complete, never reported as corrupt. The golden suite runs only when the suite file lists it in `suites` \
        (numbered checkpoints have no golden outputs). Reports are rewritten after every checkpoint. With --once it \
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

    @OptionGroup var reportOptions: ReportOptions

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
    }

    func run() throws {
        var configuration = try SuiteConfiguration.load(URL(fileURLWithPath: suite))
        configuration.checkpoints = []
        if let reportDir = reportOptions.reportDir { configuration.reports.dir = reportDir }
        let formats = reportOptions.formats(default: configuration.reports.formats)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HarnessError.checkpointNotFound(path: dir + " (not a folder)")
        }
        var options = try EvaluationOptions(configuration: configuration)
        options.checkpointsArriveLater = true
        if options.suites == nil {
            // As in training runs: numbered checkpoints have no golden outputs, so the golden suite runs only when
            // the suite file names it.
            options.suites = Evaluator(options: options).activeSuites.subtracting([.golden])
        }
        let evaluator = Evaluator(options: options)
        try evaluator.prepare()
        let watcher = CheckpointWatcher(directory: URL(fileURLWithPath: dir), settleSeconds: once ? 0 : min(interval, 1))
        let reportFolder = URL(fileURLWithPath: configuration.reports.dir)
        var lastActivity = Date()
        var failures: [String] = []
        var evaluated = 0
        print("watching \(dir) (reports in \(reportFolder.path))")
        while true {
            var events = watcher.poll()
            if once {
                // Without waiting for sizes to settle, one more scan sees the same files as stable.
                // Nothing is waited for after that scan: what still cannot be read is broken.
                events += watcher.poll(now: Date().addingTimeInterval(1), final: true)
            }
            for event in events {
                lastActivity = Date()
                switch event {
                case .ready(let spec):
                    let evaluation = try evaluator.evaluate(spec)
                    evaluated += 1
                    let failed = evaluation.suites.filter { !$0.passed }.map(\.kind.rawValue)
                    print("\(spec.name): \(failed.isEmpty ? "passed" : "FAILED (\(failed.joined(separator: ", ")))")")
                    if !failed.isEmpty { failures.append(spec.name) }
                    try ReportWriter.write(evaluator.makeReport(), to: reportFolder, formats: formats)
                case let .broken(path, reason):
                    print("\(path): cannot evaluate: \(reason)")
                    failures.append(URL(fileURLWithPath: path).lastPathComponent)
                }
            }
            if once { break }
            if let idleExit, Date().timeIntervalSince(lastActivity) > idleExit { break }
            Thread.sleep(forTimeInterval: interval)
        }
        let report = evaluator.makeReport()
        try ReportWriter.write(report, to: reportFolder, formats: formats)
        print(TerminalSummary.render(report, width: terminalWidth(), colored: stdoutIsTerminal()))
        if evaluated == 0 && failures.isEmpty { print("no checkpoints found in \(dir)") }
        if !failures.isEmpty || !report.passed {
            throw ChecksFailed(summary: "checks failed for: \(Set(failures + report.suites.filter { !$0.passed }.map(\.checkpoint)).sorted().joined(separator: ", "))")
        }
    }
}
