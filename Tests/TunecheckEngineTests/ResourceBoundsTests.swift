import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckEngine
#if canImport(Glibc)
import Glibc
#endif

/// Readers bound what they read: only regular files, up to a size per kind, and a model that cannot fit in memory
/// is refused before any weight is loaded. Oversized files are sparse (no disk space used).
struct ResourceBoundsTests {
    static func sparseFile(_ url: URL, size: Int, prefix: String) throws {
        #expect(FileManager.default.createFile(atPath: url.path, contents: Data(prefix.utf8)))
        #expect(truncate(url.path, off_t(size)) == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func oversizedConfigIsRefusedWithoutReading() throws {
        try BadInput.withTemporaryFolder("bounds-config") { folder in
            let config = folder.appendingPathComponent("config.json")
            try Self.sparseFile(config, size: 40 << 20, prefix: "{\"model_type\": \"llama\"")
            let error = BadInput.engineError { _ = try ModelConfigLoader.loadSpec(configURL: config) }
            #expect(error?.caseName == "unreadable")
            BadInput.expectMessage(error, contains: [config.path, "file is 41943040 bytes, more than the 16777216-byte limit"])
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func oversizedIndexAndGenerationConfigAreRefused() throws {
        try BadInput.withTemporaryFolder("bounds-index") { folder in
            let index = folder.appendingPathComponent("model.safetensors.index.json")
            try Self.sparseFile(index, size: 100 << 20, prefix: "{\"weight_map\": {")
            var error = BadInput.engineError { _ = try WeightStore(folder: folder) }
            BadInput.expectMessage(error, contains: [index.path, "more than the 67108864-byte limit"])

            let generation = folder.appendingPathComponent("generation_config.json")
            try Self.sparseFile(generation, size: 20 << 20, prefix: "{")
            error = BadInput.engineError { _ = try GenerationConfig.load(folder: folder) }
            BadInput.expectMessage(error, contains: [generation.path, "more than the 16777216-byte limit"])
        }
    }

    /// A FIFO where generation_config.json should be: refused at once (it used to block in Data(contentsOf:)).
    @Test(.timeLimit(.minutes(1)))
    func namedPipeGenerationConfigDoesNotHang() throws {
        try BadInput.withTemporaryFolder("bounds-fifo") { folder in
            let generation = folder.appendingPathComponent("generation_config.json")
            #expect(mkfifo(generation.path, 0o644) == 0)
            let error = BadInput.engineError { _ = try GenerationConfig.load(folder: folder) }
            BadInput.expectMessage(error, contains: [generation.path, "is a named pipe, expected a regular file"])
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func oversizedJSONLinesFileIsRefusedWithoutMapping() throws {
        try BadInput.withTemporaryFolder("bounds-jsonl") { folder in
            let input = folder.appendingPathComponent("big.jsonl")
            try Self.sparseFile(input, size: (1 << 30) + 1, prefix: "{\"text\": \"x\"}\n")
            #expect(throws: JSONLinesError.unreadable(path: input.path, reason: "file is 1073741825 bytes, more than the 1073741824-byte limit for this kind of file")) {
                _ = try JSONLines.read(input)
            }
        }
    }

    @Test func memoryAvailableComesFromProcMeminfo() throws {
        let available = try #require(MemoryBudget.availableBytes())
        #expect(available > Double(1 << 26), "MemAvailable read as \(available) bytes")
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        #expect(meminfo.contains("MemAvailable:"))
    }

    /// The estimate from config.json covers the weights the architecture loads (norms and biases aside).
    @Test func parameterEstimateMatchesTheTinyModel() throws {
        let folder = TestPaths.repositoryRoot.appendingPathComponent("models/tiny-default")
        let (spec, _) = try ModelConfigLoader.loadSpec(configURL: folder.appendingPathComponent("config.json"))
        let store = try WeightStore(folder: folder)
        let stored = store.tensorNames.reduce(0) { $0 + (store.info($1)?.elementCount ?? 0) }
        let estimate = Double(ModelArithmetic.parameterCount(spec))
        #expect(abs(estimate - Double(stored)) / Double(stored) < 0.01, "estimate \(estimate), stored \(stored)")
    }

    @Test func modelLargerThanMemoryIsRefusedBeforeLoading() throws {
        try BadInput.withTemporaryFolder("bounds-memory") { folder in
            let model = try BadInput.copyFixture("llama-bf16", into: folder)
            let (spec, _) = try ModelConfigLoader.loadSpec(configURL: model.appendingPathComponent("config.json"))
            let needed = Double(ModelArithmetic.parameterCount(spec) * 2) + MemoryBudget.workingBytes(spec)
            try MemoryBudget.check(spec: spec, folder: model, storedBytesPerWeight: 2, availableBytes: needed * 2, totalBytes: needed * 2)
            let error = BadInput.engineError {
                try MemoryBudget.check(spec: spec, folder: model, storedBytesPerWeight: 2, availableBytes: needed * 2, totalBytes: needed / 2)
            }
            #expect(error?.caseName == "insufficientMemory")
            BadInput.expectMessage(error, contains: [model.path, "the model needs about", "for its weights (BF16/F16 as stored, memory-mapped)",
                                                     "of memory is available"])
            // Weights that fit the machine (mapped, in the page cache) but working memory that does not fit what is
            // available now: refused on the working memory alone.
            let working = BadInput.engineError {
                try MemoryBudget.check(spec: spec, folder: model, storedBytesPerWeight: 2, availableBytes: MemoryBudget.workingBytes(spec) / 2,
                                       totalBytes: needed * 2)
            }
            BadInput.expectMessage(working, contains: [model.path, "of working memory (activations, logits)", "of memory is available"])
        }
    }
}
