import Foundation
import FuzzSupport
import TunecheckEngine

/// `config.json`, `generation_config.json` and `model.safetensors.index.json` decoding. The config is then loaded
/// against a real tiny model's weights, so a config whose sizes do not fit the tensors must be rejected without
/// allocating from the fuzzed sizes.
private let modelFolder: URL = {
    let folder = Fuzz.folder("model")
    Fuzz.link("models/tiny-default/model.safetensors", into: folder)
    return folder
}()
private let indexFolder = Fuzz.folder("index")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    Fuzz.write(bytes, to: modelFolder.appendingPathComponent("config.json"))
    Fuzz.write(bytes, to: modelFolder.appendingPathComponent("generation_config.json"))
    Fuzz.run { _ = try ModelConfigLoader.loadSpec(configURL: modelFolder.appendingPathComponent("config.json")) }
    Fuzz.run { _ = try GenerationConfig.load(folder: modelFolder) }
    Fuzz.run { _ = try ModelLoader.loadDecoder(folder: modelFolder) }
    Fuzz.write(bytes, to: indexFolder.appendingPathComponent("model.safetensors.index.json"))
    Fuzz.run { _ = try WeightStore(folder: indexFolder) }
    return 0
}

@_cdecl("fuzz_model_config_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzModelConfig)
}
