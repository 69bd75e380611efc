import Foundation
import FuzzSupport
import TunecheckTokenizers

/// `tokenizer.json` loading, then encoding and decoding of fuzzed text. Input: tokenizer.json bytes, a NUL byte,
/// then the text (a JSON file cannot hold a raw NUL, so the split is unambiguous).
private let folder = Fuzz.folder("tokenizer")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let (json, textBytes) = Fuzz.splitAtNUL(UnsafeRawBufferPointer(start: data, count: size))
    let url = Fuzz.write(json, to: folder.appendingPathComponent("tokenizer.json"))
    Fuzz.run {
        let tokenizer = try Tokenizer(tokenizerJSONAt: url, configAt: nil)
        let text = String(decoding: textBytes, as: UTF8.self)
        let ids = tokenizer.encode(text, addSpecialTokens: true)
        Fuzz.run { _ = try tokenizer.decode(ids) }
        Fuzz.run { _ = try tokenizer.decode(ids, skipSpecialTokens: true) }
        // Ids the text bytes spell (in and out of range) must decode or be rejected, never trap.
        let raw = textBytes.prefix(64).map { Int($0) * 257 }
        Fuzz.run { _ = try tokenizer.decode(raw + [tokenizer.vocabularySize, Int.max]) }
        _ = tokenizer.encode(text, addSpecialTokens: false)
    }
    return 0
}

@_cdecl("fuzz_tokenizer_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzTokenizer)
}
