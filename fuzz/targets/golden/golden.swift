import Foundation
import FuzzSupport
import TunecheckHarness

/// Golden files (`golden/<suite>/<checkpoint>.json`): load, and write back what loaded (round trip).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGolden(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: Fuzz.scratch.appendingPathComponent("golden.json"))
    Fuzz.run {
        let golden = try GoldenFile.load(url)
        let copy = Fuzz.scratch.appendingPathComponent("golden-copy.json")
        try golden.write(to: copy)
        let reloaded = try GoldenFile.load(copy)
        precondition(reloaded == golden, "golden file round trip changed the content")
    }
    return 0
}

@_cdecl("fuzz_golden_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzGolden)
}
