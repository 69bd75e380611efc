import CBLAS
import Foundation
import TunecheckJSON

/// How far one weight tensor moved: `‖ΔW‖_F`, `‖ΔW‖_F / ‖W‖_F` and `max|ΔW|`, with `W` the base tensor.
public struct TensorDelta: Sendable, Equatable {
    /// The base tensor's name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public var name: String
    /// Block index, nil for tensors outside the blocks (embeddings, final norm, head).
    public var layer: Int?
    /// Shape as stored in the base (GPT-2 `Conv1D`: (in, out)).
    public var shape: [Int]
    public var frobenius: Double
    public var baseFrobenius: Double
    public var maxAbs: Double
    /// Adapters only: the module's rank and scale.
    public var rank: Int?
    public var scale: Double?

    public var relative: Double { baseFrobenius > 0 ? frobenius / baseFrobenius : (frobenius > 0 ? .infinity : 0) }
}

/// Sums over a group of tensors (one block, or everything): norms add in squares.
public struct DeltaSummary: Sendable, Equatable {
    public var layer: Int?
    public var tensorCount: Int
    public var frobenius: Double
    public var baseFrobenius: Double
    public var maxAbs: Double

    public var relative: Double { baseFrobenius > 0 ? frobenius / baseFrobenius : (frobenius > 0 ? .infinity : 0) }

    public init(layer: Int?, tensors: [TensorDelta]) {
        self.layer = layer
        tensorCount = tensors.count
        frobenius = tensors.reduce(0) { $0 + $1.frobenius * $1.frobenius }.squareRoot()
        baseFrobenius = tensors.reduce(0) { $0 + $1.baseFrobenius * $1.baseFrobenius }.squareRoot()
        maxAbs = tensors.map(\.maxAbs).max() ?? 0
    }
}

/// Health flags on the overall relative delta.
public enum DeltaFlag: String, Sendable, CaseIterable {
    /// The weights barely moved: overall `‖ΔW‖/‖W‖` below the no-learning threshold (LoRA B still zero, a learning
    /// rate too small, a checkpoint saved before the first step, the wrong file).
    case noLearning = "no-learning"
    /// The weights moved a lot: overall `‖ΔW‖/‖W‖` above the large-update threshold (a learning rate too high, a
    /// scale far too large, a diverged run).
    case largeUpdate = "large-update"
}

public struct DeltaThresholds: Sendable, Equatable {
    public var noLearning: Double
    public var largeUpdate: Double

    public init(noLearning: Double = 1e-4, largeUpdate: Double = 0.1) {
        self.noLearning = noLearning
        self.largeUpdate = largeUpdate
    }
}

/// The weight delta of an adapter against its base, or of one model folder against another.
public struct DeltaReport: Sendable {
    public enum Source: Sendable, Equatable {
        case adapter(path: String)
        case model(path: String)
    }
    public var base: String
    public var source: Source
    /// Adapted tensors (adapter), or tensors that differ (two models), in base-file order.
    public var tensors: [TensorDelta]
    /// Tensors compared (two models: all of them; adapter: the adapted ones).
    public var comparedTensorCount: Int
    /// Per block (tensors outside the blocks last, with `layer` nil).
    public var layers: [DeltaSummary]
    public var total: DeltaSummary
    public var thresholds: DeltaThresholds

    init(base: String, source: Source, tensors: [TensorDelta], comparedTensorCount: Int, thresholds: DeltaThresholds) {
        self.base = base
        self.source = source
        self.tensors = tensors
        self.comparedTensorCount = comparedTensorCount
        self.thresholds = thresholds
        let byLayer = Dictionary(grouping: tensors, by: \.layer)
        layers = byLayer.keys.sorted { ($0 ?? Int.max) < ($1 ?? Int.max) }.map { DeltaSummary(layer: $0, tensors: byLayer[$0]!) }
        total = DeltaSummary(layer: nil, tensors: tensors)
    }

    /// `no-learning` when the overall relative delta is below `thresholds.noLearning` (including no tensor differing
    /// at all), `large-update` when it is above `thresholds.largeUpdate`.
    public var flags: [DeltaFlag] {
        var flags: [DeltaFlag] = []
        if total.relative < thresholds.noLearning { flags.append(.noLearning) }
        if total.relative > thresholds.largeUpdate { flags.append(.largeUpdate) }
        return flags
    }

