import Foundation

/// Per-layer decoding state of one sequence, written in place as tokens are processed; one allocation.
///
/// Attention layers keep keys and values, each (capacity, kvDim). Mamba layers keep a recurrent state instead:
/// the last K−1 pre-conv xBC rows (K−1, convDim), oldest first, and the SSM state (NH, P, N); both start at zero.
public final class KVCache {
    public let capacity: Int
    public let layerCount: Int
    public let kvDim: Int
    /// Tokens already processed (the next token's position).
    public internal(set) var length = 0
    private let storage: UnsafeMutablePointer<Float>
    private let totalCount: Int
    /// Start of each layer's region in `storage`.
    private let offsets: [Int]
    private let mamba: MambaShape?
    private let kinds: [TransformerSpec.LayerKind]

    public init(spec: TransformerSpec, capacity: Int) {
        self.capacity = capacity
        self.layerCount = spec.layerCount
        self.kvDim = spec.attention.kvDim
        self.mamba = spec.mamba
        self.kinds = (0..<spec.layerCount).map { spec.layerKind($0) }
        var offsets: [Int] = []
        var offset = 0
        for kind in kinds {
            offsets.append(offset)
            offset += Self.layerFloatCount(kind, spec: spec, capacity: capacity)
        }
        self.offsets = offsets
        totalCount = max(offset, 1)
        storage = .allocate(capacity: totalCount)
        storage.initialize(repeating: 0, count: totalCount)
    }

    deinit { storage.deallocate() }

    private static func layerFloatCount(_ kind: TransformerSpec.LayerKind, spec: TransformerSpec, capacity: Int) -> Int {
        switch kind {
        case .attention: return 2 * capacity * spec.attention.kvDim
        case .mamba: return (spec.mamba?.convStateCount ?? 0) + (spec.mamba?.ssmStateCount ?? 0)
        }
    }

    /// Floats a cache of `capacity` tokens needs, or nil when that overflows.
    public static func floatCount(spec: TransformerSpec, capacity: Int) -> Int? {
        var total = 0
        for layer in 0..<spec.layerCount {
            let kind = spec.layerKind(layer)
            let (perLayer, overflow) = kind == .attention
                ? (2 * spec.attention.kvDim).multipliedReportingOverflow(by: capacity)
                : (layerFloatCount(kind, spec: spec, capacity: capacity), false)
            guard !overflow else { return nil }
            let (sum, sumOverflow) = total.addingReportingOverflow(perLayer)
            guard !sumOverflow else { return nil }
            total = sum
        }
        return total
    }

    func keys(layer: Int) -> UnsafeMutablePointer<Float> { storage + offsets[layer] }
    func values(layer: Int) -> UnsafeMutablePointer<Float> { storage + offsets[layer] + capacity * kvDim }
    /// Mamba layers: (K−1, convDim) and (NH, P, N).
    func convHistory(layer: Int) -> UnsafeMutablePointer<Float> { storage + offsets[layer] }
    func ssmState(layer: Int) -> UnsafeMutablePointer<Float> { storage + offsets[layer] + (mamba?.convStateCount ?? 0) }

    /// Whether some layer carries a recurrent state, which summarises every token so far and cannot be rewound.
    public var hasRecurrentState: Bool { kinds.contains(.mamba) }

    /// Forgets everything after the first `length` tokens (e.g. to reuse a shared prompt prefix). A recurrent state
    /// can only be reset to the start, not rewound to the middle.
    public func truncate(to newLength: Int) {
        let target = min(length, max(0, newLength))
        guard target < length, hasRecurrentState else {
            length = target
            return
        }
        precondition(target == 0, "KVCache.truncate: a model with Mamba layers can only be reset to 0, not rewound to \(target)")
        for (layer, kind) in kinds.enumerated() where kind == .mamba {
            convHistory(layer: layer).update(repeating: 0, count: (mamba?.convStateCount ?? 0) + (mamba?.ssmStateCount ?? 0))
        }
        length = 0
    }
}
