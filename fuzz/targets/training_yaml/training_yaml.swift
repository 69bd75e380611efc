import Foundation
import FuzzSupport
import TunecheckTrainer

/// Training configs (mlx_lm-style YAML), with and without command-line overrides.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrainingConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: Fuzz.scratch.appendingPathComponent("train.yaml"))
    Fuzz.run { _ = try TrainingConfiguration.load(url) }
    Fuzz.run { _ = try TrainingConfiguration.load(url, overrides: ["iters=3", "lora_parameters={rank: 2}"]) }
    return 0
}

@_cdecl("fuzz_training_yaml_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzTrainingConfig)
}
