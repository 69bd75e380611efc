import Foundation
import TunecheckEngine
import TunecheckJSON

/// The run table as text: terminal, Markdown (a PR comment) and JSON. Rows in the order the runs were given.
public enum RunTable {
    static let headers = ["run", "trainer", "method", "lr", "β", "loss type", "LoRA", "steps", "ckpts", "loss first→last (min)",
                          "max margin @step", "margin > thr @step", "guard", "first failing", "best", "verdict"]

    /// The cells of one row, as shown in the terminal and Markdown tables.
    static func cells(_ summary: RunSummary) -> [String] {
        let run = summary.run
        let dash = "–"
        func value(_ number: Double?) -> String { number.map(RunFormat.number) ?? dash }
        var lora = dash
        if let rank = run.loraRank {
            lora = "r\(rank)"
            if let alpha = run.loraAlpha { lora += " α\(RunFormat.number(alpha))" } else if let scale = run.loraScale { lora += " ×\(RunFormat.number(scale))" }
        }
        let rate = run.learningRate.map { RunFormat.rate($0) + (run.learningRateIsPeak ? " (peak)" : "") } ?? dash
        let loss = summary.lossFirst == nil ? dash : "\(value(summary.lossFirst))→\(value(summary.lossLast)) (\(value(summary.lossMin)))"
        let margin = summary.maxMargin.map { "\(RunFormat.number($0)) @\(summary.maxMarginStep!)" } ?? dash
        let firstFailing = summary.firstFailingCheckpoint.map { name in
            summary.failingSuites.isEmpty ? name : "\(name) (\(summary.failingSuites.joined(separator: ", ")))"
        } ?? (summary.evaluationSource == .none ? dash : "none")
        let guardText = run.stop.map { "\($0.name) @\($0.step)" } ?? (run.trainer == .tunecheck ? "none" : dash)
        return [run.path, run.trainer.rawValue, run.method, rate, value(run.beta), run.lossType ?? dash, lora,
                run.steps.map(String.init) ?? dash, String(run.checkpoints.count), loss, margin,
                summary.marginExplosionStep.map { "@\($0)" } ?? (summary.maxMargin == nil ? dash : "no"),
                guardText, firstFailing, summary.bestCheckpoint ?? dash, summary.verdict.rawValue.uppercased()]
    }

    // MARK: Terminal

