import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Side-by-side greedy answers of the base and a checkpoint.",
        discussion: """
        Generates greedy answers to each prompt with the base and with the checkpoint and shows them side by side, \
        with repetition flagged: in the terminal (default), as Markdown, or as an HTML page.

        Examples:
          tunecheck compare --base models/tiny-default --checkpoint run/adapters/adapters.safetensors \\
              --prompts evalsets/default/prompts.jsonl
          tunecheck compare --base models/tiny-default --checkpoint run/adapters --format html --output compare.html
        """
    )

    @Option(name: .long, help: ArgumentHelp("Base model folder.", valueName: "dir"))
    var base: String

    @Option(name: .long, help: ArgumentHelp("Checkpoint: adapter folder or file, or a model folder.", valueName: "path"))
    var checkpoint: String

    @Option(name: .long, help: ArgumentHelp("Prompts (JSONL {\"id\", \"prompt\"}).", valueName: "file"))
    var prompts: String = "evalsets/default/prompts.jsonl"

    @Option(name: .long, help: "Most new tokens per answer.")
    var maxTokens = 64

    @Option(name: .long, help: "How the answers are shown.")
    var format = CompareFormat.terminal

    @Option(name: .long, help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    func validate() throws {
        if let output { try validateOutputPath(output) }
    }

    func run() throws {
        var options = EvaluationOptions()
        options.base = URL(fileURLWithPath: base)
        options.checkpoints = [try CheckpointSpec.from(path: checkpoint)]
        options.evalsets.prompts = prompts
        options.suites = [.repetition]
        options.generation.maxTokens = maxTokens
        let evaluator = Evaluator(options: options)
        try evaluator.prepare()
        try evaluator.evaluate(options.checkpoints[0])
        let report = evaluator.makeReport()
        let text: String
        switch format {
        case .html: text = HTMLReport.render(report)
        case .markdown: text = Self.markdown(report)
        case .terminal: text = Self.terminal(report)
        }
        if let output {
            try AtomicWrite.write(Data(text.utf8), to: URL(fileURLWithPath: output))
            print("wrote \(output)")
        } else {
            print(text)
        }
    }

    static func pairs(_ report: EvaluationReport) -> [(prompt: String, base: AnswerRecord?, checkpoint: AnswerRecord?)] {
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
    /// as `\u{7}`, as the HTML report does. Newlines stay; a tab becomes a space.
    static func visible(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar == "\n" {
                result.unicodeScalars.append(scalar)
            } else if scalar == "\t" {
                result += " "
            } else if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static func terminal(_ report: EvaluationReport) -> String {
        let width = max(terminalWidth(), 60)
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
            let leftLines = wrap(visible(left?.text ?? "") + (left?.flagged == true ? "  [REPETITIVE]" : ""))
            let rightLines = wrap(visible(right?.text ?? "") + (right?.flagged == true ? "  [REPETITIVE]" : ""))
            for index in 0..<max(leftLines.count, rightLines.count) {
                out.append(pad(index < leftLines.count ? leftLines[index] : "") + " │ " + (index < rightLines.count ? rightLines[index] : ""))
            }
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    static func markdown(_ report: EvaluationReport) -> String {
        func cell(_ text: String) -> String {
            visible(text).replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: "<br>")
        }
        let checkpointName = report.answers.first { $0.checkpoint != "base" }?.checkpoint ?? "checkpoint"
        var out = ["| prompt | base | \(cell(checkpointName)) |", "|---|---|---|"]
        for (prompt, left, right) in pairs(report) {
            let flag: (AnswerRecord?) -> String = { $0?.flagged == true ? " ⚠️ repetitive" : "" }
            out.append("| \(cell(prompt)) | \(cell(left?.text ?? ""))\(flag(left)) | \(cell(right?.text ?? ""))\(flag(right)) |")
        }
        return out.joined(separator: "\n")
    }
}
