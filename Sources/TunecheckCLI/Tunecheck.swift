import ArgumentParser
import Foundation
import TunecheckEngine

/// `tunecheck`: is this fine-tuned checkpoint healthy? A thin command layer over the engine and harness libraries.
@main
struct Tunecheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunecheck",
        abstract: "Check whether a fine-tuned LLM checkpoint is healthy.",
        discussion: """
        Loads Hugging Face / mlx_lm model folders (config.json, *.safetensors, tokenizer.json) and computes \
        log-probabilities and generations that match transformers.

        Exit codes: 0 success, 1 a check failed, 2 bad input or usage.

        Example:
          tunecheck score --model models/tiny --input evalsets/texts.jsonl --output scores.jsonl
        """,
        version: TunecheckVersion.current,
        subcommands: [TokenizeCommand.self, ScoreCommand.self, GenerateCommand.self, FuseCommand.self, DeltaCommand.self,
                      PreflightCommand.self, EvalCommand.self, CompareCommand.self, TrainCommand.self, WatchCommand.self,
                      RunsCommand.self, MergeCommand.self, BenchCommand.self]
    )

    /// Runs the command line with tunecheck's exit codes: usage and input errors exit 2 (ArgumentParser would
    /// use 64), failed checks exit 1, `--help` and `--version` exit 0.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as ChecksFailed {
            fflush(nil)  // flush stdout so the error line comes after what was printed
            FileHandle.standardError.write(Data("tunecheck: \(failure.summary)\n".utf8))
            Foundation.exit(1)
        } catch {
            fflush(nil)  // flush stdout so the error line comes after what was printed
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)
            }
            let message: String
            if let localized = error as? LocalizedError, let description = localized.errorDescription {
                message = "tunecheck: error: \(description)"
            } else {
                message = fullMessage(for: error)
            }
            fflush(nil)  // all output streams
            FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

/// Thrown by commands whose checks ran and failed (exit code 1).
struct ChecksFailed: Error {
    let summary: String
}
