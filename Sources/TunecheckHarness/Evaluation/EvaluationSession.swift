import Foundation
import TunecheckEngine
import TunecheckJSON

/// What one evaluation session runs on and how: a suite file's settings plus the overrides a command adds.
public struct SessionSettings: Sendable {
    public var name: String = "tunecheck"
    public var base: URL?
    /// Checkpoints to evaluate in order (`eval`); a watcher or trainer hands its checkpoints over one by one instead.
    public var checkpoints: [CheckpointSpec] = []
    /// Fused folders, each optionally with the adapter it came from (for fused consistency).
    public var fused: [SuiteConfiguration.FusedModel] = []
    public var evalsets = SuiteConfiguration.Evalsets()
    /// Suites to run; nil runs every suite the inputs allow.
    public var suites: [SuiteKind]?
    public var generation = GenerationSettings()
    public var thresholds = Thresholds()
    public var goldenDirectory = URL(fileURLWithPath: "golden")
    /// Name of the golden subfolder (the suite file's `name`).
    public var goldenSuiteName = "tunecheck"
    public var updateGolden = false
    /// Where the base's results are kept between runs (nil: computed every time).
    public var cacheDirectory: URL?
    /// Checkpoints arrive after `prepare()` (from a watched folder or a trainer), so the checkpoint suites are
    /// active even though `checkpoints` is empty.
    public var checkpointsArriveLater = false

    public init() {}

    public init(configuration: SuiteConfiguration) throws {
        name = configuration.name
        base = configuration.base.map { URL(fileURLWithPath: $0) }
        checkpoints = try CheckpointSpec.resolve(configuration.checkpoints)
        fused = configuration.fused
        evalsets = configuration.evalsets
        suites = configuration.suites
        generation = configuration.generation
        thresholds = configuration.thresholds
        goldenDirectory = URL(fileURLWithPath: configuration.goldenDir)
        goldenSuiteName = configuration.name
        cacheDirectory = configuration.cacheDir.map { URL(fileURLWithPath: $0) }
    }

    /// What the session has to work with.
    public var inputs: SuiteInputs {
        var inputs = SuiteInputs()
        inputs.base = base != nil
        inputs.checkpoints = !checkpoints.isEmpty || !fused.isEmpty || checkpointsArriveLater
        inputs.prompts = evalsets.prompts != nil
        inputs.pairs = evalsets.pairs != nil
        inputs.texts = evalsets.texts != nil
        inputs.answers = evalsets.answers != nil
        inputs.choices = evalsets.choices != nil
        inputs.fusedWithAdapter = fused.contains { $0.adapter != nil }
        return inputs
    }
}

extension GenerationSettings {
    /// How the answers were made, as golden files record it.
    var record: [String: String] {
        ["max_tokens": "\(maxTokens)", "chat_template": chatTemplate.rawValue, "ignore_eos": "\(ignoreEOS)", "decoding": "greedy"]
    }
}

/// Where and how a session writes its reports.
public struct ReportSettings: Sendable {
    public var directory: URL
    public var formats: Set<ReportFormat>
    /// Also write each checkpoint's own JUnit and JSON into `directory/<checkpoint>/` (training runs).
    public var perCheckpoint = false

    public init(directory: URL, formats: Set<ReportFormat>, perCheckpoint: Bool = false) {
        self.directory = directory
        self.formats = formats
        self.perCheckpoint = perCheckpoint
    }
}

/// Everything evaluated for one subject.
public struct CheckpointEvaluation: Sendable {
    public var summary: CheckpointSummary
    public var suites: [SuiteResult]
    public var answers: [AnswerRecord]
    public var golden: [GoldenComparison]

    public var passed: Bool { summary.passed }
    public var failedSuites: [SuiteResult] { suites.filter { !$0.passed } }
}

