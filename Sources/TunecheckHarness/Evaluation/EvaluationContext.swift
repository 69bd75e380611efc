import Foundation
import TunecheckEngine
import TunecheckJSON

/// One subject being evaluated (the base, a checkpoint, a group of supplied answers, a fused folder), and
/// everything a suite may ask about it. Each thing is computed once, on first request, and shared by the suites
/// that use it: the answers by repetition and golden, the pair scores by preference and drift. The base's side
/// (its scores and answers) is the base subject's context, which the session keeps for all subjects.
///
/// Every per-item computation goes through `perItem` (per-subject ones through `perSubject`), which is also where
/// sharding hooks in: a shard restricts the context to the items it owns and records each value it returns
/// (`recorder`); `merge` builds contexts that read the merged values instead of computing (`replay`). A new
/// memoized computation follows `pairScores()`; see `ContextComputation` for the rest of the recipe.
public final class EvaluationContext {
    public let name: String
    public let step: Int?
    public let kind: SubjectKind
    public let session: EvaluationSession
    /// The loaded checkpoint (`.base` and `.checkpoint` subjects; nil when replaying merged parts).
    public let checkpoint: LoadedCheckpoint?
    /// The fused folder (`.fused` subjects).
    public let fused: SuiteConfiguration.FusedModel?

    private var suppliedAnswers: [GoldenOutput]?
    private var answersMemo: Answers??
    /// Per-item values by computation name, then item id (`Memo<Value>` each).
    private var itemMemo: [String: [String: Any]] = [:]
    /// Per-subject values by computation name (`Memo<Value>`).
    private var subjectMemo: [String: Any] = [:]
    /// Base-cache entries already looked up (a miss is not looked up again).
    private var cacheConsulted: Set<String> = []

    /// A shard: the values it owns are written here.
    var recorder: SubjectRecord?
    /// A shard: the items of each scope it owns, while it requests them (nil: every item).
    var restriction: [ContextComputation.Scope: Set<String>]?
    /// A shard that owns this subject's subject-level work records its per-subject values.
    var recordsSubjectValues = false
    /// `merge`: every value is read from the merged part files.
    var replay: SubjectRecord?

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

    /// Whether the subject is a model that answers and scores (the base or a checkpoint).
    private var isModel: Bool { kind == .base || kind == .checkpoint }

