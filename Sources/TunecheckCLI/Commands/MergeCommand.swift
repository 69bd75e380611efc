import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the part files of a sharded evaluation (eval --shard I/N) into its reports.",
        discussion: """
        Reads tunecheck-part-I-of-N.json files (given as files, folders holding them, or glob patterns), checks \
        that they are shards 1…N of one evaluation (same settings and inputs, same tunecheck version, each shard \
        once, none corrupt or truncated), runs the suites on the merged per-item results and writes the junit.xml, \
        report.json and report.html an unsharded `eval` writes. Accuracies, margins, KL percentiles and repetition \
        verdicts are recomputed from the merged items, not averaged over shards. Needs neither the models nor the \
        evalsets. With --cache-dir (when the shards had one), the base's merged results are stored in the cache \
        folder, so the next run's shards read them instead of computing their parts.

        Exits 1 when a check failed, 0 otherwise, and 2 (naming the files, writing nothing) when a shard is missing \
        or given twice, the parts disagree, or a part is damaged.

        Example (four CI jobs wrote parts/1 … parts/4):
          tunecheck eval --suite evalsets/demo/suite.yaml --shard 3/4 --report-dir parts/3
          tunecheck merge --report-dir tunecheck-report parts/*
        """
    )

    @Option(name: .long, help: ArgumentHelp("Folder for junit.xml, report.json and report.html.", valueName: "dir"))
    var reportDir: String = "tunecheck-report"

    @Option(name: .long, help: "Report formats, comma separated (e.g. junit,json).")
    var format: CommaSeparated<ReportFormat>?

    @Option(name: .long, help: ArgumentHelp(
        "Store the base's merged results in this cache folder (as an unsharded eval with --cache-dir would), so the next run's shards read them; also TUNECHECK_CACHE_DIR.",
        valueName: "dir"))
    var cacheDir: String?

    @Argument(help: ArgumentHelp("Part files, folders holding them, or glob patterns.", valueName: "part"))
    var parts: [String] = []

    func validate() throws {
        guard !parts.isEmpty else { throw ValidationError("give the part files or their folders (e.g. parts/*)") }
    }

    func run() throws {
        let files = try ShardPart.files(in: parts)
        let loaded = try files.map { try ShardPart.read($0) }
        let formats = Set(format?.values ?? [.junit, .json, .html])
        var cacheConfiguration = SuiteConfiguration()
        applyCacheDirectory(flag: cacheDir, to: &cacheConfiguration)
        let session = try EvaluationSession.merging(loaded, reports: ReportSettings(directory: URL(fileURLWithPath: reportDir), formats: formats),
                                                    cacheDirectory: cacheConfiguration.cacheDir.map { URL(fileURLWithPath: $0) })
        for notice in session.notices { printNotice(notice) }
        if let preflight = session.preflightRan, preflight.verdict != .ok {
            fflush(nil)  // all output streams
            FileHandle.standardError.write(Data((preflight.describe() + "\n").utf8))
        }
        let written = try session.writeReports()
        print("merged \(loaded.count) part\(loaded.count == 1 ? "" : "s")")
        print(TerminalSummary.render(session.makeReport(), width: terminalWidth(), colored: stdoutIsTerminal()))
        for url in written { print("report: \(url.path)") }
        if let summary = session.cache?.summary { print(summary) }
        let failures = session.failures
        if !failures.isEmpty { throw ChecksFailed(summary: failures.description) }
    }
}