    /// The report as JSON (schema in the README's `delta` section).
    public var json: JSONValue {
        func number(_ value: Double) -> JSONValue { .from(value) }
        func summary(_ entry: DeltaSummary, layer: Bool) -> JSONValue {
            var object = JSONObject()
            if layer { object.set("layer", entry.layer.map { .from($0) } ?? .null) }
            object.set("tensor_count", .from(entry.tensorCount))
            object.set("frobenius", number(entry.frobenius))
            object.set("base_frobenius", number(entry.baseFrobenius))
            object.set("relative_frobenius", number(entry.relative))
            object.set("max_abs", number(entry.maxAbs))
            return .object(object)
        }
        var root = JSONObject()
        root.set("base", .string(base))
        switch source {
        case .adapter(let path): root.set("kind", .string("adapter")); root.set("adapter", .string(path))
        case .model(let path): root.set("kind", .string("models")); root.set("model", .string(path))
        }
        root.set("tensors", .array(tensors.map { tensor in
            var object = JSONObject()
            object.set("name", .string(tensor.name))
            object.set("layer", tensor.layer.map { .from($0) } ?? .null)
            object.set("shape", .from(tensor.shape))
            object.set("frobenius", number(tensor.frobenius))
            object.set("base_frobenius", number(tensor.baseFrobenius))
            object.set("relative_frobenius", number(tensor.relative))
            object.set("max_abs", number(tensor.maxAbs))
            if let rank = tensor.rank { object.set("rank", .from(rank)) }
            if let scale = tensor.scale { object.set("scale", number(scale)) }
            return .object(object)
        }))
        root.set("layers", .array(layers.map { summary($0, layer: true) }))
        var total = summary(self.total, layer: false).object!
        total.set("compared_tensor_count", .from(comparedTensorCount))
        root.set("total", .object(total))
        root.set("thresholds", .object(JSONObject(["no_learning": number(thresholds.noLearning), "large_update": number(thresholds.largeUpdate)])))
        root.set("flags", .array(flags.map { .string($0.rawValue) }))
        return .object(root)
    }
}

public enum WeightDelta {
    /// The delta an adapter applies to its base, without building any `ΔW`: with `ΔW = scale·U·D` (`U` (out, r) =
    /// PEFT's `lora_B` = mlx's `lora_bᵀ`, `D` (r, in) = `lora_A` = `lora_aᵀ`),
    /// `‖ΔW‖²_F = scale² · Σ (D·Dᵀ) ⊙ (Uᵀ·U)`, two r×r Gram products. `max|ΔW|` has no such shortcut: it is taken
    /// over `scale·U·D` computed a block of rows at a time (bounded scratch). Everything in float64 (the factors are
    /// small); the scale is the float32 one the forward pass uses, so a float64 reference agrees to ~1e-8 relative.
    public static func adapterDelta(baseFolder: URL, adapter: Adapter, thresholds: DeltaThresholds = DeltaThresholds()) throws -> DeltaReport {
        // Attaching validates the adapter against the base (names, layers, shapes) exactly as scoring does.
        let model = try adapter.attach(to: ModelLoader.loadDecoder(folder: baseFolder))
        return adapterDelta(attached: model, baseFolder: baseFolder, adapter: adapter, thresholds: thresholds)
    }

    /// The same, for a base already loaded with `adapter` attached (an evaluation's checkpoint model): nothing is
    /// loaded or mapped again.
    public static func adapterDelta(attached model: DecoderModel, baseFolder: URL, adapter: Adapter,
                                    thresholds: DeltaThresholds = DeltaThresholds()) -> DeltaReport {
        let tensors = adaptedTensors(of: model)
        return DeltaReport(base: baseFolder.path, source: .adapter(path: adapter.weightsURL.path), tensors: tensors,
                           comparedTensorCount: tensors.count, thresholds: thresholds)
    }

