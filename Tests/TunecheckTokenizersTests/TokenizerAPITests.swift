import Foundation
import Testing
@testable import TunecheckTokenizers

/// The public surface other modules use: special-token ids, BOS behaviour, chat template, vocabulary.
@Suite("Tokenizer API")
struct TokenizerAPITests {
    @Test(Fixtures.sharedRequired("shared tokenizer fixtures"))
    func llama2SentencePiece() throws {
        let tokenizer = try Fixtures.tokenizer("llama2-sp")
        #expect(tokenizer.vocabularySize == 32000)
        #expect(tokenizer.bosTokenId == 1)
        #expect(tokenizer.eosTokenId == 2)
        #expect(tokenizer.padTokenId == nil)
        #expect(tokenizer.addsBosToken)
        #expect(tokenizer.specialTokenIds == [0, 1, 2])
        #expect(tokenizer.token(forId: 1) == "<s>")
        #expect(tokenizer.token(forId: 13) == "<0x0A>")
        #expect(tokenizer.id(forToken: "</s>") == 2)
        #expect(tokenizer.token(forId: 32000) == nil)
        #expect(tokenizer.encode("Hello", addSpecialTokens: false).first != 1)
        #expect(tokenizer.encode("Hello").first == 1)
        // Canonically equivalent vocabulary entries keep their own ids both ways.
        for id in [29871, 30143, 31111] {
            if let token = tokenizer.token(forId: id) { #expect(tokenizer.id(forToken: token) == id) }
        }
    }

    @Test(Fixtures.sharedRequired("shared tokenizer fixtures"))
    func gpt2ByteLevel() throws {
        let tokenizer = try Fixtures.tokenizer("bpe-bytelevel")
        #expect(tokenizer.vocabularySize == 1000)
        #expect(tokenizer.bosTokenId == 0)
        #expect(tokenizer.eosTokenId == 0)
        #expect(!tokenizer.addsBosToken)
        #expect(tokenizer.chatTemplate == nil)
        #expect(tokenizer.encode("<|endoftext|>") == [0])
    }

    @Test func llama3Layout() throws {
        let tokenizer = try Fixtures.tokenizer("llama3-bytelevel")
        #expect(tokenizer.vocabularySize == 807)
        #expect(tokenizer.bosTokenId == 800)
        #expect(tokenizer.eosTokenId == 801)
        #expect(tokenizer.addsBosToken)
        #expect(tokenizer.specialTokenIds == Set(800...805))
        #expect(tokenizer.id(forToken: "[NORM]") == 806)
        #expect(tokenizer.chatTemplate?.contains("<|start_header_id|>") == true)  // from chat_template.jinja
        #expect(try tokenizer.decode([800, 806], skipSpecialTokens: true) == "[NORM]")
    }

    @Test func qwen2Layout() throws {
        let tokenizer = try Fixtures.tokenizer("qwen2-bytelevel")
        #expect(tokenizer.bosTokenId == nil)
        #expect(tokenizer.eosTokenId == 702)
        #expect(tokenizer.padTokenId == 700)
        #expect(!tokenizer.addsBosToken)
        #expect(tokenizer.chatTemplate?.contains("<|im_start|>") == true)
        #expect(tokenizer.encode("<|im_start|>").first == 701)
    }

    @Test func configFlagsRebuildThePostProcessor() throws {
        // transformers 5 rebuilds the template from add_bos_token/add_eos_token when the config sets
        // either; with add_eos_token true every encoding ends with </s>.
        let source = Fixtures.localTokenizers.appendingPathComponent("mistral-sp-legacy")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(at: source.appendingPathComponent("tokenizer.json"), to: directory.appendingPathComponent("tokenizer.json"))
        let config = #"{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": false, "add_eos_token": true, "chat_template": "{{ messages }}"}"#
        try Data(config.utf8).write(to: directory.appendingPathComponent("tokenizer_config.json"))

        let tokenizer = try Tokenizer.load(directory: directory)
        let plain = tokenizer.encode("Hello world", addSpecialTokens: false)
        #expect(tokenizer.encode("Hello world") == plain + [2])
        #expect(!tokenizer.addsBosToken)
        #expect(tokenizer.chatTemplate == "{{ messages }}")

        let original = try Fixtures.tokenizer("mistral-sp-legacy")
        #expect(original.encode("Hello world") == [1] + plain)
        #expect(original.addsBosToken)
    }

    @Test func initWithoutConfig() throws {
        let url = Fixtures.localTokenizers.appendingPathComponent("qwen2-bytelevel/tokenizer.json")
        let tokenizer = try Tokenizer(tokenizerJSONAt: url, configAt: nil)
        #expect(tokenizer.eosTokenId == nil)
        #expect(tokenizer.chatTemplate == nil)
        #expect(tokenizer.encode("hello world") == (try Fixtures.tokenizer("qwen2-bytelevel")).encode("hello world"))
    }

    @Test func concurrentEncodingMatchesSerialEncoding() async throws {
        let tokenizer = try Fixtures.tokenizer("llama3-bytelevel")
        let texts = try Fixtures.cases("llama3-bytelevel").map(\.text)
        let expected = texts.map { tokenizer.encode($0) }
        let results = await withTaskGroup(of: [[Int]].self) { group in
            for _ in 0..<8 { group.addTask { texts.map { tokenizer.encode($0) } } }
            var all: [[[Int]]] = []
            for await result in group { all.append(result) }
            return all
        }
        for result in results { #expect(result == expected) }
    }

    @Test func encodeDecodeRoundTrip() throws {
        for name in Fixtures.localTokenizerNames {
            let tokenizer = try Fixtures.tokenizer(name)
            let text = "Round trip: ca\u{301}fe\u{301}, 日本語, 👨‍👩‍👧, tabs\tand\nnewlines."
            let decoded = try tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false))
            // Qwen2's NFC normalizer composes "a\u{301}" into "á"; the others keep the scalars.
            let expected = name == "qwen2-bytelevel" ? text.precomposedStringWithCanonicalMapping : text
            #expect(decoded.unicodeScalars.elementsEqual(expected.unicodeScalars), "\(name): \(visible(decoded))")
        }
    }
}
