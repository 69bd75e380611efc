import Foundation
import TunecheckEngine
import TunecheckJSON

/// One stored greedy generation.
public struct GoldenOutput: Sendable, Equatable {
    public var id: String
    public var prompt: String
    public var promptIds: [Int]?
    /// New token ids (nil for answers supplied as text, with no tokenizer).
    public var ids: [Int]?
    public var text: String
}

/// A golden file: the outputs of one checkpoint in one suite, with the settings that produced them.
/// Stored as `<golden dir>/<suite name>/<checkpoint>.json`.
public struct GoldenFile: Sendable, Equatable {
    public var suite: String
    public var checkpoint: String
    public var settings: [String: String]
    public var outputs: [GoldenOutput]

    public static func url(directory: URL, suite: String, checkpoint: String) -> URL {
        let safe = checkpoint.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" }
        return directory.appendingPathComponent(suite).appendingPathComponent(String(safe) + ".json")
    }

    public static func load(_ url: URL) throws -> GoldenFile {
        let data: Data
        do { data = try BoundedFile.read(url, limit: BoundedFile.Limit.index) } catch {
            throw HarnessError.invalidGolden(path: url.path, reason: "cannot read: \(error.reason)")
        }
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch {
            throw HarnessError.invalidGolden(path: url.path, reason: "not valid JSON (\(error))")
        }
        guard let object = root.object, let suite = object["suite"]?.string, let checkpoint = object["checkpoint"]?.string,
              let outputs = object["outputs"]?.array else {
            throw HarnessError.invalidGolden(path: url.path, reason: "expected an object with \"suite\", \"checkpoint\" and \"outputs\"")
        }
        var settings: [String: String] = [:]
        if let settingsObject = object["settings"]?.object {
            for (key, value) in zip(settingsObject.keys, settingsObject.values) {
                settings[key] = value.string ?? JSONWriter.string(value)
            }
        }
        let parsed = try outputs.enumerated().map { index, value -> GoldenOutput in
            guard let entry = value.object, let id = entry["id"]?.string, let text = entry["text"]?.string else {
                throw HarnessError.invalidGolden(path: url.path, reason: "outputs[\(index)] needs \"id\" and \"text\" strings")
            }
            func ints(_ key: String) throws -> [Int]? {
                guard let list = entry[key], !list.isNull else { return nil }
                guard let array = list.array?.map({ $0.int }), !array.contains(where: { $0 == nil }) else {
                    throw HarnessError.invalidGolden(path: url.path, reason: "outputs[\(index)].\(key) must be an array of token ids")
                }
                return array.map { $0! }
            }
            return GoldenOutput(id: id, prompt: entry["prompt"]?.string ?? "", promptIds: try ints("prompt_ids"), ids: try ints("ids"), text: text)
        }
        return GoldenFile(suite: suite, checkpoint: checkpoint, settings: settings, outputs: parsed)
    }

    /// Written atomically, pretty enough to review in a diff (one output per line).
    public func write(to url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw HarnessError.writeFailed(path: url.path, reason: error.localizedDescription)
        }
        var settingsObject = JSONObject()
        for key in settings.keys.sorted() { settingsObject.set(key, .string(settings[key]!)) }
        var lines = ["{", "  \"suite\": \(JSONWriter.string(.string(suite))),", "  \"checkpoint\": \(JSONWriter.string(.string(checkpoint))),",
                     "  \"settings\": \(JSONWriter.string(.object(settingsObject))),", "  \"outputs\": ["]
        for (index, output) in outputs.enumerated() {
            var entry = JSONObject()
            entry.set("id", .string(output.id))
            entry.set("prompt", .string(output.prompt))
            if let promptIds = output.promptIds { entry.set("prompt_ids", .from(promptIds)) }
            if let ids = output.ids { entry.set("ids", .from(ids)) }
            entry.set("text", .string(output.text))
            lines.append("    " + JSONWriter.string(.object(entry)) + (index + 1 < outputs.count ? "," : ""))
        }
        lines += ["  ]", "}"]
        try AtomicWrite.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: url)
    }
}

