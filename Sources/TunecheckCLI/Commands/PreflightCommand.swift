import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness
import TunecheckJSON

struct PreflightCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight",
        abstract: "Before DPO: how far apart are chosen and rejected answers under the base model?",
        discussion: """
        Scores every pair's chosen and rejected response under the base (prompt with special tokens, response \
        without, as TRL tokenizes) and reports the log-prob gap (chosen − rejected), summed and per token, its \
        distribution, the fraction of pairs the base already prefers, the length ratio, and a verdict with \
        reasons: a mean summed gap below −100 warns that DPO will fight the base distribution; below −500 it \
        will very likely fail (run SFT on the chosen answers first).

        Exit code: 0 for ok and warn, 1 for likely-fail (change with --fail-on), 2 for bad input.

        Example:
          tunecheck preflight --model models/tiny-default --pairs evalsets/default/pairs.jsonl
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("Preference pairs (JSONL {\"id\", \"prompt\", \"chosen\", \"rejected\"}).", valueName: "file"))
    var pairs: String

    @Option(name: .long, help: "Warn when the mean summed gap is below this.")
    var warnBelow: Double = PreflightThresholds().warnBelow

    @Option(name: .long, help: "Verdict likely-fail when the mean summed gap is below this.")
    var failBelow: Double = PreflightThresholds().failBelow

    @Option(name: .long, help: "Exit 1 at this verdict or worse (never: always exit 0).")
    var failOn = PreflightFailOn.fail

    @Option(name: .long, help: ArgumentHelp("Also write the analysis and per-pair gaps as JSON.", valueName: "file"))
    var json: String?

    func validate() throws {
        guard failBelow <= warnBelow else { throw ValidationError("--fail-below must not be above --warn-below") }
        if let json { try validateOutputPath(json) }
    }

    func run() throws {
        let model = try modelOptions.loadLanguageModel()
        let items = try EvalsetLoader.pairs(URL(fileURLWithPath: pairs))
        let scores = try EvalsetScoring.scorePairs(items, model: model)
        var thresholds = PreflightThresholds()
        thresholds.warnBelow = warnBelow
        thresholds.failBelow = failBelow
        let analysis = PreflightAnalysis(scores: scores, thresholds: thresholds)
        print(analysis.describe())
        if let json {
            try AtomicWrite.write(JSONWriter.data(analysis.json(scores: scores)) + Data("\n".utf8), to: URL(fileURLWithPath: json))
        }
        if failOn.fails(analysis.verdict) { throw ChecksFailed(summary: "preflight verdict: \(analysis.verdict.rawValue)") }
    }
}
