import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness

/// Options shared by the commands that evaluate or show answers (`eval`, `compare`): the suite file, the base, the
/// prompts and how answers are generated, so `compare` shows exactly the answers `eval` judged.
struct EvaluationInputOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Suite file (YAML or JSON); flags below override it.", valueName: "file"))
    var suite: String?

    @Option(name: .long, help: ArgumentHelp("Base model folder.", valueName: "dir"))
    var base: String?

    @Option(name: .long, help: ArgumentHelp("Prompts evalset (JSONL {\"id\", \"prompt\"}).", valueName: "file"))
    var prompts: String?

    @Option(name: .long, help: "Most new tokens per generated answer.")
    var maxTokens: Int?

    @Option(name: .long, help: "Apply the model's chat template to prompts, or use them as written.")
    var chatTemplate: GenerationSettings.ChatTemplateMode?

    @Flag(name: .long, help: "Generate --max-tokens tokens even past EOS (as the suite's generation.ignore_eos).")
    var ignoreEos = false

    /// The suite file (or an empty configuration) with these flags applied.
    func configuration() throws -> SuiteConfiguration {
        var configuration = try suite.map { try SuiteConfiguration.load(URL(fileURLWithPath: $0)) } ?? SuiteConfiguration()
        if let base { configuration.base = base }
        if let prompts { configuration.evalsets.prompts = prompts }
        if let maxTokens { configuration.generation.maxTokens = maxTokens }
        if let chatTemplate { configuration.generation.chatTemplate = chatTemplate }
        if ignoreEos { configuration.generation.ignoreEOS = true }
        return configuration
    }
}

/// A progress line fed by a session's stages.
extension EvaluationSession {
    func showProgress(on line: ProgressLine, checkpoint index: @escaping () -> Int) {
        progress = { stage, _, _ in line.update(index(), detail: stage) }
    }
}

/// Prints notices (a suite that did not run on a checkpoint, and why) as they come, after the progress line.
func printNotice(_ text: String) {
    print("notice: \(text)")
}
