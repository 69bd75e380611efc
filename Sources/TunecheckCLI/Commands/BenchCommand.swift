import ArgumentParser
import CBLAS
import Foundation
import TunecheckEngine
import TunecheckJSON
import TunecheckTrainer

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure scoring, decoding and training speed (run on demand; build with -c release).",
        discussion: """
        Tasks: score (B sequences × T tokens of prefill with per-token log-probs), decode (batch-1 greedy generation \
        of N tokens after a P-token prompt, KV cache on), train (one LoRA step, rank 8 on all linear layers, \
        AdamW, on B × T tokens; --mode sft or dpo). Models: --shape s15m|s110m|q05b writes a random-initialised \
        llama folder of that shape, --shape h110m a Granite 4.0-H-style Mamba2/attention hybrid of s110m's size, \
        --shape l3b|m7b the real-size Llama-3.2-3B / Mistral-7B shapes in bfloat16 (6.4 / 14.5 GB, streamed to disk) \
        (cached under --cache-dir), or --model DIR. Each run prints one JSON line: task, \
        shape, seconds (best of --repeats after a warm-up), tokens_per_s, achieved GFLOP/s, its ratio to a measured \
        sgemm peak on this machine, peak resident and peak anonymous memory, load time, and for decode the weight \
        bandwidth achieved (GB/s). Peer scripts in ci/bench/ print the same fields for \
        PyTorch and llama.cpp.

        Examples:
          swift build -c release && .build/release/tunecheck bench score --shape s15m
          .build/release/tunecheck bench decode --shape s110m --prompt 32 --tokens 64
          .build/release/tunecheck bench train --shape s15m --mode dpo
          .build/release/tunecheck bench score --shape h110m      # hybrid, compare with s110m
          .build/release/tunecheck bench decode --shape l3b --cache-dir /work/bench-cache --tokens 32
        """
    )

    enum Task: String, ExpressibleByArgument, CaseIterable { case score, decode, train }

    @Argument(help: "score, decode or train.")
    var task: Task

    @Option(name: .long, help: "A random-initialised benchmark shape.")
    var shape: BenchShape?

    @Option(name: .long, help: ArgumentHelp("A model folder instead of a shape.", valueName: "dir"))
    var model: String?

    @Option(name: .long, help: "Sequences per batch (score default 8, train default 2).")
    var batch: Int?

    @Option(name: .long, help: "Tokens per sequence (default 256).")
    var seq = 256

    @Option(name: .long, help: "Prompt tokens for decode.")
    var prompt = 32

    @Option(name: .long, help: "New tokens for decode.")
    var tokens = 64

    @Option(name: .long, help: "The training method, for train.")
    var mode = TrainingConfiguration.Mode.sft

    @Flag(name: .customLong("bf16-weights"), help: "Round float32 linear weights to a bfloat16 copy (float32 sums; score and decode only). bf16 folders need no flag: they are read as stored.")
    var bf16Weights = false

    @Option(name: .long, help: "Timed repetitions (the best is reported).")
    var repeats = 3

    @Option(name: .long, help: ArgumentHelp("Where generated shape folders are kept.", valueName: "dir"))
    var cacheDir = ".build-bench/models"

    func validate() throws {
        guard (shape == nil) != (model == nil) else { throw ValidationError("give --shape or --model") }
        if let shape, shape.shape == nil { throw ValidationError("--shape \(shape.rawValue) has no ModelShape") }
        if bf16Weights && task == .train { throw ValidationError("--bf16-weights is for score and decode (training uses float32 weights)") }
        guard seq >= 2, prompt >= 1, tokens >= 1, repeats >= 1 else { throw ValidationError("sizes must be positive") }
    }

    func run() throws {
        let folder: URL
        var shapeName = "custom"
        if let shape, let known = shape.shape {
            shapeName = shape.rawValue
            folder = URL(fileURLWithPath: cacheDir).appendingPathComponent(shape.rawValue)
            if !FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) {
                FileHandle.standardError.write(Data("writing a random \(shape.rawValue) model to \(folder.path)\n".utf8))
                try RandomModel.write(known, to: folder)
            }
        } else {
            folder = URL(fileURLWithPath: model!)
            shapeName = folder.lastPathComponent
        }
        let sampler = MemorySampler()
        let loadStart = Date()
        let loaded = try ModelLoader.loadDecoder(folder: folder)
        let decoder = bf16Weights ? loaded.withBFloat16Weights() : loaded
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let spec = decoder.spec
        var generator = SeededGenerator(seed: 42)
        func randomIds(_ count: Int) -> [Int] { (0..<count).map { _ in Int.random(in: 3..<spec.vocabularySize, using: &generator) } }
        let linearParameters = ModelArithmetic.linearParametersPerToken(spec)
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
            flops = 2 * Double(linearParameters) * Double(processed) + ModelArithmetic.tokenMixingFlops(spec, length: seq) * Double(batchSize)
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
            flops = 2 * Double(linearParameters) * Double(prompt + tokens)
            let decodeSeconds = max(best - bestPrefill, 1e-9)
            let decodeRate = Double(tokens - 1) / decodeSeconds
            let bytesPerWeight = bf16Weights ? 2 : decoder.store.dominantDType.byteSize
            extra = [("prompt", .from(prompt)), ("tokens", .from(tokens)), ("prefill_seconds", .from(bestPrefill)),
                     ("decode_only_tokens_per_s", .from(decodeRate)),
                     ("decode_gb_per_s", .from(decodeRate * ModelArithmetic.weightBytesPerToken(spec, bytesPerWeight: bytesPerWeight) / 1e9))]
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
            // Forward 2·P·N, backward ≈ 2·P·N for input gradients (weight gradients are LoRA-only), plus attention ×3.
            flops = 4 * Double(linearParameters) * Double(processed) + 3 * ModelArithmetic.tokenMixingFlops(spec, length: seq) * Double(sequences.count)
            extra = [("batch", .from(batchSize)), ("seq", .from(seq)), ("mode", .string(mode.rawValue)), ("lora_rank", .from(8))]
        }
        // Peak memory of the task itself, before the sgemm measurement's three 16 MB matrices.
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peaks = sampler.stop()
        let peak = Self.measureSgemmPeak()
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
        line.set("weights_mb", .from(Double(ModelArithmetic.parameterCount(spec) * (bf16Weights ? 2 : decoder.store.dominantDType.byteSize)) / 1_048_576))
        line.set("load_seconds", .from(loadSeconds))
        line.set("threads", .from(Int(openblas_get_num_threads())))
        print(JSONWriter.string(.object(line)))
    }

    /// Best of a few 2048³ sgemm calls, in GFLOP/s.
    static func measureSgemmPeak() -> Double {
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
