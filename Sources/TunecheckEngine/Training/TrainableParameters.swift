import Foundation

/// One trainable tensor: its values, its gradient and its optimizer state live in owned memory.
public struct TrainableTensor {
    public let name: String
    public let shape: [Int]
    public let values: UnsafeMutablePointer<Float>
    public let gradient: UnsafeMutablePointer<Float>
    public var count: Int { shape.reduce(1, *) }
}

/// Owned float buffers for a set of named tensors and their gradients: one allocation, carved in order.
final class TensorArena {
    let tensors: [TrainableTensor]
    private let storage: UnsafeMutablePointer<Float>

    init(shapes: [(name: String, shape: [Int])]) {
        let counts = shapes.map { ($0.shape.reduce(1, *) + 15) / 16 * 16 }
        let total = counts.reduce(0, +)
        storage = .allocate(capacity: max(2 * total, 16))
        storage.initialize(repeating: 0, count: max(2 * total, 16))
        var offset = 0
        var tensors: [TrainableTensor] = []
        for (entry, count) in zip(shapes, counts) {
            tensors.append(TrainableTensor(name: entry.name, shape: entry.shape, values: storage + offset, gradient: storage + total + offset))
            offset += count
        }
        self.tensors = tensors
    }

    deinit { storage.deallocate() }

    func zeroGradients() {
        for tensor in tensors { tensor.gradient.update(repeating: 0, count: tensor.count) }
    }
}

/// What is trained.
public protocol TrainableParameters: AnyObject {
    /// Every trainable tensor (values, gradients), in a stable order.
    var tensors: [TrainableTensor] { get }
    /// The model computing with the current values (updated in place by the optimizer).
    var model: DecoderModel { get }
    /// Where `TrainingPass.backward` accumulates.
    var gradients: ParameterGradients { get }
}

extension TrainableParameters {
    public func zeroGradients() {
        for tensor in tensors { tensor.gradient.update(repeating: 0, count: tensor.count) }
    }

    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// √Σ g² over all gradients.
    public func gradientNorm() -> Double {
        var sum = 0.0
        for tensor in tensors {
            for index in 0..<tensor.count { sum += Double(tensor.gradient[index]) * Double(tensor.gradient[index]) }
        }
        return sum.squareRoot()
    }
}

/// LoRA factors in mlx_lm's layout (`lora_a` (in, r), `lora_b` (r, out)) on a frozen base, attached unfused.
public final class LoRAParameters: TrainableParameters {
    public struct Module {
        /// The linear layer's module name, e.g. `model.layers.3.self_attn.q_proj`.
        public let name: String
        public let a: TrainableTensor
        public let b: TrainableTensor
        public let rank: Int
        public let scale: Float

        /// The block index and the path inside it (`model.layers.3.self_attn.q_proj` → (3, `self_attn.q_proj`),
        /// `transformer.h.0.attn.c_attn` → (0, `attn.c_attn`)), as adapter files key their modules.
        public var location: (layer: Int, path: String)? { Adapter.splitLayerKey(name) }
    }

    public let modules: [Module]
    public private(set) var model: DecoderModel
    public let gradients = ParameterGradients()
    private let arena: TensorArena
    public let rank: Int
    public let scale: Float

    public var tensors: [TrainableTensor] { arena.tensors }