    private func model() throws -> LanguageModel {
        guard let checkpoint else { throw HarnessError.missingInput("'\(name)' has no loaded model to compute with") }
        return checkpoint.model
    }

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
        if restriction == nil, let answersMemo { return answersMemo }
        let made: Answers?
        if kind == .suppliedAnswers {
            let outputs = try perSubject(.answers, codec: .outputs) { self.suppliedAnswers ?? [] }
            made = Answers(outputs: outputs, hasTokenIds: false, settingsRecord: ["source": "answers"])
        } else if isModel, !session.promptIds.isEmpty {
            let record = settings.generation.record
            var entry: BaseCacheEntry<GoldenOutput>?
            if kind == .base, let file = settings.evalsets.prompts {
                // The base's answers are a base result: kept in the cache under the generation settings too.
                let ids = session.promptIds
                entry = BaseCacheEntry(kind: "answers", evalset: file, extra: record.keys.sorted().map { "\($0)=\(record[$0]!)" },
                                       encode: BaseResultCache.encode, decode: { BaseResultCache.decodeAnswers($0, expecting: ids) })
            }
            let outputs = try perItem(.answers, ids: session.promptIds, codec: .output, cache: entry) { indices in
                try self.generate(try self.model(), prompts: indices.map { self.session.prompts[$0] })
            }
            made = Answers(outputs: outputs, hasTokenIds: true, settingsRecord: record)
        } else {
            made = nil
        }
        if restriction == nil { answersMemo = .some(made) }
        return made
    }

    private func generate(_ model: LanguageModel, prompts: [PromptItem]) throws -> [GoldenOutput] {
        let generator = Generator(model: model.decoder)
        let generation = settings.generation
        let options = GenerationOptions(maxNewTokens: generation.maxTokens, sampling: SamplingSettings(), seed: 0,
                                        stopTokenIds: model.stopTokenIds, ignoreEOS: generation.ignoreEOS)
        var outputs: [GoldenOutput] = []
        for (index, prompt) in prompts.enumerated() {
            session.report("generating (\(name))", index, prompts.count)
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
        guard isModel, !session.pairIds.isEmpty else { return nil }
        var entry: BaseCacheEntry<PairScore>?
        if kind == .base, let file = settings.evalsets.pairs {
            let ids = session.pairIds
            entry = BaseCacheEntry(kind: "pairs", evalset: file, encode: BaseResultCache.encode,
                                   decode: { BaseResultCache.decodePairs($0, expecting: ids) })
        }
        return try perItem(.pairScores, ids: session.pairIds, codec: .pairScore, cache: entry) { indices in
            self.session.report("scoring pairs (\(self.name))", 0, indices.count)
            let model = try self.model()
            return try self.session.inGroups(.pairs, indices).flatMap { group in
                try EvalsetScoring.scorePairs(group.map { self.session.pairs[$0] }, model: model)
            }
        }
    }

    /// The subject's per-token log-probs of the reference texts (nil without texts or a model).
    public func textScores() throws -> [TextScore]? {
        guard isModel, !session.textIds.isEmpty else { return nil }
        var entry: BaseCacheEntry<TextScore>?
        if kind == .base, let file = settings.evalsets.texts {
            let ids = session.textIds
            entry = BaseCacheEntry(kind: "texts", evalset: file, encode: BaseResultCache.encode,
                                   decode: { BaseResultCache.decodeTexts($0, expecting: ids) })
        }
        return try perItem(.textScores, ids: session.textIds, codec: .textScore, cache: entry) { indices in
            if self.kind != .base { self.session.report("drift on texts (\(self.name))", 0, indices.count) }
            let model = try self.model()
            return try self.session.inGroups(.texts, indices).flatMap { group in
                try EvalsetScoring.scoreTexts(group.map { self.session.texts[$0] }, model: model)
            }
        }
    }

    /// Token-level KL(base ‖ checkpoint) and top-token agreement on the reference texts, tokenized by the base
    /// (nil without texts, a base, or for subjects other than checkpoints). Distributions are recomputed, never
    /// cached: at a real vocabulary they are far too large to store.
    public func textDistributions() throws -> DistributionComparison.Result? {
        guard kind == .checkpoint, settings.base != nil, !session.textIds.isEmpty else { return nil }
        let values = try perItem(.textDistributions, ids: session.textIds, codec: .distribution) { indices in
            guard let base = self.session.base else { throw HarnessError.missingInput("the base model is needed for distributions") }
            let sequences = try EvalsetScoring.tokenizeTexts(indices.map { self.session.texts[$0] }, model: base)
            let result = try DistributionComparison.compare(reference: base.decoder, candidate: try self.model().decoder, sequences: sequences)
            return zip(result.kl, result.sameTop).map { TextDistribution(kl: $0, sameTop: $1) }
        }
        return DistributionComparison.Result(kl: values.map(\.kl), sameTop: values.map(\.sameTop))
    }

    // MARK: - Per-subject inputs

    /// The subject's golden file (nil when there is none), read once.
    public func goldenFile() throws -> GoldenFile? {
        try perSubject(.goldenFile, codec: .goldenFile) {
            let url = GoldenFile.url(directory: self.settings.goldenDirectory, suite: self.settings.goldenSuiteName, checkpoint: self.name)
            return FileManager.default.fileExists(atPath: url.path) ? try GoldenFile.load(url) : nil
        }
    }

    // MARK: - Memoization, recording, replay

    private struct Memo<Value> { let value: Value }

    /// The values of `computation` for the items `ids` (in evalset order), each computed at most once. `compute`
    /// gets the indices (into `ids`) still missing and returns their values in that order. With `cache` (the base's
    /// side), the whole list is first looked up in the base-result cache, and stored there once all of it was
    /// computed here. A shard computes only the items it owns (`restriction`) and records them; `merge` reads them.
    func perItem<Value>(_ computation: ContextComputation, ids: [String], codec: ItemCodec<Value>,
                        cache entry: BaseCacheEntry<Value>? = nil, compute: ([Int]) throws -> [Value]) throws -> [Value] {
        if let replay {
            return try ids.map { id in
                guard let json = replay.items[computation.name]?[id] else {
                    throw ShardError.missingRecord(subject: name, computation: computation.name, item: id)
                }
                guard let value = codec.decode(json) else {
                    throw ShardError.invalidRecord(subject: name, computation: computation.name, item: id)
                }
                return value
            }
        }
        let owned = restriction?[computation.scope]
        let wanted = owned.map { owned in ids.indices.filter { owned.contains(ids[$0]) } } ?? Array(ids.indices)
        var memo = itemMemo[computation.name] ?? [:]
        var missing = wanted.filter { memo[ids[$0]] == nil }
        if !missing.isEmpty, let entry, !cacheConsulted.contains(computation.name) {
            cacheConsulted.insert(computation.name)
            if let stored = try session.cachedBaseResult(entry) {
                for (id, value) in zip(ids, stored) { memo[id] = Memo(value: value) }
                missing = []
            }
        }
        if !missing.isEmpty {
            let values = try compute(missing)
            precondition(values.count == missing.count, "\(computation.name): \(values.count) values for \(missing.count) items")
            for (index, value) in zip(missing, values) { memo[ids[index]] = Memo(value: value) }
            if let entry {
                session.baseWork.append(entry.kind)
                // Stored only when every item was computed here (a shard computing a part stores nothing).
                if missing.count == ids.count { session.storeBaseResult(entry, ids.map { (memo[$0] as! Memo<Value>).value }) }
            }
        }
        itemMemo[computation.name] = memo
        let values = wanted.map { (memo[ids[$0]] as! Memo<Value>).value }
        if let recorder, owned != nil {
            for (index, value) in zip(wanted, values) { recorder.record(computation.name, item: ids[index], codec.encode(value)) }
        }
        return values
    }

    /// A per-subject value, computed once; recorded by the shard owning the subject's subject-level work.
    func perSubject<Value>(_ computation: ContextComputation, codec: ItemCodec<Value>, compute: () throws -> Value) throws -> Value {
        if let replay {
            guard let json = replay.values[computation.name] else {
                throw ShardError.missingRecord(subject: name, computation: computation.name, item: nil)
            }
            guard let value = codec.decode(json) else {
                throw ShardError.invalidRecord(subject: name, computation: computation.name, item: nil)
            }
            return value
        }
        let value: Value
        if let memo = subjectMemo[computation.name] as? Memo<Value> {
            value = memo.value
        } else {
            value = try compute()
            subjectMemo[computation.name] = Memo(value: value)
        }
        if let recorder, recordsSubjectValues { recorder.values[computation.name] = codec.encode(value) }
        return value
    }

    /// The subject's summed log-likelihood of every choice of every multiple-choice item, lm-eval's way (nil without
    /// items or a model), scored group by group (`session.itemGroups(.choices)`, so sharded runs pack the same passes).
    public func choiceScores() throws -> [ChoiceScore]? {
        guard isModel, !session.choiceIds.isEmpty, let file = settings.evalsets.choices else { return nil }
        let maxLength = thresholds.choices.maxLength
        var entry: BaseCacheEntry<ChoiceScore>?
        if kind == .base {
            let items = session.choiceItems
            entry = BaseCacheEntry(kind: "choices", evalset: file, extra: ["max_length=\(maxLength.map(String.init) ?? "model")"],
                                   encode: BaseResultCache.encode, decode: { BaseResultCache.decodeChoices($0, expecting: items) })
        }
        return try perItem(.choiceScores, ids: session.choiceIds, codec: .choiceScore, cache: entry) { indices in
            let model = try self.model()
            var done = 0
            return try self.session.inGroups(.choices, indices).flatMap { group -> [ChoiceScore] in
                self.session.report("scoring choices (\(self.name))", done, indices.count)
                done += group.count
                return try LoglikelihoodScoring.scoreChoices(group.map { self.session.choiceItems[$0] }, model: model,
                                                             maxLength: maxLength, path: file, groupSize: Int.max)
            }
        }
    }

    /// The subject's summed rolling-window log-likelihood of every reference text, lm-eval's way (nil without texts
    /// or a model).
    public func rollingScores() throws -> [RollingScore]? {
        guard isModel, !session.textIds.isEmpty, let file = settings.evalsets.texts else { return nil }
        let maxLength = thresholds.perplexity.maxLength
        var entry: BaseCacheEntry<RollingScore>?
        if kind == .base {
            let texts = session.texts
            entry = BaseCacheEntry(kind: "rolling", evalset: file, extra: ["max_length=\(maxLength.map(String.init) ?? "model")"],
                                   encode: BaseResultCache.encode, decode: { BaseResultCache.decodeRolling($0, expecting: texts) })
        }
        return try perItem(.rollingScores, ids: session.textIds, codec: .rollingScore, cache: entry) { indices in
            self.session.report("perplexity (\(self.name))", 0, indices.count)
            let model = try self.model()
            return try self.session.inGroups(.texts, indices).flatMap { group in
                try LoglikelihoodScoring.scoreRolling(group.map { self.session.texts[$0] }, model: model, maxLength: maxLength)
            }
        }
    }
}

/// One text's distribution comparison: per position, KL(base ‖ subject) and whether the top tokens agree.
public struct TextDistribution: Sendable, Equatable {
    public var kl: [Double]
    public var sameTop: [Bool]
}

/// A base result as the base-result cache stores it: the whole list under one key.
struct BaseCacheEntry<Value> {
    var kind: String
    var evalset: String
    var extra: [String] = []
    var encode: ([Value]) -> JSONValue
    var decode: (JSONValue) -> [Value]?
}
