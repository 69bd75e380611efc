import Foundation
import TunecheckEngine

/// What one evaluation runs on and how.
public struct EvaluationOptions: Sendable {
    public var name: String = "tunecheck"
    public var base: URL?
    public var checkpoints: [CheckpointSpec] = []
    /// Fused folders, each optionally with the adapter it came from (for fused consistency).
    public var fused: [SuiteConfiguration.FusedModel] = []
    public var evalsets = SuiteConfiguration.Evalsets()
    /// Suites to run; nil runs every suite the inputs allow.
    public var suites: Set<SuiteKind>?
    public var generation = GenerationSettings()
    public var thresholds = Thresholds()
    public var goldenDirectory = URL(fileURLWithPath: "golden")
    /// Name of the golden subfolder (the suite file's `name`).
    public var goldenSuiteName = "tunecheck"
    public var updateGolden = false
    /// Checkpoints will be handed to `evaluate(_:)` one by one later (a trainer or a watcher), so the
    /// checkpoint suites are active even though `checkpoints` is empty.
    public var checkpointsArriveLater = false

    public init() {}

    public init(configuration: SuiteConfiguration) throws {
        name = configuration.name
        base = configuration.base.map { URL(fileURLWithPath: $0) }
        checkpoints = try CheckpointSpec.resolve(configuration.checkpoints)
        fused = configuration.fused
        evalsets = configuration.evalsets
        suites = configuration.suites.map(Set.init)
        generation = configuration.generation
        thresholds = configuration.thresholds
        goldenDirectory = URL(fileURLWithPath: configuration.goldenDir)
        goldenSuiteName = configuration.name
    }
}

/// Everything evaluated for one checkpoint.
public struct CheckpointEvaluation: Sendable {
    public var summary: CheckpointSummary
    public var suites: [SuiteResult]
    public var answers: [AnswerRecord]
    public var golden: [GoldenComparison]
}

/// Runs the suites: loads the base and the evalsets once, evaluates the base, then each checkpoint as it is
/// asked for (`evaluate(_:)`), so a trainer or watcher can evaluate checkpoints one by one as they appear.
public final class Evaluator: @unchecked Sendable {
    public let options: EvaluationOptions
    /// Called with a stage description, items done and total, for progress lines.
    public var progress: ((String, Int, Int) -> Void)?

    public private(set) var base: LanguageModel?
    private(set) var prompts: [PromptItem] = []
    private(set) var pairs: [PairItem] = []
    private(set) var texts: [TextItem] = []
    private(set) var answers: [AnswerItem] = []
    private var basePairScores: [PairScore]?
    private var baseTextScores: [TextScore]?
    private var textSequences: [[Int]] = []
    public private(set) var preflight: PreflightAnalysis?
    private var evaluations: [CheckpointEvaluation] = []
    private var extraSuites: [SuiteResult] = []
    private let startedAt = Date()

    public init(options: EvaluationOptions) {
        self.options = options
    }

    /// The suites that will run given the inputs (the requested ones, or all the inputs allow).
    public var activeSuites: Set<SuiteKind> {
        var allowed: Set<SuiteKind> = []
        let hasModel = options.base != nil || !options.checkpoints.isEmpty || options.checkpointsArriveLater
        let hasCheckpoints = !options.checkpoints.isEmpty || !options.fused.isEmpty || options.checkpointsArriveLater
        if options.evalsets.prompts != nil && hasModel || options.evalsets.answers != nil {
            allowed.formUnion([.repetition, .golden])
        }
        if options.base != nil && options.evalsets.pairs != nil { allowed.insert(.preflight) }
        if options.base != nil && hasCheckpoints && options.evalsets.pairs != nil { allowed.insert(.preference) }
        if options.base != nil && hasCheckpoints && (options.evalsets.pairs != nil || options.evalsets.texts != nil) { allowed.insert(.drift) }
        if options.base != nil && hasCheckpoints { allowed.insert(.weightDelta) }
        if options.fused.contains(where: { $0.adapter != nil }) && options.base != nil { allowed.insert(.fusedConsistency) }
        return options.suites.map { $0.intersection(allowed) } ?? allowed
    }