/// One evaluation for `eval`, `watch` and `train` alike: owns the settings, the loaded base and its once-computed
/// results, the checkpoints evaluated so far, the reports and the failure summary. Checkpoints come as a list
/// (`evaluateAll`), from a watched folder (`watch`), or one by one from a trainer (`evaluate`).
public final class EvaluationSession: @unchecked Sendable {
    public let settings: SessionSettings
    public let reports: ReportSettings?
    /// Called with a stage description, items done and total, for progress lines.
    public var progress: ((String, Int, Int) -> Void)?
    /// Called with each notice as it is made (e.g. a suite that did not run on a checkpoint, and why).
    public var onNotice: ((String) -> Void)?

    public private(set) var base: LanguageModel?
    private(set) var prompts: [PromptItem] = []
    private(set) var pairs: [PairItem] = []
    private(set) var texts: [TextItem] = []
    private(set) var suppliedAnswers: [AnswerItem] = []
    public private(set) var choiceItems: [ChoiceItem] = []

    /// The ids of each evalset's items, in order.
    func itemIds(_ scope: ContextComputation.Scope) -> [String] {
        if let replayedItemIds { return replayedItemIds[scope] ?? [] }
        switch scope {
        case .prompts: return prompts.map(\.id)
        case .pairs: return pairs.map(\.id)
        case .texts: return texts.map(\.id)
        case .choices: return choiceItems.map(\.id)
        case .subject: return []
        }
    }

    /// Items computed together, as index groups in evalset order: the scored evalsets in runs of at most one packed
    /// scoring pass (`Scorer.defaultTokenBudget` tokens by the base's tokenizer), the prompts one by one. Every
    /// subject scores its items group by group, and a shard owns whole groups, so each forward pass holds the same
    /// sequences sharded or not and the numbers agree to the bit (a pass's shape decides the BLAS summation order).
    func itemGroups(_ scope: ContextComputation.Scope) -> [[Int]] {
        if let known = itemGroupsMemo[scope] { return known }
        var lengths: [Int]
        switch scope {
        case .pairs:
            lengths = pairs.map { pair in
                guard let base else { return 1 }
                return [pair.chosen, pair.rejected].map { base.tokenizer.encode(pair.prompt + $0).count }.reduce(0, +)
            }
        case .texts:
            lengths = texts.map { text in base.map { $0.tokenizer.encode(text.text).count } ?? 1 }
        case .choices:
            // Every choice is a sequence of context + choice tokens.
            lengths = choiceItems.map { item in
                guard let base else { return 1 }
                return item.choices.map { base.tokenizer.encode(item.context + item.targetDelimiter + $0).count }.reduce(0, +)
            }
        case .prompts, .subject:
            lengths = []
        }
        var groups: [[Int]] = []
        if lengths.isEmpty {
            groups = itemIds(scope).indices.map { [$0] }
        } else {
            var tokens = 0
            for (index, length) in lengths.enumerated() {
                if groups.isEmpty || tokens + length > Scorer.defaultTokenBudget {
                    groups.append([])
                    tokens = 0
                }
                groups[groups.count - 1].append(index)
                tokens += length
            }
        }
        itemGroupsMemo[scope] = groups
        return groups
    }

    /// `indices` cut along `itemGroups(scope)` (a group's indices that are in `indices`, in order).
    func inGroups(_ scope: ContextComputation.Scope, _ indices: [Int]) -> [[Int]] {
        let wanted = Set(indices)
        return itemGroups(scope).map { $0.filter(wanted.contains) }.filter { !$0.isEmpty }
    }

    var promptIds: [String] { itemIds(.prompts) }
    var pairIds: [String] { itemIds(.pairs) }
    var textIds: [String] { itemIds(.texts) }
    var choiceIds: [String] { itemIds(.choices) }
    public private(set) var notices: [String] = []

