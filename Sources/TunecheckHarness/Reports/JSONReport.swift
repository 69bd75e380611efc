import Foundation
import TunecheckEngine
import TunecheckJSON

/// The machine-readable report (`report.json`): everything the evaluation produced, keys in a fixed order,
/// timestamps in ISO-8601 UTC, `null` for values that were not measured (and for non-finite numbers, which JSON
/// cannot hold). Consumers should check `schema_version` (currently 1) and ignore keys they do not know.
///
///     { "schema_version": 1, "tool": "tunecheck", "tunecheck_version", "title", "passed", "started_at", "duration_seconds",
///       "settings": { key: value, … },
///       "totals": { "checkpoints", "suites", "tests", "passed", "failures", "errors", "skipped", "warnings" },
///       "checkpoints": [ { "name", "step", "passed", "preference_accuracy", "mean_margin", "repetition_score",
///                          "relative_weight_delta", "training_loss", "choices_accuracy", "word_perplexity" } ],
///       "suites": [ { "name" (as in junit.xml), "kind", "checkpoint", "passed", "started_at", "duration_seconds", "tests",
///                     "failures", "errors", "skipped", "warnings", "metrics": { name: value },
///                     "checks": [ { "name", "status", "passed", "message"?, "detail"?, "reason"?,
///                                   "warning"?: { "message", "detail" }, "duration_seconds",
///                                   "metrics": { name: value } } ],
///                     "verdict_check"?, "items"?: [ { "id", "loglikelihoods", "pred", "pred_norm", "gold" } (choices)
///                                                 | { "id", "loglikelihood", "words", "bytes" } (perplexity) ] } ],
///       "answers": [ { "checkpoint", "prompt_id", "prompt", "text", "flagged", "severity", "highlights": [ { "start",
///                      "end", "label" } ], "ids"? } ],
///       "golden": [ { "checkpoint", "prompt_id", "matched", "similarity", "expected", "actual" } ] }
///
/// `status` is one of `passed`, `failed`, `skipped`, `error`; `passed` is false only for `failed` and `error`. A
/// passing check may carry a `warning` (a mildly repetitive answer); `warnings` counts them (they are also counted
/// as passed). An answer's `severity` is the repetition suite's verdict, `clean`, `mild` or `severe` (`null` when
/// that suite did not judge it); `flagged` is true for `mild` and `severe`.
/// Highlight offsets count Swift `Character`s (extended grapheme clusters) of `text`. Metric and setting names
/// are object keys; a repeated name keeps its last value.
public enum JSONReport {
    public static let schemaVersion = 1

    /// The report as a JSON value (for embedding or further processing).
    public static func value(_ report: EvaluationReport) -> JSONValue {
        var root = JSONObject()
        root.set("schema_version", .from(schemaVersion))
        root.set("tool", .string("tunecheck"))
        root.set("tunecheck_version", .string(TunecheckVersion.current))
        root.set("title", .string(report.title))
        root.set("passed", .bool(report.passed))
        root.set("started_at", .string(ReportSupport.iso8601(report.startedAt)))
        root.set("duration_seconds", .from(report.durationSeconds))

        var settings = JSONObject()
        for setting in report.settings { settings.set(setting.key, .string(setting.value)) }
        root.set("settings", .object(settings))

        let checks = report.suites.flatMap(\.checks)
        let failures = report.suites.map(\.failureCount).reduce(0, +)
        let errors = report.suites.map(\.errorCount).reduce(0, +)
        let skipped = report.suites.map(\.skippedCount).reduce(0, +)
        let warnings = report.suites.map(\.warningCount).reduce(0, +)
        root.set("totals", .object(JSONObject([
            "checkpoints": .from(SuiteGrid(report).checkpoints.count),
            "suites": .from(report.suites.count),
            "tests": .from(checks.count),
            "passed": .from(checks.count - failures - errors - skipped),
            "failures": .from(failures),
            "errors": .from(errors),
            "skipped": .from(skipped),
            "warnings": .from(warnings),
        ])))

        root.set("checkpoints", .array(report.checkpoints.map { checkpoint in
            .object(JSONObject([
                "name": .string(checkpoint.name),
                "step": checkpoint.step.map { .from($0) } ?? .null,
                "passed": .bool(checkpoint.passed),
                "preference_accuracy": optional(checkpoint.preferenceAccuracy),
                "mean_margin": optional(checkpoint.meanMargin),
                "repetition_score": optional(checkpoint.repetitionScore),
                "relative_weight_delta": optional(checkpoint.relativeWeightDelta),
                "training_loss": optional(checkpoint.trainingLoss),
                "choices_accuracy": optional(checkpoint.choicesAccuracy),
                "word_perplexity": optional(checkpoint.wordPerplexity),
            ]))
        }))

        root.set("suites", .array(zip(report.suites, JUnitReport.suiteNames(for: report)).map(suiteValue)))

        root.set("answers", .array(report.answers.map { answer in
            var object = JSONObject([
                "checkpoint": .string(answer.checkpoint),
                "prompt_id": .string(answer.promptId),
                "prompt": .string(answer.prompt),
                "text": .string(answer.text),
                "flagged": .bool(answer.flagged),
                "severity": answer.severity.map { .string($0.rawValue) } ?? .null,
                "highlights": .array(answer.highlights.map { span in
                    .object(JSONObject(["start": .from(span.start), "end": .from(span.end), "label": .string(span.label)]))
                }),
            ])
            if let ids = answer.ids { object.set("ids", .from(ids)) }
            return .object(object)
        }))

        root.set("golden", .array(report.golden.map { comparison in
            .object(JSONObject([
                "checkpoint": .string(comparison.checkpoint),
                "prompt_id": .string(comparison.promptId),
                "matched": .bool(comparison.matched),
                "similarity": .from(comparison.similarity),
                "expected": .string(comparison.expectedText),
                "actual": .string(comparison.actualText),
            ]))
        }))
        return .object(root)
    }

