import Foundation

/// Gradient buffers of one worker, shaped like the `ParameterGradients` they shadow (LoRA factors, and linear weights
/// and biases), and where each one is added back.
final class ShadowGradients {
    let gradients = ParameterGradients()
    private var pairs: [(shadow: UnsafeMutablePointer<Float>, target: UnsafeMutablePointer<Float>, count: Int)] = []

    /// nil when `main` trains something other than linear layers (norms, embeddings, Mamba or expert tensors): such
    /// runs (full fine-tuning) stay on one pass.
    init?(shadowing main: ParameterGradients, model: DecoderModel) {
        guard main.norms.isEmpty, main.tensors.isEmpty, main.tokenEmbedding == nil, main.positionEmbedding == nil,
              main.outputProjection == nil else { return nil }
        var linears: [String: Linear] = [:]
        for layer in model.weights.layers {
            for linear in layer.linears { linears[linear.name] = linear }
        }
        for (name, target) in main.linears {
            guard let linear = linears[name] else { return nil }
            let rank = linear.adapter?.rank ?? 0
            var shadow = LinearGradients()
            shadow.weight = allocate(target.weight, linear.inFeatures * linear.outFeatures)
            shadow.bias = allocate(target.bias, linear.outFeatures)
            shadow.adapterDown = allocate(target.adapterDown, rank * linear.inFeatures)
            shadow.adapterUp = allocate(target.adapterUp, rank * linear.outFeatures)
            gradients.linears[name] = shadow
        }
    }

    deinit { pairs.forEach { $0.shadow.deallocate() } }

    private func allocate(_ target: UnsafeMutablePointer<Float>?, _ count: Int) -> UnsafeMutablePointer<Float>? {
        guard let target, count > 0 else { return nil }
        let shadow = UnsafeMutablePointer<Float>.allocate(capacity: count)
        pairs.append((shadow, target, count))
        return shadow
    }

    func zero() {
        for pair in pairs { pair.shadow.update(repeating: 0, count: pair.count) }
    }

    /// target += shadow for every buffer.
    func addIntoTargets() {
        for pair in pairs {
            for index in 0..<pair.count { pair.target[index] += pair.shadow[index] }
        }
    }
}

extension TrainingPass {
    /// Splits a batch of several sequences over `threads` single-threaded passes, as `Scorer` does for scoring: each
    /// thread runs its share (contiguous, about equal tokens) forward and backward as its own packed pass, so the
    /// GEMMs need no thread hand-off and the norms, attention and log-softmax run on every core. Returns nil when the
    /// batch stays on this pass (one thread or one sequence). Gradients are the sum of the shares' (the same math;
    /// float32 sums in another order).
    func forwardSplit(_ sequences: [[Int]]) throws -> [[Double]]? {
        let parts = min(threads, sequences.count)
        guard parts > 1 else { return nil }
        let groups = BatchSplit.contiguousGroups(tokenCounts: sequences.map(\.count), parts: parts)
        while workers.count < groups.count { workers.append(TrainingPass(model: model, threads: 1)) }
        let outcomes = try BatchSplit.run(groups.count) { part in try self.workers[part].forward(Array(sequences[groups[part]])) }
        shares = groups
        return outcomes.flatMap { $0 }
    }

    /// The backward of a split forward: share 0 accumulates into `gradients`, the others into their own buffers, which
    /// are then added in. When `gradients` holds more than linear-layer gradients (full fine-tuning: norms, embeddings,
    /// Mamba or expert tensors), the shares run one after another straight into `gradients` instead. Returns false
    /// when the last forward was not split.
    func backwardSplit(_ dLogprobs: [[Double]], into gradients: ParameterGradients) -> Bool {
        guard let groups = shares else { return false }
        if shadowed?.owner !== gradients || (shadowed?.shadows.count ?? 0) < groups.count - 1 {
            let made = (1..<groups.count).compactMap { _ in ShadowGradients(shadowing: gradients, model: model) }
            shadowed = (gradients, made.count == groups.count - 1 ? made : [])
        }
        let workerShadows = shadowed!.shadows
        guard !workerShadows.isEmpty else {
            for (part, group) in groups.enumerated() { workers[part].backward(Array(dLogprobs[group]), into: gradients) }
            return true
        }
        workerShadows.forEach { $0.zero() }
        _ = try? BatchSplit.run(groups.count) { part in
            self.workers[part].backward(Array(dLogprobs[groups[part]]), into: part == 0 ? gradients : workerShadows[part - 1].gradients)
        }
        workerShadows.forEach { $0.addIntoTargets() }
        return true
    }
}
