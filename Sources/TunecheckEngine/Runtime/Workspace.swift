import Foundation

/// The activations of one forward pass, carved out of a single allocation into named buffers.
/// Sized for `rows` packed tokens, sequences of at most `maxSegment` queries attending to at most `maxKeys` keys,
/// and adapters of rank up to `maxRank`. A pass that fits reuses it; a larger one grows it once.
final class Workspace {
    struct Capacity: Equatable {
        var rows: Int
        var maxSegment: Int
        var maxKeys: Int
        var maxRank: Int

        func covers(_ other: Capacity) -> Bool {
            rows >= other.rows && maxSegment >= other.maxSegment && maxKeys >= other.maxKeys && maxRank >= other.maxRank
        }
    }

    private(set) var capacity = Capacity(rows: 0, maxSegment: 0, maxKeys: 0, maxRank: 0)
    private var storage: UnsafeMutablePointer<Float>?
    private let spec: TransformerSpec

    /// (rows, hidden): the residual stream.
    private(set) var hidden: UnsafeMutablePointer<Float>!
    /// (rows, hidden): normalised input of the current sub-block; after the last layer, the final norm's output.
    private(set) var normed: UnsafeMutablePointer<Float>!
    /// (rows, queryDim + 2·kvDim): `[q | k | v]` per row.
    private(set) var queryKeyValue: UnsafeMutablePointer<Float>!
    /// (rows, queryDim): attention output before o_proj.
    private(set) var attentionOutput: UnsafeMutablePointer<Float>!
    /// (rows, 2·intermediate) for gated MLPs (`[gate | up]`), (rows, intermediate) for plain ones.
    private(set) var feedForward: UnsafeMutablePointer<Float>!
    /// (maxSegment, maxKeys): attention probabilities of one head.
    private(set) var scores: UnsafeMutablePointer<Float>!
    /// (rows, rotaryDim/2) each: rotation tables for the rows' positions.
    private(set) var rotaryCos: UnsafeMutablePointer<Float>!
    private(set) var rotarySin: UnsafeMutablePointer<Float>!
    /// (rows, maxRank): the low-rank intermediate of an adapter.
    private(set) var adapterScratch: UnsafeMutablePointer<Float>!

    init(spec: TransformerSpec) {
        self.spec = spec
    }

    deinit { storage?.deallocate() }

    var queryKeyValueWidth: Int { spec.attention.queryDim + 2 * spec.attention.kvDim }

    var feedForwardWidth: Int {
        if case .gated = spec.feedForward { return 2 * spec.intermediateSize }
        return spec.intermediateSize
    }

    var rotaryHalf: Int {
        if case .rotary(let rotary) = spec.positions { return rotary.rotaryDim / 2 }
        return 0
    }

    func reserve(_ needed: Capacity) {
        if capacity.covers(needed) { return }
        let grown = Capacity(rows: max(needed.rows, capacity.rows), maxSegment: max(needed.maxSegment, capacity.maxSegment),
                             maxKeys: max(needed.maxKeys, capacity.maxKeys), maxRank: max(needed.maxRank, capacity.maxRank))
        let rows = grown.rows
        let sizes = [
            rows * spec.hiddenSize, rows * spec.hiddenSize, rows * queryKeyValueWidth, rows * spec.attention.queryDim,
            rows * feedForwardWidth, grown.maxSegment * grown.maxKeys, rows * rotaryHalf, rows * rotaryHalf, rows * grown.maxRank,
        ]
        // Each buffer starts on a 64-byte boundary so the GEMMs see aligned rows.
        let padded = sizes.map { ($0 + 15) / 16 * 16 }
        storage?.deallocate()
        let base = UnsafeMutablePointer<Float>.allocate(capacity: max(padded.reduce(0, +), 16))
        storage = base
        var offset = 0
        var pointers: [UnsafeMutablePointer<Float>] = []
        for size in padded {
            pointers.append(base + offset)
            offset += size
        }
        hidden = pointers[0]
        normed = pointers[1]
        queryKeyValue = pointers[2]
        attentionOutput = pointers[3]
        feedForward = pointers[4]
        scores = pointers[5]
        rotaryCos = pointers[6]
        rotarySin = pointers[7]
        adapterScratch = pointers[8]
        capacity = grown
    }
}
