import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckJSON

struct DeltaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delta",
        abstract: "How far a fine-tune moved the weights: ‖ΔW‖, ‖ΔW‖/‖W‖ and max|ΔW| per tensor, per layer and overall.",
        discussion: """
        With --adapter: every weight the adapter changes (ΔW = scale·A·B, its norm computed from r×r products \
        without building ΔW). With --model: every tensor that differs between the two folders (same names and \
        shapes required). Flags on the overall relative delta ‖ΔW‖_F/‖W‖_F: no-learning below \
        --no-learning-threshold (default 1e-4), large-update above --large-update-threshold (default 0.1).
        Prints a table; --json FILE also writes the report as JSON (--json - prints only the JSON). Exit code 0 even \
        when flags are raised, unless --fail-on-flags (then 1).

        Examples:
          tunecheck delta --base models/base --adapter runs/lora/checkpoint-500
          tunecheck delta --base models/base --model models/full-finetune --json delta.json --fail-on-flags
        """
    )

    @Option(name: .long, help: ArgumentHelp("Base model folder.", valueName: "dir"))
    var base: String

    @Option(name: .long, help: ArgumentHelp("LoRA adapter (folder, checkpoint-N folder or numbered mlx_lm file).", valueName: "path"))
    var adapter: String?

    @Option(name: .long, help: ArgumentHelp("A second full model folder to compare with the base.", valueName: "dir"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp("Also write the report as JSON to this file (atomically); '-' prints only JSON.", valueName: "file"))
    var json: String?

    @Option(name: .long, help: "Flag no-learning when the overall relative delta is below this.")
    var noLearningThreshold = 1e-4

    @Option(name: .long, help: "Flag large-update when the overall relative delta is above this.")
    var largeUpdateThreshold = 0.1

    @Flag(name: .long, help: "Exit with status 1 when a flag is raised.")
    var failOnFlags = false

    func validate() throws {
        switch (adapter, model) {
        case (nil, nil): throw ValidationError("give --adapter PATH or --model DIR to compare with --base")
        case (.some, .some): throw ValidationError("give either --adapter or --model, not both")
        default: break
        }
        guard noLearningThreshold >= 0, noLearningThreshold.isFinite, largeUpdateThreshold >= 0, largeUpdateThreshold.isFinite else {
            throw ValidationError("thresholds must be finite and not negative")
        }
        guard noLearningThreshold <= largeUpdateThreshold else {
            throw ValidationError("--no-learning-threshold must not exceed --large-update-threshold")
        }
        if let json, json != "-" { try validateOutputPath(json) }
    }

    func run() throws {
        let baseURL = URL(fileURLWithPath: base)
        let thresholds = DeltaThresholds(noLearning: noLearningThreshold, largeUpdate: largeUpdateThreshold)
        let report: DeltaReport
        if let adapter {
            report = try WeightDelta.adapterDelta(baseFolder: baseURL, adapter: Adapter.load(path: URL(fileURLWithPath: adapter)), thresholds: thresholds)
        } else {
            report = try WeightDelta.modelDelta(baseFolder: baseURL, otherFolder: URL(fileURLWithPath: model!), thresholds: thresholds)
        }
        if json == "-" {
            FileHandle.standardOutput.write(JSONWriter.data(report.json) + Data("\n".utf8))
        } else {
            print(report.table, terminator: "")
            if let json { try AtomicWrite.write(JSONWriter.data(report.json) + Data("\n".utf8), to: URL(fileURLWithPath: json)) }
        }
        if failOnFlags, !report.flags.isEmpty {
            throw ChecksFailed(summary: "delta flags raised: \(report.flags.map(\.rawValue).joined(separator: ", "))")
        }
    }
}