    /// One entry per linear layer of `model` that carries a low-rank adapter (an attached checkpoint, or the
    /// trainer's LoRA parameters while it trains): ‖ΔW‖_F from the Gram products, ‖W‖_F of the base weight, and
    /// `max|ΔW|` unless `includeMaxAbs` is false (the trainer's no-learning guard needs only the norms).
    public static func adaptedTensors(of model: DecoderModel, includeMaxAbs: Bool = true) -> [TensorDelta] {
        var tensors: [TensorDelta] = []
        for (layerIndex, layer) in model.weights.layers.enumerated() {
            for linear in layer.linears {
                guard let lowRank = linear.adapter else { continue }
                let baseSquares = linear.weight.sumOfSquares()
                let (frobenius, maxAbs) = lowRankNorms(lowRank, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
                                                       includeMaxAbs: includeMaxAbs)
                tensors.append(TensorDelta(
                    name: linear.name + ".weight", layer: layerIndex,
                    shape: linear.layout == .outIn ? [linear.outFeatures, linear.inFeatures] : [linear.inFeatures, linear.outFeatures],
                    frobenius: frobenius, baseFrobenius: max(baseSquares, 0).squareRoot(), maxAbs: maxAbs,
                    rank: lowRank.rank, scale: Double(lowRank.scale)))
            }
        }
        return tensors
    }

    /// `(‖ΔW‖_F, max|ΔW|)` of `ΔW = scale·U·D` from the factors of `adapter`.
    static func lowRankNorms(_ adapter: LowRankAdapter, inFeatures: Int, outFeatures: Int, includeMaxAbs: Bool = true) -> (Double, Double) {
        let rank = adapter.rank
        // D (r, in) and U (out, r) in float64, whatever the stored layouts.
        var down = [Double](repeating: 0, count: rank * inFeatures)
        var up = [Double](repeating: 0, count: outFeatures * rank)
        for i in 0..<inFeatures {
            for k in 0..<rank {
                down[k * inFeatures + i] = Double(adapter.downLayout == .outIn ? adapter.down[k * inFeatures + i] : adapter.down[i * rank + k])
            }
        }
        for o in 0..<outFeatures {
            for k in 0..<rank {
                up[o * rank + k] = Double(adapter.upLayout == .outIn ? adapter.up[o * rank + k] : adapter.up[k * outFeatures + o])
            }
        }
        let scale = Double(adapter.scale)
        var downGram = [Double](repeating: 0, count: rank * rank)  // D·Dᵀ (r, r)
        var upGram = [Double](repeating: 0, count: rank * rank)    // Uᵀ·U (r, r)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rank), Int32(rank), Int32(inFeatures), 1,
                    down, Int32(inFeatures), down, Int32(inFeatures), 0, &downGram, Int32(rank))
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rank), Int32(rank), Int32(outFeatures), 1,
                    up, Int32(rank), up, Int32(rank), 0, &upGram, Int32(rank))
        let squares = scale * scale * cblas_ddot(Int32(rank * rank), downGram, 1, upGram, 1)
        guard includeMaxAbs else { return (max(squares, 0).squareRoot(), 0) }

        // max|scale·U·D|, a block of output rows at a time.
        let blockRows = max(1, min(outFeatures, (1 << 16) / max(inFeatures, 1)))
        var block = [Double](repeating: 0, count: blockRows * inFeatures)
        var maxAbs = 0.0
        var row = 0
        while row < outFeatures {
            let rows = min(blockRows, outFeatures - row)
            up.withUnsafeBufferPointer { upPointer in
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inFeatures), Int32(rank), scale,
                            upPointer.baseAddress! + row * rank, Int32(rank), down, Int32(inFeatures), 0, &block, Int32(inFeatures))
            }
            let index = Int(cblas_idamax(Int32(rows * inFeatures), block, 1))
            maxAbs = max(maxAbs, abs(block[index]))
            row += rows
        }
        return (max(squares, 0).squareRoot(), maxAbs)
    }

    /// The delta between two model folders, tensor by tensor (in chunks, in float64, without holding widened
    /// copies): every tensor must exist in both with the same shape; tensors that differ are reported.
    public static func modelDelta(baseFolder: URL, otherFolder: URL, thresholds: DeltaThresholds = DeltaThresholds()) throws -> DeltaReport {
        let base = try TensorSource(folder: baseFolder)
        let other = try TensorSource(folder: otherFolder)
        for name in other.names where base.info[name] == nil {
            throw EngineError.missingTensor(path: baseFolder.path, name: "\(name) (present in \(otherFolder.path))")
        }
        var tensors: [TensorDelta] = []
        for name in base.names {
            guard let baseInfo = base.info[name] else { continue }
            guard let otherInfo = other.info[name] else {
                throw EngineError.missingTensor(path: otherFolder.path, name: "\(name) (present in \(baseFolder.path))")
            }
            guard baseInfo.shape == otherInfo.shape else {
                throw EngineError.tensorShapeMismatch(path: other.path(of: name), name: name, expected: baseInfo.shape, actual: otherInfo.shape)
            }
            for (source, info) in [(base, baseInfo), (other, otherInfo)] where !info.dtype.isFloatWeight {
                throw EngineError.unsupportedDType(path: source.path(of: name), name: name, dtype: info.dtype.rawValue)
            }
            var deltaSquares = 0.0, baseSquares = 0.0, maxAbs = 0.0
            try base.chunks(of: name) { offset, baseChunk in
                try other.chunk(of: name, offset: offset, count: baseChunk.count) { otherChunk in
                    for index in 0..<baseChunk.count {
                        let w = Double(baseChunk[index])
                        let difference = Double(otherChunk[index]) - w
                        deltaSquares += difference * difference
                        baseSquares += w * w
                        maxAbs = max(maxAbs, abs(difference))
                    }
                }
            }
            guard deltaSquares.isFinite, baseSquares.isFinite else {
                throw EngineError.nonFiniteWeights(path: deltaSquares.isFinite ? base.path(of: name) : other.path(of: name), name: name)
            }
            if maxAbs > 0 {
                tensors.append(TensorDelta(name: name, layer: Adapter.splitLayerKey(name)?.layer, shape: baseInfo.shape,
                                           frobenius: deltaSquares.squareRoot(), baseFrobenius: baseSquares.squareRoot(), maxAbs: maxAbs))
            }
        }
        return DeltaReport(base: baseFolder.path, source: .model(path: otherFolder.path), tensors: tensors,
                           comparedTensorCount: base.names.count, thresholds: thresholds)
    }
}

