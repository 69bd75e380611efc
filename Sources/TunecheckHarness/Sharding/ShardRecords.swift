import Foundation
import TunecheckEngine
import TunecheckJSON

/// What a shard computed for one subject, and what `merge` serves back to the subject's context: per-item values
/// by computation and item id, per-subject values, and the results of suites run whole (`SuiteSharding.wholeSuite`;
/// `null` when the suite had nothing to judge on the subject).
final class SubjectRecord {
    var items: [String: [String: JSONValue]] = [:]
    var values: [String: JSONValue] = [:]
    var suites: [String: JSONValue] = [:]

    init() {}

    var isEmpty: Bool { items.isEmpty && values.isEmpty && suites.isEmpty }

    func record(_ computation: String, item: String, _ value: JSONValue) {
        items[computation, default: [:]][item] = value
    }

    func recordSuite(_ kind: SuiteKind, _ run: SuiteRun?) {
        suites[kind.rawValue] = run.map(ShardCodec.suiteRun) ?? .null
    }

    /// The recorded result of a suite run whole (nil: the suite had nothing to judge).
    func suiteRun(_ kind: SuiteKind, subject: String) throws -> SuiteRun? {
        guard let value = suites[kind.rawValue] else {
            throw ShardError.missingRecord(subject: subject, computation: "\(kind.rawValue) result", item: nil)
        }
        if value.isNull { return nil }
        guard let run = ShardCodec.suiteRun(value) else {
            throw ShardError.invalidRecord(subject: subject, computation: "\(kind.rawValue) result", item: nil)
        }
        return run
    }

    /// Adds another part's values (the parts own disjoint units, so nothing is overwritten).
    func merge(_ other: SubjectRecord) {
        for (computation, values) in other.items {
            items[computation, default: [:]].merge(values) { first, _ in first }
        }
        values.merge(other.values) { first, _ in first }
        suites.merge(other.suites) { first, _ in first }
    }

    /// `{"items": {computation: {id: value}}, "values": {…}, "suites": {…}}`, keys sorted (parts are reproducible).
    var json: JSONValue {
        func sorted(_ dictionary: [String: JSONValue]) -> JSONValue {
            var object = JSONObject()
            for key in dictionary.keys.sorted() { object.set(key, dictionary[key]!) }
            return .object(object)
        }
        var itemsObject = JSONObject()
        for key in items.keys.sorted() { itemsObject.set(key, sorted(items[key]!)) }
        return .object(JSONObject(["items": .object(itemsObject), "values": sorted(values), "suites": sorted(suites)]))
    }

    convenience init?(json: JSONValue) {
        guard let object = json.object, let items = object["items"]?.object, let values = object["values"]?.object,
              let suites = object["suites"]?.object else { return nil }
        self.init()
        for (computation, entries) in zip(items.keys, items.values) {
            guard let entries = entries.object else { return nil }
            self.items[computation] = Dictionary(zip(entries.keys, entries.values), uniquingKeysWith: { first, _ in first })
        }
        self.values = Dictionary(zip(values.keys, values.values), uniquingKeysWith: { first, _ in first })
        self.suites = Dictionary(zip(suites.keys, suites.values), uniquingKeysWith: { first, _ in first })
    }
}

// MARK: - Values as JSON, exactly

