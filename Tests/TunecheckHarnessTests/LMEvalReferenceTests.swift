import Foundation
import TunecheckEngine
import TunecheckJSON
import TunecheckTestSupport
import Testing
@testable import TunecheckHarness

/// The choices and perplexity numbers against lm-evaluation-harness 0.4.13 itself (`hf` backend, float32), on three
/// architectures and both tokenizer kinds: `Tests/Fixtures/lmeval/reference-*.json`, made by
/// `scripts/fixtures/make_lmeval_fixtures.py` from `choices.jsonl` and `texts.jsonl` in the same folder (contexts
/// ending in spaces, a tab and a newline; one- and multi-token choices; an empty delimiter; non-ASCII choices; texts
/// two to six windows long).
///
/// Tolerances: a choice's summed log-likelihood within 1e-4 (float32 engines agree to ~1e-5 per token, and choices
/// are a few tokens), a text's within 1e-5 relative (hundreds of tokens; absolute 1e-4 for short ones); acc and
/// acc_norm per item and aggregated identical; standard errors within 1e-12; perplexities within 1e-5 relative.
struct LMEvalReferenceTests {
    static let folder = TestPaths.ownFixtures.appendingPathComponent("lmeval")

    struct Reference {
        var maxLength: Int?
        var choices: [String: (loglikelihoods: [Double], acc: Double, accNorm: Double)] = [:]
        var tasks: [(ids: [String], acc: Double, accStderr: Double, accNorm: Double, accNormStderr: Double)] = []
        var texts: [String: Double] = [:]
        var perplexity: [String: Double] = [:]

        init(_ name: String) throws {
            let value = try JSONParser.parse(Array(Data(contentsOf: LMEvalReferenceTests.folder.appendingPathComponent("reference-\(name).json"))))
            let root = value.object!
            #expect(root["lm_eval_version"]?.string == "0.4.13")
            maxLength = root["max_length"]?.int
            for item in root["choices"]!.array! {
                let object = item.object!
                choices[object["id"]!.string!] = (object["loglikelihoods"]!.array!.map { $0.double! }, object["acc"]!.double!,
                                                  object["acc_norm"]!.double!)
            }
            for task in root["choice_tasks"]!.array! {
                let object = task.object!
                tasks.append((object["ids"]!.array!.map { $0.string! }, object["acc"]!.double!, object["acc_stderr"]!.double!,
                              object["acc_norm"]!.double!, object["acc_norm_stderr"]!.double!))
            }
            for text in root["texts"]!.array! { texts[text.object!["id"]!.string!] = text.object!["loglikelihood"]!.double! }
            for (key, number) in zip(root["perplexity"]!.object!.keys, root["perplexity"]!.object!.values) { perplexity[key] = number.double! }
        }
    }

