import Foundation
import TunecheckJSON

/// One thing an `EvaluationContext` computes once and shares between suites, as a sharded run sees it: per item of
/// an evalset (the answers to the prompts, the pairs' scores, the texts' log-probs and distributions) or once per
/// subject (its golden file, supplied answers). A sharded run (`eval --shard I/N`) computes a per-item computation
/// only for the (subject × item) units its shard owns and records each value in its part file; `merge` serves the
/// merged values back through the same accessors, so the suites run the same code in both paths and every
/// aggregate is recomputed from the items.
///
/// Adding a memoized computation (a new suite's per-item numbers):
/// 1. an accessor on `EvaluationContext` that goes through `perItem(_:ids:codec:compute:)` (or `perSubject`),
///    with an `ItemCodec` that writes the value as JSON and reads it back (exactly: doubles round-trip);
/// 2. a `ContextComputation` constant naming it, its scope and how to request it (`prefetch` just calls the
///    accessor: the shard restricts the context to its items around the call);
/// 3. the suite's `sharding(on:)` lists it (and, with `onBase`, the base's side it reads).
/// A suite that declares nothing (`.wholeSuite`, the default) still works sharded: one shard runs it on the whole
/// subject and records its result (that shard computes every item the suite asks for). `ShardingHookTests` defines
/// one suite of each kind, with a computation of its own, in about forty lines.
public struct ContextComputation: Sendable, Hashable {
    /// Which evalset's items the values are per, or `.subject` for one value per subject.
    public enum Scope: String, Sendable, Hashable, CaseIterable {
        case prompts, pairs, texts, choices, subject
    }

    /// The key in part files (`answers`, `pair-scores`, …); unique.
    public let name: String
    public let scope: Scope
    /// The base model's side of this computation (its pair scores, read by every checkpoint's preference suite):
    /// the base subject computes it, once for all subjects.
    public let onBase: Bool
    /// Requests the values on a context (calls the accessor); the shard restricts the context to its items first.
    let prefetch: @Sendable (EvaluationContext) throws -> Void

    public init(name: String, scope: Scope, onBase: Bool = false, prefetch: @escaping @Sendable (EvaluationContext) throws -> Void) {
        self.name = name
        self.scope = scope
        self.onBase = onBase
        self.prefetch = prefetch
    }

    /// The same computation on the base model.
    public var base: ContextComputation {
        ContextComputation(name: name, scope: scope, onBase: true, prefetch: prefetch)
    }

    public static func == (lhs: ContextComputation, rhs: ContextComputation) -> Bool {
        lhs.name == rhs.name && lhs.onBase == rhs.onBase
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(onBase)
    }
}

extension ContextComputation {
    /// Greedy answers to the prompts (generation), per prompt; supplied answers once per subject.
    public static let answers = ContextComputation(name: "answers", scope: .prompts) { _ = try $0.answers() }
    /// Response log-probs of the pairs (chosen and rejected), per pair.
    public static let pairScores = ContextComputation(name: "pair-scores", scope: .pairs) { _ = try $0.pairScores() }
    /// Per-token log-probs of the reference texts, per text.
    public static let textScores = ContextComputation(name: "text-scores", scope: .texts) { _ = try $0.textScores() }
    /// Per-token KL(base ‖ subject) and top-token agreement on the reference texts, per text.
    public static let textDistributions = ContextComputation(name: "text-distributions", scope: .texts) { _ = try $0.textDistributions() }
    /// Summed log-likelihood of each choice of the multiple-choice items (lm-eval's requests), per item.
    public static let choiceScores = ContextComputation(name: "choice-scores", scope: .choices) { _ = try $0.choiceScores() }
    /// Summed rolling-window log-likelihood of the reference texts (lm-eval's perplexity), per text.
    public static let rollingScores = ContextComputation(name: "rolling-scores", scope: .texts) { _ = try $0.rollingScores() }
    /// The subject's golden file (or that it has none), once per subject.
    public static let goldenFile = ContextComputation(name: "golden-file", scope: .subject) { _ = try $0.goldenFile() }
}

/// How a sharded run divides a suite's work on one kind of subject.
public enum SuiteSharding: Sendable {
    /// The suite's numbers come from these computations; each is split by item across shards and the suite is run
    /// on the merged values by `merge`.
    case computations([ContextComputation])
    /// The work is not per item (a weight delta, a fused folder's consistency): one shard runs the suite on the
    /// subject and records its result whole.
    case wholeSuite
}

/// Writes a computed value as JSON and reads it back, for part files.
public struct ItemCodec<Value> {
    public let encode: (Value) -> JSONValue
    public let decode: (JSONValue) -> Value?

    public init(encode: @escaping (Value) -> JSONValue, decode: @escaping (JSONValue) -> Value?) {
        self.encode = encode
        self.decode = decode
    }
}
