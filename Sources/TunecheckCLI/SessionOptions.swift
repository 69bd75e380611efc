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

    @Option(name: .long, help: ArgumentHelp(
        "Keep the base model's results here between runs (its pair and text log-probs, greedy answers), keyed by the content of the model, evalsets and settings; overrides TUNECHECK_CACHE_DIR and the suite's cache_dir.",
        valueName: "dir"))
    var cacheDir: String?

    /// The suite file (or an empty configuration) with these flags applied.
    func configuration() throws -> SuiteConfiguration {
        var configuration = try suite.map { try SuiteConfiguration.load(URL(fileURLWithPath: $0)) } ?? SuiteConfiguration()
        if let base { configuration.base = base }
        if let prompts { configuration.evalsets.prompts = prompts }
        if let maxTokens { configuration.generation.maxTokens = maxTokens }
        if let chatTemplate { configuration.generation.chatTemplate = chatTemplate }
        if ignoreEos { configuration.generation.ignoreEOS = true }
        applyCacheDirectory(flag: cacheDir, to: &configuration)
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

/// The base-result cache folder: `--cache-dir`, else `TUNECHECK_CACHE_DIR`, else the suite file's `cache_dir`.
func applyCacheDirectory(flag: String?, to configuration: inout SuiteConfiguration) {
    if let flag {
        configuration.cacheDir = flag
    } else if let variable = ProcessInfo.processInfo.environment["TUNECHECK_CACHE_DIR"], !variable.isEmpty {
        configuration.cacheDir = variable
    }
}
