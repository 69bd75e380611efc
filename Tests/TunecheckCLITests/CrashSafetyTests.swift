import Foundation
import TunecheckTestSupport
import Testing
import TunecheckEngine
import TunecheckJSON
#if canImport(Glibc)
import Glibc
#endif

/// Kills `tunecheck fuse`, `tunecheck train` (saving every step) and `tunecheck eval --update-golden` with SIGKILL
/// at random moments and checks what is left: every file is the complete old or the complete new version, temporary
/// leftovers are dot-named (readers ignore them) and do not break the next run, and a training run resumes from the
/// last complete numbered checkpoint. 60 runs by default (about 10 s in a debug build); set
/// TUNECHECK_CRASH_RUNS=N for N kills per command.
@Suite(.serialized)
struct CrashSafetyTests {
    static let runsPerCommand = Int(ProcessInfo.processInfo.environment["TUNECHECK_CRASH_RUNS"] ?? "") ?? 20
    static let fixtures = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures")

    /// Starts the CLI, kills it with SIGKILL after `delay` seconds (unless it finished), and says whether it was killed.
    static func runAndKill(_ arguments: [String], after delay: Double) throws -> Bool {
        let process = Process()
        process.executableURL = CLIRunner.binary
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(delay)
        while process.isRunning && Date() < deadline { usleep(2_000) }
        let killed = process.isRunning
        if killed { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return killed && process.terminationReason == .uncaughtSignal
    }

    /// Seconds one complete run takes (the kill delays are drawn from 0 to this).
    static func timed(_ arguments: [String]) throws -> (seconds: Double, result: CLIRunner.Result) {
        let start = Date()
        let result = try CLIRunner.run(arguments)
        return (Date().timeIntervalSince(start), result)
    }

    /// Every regular file under `folder` (relative path → bytes), skipping dot-named entries at any level.
    static func snapshot(_ folder: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: folder.path) else { return [:] }
        while let path = enumerator.nextObject() as? String {
            if path.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            var isDirectory: ObjCBool = false
            let url = folder.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            files[path] = try Data(contentsOf: url)
        }
        return files
    }