    /// Checks that every requested suite has the inputs it needs.
    public func validateRequest() throws {
        guard let requested = options.suites else { return }
        let missing = requested.subtracting(activeSuites)
        for suite in missing.sorted(by: { $0.rawValue < $1.rawValue }) {
            let need: String
            switch suite {
            case .repetition, .golden: need = "prompts (or answers) and a model"
            case .preflight: need = "a base model and pairs"
            case .preference: need = "a base model, checkpoints and pairs"
            case .drift: need = "a base model, checkpoints, and pairs or texts"
            case .weightDelta: need = "a base model and checkpoints"
            case .fusedConsistency: need = "a base model and a fused folder with its adapter"
            }
            throw HarnessError.missingInput("suite '\(suite.rawValue)' needs \(need)")
        }
    }

    /// Loads the base and evalsets, runs preflight and evaluates the base.
    public func prepare() throws {
        try validateRequest()
        if let url = options.evalsets.prompts { prompts = try EvalsetLoader.prompts(url.asFileURL) }
        if let url = options.evalsets.pairs { pairs = try EvalsetLoader.pairs(url.asFileURL) }
        if let url = options.evalsets.texts { texts = try EvalsetLoader.texts(url.asFileURL) }
        if let url = options.evalsets.answers { answers = try EvalsetLoader.answers(url.asFileURL) }
        let suites = activeSuites
        if let baseURL = options.base {
            report("loading base", 0, 1)
            let model = try LanguageModel.load(folder: baseURL)
            base = model
            if !pairs.isEmpty && (suites.contains(.preflight) || suites.contains(.preference) || suites.contains(.drift)) {
                report("scoring pairs (base)", 0, pairs.count)
                basePairScores = try EvalsetScoring.scorePairs(pairs, model: model)
            }
            if !texts.isEmpty && suites.contains(.drift) {
                baseTextScores = try EvalsetScoring.scoreTexts(texts, model: model)
                textSequences = baseTextScores!.map(\.ids)
            }
            if suites.contains(.preflight), let scores = basePairScores {
                let analysis = PreflightAnalysis(scores: scores, thresholds: options.thresholds.preflight)
                preflight = analysis
                extraSuites.append(analysis.suiteResult(scores: scores))
            }
            if suites.contains(.repetition) || suites.contains(.golden), !prompts.isEmpty {
                evaluations.append(try evaluateGeneration(LoadedCheckpoint(spec: .base, model: model, adapter: nil)))
            }
        }
        if !answers.isEmpty {
            try evaluateSuppliedAnswers()
        }
        for fused in options.fused {
            try evaluateFusedConsistency(fused)
        }
    }

    /// Evaluates one checkpoint against the prepared base and evalsets.
    @discardableResult
    public func evaluate(_ spec: CheckpointSpec, trainingLoss: Double? = nil) throws -> CheckpointEvaluation {
        let checkpoint = try LoadedCheckpoint.load(spec, base: base)
        var evaluation = try evaluateGeneration(checkpoint)
        evaluation.summary.trainingLoss = trainingLoss
        let suites = activeSuites
        var pairScores: [PairScore]?
        if let basePairScores, suites.contains(.preference) || suites.contains(.drift) {
            report("scoring pairs (\(spec.name))", 0, pairs.count)
            pairScores = try EvalsetScoring.scorePairs(pairs, model: checkpoint.model)
            if suites.contains(.preference) {
                let result = PreferenceSuite.run(checkpoint: spec.name, policy: pairScores!, reference: basePairScores,
                                                 thresholds: options.thresholds.preference)
                evaluation.suites.append(result)
                evaluation.summary.preferenceAccuracy = result.metric("rewards/accuracies")
                evaluation.summary.meanMargin = result.metric("rewards/margins")
            }
        }
        if suites.contains(.drift), let base {
            var textDrift: DriftSuite.TextDrift?
            if let baseTextScores {
                report("drift on texts (\(spec.name))", 0, texts.count)
                let checkpointTexts = try EvalsetScoring.scoreTexts(texts, model: checkpoint.model)
                let comparison = try DistributionComparison.compare(reference: base.decoder, candidate: checkpoint.model.decoder, sequences: textSequences)
                textDrift = DriftSuite.TextDrift(base: baseTextScores, checkpoint: checkpointTexts, comparison: comparison)
            }
            evaluation.suites.append(DriftSuite.run(checkpoint: spec.name, basePairs: basePairScores, checkpointPairs: pairScores,
                                                    textDrift: textDrift, thresholds: options.thresholds.drift))
        }
        if suites.contains(.weightDelta), let base {
            let result = try WeightDeltaSuite.run(checkpoint: checkpoint, base: base, thresholds: options.thresholds.weightDelta)
            evaluation.suites.append(result)
            evaluation.summary.relativeWeightDelta = result.metric("relative_delta")
        }
        evaluation.summary.passed = evaluation.suites.allSatisfy(\.passed)
        if let index = evaluations.firstIndex(where: { $0.summary.name == spec.name }) {
            evaluations[index] = evaluation
        } else {
            evaluations.append(evaluation)
        }
        return evaluation
    }

