import Foundation
import TunecheckEngine

/// Perplexity of the reference texts as lm-evaluation-harness's `loglikelihood_rolling` tasks compute it
/// (wikitext's metrics: `word_perplexity`, `byte_perplexity`, `bits_per_byte`; rolling windows of the model's
/// maximum length, see `LoglikelihoodRequests`), and each figure's ratio to the base's. A checkpoint fails when its
/// word perplexity exceeds the base's by more than `max_increase` (default 10%): general text that became that much
/// less likely is lost ability, while the small rises any fine-tune causes stay below it.
public enum PerplexitySuite: EvaluationSuite {
    public static let kind = SuiteKind.perplexity
    public static let shortName = "ppl"
    public static let requirement = "a model and reference texts (--texts)"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.model && inputs.texts }
    public static func applies(to subject: SubjectKind) -> Bool { subject == .base || subject == .checkpoint }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding {
        .computations(subject == .checkpoint ? [.rollingScores, .rollingScores.base] : [.rollingScores])
    }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let scores = try context.rollingScores() else { return nil }
        let baseScores = context.kind == .checkpoint ? try context.session.baseRollingScores() : nil
        return SuiteRun(result: run(checkpoint: context.name, scores: scores, baseScores: baseScores, thresholds: context.thresholds.perplexity))
    }

    /// The suite's result from per-text log-likelihoods alone (what a sharded run records and replays).
    public static func run(checkpoint: String, scores: [RollingScore], baseScores: [RollingScore]?,
                           thresholds: PerplexityThresholds) -> SuiteResult {
        let started = Date()
        let figures = PerplexityFigures(scores: scores)
        var metrics = [Metric(.wordPerplexity, figures.wordPerplexity), Metric(.bytePerplexity, figures.bytePerplexity),
                       Metric(.bitsPerByte, figures.bitsPerByte)]
        var status = CheckStatus.passed
        if let baseScores {
            let base = PerplexityFigures(scores: baseScores)
            let ratio = figures.wordPerplexity / base.wordPerplexity
            metrics += [Metric(.wordPerplexityRatio, ratio), Metric(.bytePerplexityRatio, figures.bytePerplexity / base.bytePerplexity),
                        Metric(.bitsPerByteRatio, figures.bitsPerByte / base.bitsPerByte)]
            if !(ratio <= 1 + thresholds.maxIncrease) {
                status = .failed(
                    message: String(format: "word perplexity rose from %.4g to %.4g (%+.1f%%, limit +%.1f%%)", base.wordPerplexity,
                                    figures.wordPerplexity, 100 * (ratio - 1), 100 * thresholds.maxIncrease),
                    detail: String(format: "byte perplexity %.4f → %.4f, bits per byte %.4f → %.4f on %d texts", base.bytePerplexity,
                                   figures.bytePerplexity, base.bitsPerByte, figures.bitsPerByte, scores.count))
            }
        }
        let check = CheckResult(name: "word-perplexity", status: status,
                                metrics: metrics.filter { $0.name == MetricName.wordPerplexity.rawValue || $0.name == MetricName.wordPerplexityRatio.rawValue })
        let items = scores.map { SuiteItem.text(id: $0.id, loglikelihood: $0.loglikelihood, words: $0.words, bytes: $0.bytes) }
        return SuiteResult(kind: .perplexity, checkpoint: checkpoint, checks: [check], metrics: metrics, startedAt: started,
                           durationSeconds: Date().timeIntervalSince(started), items: items)
    }
}

extension SuiteKind {
    public static let perplexity = SuiteKind(declaring: "perplexity")
}