/// JSON forms of the values shards record. Doubles are written in Swift's shortest round-trip form, so a value read
/// back is bit-identical; non-finite ones as the strings `nan`, `inf`, `-inf`.
enum ShardCodec {
    static func number(_ value: Double) -> JSONValue {
        if value.isNaN { return .string("nan") }
        if value.isInfinite { return .string(value > 0 ? "inf" : "-inf") }
        return .from(value)
    }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .number(let number, _)?: return number
        case .string("nan")?: return .nan
        case .string("inf")?: return .infinity
        case .string("-inf")?: return -.infinity
        default: return nil
        }
    }

    static func numbers(_ values: [Double]) -> JSONValue { .array(values.map(number)) }

    static func numbers(_ value: JSONValue?) -> [Double]? {
        guard let array = value?.array else { return nil }
        let numbers = array.compactMap { number($0) }
        return numbers.count == array.count ? numbers : nil
    }

    static func integers(_ value: JSONValue?) -> [Int]? {
        guard let array = value?.array else { return nil }
        let numbers = array.compactMap(\.int)
        return numbers.count == array.count ? numbers : nil
    }

    static func optionalIntegers(_ value: JSONValue?) -> [Int]?? {
        guard let value else { return nil }
        if value.isNull { return .some(nil) }
        return integers(value).map { .some($0) }
    }

    static func strings(_ value: [String: String]) -> JSONValue {
        var object = JSONObject()
        for key in value.keys.sorted() { object.set(key, .string(value[key]!)) }
        return .object(object)
    }

    static func strings(_ value: JSONValue?) -> [String: String]? {
        guard let object = value?.object else { return nil }
        var result: [String: String] = [:]
        for (key, entry) in zip(object.keys, object.values) {
            guard let text = entry.string else { return nil }
            result[key] = text
        }
        return result
    }

    // MARK: Outputs and scores

    static func output(_ output: GoldenOutput) -> JSONValue {
        .object(JSONObject([
            "id": .string(output.id), "prompt": .string(output.prompt),
            "prompt_ids": output.promptIds.map { .from($0) } ?? .null, "ids": output.ids.map { .from($0) } ?? .null,
            "text": .string(output.text),
        ]))
    }

    static func output(_ value: JSONValue) -> GoldenOutput? {
        guard let object = value.object, let id = object["id"]?.string, let prompt = object["prompt"]?.string,
              let text = object["text"]?.string, let promptIds = optionalIntegers(object["prompt_ids"]),
              let ids = optionalIntegers(object["ids"]) else { return nil }
        return GoldenOutput(id: id, prompt: prompt, promptIds: promptIds, ids: ids, text: text)
    }

    // MARK: Suite results

    static func suiteRun(_ run: SuiteRun) -> JSONValue {
        .object(JSONObject([
            "result": suiteResult(run.result),
            "answers": run.answers.map { .array($0.map(answer)) } ?? .null,
            "golden": .array(run.golden.map(golden)),
        ]))
    }

    static func suiteRun(_ value: JSONValue) -> SuiteRun? {
        guard let object = value.object, let resultValue = object["result"], let result = suiteResult(resultValue),
              let goldenValues = object["golden"]?.array else { return nil }
        var answers: [AnswerRecord]?
        if let list = object["answers"], !list.isNull {
            guard let items = list.array else { return nil }
            let decoded = items.compactMap(answer)
            guard decoded.count == items.count else { return nil }
            answers = decoded
        }
        let comparisons = goldenValues.compactMap(golden)
        guard comparisons.count == goldenValues.count else { return nil }
        return SuiteRun(result: result, answers: answers, golden: comparisons)
    }

    static func metrics(_ metrics: [Metric]) -> JSONValue {
        .array(metrics.map { .array([.string($0.name), number($0.value)]) })
    }

    static func metrics(_ value: JSONValue?) -> [Metric]? {
        guard let array = value?.array else { return nil }
        var metrics: [Metric] = []
        for entry in array {
            guard let pair = entry.array, pair.count == 2, let name = pair[0].string, let number = number(pair[1]) else { return nil }
            metrics.append(Metric(name, number))
        }
        return metrics
    }

    static func suiteResult(_ result: SuiteResult) -> JSONValue {
        .object(JSONObject([
            "kind": .string(result.kind.rawValue), "checkpoint": .string(result.checkpoint),
            "checks": .array(result.checks.map(check)), "metrics": metrics(result.metrics),
            "started_at": number(result.startedAt.timeIntervalSince1970), "duration_seconds": number(result.durationSeconds),
        ]))
    }

    static func suiteResult(_ value: JSONValue) -> SuiteResult? {
        guard let object = value.object, let kind = object["kind"]?.string, let checkpoint = object["checkpoint"]?.string,
              let checkValues = object["checks"]?.array, let metrics = metrics(object["metrics"]),
              let started = number(object["started_at"]), let duration = number(object["duration_seconds"]) else { return nil }
        let checks = checkValues.compactMap(check)
        guard checks.count == checkValues.count else { return nil }
        return SuiteResult(kind: SuiteKind(declaring: kind), checkpoint: checkpoint, checks: checks, metrics: metrics,
                           startedAt: Date(timeIntervalSince1970: started), durationSeconds: duration)
    }

    static func check(_ check: CheckResult) -> JSONValue {
        var object = JSONObject()
        object.set("name", .string(check.name))
        switch check.status {
        case .passed:
            object.set("status", .string("passed"))
        case let .failed(message, detail):
            object.set("status", .string("failed"))
            object.set("message", .string(message))
            object.set("detail", .string(detail))
        case let .error(message, detail):
            object.set("status", .string("error"))
            object.set("message", .string(message))
            object.set("detail", .string(detail))
        case let .skipped(reason):
            object.set("status", .string("skipped"))
            object.set("reason", .string(reason))
        }
        object.set("duration_seconds", number(check.durationSeconds))
        object.set("metrics", metrics(check.metrics))
        if let warning = check.warning {
            object.set("warning", .object(JSONObject(["message": .string(warning.message), "detail": .string(warning.detail)])))
        }
        return .object(object)
    }

    static func check(_ value: JSONValue) -> CheckResult? {
        guard let object = value.object, let name = object["name"]?.string, let word = object["status"]?.string,
              let duration = number(object["duration_seconds"]), let metrics = metrics(object["metrics"]) else { return nil }
        let status: CheckStatus
        switch word {
        case "passed": status = .passed
        case "failed", "error":
            guard let message = object["message"]?.string, let detail = object["detail"]?.string else { return nil }
            status = word == "failed" ? .failed(message: message, detail: detail) : .error(message: message, detail: detail)
        case "skipped":
            guard let reason = object["reason"]?.string else { return nil }
            status = .skipped(reason: reason)
        default: return nil
        }
        var warning: CheckWarning?
        if let entry = object["warning"]?.object {
            guard let message = entry["message"]?.string, let detail = entry["detail"]?.string else { return nil }
            warning = CheckWarning(message: message, detail: detail)
        }
        return CheckResult(name: name, status: status, durationSeconds: duration, metrics: metrics, warning: warning)
    }

    static func answer(_ answer: AnswerRecord) -> JSONValue {
        .object(JSONObject([
            "checkpoint": .string(answer.checkpoint), "prompt_id": .string(answer.promptId), "prompt": .string(answer.prompt),
            "text": .string(answer.text), "ids": answer.ids.map { .from($0) } ?? .null,
            "highlights": .array(answer.highlights.map { .array([.from($0.start), .from($0.end), .string($0.label)]) }),
            "flagged": .bool(answer.flagged), "severity": answer.severity.map { .string($0.rawValue) } ?? .null,
        ]))
    }

    static func answer(_ value: JSONValue) -> AnswerRecord? {
        guard let object = value.object, let checkpoint = object["checkpoint"]?.string, let promptId = object["prompt_id"]?.string,
              let prompt = object["prompt"]?.string, let text = object["text"]?.string, let ids = optionalIntegers(object["ids"]),
              let highlightValues = object["highlights"]?.array, let flagged = object["flagged"]?.bool, let severityValue = object["severity"]
        else { return nil }
        var highlights: [HighlightSpan] = []
        for entry in highlightValues {
            guard let parts = entry.array, parts.count == 3, let start = parts[0].int, let end = parts[1].int,
                  let label = parts[2].string else { return nil }
            highlights.append(HighlightSpan(start: start, end: end, label: label))
        }
        var severity: RepetitionSeverity?
        if !severityValue.isNull {
            guard let word = severityValue.string, let parsed = RepetitionSeverity(rawValue: word) else { return nil }
            severity = parsed
        }
        return AnswerRecord(checkpoint: checkpoint, promptId: promptId, prompt: prompt, text: text, ids: ids, highlights: highlights,
                            flagged: flagged, severity: severity)
    }

    static func golden(_ comparison: GoldenComparison) -> JSONValue {
        .object(JSONObject([
            "checkpoint": .string(comparison.checkpoint), "prompt_id": .string(comparison.promptId),
            "expected": .string(comparison.expectedText), "actual": .string(comparison.actualText),
            "similarity": number(comparison.similarity), "matched": .bool(comparison.matched),
        ]))
    }

    static func golden(_ value: JSONValue) -> GoldenComparison? {
        guard let object = value.object, let checkpoint = object["checkpoint"]?.string, let promptId = object["prompt_id"]?.string,
              let expected = object["expected"]?.string, let actual = object["actual"]?.string,
              let similarity = number(object["similarity"]), let matched = object["matched"]?.bool else { return nil }
        return GoldenComparison(checkpoint: checkpoint, promptId: promptId, expectedText: expected, actualText: actual,
                                similarity: similarity, matched: matched)
    }
}

