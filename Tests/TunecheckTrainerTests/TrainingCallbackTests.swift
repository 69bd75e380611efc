import Foundation
import Testing
import TunecheckEngine
import TunecheckJSON
@testable import TunecheckTrainer

/// The trainer's side of the callback: what it hands over after each save, and what it does with the answer.
/// The trainer knows nothing of suites; this callback stands in for the harness-backed one the CLI wires in.
final class RecordingCallback: TrainingCallback {
    let folder: URL
    var startRecord: JSONObject?
    /// The base the trainer handed over (its own loaded base, so an evaluator need not map it again).
    var startBase: LanguageModel?
    var saved: [SavedCheckpoint] = []
    var recordsSeenAtSave: [[String]] = []
    var answer: (SavedCheckpoint) -> CheckpointFeedback?

    init(folder: URL, answer: @escaping (SavedCheckpoint) -> CheckpointFeedback?) {
        self.folder = folder
        self.answer = answer
    }

    func readRunRecord() throws -> JSONObject {
        try #require(try JSONParser.parse([UInt8](Data(contentsOf: folder.appendingPathComponent("run.json")))).object)
    }

    func trainingWillStart(_ record: RunRecord, base: LanguageModel) throws {
        startRecord = try readRunRecord()
        startBase = base
    }

    func checkpointSaved(_ checkpoint: SavedCheckpoint) throws -> CheckpointFeedback? {
        saved.append(checkpoint)
        #expect(FileManager.default.fileExists(atPath: checkpoint.url.path), "the checkpoint is on disk when the callback runs")
        let names = try readRunRecord()["checkpoints"]?.array?.compactMap(\.string) ?? []
        recordsSeenAtSave.append(names)
        return answer(checkpoint)
    }
}

struct TrainingCallbackTests {
    @Test func runRecordIsWrittenAtTheStartAndAtEverySave() throws {
        let folder = try TrainerBehaviourTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let trainer = Trainer(configuration: TrainerBehaviourTests.configuration(folder) { $0.iters = 6; $0.saveEvery = 2 })
        let callback = RecordingCallback(folder: folder) { saved in
            // Step 4 scores best but fails its checks: it must not be the best checkpoint.
            CheckpointFeedback(passed: saved.step != 4, metrics: [.rewardsAccuracies: saved.step == 4 ? 1 : Double(saved.step) / 10])
        }
        trainer.callback = callback
        let summary = try trainer.run()

        let start = try #require(callback.startRecord)
        #expect(start["status"]?.string == "running")
        #expect(start["configuration"]?.object?["iters"]?.int == 6, "the whole configuration is recorded before the first step")
        #expect(start["checkpoints"]?.array?.isEmpty == true)
        let handedBase = try #require(callback.startBase, "the trainer hands its loaded base to the callback")
        let reloaded = try LanguageModel.load(folder: URL(fileURLWithPath: trainer.configuration.model))
        #expect(handedBase.decoder.spec.vocabularySize == reloaded.decoder.spec.vocabularySize)
        #expect(handedBase.tokenizer.vocabularySize == reloaded.tokenizer.vocabularySize)
        // At each save, run.json already lists that checkpoint's predecessors (a killed run keeps them).
        #expect(callback.recordsSeenAtSave == [[], ["0000002_adapters"], ["0000002_adapters", "0000004_adapters"]])
        #expect(callback.saved.map(\.step) == [2, 4, 6])
        #expect(callback.saved.map(\.name) == [.numberedAdapter(step: 2), .numberedAdapter(step: 4), .numberedAdapter(step: 6)])
        #expect(summary.bestCheckpoint == "0000006_adapters")
        let final = try callback.readRunRecord()
        #expect(final["status"]?.string == "finished")
        #expect(final["best_checkpoint"]?.string == "0000006_adapters")
        #expect(final["stop"]?.isNull == true)
        let records = final["checkpoint_records"]?.array ?? []
        #expect(records.compactMap { $0.object?["passed"]?.bool } == [true, false, true])
    }

    @Test func aCallbackCanStopTheRunAndReportCollapse() throws {
        let folder = try TrainerBehaviourTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The repetition guard trips on a checkpoint whose answers collapsed, naming the checkpoint and the evidence.
        let trainer = Trainer(configuration: TrainerBehaviourTests.configuration(folder) { $0.iters = 8; $0.saveEvery = 2 })
        trainer.callback = RecordingCallback(folder: folder) { saved in
            CheckpointFeedback(passed: saved.step < 4, repetition: saved.step >= 4 ? "single token repeated: \"water\" ×64" : nil)
        }
        let summary = try trainer.run()
        let stop = try #require(summary.stop)
        #expect(stop.guardName == .repetition && stop.step == 4 && stop.checkpoint == "0000004_adapters")
        #expect(summary.stoppedBy?.errorDescription?.contains("guard 'repetition' stopped the run at 0000004_adapters") == true)
        let run = try RecordingCallback(folder: folder) { _ in nil }.readRunRecord()
        #expect(run["stop"]?.object?["guard"]?.string == "repetition")
        #expect(run["stop"]?.object?["step"]?.int == 4)

        // A stop request ends the run after that checkpoint, without a guard.
        let other = try TrainerBehaviourTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: other) }
        let polite = Trainer(configuration: TrainerBehaviourTests.configuration(other) { $0.iters = 8; $0.saveEvery = 2 })
        polite.callback = RecordingCallback(folder: other) { saved in
            CheckpointFeedback(passed: true, stopRequest: saved.step == 2 ? "enough" : nil)
        }
        let stopped = try polite.run()
        #expect(stopped.stop == nil && stopped.steps == 2 && stopped.checkpoints.count == 1)
        let politeRun = try RecordingCallback(folder: other) { _ in nil }.readRunRecord()
        #expect(politeRun["status"]?.string == "stopped" && politeRun["stop_request"]?.string == "enough")
    }

    @Test func aRunEndedByAnErrorSaysSoInItsRecord() throws {
        struct EvaluationBroke: Error, LocalizedError { var errorDescription: String? { "evalset.jsonl:3: missing \"prompt\"" } }
        let folder = try TrainerBehaviourTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let trainer = Trainer(configuration: TrainerBehaviourTests.configuration(folder) { $0.iters = 4; $0.saveEvery = 2 })
        final class Failing: TrainingCallback {
            func checkpointSaved(_ checkpoint: SavedCheckpoint) throws -> CheckpointFeedback? { throw EvaluationBroke() }
        }
        trainer.callback = Failing()
        #expect(throws: EvaluationBroke.self) { _ = try trainer.run() }
        let run = try RecordingCallback(folder: folder) { _ in nil }.readRunRecord()
        #expect(run["status"]?.string == "failed")
        #expect(run["failure"]?.string == "evalset.jsonl:3: missing \"prompt\"")
        #expect(run["checkpoints"]?.array?.compactMap(\.string) == ["0000002_adapters"], "the checkpoint written before the error is recorded")
    }
}