    /// The base-result cache (with `cacheDirectory`).
    public internal(set) var cache: BaseResultCache?
    private var baseModelDigest: String?
    /// The base results this session computed (rather than read from the cache): "pairs", "texts", "answers".
    public internal(set) var baseWork: [String] = []
    /// The base subject: its answers and scores are the base's side of every checkpoint's suites.
    var baseContext: EvaluationContext?
    private var preflightMemo: PreflightAnalysis??
    /// Results about the inputs rather than one checkpoint (preflight, fused consistency), reported first.
    var sessionSuites: [SuiteResult] = []
    var evaluations: [CheckpointEvaluation] = []
    /// `merge`: the evalsets' item ids in order, from the part files (the evalsets themselves are not read).
    var replayedItemIds: [ContextComputation.Scope: [String]]?
    private var itemGroupsMemo: [ContextComputation.Scope: [[Int]]] = [:]
    /// Checkpoints that could not be read (a watched folder), with why.
    private var broken: [(name: String, step: Int?, reason: String)] = []
    let startedAt = Date()
    /// A merged session's timing: from the first shard's start to the last shard's end (not the merge's own).
    var mergedTiming: (startedAt: Date, durationSeconds: Double)?

    /// The suites this session knows: the registry's, or more (a test, or a tool embedding the harness, can add
    /// its own conformers without touching the registry).
    public let registry: [any EvaluationSuite.Type]

    public init(settings: SessionSettings, reports: ReportSettings? = nil, registry: [any EvaluationSuite.Type] = SuiteRegistry.all) {
        self.settings = settings
        self.reports = reports
        self.registry = registry
    }

    // MARK: - Suites

    /// The suites that run: those requested, or every suite the inputs allow, in registry order.
    public var activeSuites: [any EvaluationSuite.Type] {
        let inputs = settings.inputs
        let requested = settings.suites.map(Set.init)
        return registry.filter { suite in suite.canRun(with: inputs) && (requested?.contains(suite.kind) ?? true) }
    }

    public var activeKinds: [SuiteKind] { activeSuites.map { $0.kind } }

    /// Whether the suite file (or `--suites`) named the suites, rather than running all the inputs allow.
    public var suitesListed: Bool { settings.suites != nil }

    /// Checks that every requested suite has the inputs it needs.
    public func validateRequest() throws {
        guard let requested = settings.suites else { return }
        let inputs = settings.inputs
        for kind in Set(requested).sorted() {
            guard let suite = registry.first(where: { $0.kind == kind }), !suite.canRun(with: inputs) else { continue }
            throw HarnessError.missingInput("suite '\(kind.rawValue)' needs \(suite.requirement)")
        }
    }

    // MARK: - Preparation: inputs, the base, session-level suites

    /// Loads the evalsets and the base, evaluates the base, supplied answers and fused folders. `base`: the
    /// settings' base already loaded by the caller (the trainer's), used instead of mapping its files again.
    public func prepare(base preloaded: LanguageModel? = nil) throws {
        try loadInputs(base: preloaded)
        if let baseContext, let evaluation = try run(baseContext, recordEmpty: false) { record(evaluation) }
        for (name, outputs) in groupedSuppliedAnswers() {
            let context = EvaluationContext(name: name, step: CheckpointName.step(in: name), kind: .suppliedAnswers, session: self,
                                            suppliedAnswers: outputs)
            if let evaluation = try run(context, recordEmpty: true) { record(evaluation) }
        }
        for fused in settings.fused {
            _ = try run(try fusedContext(fused), recordEmpty: false)
        }
    }

    /// Reads the evalsets, opens the cache and loads the base (with its context, or uses `preloaded`); runs nothing.
    func loadInputs(base preloaded: LanguageModel? = nil) throws {
        try validateRequest()
        if let url = settings.evalsets.prompts { prompts = try EvalsetLoader.prompts(url.asFileURL) }
        if let url = settings.evalsets.pairs { pairs = try EvalsetLoader.pairs(url.asFileURL) }
        if let url = settings.evalsets.texts { texts = try EvalsetLoader.texts(url.asFileURL) }
        if let url = settings.evalsets.answers { suppliedAnswers = try EvalsetLoader.answers(url.asFileURL) }
        if let url = settings.evalsets.choices { choiceItems = try EvalsetLoader.choices(url.asFileURL) }
        if let directory = settings.cacheDirectory {
            let cache = try BaseResultCache(directory: directory)
            cache.onNotice = { [weak self] in self?.notice($0) }
            self.cache = cache
        }
        if let baseURL = settings.base {
            report("loading base", 0, 1)
            let model = try preloaded ?? LanguageModel.load(folder: baseURL)
            base = model
            baseContext = EvaluationContext(name: CheckpointSpec.base.name, step: nil, kind: .base, session: self,
                                            checkpoint: LoadedCheckpoint(spec: .base, model: model, adapter: nil))
        }
    }