    /// One row per run when that fits `width` columns; otherwise transposed (a row per field, a column per run, cells
    /// cut with `…`), which fits a few runs in an ordinary terminal. Then each run's verdict and reason.
    public static func terminal(_ summaries: [RunSummary], settings: RunHistorySettings, width: Int = 100, colored: Bool = false) -> String {
        let rows = summaries.map { cells($0).map { ControlCharacters.escape($0, whitespace: .spaces) } }
        var widths = headers.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        let wide = widths.reduce(0, +) + 2 * (widths.count - 1)
        func line(_ cells: [String], _ widths: [Int]) -> String {
            var text = zip(cells, widths).map { cell, width in
                let cut = ReportSupport.truncate(cell, to: width)
                return cut + String(repeating: " ", count: max(width - cut.count, 0))
            }.joined(separator: "  ")
            while text.hasSuffix(" ") { text.removeLast() }
            return text
        }
        func paint(_ text: String, _ verdict: RunSummary.Verdict) -> String {
            guard colored else { return text }
            let color = verdict == .pass ? "32" : verdict == .fail ? "31" : "33"
            return "\u{1B}[\(color)m\(text)\u{1B}[0m"
        }
        var lines: [String] = []
        if wide <= width || summaries.isEmpty {
            lines.append(line(headers, widths))
            lines.append(widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
            for (summary, row) in zip(summaries, rows) {
                var text = line(row, widths)
                let word = summary.verdict.rawValue.uppercased()
                if let range = text.range(of: word, options: .backwards) { text.replaceSubrange(range, with: paint(word, summary.verdict)) }
                lines.append(text)
            }
        } else {
            // Transposed: the field names, then one column per run, as wide as the terminal allows.
            let labelWidth = headers.dropFirst().map(\.count).max()!
            let room = max((width - labelWidth - 2 * summaries.count) / summaries.count, 8)
            let runWidths = rows.map { row in min(row.map(\.count).max()!, room) }
            // Paths keep their end (the run's own folder name): `…out/demo-too-hot`.
            let names = zip(rows, runWidths).map { row, width in row[0].count > width ? "…" + String(row[0].suffix(width - 1)) : row[0] }
            lines.append(line([""] + names, [labelWidth] + runWidths))
            lines.append(([labelWidth] + runWidths).map { String(repeating: "─", count: $0) }.joined(separator: "  "))
            for field in 1..<headers.count {
                var text = line([headers[field]] + rows.map { $0[field] }, [labelWidth] + runWidths)
                if field == headers.count - 1 {
                    text = String(repeating: " ", count: labelWidth) + "  " + zip(summaries, runWidths).map { summary, width in
                        let word = summary.verdict.rawValue.uppercased()
                        return paint(word, summary.verdict) + String(repeating: " ", count: max(width - word.count, 0))
                    }.joined(separator: "  ")
                    text = headers[field] + String(text.dropFirst(headers[field].count))
                    while text.hasSuffix(" ") { text.removeLast() }
                }
                lines.append(text)
            }
        }
        lines.append("")
        for summary in summaries {
            lines.append("\(ControlCharacters.escape(summary.run.path, whitespace: .spaces)): \(summary.verdict.rawValue): "
                         + ControlCharacters.escape(summary.reason, whitespace: .spaces))
        }
        lines.append("margin threshold \(RunFormat.number(settings.marginThreshold)) (\(settings.marginThresholdSource))"
                     + (settings.suite.map { "; checkpoints evaluated with \($0)" } ?? "; checkpoint verdicts as the runs recorded them"))
        return lines.joined(separator: "\n")
    }

    // MARK: Markdown

    public static func markdown(_ summaries: [RunSummary], settings: RunHistorySettings) -> String {
        func cell(_ text: String) -> String {
            ControlCharacters.escape(text, whitespace: .spaces).replacingOccurrences(of: "|", with: "\\|")
        }
        var lines = ["| " + headers.joined(separator: " | ") + " |", "|" + String(repeating: "---|", count: headers.count)]
        for summary in summaries {
            var row = cells(summary).map(cell)
            row[0] = "`\(row[0])`"
            row[row.count - 1] = "**\(row[row.count - 1])**"
            lines.append("| " + row.joined(separator: " | ") + " |")
        }
        lines.append("")
        for summary in summaries { lines.append("- `\(cell(summary.run.path))`: **\(summary.verdict.rawValue)**: \(cell(summary.reason))") }
        lines.append("")
        lines.append("Margin threshold \(RunFormat.number(settings.marginThreshold)) (\(settings.marginThresholdSource))"
                     + (settings.suite.map { "; checkpoints evaluated with `\(cell($0))`." } ?? "; checkpoint verdicts as the runs recorded them."))
        return lines.joined(separator: "\n")
    }

    // MARK: JSON

    public static func jsonValue(_ summaries: [RunSummary], settings: RunHistorySettings) -> JSONValue {
        func optional(_ value: Double?) -> JSONValue { value.flatMap { $0.isFinite ? JSONValue.from($0) : nil } ?? .null }
        func optional(_ value: Int?) -> JSONValue { value.map { JSONValue.from($0) } ?? .null }
        func optional(_ value: String?) -> JSONValue { value.map { JSONValue.string($0) } ?? .null }
        var root = JSONObject()
        root.set("runs", .array(summaries.map { summary in
            let run = summary.run
            var object = JSONObject()
            object.set("path", .string(run.path))
            object.set("trainer", .string(run.trainer.rawValue))
            object.set("status", optional(run.status))
            object.set("method", .string(run.method))
            object.set("learning_rate", optional(run.learningRate))
            object.set("learning_rate_source", run.learningRate == nil ? .null : .string(run.learningRateIsPeak ? "peak_logged" : "configured"))
            object.set("beta", optional(run.beta))
            object.set("loss_type", optional(run.lossType))
            if run.loraRank != nil || run.loraAlpha != nil || run.loraScale != nil || run.loraTargets != nil {
                var lora = JSONObject()
                lora.set("rank", optional(run.loraRank))
                if run.loraAlpha != nil { lora.set("alpha", optional(run.loraAlpha)) } else { lora.set("scale", optional(run.loraScale)) }
                lora.set("targets", run.loraTargets.map { .array($0.map { .string($0) }) } ?? .null)
                object.set("lora", .object(lora))
            } else {
                object.set("lora", .null)
            }
            object.set("steps", optional(run.steps))
            object.set("checkpoints", .from(run.checkpoints.count))
            object.set("loss_first", optional(summary.lossFirst))
            object.set("loss_last", optional(summary.lossLast))
            object.set("loss_min", optional(summary.lossMin))
            object.set("max_margin", optional(summary.maxMargin))
            object.set("max_margin_step", optional(summary.maxMarginStep))
            object.set("margin_explosion_step", optional(summary.marginExplosionStep))
            object.set("guard", optional(run.stop?.name))
            if let stop = run.stop {
                object.set("stop", .object(JSONObject([
                    "guard": .string(stop.name), "step": .from(stop.step), "checkpoint": optional(stop.checkpoint),
                    "value": optional(stop.value), "threshold": optional(stop.threshold), "reason": .string(stop.reason),
                ])))
            } else {
                object.set("stop", .null)
            }
            object.set("evaluated_by", .string(summary.evaluationSource.rawValue))
            object.set("first_failing_checkpoint", optional(summary.firstFailingCheckpoint))
            object.set("failing_suites", summary.firstFailingCheckpoint == nil ? .null : .array(summary.failingSuites.map { .string($0) }))
            object.set("best_checkpoint", optional(summary.bestCheckpoint))
            object.set("checkpoint_evaluations", .array(summary.evaluations.map { evaluation in
                .object(JSONObject(["name": .string(evaluation.name), "step": optional(evaluation.step), "passed": .bool(evaluation.passed),
                                    "failing_suites": .array(evaluation.failingSuites.map { .string($0) })]))
            }))
            object.set("verdict", .string(summary.verdict.rawValue))
            object.set("reason", .string(summary.reason))
            object.set("notices", .array(run.notices.map { .string($0) }))
            return .object(object)
        }))
        var settingsObject = JSONObject()
        settingsObject.set("margin_threshold", .from(settings.marginThreshold))
        settingsObject.set("margin_threshold_source", .string(settings.marginThresholdSource))
        settingsObject.set("suite", optional(settings.suite))
        settingsObject.set("tunecheck_version", .string(TunecheckVersion.current))
        root.set("settings", .object(settingsObject))
        return .object(root)
    }
}
