import Foundation
import FuzzSupport
import TunecheckEngine
import TunecheckHarness

/// Evalset and answers JSONL: the line reader and every evalset kind's field and duplicate-id checks.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEvalset(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: Fuzz.scratch.appendingPathComponent("evalset.jsonl"))
    Fuzz.run { _ = try JSONLines.read(url, allowEmpty: true) }
    Fuzz.run { _ = try EvalsetLoader.prompts(url) }
    Fuzz.run { _ = try EvalsetLoader.pairs(url) }
    Fuzz.run { _ = try EvalsetLoader.texts(url) }
    Fuzz.run { _ = try EvalsetLoader.answers(url) }
    return 0
}

@_cdecl("fuzz_evalset_jsonl_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzEvalset)
}
