import FuzzSupport

/// A peft adapter_config.json beside real adapter weights (see AdapterFuzzTarget).
private let target = AdapterFuzzTarget(name: "adapter-peft", weights: "Tests/Fixtures/adapters/peft-llama/adapter_model.safetensors")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdapter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target.test(data, size)
}

@_cdecl("fuzz_adapter_peft_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzAdapter)
}
