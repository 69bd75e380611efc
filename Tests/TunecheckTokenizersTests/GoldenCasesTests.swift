import Foundation
import Testing
@testable import TunecheckTokenizers

/// Every reference case must match transformers exactly: ids, decoded text, and decoded text
/// without special tokens. A failure names the first mismatching case, and counts the rest.
private func checkAllCases(of name: String, tokenizer: Tokenizer? = nil) throws {
    let tokenizer = try tokenizer ?? Fixtures.tokenizer(name)
    let cases = try Fixtures.cases(name)
    #expect(!cases.isEmpty, "\(name): no cases")
    var mismatches: [String] = []
    for testCase in cases {
        let ids = tokenizer.encode(testCase.text)
        if ids != testCase.ids {
            let tokens = ids.map { tokenizer.token(forId: $0) ?? "?" }
            mismatches.append("case \(testCase.index) \"\(visible(testCase.text))\": ids \(ids) \(tokens.map(visible)) expected \(testCase.ids) \(testCase.tokens.map(visible))")
            continue
        }
        let decoded = try tokenizer.decode(testCase.ids)
        if decoded != testCase.decoded {
            mismatches.append("case \(testCase.index) \"\(visible(testCase.text))\": decoded \"\(visible(decoded))\" expected \"\(visible(testCase.decoded))\"")
            continue
        }
        let skipped = try tokenizer.decode(testCase.ids, skipSpecialTokens: true)
        if skipped != testCase.decoded_skip_special {
            mismatches.append("case \(testCase.index) \"\(visible(testCase.text))\": decoded (skip special) \"\(visible(skipped))\" expected \"\(visible(testCase.decoded_skip_special))\"")
        }
    }
    #expect(mismatches.isEmpty, "\(name): \(mismatches.count) of \(cases.count) cases mismatch; first: \(mismatches.first ?? "")")
}

@Suite("Golden cases: shared fixtures")
struct SharedGoldenCasesTests {
    @Test(Fixtures.sharedRequired("shared tokenizer fixtures"),
          arguments: Fixtures.sharedTokenizerNames)
    func matchesTransformers(name: String) throws {
        try checkAllCases(of: name)
    }
}

@Suite("Golden cases: own fixtures")
struct LocalGoldenCasesTests {
    @Test(arguments: Fixtures.localTokenizerNames)
    func matchesTransformers(name: String) throws {
        try checkAllCases(of: name)
    }
}

@Suite("Golden cases: LlamaTokenizer class")
struct LlamaClassGoldenCasesTests {
    /// The legacy-layout tokenizer.json under a `LlamaTokenizer` config (legacy true): transformers 5
    /// rebuilds the pipeline from the class, and so must we.
    @Test func legacyFileUnderLlamaTokenizerClass() throws {
        let tokenizer = try Tokenizer(
            tokenizerJSONAt: Fixtures.directory("mistral-sp-legacy").appendingPathComponent("tokenizer.json"),
            configAt: Fixtures.directory("mistral-sp-llama-class").appendingPathComponent("tokenizer_config.json"))
        try checkAllCases(of: "mistral-sp-llama-class", tokenizer: tokenizer)
    }
}