    func fusedContext(_ fused: SuiteConfiguration.FusedModel) throws -> EvaluationContext {
        let spec = try CheckpointSpec.from(path: fused.path)
        guard case .modelFolder = spec.source else {
            throw HarnessError.invalidCheckpoint(path: fused.path, reason: "a fused model must be a model folder with config.json")
        }
        return EvaluationContext(name: spec.name, step: spec.step, kind: .fused, session: self, fused: fused)
    }

    func groupedSuppliedAnswers() -> [(String, [GoldenOutput])] {
        var order: [String] = []
        var groups: [String: [GoldenOutput]] = [:]
        for answer in suppliedAnswers {
            let name = answer.checkpoint ?? "answers"
            if groups[name] == nil { order.append(name) }
            groups[name, default: []].append(GoldenOutput(id: answer.id, prompt: answer.prompt, promptIds: nil, ids: nil, text: answer.answer))
        }
        return order.map { ($0, groups[$0]!) }
    }

    // MARK: - The base's results, computed once

    /// The base's response scores on the pairs (nil without a base or pairs).
    public func basePairScores() throws -> [PairScore]? {
        try baseContext?.pairScores()
    }

    /// The base's per-token log-probs of the reference texts (nil without a base or texts).
    public func baseTextScores() throws -> [TextScore]? {
        try baseContext?.textScores()
    }

    /// The base's per-choice log-likelihoods of the multiple-choice items (nil without a base or items).
    public func baseChoiceScores() throws -> [ChoiceScore]? {
        try baseContext?.choiceScores()
    }

    /// The base's rolling log-likelihoods of the reference texts (nil without a base or texts).
    public func baseRollingScores() throws -> [RollingScore]? {
        try baseContext?.rollingScores()
    }

    /// The cache's key of a base result: the base model's content, the evalset's bytes and `extra` settings.
    private func cacheKey<Value>(_ entry: BaseCacheEntry<Value>) throws -> String? {
        try baseCacheKey(kind: entry.kind, evalset: entry.evalset, extra: entry.extra)
    }

    func baseCacheKey(kind: String, evalset: String, extra: [String]) throws -> String? {
        guard let cache, let base else { return nil }
        if baseModelDigest == nil { baseModelDigest = try cache.modelDigest(base.folder) }
        return cache.key(kind: kind, parts: ["model \(baseModelDigest!)", "evalset \(try cache.digest(ofFile: evalset.asFileURL))"] + extra)
    }

    /// The cache keys of the base's results this session's suites use (`pairs`, `texts`, `answers`), when it has a
    /// cache: a shard records them so that `merge` can store the merged results under them.
    func baseCacheKeys() throws -> [String: String] {
        var keys: [String: String] = [:]
        let record = settings.generation.record
        let choicesLength = "max_length=\(settings.thresholds.choices.maxLength.map(String.init) ?? "model")"
        let rollingLength = "max_length=\(settings.thresholds.perplexity.maxLength.map(String.init) ?? "model")"
        for (kind, evalset, extra) in [("pairs", settings.evalsets.pairs, [String]()), ("texts", settings.evalsets.texts, []),
                                       ("answers", settings.evalsets.prompts, record.keys.sorted().map { "\($0)=\(record[$0]!)" }),
                                       ("choices", settings.evalsets.choices, [choicesLength]),
                                       ("rolling", settings.evalsets.texts, [rollingLength])] {
            guard let evalset, let key = try baseCacheKey(kind: kind, evalset: evalset, extra: extra) else { continue }
            keys[kind] = key
        }
        return keys
    }

