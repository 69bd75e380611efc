import Foundation
@testable import TunecheckEngine

/// The adapter fixtures under `Tests/Fixtures/adapters` and the parts of their `reference.json` the tests read
/// (schema in `scripts/fixtures/README.md`).
enum AdapterFixtures {
    static let names = ["peft-llama", "peft-llama-rslora", "peft-gpt2", "peft-checkpoint-dir", "mlx-llama", "granite-hybrid-peft", "mlx-granite-hybrid"]

    static func folder(_ name: String) -> URL { FixturePaths.ownFixtures.appendingPathComponent("adapters").appendingPathComponent(name) }

    /// What `--adapter` points at: the fixture folder, or its `checkpoint-N/` sub-folder.
    static func adapterPath(_ name: String) throws -> URL {
        let reference = try AdapterReference.load(name)
        return reference.adapter_subdir.map { folder(name).appendingPathComponent($0) } ?? folder(name)
    }

    static func basePath(_ name: String) throws -> URL {
        FixturePaths.ownFixtures.appendingPathComponent(try AdapterReference.load(name).base)
    }

    /// Per-token tolerance against the references: 1e-4 as for the base models (float32 engine vs a float32
    /// transformers run, both ~1e-5 from float64), 5e-4 for the scale-20 mlx_lm adapter, whose low-rank path
    /// multiplies the float32 rounding of x·A by 20 (observed values are printed by the tests).
    static func tolerance(_ name: String) -> Double { name.hasPrefix("mlx") ? 5e-4 : 1e-4 }

    /// Copies a fixture's adapter (files only, no reference.json) into a fresh temporary folder for editing.
    static func editableCopy(_ name: String) throws -> URL {
        let source = try adapterPath(name)
        let target = try FixturePaths.temporaryDirectory("adapter-\(name)").appendingPathComponent("adapter")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where file != "reference.json" {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: target.appendingPathComponent(file))
        }
        return target
    }
}

struct AdapterReference: Decodable {
    struct ScoredText: Decodable {
        var ids: [Int]
        var logprobs: [Double]
    }
    struct ModuleDelta: Decodable {
        var base_weight_key: String
        var shape: [Int]
        var frobenius: Double
        var base_weight_frobenius: Double
        var relative_frobenius: Double
        var max_abs: Double
    }
    struct Delta: Decodable {
        var modules: [String: ModuleDelta]
        var total_frobenius: Double
        var total_relative: Double
        var adapted_weight_count: Int
    }
    struct Checkpoint: Decodable {
        var texts: [ScoredText]
        var fused_logprobs: [[Double]]
    }
    var base: String
    var adapter_format: String
    var adapter_subdir: String?
    var texts: [ScoredText]
    var fused_logprobs: [[Double]]
    var delta: Delta
    var checkpoints: [String: Checkpoint]?
    var checkpoint_deltas: [String: Delta]?

    static func load(_ name: String) throws -> AdapterReference {
        try JSONDecoder().decode(AdapterReference.self,
                                 from: Data(contentsOf: AdapterFixtures.folder(name).appendingPathComponent("reference.json")))
    }
}

/// The largest per-token difference between two sets of log-prob rows (and whether the shapes agree).
func maxDifference(_ a: [[Double]], _ b: [[Double]]) -> Double {
    guard a.count == b.count else { return .infinity }
    var largest = 0.0
    for (x, y) in zip(a, b) {
        guard x.count == y.count else { return .infinity }
        for (u, v) in zip(x, y) { largest = max(largest, abs(u - v)) }
    }
    return largest
}
