import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckEngine
@testable import TunecheckTrainer

/// Schedules, accumulation and determinism of the training loop, on the bundled tiny model.
struct TrainerBehaviourTests {
    static let root = TestPaths.repositoryRoot

    static func configuration(_ folder: URL, _ adjust: (inout TrainingConfiguration) -> Void) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = root.appendingPathComponent("models/tiny-default").path
        configuration.data = root.appendingPathComponent("evalsets/default/texts.jsonl").path
        configuration.mode = .sft
        configuration.lora.rank = 4
        configuration.lora.scale = 2
        configuration.learningRate = 1e-3
        configuration.optimizer = .adamw
        configuration.iters = 4
        configuration.batchSize = 2
        configuration.saveEvery = 4
        configuration.stepsPerReport = 1
        configuration.adapterPath = folder.path
        configuration.guards = GuardSettings()
        configuration.guards.minLoss = nil
        configuration.guards.noLearningAfterSteps = nil
        adjust(&configuration)
        return configuration
    }

    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-trainer-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func adapterBytes(_ folder: URL) throws -> Data {
        try Data(contentsOf: folder.appendingPathComponent("adapters.safetensors"))
    }

    @Test func sameSeedGivesTheSameAdapter() throws {
        let first = try Self.temporaryFolder(), second = try Self.temporaryFolder(), other = try Self.temporaryFolder()
        defer { [first, second, other].forEach { try? FileManager.default.removeItem(at: $0) } }
        _ = try Trainer(configuration: Self.configuration(first) { $0.seed = 7 }).run()
        _ = try Trainer(configuration: Self.configuration(second) { $0.seed = 7 }).run()
        _ = try Trainer(configuration: Self.configuration(other) { $0.seed = 8 }).run()
        #expect(try Self.adapterBytes(first) == Self.adapterBytes(second), "a run is deterministic for a given seed")
        #expect(try Self.adapterBytes(first) != Self.adapterBytes(other), "another seed initialises differently")
    }

    @Test func gradientAccumulationOfIdenticalMicroBatchesEqualsOneBatch() throws {
        // With one example and no shuffling every micro-batch is the same, so accumulating two of them (each weighted
        // 1/2) must give the gradient, and therefore the SGD update, of one.
        let single = try Self.temporaryFolder(), accumulated = try Self.temporaryFolder()
        defer { [single, accumulated].forEach { try? FileManager.default.removeItem(at: $0) } }
        let data = single.appendingPathComponent("one.jsonl")
        try "{\"text\": \"Drinking water through the day helps the body stay cool.\"}\n".write(to: data, atomically: true, encoding: .utf8)
        func adjust(_ c: inout TrainingConfiguration) {
            c.data = data.path
            c.optimizer = .sgd
            c.learningRate = 0.5
            c.batchSize = 1
            c.iters = 2
            c.saveEvery = 2
            c.shuffle = false
        }
        _ = try Trainer(configuration: Self.configuration(single) { adjust(&$0) }).run()
        _ = try Trainer(configuration: Self.configuration(accumulated) { adjust(&$0); $0.gradAccumulationSteps = 2 }).run()
        let a = try WeightStore(files: [single.appendingPathComponent("adapters.safetensors")])
        let b = try WeightStore(files: [accumulated.appendingPathComponent("adapters.safetensors")])
        var difference: Float = 0
        var moved = false
        for name in a.tensorNames {
            let x = try a.floatTensor(name), y = try b.floatTensor(name)
            for index in 0..<x.count {
                difference = max(difference, abs(x.pointer[index] - y.pointer[index]))
                if name.hasSuffix("lora_b") && x.pointer[index] != 0 { moved = true }
            }
        }
        #expect(moved, "training changed lora_b")
        // Float32 summation order differs (two half-weighted passes vs one): agreement to ~1e-6.
        #expect(difference < 1e-5, "accumulated update differs by \(difference)")
    }

    @Test func warmupThenCosineDecayFollowsTheFormula() {
        var schedule = LearningRateSchedule()
        schedule.name = .cosineDecay
        schedule.arguments = [1e-3, 100, 1e-5]
        schedule.warmup = 10
        schedule.warmupInit = 0
        #expect(abs(schedule.rate(at: 0, base: 1e-3) - 1e-4) < 1e-12, "warm-up step 1 of 10")
        #expect(abs(schedule.rate(at: 9, base: 1e-3) - 1e-3) < 1e-12, "end of warm-up")
        for step in [10, 35, 60, 110, 500] {
            let t = min(Double(step - 10), 100)
            let expected = 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + cos(Double.pi * t / 100))
            #expect(abs(schedule.rate(at: step, base: 1e-3) - expected) < 1e-12, "step \(step)")
        }
        var constant = LearningRateSchedule()
        constant.warmup = 0
        #expect(constant.rate(at: 123, base: 2e-5) == 2e-5)
    }

    @Test func nonFiniteLossStopsTheRunWithoutSavingIt() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let summary = try Trainer(configuration: Self.configuration(folder) { $0.optimizer = .sgd; $0.learningRate = 1e30; $0.iters = 6; $0.saveEvery = 1 }).run()
        guard case .guardTripped(let name, _, _) = summary.stoppedBy else {
            Issue.record("expected a guard to stop a run with learning rate 1e30, got \(String(describing: summary.stoppedBy))")
            return
        }
        #expect(name == "non-finite")
        // Every checkpoint that was saved holds finite values.
        for path in summary.checkpoints {
            let store = try WeightStore(files: [URL(fileURLWithPath: path)])
            for name in store.tensorNames { _ = try store.floatTensor(name) }
        }
    }
}
