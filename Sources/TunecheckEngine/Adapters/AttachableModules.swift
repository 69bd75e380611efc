import Foundation

/// A low-rank adapter ready to attach to one linear layer of the base, under the base's module name.
struct AttachableModule {
    var layer: Int
    var modulePath: String
    /// The adapter tensor it came from (for messages).
    var downName: String
    var lowRank: LowRankAdapter
    var inFeatures: Int
    var outFeatures: Int
}

/// Keeps an adapter and any factors made from it alive while a model uses them.
final class AttachedAdapterStorage {
    let adapter: Adapter
    private var buffers: [UnsafeMutableBufferPointer<Float>] = []

    init(adapter: Adapter) { self.adapter = adapter }

    deinit { buffers.forEach { $0.deallocate() } }

    func allocate(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        buffer.initialize(repeating: 0)
        buffers.append(buffer)
        return buffer
    }
}

extension Adapter {
    /// The modules under the base's names. mlx_lm loads Granite 4.0-H's dense shared MLP (`shared_mlp.input_linear`,
    /// `[gate | up]` rows, and `shared_mlp.output_linear`) as `mlp.gate_proj`, `mlp.up_proj` and `mlp.down_proj`, so its
    /// adapters name those. Where the base has the fused layer instead: `down_proj` is `output_linear`, and `gate_proj` +
    /// `up_proj` become one adapter on `input_linear` of rank r_gate + r_up,
    ///
    ///     [x·A_gate | x·A_up] · [[s_gate·B_gate, 0], [0, s_up·B_up]] = [s_gate·x·A_gate·B_gate | s_up·x·A_up·B_up],
    ///
    /// which is exactly the two adapters side by side (a missing half is zero). LoRA on the router or the routed experts
    /// (`block_sparse_moe.…`, which mlx_lm adds by default on MoE models) is refused: those are not linear layers here.
    func attachableModules(knownByLayer: [Set<String>]) throws -> ([AttachableModule], AttachedAdapterStorage) {
        let storage = AttachedAdapterStorage(adapter: self)
        var result: [AttachableModule] = []
        var gateUp: [Int: (gate: AdapterModule?, up: AdapterModule?)] = [:]
        for module in modules {
            let known = knownByLayer[module.layer]
            if module.modulePath.hasPrefix("block_sparse_moe.") && !known.contains(module.modulePath) {
                throw AdapterError.unsupported(path: weightsURL.path, feature: "LoRA on the router or routed experts ('\(module.modulePath)' in layer "
                                               + "\(module.layer)); train with lora keys that leave block_sparse_moe out")
            }
            let fusedSharedMLP = known.contains("shared_mlp.input_linear") && !known.contains(module.modulePath)
            switch module.modulePath {
            case "mlp.gate_proj" where fusedSharedMLP: gateUp[module.layer, default: (nil, nil)].gate = module
            case "mlp.up_proj" where fusedSharedMLP: gateUp[module.layer, default: (nil, nil)].up = module
            case "mlp.down_proj" where known.contains("shared_mlp.output_linear") && !known.contains(module.modulePath):
                result.append(AttachableModule(layer: module.layer, modulePath: "shared_mlp.output_linear", downName: module.downName,
                                               lowRank: module.lowRank, inFeatures: module.inFeatures, outFeatures: module.outFeatures))
            default:
                result.append(AttachableModule(layer: module.layer, modulePath: module.modulePath, downName: module.downName,
                                               lowRank: module.lowRank, inFeatures: module.inFeatures, outFeatures: module.outFeatures))
            }
        }
        for (layer, pair) in gateUp.sorted(by: { $0.key < $1.key }) {
            result.append(try combineGateUp(layer: layer, gate: pair.gate, up: pair.up, storage: storage))
        }
        return (result, storage)
    }

    /// One adapter on `[gate | up]` from adapters on `gate` and `up` (either may be absent), in the mlx_lm orientation
    /// (down (in, r), up (r, out)) with the scales folded into the up factor.
    private func combineGateUp(layer: Int, gate: AdapterModule?, up: AdapterModule?, storage: AttachedAdapterStorage) throws -> AttachableModule {
        let present = [gate, up].compactMap { $0 }
        let first = present[0]
        let inFeatures = first.inFeatures
        guard present.allSatisfy({ $0.inFeatures == inFeatures }) else {
            throw AdapterError.doesNotFitBase(path: weightsURL.path, tensor: first.downName, reason: "mlp.gate_proj and mlp.up_proj adapters have different inputs")
        }
        // Each half is as wide as the adapter on it; a missing half takes the other's width (the MLP is [gate | up]).
        let halfWidth = first.outFeatures
        guard present.allSatisfy({ $0.outFeatures == halfWidth }) else {
            throw AdapterError.doesNotFitBase(path: weightsURL.path, tensor: first.downName, reason: "mlp.gate_proj and mlp.up_proj adapters have different widths")
        }
        let rank = present.reduce(0) { $0 + $1.rank }
        let down = storage.allocate(inFeatures * rank)      // (in, r_gate + r_up)
        let upFactor = storage.allocate(rank * 2 * halfWidth) // (r_gate + r_up, 2·width), block diagonal
        var rankOffset = 0
        for (half, module) in [(0, gate), (1, up)] {
            guard let module else { continue }
            let lowRank = module.lowRank
            for row in 0..<inFeatures {
                for column in 0..<module.rank {
                    let value = lowRank.downLayout == .inOut ? lowRank.down[row * module.rank + column] : lowRank.down[column * inFeatures + row]
                    down[row * rank + rankOffset + column] = value
                }
            }
            for column in 0..<module.rank {
                for output in 0..<halfWidth {
                    let value = lowRank.upLayout == .inOut ? lowRank.up[column * halfWidth + output] : lowRank.up[output * module.rank + column]
                    upFactor[(rankOffset + column) * 2 * halfWidth + half * halfWidth + output] = lowRank.scale * value
                }
            }
            rankOffset += module.rank
        }
        let combined = LowRankAdapter(down: UnsafePointer(down.baseAddress!), downLayout: .inOut, up: UnsafePointer(upFactor.baseAddress!),
                                      upLayout: .inOut, rank: rank, scale: 1)
        return AttachableModule(layer: layer, modulePath: "shared_mlp.input_linear", downName: first.downName, lowRank: combined,
                                inFeatures: inFeatures, outFeatures: 2 * halfWidth)
    }
}
