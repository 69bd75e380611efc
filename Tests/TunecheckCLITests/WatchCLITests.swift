import Foundation
import TunecheckTestSupport
import Testing

/// `tunecheck watch` with checkpoints appearing while it runs, one of them written slowly (incomplete for about a
/// second), and `--once`.
struct WatchCLITests {
    /// A suite file on the default model: repetition and weight delta (no golden files, no pairs needed).
    static func writeSuite(in folder: URL) throws -> URL {
        let suite = folder.appendingPathComponent("suite.yaml")
        try """
        name: watched
        base: \(CLIRunner.defaultModel.path)
        evalsets: {prompts: \(EvalFixtures.prompts.path)}
        suites: [repetition, weight-delta]
        generation: {max_tokens: 8}
        reports: {dir: report}
        """.write(to: suite, atomically: true, encoding: .utf8)
        return suite
    }

    static func name(_ step: Int) -> String { String(format: "%07d_adapters", step) }

    /// The lines of the form `NAME: passed|FAILED ...` that `watch` prints per evaluated checkpoint, in order.
    static func evaluatedNames(_ output: String) -> [String] {
        output.split(separator: "\n").compactMap { line -> String? in
            guard let colon = line.firstIndex(of: ":"), line.hasSuffix(": passed") || line.contains(": FAILED") else { return nil }
            return String(line[..<colon])
        }
    }

    @Test func checkpointsAppearingWhileItRunsAreEachEvaluatedOnceInStepOrder() throws {
        // Synchronous on purpose: timed with Thread.sleep, so other tests blocking the cooperative pool cannot
        // delay the writes past the watcher's --idle-exit.
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let suite = try Self.writeSuite(in: folder)
        let watched = folder.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: watched, withIntermediateDirectories: true)
        var payloads: [Int: Data] = [:]
        for step in [100, 200, 300, 400] { payloads[step] = try EvalFixtures.adapterBytes(seed: UInt64(step), folder: watched) }

        let watch = try BackgroundProcess(["watch", "--suite", suite.path, "--dir", watched.path, "--interval", "0.2", "--idle-exit", "5"])
        defer { watch.terminate() }
        Thread.sleep(forTimeInterval: 0.6)
        try payloads[100]!.write(to: watched.appendingPathComponent(Self.name(100) + ".safetensors"))
        Thread.sleep(forTimeInterval: 0.5)
        try payloads[200]!.write(to: watched.appendingPathComponent(Self.name(200) + ".safetensors"))
        Thread.sleep(forTimeInterval: 0.3)
        // Step 300 is written in place, in 10 chunks over about a second, as a trainer without atomic writes does;
        // step 400 appears complete in the middle of it and must still come after 300.
        let partial = watched.appendingPathComponent(Self.name(300) + ".safetensors")
        FileManager.default.createFile(atPath: partial.path, contents: nil)
        let handle = try FileHandle(forWritingTo: partial)
        let data = payloads[300]!
        let chunk = (data.count + 9) / 10
        for index in 0..<10 {
            try handle.write(contentsOf: data[(index * chunk)..<min((index + 1) * chunk, data.count)])
            if index == 4 { try payloads[400]!.write(to: watched.appendingPathComponent(Self.name(400) + ".safetensors")) }
            Thread.sleep(forTimeInterval: 0.11)
        }
        try handle.close()

        let result = try watch.wait(timeoutSeconds: 60)
        #expect(result.status == 0, "stdout: \(result.standardOutput)\nstderr: \(result.standardError)")
        #expect(Self.evaluatedNames(result.standardOutput) == [100, 200, 300, 400].map(Self.name), "\(result.standardOutput)")
        #expect(!result.standardOutput.contains("cannot evaluate"), "the partial file is never reported as broken: \(result.standardOutput)")
        let report = try EvalFixtures.readJSON(folder.appendingPathComponent("report/report.json"))
        let checkpoints = ((report["checkpoints"] as? [[String: Any]]) ?? []).map { ($0["name"] as? String ?? "", $0["step"] as? Int) }
        #expect(checkpoints.map(\.0) == ["base"] + [100, 200, 300, 400].map(Self.name))
        #expect(checkpoints.dropFirst().map(\.1) == [100, 200, 300, 400])
        // The suites that compare with the base run on watched checkpoints too.
        let deltaSuites = EvalFixtures.checks(report).filter { $0.kind == "weight-delta" && $0.check["name"] as? String == "relative-delta" }
        #expect(deltaSuites.map(\.checkpoint) == [100, 200, 300, 400].map(Self.name))
    }

    @Test func onceEvaluatesWhatIsThereAndExits() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let suite = try Self.writeSuite(in: folder)
        let watched = folder.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: watched, withIntermediateDirectories: true)
        // Written out of step order; evaluated in step order.
        for step in [20, 10] {
            try EvalFixtures.adapterBytes(seed: UInt64(step), folder: watched).write(to: watched.appendingPathComponent(Self.name(step) + ".safetensors"))
        }
        let result = try CLIRunner.run(["watch", "--suite", suite.path, "--dir", watched.path, "--once"])
        #expect(result.status == 0, "stdout: \(result.standardOutput)\nstderr: \(result.standardError)")
        #expect(Self.evaluatedNames(result.standardOutput) == [Self.name(10), Self.name(20)], "\(result.standardOutput)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report/junit.xml").path))
    }

    @Test func onceReportsAnUnreadableCheckpointInsteadOfSkippingIt() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let suite = try Self.writeSuite(in: folder)
        let watched = folder.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: watched, withIntermediateDirectories: true)
        let good = try EvalFixtures.adapterBytes(seed: 1, folder: watched)
        try good.write(to: watched.appendingPathComponent(Self.name(10) + ".safetensors"))
        try good.prefix(good.count / 2).write(to: watched.appendingPathComponent(Self.name(20) + ".safetensors"))
        try good.write(to: watched.appendingPathComponent(Self.name(30) + ".safetensors"))
        let result = try CLIRunner.run(["watch", "--suite", suite.path, "--dir", watched.path, "--once"])
        #expect(result.status == 1, "stdout: \(result.standardOutput)\nstderr: \(result.standardError)")
        #expect(result.standardOutput.contains("\(Self.name(20)).safetensors: cannot evaluate"), "\(result.standardOutput)")
        #expect(Self.evaluatedNames(result.standardOutput) == [Self.name(10), Self.name(30)], "\(result.standardOutput)")
    }
}

/// A `tunecheck` subprocess running while the test acts; output goes to files so it can never block on a pipe.
final class BackgroundProcess: @unchecked Sendable {
    let process = Process()
    let outputFile: URL
    let errorFile: URL

    init(_ arguments: [String]) throws {
        let stem = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-bg-\(UUID().uuidString.prefix(8))")
        outputFile = stem.appendingPathExtension("out")
        errorFile = stem.appendingPathExtension("err")
        FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        process.executableURL = CLIRunner.binary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        process.standardError = try FileHandle(forWritingTo: errorFile)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    func wait(timeoutSeconds: Double) throws -> CLIRunner.Result {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        if process.isRunning {
            terminate()
            throw FixtureError("tunecheck \(process.arguments ?? []) did not exit within \(timeoutSeconds) s")
        }
        defer {
            try? FileManager.default.removeItem(at: outputFile)
            try? FileManager.default.removeItem(at: errorFile)
        }
        return CLIRunner.Result(status: process.terminationStatus,
                                standardOutput: (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "",
                                standardError: (try? String(contentsOf: errorFile, encoding: .utf8)) ?? "")
    }

    /// Ends this process (only this one, by its id) if it is still running.
    func terminate() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
