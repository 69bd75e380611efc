import Foundation
import TunecheckEngine

/// One subject being evaluated (the base, a checkpoint, a group of supplied answers, a fused folder), and
/// everything a suite may ask about it. Each thing is computed once, on first request, and shared by the suites
/// that use it: the answers by repetition and golden, the pair scores by preference and drift. The base's side
/// (its scores and sequences) comes from the session, computed once for all subjects.
public final class EvaluationContext {
    public let name: String
    public let step: Int?
    public let kind: SubjectKind
    public let session: EvaluationSession
    /// The loaded checkpoint (`.base` and `.checkpoint` subjects).
    public let checkpoint: LoadedCheckpoint?
    /// The fused folder (`.fused` subjects).
    public let fused: SuiteConfiguration.FusedModel?

    private var suppliedAnswers: [GoldenOutput]?
    private var answersMemo: Answers??
    private var pairScoresMemo: [PairScore]?
    private var textScoresMemo: [TextScore]?
    private var choiceScoresMemo: [ChoiceScore]?
    private var rollingScoresMemo: [RollingScore]?

    init(name: String, step: Int?, kind: SubjectKind, session: EvaluationSession, checkpoint: LoadedCheckpoint? = nil,
         fused: SuiteConfiguration.FusedModel? = nil, suppliedAnswers: [GoldenOutput]? = nil) {
        self.name = name
        self.step = step
        self.kind = kind
        self.session = session
        self.checkpoint = checkpoint
        self.fused = fused
        self.suppliedAnswers = suppliedAnswers
    }

    public var settings: SessionSettings { session.settings }
    public var thresholds: Thresholds { session.settings.thresholds }

    /// Something the user should know about this subject (a suite that did not run, and why).
    public func notice(_ text: String) { session.notice(text) }

    // MARK: - Answers

    /// The subject's answers to the prompts: greedy generations with their token ids, or answers supplied as text.
    public struct Answers: Sendable {
        public var outputs: [GoldenOutput]
        /// Whether `outputs[i].ids` are the model's tokens (repetition detectors use them; golden compares them).
        public var hasTokenIds: Bool
        /// The generation settings that made them (golden files record them).
        public var settingsRecord: [String: String]
    }

    /// The answers if a suite asked for them.
    var computedAnswers: Answers? { answersMemo ?? nil }

    /// Nil when there are no prompts (or, for supplied answers, no answers).
    public func answers() throws -> Answers? {
        if let answersMemo { return answersMemo }
        let made: Answers?
        if let suppliedAnswers {
            made = Answers(outputs: suppliedAnswers, hasTokenIds: false, settingsRecord: ["source": "answers"])
        } else if let checkpoint, !session.prompts.isEmpty {
            let record = settings.generation.record
            let outputs: [GoldenOutput]
            if kind == .base, let file = settings.evalsets.prompts {
                // The base's answers are a base result: kept in the cache under the generation settings too.
                let extra = record.keys.sorted().map { "\($0)=\(record[$0]!)" }
                outputs = try session.cached("answers", evalset: file, extra: extra, encode: BaseResultCache.encode,
                                             decode: { BaseResultCache.decodeAnswers($0, expecting: self.session.prompts.map(\.id)) }) {
                    try generate(checkpoint.model)
                }
            } else {
                outputs = try generate(checkpoint.model)
            }
            made = Answers(outputs: outputs, hasTokenIds: true, settingsRecord: record)
        } else {
            made = nil
        }
        answersMemo = .some(made)
        return made
    }

    private func generate(_ model: LanguageModel) throws -> [GoldenOutput] {
        let generator = Generator(model: model.decoder)
        let generation = settings.generation
        let options = GenerationOptions(maxNewTokens: generation.maxTokens, sampling: SamplingSettings(), seed: 0,
                                        stopTokenIds: model.stopTokenIds, ignoreEOS: generation.ignoreEOS)
        var outputs: [GoldenOutput] = []
        for (index, prompt) in session.prompts.enumerated() {
            session.report("generating (\(name))", index, session.prompts.count)
            let promptIds = try PromptFormatter.promptIds(prompt.prompt, model: model, mode: generation.chatTemplate)
            let result = try generator.generate(promptIds: promptIds, options: options)
            outputs.append(GoldenOutput(id: prompt.id, prompt: prompt.prompt, promptIds: promptIds, ids: result.ids,
                                        text: try result.text(tokenizer: model.tokenizer)))
        }
        return outputs
    }

    // MARK: - Scores

    /// The subject's response scores on the pairs (nil without pairs or a model).
    public func pairScores() throws -> [PairScore]? {
        if let pairScoresMemo { return pairScoresMemo }
        guard let checkpoint, !session.pairs.isEmpty else { return nil }
        if kind == .base, let base = try session.basePairScores() { return base }
        session.report("scoring pairs (\(name))", 0, session.pairs.count)
        let scores = try EvalsetScoring.scorePairs(session.pairs, model: checkpoint.model)
        pairScoresMemo = scores
        return scores
    }

    /// The subject's per-token log-probs of the reference texts (nil without texts or a model).
    public func textScores() throws -> [TextScore]? {
        if let textScoresMemo { return textScoresMemo }
        guard let checkpoint, !session.texts.isEmpty else { return nil }
        session.report("drift on texts (\(name))", 0, session.texts.count)
        let scores = try EvalsetScoring.scoreTexts(session.texts, model: checkpoint.model)
        textScoresMemo = scores
        return scores
    }

    /// The subject's summed log-likelihood of every choice of every multiple-choice item, lm-eval's way (nil without
    /// items or a model). The base's come from the session, computed once.
    public func choiceScores() throws -> [ChoiceScore]? {
        if let choiceScoresMemo { return choiceScoresMemo }
        guard let checkpoint, !session.choiceItems.isEmpty, let file = settings.evalsets.choices else { return nil }
        if kind == .base, let base = try session.baseChoiceScores() { return base }
        session.report("scoring choices (\(name))", 0, session.choiceItems.count)
        let scores = try LoglikelihoodScoring.scoreChoices(session.choiceItems, model: checkpoint.model,
                                                           maxLength: thresholds.choices.maxLength, path: file) {
            self.session.report("scoring choices (\(self.name))", $0, $1)
        }
        choiceScoresMemo = scores
        return scores
    }

    /// The subject's summed rolling-window log-likelihood of every reference text, lm-eval's way (nil without texts
    /// or a model). The base's come from the session, computed once.
    public func rollingScores() throws -> [RollingScore]? {
        if let rollingScoresMemo { return rollingScoresMemo }
        guard let checkpoint, !session.texts.isEmpty else { return nil }
        if kind == .base, let base = try session.baseRollingScores() { return base }
        session.report("perplexity (\(name))", 0, session.texts.count)
        let scores = try LoglikelihoodScoring.scoreRolling(session.texts, model: checkpoint.model, maxLength: thresholds.perplexity.maxLength)
        rollingScoresMemo = scores
        return scores
    }
}
