import Foundation
import TunecheckEngine

/// What a suite is run on within a session.
public enum SubjectKind: Sendable, Equatable {
    /// The base model, once per session.
    case base
    /// A checkpoint judged against the base: an adapter, or a fully fine-tuned or fused model folder.
    case checkpoint
    /// Answers produced elsewhere (`--answers`), grouped by their `checkpoint` field; there is no model.
    case suppliedAnswers
    /// A fused folder, against base + the adapter it was fused from.
    case fused
}

/// The inputs a session has, from which it decides which suites can run.
public struct SuiteInputs: Sendable, Equatable {
    public var base = false
    /// Checkpoints listed, in a watched folder, handed over by a trainer, or fused folders.
    public var checkpoints = false
    public var prompts = false
    public var pairs = false
    public var texts = false
    public var answers = false
    public var choices = false
    /// A fused folder given with the adapter it came from.
    public var fusedWithAdapter = false

    public init() {}

    /// A model produces answers to prompts (the base or any checkpoint).
    public var model: Bool { base || checkpoints }
}

/// One kind of check. An `EvaluationSession` asks each registered suite whether the inputs allow it, then runs it
/// on every subject it applies to, in `SuiteRegistry` order; what a suite needs (answers, pair scores, the base's
/// scores, the loaded checkpoint) it asks the `EvaluationContext` for, which computes each thing once.
///
/// Adding a suite: one file with a conformer (and its `SuiteKind` constant), plus its line in `SuiteRegistry.all`.
/// For sharded runs, declare `sharding(on:)`: the per-item computations it reads from the context (a new memoized
/// computation adds its accessor and `ContextComputation` constant, see there); without it the suite runs whole on
/// one shard, which is correct but does not split its work.
public protocol EvaluationSuite {
    /// Its name in suite files, `--suites` and reports.
    static var kind: SuiteKind { get }
    /// A column title for narrow terminals.
    static var shortName: String { get }
    /// What it needs, for the error when it is requested without it ("a base model and pairs").
    static var requirement: String { get }
    /// Whether the inputs allow it. A session whose suite file lists no suites runs every suite that can.
    static func canRun(with inputs: SuiteInputs) -> Bool
    /// Whether it runs on this kind of subject.
    static func applies(to subject: SubjectKind) -> Bool
    /// Whether its results are about the inputs rather than one checkpoint (preflight judges the pairs, fused
    /// consistency a fused folder): reported once at the top, not in a checkpoint's column.
    static var isAboutInputs: Bool { get }
    /// Runs on one subject; nil when there is nothing to judge for this subject (with a notice in the context
    /// when the user should know why).
    static func run(in context: EvaluationContext) throws -> SuiteRun?
    /// How a sharded run (`eval --shard I/N`) divides its work on this kind of subject: the context computations
    /// it reads (split by item across shards, the suite then run by `merge` on the merged values), or
    /// `.wholeSuite` (the default: one shard runs it and records its result). See `ContextComputation` for adding a
    /// computation.
    static func sharding(on subject: SubjectKind) -> SuiteSharding
}

extension EvaluationSuite {
    public static var isAboutInputs: Bool { false }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding { .wholeSuite }
}

/// One suite's outcome on one subject, with what it adds to the report beside its checks.
public struct SuiteRun: Sendable {
    public var result: SuiteResult
    /// The subject's answers with their repetition verdicts and highlights (the repetition suite).
    public var answers: [AnswerRecord]?
    /// Golden comparisons for the diff view.
    public var golden: [GoldenComparison]

    public init(result: SuiteResult, answers: [AnswerRecord]? = nil, golden: [GoldenComparison] = []) {
        self.result = result
        self.answers = answers
        self.golden = golden
    }
}

/// Every suite tunecheck knows, in the order they run on a subject and appear in reports.
public enum SuiteRegistry {
    public static let all: [any EvaluationSuite.Type] = [
        PreflightSuite.self,
        RepetitionSuite.self,
        PreferenceSuite.self,
        DriftSuite.self,
        WeightDeltaSuite.self,
        ChoicesSuite.self,
        PerplexitySuite.self,
        GoldenSuite.self,
        FusedConsistencySuite.self,
    ]

    public static let kinds: [SuiteKind] = all.map { $0.kind }

    public static func suite(_ kind: SuiteKind) -> (any EvaluationSuite.Type)? {
        all.first { $0.kind == kind }
    }
}
