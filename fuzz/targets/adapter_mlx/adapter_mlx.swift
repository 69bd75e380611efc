import Foundation
import FuzzSupport
import TunecheckEngine

/// An mlx adapter_config.json beside real adapter weights, loaded and attached to the fixture's base model
/// (so configs naming other layers, ranks or modules than the weights and base hold are exercised).
private let folder: URL = {
    let folder = Fuzz.folder("adapter-mlx")
    Fuzz.link("Tests/Fixtures/adapters/mlx-llama/adapters.safetensors", into: folder)
    return folder
}()
private let base: DecoderModel? = try? ModelLoader.loadDecoder(
    folder: Fuzz.repositoryRoot.appendingPathComponent("Tests/Fixtures/models/llama-rope-llama3-old-schema"))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdapter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    precondition(base != nil, "the base fixture did not load; set TUNECHECK_ROOT")
    Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: folder.appendingPathComponent("adapter_config.json"))
    Fuzz.run {
        let adapter = try Adapter.load(path: folder)
        _ = try adapter.attach(to: base!)
    }
    return 0
}

@_cdecl("fuzz_adapter_mlx_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzAdapter)
}
