import Foundation
import TunecheckEngine

/// An adapter_config.json (the fuzz input) beside real adapter weights, loaded and attached to the fixture's base
/// model, so configs naming other layers, ranks or modules than the weights and base hold are exercised. The mlx_lm
/// and PEFT targets differ only in the weights file.
public final class AdapterFuzzTarget: @unchecked Sendable {
    let folder: URL
    let base: DecoderModel?

    /// `weights`: the adapter weights file, relative to the repository root.
    public init(name: String, weights: String) {
        folder = Fuzz.folder(name)
        Fuzz.link(weights, into: folder)
        base = try? ModelLoader.loadDecoder(
            folder: Fuzz.repositoryRoot.appendingPathComponent("Tests/Fixtures/models/llama-rope-llama3-old-schema"))
    }

    public func test(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        guard let data else { return 0 }
        precondition(base != nil, "the base fixture did not load; set TUNECHECK_ROOT")
        Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: folder.appendingPathComponent("adapter_config.json"))
        Fuzz.run {
            let adapter = try Adapter.load(path: folder)
            _ = try adapter.attach(to: base!)
        }
        return 0
    }
}
