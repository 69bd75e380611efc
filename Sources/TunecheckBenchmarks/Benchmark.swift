import CBLAS
import Foundation
import TunecheckEngine
import TunecheckJSON
import TunecheckTrainer

/// What `tunecheck bench` measures: scoring (prefill with per-token log-probs), decoding (batch-1 greedy generation
/// with the KV cache) and one LoRA training step, each the best of `repeats` timed runs after a warm-up, reported
/// with its FLOP rate against a measured sgemm peak, peak resident and anonymous memory and load time. The CLI only
/// parses options and prints the line; the peers in ci/bench print the same fields. `sha256` times the content
/// hash the base-result cache keys weight files by (no model is loaded).
public enum Benchmark {
    public enum Task: String, Sendable, CaseIterable { case score, decode, train, sha256 }

    public struct Settings: Sendable {
        public var task: Task
        /// Sequences per batch (score default 8, train default 2).
        public var batch: Int?
        public var sequenceLength = 256
        public var prompt = 32
        public var tokens = 64
        public var mode = TrainingConfiguration.Mode.sft
        /// Score and decode with a bfloat16 copy of float32 linear weights.
        public var bf16Weights = false
        public var repeats = 3
        /// Measure the sgemm peak for the ratio (a few seconds; off in tests).
        public var measurePeak = true

        public init(task: Task) { self.task = task }
    }