    /// A base result from the cache (nil without a cache or on a miss).
    func cachedBaseResult<Value>(_ entry: BaseCacheEntry<Value>) throws -> [Value]? {
        guard let cache, let key = try cacheKey(entry) else { return nil }
        return cache.lookup(kind: entry.kind, key: key, decode: entry.decode)
    }

    /// Stores a base result computed whole in the cache (when there is one).
    func storeBaseResult<Value>(_ entry: BaseCacheEntry<Value>, _ values: [Value]) {
        guard let cache, let key = try? cacheKey(entry) else { return }
        cache.store(kind: entry.kind, key: key, payload: entry.encode(values))
    }

    /// Token sequences to compare distributions on: the texts, else the pairs' chosen and rejected sequences, else
    /// the prompts (those of at least two tokens).
    public func comparisonSequences() throws -> [[Int]] {
        guard let base else { return [] }
        if !texts.isEmpty { return try EvalsetScoring.tokenizeTexts(texts, model: base) }
        if !pairs.isEmpty {
            return pairs.flatMap { pair in
                [PromptResponseTokens(tokenizer: base.tokenizer, prompt: pair.prompt, response: pair.chosen).ids,
                 PromptResponseTokens(tokenizer: base.tokenizer, prompt: pair.prompt, response: pair.rejected).ids]
            }
        }
        return prompts.map { base.tokenizer.encode($0.prompt) }.filter { $0.count >= 2 }
    }

    /// The preflight analysis of the base on the pairs (nil without them).
    public func preflight() throws -> PreflightAnalysis? {
        if let preflightMemo { return preflightMemo }
        let analysis = try basePairScores().map { PreflightAnalysis(scores: $0, thresholds: settings.thresholds.preflight) }
        preflightMemo = .some(analysis)
        return analysis
    }

    /// The preflight analysis, if the preflight suite ran.
    public var preflightRan: PreflightAnalysis? {
        guard sessionSuites.contains(where: { $0.kind == .preflight }), case .some(let analysis) = preflightMemo else { return nil }
        return analysis
    }

    // MARK: - Checkpoints

    /// Evaluates one checkpoint against the prepared base and evalsets (again, if it was evaluated before).
    @discardableResult
    public func evaluate(_ spec: CheckpointSpec, trainingLoss: Double? = nil) throws -> CheckpointEvaluation {
        let checkpoint = try LoadedCheckpoint.load(spec, base: base)
        let context = EvaluationContext(name: spec.name, step: spec.step, kind: .checkpoint, session: self, checkpoint: checkpoint)
        var evaluation = try run(context, recordEmpty: true)!
        evaluation.summary.trainingLoss = trainingLoss
        record(evaluation)
        try writeCheckpointReports(evaluation)
        return evaluation
    }

    /// Every checkpoint of the settings, in order; `onEvaluated` gets each result and its index.
    public func evaluateAll(_ onEvaluated: (Int, CheckpointEvaluation) -> Void = { _, _ in }) throws {
        for (index, spec) in settings.checkpoints.enumerated() {
            report("checkpoint \(spec.name)", index, settings.checkpoints.count)
            onEvaluated(index, try evaluate(spec))
        }
    }

    /// Records a checkpoint that could not be evaluated (a watched file that stayed unreadable).
    public func recordBroken(path: String, reason: String) {
        let name = URL(fileURLWithPath: path).lastPathComponent
        broken.append((name, CheckpointName.step(in: name), reason))
    }