    /// Names in `folder` that are not dot-named.
    static func visibleNames(_ folder: URL) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") })
    }

    // MARK: - fuse

    @Test func fuseKilledAtRandomLeavesOldOrNewFolder() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = Self.fixtures.appendingPathComponent("models/llama-rope-llama3-old-schema").path
        let adapters = Self.fixtures.appendingPathComponent("adapters/mlx-llama")
        let oldAdapter = adapters.appendingPathComponent("0000002_adapters.safetensors").path
        let newAdapter = adapters.appendingPathComponent("0000004_adapters.safetensors").path
        let output = folder.appendingPathComponent("fused")

        // The two versions, made by complete runs.
        let newReference = folder.appendingPathComponent("new-reference")
        let (seconds, newRun) = try Self.timed(["fuse", "--model", base, "--adapter", newAdapter, "--output", newReference.path])
        #expect(newRun.status == 0, "\(newRun.standardError)")
        let newFiles = try Self.snapshot(newReference)
        let oldRun = try CLIRunner.run(["fuse", "--model", base, "--adapter", oldAdapter, "--output", output.path])
        #expect(oldRun.status == 0, "\(oldRun.standardError)")
        let oldFiles = try Self.snapshot(output)
        #expect(oldFiles != newFiles && !oldFiles.isEmpty)

        var killed = 0, sawNew = false
        for run in 0..<Self.runsPerCommand {
            let delay = Double.random(in: 0...(seconds * 1.1))
            if try Self.runAndKill(["fuse", "--model", base, "--adapter", run % 2 == 0 ? newAdapter : oldAdapter,
                                    "--output", output.path, "--force"], after: delay) { killed += 1 }
            let present = try Self.snapshot(output)
            #expect(present == oldFiles || present == newFiles, "run \(run) (killed after \(delay) s): the folder is neither version")
            sawNew = sawNew || present == newFiles
            let visible = try Self.visibleNames(folder)
            #expect(visible == ["fused", "new-reference"], "run \(run): stray files \(visible)")
        }
        #expect(killed > 0, "no run was killed mid-way")
        // Leftover staging folders are dot-named and do not stop a later complete run.
        let final = try CLIRunner.run(["fuse", "--model", base, "--adapter", newAdapter, "--output", output.path, "--force"])
        #expect(final.status == 0, "\(final.standardError)")
        #expect(try Self.snapshot(output) == newFiles)
        let delta = try CLIRunner.run(["delta", "--base", base, "--model", output.path])
        #expect(delta.status == 0, "the fused folder loads: \(delta.standardError)")
        print("fuse: \(Self.runsPerCommand) runs, \(killed) killed mid-way, one full run \(String(format: "%.2f", seconds)) s, saw new: \(sawNew)")
    }

    // MARK: - train

    static func trainingConfig(_ folder: URL, iters: Int, resume: String? = nil) throws -> URL {
        let url = folder.appendingPathComponent(resume == nil ? "train.yaml" : "resume.yaml")
        var text = """
        model: \(CLIRunner.defaultModel.path)
        data: \(TestPaths.repositoryRoot.appendingPathComponent("evalsets/default/texts.jsonl").path)
        adapter_path: adapters
        iters: \(iters)
        save_every: 1
        batch_size: 1
        max_seq_length: 32
        learning_rate: 0.001
        lora_parameters: {rank: 2, scale: 2.0}

        """
        if let resume { text += "resume_adapter_file: \(resume)\n" }
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Checks every safetensors file of an adapters folder is complete: parses, every tensor reads, and numbered
    /// checkpoints carry their own step in the metadata. Returns the steps of the numbered checkpoints.
    static func checkAdapterFolder(_ adapters: URL, run: Int) throws -> [Int] {
        var steps: [Int] = []
        for name in try visibleNames(adapters) {
            let url = adapters.appendingPathComponent(name)
            if name.hasSuffix(".safetensors") {
                do {
                    let store = try WeightStore(files: [url])
                    for tensor in store.tensorNames { _ = try store.floatTensor(tensor) }
                    let step = try SafeTensorsFile(url: url).metadata?["step"].flatMap(Int.init)
                    #expect(step != nil, "run \(run): \(name) has no step")
                    if name != "adapters.safetensors" {
                        #expect(step == Int(name.prefix(7)), "run \(run): \(name) stores step \(String(describing: step))")
                        steps.append(Int(name.prefix(7))!)
                    }
                } catch {
                    Issue.record("run \(run): \(name) is not complete: \(error)")
                }
            } else if name.hasSuffix(".json") {
                #expect((try? JSONParser.parse([UInt8](Data(contentsOf: url)))) != nil, "run \(run): \(name) is not complete JSON")
            }
        }
        return steps.sorted()
    }

    @Test func trainingKilledAtRandomKeepsCompleteCheckpointsAndResumes() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let iters = 4
        let config = try Self.trainingConfig(folder, iters: iters)
        let adapters = folder.appendingPathComponent("adapters")
        let (seconds, full) = try Self.timed(["train", "--config", config.path])
        #expect(full.status == 0, "\(full.standardError)")
        #expect(try Self.checkAdapterFolder(adapters, run: -1) == Array(1...iters))

        var killed = 0
        var lastSteps: [Int] = []
        for run in 0..<Self.runsPerCommand {
            try? FileManager.default.removeItem(at: adapters)
            let delay = Double.random(in: 0...(seconds * 1.1))
            if try Self.runAndKill(["train", "--config", config.path], after: delay) { killed += 1 }
            guard FileManager.default.fileExists(atPath: adapters.path) else { continue }
            lastSteps = try Self.checkAdapterFolder(adapters, run: run)
            // Numbered checkpoints appear in order: 1...k with no gaps.
            #expect(lastSteps == Array(1..<(lastSteps.count + 1)), "run \(run): steps \(lastSteps)")
            if let last = lastSteps.last, last < iters {
                // Resume from the last complete numbered checkpoint: the next step is last + 1.
                let checkpoint = adapters.appendingPathComponent(String(format: "%07d_adapters.safetensors", last))
                let resumeConfig = try Self.trainingConfig(folder, iters: 1, resume: checkpoint.path)
                let resumed = try CLIRunner.run(["train", "--config", resumeConfig.path])
                #expect(resumed.status == 0, "run \(run): resume failed: \(resumed.standardError)")
                #expect((resumed.standardOutput + resumed.standardError).contains("at step \(last)"), "run \(run): \(resumed.standardOutput)")
                let after = try Self.checkAdapterFolder(adapters, run: run)
                #expect(after.contains(last + 1), "run \(run): resumed from \(last) but saved \(after)")
            }
        }
        #expect(killed > 0, "no run was killed mid-way")
        print("train: \(Self.runsPerCommand) runs, \(killed) killed mid-way, one full run \(String(format: "%.2f", seconds)) s")
    }

    // MARK: - eval --update-golden

    @Test func goldenUpdateKilledAtRandomLeavesOldOrNewFile() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let prompts = TestPaths.repositoryRoot.appendingPathComponent("evalsets/default/prompts.jsonl").path
        func arguments(_ golden: URL, maxTokens: Int) -> [String] {
            ["eval", "--base", CLIRunner.defaultModel.path, "--prompts", prompts, "--suites", "golden", "--golden-dir", golden.path,
             "--update-golden", "--max-tokens", "\(maxTokens)", "--report-dir", folder.appendingPathComponent("report").path]
        }
        let golden = folder.appendingPathComponent("golden")
        let newReference = folder.appendingPathComponent("golden-new")
        let (seconds, newRun) = try Self.timed(arguments(newReference, maxTokens: 6))
        #expect(newRun.status == 0, "\(newRun.standardError)")
        let newFiles = try Self.snapshot(newReference)
        let oldRun = try CLIRunner.run(arguments(golden, maxTokens: 3))
        #expect(oldRun.status == 0, "\(oldRun.standardError)")
        let oldFiles = try Self.snapshot(golden)
        #expect(oldFiles != newFiles && !oldFiles.isEmpty)

        var killed = 0
        for run in 0..<Self.runsPerCommand {
            let delay = Double.random(in: 0...(seconds * 1.1))
            if try Self.runAndKill(arguments(golden, maxTokens: run % 2 == 0 ? 6 : 3), after: delay) { killed += 1 }
            let present = try Self.snapshot(golden)
            #expect(present == oldFiles || present == newFiles, "run \(run) (killed after \(delay) s): golden files are neither version")
            // Reports written so far are complete too.
            let report = folder.appendingPathComponent("report/report.json")
            if let data = try? Data(contentsOf: report) {
                #expect((try? JSONParser.parse([UInt8](data))) != nil, "run \(run): report.json is torn")
            }
        }
        #expect(killed > 0, "no run was killed mid-way")
        // A complete run after the kills reads the golden file (dot-named temporary files are ignored).
        let check = try CLIRunner.run(Array(arguments(golden, maxTokens: 6).filter { $0 != "--update-golden" }))
        #expect(check.status == 0 || check.status == 1, "\(check.standardError)")
        print("golden: \(Self.runsPerCommand) runs, \(killed) killed mid-way, one full run \(String(format: "%.2f", seconds)) s")
    }
}