/// The safetensors of a model folder read as float32 chunks straight from the memory-mapped files (F16/BF16 widened
/// chunk by chunk), so comparing two large models never holds a widened copy of a whole model.
final class TensorSource {
    let names: [String]
    let info: [String: TensorInfo]
    private let filesByTensor: [String: SafeTensorsFile]
    /// Reused by `chunk` (one reader per thread).
    private let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: TensorSource.chunkSize)
    static let chunkSize = 1 << 16

    deinit { scratch.deallocate() }

    init(folder: URL) throws {
        let store = try WeightStore(folder: folder)  // finds the files (index, single file or shards) and validates them
        var files: [String: SafeTensorsFile] = [:]
        var filesByTensor: [String: SafeTensorsFile] = [:]
        var info: [String: TensorInfo] = [:]
        for name in store.tensorNames {
            let path = store.path(of: name)
            if files[path] == nil { files[path] = try SafeTensorsFile(url: URL(fileURLWithPath: path)) }
            filesByTensor[name] = files[path]
            info[name] = store.info(name)
        }
        self.filesByTensor = filesByTensor
        self.info = info
        names = store.tensorNames.sorted { (filesByTensor[$0]!.path, info[$0]!.dataRange.lowerBound) < (filesByTensor[$1]!.path, info[$1]!.dataRange.lowerBound) }
    }

    func path(of name: String) -> String { filesByTensor[name]?.path ?? "?" }

    /// Calls `body` with consecutive float32 chunks of `name` and their element offsets.
    func chunks(of name: String, _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        let count = info[name]!.elementCount
        var offset = 0
        while offset < count {
            let length = min(Self.chunkSize, count - offset)
            try chunk(of: name, offset: offset, count: length) { try body(offset, $0) }
            offset += length
        }
    }

    /// Calls `body` with elements `offset ..< offset + count` (count ≤ `chunkSize`) of `name` as float32.
    func chunk(of name: String, offset: Int, count: Int, _ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        precondition(count <= Self.chunkSize)
        let tensorInfo = info[name]!, file = filesByTensor[name]!
        let raw = file.bytes(of: tensorInfo)
        let size = tensorInfo.dtype.byteSize
        let slice = UnsafeRawBufferPointer(rebasing: raw[(offset * size)..<((offset + count) * size)])
        WeightStore.widen(slice, dtype: tensorInfo.dtype, into: scratch.baseAddress!, count: count)
        try body(UnsafeBufferPointer(rebasing: scratch[0..<count]))
    }
}