    /// Loads `folder`, runs the task and returns the result line (`tool`, `task`, `shape`, sizes, `seconds`,
    /// `tokens_per_s`, `gflops`, `sgemm_peak_gflops`, `peak_ratio`, `peak_rss_mb`, `peak_anon_mb`, `weights_mb`,
    /// `load_seconds`, `threads`, and for decode `prefill_seconds`, `decode_only_tokens_per_s`, `decode_gb_per_s`).
    public static func run(_ settings: Settings, folder: URL, shapeName: String) throws -> JSONObject {
        if settings.task == .sha256 { return try hashWeights(folder: folder, shapeName: shapeName, repeats: settings.repeats) }
        let task = settings.task, repeats = settings.repeats, seq = settings.sequenceLength
        let prompt = settings.prompt, tokens = settings.tokens, mode = settings.mode, bf16Weights = settings.bf16Weights
        let batch = settings.batch
        let sampler = MemorySampler()
        let loadStart = Date()
        let loaded = try ModelLoader.loadDecoder(folder: folder)
        let decoder = bf16Weights ? loaded.withBFloat16Weights() : loaded
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let spec = decoder.spec
        var generator = SeededGenerator(seed: 42)
        func randomIds(_ count: Int) -> [Int] { (0..<count).map { _ in Int.random(in: 3..<spec.vocabularySize, using: &generator) } }
        var best = Double.infinity
        var processed = 0
        var flops = 0.0
        var extra: [(String, JSONValue)] = []
        switch task {
        case .score:
            let batchSize = batch ?? 8
            let sequences = (0..<batchSize).map { _ in randomIds(seq) }
            let scorer = Scorer(model: decoder, tokenBudget: batchSize * seq)
            _ = try scorer.score(sequences)
            for _ in 0..<repeats {
                let start = Date()
                _ = try scorer.score(sequences)
                best = min(best, Date().timeIntervalSince(start))
            }
            processed = batchSize * seq
            flops = ModelArithmetic.scoreFlops(spec, batch: batchSize, length: seq)
            extra = [("batch", .from(batchSize)), ("seq", .from(seq))]
        case .decode:
            let generatorModel = Generator(model: decoder)
            let promptIds = randomIds(prompt)
            let options = GenerationOptions(maxNewTokens: tokens, ignoreEOS: true)
            _ = try generatorModel.generate(promptIds: promptIds, options: options)
            var bestPrefill = Double.infinity
            for _ in 0..<repeats {
                let prefillStart = Date()
                _ = try generatorModel.generate(promptIds: promptIds, options: GenerationOptions(maxNewTokens: 1, ignoreEOS: true))
                bestPrefill = min(bestPrefill, Date().timeIntervalSince(prefillStart))
                let start = Date()
                _ = try generatorModel.generate(promptIds: promptIds, options: options)
                best = min(best, Date().timeIntervalSince(start))
            }
            processed = tokens
            flops = ModelArithmetic.decodeFlops(spec, prompt: prompt, tokens: tokens)
            let decodeSeconds = max(best - bestPrefill, 1e-9)
            let decodeRate = Double(tokens - 1) / decodeSeconds
            let bytesPerWeight = bf16Weights ? 2 : decoder.store.dominantDType.byteSize
            // Quantized weights: the bytes the GEMVs read per token as stored (codes, scales, biases).
            let bytesPerToken = spec.quantization == nil ? ModelArithmetic.weightBytesPerToken(spec, bytesPerWeight: bytesPerWeight)
                : Double(decoder.weights.layers.flatMap(\.linears).reduce(0) { $0 + $1.weight.byteCount } + decoder.weights.outputProjection.byteCount)
            extra = [("prompt", .from(prompt)), ("tokens", .from(tokens)), ("prefill_seconds", .from(bestPrefill)),
                     ("decode_only_tokens_per_s", .from(decodeRate)),
                     ("decode_gb_per_s", .from(decodeRate * bytesPerToken / 1e9)),
                     ("weights_per_s", .from(decodeRate * Double(ModelArithmetic.linearParametersPerToken(spec))))]
        case .train:
            let batchSize = batch ?? 2
            let lora = try LoRAParameters(base: decoder, rank: 8, scale: 20, keys: nil, numLayers: nil, seed: 1)
            let optimizer = Optimizer(name: .adamw, settings: nil, tensors: lora.tensors)
            let pass = TrainingPass(model: lora.model)
            let sequences = (0..<(mode == .dpo ? 2 * batchSize : batchSize)).map { _ in randomIds(seq) }
            func step() throws {
                lora.zeroGradients()
                let logprobs = try pass.forward(sequences)
                if mode == .sft {
                    let trained = sequences.map { [Bool](repeating: true, count: $0.count - 1) }
                    pass.backward(SFTLoss.evaluate(logprobs: logprobs, trained: trained).dLogprobs, into: lora.gradients)
                } else {
                    let examples = stride(from: 0, to: sequences.count, by: 2).map { index in
                        DPOExample(chosen: PromptResponseTokens(ids: sequences[index], promptLength: seq / 2),
                                   rejected: PromptResponseTokens(ids: sequences[index + 1], promptLength: seq / 2),
                                   reference: (-100, -1, -110, -1.1))
                    }
                    let (_, gradient, _) = DPOObjective.evaluate(logprobs: logprobs, examples: examples, beta: 0.1, type: .sigmoid, normalizeByLength: false)
                    pass.backward(gradient, into: lora.gradients)
                }
                optimizer.update(lora.tensors, rate: 1e-4)
            }
            try step()
            for _ in 0..<repeats {
                let start = Date()
                try step()
                best = min(best, Date().timeIntervalSince(start))
            }
            processed = sequences.count * seq
            flops = ModelArithmetic.loraStepFlops(spec, sequences: sequences.count, length: seq)
            extra = [("batch", .from(batchSize)), ("seq", .from(seq)), ("mode", .string(mode.rawValue)), ("lora_rank", .from(8))]
        case .sha256:
            preconditionFailure("sha256 returns from hashWeights above")
        }
        // Peak memory of the task itself, before the sgemm measurement's three 16 MB matrices.
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peaks = sampler.stop()
        let peak = settings.measurePeak ? measureSgemmPeak() : .nan
        var line = JSONObject()
        line.set("tool", .string(bf16Weights ? "tunecheck-bf16" : "tunecheck"))
        line.set("task", .string(task.rawValue))
        line.set("shape", .string(shapeName))
        for (key, value) in extra { line.set(key, value) }
        line.set("seconds", .from(best))
        line.set("tokens_per_s", .from(Double(processed) / best))
        line.set("gflops", .from(flops / best / 1e9))
        line.set("sgemm_peak_gflops", .from(peak))
        line.set("peak_ratio", .from(flops / best / 1e9 / peak))
        line.set("peak_rss_mb", .from(Double(usage.ru_maxrss) / 1024))
        line.set("peak_anon_mb", .from(peaks.anonymous / 1_048_576))
        if let quantization = spec.quantization {
            line.set("quantization", .string("q\(quantization.defaults.bits)-g\(quantization.defaults.groupSize)"))
            line.set("weights_mb", .from(Double(decoder.store.storedBytes) / 1_048_576))
        } else {
            line.set("weights_mb", .from(Double(ModelArithmetic.parameterCount(spec) * (bf16Weights ? 2 : decoder.store.dominantDType.byteSize)) / 1_048_576))
        }
        line.set("load_seconds", .from(loadSeconds))
        line.set("threads", .from(Int(openblas_get_num_threads())))
        return line
    }

