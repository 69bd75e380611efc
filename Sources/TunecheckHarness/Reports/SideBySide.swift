import Foundation

/// Base and checkpoint answers side by side (`tunecheck compare`), in the terminal or as Markdown (for a pull
/// request comment); the HTML form is the report's own side-by-side view.
public enum SideBySide {
    public static func pairs(_ report: EvaluationReport) -> [(prompt: String, base: AnswerRecord?, checkpoint: AnswerRecord?)] {
        let baseAnswers = report.answers.filter { $0.checkpoint == "base" }
        let other = report.answers.filter { $0.checkpoint != "base" }
        var ids: [String] = []
        for answer in baseAnswers + other where !ids.contains(answer.promptId) { ids.append(answer.promptId) }
        return ids.map { id in
            let left = baseAnswers.first { $0.promptId == id }
            let right = other.first { $0.promptId == id }
            return ((left ?? right)?.prompt ?? id, left, right)
        }
    }

    /// Model output as it can be shown in a terminal or a Markdown cell: control characters (a random or broken
    /// model emits BEL, ESC, backspace...) would ring, recolour or misalign the columns, so they are shown escaped
    /// as `\u{7}` (`ControlCharacters`, as in every report). Line feeds stay; a tab or carriage return becomes a space.
    static func visible(_ text: String) -> String { ControlCharacters.escape(text, whitespace: .keepLineFeeds) }

    public static func terminal(_ report: EvaluationReport, width terminalWidth: Int) -> String {
        let width = max(terminalWidth, 60)
        let column = (width - 3) / 2
        func wrap(_ text: String) -> [String] {
            var lines: [String] = []
            for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
                var line = ""
                for word in paragraph.split(separator: " ", omittingEmptySubsequences: false) {
                    if line.count + word.count + 1 > column && !line.isEmpty {
                        lines.append(line)
                        line = ""
                    }
                    line += (line.isEmpty ? "" : " ") + word
                    while line.count > column {
                        lines.append(String(line.prefix(column)))
                        line = String(line.dropFirst(column))
                    }
                }
                lines.append(line)
            }
            return lines
        }
        func pad(_ text: String) -> String { text + String(repeating: " ", count: max(0, column - text.count)) }
        let checkpointName = report.answers.first { $0.checkpoint != "base" }?.checkpoint ?? "checkpoint"
        var out = [pad("base") + " │ " + checkpointName, String(repeating: "─", count: column) + "─┼─" + String(repeating: "─", count: column)]
        for (prompt, left, right) in pairs(report) {
            out.append("▶ " + visible(prompt).replacingOccurrences(of: "\n", with: " ⏎ "))
            let leftLines = wrap(visible(left?.text ?? "") + label(left, terminal: true))
            let rightLines = wrap(visible(right?.text ?? "") + label(right, terminal: true))
            for index in 0..<max(leftLines.count, rightLines.count) {
                out.append(pad(index < leftLines.count ? leftLines[index] : "") + " │ " + (index < rightLines.count ? rightLines[index] : ""))
            }
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    public static func markdown(_ report: EvaluationReport) -> String {
        func cell(_ text: String) -> String {
            visible(text).replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: "<br>")
        }
        let checkpointName = report.answers.first { $0.checkpoint != "base" }?.checkpoint ?? "checkpoint"
        var out = ["| prompt | base | \(cell(checkpointName)) |", "|---|---|---|"]
        for (prompt, left, right) in pairs(report) {
            out.append("| \(cell(prompt)) | \(cell(left?.text ?? ""))\(label(left, terminal: false)) | \(cell(right?.text ?? ""))\(label(right, terminal: false)) |")
        }
        return out.joined(separator: "\n")
    }

    /// What an answer is marked with: an empty answer (the model ended at once, or there is none) is shown as
    /// empty, not as repetitive; a mildly repetitive answer (a warning in `eval`) as mild; another flagged
    /// non-empty answer as repetitive.
    static func label(_ answer: AnswerRecord?, terminal: Bool) -> String {
        guard let answer else { return "" }
        if answer.text.isEmpty { return terminal ? "[EMPTY: the model ended at once]" : "*(empty: the model ended at once)*" }
        if answer.severity == .mild { return terminal ? "  [MILD REPETITION]" : " ⚠️ mild repetition" }
        if answer.flagged { return terminal ? "  [REPETITIVE]" : " ⚠️ repetitive" }
        return ""
    }
}
