import Foundation

/// A span of an answer that a repetition detector flagged (character offsets into `text`), for highlighting.
public struct HighlightSpan: Sendable, Equatable {
    public var start: Int
    public var end: Int
    public var label: String

    public init(start: Int, end: Int, label: String) {
        self.start = start
        self.end = end
        self.label = label
    }
}

/// One generated (or supplied) answer, kept for side-by-side views.
public struct AnswerRecord: Sendable, Equatable {
    public var checkpoint: String
    public var promptId: String
    public var prompt: String
    public var text: String
    public var ids: [Int]?
    /// Repetition spans found in `text`.
    public var highlights: [HighlightSpan]
    /// Whether the repetition suite flagged this answer (mild or severe).
    public var flagged: Bool
    /// The repetition suite's verdict on this answer; nil when that suite did not judge it.
    public var severity: RepetitionSeverity?

    public init(checkpoint: String, promptId: String, prompt: String, text: String, ids: [Int]? = nil, highlights: [HighlightSpan] = [],
                flagged: Bool = false, severity: RepetitionSeverity? = nil) {
        self.checkpoint = checkpoint
        self.promptId = promptId
        self.prompt = prompt
        self.text = text
        self.ids = ids
        self.highlights = highlights
        self.flagged = flagged
        self.severity = severity
    }
}

/// A golden-output comparison, for the report's diff view.
public struct GoldenComparison: Sendable, Equatable {
    public var checkpoint: String
    public var promptId: String
    public var expectedText: String
    public var actualText: String
    public var similarity: Double
    public var matched: Bool

    public init(checkpoint: String, promptId: String, expectedText: String, actualText: String, similarity: Double, matched: Bool) {
        self.checkpoint = checkpoint
        self.promptId = promptId
        self.expectedText = expectedText
        self.actualText = actualText
        self.similarity = similarity
        self.matched = matched
    }
}

/// Per-checkpoint headline numbers, in checkpoint order, for charts (nil where a suite did not run).
public struct CheckpointSummary: Sendable, Equatable {
    public var name: String
    /// Training step when known (numbered checkpoints), for the x axis.
    public var step: Int?
    public var preferenceAccuracy: Double?
    public var meanMargin: Double?
    /// Worst repetition score over the checkpoint's answers (0 = none, 1 = fully repetitive).
    public var repetitionScore: Double?
    /// Overall relative weight delta ‖ΔW‖/‖W‖.
    public var relativeWeightDelta: Double?
    /// The training loss when the checkpoint was saved (runs of `tunecheck train`).
    public var trainingLoss: Double?
    /// Multiple-choice accuracy (`acc` of the choices suite).
    public var choicesAccuracy: Double?
    /// Word perplexity of the reference texts (the perplexity suite).
    public var wordPerplexity: Double?
    public var passed: Bool

    public init(name: String, step: Int? = nil, preferenceAccuracy: Double? = nil, meanMargin: Double? = nil,
                repetitionScore: Double? = nil, relativeWeightDelta: Double? = nil, trainingLoss: Double? = nil,
                choicesAccuracy: Double? = nil, wordPerplexity: Double? = nil, passed: Bool) {
        self.trainingLoss = trainingLoss
        self.choicesAccuracy = choicesAccuracy
        self.wordPerplexity = wordPerplexity
        self.name = name
        self.step = step
        self.preferenceAccuracy = preferenceAccuracy
        self.meanMargin = meanMargin
        self.repetitionScore = repetitionScore
        self.relativeWeightDelta = relativeWeightDelta
        self.passed = passed
    }
}

/// Everything one `tunecheck eval` produced; the input of every report writer.
public struct EvaluationReport: Sendable, Equatable {
    public var title: String
    public var startedAt: Date
    public var durationSeconds: Double
    /// The base model folder (if any) and the settings used, for the report header.
    public var settings: [(key: String, value: String)]
    public var suites: [SuiteResult]
    public var checkpoints: [CheckpointSummary]
    public var answers: [AnswerRecord]
    public var golden: [GoldenComparison]

    public init(title: String, startedAt: Date, durationSeconds: Double, settings: [(key: String, value: String)] = [],
                suites: [SuiteResult], checkpoints: [CheckpointSummary], answers: [AnswerRecord] = [], golden: [GoldenComparison] = []) {
        self.title = title
        self.startedAt = startedAt
        self.durationSeconds = durationSeconds
        self.settings = settings
        self.suites = suites
        self.checkpoints = checkpoints
        self.answers = answers
        self.golden = golden
    }

    public var passed: Bool { suites.allSatisfy(\.passed) }

    public static func == (lhs: EvaluationReport, rhs: EvaluationReport) -> Bool {
        lhs.title == rhs.title && lhs.startedAt == rhs.startedAt && lhs.durationSeconds == rhs.durationSeconds
            && lhs.settings.map(\.key) == rhs.settings.map(\.key) && lhs.settings.map(\.value) == rhs.settings.map(\.value)
            && lhs.suites == rhs.suites && lhs.checkpoints == rhs.checkpoints && lhs.answers == rhs.answers && lhs.golden == rhs.golden
    }
}