    /// The report as indented UTF-8 JSON with a final newline.
    public static func render(_ report: EvaluationReport) -> Data {
        var output = ""
        PrettyJSON.write(value(report), indent: 0, into: &output)
        output += "\n"
        return Data(output.utf8)
    }

    private static func suiteValue(_ suite: SuiteResult, name: String) -> JSONValue {
        var object = JSONObject([
            "name": .string(name),
            "kind": .string(suite.kind.rawValue),
            "checkpoint": .string(suite.checkpoint),
            "passed": .bool(suite.passed),
            "started_at": .string(ReportSupport.iso8601(suite.startedAt)),
            "duration_seconds": .from(suite.durationSeconds),
            "tests": .from(suite.checks.count),
            "failures": .from(suite.failureCount),
            "errors": .from(suite.errorCount),
            "skipped": .from(suite.skippedCount),
            "warnings": .from(suite.warningCount),
            "metrics": metrics(suite.metrics),
            "checks": .array(suite.checks.map(checkValue)),
        ])
        if let verdict = suite.verdictCheck { object.set("verdict_check", .string(verdict)) }
        if !suite.items.isEmpty { object.set("items", .array(suite.items.map(itemValue))) }
        return .object(object)
    }

    private static func itemValue(_ item: SuiteItem) -> JSONValue {
        switch item {
        case .choice(let outcome):
            return .object(JSONObject(["id": .string(outcome.id), "loglikelihoods": .array(outcome.loglikelihoods.map { .from($0) }),
                                       "pred": .from(outcome.pred), "pred_norm": .from(outcome.predNorm), "gold": .from(outcome.gold)]))
        case let .text(id, loglikelihood, words, bytes):
            return .object(JSONObject(["id": .string(id), "loglikelihood": .from(loglikelihood), "words": .from(words), "bytes": .from(bytes)]))
        }
    }

    private static func checkValue(_ check: CheckResult) -> JSONValue {
        var object = JSONObject()
        object.set("name", .string(check.name))
        object.set("status", .string(ReportSupport.statusWord(check.status)))
        object.set("passed", .bool(!check.status.isFailure))
        switch check.status {
        case .passed: break
        case let .failed(message, detail), let .error(message, detail):
            object.set("message", .string(message))
            object.set("detail", .string(detail))
        case let .skipped(reason):
            object.set("reason", .string(reason))
        }
        if let warning = check.passingWarning {
            object.set("warning", .object(JSONObject(["message": .string(warning.message), "detail": .string(warning.detail)])))
        }
        object.set("duration_seconds", .from(check.durationSeconds))
        object.set("metrics", metrics(check.metrics))
        return .object(object)
    }

    private static func metrics(_ metrics: [Metric]) -> JSONValue {
        var object = JSONObject()
        for metric in metrics { object.set(metric.name, .from(metric.value)) }
        return .object(object)
    }

    private static func optional(_ value: Double?) -> JSONValue { value.map { .from($0) } ?? .null }
}

/// Indented JSON on top of `JSONWriter` (which writes scalars and compact containers): objects and arrays of
/// containers get one member a line; arrays of scalars (token ids) stay on one line.
enum PrettyJSON {
    static func write(_ value: JSONValue, indent: Int, into output: inout String) {
        let pad = String(repeating: "  ", count: indent + 1)
        let closePad = String(repeating: "  ", count: indent)
        switch value {
        case .object(let object) where !object.keys.isEmpty:
            output += "{\n"
            for index in object.keys.indices {
                output += pad + JSONWriter.string(.string(object.keys[index])) + ": "
                write(object.values[index], indent: indent + 1, into: &output)
                output += index == object.keys.count - 1 ? "\n" : ",\n"
            }
            output += closePad + "}"
        case .array(let elements) where elements.contains(where: isContainer):
            output += "[\n"
            for (index, element) in elements.enumerated() {
                output += pad
                write(element, indent: indent + 1, into: &output)
                output += index == elements.count - 1 ? "\n" : ",\n"
            }
            output += closePad + "]"
        case .array(let elements):
            output += "[" + elements.map { JSONWriter.string($0) }.joined(separator: ", ") + "]"
        default:
            output += JSONWriter.string(value)
        }
    }

    private static func isContainer(_ value: JSONValue) -> Bool {
        switch value {
        case .object, .array: return true
        default: return false
        }
    }
}
