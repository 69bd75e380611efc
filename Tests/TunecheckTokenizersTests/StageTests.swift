import Foundation
import TunecheckJSON
import Testing
@testable import TunecheckTokenizers

/// Builds a stage from a JSON snippet, as it would appear in tokenizer.json.
private func node(_ json: String) throws -> JSONNode {
    guard let object = try JSONParser.parse(Array(json.utf8)).object else { throw TokenizerError.invalidJSON(path: "test", reason: "not an object") }
    return JSONNode(object: object, path: "test.json", keyPath: "")
}

private func string(_ scalars: [Unicode.Scalar]) -> String {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return String(view)
}

@Suite("Normalizers")
struct NormalizerTests {
    @Test func legacySentencePieceLayoutPrependsAndReplaces() throws {
        let normalizer = try Normalizer.parse(node(#"{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}"#))
        #expect(normalizer.normalize("Hello world") == "▁Hello▁world")
        #expect(normalizer.normalize("") == "")
    }

    @Test func replaceWorksOnScalarsNotGraphemes() throws {
        // " \u{301}" is one grapheme cluster; a Character-based replace would miss the space.
        let normalizer = try Normalizer.parse(node(#"{"type": "Replace", "pattern": {"String": " "}, "content": "_"}"#))
        #expect(normalizer.normalize("a \u{301}b").unicodeScalars.elementsEqual("a_\u{301}b".unicodeScalars))
    }

    @Test func unicodeForms() throws {
        #expect(try Normalizer.parse(node(#"{"type": "NFC"}"#)).normalize("cafe\u{301}").unicodeScalars.elementsEqual("caf\u{e9}".unicodeScalars))
        #expect(try Normalizer.parse(node(#"{"type": "NFKC"}"#)).normalize("\u{FB01}").unicodeScalars.elementsEqual("fi".unicodeScalars))
        #expect(try Normalizer.parse(node(#"{"type": "Lowercase"}"#)).normalize("ÀB") == "àb")
        #expect(try Normalizer.parse(node(#"{"type": "Strip", "strip_left": true, "strip_right": false}"#)).normalize("  a  ") == "a  ")
    }
}

@Suite("Pre-tokenizers")
struct PreTokenizerTests {
    private func run(_ json: String, _ text: String, startsText: Bool = true) throws -> [String] {
        let preTokenizer = try PreTokenizer.parse(node(json))
        return preTokenizer.preTokenize([PreTokenizedPiece(scalars: Array(text.unicodeScalars), startsText: startsText)]).map { string($0.scalars) }
    }

    @Test func byteLevelMapsBytesToPrintableScalars() throws {
        #expect(try run(#"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#, "Hi there\n") == ["Hi", "Ġthere", "Ċ"])
        #expect(try run(#"{"type": "ByteLevel", "add_prefix_space": true, "use_regex": false}"#, "é") == ["ĠÃ©"])
    }

    @Test func metaspacePrependSchemes() throws {
        let first = #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}"#
        #expect(try run(first, "a b") == ["▁a▁b"])
        #expect(try run(first, "a b", startsText: false) == ["a▁b"])
        #expect(try run(first, " a") == ["▁a"])
        let splitting = #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}"#
        #expect(try run(splitting, "a b  c") == ["▁a", "▁b", "▁", "▁c"])
    }

    @Test func splitBehaviours() throws {
        func split(_ behavior: String, invert: Bool = false) throws -> [String] {
            try run(#"{"type": "Split", "pattern": {"String": "-"}, "behavior": "\#(behavior)", "invert": \#(invert)}"#, "a-b--c")
        }
        #expect(try split("Removed") == ["a", "b", "c"])
        #expect(try split("Isolated") == ["a", "-", "b", "-", "-", "c"])
        // Expected values from `tokenizers` 0.23: each "-" is its own match, so only the first of
        // two adjacent matches merges.
        #expect(try split("MergedWithPrevious") == ["a-", "b-", "-", "c"])
        #expect(try split("MergedWithNext") == ["a", "-b", "-", "-c"])
        #expect(try split("MergedWithPrevious", invert: true) == ["a", "-b", "-", "-c"])
        #expect(try split("MergedWithNext", invert: true) == ["a-", "b-", "-", "c"])
        #expect(try split("Contiguous") == ["a", "-", "b", "--", "c"])
        #expect(try split("Removed", invert: true) == ["-", "-", "-"])
    }

    @Test func digitsWhitespaceAndPunctuation() throws {
        #expect(try run(#"{"type": "Digits", "individual_digits": true}"#, "a12b") == ["a", "1", "2", "b"])
        #expect(try run(#"{"type": "Digits", "individual_digits": false}"#, "a12b") == ["a", "12", "b"])
        #expect(try run(#"{"type": "WhitespaceSplit"}"#, " a  b\tc ") == ["a", "b", "c"])
        #expect(try run(#"{"type": "Whitespace"}"#, "Hey, you!") == ["Hey", ",", "you", "!"])
        #expect(try run(#"{"type": "Punctuation", "behavior": "Isolated"}"#, "a,b") == ["a", ",", "b"])
    }
}

@Suite("BPE model")
struct BPEModelTests {
    private func model(_ json: String) throws -> BPEModel { try BPEModel(node(json)) }

    private func tokenize(_ model: BPEModel, _ word: String) -> [Int] {
        var ids: [Int] = []
        model.tokenize(Array(word.unicodeScalars), into: &ids)
        return ids
    }

    @Test func mergesApplyByRankNotPosition() throws {
        // "b c" outranks "a b", so "abc" becomes a + bc even though "ab" is leftmost.
        let bpe = try model(#"{"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4}, "merges": [["b", "c"], ["a", "b"]]}"#)
        #expect(tokenize(bpe, "abc") == [0, 4])
        #expect(tokenize(bpe, "abab") == [3, 3])
        #expect(tokenize(bpe, "") == [])
    }

    @Test func bothMergeFormsAgree() throws {
        let strings = try model(#"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "aba": 3}, "merges": ["a b", "ab a"]}"#)
        let pairs = try model(#"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "aba": 3}, "merges": [["a", "b"], ["ab", "a"]]}"#)
        for word in ["aba", "abab", "ba", "aaba"] { #expect(tokenize(strings, word) == tokenize(pairs, word)) }
        #expect(tokenize(strings, "aba") == [3])
    }

    @Test func ignoreMergesTakesWholeVocabularyWords() throws {
        // "abc" is in the vocabulary but no merge path builds it.
        let json = #"{"type": "BPE", "ignore_merges": IGNORE, "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4}, "merges": ["a b"]}"#
        #expect(tokenize(try model(json.replacingOccurrences(of: "IGNORE", with: "true")), "abc") == [4])
        #expect(tokenize(try model(json.replacingOccurrences(of: "IGNORE", with: "false")), "abc") == [3, 2])
    }

    @Test func byteFallbackAndFusedUnknowns() throws {
        let withBytes = try model(#"{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true, "vocab": {"<unk>": 0, "<0xC3>": 1, "<0xA9>": 2, "a": 3}, "merges": []}"#)
        #expect(tokenize(withBytes, "aé") == [3, 1, 2])
        #expect(tokenize(withBytes, "a☃☃a") == [3, 0, 3])  // no byte tokens for ☃: one fused <unk>
        let unfused = try model(#"{"type": "BPE", "unk_token": "<unk>", "fuse_unk": false, "vocab": {"<unk>": 0, "a": 1}, "merges": []}"#)
        #expect(tokenize(unfused, "☃☃a") == [0, 0, 1])
        let noUnknown = try model(#"{"type": "BPE", "vocab": {"a": 0}, "merges": []}"#)
        #expect(tokenize(noUnknown, "☃a") == [0])
    }

    @Test func continuingSubwordPrefixAndSuffix() throws {
        let bpe = try model(###"{"type": "BPE", "continuing_subword_prefix": "##", "vocab": {"a": 0, "##b": 1, "ab": 2}, "merges": ["a ##b"]}"###)
        #expect(tokenize(bpe, "ab") == [2])
        let suffixed = try model(#"{"type": "BPE", "end_of_word_suffix": "</w>", "vocab": {"a": 0, "b</w>": 1, "ab</w>": 2}, "merges": ["a b</w>"]}"#)
        #expect(tokenize(suffixed, "ab") == [2])
    }

    @Test func canonicallyEquivalentTokensStayDistinct() throws {
        // U+00C5 and U+212B are canonically equivalent; a String-keyed dictionary would merge them.
        let bpe = try model(#"{"type": "BPE", "vocab": {"\u00c5": 0, "\u212b": 1, "\ufeff": 2}, "merges": []}"#)
        #expect(tokenize(bpe, "\u{212B}\u{C5}\u{FEFF}") == [1, 0, 2])
        #expect(bpe.tokensById.count == 3)
    }
}

@Suite("Decoders")
struct DecoderTests {
    private func decode(_ json: String, _ tokens: [String]) throws -> String { try Decoder.parse(node(json)).decode(tokens) }

    @Test func byteLevelReplacesIncompleteUTF8() throws {
        #expect(try decode(#"{"type": "ByteLevel"}"#, ["Hi", "Ġthere"]) == "Hi there")
        #expect(try decode(#"{"type": "ByteLevel"}"#, ["Ã"]) == "\u{FFFD}")
        // Tokens that are not byte-level text (added tokens) keep their own bytes.
        #expect(try decode(#"{"type": "ByteLevel"}"#, ["a", "é☃"]) == "aé☃")
    }

    @Test func sentencePieceChain() throws {
        let chain = #"{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}"#
        #expect(try decode(chain, ["▁Hello", "▁world", "<0xE2>", "<0x82>", "<0xAC>"]) == "Hello world€")
        #expect(try decode(chain, ["<0xE2>", "<0x82>", "a"]) == "\u{FFFD}\u{FFFD}a")
        #expect(try decode(chain, ["<s>", "▁"]) == "<s> ")
    }

    @Test func metaspaceDropsReplacementsOfTheFirstToken() throws {
        #expect(try decode(#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}"#, ["▁a▁b", "▁c"]) == "ab c")
        #expect(try decode(#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"}"#, ["▁a", "▁c"]) == " a c")
    }

    @Test func wordPiece() throws {
        #expect(try decode(###"{"type": "WordPiece", "prefix": "##", "cleanup": true}"###, ["un", "##aff", "##able", "."]) == "unaffable.")
    }
}
