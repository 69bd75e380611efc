/// The name of a number tunecheck reports: one typed set shared by the suites, the reports (JUnit properties,
/// report.json, HTML), the trainer's guards and metrics.jsonl, and `best_metric`. The raw value is the name that
/// appears in files, so reports keep TRL's spelling (`rewards/margins`).
///
/// Per-item and detector-specific numbers (`seq_rep_3_words`, `text_kl_p90`, ...) are made with `init(_:)` where
/// they are computed; the names other layers look up are the constants below.
public struct MetricName: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (lhs: MetricName, rhs: MetricName) -> Bool { lhs.rawValue < rhs.rawValue }

    // DPO implicit rewards (TRL's names and definitions; see `RewardSummary`).
    public static let rewardsAccuracies = MetricName("rewards/accuracies")
    public static let rewardsMargins = MetricName("rewards/margins")
    public static let rewardsChosen = MetricName("rewards/chosen")
    public static let rewardsRejected = MetricName("rewards/rejected")
    public static let logpsChosen = MetricName("logps/chosen")
    public static let logpsRejected = MetricName("logps/rejected")
    public static let rawAccuracySum = MetricName("raw_accuracy_sum")
    public static let rawAccuracyMean = MetricName("raw_accuracy_mean")

    // Training.
    public static let loss = MetricName("loss")
    public static let learningRate = MetricName("learning_rate")
    public static let gradientNorm = MetricName("grad_norm")
    public static let tokensPerSecond = MetricName("tokens_per_s")

    // Weight delta.
    public static let relativeDelta = MetricName("relative_delta")
    public static let frobenius = MetricName("frobenius")
    public static let baseFrobenius = MetricName("base_frobenius")
    public static let maxAbs = MetricName("max_abs")
    public static let tensors = MetricName("tensors")

    // Repetition.
    public static let maxRepetitionScore = MetricName("max_repetition_score")
    public static let meanRepetitionScore = MetricName("mean_repetition_score")
    public static let flaggedAnswers = MetricName("flagged_answers")
    public static let answers = MetricName("answers")

    // Drift.
    public static let gapSumBase = MetricName("gap_sum_base")
    public static let gapSumCheckpoint = MetricName("gap_sum_checkpoint")
    public static let gapSumDrift = MetricName("gap_sum_drift")
    public static let gapMeanBase = MetricName("gap_mean_base")
    public static let gapMeanCheckpoint = MetricName("gap_mean_checkpoint")
    public static let gapMeanDrift = MetricName("gap_mean_drift")
    public static let textLogprobChange = MetricName("text_logprob_change")
    public static let textKLMean = MetricName("text_kl_mean")
    public static let textSameTop = MetricName("text_same_top")

    // Multiple choice (lm-eval's names) and the paired comparison with the base.
    public static let acc = MetricName("acc")
    public static let accStderr = MetricName("acc_stderr")
    public static let accNorm = MetricName("acc_norm")
    public static let accNormStderr = MetricName("acc_norm_stderr")
    public static let accBase = MetricName("acc_base")
    public static let accNormBase = MetricName("acc_norm_base")
    public static let accDifference = MetricName("acc_difference")
    public static let accDifferenceLow = MetricName("acc_difference_low")
    public static let accDifferenceHigh = MetricName("acc_difference_high")
    public static let mcnemarP = MetricName("mcnemar_p")
    public static let lostItems = MetricName("lost_items")
    public static let gainedItems = MetricName("gained_items")
    public static let items = MetricName("items")

    // Perplexity (lm-eval's names), and each one's ratio to the base's.
    public static let wordPerplexity = MetricName("word_perplexity")
    public static let bytePerplexity = MetricName("byte_perplexity")
    public static let bitsPerByte = MetricName("bits_per_byte")
    public static let wordPerplexityRatio = MetricName("word_perplexity_ratio")
    public static let bytePerplexityRatio = MetricName("byte_perplexity_ratio")
    public static let bitsPerByteRatio = MetricName("bits_per_byte_ratio")
    public static let loglikelihood = MetricName("loglikelihood")

    // Golden and fused consistency.
    public static let meanSimilarity = MetricName("mean_similarity")
    public static let maxAbsDiff = MetricName("max_abs_diff")

    /// The names a checkpoint can be ranked by (`best_metric`): the suite-level numbers that describe how good a
    /// checkpoint is, with the direction that is better.
    public static let rankable: [MetricName: RankingDirection] = [
        .rewardsAccuracies: .higher, .rewardsMargins: .higher, .rewardsChosen: .higher, .rawAccuracySum: .higher,
        .rawAccuracyMean: .higher, .loss: .lower, .relativeDelta: .lower, .maxRepetitionScore: .lower,
        .meanRepetitionScore: .lower, .textKLMean: .lower, .textLogprobChange: .higher, .gapSumCheckpoint: .higher,
        .gapMeanCheckpoint: .higher, .meanSimilarity: .higher, .acc: .higher, .accNorm: .higher, .accDifference: .higher,
        .wordPerplexity: .lower, .bytePerplexity: .lower, .bitsPerByte: .lower, .wordPerplexityRatio: .lower,
    ]
}

/// Which way is better for a metric that ranks checkpoints.
public enum RankingDirection: String, Sendable, Codable, CaseIterable {
    case higher, lower
}
