import Foundation
import FuzzSupport
import TunecheckTrainer

/// Training configs (mlx_lm-style YAML), with and without command-line overrides.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrainingConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: Fuzz.scratch.appendingPathComponent("train.yaml"))
    Fuzz.run { _ = try TrainingConfiguration.load(url) }
    Fuzz.run { _ = try TrainingConfiguration.load(url, overrides: ["iters=3", "lora_parameters={rank: 2}"]) }
    return 0
}
