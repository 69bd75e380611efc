import Foundation
import Testing
import TunecheckJSON
@testable import TunecheckHarness

@Suite struct ReportWriterTests {
    @Test func writesEachRequestedFormatIntoANewDirectory() throws {
        let parent = try ReportSample.temporaryDirectory("writer")
        defer { try? FileManager.default.removeItem(at: parent) }
        let directory = parent.appendingPathComponent("nested/reports")
        let report = ReportSample.report()
        let urls = try ReportWriter.write(report, to: directory, formats: [.html, .junit, .json])
        #expect(urls.map(\.lastPathComponent) == ["junit.xml", "report.json", "report.html"])
        for url in urls { #expect(FileManager.default.fileExists(atPath: url.path)) }
        // No temporary files are left beside them.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["junit.xml", "report.html", "report.json"])

        let only = try ReportWriter.write(report, to: directory, formats: [.json])
        #expect(only.map(\.lastPathComponent) == ["report.json"])
        _ = try JSONParser.parse(Array(try Data(contentsOf: only[0])))
    }

    @Test func failsWithThePathWhenTheDirectoryCannotBeCreated() throws {
        let parent = try ReportSample.temporaryDirectory("writer-blocked")
        defer { try? FileManager.default.removeItem(at: parent) }
        let file = parent.appendingPathComponent("not-a-directory")
        try Data("x".utf8).write(to: file)
        #expect(throws: HarnessError.self) {
            try ReportWriter.write(ReportSample.report(), to: file.appendingPathComponent("out"), formats: [.json])
        }
    }

    /// Writes the sample reports to `$TUNECHECK_REPORT_PREVIEW` for a look in a browser (not run otherwise).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TUNECHECK_REPORT_PREVIEW"] != nil, "set TUNECHECK_REPORT_PREVIEW=<dir> to write preview reports"))
    func writePreview() throws {
        let directory = URL(fileURLWithPath: ProcessInfo.processInfo.environment["TUNECHECK_REPORT_PREVIEW"]!)
        try ReportWriter.write(ReportSample.report(), to: directory, formats: Set(ReportFormat.allCases))
        try ReportWriter.write(ReportSample.report(extraAwkwardCheck: ReportSample.awkwardCheck),
                               to: directory.appendingPathComponent("awkward"), formats: Set(ReportFormat.allCases))
        var single = ReportSample.report()
        single.checkpoints = [single.checkpoints[2]]
        single.checkpoints[0].meanMargin = nil
        try ReportWriter.write(single, to: directory.appendingPathComponent("single"), formats: [.html])
        var many = ReportSample.report()
        many.checkpoints = (0..<9).map { (index: Int) -> CheckpointSummary in
            let i = Double(index)
            let name = index == 0 ? "base" : String(format: "%07d_adapters", index * 100)
            let accuracy: Double? = index == 0 ? nil : 0.5 + i * 0.04
            let margin: Double? = index == 0 ? nil : -0.3 + i * 0.2
            let repetition: Double? = index == 4 ? nil : i * 0.05
            let delta: Double = index == 0 ? 0 : pow(10, -4 + i * 0.4)
            return CheckpointSummary(name: name, preferenceAccuracy: accuracy, meanMargin: margin, repetitionScore: repetition,
                                     relativeWeightDelta: delta, passed: index < 6)
        }
        try ReportWriter.write(many, to: directory.appendingPathComponent("many"), formats: [.html])
        try Data(TerminalSummary.render(ReportSample.report(), width: 80, colored: true).utf8)
            .write(to: directory.appendingPathComponent("summary.txt"))
    }
}
