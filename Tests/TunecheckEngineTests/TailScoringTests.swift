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
