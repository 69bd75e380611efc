import ArgumentParser
import Foundation
import TunecheckEngine

/// The dtypes `fuse --dtype` writes.
enum OutputDType: String, ExpressibleByArgument, CaseIterable {
    case float32, bfloat16, float16

    var dtype: DType {
        switch self {
        case .float32: return .float32
        case .bfloat16: return .bfloat16
        case .float16: return .float16
        }
    }
}

struct FuseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuse",
        abstract: "Merge a LoRA adapter into its base model and write a complete model folder.",
        discussion: """
        Writes W' = W + scale·(lora_a·lora_b)ᵀ (mlx_lm) = W + scale·lora_B·lora_A (PEFT) for every adapted weight \
        (transposed for GPT-2 Conv1D weights), merged in float32, and copies every other tensor of the base. The \
        output is a folder transformers, mlx_lm and tunecheck load: the base's safetensors file names (and shard \
        index), config.json (dtype updated when --dtype changes it), tokenizer files, generation_config.json, chat \
        template and other small files. Tensors keep their stored dtype unless --dtype is given.
        On an mlx affine-quantized base (mlx_lm -4bit/-8bit, QLoRA), as mlx_lm.fuse: each fused layer is dequantized, \
        merged in its float dtype and re-quantized with its own group size and bits; other tensors are copied byte \
        for byte and config.json keeps its quantization. --dequantize writes a float folder instead (the scales' \
        dtype, or --dtype) without the quantization entries.
        The adapter is checked against the base first; the folder is built beside --output and renamed into place, \
        so a failure leaves nothing behind. An existing --output is refused unless --force.

        Example:
          tunecheck fuse --model models/base --adapter runs/lora/checkpoint-500 --output models/fused
          tunecheck fuse --model models/base --adapter adapters/0000100_adapters.safetensors --output fused --dtype bfloat16
        """
    )

    @Option(name: .long, help: ArgumentHelp("Base model folder.", valueName: "dir"))
    var model: String

    @Option(name: .long, help: ArgumentHelp(
        "LoRA adapter: an mlx_lm or PEFT adapter folder, a Trainer checkpoint-N folder, or one numbered mlx_lm checkpoint file.",
        valueName: "path"))
    var adapter: String

    @Option(name: .long, help: ArgumentHelp("Output model folder (must not exist unless --force).", valueName: "dir"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("Store every tensor in this dtype (default: keep each tensor's stored dtype).", valueName: "float32|bfloat16|float16"))
    var dtype: OutputDType?

    @Flag(name: .long, help: "On a quantized base, write every layer dequantized (a float folder), as mlx_lm.fuse --dequantize.")
    var dequantize = false

    @Flag(name: .long, help: "Replace an existing output folder (only once the new one is complete).")
    var force = false

    func run() throws {
        let loaded = try Adapter.load(path: URL(fileURLWithPath: adapter))
        let report = try AdapterFuser.fuse(baseFolder: URL(fileURLWithPath: model), adapter: loaded, output: URL(fileURLWithPath: output),
                                           dtype: dtype?.dtype, dequantize: dequantize, replacing: force)
        let dtypeText = report.dtype.map { " as \($0.configName)" } ?? ""
        print("fused \(report.fusedTensors.count) of \(report.tensorCount) tensors (\(loaded.format.rawValue) adapter \(loaded.weightsURL.path))\(dtypeText) into \(output)")
    }
}
