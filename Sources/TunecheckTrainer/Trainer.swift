import Foundation
import TunecheckEngine
import TunecheckJSON

/// What a finished (or stopped) run reports.
public struct TrainingSummary: Sendable {
    public var steps: Int
    public var finalLoss: Double
    /// The numbered checkpoints written, as paths.
    public var checkpoints: [String]
    public var bestCheckpoint: String?
    /// The guard that stopped the run, if one did.
    public var stop: GuardTrip?
    public var outputFolder: URL
    public var record: RunRecord

    public var stoppedBy: TrainerError? { stop?.error }
}

/// Events for the terminal: progress per step, and lines worth printing.
public protocol TrainingObserver: AnyObject {
    func step(_ step: Int, of total: Int, loss: Double, learningRate: Double, tokensPerSecond: Double)
    func message(_ text: String)
}

/// LoRA (or full-parameter) SFT and DPO on the shared engine. Saves checkpoints like mlx_lm (numbered
/// `NNNNNNN_adapters.safetensors`, `adapters.safetensors`, `adapter_config.json`; full fine-tuning writes
/// `NNNNNNN_model/` folders; names from `CheckpointName`), all atomically; records the run in `run.json` and each
/// step in `metrics.jsonl`; hands each checkpoint to the `callback` (which evaluates it when the CLI wires in the
/// run's eval suite) and stops when a guard trips.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public weak var observer: TrainingObserver?
    /// Called after each checkpoint is written (mlx_lm's `TrainingCallback`).
    public var callback: TrainingCallback?

    private var base: LanguageModel!
    private var parameters: TrainableParameters!
    private var lora: LoRAParameters? { parameters as? LoRAParameters }
    private var sftExamples: [SFTExample] = []
    private var dpoExamples: [DPOExample] = []
    private var metricsLines: [JSONObject] = []
    private var feedback: [String: CheckpointFeedback] = [:]
    private var savedPaths: [String] = []
    private var firstStep = 1
    private var record: RunRecord

    public init(configuration: TrainingConfiguration) {
        self.configuration = configuration
        record = RunRecord(configuration: configuration)
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
    }

    /// The step stored in a checkpoint's metadata (`{"step": "N"}`), when there is one.
    static func savedStep(_ path: String) throws -> Int? {
        let url = URL(fileURLWithPath: path)
        let file = try SafeTensorsFile(url: url.pathExtension == "safetensors" ? url : url.appendingPathComponent(CheckpointName.latestAdapter.fileName))
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
        let scores = try Scorer(model: base.decoder).scorePairs(dpoExamples.map { PreferencePairTokens(chosen: $0.chosen, rejected: $0.rejected) })
        var lines: [JSONObject] = []
        for (index, pair) in scores.enumerated() {
            dpoExamples[index].reference = (pair.chosen.sum, pair.chosen.mean, pair.rejected.sum, pair.rejected.mean)
            var line = JSONObject()
            line.set("reference_chosen_logps", .from(pair.chosen.sum))
            line.set("reference_rejected_logps", .from(pair.rejected.sum))
            lines.append(line)
        }
        if let output = config.referenceOutput {
            try JSONLines.write(lines, to: URL(fileURLWithPath: output))
        }
    }

    /// `adapter_config.json` as mlx_lm writes it, so mlx_lm and tunecheck both load the checkpoints.
    func writeAdapterConfig() throws {
        let config = configuration
        var rank = config.lora.rank, scale = config.lora.scale, keys = config.lora.keys, numLayers = config.numLayers
        // A resumed adapter goes on training the factors it was saved with (their rank, scale and modules) whatever the
        // lora section says: the config records those, or the checkpoints would load with another scale.
        if config.resumeAdapterFile != nil, let lora {
            rank = lora.rank
            scale = Double(lora.scale)
            let located = lora.modules.compactMap(\.location)
            var paths: [String] = []
            for entry in located where !paths.contains(entry.path) { paths.append(entry.path) }
            keys = paths
            if let first = located.map(\.layer).min() { numLayers = base.decoder.spec.layerCount - first }
        }
        var parameters = JSONObject()
        parameters.set("rank", .from(rank))
        parameters.set("scale", .from(scale))
        parameters.set("dropout", .from(config.lora.dropout))
        if let keys { parameters.set("keys", .array(keys.map { .string($0) })) }
        var object = JSONObject()
        object.set("fine_tune_type", .string("lora"))
        object.set("model", .string(config.model))
        object.set("num_layers", .from(numLayers))
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
        do {
            return try train()
        } catch {
            // The run record says how the run ended, also when an error ended it (a killed run keeps "running").
            if FileManager.default.fileExists(atPath: outputFolder.appendingPathComponent("run.json").path) {
                record.status = .failed
                record.failure = (error as? LocalizedError)?.errorDescription ?? "\(error)"
                record.updatedAt = Date()
                try? writeMetrics()
                try? record.write(to: outputFolder)
            }
            throw error
        }
    }

    /// The loop, after `prepare`.
    private func train() throws -> TrainingSummary {
        let config = configuration
        let rules = config.guards.rules
        record = RunRecord(configuration: config)
        try record.write(to: outputFolder)
        try callback?.trainingWillStart(record, base: base)
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
        var windowTokens = 0
        var windowStart = Date()
        var lastLoss = Double.nan
        var stop: GuardTrip?
        var step = firstStep
        let lastStep = firstStep + config.iters - 1
        while step <= lastStep {
            parameters.zeroGradients()
            var stepLoss = 0.0
            var stepTokens = 0
            var stepMetrics: [MetricName: Double] = [:]
            for _ in 0..<config.gradAccumulationSteps {
                let batch = nextBatch()
                let (loss, tokens, metrics) = try microStep(batch, pass: pass, weight: 1.0 / Double(config.gradAccumulationSteps))
                stepLoss += loss / Double(config.gradAccumulationSteps)
                stepTokens += tokens
                for (key, value) in metrics { stepMetrics[key, default: 0] += value / Double(config.gradAccumulationSteps) }
            }
            windowTokens += stepTokens
            let gradientNorm = config.maxGradNorm.map { clipGradientNorm(parameters, maximum: $0) } ?? parameters.gradientNorm()
            let observation = StepObservation(step: step, stepsDone: step - firstStep + 1, loss: stepLoss, gradientNorm: gradientNorm,
                                              metrics: stepMetrics)
            if rules.contains(.nonFinite), let trip = GuardRule.nonFinite.check(observation) {
                // Nothing of this step is applied or saved.
                stop = trip
                try recordStep(step, loss: stepLoss, rate: nil, gradientNorm: gradientNorm, tokens: stepTokens, metrics: stepMetrics,
                               throughput: nil, flush: true)
                break
            }
            let rate = config.lrSchedule.rate(at: step - 1, base: config.learningRate)
            optimizer.update(parameters.tensors, rate: rate)
            lastLoss = stepLoss
            let elapsed = Date().timeIntervalSince(windowStart)
            let throughput = elapsed > 0 ? Double(windowTokens) / elapsed : 0
            observer?.step(step - firstStep + 1, of: config.iters, loss: stepLoss, learningRate: rate, tokensPerSecond: throughput)

            // Guards on the training signal itself.
            if stop == nil { stop = rules.lazy.compactMap { $0.check(observation) }.first }

            let reportNow = step % config.stepsPerReport == 0 || step == lastStep || stop != nil
            let saveNow = step % config.saveEvery == 0 || step == lastStep || stop != nil
            try recordStep(step, loss: stepLoss, rate: rate, gradientNorm: gradientNorm, tokens: stepTokens, metrics: stepMetrics,
                           throughput: reportNow ? throughput : nil, flush: reportNow || saveNow)
            if reportNow {
                windowTokens = 0
                windowStart = Date()
            }
            record.steps = step - firstStep + 1
            record.finalLoss = lastLoss
            if saveNow {
                let saved = try saveCheckpoint(step: step, loss: stepLoss, metrics: stepMetrics)
                let answer = try callback?.checkpointSaved(saved)
                if let answer { report(answer, for: saved) }
                let observation = CheckpointObservation(step: step, stepsDone: step - firstStep + 1, checkpoint: saved.name.displayName,
                                                        feedback: answer, relativeDelta: { [lora] in lora.map(Self.relativeDelta) })
                if stop == nil { stop = rules.lazy.compactMap { $0.check(observation) }.first }
                if stop == nil, let request = answer?.stopRequest {
                    observer?.message("stopping at \(saved.name.displayName): \(request)")
                    record.stopRequest = request
                    break
                }
                record.bestCheckpoint = bestCheckpoint()
                record.stop = stop
                record.updatedAt = Date()
                try record.write(to: outputFolder)
            }
            if stop != nil { break }
            step += 1
        }
        record.status = stop == nil && record.stopRequest == nil ? .finished : .stopped
        record.stop = stop
        record.bestCheckpoint = bestCheckpoint()
        record.updatedAt = Date()
        try writeMetrics()
        try record.write(to: outputFolder)
        return TrainingSummary(steps: record.steps, finalLoss: lastLoss, checkpoints: savedPaths,
                               bestCheckpoint: record.bestCheckpoint, stop: stop, outputFolder: outputFolder, record: record)
    }

    /// Forward + backward of one micro-batch; gradients accumulate scaled by `weight`. Returns the loss, the number
    /// of trained tokens and the batch metrics.
    func microStep(_ batch: [Int], pass: TrainingPass, weight: Double) throws -> (Double, Int, [MetricName: Double]) {
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

    // MARK: - The run's records

    /// Adds the step's line to metrics.jsonl (each step's own values; `tokens_per_s` on report steps, over the
    /// window since the last report) and rewrites the file (atomically) when `flush`.
    func recordStep(_ step: Int, loss: Double, rate: Double?, gradientNorm: Double, tokens: Int, metrics: [MetricName: Double],
                    throughput: Double?, flush: Bool) throws {
        var line = JSONObject()
        line.set(MetricName.loss.rawValue, .from(loss))
        line.set("step", .from(step))
        line.set(MetricName.learningRate.rawValue, rate.map { .from($0) } ?? .null)
        line.set(MetricName.gradientNorm.rawValue, .from(gradientNorm))
        line.set("tokens", .from(tokens))
        if let throughput { line.set(MetricName.tokensPerSecond.rawValue, .from(throughput)) }
        for key in metrics.keys.sorted() { line.set(key.rawValue, .from(metrics[key]!)) }
        // "step" first, as readers expect.
        var ordered = JSONObject()
        ordered.set("step", .from(step))
        for (key, value) in zip(line.keys, line.values) where key != "step" { ordered.set(key, value) }
        metricsLines.append(ordered)
        if flush { try writeMetrics() }
    }

    func writeMetrics() throws {
        try JSONLines.write(metricsLines, to: outputFolder.appendingPathComponent("metrics.jsonl"))
    }

    // MARK: - Checkpoints

    /// Writes the step's checkpoint atomically (and the "latest" copy beside it).
    func saveCheckpoint(step: Int, loss: Double, metrics: [MetricName: Double]) throws -> SavedCheckpoint {
        let name: CheckpointName
        let metadata = ["step": "\(step)"]
        switch configuration.fineTuneType {
        case .lora:
            guard let lora else { throw TrainerError.failed("LoRA training without LoRA parameters") }
            name = .numberedAdapter(step: step)
            try lora.write(to: outputFolder.appendingPathComponent(name.fileName), metadata: metadata.merging(["format": "mlx"]) { a, _ in a })
            try lora.write(to: outputFolder.appendingPathComponent(CheckpointName.latestAdapter.fileName),
                           metadata: metadata.merging(["format": "mlx"]) { a, _ in a })
            observer?.message("saved \(name.fileName)")
        case .full:
            guard let full = parameters as? FullParameters else { throw TrainerError.failed("full fine-tuning without full parameters") }
            name = .numberedModel(step: step)
            for folder in [name, .latestModel] {
                try ModelFolderWriter.write(folder: outputFolder.appendingPathComponent(folder.fileName), baseFolder: URL(fileURLWithPath: configuration.model),
                                            tensors: full.tensorsToWrite(), metadata: metadata, replacing: true)
            }
            observer?.message("saved \(name.fileName)/")
        }
        let url = outputFolder.appendingPathComponent(name.fileName)
        savedPaths.append(url.path)
        record.checkpoints.append(RunRecord.CheckpointRecord(name: name.displayName, step: step, loss: loss, passed: nil, metrics: [:]))
        return SavedCheckpoint(step: step, name: name, url: url, loss: loss, stepMetrics: metrics)
    }

    /// Keeps what the callback found and prints its failures.
    func report(_ answer: CheckpointFeedback, for saved: SavedCheckpoint) {
        let name = saved.name.displayName
        feedback[name] = answer
        if let index = record.checkpoints.lastIndex(where: { $0.name == name }) {
            record.checkpoints[index].passed = answer.passed
            record.checkpoints[index].metrics = answer.metrics
        }
        for failure in answer.failures { observer?.message("  \(failure)") }
    }

    /// LoRA only: ‖ΔW‖/‖W‖ over adapted weights, from r×r Gram products (no dense ΔW), as `delta` computes it.
    static func relativeDelta(_ lora: LoRAParameters) -> Double {
        DeltaSummary(layer: nil, tensors: WeightDelta.adaptedTensors(of: lora.model, includeMaxAbs: false)).relative
    }

    /// The best evaluated checkpoint by `best_metric` among those that passed (a collapsed checkpoint may well
    /// score highest); without evaluations, the last one saved.
    func bestCheckpoint() -> String? {
        guard !feedback.isEmpty else { return record.checkpoints.last?.name }
        let goal = configuration.bestMetric
        var best: (String, Double)?
        for checkpoint in record.checkpoints {
            guard let answer = feedback[checkpoint.name], answer.passed, let value = answer.metrics[goal.metric] else { continue }
            if best == nil || goal.prefers(value, over: best!.1) { best = (checkpoint.name, value) }
        }
        return best?.0
    }
}
