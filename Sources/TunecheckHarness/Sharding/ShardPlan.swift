import Foundation

/// `--shard I/N`: this job runs part I of N (1 ≤ I ≤ N).
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (1...count).contains(index) else { throw ShardError.invalidShard("\(index)/\(count)") }
        self.index = index
        self.count = count
    }

    /// Parses `I/N`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let count = Int(parts[1].trimmingCharacters(in: .whitespaces)), count >= 1, (1...count).contains(index) else {
            throw ShardError.invalidShard(text)
        }
        self.index = index
        self.count = count
    }

    public var description: String { "\(index)/\(count)" }
}

/// One unit of a sharded evaluation: a subject's evalset item (every computation the active suites need on it:
/// the answer, the pair's scores, the text's log-probs and distributions), or a subject's work that is not per item
/// (suites run whole, its golden file). Items scored in one packed pass stay together (`itemGroups`): a unit is
/// then that group of items.
struct WorkUnit: Sendable, Equatable {
    /// Index into the session's subjects.
    var subject: Int
    var scope: ContextComputation.Scope
    /// The items' ids (none for `.subject`).
    var items: [String]
    /// Estimated cost (token counts), for balancing.
    var weight: Double
}

/// Which shard runs which unit: the units, in a fixed order (subject by subject, items in evalset order), are cut
/// into N contiguous runs of about equal total weight: unit i goes to the shard whose share of the total weight its
/// midpoint falls in. Deterministic (settings and inputs only, never timing); contiguous, so a checkpoint's items
/// mostly stay in one shard and few shards load the same checkpoint; balanced to within one unit's weight.
enum ShardPlan {
    /// The owning shard (0-based) of each unit.
    static func assign(weights: [Double], count: Int) -> [Int] {
        let positive = weights.map { $0 > 0 && $0.isFinite ? $0 : 1 }
        let total = positive.reduce(0, +)
        guard total > 0 else { return weights.map { _ in 0 } }
        var before = 0.0
        return positive.map { weight in
            let middle = before + weight / 2
            before += weight
            return min(count - 1, Int(middle / total * Double(count)))
        }
    }

    /// Relative cost of one computation on one item of `tokens` tokens. Generation decodes one token at a time
    /// (a matrix-vector pass each), so a generated token is counted as 8 scored ones; a distribution comparison runs
    /// two models over the text. A computation not listed costs its item's tokens.
    static func cost(_ computation: ContextComputation, tokens: Int, maxNewTokens: Int) -> Double {
        switch computation.name {
        case ContextComputation.answers.name: return Double(tokens + 8 * maxNewTokens)
        case ContextComputation.textDistributions.name: return Double(2 * tokens)
        default: return Double(tokens)
        }
    }
}