// MARK: - The context's computations

extension ItemCodec where Value == GoldenOutput {
    static var output: Self { Self(encode: ShardCodec.output, decode: ShardCodec.output) }
}

extension ItemCodec where Value == [GoldenOutput] {
    static var outputs: Self {
        Self(encode: { .array($0.map(ShardCodec.output)) }, decode: { value in
            guard let items = value.array else { return nil }
            let outputs = items.compactMap(ShardCodec.output)
            return outputs.count == items.count ? outputs : nil
        })
    }
}

extension ItemCodec where Value == PairScore {
    static var pairScore: Self {
        Self(encode: { score in
            .object(JSONObject(["id": .string(score.id), "chosen": ShardCodec.numbers(score.chosen.tokenLogprobs),
                                "rejected": ShardCodec.numbers(score.rejected.tokenLogprobs)]))
        }, decode: { value in
            guard let object = value.object, let id = object["id"]?.string, let chosen = ShardCodec.numbers(object["chosen"]),
                  let rejected = ShardCodec.numbers(object["rejected"]) else { return nil }
            return PairScore(id: id, chosen: SpanScore(tokenLogprobs: chosen), rejected: SpanScore(tokenLogprobs: rejected))
        })
    }
}

extension ItemCodec where Value == TextScore {
    static var textScore: Self {
        Self(encode: { score in
            .object(JSONObject(["id": .string(score.id), "ids": .from(score.ids), "logprobs": ShardCodec.numbers(score.logprobs)]))
        }, decode: { value in
            guard let object = value.object, let id = object["id"]?.string, let ids = ShardCodec.integers(object["ids"]),
                  let logprobs = ShardCodec.numbers(object["logprobs"]) else { return nil }
            return TextScore(id: id, ids: ids, logprobs: logprobs)
        })
    }
}

