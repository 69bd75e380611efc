import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckBenchmarks
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
        (kept under --models-dir), or --model DIR. Each run prints one JSON line: task, \
        shape, seconds (best of --repeats after a warm-up), tokens_per_s, achieved GFLOP/s, its ratio to a measured \
        sgemm peak on this machine, peak resident and peak anonymous memory, load time, and for decode the weight \
        bandwidth achieved (GB/s). Peer scripts in ci/bench/ print the same fields for \
        PyTorch and llama.cpp. sha256 loads no model: it hashes the folder's .safetensors files as the \
        base-result cache does (SHA-NI path and portable C loop) and prints MB/s and the load average.

        Examples:
          swift build -c release && .build/release/tunecheck bench score --shape s15m
          .build/release/tunecheck bench decode --shape s110m --prompt 32 --tokens 64
          .build/release/tunecheck bench train --shape s15m --mode dpo
          .build/release/tunecheck bench score --shape h110m      # hybrid, compare with s110m
          .build/release/tunecheck bench decode --shape l3b --models-dir /work/bench-cache --tokens 32
          .build/release/tunecheck bench decode --shape l3b --models-dir /work/bench-cache --quantize 4   # mlx 4-bit
          .build/release/tunecheck bench sha256 --model models/base
        """
    )

    @Argument(help: "score, decode, train or sha256.")
    var task: Benchmark.Task

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

    @Option(name: .long, help: ArgumentHelp(
        "Quantize the model the mlx way (affine, groups of 64, as mlx_lm.convert -q) to this many bits first; the quantized "
            + "folder is written once beside the float one in --models-dir (<shape>-q<bits>).", valueName: "bits"))
    var quantize: Int?

    @Option(name: .long, help: "Timed repetitions (the best is reported).")
    var repeats = 3

    @Option(name: .long, help: ArgumentHelp("Where generated shape folders are kept (not the base-result cache of eval's --cache-dir).", valueName: "dir"))
    var modelsDir = ".build-bench/models"

    func validate() throws {
        guard (shape == nil) != (model == nil) else { throw ValidationError("give --shape or --model") }
        if let shape, shape.shape == nil { throw ValidationError("--shape \(shape.rawValue) has no ModelShape") }
        if let quantize, ![2, 3, 4, 5, 6, 8].contains(quantize) { throw ValidationError("--quantize takes 2, 3, 4, 5, 6 or 8 bits") }
        if quantize != nil && bf16Weights { throw ValidationError("--quantize and --bf16-weights exclude each other") }
        if bf16Weights && task == .train { throw ValidationError("--bf16-weights is for score and decode (training uses float32 weights)") }
        guard seq >= 2, prompt >= 1, tokens >= 1, repeats >= 1 else { throw ValidationError("sizes must be positive") }
    }

    func run() throws {
        var folder: URL
        var shapeName = "custom"
        if let shape, let known = shape.shape {
            shapeName = shape.rawValue
            folder = URL(fileURLWithPath: modelsDir).appendingPathComponent(shape.rawValue)
            if !FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) {
                FileHandle.standardError.write(Data("writing a random \(shape.rawValue) model to \(folder.path)\n".utf8))
                try RandomModel.write(known, to: folder)
            }
        } else {
            folder = URL(fileURLWithPath: model!)
            shapeName = folder.lastPathComponent
        }
        if let quantize {
            let quantized = URL(fileURLWithPath: modelsDir).appendingPathComponent("\(shapeName)-q\(quantize)")
            if !FileManager.default.fileExists(atPath: quantized.appendingPathComponent("config.json").path) {
                FileHandle.standardError.write(Data("writing a \(quantize)-bit quantized copy of \(folder.path) to \(quantized.path)\n".utf8))
                try QuantizedModel.write(from: folder, to: quantized, bits: quantize)
            }
            folder = quantized
            shapeName += "-q\(quantize)"
        }
        var settings = Benchmark.Settings(task: task)
        settings.batch = batch
        settings.sequenceLength = seq
        settings.prompt = prompt
        settings.tokens = tokens
        settings.mode = mode
        settings.bf16Weights = bf16Weights
        settings.repeats = repeats
        print(JSONWriter.string(.object(try Benchmark.run(settings, folder: folder, shapeName: shapeName))))
    }
}

extension Benchmark.Task: ExpressibleByArgument {}
