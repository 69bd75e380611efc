import FuzzSupport

/// A mlx adapter_config.json beside real adapter weights (see AdapterFuzzTarget).
private let target = AdapterFuzzTarget(name: "adapter-mlx", weights: "Tests/Fixtures/adapters/mlx-llama/adapters.safetensors")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdapter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target.test(data, size)
}

@_cdecl("fuzz_adapter_mlx_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzAdapter)
}
