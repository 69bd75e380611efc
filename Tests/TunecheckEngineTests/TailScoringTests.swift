import Foundation
@testable import TunecheckEngine
import TunecheckTestSupport
import Testing

/// `Scorer.scoreTails` (lm-eval's request shape: the model sees all tokens but the last, only the tail is scored)
/// against whole-sequence scoring, on a llama (RoPE) and a GPT-2 (learned positions, where a window of the model's
/// positions + 1 tokens must fit).
struct TailScoringTests {
    static func sequences(vocabulary: Int, seed: UInt64) -> [[Int]] {
        var generator = SeededGenerator(seed: seed)
        return [3, 7, 12, 30, 2].map { length in (0..<length).map { _ in Int(generator.next() % UInt64(vocabulary)) } }
    }

    @Test(arguments: ["models/demo-base", "Tests/Fixtures/models/gpt2-inner96"])
    func tailsAreTheWholeSequencesLastLogprobs(_ folder: String) throws {
        let decoder = try ModelLoader.loadDecoder(folder: TestPaths.repository(folder))
        let sequences = Self.sequences(vocabulary: decoder.spec.vocabularySize, seed: 18)
        let scorer = Scorer(model: decoder)
        let whole = try scorer.score(sequences)
        let requests = sequences.map { TailRequest(tokens: $0, scoredCount: max(1, $0.count / 2)) }
        for threads in [1, 2] {
            let tails = try Scorer(model: decoder, tokenBudget: 16, threads: threads).scoreTails(requests)
            for (index, request) in requests.enumerated() {
                let expected = whole[index].suffix(request.scoredCount)
                #expect(tails[index].count == request.scoredCount)
                for (a, b) in zip(tails[index], expected) { #expect(abs(a - b) <= 1e-5, "\(folder) sequence \(index)") }
            }
        }
    }

    /// Requests with the same input and different last tokens (one-token choices after one context, or choices
    /// that differ only in their last token) share rows, and each gets its own numbers.
    @Test func requestsDifferingInTheLastTokenShareRows() throws {
        let decoder = try ModelLoader.loadDecoder(folder: TestPaths.repository("models/demo-base"))
        let context = [5, 17, 300, 42, 9]
        let requests = [TailRequest(tokens: context + [11], scoredCount: 1), TailRequest(tokens: context + [12], scoredCount: 1),
                        TailRequest(tokens: context + [11], scoredCount: 1), TailRequest(tokens: context + [70, 13], scoredCount: 2),
                        TailRequest(tokens: context + [70, 14], scoredCount: 2), TailRequest(tokens: context + [12], scoredCount: 2)]
        let scorer = Scorer(model: decoder, threads: 1)
        let shared = try scorer.scoreTails(requests)
        for (index, request) in requests.enumerated() {
            let alone = try scorer.scoreTails([request])[0]
            let whole = try scorer.score([request.tokens])[0].suffix(request.scoredCount)
            #expect(shared[index].count == request.scoredCount)
            for (a, b) in zip(shared[index], alone) { #expect(abs(a - b) <= 1e-5, "request \(index)") }
            for (a, b) in zip(shared[index], whole) { #expect(abs(a - b) <= 1e-5, "request \(index)") }
        }
        #expect(shared[0] == shared[2] && shared[0] != shared[1])
    }

    /// A window of exactly positions + 1 tokens: the last token is never fed, so learned positions suffice.
    @Test func windowOfPositionsPlusOneFitsLearnedPositions() throws {
        let decoder = try ModelLoader.loadDecoder(folder: TestPaths.repository("Tests/Fixtures/models/gpt2-inner96"))
        let positions = decoder.spec.maxPositions
        let tokens = (0...positions).map { $0 % decoder.spec.vocabularySize }
        let scores = try Scorer(model: decoder).scoreTails([TailRequest(tokens: tokens, scoredCount: 3)])
        #expect(scores[0].count == 3 && scores[0].allSatisfy(\.isFinite))
    }

    @Test func invalidRequestsAreErrors() throws {
        let scorer = Scorer(model: try ModelLoader.loadDecoder(folder: TestPaths.repository("models/demo-base")))
        #expect(throws: EngineError.self) { try scorer.scoreTails([TailRequest(tokens: [1], scoredCount: 1)]) }
        #expect(throws: EngineError.self) { try scorer.scoreTails([TailRequest(tokens: [1, 2, 3], scoredCount: 3)]) }
        #expect(throws: EngineError.self) { try scorer.scoreTails([TailRequest(tokens: [1, 2, 3], scoredCount: 0)]) }
        #expect(throws: EngineError.self) { try scorer.scoreTails([TailRequest(tokens: [1, 1_000_000], scoredCount: 1)]) }
    }
}
