import Foundation

/// Keys and values of one sequence for every layer, written in place as tokens are processed.
/// Layout: layer `l`'s keys are (capacity, kvDim) at `keys(layer: l)`, values likewise; one allocation.
public final class KVCache {
    public let capacity: Int
    public let layerCount: Int
    public let kvDim: Int
    /// Tokens already processed (the next token's position).
    public internal(set) var length = 0
    private let storage: UnsafeMutablePointer<Float>

    public init(spec: TransformerSpec, capacity: Int) {
        self.capacity = capacity
        self.layerCount = spec.layerCount
        self.kvDim = spec.attention.kvDim
        storage = .allocate(capacity: max(2 * layerCount * capacity * kvDim, 1))
    }

    deinit { storage.deallocate() }

    func keys(layer: Int) -> UnsafeMutablePointer<Float> { storage + (2 * layer) * capacity * kvDim }
    func values(layer: Int) -> UnsafeMutablePointer<Float> { storage + (2 * layer + 1) * capacity * kvDim }

    /// Forgets everything after the first `length` tokens (e.g. to reuse a shared prompt prefix).
    public func truncate(to newLength: Int) {
        length = min(length, max(0, newLength))
    }
}