    /// SHA-256 of the folder's `*.safetensors` files as the base-result cache computes it (`SHA256.hex(ofFile:)`),
    /// the SHA-NI path and the portable C loop, each the best of `repeats` after a warm-up read (so the files come
    /// from the page cache when they fit). Returns `task`, `shape`, `bytes`, `files`, `sha_ni` (whether the CPU has
    /// it), `seconds` and `mb_per_s` (fastest path), `portable_seconds`, `portable_mb_per_s`, `digest` (of the first
    /// file) and `load_average` (1 minute, since the machine may be shared).
    public static func hashWeights(folder: URL, shapeName: String, repeats: Int) throws -> JSONObject {
        let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "safetensors" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        guard !files.isEmpty else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no .safetensors file in \(folder.path)"])
        }
        let bytes = try files.reduce(0) { total, file in
            // The target's size: Hugging Face cache folders hold symlinks to blobs.
            total + ((try FileManager.default.attributesOfItem(atPath: file.resolvingSymlinksInPath().path)[.size] as? NSNumber)?.intValue ?? 0)
        }
        func best(_ implementation: SHA256.Implementation) throws -> (seconds: Double, digest: String) {
            var digest = try SHA256.hex(ofFile: files[0], implementation: implementation)
            var fastest = Double.infinity
            for _ in 0..<repeats {
                let start = Date()
                for (index, file) in files.enumerated() {
                    let hex = try SHA256.hex(ofFile: file, implementation: implementation)
                    if index == 0 { digest = hex }
                }
                fastest = min(fastest, Date().timeIntervalSince(start))
            }
            return (fastest, digest)
        }
        let fast = try best(.fastest), portable = try best(.portable)
        var loads = [Double](repeating: .nan, count: 3)
        _ = getloadavg(&loads, 3)
        var line = JSONObject()
        line.set("tool", .string("tunecheck"))
        line.set("task", .string(Task.sha256.rawValue))
        line.set("shape", .string(shapeName))
        line.set("files", .from(files.count))
        line.set("bytes", .from(bytes))
        line.set("sha_ni", .bool(SHA256.usesSHAExtensions))
        line.set("seconds", .from(fast.seconds))
        line.set("mb_per_s", .from(Double(bytes) / fast.seconds / 1e6))
        line.set("portable_seconds", .from(portable.seconds))
        line.set("portable_mb_per_s", .from(Double(bytes) / portable.seconds / 1e6))
        line.set("digest", .string(fast.digest))
        line.set("portable_digest_matches", .bool(fast.digest == portable.digest))
        line.set("load_average", .from(loads[0]))
        return line
    }

    /// Best of a few 2048³ sgemm calls, in GFLOP/s.
    public static func measureSgemmPeak() -> Double {
        let n = 2048
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<4 {
            let start = Date()
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
            best = min(best, Date().timeIntervalSince(start))
        }
        return 2 * pow(Double(n), 3) / best / 1e9
    }
}
