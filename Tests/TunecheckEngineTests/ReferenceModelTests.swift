import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckEngine

/// Numbers against transformers: per-token log-probs within 1e-4 absolute (float32 engine vs a float32
/// transformers run whose own error against float64 is ~1e-5), sequence sums within 1e-3, top-5 and greedy ids
/// exact. The fixtures were generated with margins that make ties impossible (see the fixture READMEs).
struct ReferenceModelTests {
    static let tokenTolerance = 1e-4
    static let sumTolerance = 1e-3

    /// Checks one model folder against its reference; returns the largest per-token difference.
    @discardableResult
    static func checkAgainstReference(_ folder: URL) throws -> Double {
        let reference = try ModelReference.load(folder)
        let model = try ModelLoader.loadDecoder(folder: folder)
        let scorer = Scorer(model: model)
        var largest = 0.0

        // One sequence at a time.
        for (index, text) in reference.texts.enumerated() {
            let scores = try scorer.score([text.ids])[0]
            #expect(scores.count == text.logprobs.count)
            let difference = zip(scores, text.logprobs).map { abs($0 - $1) }.max() ?? 0
            largest = max(largest, difference)
            #expect(difference <= tokenTolerance, "\(folder.lastPathComponent) text \(index): max |Δlogprob| \(difference)")
            #expect(abs(scores.reduce(0, +) - text.logprobs.reduce(0, +)) <= sumTolerance)
        }

        // All texts packed into one batch give the same numbers.
        let batched = try scorer.score(reference.texts.map(\.ids))
        for (index, text) in reference.texts.enumerated() {
            let difference = zip(batched[index], text.logprobs).map { abs($0 - $1) }.max() ?? 0
            largest = max(largest, difference)
            #expect(difference <= tokenTolerance, "\(folder.lastPathComponent) batched text \(index): max |Δlogprob| \(difference)")
        }

        // Top-5 next tokens at the first positions.
        if let first = reference.texts.first, let top5 = first.top5 {
            let rows = try scorer.logSoftmaxRows(first.ids)
            for entry in top5 {
                let row = rows[entry.position]
                let best = row.indices.sorted { row[$0] > row[$1] }.prefix(5)
                #expect(Array(best) == entry.ids, "\(folder.lastPathComponent) top-5 at \(entry.position)")
                for (id, logprob) in zip(entry.ids, entry.logprobs) {
                    #expect(abs(row[id] - logprob) <= tokenTolerance)
                }
            }
        }

        // Greedy generation with the KV cache.
        let generator = Generator(model: model)
        for generation in reference.generate {
            let result = try generator.generate(promptIds: generation.prompt_ids,
                                                options: GenerationOptions(maxNewTokens: generation.greedy_ids.count, ignoreEOS: true))
            #expect(result.ids == generation.greedy_ids, "\(folder.lastPathComponent) greedy ids")
        }

        // Response-only sums of preference pairs.
        for pair in reference.pairs ?? [] {
            let scores = try scorer.score([pair.chosen_ids, pair.rejected_ids])
            let chosen = scores[0][(pair.prompt_len - 1)...].reduce(0, +)
            let rejected = scores[1][(pair.prompt_len - 1)...].reduce(0, +)
            #expect(abs(chosen - pair.chosen_logprob_sum) <= sumTolerance)
            #expect(abs(rejected - pair.rejected_logprob_sum) <= sumTolerance)
        }
        return largest
    }

    @Test("Shared reference models match transformers", SharedFixtures.required("shared reference checks"),
          arguments: ["llama-tiny", "gpt2-tiny"])
    func sharedModel(name: String) throws {
        let largest = try Self.checkAgainstReference(try #require(FixturePaths.sharedModel(name)))
        print("reference \(name): max |Δlogprob| = \(largest)")
    }

    @Test("Own architecture fixtures match transformers", arguments: FixturePaths.ownModelNames)
    func ownModel(name: String) throws {
        let largest = try Self.checkAgainstReference(FixturePaths.ownModel(name))
        print("reference \(name): max |Δlogprob| = \(largest)")
    }
}