    /// Runs every active suite that applies to the context's subject. Returns nil when nothing ran and
    /// `recordEmpty` is false.
    func run(_ context: EvaluationContext, recordEmpty: Bool) throws -> CheckpointEvaluation? {
        var evaluation = CheckpointEvaluation(summary: CheckpointSummary(name: context.name, step: context.step, passed: true),
                                              suites: [], answers: [], golden: [])
        var answerRecords: [AnswerRecord]?
        for suite in activeSuites where suite.applies(to: context.kind) {
            // Merging shards: a suite whose work is not per item was run whole by one shard; its result is read.
            let replayed: SuiteRun??
            if let replay = context.replay, case .wholeSuite = suite.sharding(on: context.kind) {
                replayed = .some(try replay.suiteRun(suite.kind, subject: context.name))
            } else {
                replayed = nil
            }
            guard let outcome = try replayed ?? suite.run(in: context) else { continue }
            if suite.isAboutInputs {
                sessionSuites.append(outcome.result)
                continue
            }
            evaluation.suites.append(outcome.result)
            if let answers = outcome.answers { answerRecords = answers }
            evaluation.golden += outcome.golden
        }
        if answerRecords == nil, let answers = context.computedAnswers {
            answerRecords = answers.outputs.map {
                AnswerRecord(checkpoint: context.name, promptId: $0.id, prompt: $0.prompt, text: $0.text, ids: $0.ids)
            }
        }
        evaluation.answers = answerRecords ?? []
        guard recordEmpty || !evaluation.suites.isEmpty else { return nil }
        evaluation.summary = CheckpointSummary(name: context.name, step: context.step, results: evaluation.suites)
        return evaluation
    }

    func record(_ evaluation: CheckpointEvaluation) {
        if let index = evaluations.firstIndex(where: { $0.summary.name == evaluation.summary.name }) {
            evaluations[index] = evaluation
        } else {
            evaluations.append(evaluation)
        }
    }

    func notice(_ text: String) {
        guard !notices.contains(text) else { return }
        notices.append(text)
        onNotice?(text)
    }

    func report(_ stage: String, _ done: Int, _ total: Int) {
        progress?(stage, done, total)
    }

    // MARK: - Results and reports

    /// The report of everything evaluated so far.
    public func makeReport() -> EvaluationReport {
        var reportSettings: [(key: String, value: String)] = []
        if let baseURL = settings.base { reportSettings.append(("base", baseURL.path)) }
        for (key, value) in [("prompts", settings.evalsets.prompts), ("pairs", settings.evalsets.pairs),
                             ("texts", settings.evalsets.texts), ("answers", settings.evalsets.answers),
                             ("choices", settings.evalsets.choices)] {
            if let value { reportSettings.append((key, value)) }
        }
        reportSettings.append(("max_tokens", "\(settings.generation.maxTokens)"))
        reportSettings.append(("chat_template", settings.generation.chatTemplate.rawValue))
        reportSettings.append(("suites", activeKinds.map(\.rawValue).sorted().joined(separator: ", ")))
        if let preflight = preflightRan {
            reportSettings.append(("preflight", "\(preflight.verdict.rawValue): \(preflight.reasons.first ?? "")"))
        }
        return EvaluationReport(
            title: settings.name, startedAt: mergedTiming?.startedAt ?? startedAt,
            durationSeconds: mergedTiming?.durationSeconds ?? Date().timeIntervalSince(startedAt), settings: reportSettings,
            suites: sessionSuites + evaluations.flatMap(\.suites), checkpoints: evaluations.map(\.summary),
            answers: evaluations.flatMap(\.answers), golden: evaluations.flatMap(\.golden))
    }

    /// Every subject evaluated so far, in evaluation order.
    public var evaluated: [CheckpointEvaluation] { evaluations }

    /// Writes the cumulative reports (when the session has report settings). Returns the files written.
    @discardableResult
    public func writeReports() throws -> [URL] {
        guard let reports else { return [] }
        return try ReportWriter.write(makeReport(), to: reports.directory, formats: reports.formats)
    }

    /// A training run's per-checkpoint JUnit and JSON (`<dir>/<checkpoint>/`), then the cumulative reports.
    private func writeCheckpointReports(_ evaluation: CheckpointEvaluation) throws {
        guard let reports, reports.perCheckpoint else { return }
        let whole = makeReport()
        let own = EvaluationReport(title: "\(whole.title): \(evaluation.summary.name)", startedAt: whole.startedAt,
                                   durationSeconds: whole.durationSeconds, settings: whole.settings, suites: evaluation.suites,
                                   checkpoints: [evaluation.summary], answers: evaluation.answers, golden: evaluation.golden)
        try ReportWriter.write(own, to: reports.directory.appendingPathComponent(evaluation.summary.name),
                               formats: reports.formats.intersection([.junit, .json]))
        try ReportWriter.write(whole, to: reports.directory, formats: reports.formats)
    }

