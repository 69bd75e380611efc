import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckEngine

/// `WeightDelta` against the fixtures' numpy float64 computation of the dense ΔW (`reference.json` `delta`):
/// every number within 1e-5 relative (the adapter path works in float64 from the float32 factors and a float32
/// scale, observed ≤ 2e-8; the two-model path sees ΔW through the float32 rounding of W + ΔW, observed ≤ 2e-7).
struct DeltaTests {
    static let relativeTolerance = 1e-5

    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= relativeTolerance * max(abs(b), 1e-30) }

    /// Checks a report against a reference delta; returns the largest relative difference seen.
    @discardableResult
    static func check(_ report: DeltaReport, against reference: AdapterReference.Delta, label: String) -> Double {
        var largest = 0.0
        func compare(_ got: Double, _ expected: Double, _ what: String) {
            largest = max(largest, abs(got - expected) / max(abs(expected), 1e-30))
            #expect(close(got, expected), "\(label) \(what): \(got) vs \(expected)")
        }
        #expect(report.tensors.count == reference.adapted_weight_count, "\(label)")
        let byKey = Dictionary(uniqueKeysWithValues: reference.modules.values.map { ($0.base_weight_key, $0) })
        for tensor in report.tensors {
            guard let expected = byKey[tensor.name] else {
                Issue.record("\(label): \(tensor.name) is not in the reference")
                continue
            }
            #expect(tensor.shape == expected.shape, "\(label) \(tensor.name) shape")
            compare(tensor.frobenius, expected.frobenius, "\(tensor.name) frobenius")
            compare(tensor.baseFrobenius, expected.base_weight_frobenius, "\(tensor.name) base frobenius")
            compare(tensor.relative, expected.relative_frobenius, "\(tensor.name) relative")
            compare(tensor.maxAbs, expected.max_abs, "\(tensor.name) max_abs")
        }
        compare(report.total.frobenius, reference.total_frobenius, "total frobenius")
        compare(report.total.relative, reference.total_relative, "total relative")
        return largest
    }

    @Test("Adapter delta matches numpy's dense ΔW", arguments: AdapterFixtures.names)
    func adapterDelta(name: String) throws {
        let reference = try AdapterReference.load(name)
        let report = try WeightDelta.adapterDelta(baseFolder: AdapterFixtures.basePath(name), adapter: Adapter.load(path: AdapterFixtures.adapterPath(name)))
        let largest = Self.check(report, against: reference.delta, label: name)
        print("delta \(name): max relative difference \(largest)")
        // Per-layer summaries add up to the total.
        #expect(report.layers.map(\.tensorCount).reduce(0, +) == report.tensors.count)
        let squares = report.layers.map { $0.frobenius * $0.frobenius }.reduce(0, +)
        #expect(Self.close(squares.squareRoot(), report.total.frobenius))
    }

    @Test func mlxNumberedCheckpointDelta() throws {
        let reference = try AdapterReference.load("mlx-llama")
        let file = "0000002_adapters.safetensors"
        let expected = try #require(reference.checkpoint_deltas?[file])
        let path = try AdapterFixtures.adapterPath("mlx-llama").appendingPathComponent(file)
        let report = try WeightDelta.adapterDelta(baseFolder: AdapterFixtures.basePath("mlx-llama"), adapter: Adapter.load(path: path))
        Self.check(report, against: expected, label: "mlx-llama/\(file)")
        // The final adapter's numbers differ, so the test would catch reading the wrong file.
        #expect(!Self.close(report.total.frobenius, reference.delta.total_frobenius))
    }

    @Test("Two full models: base vs fused equals the adapter delta", arguments: ["peft-llama", "peft-gpt2", "mlx-llama"])
    func baseVersusFused(name: String) throws {
        let (parent, fused) = try FuseTests.fuseFixture(name)
        defer { try? FileManager.default.removeItem(at: parent) }
        let report = try WeightDelta.modelDelta(baseFolder: AdapterFixtures.basePath(name), otherFolder: fused)
        let largest = Self.check(report, against: try AdapterReference.load(name).delta, label: "\(name) base vs fused")
        print("delta \(name) base vs fused: max relative difference \(largest)")
        #expect(report.comparedTensorCount > report.tensors.count, "unchanged tensors are compared but not listed")
        #expect(report.layers.last?.layer != nil, "only block weights differ")
    }

    @Test func flagsAtThresholds() throws {
        let adapter = try Adapter.load(path: AdapterFixtures.adapterPath("mlx-llama"))
        let base = try AdapterFixtures.basePath("mlx-llama")
        let report = try WeightDelta.adapterDelta(baseFolder: base, adapter: adapter)
        let relative = report.total.relative  // 0.1034 in the reference
        #expect(report.flags == [.largeUpdate], "default large-update threshold 0.1")
        let above = try WeightDelta.adapterDelta(baseFolder: base, adapter: adapter, thresholds: DeltaThresholds(largeUpdate: relative * 1.001))
        #expect(above.flags.isEmpty)
        let noLearning = try WeightDelta.adapterDelta(baseFolder: base, adapter: adapter,
                                                      thresholds: DeltaThresholds(noLearning: relative * 1.001, largeUpdate: 1))
        #expect(noLearning.flags == [.noLearning])
        let justBelow = try WeightDelta.adapterDelta(baseFolder: base, adapter: adapter,
                                                     thresholds: DeltaThresholds(noLearning: relative * 0.999, largeUpdate: relative * 1.001))
        #expect(justBelow.flags.isEmpty)
        // A model against itself: nothing differs, which is the clearest case of no learning.
        let same = try WeightDelta.modelDelta(baseFolder: base, otherFolder: base)
        #expect(same.tensors.isEmpty && same.total.relative == 0 && same.flags == [.noLearning])
    }

    @Test func zeroLoraBIsNoLearning() throws {
        // PEFT initialises lora_B to zero: an adapter saved before any step has ΔW = 0.
        let folder = try AdapterFixtures.editableCopy("peft-llama")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try AdapterTests.editTensors(folder, file: "adapter_model.safetensors") { tensors in
            for key in tensors.keys where key.contains("lora_B") {
                tensors[key] = (tensors[key]!.shape, [Float](repeating: 0, count: tensors[key]!.values.count))
            }
        }
        let report = try WeightDelta.adapterDelta(baseFolder: AdapterFixtures.basePath("peft-llama"), adapter: Adapter.load(path: folder))
        #expect(report.tensors.count == 14 && report.total.frobenius == 0 && report.total.maxAbs == 0)
        #expect(report.flags == [.noLearning])
    }

    @Test func mismatchedModelsAreAClearError() throws {
        let base = FixturePaths.ownModel("llama-rope-llama3-old-schema")
        // Same tensor names, different sizes (vocab 512 vs 320).
        #expect(throws: EngineError.tensorShapeMismatch(path: TestPaths.repositoryRoot.appendingPathComponent("models/tiny-default/model.safetensors").path,
                                                        name: "lm_head.weight", expected: [320, 64], actual: [512, 64])) {
            try WeightDelta.modelDelta(baseFolder: base, otherFolder: TestPaths.repositoryRoot.appendingPathComponent("models/tiny-default"))
        }
        // Different tensor names: Qwen3 has q_norm / k_norm that Llama has not.
        do {
            _ = try WeightDelta.modelDelta(baseFolder: base, otherFolder: FixturePaths.ownModel("qwen3"))
            Issue.record("expected an error")
        } catch let error as EngineError {
            #expect(error.errorDescription?.contains("norm.weight") == true, "\(error)")
        }
        // The adapter path validates like scoring does.
        #expect(throws: AdapterError.self) {
            try WeightDelta.adapterDelta(baseFolder: FixturePaths.ownModel("qwen3"), adapter: Adapter.load(path: AdapterFixtures.adapterPath("peft-llama")))
        }
    }

    @Test func jsonShape() throws {
        let report = try WeightDelta.adapterDelta(baseFolder: AdapterFixtures.basePath("peft-gpt2"), adapter: Adapter.load(path: AdapterFixtures.adapterPath("peft-gpt2")))
        guard case .object(let root) = report.json else { Issue.record("not an object"); return }
        #expect(root.keys == ["base", "kind", "adapter", "tensors", "layers", "total", "thresholds", "flags"])
        #expect(root["kind"] == .string("adapter"))
        #expect(root["tensors"]?.array?.count == 8)
        #expect(root["tensors"]?.array?.first?.object?["shape"] == .from([64, 192]), "GPT-2 Conv1D in its stored orientation")
        #expect(root["layers"]?.array?.count == 2)
        #expect(root["total"]?.object?["tensor_count"] == .from(8))
    }
}