extension ItemCodec where Value == ChoiceScore {
    static var choiceScore: Self {
        Self(encode: { .object(JSONObject(["id": .string($0.id), "loglikelihoods": ShardCodec.numbers($0.loglikelihoods), "gold": .from($0.gold),
                                           "choice_lengths": .from($0.choiceLengths)])) },
             decode: { value in
                 guard let object = value.object, let id = object["id"]?.string, let values = ShardCodec.numbers(object["loglikelihoods"]),
                       let gold = object["gold"]?.int, let lengths = ShardCodec.integers(object["choice_lengths"]),
                       lengths.count == values.count else { return nil }
                 return ChoiceScore(id: id, loglikelihoods: values, gold: gold, choiceLengths: lengths)
             })
    }
}

extension ItemCodec where Value == RollingScore {
    static var rollingScore: Self {
        Self(encode: { .object(JSONObject(["id": .string($0.id), "loglikelihood": ShardCodec.numbers([$0.loglikelihood]), "words": .from($0.words),
                                           "bytes": .from($0.bytes)])) },
             decode: { value in
                 guard let object = value.object, let id = object["id"]?.string, let values = ShardCodec.numbers(object["loglikelihood"]),
                       values.count == 1, let words = object["words"]?.int, let bytes = object["bytes"]?.int else { return nil }
                 return RollingScore(id: id, loglikelihood: values[0], words: words, bytes: bytes)
             })
    }
}

extension ItemCodec where Value == TextDistribution {
    static var distribution: Self {
        Self(encode: { value in
            .object(JSONObject(["kl": ShardCodec.numbers(value.kl), "same_top": .array(value.sameTop.map { .bool($0) })]))
        }, decode: { value in
            guard let object = value.object, let kl = ShardCodec.numbers(object["kl"]), let flags = object["same_top"]?.array else { return nil }
            let sameTop = flags.compactMap(\.bool)
            guard sameTop.count == flags.count, sameTop.count == kl.count else { return nil }
            return TextDistribution(kl: kl, sameTop: sameTop)
        })
    }
}

extension ItemCodec where Value == GoldenFile? {
    static var goldenFile: Self {
        Self(encode: { file in
            guard let file else { return .object(JSONObject(["present": .bool(false)])) }
            return .object(JSONObject([
                "present": .bool(true), "suite": .string(file.suite), "checkpoint": .string(file.checkpoint),
                "settings": ShardCodec.strings(file.settings), "outputs": .array(file.outputs.map(ShardCodec.output)),
            ]))
        }, decode: { value in
            guard let object = value.object, let present = object["present"]?.bool else { return nil }
            guard present else { return .some(nil) }
            guard let suite = object["suite"]?.string, let checkpoint = object["checkpoint"]?.string,
                  let settings = ShardCodec.strings(object["settings"]), let items = object["outputs"]?.array else { return nil }
            let outputs = items.compactMap(ShardCodec.output)
            guard outputs.count == items.count else { return nil }
            return .some(GoldenFile(suite: suite, checkpoint: checkpoint, settings: settings, outputs: outputs))
        })
    }
}