    /// New factors on the linear layers whose in-block path is in `keys` (all when nil), in the last `numLayers`
    /// blocks (all when negative or nil). Initialised as mlx_lm does: `lora_a` ~ U(−1/√in, 1/√in), `lora_b` = 0.
    public init(base: DecoderModel, rank: Int, scale: Float, keys: Set<String>?, numLayers: Int?, seed: UInt64) throws {
        guard rank > 0 else { throw EngineError.invalidInput("LoRA rank must be positive") }
        let layerCount = base.spec.layerCount
        let first = numLayers.map { $0 < 0 ? 0 : max(layerCount - $0, 0) } ?? 0
        var selected: [Linear] = []
        for layer in first..<layerCount {
            for linear in base.weights.layers[layer].linears where keys?.contains(Adapter.modulePath(ofLinearNamed: linear.name)) ?? true {
                selected.append(linear)
            }
        }
        guard !selected.isEmpty else {
            var known: [String] = []
            for layer in base.weights.layers {
                for linear in layer.linears where !known.contains(Adapter.modulePath(ofLinearNamed: linear.name)) {
                    known.append(Adapter.modulePath(ofLinearNamed: linear.name))
                }
            }
            throw EngineError.invalidInput("no linear layer matches the LoRA keys \(keys?.sorted() ?? []) (this model has \(known.joined(separator: ", ")))")
        }
        var shapes: [(name: String, shape: [Int])] = []
        for linear in selected {
            shapes.append(("\(linear.name).lora_a", [linear.inFeatures, rank]))
            shapes.append(("\(linear.name).lora_b", [rank, linear.outFeatures]))
        }
        arena = TensorArena(shapes: shapes)
        var generator = SeededGenerator(seed: seed)
        var modules: [Module] = []
        for (index, linear) in selected.enumerated() {
            let a = arena.tensors[2 * index]
            let b = arena.tensors[2 * index + 1]
            let bound = 1 / Float(linear.inFeatures).squareRoot()
            for element in 0..<a.count { a.values[element] = Float.random(in: -bound...bound, using: &generator) }
            modules.append(Module(name: linear.name, a: a, b: b, rank: rank, scale: scale))
        }
        self.modules = modules
        self.rank = rank
        self.scale = scale
        model = base
        model = try attach(to: base)
    }

    /// Continues from a saved mlx_lm adapter (`resume_adapter_file`).
    public convenience init(base: DecoderModel, resuming adapter: Adapter, seed: UInt64) throws {
        guard adapter.format == .mlx else {
            throw EngineError.invalidInput("\(adapter.weightsURL.path): only mlx_lm-format adapters can be resumed")
        }
        guard let first = adapter.modules.first else { throw EngineError.invalidInput("\(adapter.weightsURL.path): the adapter is empty") }
        let keys = Set(adapter.modules.map(\.modulePath))
        let layers = Set(adapter.modules.map(\.layer))
        let numLayers = base.spec.layerCount - (layers.min() ?? 0)
        try self.init(base: base, rank: first.rank, scale: first.scale, keys: keys, numLayers: numLayers, seed: seed)
        for module in modules {
            guard let saved = adapter.modules.first(where: { "model.layers.\($0.layer).\($0.modulePath)" == module.name || module.name.hasSuffix(".\($0.layer).\($0.modulePath)") }) else {
                throw EngineError.invalidInput("\(adapter.weightsURL.path): no saved factors for \(module.name)")
            }
            guard saved.down.count == module.a.count, saved.up.count == module.b.count else {
                throw EngineError.invalidInput("\(adapter.weightsURL.path): saved factors of \(module.name) have other shapes")
            }
            module.a.values.update(from: saved.down.pointer, count: module.a.count)
            module.b.values.update(from: saved.up.pointer, count: module.b.count)
        }
    }

    private func attach(to base: DecoderModel) throws -> DecoderModel {
        let byName = Dictionary(uniqueKeysWithValues: modules.map { ($0.name, $0) })
        for module in modules {
            gradients.linears[module.name] = LinearGradients(adapterDown: module.a.gradient, adapterUp: module.b.gradient)
        }
        return try base.withLayers(retaining: arena) { layers in
            for index in layers.indices {
                layers[index].updateLinears { linear in
                    guard let module = byName[linear.name] else { return }
                    linear.adapter = LowRankAdapter(down: module.a.values, downLayout: .inOut, up: module.b.values, upLayout: .inOut,
                                                    rank: module.rank, scale: module.scale)
                }
            }
        }
    }

    /// The factors as mlx_lm writes them (`<module>.lora_a` / `.lora_b`, float32).
    public func write(to url: URL, metadata: [String: String]? = nil) throws {
        try SafeTensorsWriter.write(modules.flatMap { module in
            [TensorToWrite(name: "\(module.name).lora_a", dtype: .float32, shape: module.a.shape,
                           values: UnsafeBufferPointer(start: module.a.values, count: module.a.count)),
             TensorToWrite(name: "\(module.name).lora_b", dtype: .float32, shape: module.b.shape,
                           values: UnsafeBufferPointer(start: module.b.values, count: module.b.count))]
        }, metadata: metadata, to: url)
    }
}

