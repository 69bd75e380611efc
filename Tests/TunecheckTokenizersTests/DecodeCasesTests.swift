import Foundation
import Testing
@testable import TunecheckTokenizers

/// Decoding id prefixes that end inside a multi-byte character must produce U+FFFD exactly where
/// transformers does (byte-level: one per maximal invalid sequence; byte fallback: one per byte).
@Suite("Decode of partial characters")
struct DecodeCasesTests {
    struct DecodeCase: Decodable {
        let ids: [Int]
        let decoded: String
        let decoded_skip_special: String
    }

    @Test(arguments: Fixtures.localTokenizerNames)
    func partialCharactersDecodeLikeTransformers(name: String) throws {
        let tokenizer = try Fixtures.tokenizer(name)
        let data = try Data(contentsOf: Fixtures.directory(name).appendingPathComponent("decode_cases.json"))
        let cases = try JSONDecoder().decode([DecodeCase].self, from: data)
        #expect(!cases.isEmpty)
        for (index, testCase) in cases.enumerated() {
            let decoded = try tokenizer.decode(testCase.ids)
            let skipped = try tokenizer.decode(testCase.ids, skipSpecialTokens: true)
            #expect(decoded == testCase.decoded, "\(name) decode case \(index) \(testCase.ids): \"\(visible(decoded))\" expected \"\(visible(testCase.decoded))\"")
            #expect(skipped == testCase.decoded_skip_special, "\(name) decode case \(index) (skip special)")
            if decoded != testCase.decoded { break }
        }
    }
}