    /// All checkpoints of the options, in order.
    public func evaluateAll() throws {
        for (index, spec) in options.checkpoints.enumerated() {
            report("checkpoint \(spec.name)", index, options.checkpoints.count)
            try evaluate(spec)
        }
    }

    /// The report of everything evaluated so far.
    public func makeReport() -> EvaluationReport {
        var settings: [(key: String, value: String)] = []
        if let baseURL = options.base { settings.append(("base", baseURL.path)) }
        for (key, value) in [("prompts", options.evalsets.prompts), ("pairs", options.evalsets.pairs),
                             ("texts", options.evalsets.texts), ("answers", options.evalsets.answers)] {
            if let value { settings.append((key, value)) }
        }
        settings.append(("max_tokens", "\(options.generation.maxTokens)"))
        settings.append(("chat_template", options.generation.chatTemplate.rawValue))
        settings.append(("suites", activeSuites.map(\.rawValue).sorted().joined(separator: ", ")))
        if let preflight {
            settings.append(("preflight", "\(preflight.verdict.rawValue): \(preflight.reasons.first ?? "")"))
        }
        return EvaluationReport(
            title: options.name, startedAt: startedAt, durationSeconds: Date().timeIntervalSince(startedAt), settings: settings,
            suites: extraSuites + evaluations.flatMap(\.suites), checkpoints: evaluations.map(\.summary),
            answers: evaluations.flatMap(\.answers), golden: evaluations.flatMap(\.golden))
    }

    // MARK: - Generation suites

    var generationSettingsRecord: [String: String] {
        ["max_tokens": "\(options.generation.maxTokens)", "chat_template": options.generation.chatTemplate.rawValue,
         "ignore_eos": "\(options.generation.ignoreEOS)", "decoding": "greedy"]
    }

    /// Greedy answers to the prompts, then the repetition and golden suites on them.
    func evaluateGeneration(_ checkpoint: LoadedCheckpoint) throws -> CheckpointEvaluation {
        let name = checkpoint.spec.name
        var evaluation = CheckpointEvaluation(summary: CheckpointSummary(name: name, step: checkpoint.spec.step, passed: true),
                                              suites: [], answers: [], golden: [])
        let suites = activeSuites
        guard !prompts.isEmpty, suites.contains(.repetition) || suites.contains(.golden) else { return evaluation }
        let model = checkpoint.model
        let generator = Generator(model: model.decoder)
        let options = GenerationOptions(maxNewTokens: self.options.generation.maxTokens, sampling: SamplingSettings(),
                                        seed: 0, stopTokenIds: model.stopTokenIds, ignoreEOS: self.options.generation.ignoreEOS)
        var outputs: [GoldenOutput] = []
        for (index, prompt) in prompts.enumerated() {
            report("generating (\(name))", index, prompts.count)
            let promptIds = try PromptFormatter.promptIds(prompt.prompt, model: model, mode: self.options.generation.chatTemplate)
            let result = try generator.generate(promptIds: promptIds, options: options)
            var textIds = result.ids
            if result.finishReason == .stopToken, let last = textIds.last, model.stopTokenIds.contains(last) { textIds.removeLast() }
            let text = try model.tokenizer.decode(textIds)
            outputs.append(GoldenOutput(id: prompt.id, prompt: prompt.prompt, promptIds: promptIds, ids: result.ids, text: text))
        }
        try finishGeneration(name: name, outputs: outputs, tokenIds: true, into: &evaluation)
        return evaluation
    }