/// Every weight of the model, copied into owned memory and trained (`fine_tune_type: full`, for small models).
public final class FullParameters: TrainableParameters {
    public private(set) var model: DecoderModel
    public let gradients = ParameterGradients()
    private let arena: TensorArena
    public var tensors: [TrainableTensor] { arena.tensors }

    public init(folder: URL) throws {
        let (spec, architecture) = try ModelConfigLoader.loadSpec(configURL: folder.appendingPathComponent("config.json"))
        if spec.quantization != nil {
            throw EngineError.unsupportedFeature(path: folder.path, feature: "full fine-tuning of an mlx-quantized base "
                                                 + "(the weights are a few bits each; train LoRA on it, as mlx_lm does)")
        }
        let source = try WeightStore(folder: folder)
        let names = source.tensorNames.filter { source.info($0)?.dtype.isFloatWeight ?? false }
        // Full fine-tuning trains float32 copies: values, gradients and AdamW's two moments, 16 bytes per weight,
        // all anonymous. Refused with the numbers when that cannot fit (LoRA trains on the stored weights instead).
        let weightCount = names.reduce(0) { $0 + (source.info($1)?.elementCount ?? 0) }
        try MemoryBudget.checkTraining(bytes: Double(weightCount) * 16 + MemoryBudget.workingBytes(spec), folder: folder)
        arena = TensorArena(shapes: names.map { ($0, source.info($0)!.shape) })
        for tensor in arena.tensors {
            let view = try source.floatTensor(tensor.name)
            tensor.values.update(from: view.pointer, count: tensor.count)
        }
        let owned = WeightStore(ownedTensors: arena.tensors.map { ($0.name, $0.shape, UnsafePointer($0.values)) }, folder: folder)
        let weights = try architecture.loadWeights(from: owned, spec: spec)
        model = DecoderModel(spec: spec, weights: weights, store: owned, retained: [arena])
        // Gradients are found by the address of the parameter they belong to.
        var gradientByAddress: [Int: UnsafeMutablePointer<Float>] = [:]
        for tensor in arena.tensors { gradientByAddress[Int(bitPattern: tensor.values)] = tensor.gradient }
        func gradient(_ pointer: UnsafePointer<Float>?) -> UnsafeMutablePointer<Float>? {
            pointer.flatMap { gradientByAddress[Int(bitPattern: $0)] }
        }
        for layer in weights.layers {
            for linear in layer.linears {
                gradients.linears[linear.name] = LinearGradients(weight: gradient(linear.weight.float32), bias: gradient(linear.bias))
            }
            for norm in [layer.attentionNorm, layer.feedForwardNorm] + [layer.attention?.queryNorm, layer.attention?.keyNorm].compactMap({ $0 }) {
                if let weightGradient = gradient(norm.weight) {
                    gradients.norms[Int(bitPattern: norm.weight)] = (weightGradient, gradient(norm.bias))
                }
            }
        }
        if let weightGradient = gradient(weights.finalNorm.weight) {
            gradients.norms[Int(bitPattern: weights.finalNorm.weight)] = (weightGradient, gradient(weights.finalNorm.bias))
        }
        for (address, gradientBuffer) in gradientByAddress { gradients.tensors[address] = gradientBuffer }
        gradients.tokenEmbedding = gradient(weights.tokenEmbedding.float32)
        gradients.positionEmbedding = gradient(weights.positionEmbedding)
        gradients.outputProjection = gradient(weights.outputProjection.float32)
    }

    /// All tensors in float32 (or `dtype`), with their original names.
    public func tensorsToWrite(dtype: DType = .float32) -> [TensorToWrite] {
        arena.tensors.map { TensorToWrite(name: $0.name, dtype: dtype, shape: $0.shape, values: UnsafeBufferPointer(start: $0.values, count: $0.count)) }
    }
}