    /// What failed so far, in step order.
    public var failures: FailureSummary {
        var entries: [FailureSummary.Entry] = []
        for suite in sessionSuites where !suite.passed {
            entries.append(.init(checkpoint: suite.checkpoint, step: nil, order: -1, suites: [suite.kind], broken: nil))
        }
        for (index, evaluation) in evaluations.enumerated() where !evaluation.passed {
            entries.append(.init(checkpoint: evaluation.summary.name, step: evaluation.summary.step,
                                 order: evaluation.summary.name == CheckpointSpec.base.name ? -1 : index,
                                 suites: evaluation.failedSuites.map(\.kind), broken: nil))
        }
        for item in broken {
            entries.append(.init(checkpoint: item.name, step: item.step, order: evaluations.count, suites: [], broken: item.reason))
        }
        return FailureSummary(entries: entries)
    }
}

/// What failed in a session, ordered for people: the base and the inputs first, then checkpoints by training step
/// (`checkpoint-5, checkpoint-10, …, checkpoint-100`), then those without a step in evaluation order.
public struct FailureSummary: Sendable {
    public struct Entry: Sendable {
        public var checkpoint: String
        public var step: Int?
        /// Evaluation order (−1 for the base and session-level suites), the tie-breaker after the step.
        var order: Int
        public var suites: [SuiteKind]
        /// Why a checkpoint could not be evaluated at all.
        public var broken: String?
    }

    public let entries: [Entry]

    init(entries: [Entry]) {
        self.entries = entries.enumerated().sorted { lhs, rhs in
            let l = lhs.element, r = rhs.element
            let lGroup = l.order < 0 ? 0 : 1, rGroup = r.order < 0 ? 0 : 1
            return (lGroup, l.step ?? Int.max, l.order, lhs.offset) < (rGroup, r.step ?? Int.max, r.order, rhs.offset)
        }.map(\.element)
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The failed checkpoints' names, in order.
    public var checkpoints: [String] {
        var seen = Set<String>()
        return entries.map(\.checkpoint).filter { seen.insert($0).inserted }
    }

    /// One line: `checks failed: drift [0000005_adapters], repetition [0000010_adapters], …`.
    public var description: String {
        let parts = entries.flatMap { entry -> [String] in
            if entry.broken != nil { return ["unreadable [\(entry.checkpoint)]"] }
            return entry.suites.map { "\($0.rawValue) [\(entry.checkpoint)]" }
        }
        return "checks failed: " + parts.joined(separator: ", ")
    }
}

extension CheckpointSummary {
    /// The headline numbers of a checkpoint, read from its suites' results by metric name.
    init(name: String, step: Int?, results: [SuiteResult]) {
        func metric(_ name: MetricName, in kind: SuiteKind) -> Double? {
            results.first { $0.kind == kind }?.metric(name)
        }
        self.init(name: name, step: step, preferenceAccuracy: metric(.rewardsAccuracies, in: .preference),
                  meanMargin: metric(.rewardsMargins, in: .preference), repetitionScore: metric(.maxRepetitionScore, in: .repetition),
                  relativeWeightDelta: metric(.relativeDelta, in: .weightDelta), choicesAccuracy: metric(.acc, in: .choices),
                  wordPerplexity: metric(.wordPerplexity, in: .perplexity), passed: results.allSatisfy(\.passed))
    }

    /// Every suite-level metric of the checkpoint, the first suite's value where two report the same name.
    public static func metrics(of results: [SuiteResult]) -> [MetricName: Double] {
        var values: [MetricName: Double] = [:]
        for suite in results {
            for metric in suite.metrics where values[MetricName(metric.name)] == nil { values[MetricName(metric.name)] = metric.value }
        }
        return values
    }
}

extension String {
    var asFileURL: URL { URL(fileURLWithPath: self) }
}
