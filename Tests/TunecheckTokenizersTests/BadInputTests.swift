import Foundation
import TunecheckJSON
import Testing
@testable import TunecheckTokenizers

/// Broken files must produce a `TokenizerError` that names the file and the problem, never a crash.
@Suite("Bad input")
struct BadInputTests {
    /// A fresh directory holding the given files.
    private func directory(with files: [String: String]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (name, contents) in files {
            try Data(contents.utf8).write(to: url.appendingPathComponent(name))
        }
        return url
    }

    /// A minimal valid tokenizer.json with the given model and pre-tokenizer JSON.
    private func tokenizerJSON(model: String = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#,
                               preTokenizer: String = "null", decoder: String = "null", normalizer: String = "null") -> String {
        #"{"version": "1.0", "added_tokens": [], "normalizer": \#(normalizer), "pre_tokenizer": \#(preTokenizer), "post_processor": null, "decoder": \#(decoder), "model": \#(model)}"#
    }

    private func expectError(_ files: [String: String], check: (TokenizerError, String) -> Bool) throws {
        let url = try directory(with: files)
        defer { try? FileManager.default.removeItem(at: url) }
        let tokenizerPath = url.appendingPathComponent("tokenizer.json").path
        do {
            _ = try Tokenizer.load(directory: url)
            Issue.record("loading succeeded but should have failed")
        } catch let error as TokenizerError {
            #expect(check(error, tokenizerPath), "unexpected error \(error)")
            #expect(error.errorDescription?.contains(tokenizerPath) == true, "message does not name the file: \(error.localizedDescription)")
        }
    }

    @Test func minimalTokenizerLoads() throws {
        let url = try directory(with: ["tokenizer.json": tokenizerJSON()])
        defer { try? FileManager.default.removeItem(at: url) }
        let tokenizer = try Tokenizer.load(directory: url)
        #expect(tokenizer.encode("abba") == [2, 1, 0])
        #expect(tokenizer.vocabularySize == 3)
        #expect(tokenizer.bosTokenId == nil)
        #expect(!tokenizer.addsBosToken)
    }

    @Test func missingFile() throws {
        try expectError([:]) { error, path in
            if case .unreadable(let errorPath, _) = error { return errorPath == path }
            return false
        }
    }

    @Test func invalidJSON() throws {
        try expectError(["tokenizer.json": #"{"model": {"type": "BPE", "vocab": {"a": 0}"#]) { error, path in
            if case .invalidJSON(let errorPath, _) = error { return errorPath == path }
            return false
        }
    }

    @Test func topLevelNotAnObject() throws {
        try expectError(["tokenizer.json": "[1, 2, 3]"]) { error, _ in
            if case .invalidJSON = error { return true }
            return false
        }
    }

    @Test(arguments: ["WordPiece", "Unigram", "WordLevel"])
    func unsupportedModelType(type: String) throws {
        try expectError(["tokenizer.json": tokenizerJSON(model: #"{"type": "\#(type)", "vocab": {"a": 0}}"#)]) { error, path in
            error == .unsupported(path: path, component: "model", type: type)
        }
    }

    @Test func unsupportedPreTokenizer() throws {
        try expectError(["tokenizer.json": tokenizerJSON(preTokenizer: #"{"type": "UnicodeScripts"}"#)]) { error, path in
            error == .unsupported(path: path, component: "pre-tokenizer", type: "UnicodeScripts")
        }
    }

    @Test func unsupportedNormalizer() throws {
        try expectError(["tokenizer.json": tokenizerJSON(normalizer: #"{"type": "Precompiled", "precompiled_charsmap": ""}"#)]) { error, path in
            error == .unsupported(path: path, component: "normalizer", type: "Precompiled")
        }
    }

    @Test func unsupportedDecoder() throws {
        try expectError(["tokenizer.json": tokenizerJSON(decoder: #"{"type": "CTC"}"#)]) { error, path in
            error == .unsupported(path: path, component: "decoder", type: "CTC")
        }
    }

    @Test func mergeOfTokensOutsideTheVocabulary() throws {
        let model = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "a c"]}"#
        try expectError(["tokenizer.json": tokenizerJSON(model: model)]) { error, path in
            if case .malformedMerge(let errorPath, let index, _, let reason) = error {
                return errorPath == path && index == 1 && reason.contains("'c'")
            }
            return false
        }
    }

    @Test func mergeWithoutASeparator() throws {
        let model = #"{"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}"#
        try expectError(["tokenizer.json": tokenizerJSON(model: model)]) { error, _ in
            if case .malformedMerge = error { return true }
            return false
        }
    }

    @Test func dropoutIsRejected() throws {
        let model = #"{"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}"#
        try expectError(["tokenizer.json": tokenizerJSON(model: model)]) { error, _ in
            if case .unsupported(_, "BPE option", _) = error { return true }
            return false
        }
    }

    @Test func missingVocabulary() throws {
        try expectError(["tokenizer.json": tokenizerJSON(model: #"{"type": "BPE", "merges": []}"#)]) { error, path in
            error == .missingField(path: path, field: "model.vocab")
        }
    }

    @Test func invalidConfigNamesTheConfigFile() throws {
        let url = try directory(with: ["tokenizer.json": tokenizerJSON(), "tokenizer_config.json": "{not json"])
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: url) }
        do {
            _ = try Tokenizer.load(directory: url)
        } catch {
            #expect(error.localizedDescription.contains("tokenizer_config.json"))
        }
    }

    /// Ids past the vocabulary (padded embedding rows) are skipped as `tokenizers` does; negative ids throw.
    @Test func idsBeyondTheVocabularyAreSkippedOnDecode() throws {
        let url = try directory(with: ["tokenizer.json": tokenizerJSON()])
        defer { try? FileManager.default.removeItem(at: url) }
        let tokenizer = try Tokenizer.load(directory: url)
        #expect(try tokenizer.decode([0, 7]) == tokenizer.decode([0]))
        #expect(try tokenizer.decode([7, 0, 151_935]) == tokenizer.decode([0]))
        #expect(try tokenizer.decode([7]) == "")
        #expect(throws: TokenizerError.unknownTokenId(-1)) { try tokenizer.decode([-1]) }
    }

    @Test(arguments: ["", "{", "[", "\"abc", "{\"a\":}", "{\"a\": 1,}", "nul", "{\"a\": \"\\u12\"}", String(repeating: "[", count: 100_000)])
    func malformedJSONNeverCrashes(text: String) {
        #expect(throws: (any Error).self) { try JSONParser.parse(Array(text.utf8)) }
    }
}