    /// Answers given as text (`--answers`): repetition and golden only, grouped by their `checkpoint` field.
    func evaluateSuppliedAnswers() throws {
        var order: [String] = []
        var groups: [String: [GoldenOutput]] = [:]
        for answer in answers {
            let name = answer.checkpoint ?? "answers"
            if groups[name] == nil { order.append(name) }
            groups[name, default: []].append(GoldenOutput(id: answer.id, prompt: answer.prompt, promptIds: nil, ids: nil, text: answer.answer))
        }
        for name in order {
            var evaluation = CheckpointEvaluation(summary: CheckpointSummary(name: name, step: CheckpointSpec.step(in: name), passed: true),
                                                  suites: [], answers: [], golden: [])
            try finishGeneration(name: name, outputs: groups[name]!, tokenIds: false, into: &evaluation)
            evaluations.append(evaluation)
        }
    }

    private func finishGeneration(name: String, outputs: [GoldenOutput], tokenIds: Bool, into evaluation: inout CheckpointEvaluation) throws {
        let suites = activeSuites
        var answerRecords: [AnswerRecord] = []
        if suites.contains(.repetition) {
            let (result, records) = RepetitionSuite.run(checkpoint: name, outputs: outputs, useTokenIds: tokenIds,
                                                        thresholds: options.thresholds.repetition)
            evaluation.suites.append(result)
            evaluation.summary.repetitionScore = result.metric("max_repetition_score")
            answerRecords = records
        } else {
            answerRecords = outputs.map { AnswerRecord(checkpoint: name, promptId: $0.id, prompt: $0.prompt, text: $0.text, ids: $0.ids) }
        }
        evaluation.answers = answerRecords
        if suites.contains(.golden) {
            let (result, comparisons) = try GoldenSuite.run(
                suiteName: options.goldenSuiteName, checkpoint: name, actual: outputs,
                settings: tokenIds ? generationSettingsRecord : ["source": "answers"], directory: options.goldenDirectory,
                update: options.updateGolden, thresholds: options.thresholds.golden)
            evaluation.suites.append(result)
            evaluation.golden = comparisons
        }
        evaluation.summary.passed = evaluation.suites.allSatisfy(\.passed)
    }

    // MARK: - Fused consistency

    func evaluateFusedConsistency(_ fused: SuiteConfiguration.FusedModel) throws {
        let fusedSpec = try CheckpointSpec.from(path: fused.path)
        guard case .modelFolder = fusedSpec.source else {
            throw HarnessError.invalidCheckpoint(path: fused.path, reason: "a fused model must be a model folder with config.json")
        }
        guard activeSuites.contains(.fusedConsistency), let adapterPath = fused.adapter, let base else { return }
        report("fused consistency (\(fusedSpec.name))", 0, 1)
        let adapter = try Adapter.load(path: URL(fileURLWithPath: adapterPath))
        let unfused = try adapter.attach(to: base.decoder)
        let fusedModel = try ModelLoader.loadDecoder(folder: URL(fileURLWithPath: fused.path))
        var sequences = textSequences
        if sequences.isEmpty {
            sequences = try EvalsetScoring.tokenizeTexts(texts, model: base)
        }
        if sequences.isEmpty {
            sequences = pairs.flatMap { pair in
                [PromptResponseTokens(tokenizer: base.tokenizer, prompt: pair.prompt, response: pair.chosen).ids,
                 PromptResponseTokens(tokenizer: base.tokenizer, prompt: pair.prompt, response: pair.rejected).ids]
            }
        }
        if sequences.isEmpty {
            sequences = prompts.map { base.tokenizer.encode($0.prompt) }.filter { $0.count >= 2 }
        }
        guard !sequences.isEmpty else {
            throw HarnessError.missingInput("fused consistency needs texts, pairs or prompts to score")
        }
        let scale = adapter.modules.map { abs($0.scale) }.max() ?? 1
        extraSuites.append(try FusedConsistencySuite.run(name: fusedSpec.name, unfused: unfused, fused: fusedModel, sequences: sequences,
                                                         adapterScale: scale, thresholds: options.thresholds.fused))
    }

    private func report(_ stage: String, _ done: Int, _ total: Int) {
        progress?(stage, done, total)
    }
}

extension String {
    var asFileURL: URL { URL(fileURLWithPath: self) }
}
