import Foundation
import FuzzSupport
import TunecheckEngine

/// The safetensors header and tensor table: parse, then read every tensor as float weights (widening F16/BF16,
/// the finiteness scan), as a model or adapter load would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: Fuzz.scratch.appendingPathComponent("model.safetensors"))
    Fuzz.run {
        let store = try WeightStore(files: [url])
        for name in store.tensorNames {
            Fuzz.run {
                let tensor = try store.floatTensor(name)
                _ = tensor.buffer.reduce(0, +)
            }
        }
    }
    return 0
}

@_cdecl("fuzz_safetensors_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzSafetensors)
}
