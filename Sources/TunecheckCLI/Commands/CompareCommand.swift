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
        with repetition flagged and empty answers marked as such: in the terminal (default), as Markdown, or as an \
        HTML page. With --suite it uses the suite file's base, prompts and generation settings (max_tokens, \
        chat_template, ignore_eos), so the answers are exactly those `tunecheck eval` judged; flags override it.

        Examples:
          tunecheck compare --base models/tiny-default --checkpoint run/adapters/adapters.safetensors \\
              --prompts evalsets/default/prompts.jsonl
          tunecheck compare --base models/tiny-default --checkpoint run/adapters --format html --output compare.html
          tunecheck compare --suite evalsets/demo/suite.yaml --checkpoint tunecheck-out/demo-too-hot/0000005_adapters.safetensors
        """
    )

    @OptionGroup var inputs: EvaluationInputOptions

    @Option(name: .long, help: ArgumentHelp("Checkpoint: adapter folder or file, or a model folder.", valueName: "path"))
    var checkpoint: String

    @Option(name: .long, help: "How the answers are shown.")
    var format = CompareFormat.terminal

    @Option(name: .long, help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    func validate() throws {
        if let output { try validateOutputPath(output) }
    }

    func run() throws {
        var configuration = try inputs.configuration()
        if configuration.evalsets.prompts == nil { configuration.evalsets.prompts = "evalsets/default/prompts.jsonl" }
        guard configuration.base != nil else { throw ValidationError("give --base DIR (or a --suite file naming a base)") }
        configuration.checkpoints = [checkpoint]
        configuration.suites = [.repetition]
        var settings = try SessionSettings(configuration: configuration)
        settings.evalsets.pairs = nil
        settings.evalsets.texts = nil
        settings.evalsets.answers = nil
        settings.evalsets.choices = nil
        let session = EvaluationSession(settings: settings)
        try session.prepare()
        try session.evaluateAll()
        let report = session.makeReport()
        let text: String
        switch format {
        case .html: text = HTMLReport.render(report)
        case .markdown: text = SideBySide.markdown(report)
        case .terminal: text = SideBySide.terminal(report, width: terminalWidth())
        }
        if let output {
            try AtomicWrite.write(Data(text.utf8), to: URL(fileURLWithPath: output))
            print("wrote \(output)")
        } else {
            print(text)
        }
    }
}
