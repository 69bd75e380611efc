import Foundation
import TunecheckEngine
import TunecheckHarness
import TunecheckJSON

/// What a finished (or stopped) run reports.
public struct TrainingSummary: Sendable {
    public var steps: Int
    public var finalLoss: Double
    public var checkpoints: [String]
    public var bestCheckpoint: String?
    public var stoppedBy: TrainerError?
    public var outputFolder: URL
    public var reportFolder: URL?
}

/// Events for the terminal: progress per step, and lines worth printing.
public protocol TrainingObserver: AnyObject {
    func step(_ step: Int, of total: Int, loss: Double, learningRate: Double, tokensPerSecond: Double)
    func message(_ text: String)
}

/// LoRA (or full-parameter) SFT and DPO on the shared engine. Saves checkpoints like mlx_lm (numbered
/// `NNNNNNN_adapters.safetensors`, `adapters.safetensors`, `adapter_config.json`, all written atomically),
/// evaluates each one as it is written when an `eval_suite` is set, and stops when a guard trips.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public weak var observer: TrainingObserver?

    private var base: LanguageModel!
    private var parameters: TrainableParameters!
    private var lora: LoRAParameters? { parameters as? LoRAParameters }
    private var sftExamples: [SFTExample] = []
    private var dpoExamples: [DPOExample] = []
    private var evaluator: Evaluator?
    private var reportFolder: URL?
    private var metricsLines: [JSONObject] = []
    private var savedCheckpoints: [String] = []
    private var firstStep = 1

    public init(configuration: TrainingConfiguration) {
        self.configuration = configuration
    }

    var outputFolder: URL { URL(fileURLWithPath: configuration.adapterPath) }
    var exampleCount: Int { configuration.mode == .sft ? sftExamples.count : dpoExamples.count }

    // MARK: - Set-up

    func prepare() throws {
        let config = configuration
        base = try LanguageModel.load(folder: URL(fileURLWithPath: config.model))
        let trainURL = try TrainingData.trainFile(config.data)
        switch config.mode {
        case .sft:
            sftExamples = try TrainingData.sft(trainURL, tokenizer: base.tokenizer, maskPrompt: config.maskPrompt,
                                               appendEOS: config.appendEos, maxLength: config.maxSeqLength)
        case .dpo:
            dpoExamples = try TrainingData.dpo(trainURL, tokenizer: base.tokenizer, appendEOS: config.appendEos, maxLength: config.maxSeqLength)
        }
        switch config.fineTuneType {
        case .lora:
            if let resume = config.resumeAdapterFile {
                let adapter = try Adapter.load(path: URL(fileURLWithPath: resume))
                parameters = try LoRAParameters(base: base.decoder, resuming: adapter, seed: config.seed)
                if let step = try Self.savedStep(resume) { firstStep = step + 1 }
                observer?.message("resuming from \(resume)" + (firstStep > 1 ? " at step \(firstStep - 1)" : ""))
            } else {
                parameters = try LoRAParameters(base: base.decoder, rank: config.lora.rank, scale: Float(config.lora.scale),
                                                keys: config.lora.keys.map(Set.init), numLayers: config.numLayers, seed: config.seed)
            }
        case .full:
            parameters = try FullParameters(folder: URL(fileURLWithPath: config.model))
        }
        if config.mode == .dpo { try prepareReference() }
        try FileManager.default.createDirectory(at: outputFolder, withIntermediateDirectories: true)
        if config.fineTuneType == .lora { try writeAdapterConfig() }
        if let suite = config.evalSuite {
            var suiteConfiguration = try SuiteConfiguration.load(URL(fileURLWithPath: suite))
            suiteConfiguration.base = config.model
            suiteConfiguration.checkpoints = []
            var options = try EvaluationOptions(configuration: suiteConfiguration)
            options.updateGolden = false
            options.checkpointsArriveLater = true
            if options.suites == nil {
                // Golden outputs are kept per named checkpoint; a run's numbered checkpoints have none, so the golden
                // suite runs only when the suite file asks for it by name.
                options.suites = Evaluator(options: options).activeSuites.subtracting([.golden])
            }
            let evaluator = Evaluator(options: options)
            try evaluator.prepare()
            self.evaluator = evaluator
            reportFolder = outputFolder.appendingPathComponent("eval")
        }
    }

    /// The step stored in a checkpoint's metadata (`{"step": "N"}`), when there is one.
    static func savedStep(_ path: String) throws -> Int? {
        let url = URL(fileURLWithPath: path)
        let file = try SafeTensorsFile(url: url.pathExtension == "safetensors" ? url : url.appendingPathComponent("adapters.safetensors"))
        return file.metadata?["step"].flatMap(Int.init)
    }

    /// Reference log-probs: the base with the adapter off, computed once (or read from a file).
    func prepareReference() throws {
        let config = configuration
        if case .file(let referencePath) = config.reference {
            let values = try TrainingData.referenceLogprobs(URL(fileURLWithPath: referencePath), count: dpoExamples.count)
            for index in dpoExamples.indices {
                let value = values[index]
                dpoExamples[index].reference = (value.chosenSum, value.chosenSum / Double(dpoExamples[index].chosen.responseLength),
                                                value.rejectedSum, value.rejectedSum / Double(dpoExamples[index].rejected.responseLength))
            }
            return
        }
        observer?.message("computing reference log-probs with the base model (\(dpoExamples.count) pairs)")
        let scorer = Scorer(model: base.decoder)
        let sequences = dpoExamples.flatMap { [$0.chosen.ids, $0.rejected.ids] }
        let scores = try scorer.score(sequences)
        var lines: [JSONObject] = []
        for index in dpoExamples.indices {
            let chosen = SpanScore(sequenceLogprobs: scores[2 * index], promptLength: dpoExamples[index].chosen.promptLength)
            let rejected = SpanScore(sequenceLogprobs: scores[2 * index + 1], promptLength: dpoExamples[index].rejected.promptLength)
            dpoExamples[index].reference = (chosen.sum, chosen.mean, rejected.sum, rejected.mean)
            var line = JSONObject()
            line.set("reference_chosen_logps", .from(chosen.sum))
            line.set("reference_rejected_logps", .from(rejected.sum))
            lines.append(line)
        }
        if let output = config.referenceOutput {
            try JSONLines.write(lines, to: URL(fileURLWithPath: output))
        }
    }

    /// `adapter_config.json` as mlx_lm writes it, so mlx_lm and tunecheck both load the checkpoints.
    func writeAdapterConfig() throws {
        let config = configuration
        var parameters = JSONObject()
        parameters.set("rank", .from(config.lora.rank))
        parameters.set("scale", .from(config.lora.scale))
        parameters.set("dropout", .from(config.lora.dropout))
        if let keys = config.lora.keys { parameters.set("keys", .array(keys.map { .string($0) })) }
        var object = JSONObject()
        object.set("fine_tune_type", .string("lora"))
        object.set("model", .string(config.model))
        object.set("num_layers", .from(config.numLayers))
        object.set("lora_parameters", .object(parameters))
        object.set("learning_rate", .from(config.learningRate))
        object.set("iters", .from(config.iters))
        object.set("batch_size", .from(config.batchSize))
        object.set("seed", .from(Int(config.seed)))
        object.set("mode", .string(config.mode.rawValue))
        object.set("trained_with", .string("tunecheck"))
        try AtomicWrite.write(JSONWriter.data(.object(object)), to: outputFolder.appendingPathComponent("adapter_config.json"))
    }

    // MARK: - The loop

    public func run() throws -> TrainingSummary {
        try prepare()
        let config = configuration
        let optimizer = Optimizer(name: config.optimizer, settings: config.optimizerConfig[config.optimizer], tensors: parameters.tensors)
        var order = Array(0..<exampleCount)
        var generator = SeededGenerator(seed: config.seed &+ 0x5EED)
        if config.shuffle { order.shuffle(using: &generator) }
        var cursor = 0
        func nextBatch() -> [Int] {
            var batch: [Int] = []
            for _ in 0..<min(config.batchSize, exampleCount) {
                if cursor == order.count {
                    cursor = 0
                    if config.shuffle { order.shuffle(using: &generator) }
                }
                batch.append(order[cursor])
                cursor += 1
            }
            return batch
        }
        let pass = TrainingPass(model: parameters.model)
        var windowLoss = 0.0, windowSteps = 0, windowTokens = 0
        var windowMetrics: [String: Double] = [:]
        var lastLoss = Double.nan
        let started = Date()
        var windowStart = Date()
        var stoppedBy: TrainerError?
        var step = firstStep
        let lastStep = firstStep + config.iters - 1
        stepLoop: while step <= lastStep {
            parameters.zeroGradients()
            var stepLoss = 0.0
            var stepMetrics: [String: Double] = [:]
            for _ in 0..<config.gradAccumulationSteps {
                let batch = nextBatch()
                let (loss, tokens, metrics) = try microStep(batch, pass: pass, weight: 1.0 / Double(config.gradAccumulationSteps))
                stepLoss += loss / Double(config.gradAccumulationSteps)
                windowTokens += tokens
                for (key, value) in metrics { stepMetrics[key, default: 0] += value / Double(config.gradAccumulationSteps) }
            }
            let gradientNorm = config.maxGradNorm.map { clipGradientNorm(parameters, maximum: $0) } ?? parameters.gradientNorm()
            if config.guards.nonFinite && (!stepLoss.isFinite || !gradientNorm.isFinite) {
                stoppedBy = .guardTripped(guardName: "non-finite", checkpoint: "step \(step)",
                                          reason: "loss \(stepLoss), gradient norm \(gradientNorm); nothing was saved from this step")
                break stepLoop
            }
            let rate = config.lrSchedule.rate(at: step - 1, base: config.learningRate)
            optimizer.update(parameters.tensors, rate: rate)
            lastLoss = stepLoss
            windowLoss += stepLoss
            windowSteps += 1
            for (key, value) in stepMetrics { windowMetrics[key, default: 0] += value }
            windowMetrics["grad_norm", default: 0] += gradientNorm
            let elapsed = Date().timeIntervalSince(windowStart)
            observer?.step(step - firstStep + 1, of: config.iters, loss: stepLoss, learningRate: rate,
                           tokensPerSecond: elapsed > 0 ? Double(windowTokens) / elapsed : 0)

            // Early guards on the training signal itself.
            if let floor = config.guards.minLoss, step - firstStep < config.guards.earlyWindowSteps, stepLoss < floor {
                stoppedBy = .guardTripped(guardName: "min-loss", checkpoint: "step \(step)",
                                          reason: String(format: "loss %.5f fell below %.3g within the first %d steps: the run found a shortcut (likely a collapsing or exploding update)", stepLoss, floor, config.guards.earlyWindowSteps))
            }
            if config.mode == .dpo, let bound = config.guards.maxMargin, let margin = stepMetrics["rewards/margins"], margin > bound {
                stoppedBy = .guardTripped(guardName: "max-margin", checkpoint: "step \(step)",
                                          reason: String(format: "reward margin %.3f exceeds %.3g (margin explosion)", margin, bound))
            }

            if step % config.stepsPerReport == 0 || step == lastStep || stoppedBy != nil {
                var line = JSONObject()
                line.set("step", .from(step))
                line.set("loss", .from(windowLoss / Double(windowSteps)))
                line.set("learning_rate", .from(rate))
                line.set("tokens_per_s", .from(elapsed > 0 ? Double(windowTokens) / elapsed : 0))
                for key in windowMetrics.keys.sorted() { line.set(key, .from(windowMetrics[key]! / Double(windowSteps))) }
                metricsLines.append(line)
                try JSONLines.write(metricsLines, to: outputFolder.appendingPathComponent("metrics.jsonl"))
                windowLoss = 0; windowSteps = 0; windowTokens = 0; windowMetrics = [:]
                windowStart = Date()
            }
            if step % config.saveEvery == 0 || step == lastStep || stoppedBy != nil {
                let name = try saveCheckpoint(step: step)
                if let tripped = try evaluateCheckpoint(name: name, step: step, loss: stepLoss), stoppedBy == nil {
                    stoppedBy = tripped
                }
                if stoppedBy == nil, let tripped = noLearningGuard(step: step, checkpoint: name) {
                    stoppedBy = tripped
                }
            }
            if stoppedBy != nil { break }
            step += 1
        }
        let best = bestCheckpoint()
        try writeRunSummary(steps: step - firstStep + (stoppedBy == nil ? 0 : 1), loss: lastLoss, best: best, stoppedBy: stoppedBy,
                            seconds: Date().timeIntervalSince(started))
        return TrainingSummary(steps: min(step, lastStep) - firstStep + 1, finalLoss: lastLoss, checkpoints: savedCheckpoints,
                               bestCheckpoint: best, stoppedBy: stoppedBy, outputFolder: outputFolder, reportFolder: reportFolder)
    }

    /// Forward + backward of one micro-batch; gradients accumulate scaled by `weight`. Returns the loss, the number
    /// of trained tokens and the batch metrics.
    func microStep(_ batch: [Int], pass: TrainingPass, weight: Double) throws -> (Double, Int, [String: Double]) {
        switch configuration.mode {
        case .sft:
            let examples = batch.map { sftExamples[$0] }
            let logprobs = try pass.forward(examples.map(\.ids))
            let trained = examples.map { example in (0..<(example.ids.count - 1)).map { $0 + 1 >= example.trainFrom } }
            let (loss, tokens, gradient) = SFTLoss.evaluate(logprobs: logprobs, trained: trained)
            pass.backward(gradient.map { $0.map { $0 * weight } }, into: parameters.gradients)
            return (loss, tokens, [:])
        case .dpo:
            let examples = batch.map { dpoExamples[$0] }
            let logprobs = try pass.forward(examples.flatMap { [$0.chosen.ids, $0.rejected.ids] })
            let (result, gradient, tokens) = DPOObjective.evaluate(logprobs: logprobs, examples: examples, beta: configuration.beta,
                                                                  type: configuration.lossType,
                                                                  normalizeByLength: configuration.normalizeByLength, weight: weight)
            pass.backward(gradient, into: parameters.gradients)
            return (result.loss, tokens, Dictionary(result.metrics, uniquingKeysWith: { a, _ in a }))
        }
    }

    // MARK: - Checkpoints

    /// Writes the step's checkpoint atomically; returns its display name.
    func saveCheckpoint(step: Int) throws -> String {
        let stepName = String(format: "%07d", step)
        switch configuration.fineTuneType {
        case .lora:
            guard let lora else { return stepName }
            let numbered = outputFolder.appendingPathComponent("\(stepName)_adapters.safetensors")
            try lora.write(to: numbered, metadata: ["step": "\(step)", "format": "mlx"])
            try lora.write(to: outputFolder.appendingPathComponent("adapters.safetensors"), metadata: ["step": "\(step)", "format": "mlx"])
            savedCheckpoints.append(numbered.path)
            observer?.message("saved \(numbered.lastPathComponent)")
            return "\(stepName)_adapters"
        case .full:
            guard let full = parameters as? FullParameters else { return stepName }
            let folder = outputFolder.appendingPathComponent("\(stepName)_model")
            try ModelFolderWriter.write(folder: folder, baseFolder: URL(fileURLWithPath: configuration.model), tensors: full.tensorsToWrite(),
                                        metadata: ["step": "\(step)"], replacing: true)
            try ModelFolderWriter.write(folder: outputFolder.appendingPathComponent("model"), baseFolder: URL(fileURLWithPath: configuration.model),
                                        tensors: full.tensorsToWrite(), metadata: ["step": "\(step)"], replacing: true)
            savedCheckpoints.append(folder.path)
            observer?.message("saved \(folder.lastPathComponent)/")
            return "\(stepName)_model"
        }
    }

    /// Runs the eval suite on the checkpoint just written; returns a tripped guard, if any.
    func evaluateCheckpoint(name: String, step: Int, loss: Double) throws -> TrainerError? {
        guard let evaluator, let reportFolder, let path = savedCheckpoints.last else { return nil }
        var spec = try CheckpointSpec.from(path: path)
        spec.step = step
        observer?.message("evaluating \(name)")
        let evaluation = try evaluator.evaluate(spec, trainingLoss: loss)
        let report = evaluator.makeReport()
        let checkpointFolder = reportFolder.appendingPathComponent(name)
        let perCheckpoint = EvaluationReport(title: "\(report.title): \(name)", startedAt: report.startedAt, durationSeconds: report.durationSeconds,
                                             settings: report.settings, suites: evaluation.suites, checkpoints: [evaluation.summary],
                                             answers: evaluation.answers, golden: evaluation.golden)
        try ReportWriter.write(perCheckpoint, to: checkpointFolder, formats: [.junit, .json])
        try ReportWriter.write(report, to: reportFolder, formats: [.junit, .json, .html])
        for suite in evaluation.suites where !suite.passed {
            let failure = suite.checks.first { $0.status.isFailure }
            if case let .failed(message, _) = failure?.status {
                observer?.message("  \(suite.kind.rawValue) failed on \(name): \(message)")
            }
        }
        if configuration.guards.repetition, let repetition = evaluation.suites.first(where: { $0.kind == .repetition }), !repetition.passed {
            let message: String
            if case let .failed(text, _) = repetition.checks.first(where: { $0.status.isFailure })?.status { message = text } else { message = "repetition suite failed" }
            return .guardTripped(guardName: "repetition", checkpoint: name, reason: "the checkpoint's answers collapse into repetition: \(message)")
        }
        return nil
    }

    /// LoRA only: ‖ΔW‖/‖W‖ over adapted weights, from r×r Gram products (no dense ΔW).
    func noLearningGuard(step: Int, checkpoint: String) -> TrainerError? {
        guard let lora, let after = configuration.guards.noLearningAfterSteps, step - firstStep + 1 >= after else { return nil }
        let relative = Self.relativeDelta(lora)
        guard relative < configuration.guards.noLearningBelow else { return nil }
        return .guardTripped(guardName: "no-learning", checkpoint: checkpoint,
                             reason: String(format: "after %d steps the weights moved by %.2e relative (below %.0e): the learning rate is too low or the data carries no signal", step - firstStep + 1, relative, configuration.guards.noLearningBelow))
    }

    static func relativeDelta(_ lora: LoRAParameters) -> Double {
        var deltaSquared = 0.0
        var weightSquared = 0.0
        let byName = Dictionary(uniqueKeysWithValues: lora.model.weights.layers.flatMap(\.linears).map { ($0.name, $0) })
        for module in lora.modules {
            let r = module.rank
            let inFeatures = module.a.shape[0], outFeatures = module.b.shape[1]
            // ‖s·A·B‖² = s²·Σᵢⱼ (AᵀA)ᵢⱼ (BBᵀ)ᵢⱼ with A (in, r), B (r, out).
            var gramA = [Double](repeating: 0, count: r * r)
            var gramB = [Double](repeating: 0, count: r * r)
            for i in 0..<r {
                for j in 0..<r {
                    var a = 0.0
                    for row in 0..<inFeatures { a += Double(module.a.values[row * r + i]) * Double(module.a.values[row * r + j]) }
                    gramA[i * r + j] = a
                    var b = 0.0
                    for column in 0..<outFeatures { b += Double(module.b.values[i * outFeatures + column]) * Double(module.b.values[j * outFeatures + column]) }
                    gramB[i * r + j] = b
                }
            }
            let scale = Double(module.scale)
            deltaSquared += scale * scale * zip(gramA, gramB).reduce(0) { $0 + $1.0 * $1.1 }
            if let linear = byName[module.name] {
                let count = linear.inFeatures * linear.outFeatures
                for index in 0..<count { weightSquared += Double(linear.weight[index]) * Double(linear.weight[index]) }
            }
        }
        return weightSquared > 0 ? (deltaSquared / weightSquared).squareRoot() : 0
    }

    func bestCheckpoint() -> String? {
        guard let evaluator else { return savedCheckpoints.last.map { URL(fileURLWithPath: $0).lastPathComponent } }
        let goal = configuration.bestMetric
        // Only checkpoints that passed every suite can be "best": a collapsed checkpoint may well score highest.
        let report = evaluator.makeReport()
        let passing = Set(report.checkpoints.filter(\.passed).map(\.name))
        var best: (String, Double)?
        for suite in report.suites where suite.checkpoint != "base" && passing.contains(suite.checkpoint) {
            guard let value = suite.metric(goal.metric.rawValue) else { continue }
            if best == nil || goal.prefers(value, over: best!.1) { best = (suite.checkpoint, value) }
        }
        return best?.0
    }

    func writeRunSummary(steps: Int, loss: Double, best: String?, stoppedBy: TrainerError?, seconds: Double) throws {
        var object = JSONObject()
        object.set("steps", .from(steps))
        object.set("final_loss", .from(loss))
        object.set("seconds", .from(seconds))
        object.set("checkpoints", .array(savedCheckpoints.map { .string(URL(fileURLWithPath: $0).lastPathComponent) }))
        object.set("best_checkpoint", best.map { .string($0) } ?? .null)
        object.set("best_metric", .string(configuration.bestMetric.spelling))
        object.set("stopped_by", stoppedBy.map { .string($0.errorDescription ?? "") } ?? .null)
        try AtomicWrite.write(JSONWriter.data(.object(object)) + Data("\n".utf8), to: outputFolder.appendingPathComponent("run.json"))
    }
}