/// Compares greedy generations with stored golden outputs: exact ids by default, or a token-level similarity.
public enum GoldenSuite: EvaluationSuite {
    public static let kind = SuiteKind.golden
    public static let shortName = "gold"
    public static let requirement = "prompts (or answers) and a model"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.prompts && inputs.model || inputs.answers }
    public static func applies(to subject: SubjectKind) -> Bool { subject != .fused }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding { .computations([.answers, .goldenFile]) }

    /// One policy for every driver: when the suites are not listed, golden runs only for subjects that have golden
    /// outputs (a run's numbered checkpoints have none; each gets a notice); a suite file that lists `golden` fails
    /// on a missing file until `--update-golden` writes it.
    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        let settings = context.settings
        // The golden file is read through the context (once per subject), so a sharded run records it with the
        // subject and `merge` compares against the same file.
        guard let answers = try context.answers() else { return nil }
        let stored = settings.updateGolden ? nil : try context.goldenFile()
        let url = GoldenFile.url(directory: settings.goldenDirectory, suite: settings.goldenSuiteName, checkpoint: context.name)
        if !context.session.suitesListed && !settings.updateGolden && stored == nil {
            context.notice("golden: no golden outputs for '\(context.name)' (\(url.path)); not checked (list golden in the suites to require them)")
            return nil
        }
        let (result, comparisons) = try run(suiteName: settings.goldenSuiteName, checkpoint: context.name, actual: answers.outputs,
                                            settings: answers.settingsRecord, directory: settings.goldenDirectory,
                                            update: settings.updateGolden, stored: stored, thresholds: context.thresholds.golden)
        return SuiteRun(result: result, golden: comparisons)
    }

    /// difflib-style ratio `2·M / (|a| + |b|)` with M the longest common subsequence length (1 for two empties).
    public static func similarity<T: Equatable>(_ a: [T], _ b: [T]) -> Double {
        if a.isEmpty && b.isEmpty { return 1 }
        var previous = [Int](repeating: 0, count: b.count + 1)
        var current = previous
        for x in a {
            for (j, y) in b.enumerated() {
                current[j + 1] = x == y ? previous[j] + 1 : max(previous[j + 1], current[j])
            }
            swap(&previous, &current)
        }
        return 2 * Double(previous[b.count]) / Double(a.count + b.count)
    }

    /// Word units for comparing texts when there are no token ids.
    static func words(_ text: String) -> [String] {
        text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
    }

    public static func run(suiteName: String, checkpoint: String, actual: [GoldenOutput], settings: [String: String],
                           directory: URL, update: Bool, thresholds: GoldenThresholds) throws -> (SuiteResult, [GoldenComparison]) {
        let url = GoldenFile.url(directory: directory, suite: suiteName, checkpoint: checkpoint)
        let stored = update || !FileManager.default.fileExists(atPath: url.path) ? nil : try GoldenFile.load(url)
        return try run(suiteName: suiteName, checkpoint: checkpoint, actual: actual, settings: settings, directory: directory,
                       update: update, stored: stored, thresholds: thresholds)
    }

    /// Compares `actual` with `stored` (the golden file's content, nil when there is none), or writes it (`update`).
    static func run(suiteName: String, checkpoint: String, actual: [GoldenOutput], settings: [String: String],
                    directory: URL, update: Bool, stored: GoldenFile?, thresholds: GoldenThresholds) throws -> (SuiteResult, [GoldenComparison]) {
        let started = Date()
        let url = GoldenFile.url(directory: directory, suite: suiteName, checkpoint: checkpoint)
        let current = GoldenFile(suite: suiteName, checkpoint: checkpoint, settings: settings, outputs: actual)
        func result(_ checks: [CheckResult], _ metrics: [Metric] = []) -> SuiteResult {
            SuiteResult(kind: .golden, checkpoint: checkpoint, checks: checks, metrics: metrics, startedAt: started, durationSeconds: Date().timeIntervalSince(started))
        }
        if update {
            try current.write(to: url)
            return (result([CheckResult(name: "golden-file", status: .passed, metrics: [Metric("updated", 1)])]), [])
        }
        guard let golden = stored else {
            return (result([CheckResult(name: "golden-file", status: .failed(
                message: "no golden outputs for '\(checkpoint)' at \(url.path); run with --update-golden to create them",
                detail: "expected \(url.path)"))]), [])
        }
        var checks: [CheckResult] = []
        var comparisons: [GoldenComparison] = []
        if golden.settings != settings {
            let differences = Set(golden.settings.keys).union(settings.keys).sorted().filter { golden.settings[$0] != settings[$0] }
                .map { "\($0): golden \(golden.settings[$0] ?? "-") vs now \(settings[$0] ?? "-")" }
            checks.append(CheckResult(name: "settings", status: .failed(
                message: "golden outputs were made with different generation settings (\(differences.joined(separator: "; ")))",
                detail: "regenerate them with --update-golden if the change is intended")))
        }
        let expectedById = Dictionary(golden.outputs.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var similarities: [Double] = []
        for output in actual {
            guard let expected = expectedById[output.id] else {
                checks.append(CheckResult(name: "prompt \(output.id)", status: .failed(
                    message: "prompt \(output.id) has no golden output; run with --update-golden to add it", detail: output.text)))
                continue
            }
            let similarity: Double
            let identical: Bool
            if let ids = output.ids, let expectedIds = expected.ids {
                similarity = Self.similarity(ids, expectedIds)
                identical = ids == expectedIds
            } else {
                similarity = Self.similarity(Self.words(output.text), Self.words(expected.text))
                identical = output.text == expected.text
            }
            similarities.append(similarity)
            let matched = thresholds.mode == .exact ? identical : similarity >= thresholds.minSimilarity
            comparisons.append(GoldenComparison(checkpoint: checkpoint, promptId: output.id, expectedText: expected.text,
                                                actualText: output.text, similarity: similarity, matched: matched))
            let status: CheckStatus = matched ? .passed : .failed(
                message: thresholds.mode == .exact
                    ? String(format: "output differs from golden (similarity %.3f)", similarity)
                    : String(format: "similarity %.3f below %.3f", similarity, thresholds.minSimilarity),
                detail: "golden: \(expected.text)\nnow:    \(output.text)")
            checks.append(CheckResult(name: "prompt \(output.id)", status: status, metrics: [Metric("similarity", similarity)]))
        }
        for missing in golden.outputs where !actual.contains(where: { $0.id == missing.id }) {
            checks.append(CheckResult(name: "prompt \(missing.id)", status: .skipped(reason: "in the golden file but not in the prompts evalset")))
        }
        return (result(checks, [Metric(.meanSimilarity, Statistics.mean(similarities))]), comparisons)
    }
}

extension SuiteKind {
    public static let golden = SuiteKind(declaring: "golden")
}