    /// The phi3-sp weights (committed) with the shared SentencePiece tokenizer, as symlinks in a temporary folder.
    static func phi3SentencePiece() throws -> URL {
        let target = try TestPaths.temporaryDirectory("lmeval-phi3-sp")
        let weights = folder.appendingPathComponent("phi3-sp")
        for name in try FileManager.default.contentsOfDirectory(atPath: weights.path) {
            try FileManager.default.createSymbolicLink(at: target.appendingPathComponent(name), withDestinationURL: weights.appendingPathComponent(name))
        }
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.createSymbolicLink(at: target.appendingPathComponent(name),
                                                       withDestinationURL: SharedFixtures.path("tokenizers/llama2-sp/\(name)")!)
        }
        return target
    }

    static func check(model folder: URL, reference name: String) throws {
        let reference = try Reference(name)
        let model = try LanguageModel.load(folder: folder)
        let items = try EvalsetLoader.choices(Self.folder.appendingPathComponent("choices.jsonl"))
        let texts = try EvalsetLoader.texts(Self.folder.appendingPathComponent("texts.jsonl"))
        #expect(items.count == reference.choices.count && texts.count == reference.texts.count)

        let scores = try LoglikelihoodScoring.scoreChoices(items, model: model, maxLength: reference.maxLength)
        var outcomes: [String: ChoiceOutcome] = [:]
        for (item, score) in zip(items, scores) {
            let expected = try #require(reference.choices[item.id])
            #expect(score.loglikelihoods.count == expected.loglikelihoods.count)
            for (ours, theirs) in zip(score.loglikelihoods, expected.loglikelihoods) {
                #expect(abs(ours - theirs) <= 1e-4, "\(name) item \(item.id): \(score.loglikelihoods) vs lm-eval \(expected.loglikelihoods)")
            }
            let outcome = ChoiceOutcome(score: score)
            #expect((outcome.correct ? 1.0 : 0.0) == expected.acc, "\(name) item \(item.id): acc")
            #expect((outcome.correctNorm ? 1.0 : 0.0) == expected.accNorm, "\(name) item \(item.id): acc_norm")
            outcomes[item.id] = outcome
        }
        for task in reference.tasks {
            let accuracy = ChoiceAccuracy(task.ids.map { outcomes[$0]! })
            #expect(accuracy.acc == task.acc && accuracy.accNorm == task.accNorm, "\(name): aggregated acc/acc_norm")
            #expect(abs(accuracy.accStderr - task.accStderr) <= 1e-12 && abs(accuracy.accNormStderr - task.accNormStderr) <= 1e-12)
        }

        let rolling = try LoglikelihoodScoring.scoreRolling(texts, model: model, maxLength: reference.maxLength)
        for score in rolling {
            let expected = try #require(reference.texts[score.id])
            #expect(abs(score.loglikelihood - expected) <= max(1e-4, 1e-5 * abs(expected)),
                    "\(name) text \(score.id): \(score.loglikelihood) vs lm-eval \(expected)")
        }
        let figures = PerplexityFigures(scores: rolling)
        for (key, ours) in [("word_perplexity", figures.wordPerplexity), ("byte_perplexity", figures.bytePerplexity),
                            ("bits_per_byte", figures.bitsPerByte)] {
            let theirs = try #require(reference.perplexity[key])
            #expect(abs(ours - theirs) <= 1e-5 * abs(theirs), "\(name) \(key): \(ours) vs lm-eval \(theirs)")
        }
    }

    @Test func demoBaseLlamaByteLevel() throws {
        try Self.check(model: TestPaths.repository("models/demo-base"), reference: "demo-base")
    }

    /// Items scored in groups (for the progress line) give the numbers of one batch, and report their progress.
    /// Within 1e-4, as against lm-eval: float32 GEMMs round differently with the batch's shape (observed ≤ 2.3e-5 on a
    /// sum over a few tokens).
    @Test func groupsGiveTheSameNumbers() throws {
        let model = try LanguageModel.load(folder: TestPaths.repository("models/demo-base"))
        let items = try EvalsetLoader.choices(Self.folder.appendingPathComponent("choices.jsonl"))
        let whole = try LoglikelihoodScoring.scoreChoices(items, model: model, maxLength: 64)
        var reported: [Int] = []
        let grouped = try LoglikelihoodScoring.scoreChoices(items, model: model, maxLength: 64, groupSize: 5) { done, total in
            #expect(total == items.count)
            reported.append(done)
        }
        #expect(reported == [0, 5, 10])
        #expect(whole.map(\.id) == grouped.map(\.id))
        for (a, b) in zip(whole, grouped) {
            for (x, y) in zip(a.loglikelihoods, b.loglikelihoods) { #expect(abs(x - y) <= 1e-4) }
        }
    }

    @Test(SharedFixtures.required("lm-eval reference on gpt2-tiny (GPT-2, byte-level BPE, no BOS)"))
    func gpt2ByteLevel() throws {
        try Self.check(model: SharedFixtures.path("models/gpt2-tiny")!, reference: "gpt2-tiny")
    }

    @Test(SharedFixtures.required("lm-eval reference on phi3-sp (Phi-3, SentencePiece tokenizer adding <s>, 64-token window)"))
    func phi3SentencePieceWithBOS() throws {
        let model = try Self.phi3SentencePiece()
        defer { try? FileManager.default.removeItem(at: model) }
        try Self.check(model: model, reference: "phi3-sp")
    }

    /// The fixtures exercise what they claim: windows shorter than the long texts, several tokens in some choices
    /// and one in others, a BOS before the context for the SentencePiece tokenizer and none for byte-level BPE.
    @Test(SharedFixtures.required("the fixtures' coverage on the SentencePiece tokenizer"))
    func fixturesCoverWhatTheyClaim() throws {
        let sentencePiece = try Self.phi3SentencePiece()
        defer { try? FileManager.default.removeItem(at: sentencePiece) }
        let items = try EvalsetLoader.choices(Self.folder.appendingPathComponent("choices.jsonl"))
        let texts = try EvalsetLoader.texts(Self.folder.appendingPathComponent("texts.jsonl"))
        for (folder, window, addsBOS) in [(TestPaths.repository("models/demo-base"), 64, false), (sentencePiece, 64, true)] {
            let model = try LanguageModel.load(folder: folder)
            var lengths = Set<Int>()
            for item in items {
                for choice in item.choices {
                    let pair = try LoglikelihoodRequests.encodePair(context: item.context, continuation: item.targetDelimiter + choice, tokenizer: model.tokenizer)
                    lengths.insert(pair.continuation.count)
                    #expect((pair.context.first == model.tokenizer.bosTokenId) == addsBOS)
                }
            }
            #expect(lengths.contains(1) && lengths.contains { $0 >= 3 })
            let longest = texts.map { model.tokenizer.encode($0.text).count }.max()!
            #expect(longest > 2 * window, "a text spans at least three windows")
        }
    }
}
