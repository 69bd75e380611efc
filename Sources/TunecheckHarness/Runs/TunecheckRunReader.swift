import Foundation
import TunecheckEngine
import TunecheckJSON

/// tunecheck's own trainer: `run.json` (settings, checkpoint records, the guard that stopped the run),
/// `metrics.jsonl` (one line per step), numbered checkpoints and `eval/report.json` (the per-checkpoint suites).
public enum TunecheckRunReader: RunReader {
    public static let trainer = TrainingRun.Trainer.tunecheck
    public static let signature = "run.json (tunecheck train)"

    public static func recognises(_ folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent("run.json").path)
    }

    public static func read(_ folder: URL, path: String, logFile: URL?) throws -> TrainingRun {
        let recordURL = folder.appendingPathComponent("run.json")
        let record = try RunReaders.object(at: recordURL)
        var run = TrainingRun(path: path, folder: folder, trainer: trainer)
        run.method = record.text("method") ?? "unknown"
        run.learningRate = record.number("learning_rate")
        run.beta = record.number("beta")
        run.lossType = record.text("loss_type")
        if let lora = record["lora"]?.object {
            run.loraRank = lora["rank"]?.int
            run.loraScale = lora.number("scale")
            run.loraTargets = lora["keys"]?.array?.compactMap(\.string)
        }
        run.steps = record["steps"]?.int
        // `status`, `stop_request` and `failure` are newer keys of run.json v1; older records lack them.
        run.status = record.text("status")
        if run.status == "running" { run.endNotes.append("still running (run.json status running)") }
        if let request = record.text("stop_request") { run.endNotes.append("stopped by the training callback: \(request)") }
        if let failure = record.text("failure") { run.endNotes.append("the run failed: \(failure)") }
        run.base = record.text("base")
        run.bestCheckpoint = record.text("best_checkpoint")
        run.bestMetric = record.text("best_metric").flatMap { try? MetricGoal(parsing: $0) }
        if let stop = record["stop"]?.object {
            run.stop = TrainingRun.GuardStop(name: stop.text("guard") ?? "unknown", step: stop["step"]?.int ?? 0,
                                             checkpoint: stop.text("checkpoint"), value: stop.number("value"),
                                             threshold: stop.number("threshold"), reason: stop.text("reason") ?? "")
        }
        // The suites that failed per checkpoint are in eval/report.json (run.json keeps only passed and metrics).
        let report = try EvalReportReader.read(folder.appendingPathComponent("eval/report.json"))
        run.recordedSettings = report?.settings
        for entry in record["checkpoint_records"]?.array ?? [] {
            guard let entry = entry.object, let name = entry.text("name"), let passed = entry["passed"]?.bool else { continue }
            var metrics: [MetricName: Double] = [:]
            for (key, value) in zip(entry["metrics"]?.object?.keys ?? [], entry["metrics"]?.object?.values ?? []) {
                if let number = value.double { metrics[MetricName(key)] = number }
            }
            let failing = report?.evaluations.first { $0.name == name }?.failingSuites ?? []
            run.recorded.append(.init(name: name, step: entry["step"]?.int, passed: passed, failingSuites: failing, metrics: metrics))
        }
        run.history = try readMetrics(folder.appendingPathComponent("metrics.jsonl"))
        if run.steps == nil { run.steps = run.history.last?.step }
        run.findCheckpoints()
        return run
    }

    /// `metrics.jsonl`: one JSON object per line with `step` and that step's values.
    static func readMetrics(_ url: URL) throws -> [TrainingRun.Step] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text: String
        do { text = try BoundedFile.readText(url, limit: BoundedFile.Limit.jsonLines) } catch {
            throw RunError.invalidFile(path: url.path, reason: error.reason)
        }
        var steps: [TrainingRun.Step] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let object: JSONObject
            do {
                guard let parsed = try JSONParser.parse(Array(line.utf8)).object else {
                    throw RunError.invalidLine(path: url.path, line: index + 1, reason: "expected a JSON object")
                }
                object = parsed
            } catch let error as RunError { throw error } catch {
                throw RunError.invalidLine(path: url.path, line: index + 1, reason: "\(error)")
            }
            guard let step = object["step"]?.int else {
                throw RunError.invalidLine(path: url.path, line: index + 1, reason: "no integer \"step\"")
            }
            steps.append(TrainingRun.Step(step: step, loss: object.number(MetricName.loss.rawValue),
                                          learningRate: object.number(MetricName.learningRate.rawValue),
                                          gradNorm: object.number(MetricName.gradientNorm.rawValue),
                                          margin: object.number(MetricName.rewardsMargins.rawValue),
                                          accuracy: object.number(MetricName.rewardsAccuracies.rawValue)))
        }
        return steps
    }
}

/// A session's `report.json`, read back: its settings and each checkpoint's verdict, failing suites and metrics.
enum EvalReportReader {
    struct Contents {
        var settings: [String: String]
        var evaluations: [TrainingRun.RecordedEvaluation]
    }

    static func read(_ url: URL) throws -> Contents? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let root = try RunReaders.object(at: url)
        var settings: [String: String] = [:]
        if let object = root["settings"]?.object {
            for (key, value) in zip(object.keys, object.values) { settings[key] = value.string }
        }
        var evaluations: [TrainingRun.RecordedEvaluation] = []
        let suites = root["suites"]?.array?.compactMap(\.object) ?? []
        for checkpoint in root["checkpoints"]?.array?.compactMap(\.object) ?? [] {
            guard let name = checkpoint.text("name"), name != CheckpointSpec.base.name, let passed = checkpoint["passed"]?.bool else { continue }
            let own = suites.filter { $0.text("checkpoint") == name }
            var metrics: [MetricName: Double] = [:]
            for suite in own {
                for (key, value) in zip(suite["metrics"]?.object?.keys ?? [], suite["metrics"]?.object?.values ?? []) {
                    if metrics[MetricName(key)] == nil, let number = value.double { metrics[MetricName(key)] = number }
                }
            }
            let failing = own.filter { $0["passed"]?.bool == false }.compactMap { $0.text("kind") }
            evaluations.append(.init(name: name, step: checkpoint["step"]?.int, passed: passed, failingSuites: failing, metrics: metrics))
        }
        return Contents(settings: settings, evaluations: evaluations)
    }
}
