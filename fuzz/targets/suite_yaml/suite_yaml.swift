import Foundation
import FuzzSupport
import TunecheckHarness

/// Suite files (YAML; the same bytes are also tried as a `.json` suite).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSuite(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let yaml = Fuzz.write(bytes, to: Fuzz.scratch.appendingPathComponent("suite.yaml"))
    Fuzz.run { _ = try SuiteConfiguration.load(yaml) }
    let json = Fuzz.write(bytes, to: Fuzz.scratch.appendingPathComponent("suite.json"))
    Fuzz.run { _ = try SuiteConfiguration.load(json) }
    return 0
}

@_cdecl("fuzz_suite_yaml_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzSuite)
}
