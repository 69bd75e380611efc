import Foundation
import Testing
import TunecheckBenchmarks
import TunecheckEngine
import TunecheckJSON
import TunecheckTestSupport

/// The benchmark's arithmetic (what a FLOP rate or a bandwidth is divided by) and its result line, on the bundled
/// tiny model. Speeds are never asserted here: they belong to `tunecheck bench`, run on demand.
@Suite struct BenchmarkTests {
    static let tiny = TestPaths.repositoryRoot.appendingPathComponent("models/tiny-default")

    @Test func flopCountsFollowFromTheShape() throws {
        let spec = try ModelLoader.loadDecoder(folder: Self.tiny).spec
        let perToken = Double(ModelArithmetic.linearParametersPerToken(spec))
        // The linear weights one token meets: every block's q, k, v, o and MLP, plus the output projection.
        let hidden = spec.hiddenSize, attention = spec.attention
        let perBlock = hidden * (attention.queryDim + 2 * attention.kvDim) + attention.queryDim * hidden + 3 * hidden * spec.intermediateSize
        #expect(Int(perToken) == spec.layerCount * perBlock + hidden * spec.vocabularySize)
        // Causal attention over T tokens: Σ_t 2·(t+1)·queryDim for Q·Kᵀ and again for P·V, per layer.
        let length = 10
        var mixing = 0.0
        for t in 0..<length { mixing += 4 * Double(t + 1) * Double(attention.queryDim) }
        #expect(ModelArithmetic.tokenMixingFlops(spec, length: length) == mixing * Double(spec.layerCount))
        #expect(ModelArithmetic.scoreFlops(spec, batch: 3, length: length) == 2 * perToken * 30 + 3 * mixing * Double(spec.layerCount))
        #expect(ModelArithmetic.decodeFlops(spec, prompt: 4, tokens: 6) == 2 * perToken * 10)
        #expect(ModelArithmetic.loraStepFlops(spec, sequences: 2, length: length) == 4 * perToken * 20 + 6 * mixing * Double(spec.layerCount))
        #expect(ModelArithmetic.weightBytesPerToken(spec, bytesPerWeight: 2) == 2 * perToken)
    }

    @Test func theParameterCountIsTheStoredWeights() throws {
        // Every 2-D weight tensor of the folder (norms and biases are left out by design: a fraction of a percent).
        let decoder = try ModelLoader.loadDecoder(folder: Self.tiny)
        let store = try WeightStore(folder: Self.tiny)
        let matrices = store.tensorNames.compactMap(store.info).filter { $0.shape.count == 2 }.map(\.elementCount).reduce(0, +)
        #expect(ModelArithmetic.parameterCount(decoder.spec) == matrices)
    }

    @Test(arguments: Benchmark.Task.allCases.filter { $0 != .sha256 })
    func aRunReportsEveryField(_ task: Benchmark.Task) throws {
        var settings = Benchmark.Settings(task: task)
        settings.batch = 2
        settings.sequenceLength = 8
        settings.prompt = 4
        settings.tokens = 3
        settings.repeats = 1
        settings.measurePeak = false
        let line = try Benchmark.run(settings, folder: Self.tiny, shapeName: "tiny")
        #expect(line["task"]?.string == task.rawValue && line["shape"]?.string == "tiny")
        for key in ["seconds", "tokens_per_s", "gflops", "peak_rss_mb", "peak_anon_mb", "weights_mb", "load_seconds"] {
            #expect((line[key]?.double ?? -1) > 0, "\(task) \(key): \(String(describing: line[key]))")
        }
        if task == .decode {
            #expect((line["decode_gb_per_s"]?.double ?? -1) > 0)
        }
    }

    @Test func theHashTaskReportsTheCacheDigest() throws {
        let line = try Benchmark.hashWeights(folder: Self.tiny, shapeName: "tiny", repeats: 1)
        let file = Self.tiny.appendingPathComponent("model.safetensors")
        #expect(line["task"]?.string == "sha256" && line["files"]?.int == 1)
        #expect(line["digest"]?.string == (try SHA256.hex(ofFile: file)))
        #expect(line["portable_digest_matches"] == .bool(true))
        #expect((line["mb_per_s"]?.double ?? -1) > 0 && (line["portable_mb_per_s"]?.double ?? -1) > 0)
        let size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue
        #expect(line["bytes"]?.int == size)
        // A folder of symlinks (the Hugging Face cache layout) counts the targets' bytes.
        let linked = try TestPaths.temporaryDirectory("bench-sha256")
        defer { try? FileManager.default.removeItem(at: linked) }
        try FileManager.default.createSymbolicLink(at: linked.appendingPathComponent("model.safetensors"), withDestinationURL: file)
        let viaLink = try Benchmark.hashWeights(folder: linked, shapeName: "linked", repeats: 1)
        #expect(viaLink["bytes"]?.int == size && viaLink["digest"] == line["digest"])
    }
}
