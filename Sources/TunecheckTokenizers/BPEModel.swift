import Foundation
import TunecheckJSON

/// The `model` stage: byte-pair encoding of one pre-token into vocabulary ids.
///
/// Follows `tokenizers`' `BPE::merge_word`: the word starts as one symbol per Unicode scalar (or
/// per UTF-8 byte via `<0xXX>` tokens when the scalar is not in the vocabulary and `byte_fallback`
/// is on), then the adjacent pair with the lowest merge rank is merged repeatedly, ties going to the
/// leftmost pair. A min-heap keyed by (rank, position) finds that pair; stale heap entries (whose
/// symbols were merged away since) are skipped when popped.
final class BPEModel: @unchecked Sendable {
    // Immutable after init except `cache`, which `cacheLock` guards; hence @unchecked Sendable.

    /// Merge result for an ordered pair of ids.
    struct Merge {
        let rank: Int32
        let newId: Int32
    }

    /// Keyed by exact bytes: canonically equivalent tokens are distinct entries.
    let vocabulary: [ExactString: Int]
    /// Token string per id; nil for ids the model does not define.
    let tokensById: [String?]
    private let singleScalarIds: [UInt32: Int32]
    private let merges: [UInt64: Merge]
    private let unknownId: Int32?
    private let fuseUnknown: Bool
    private let byteFallback: Bool
    private let ignoreMerges: Bool
    private let continuingSubwordPrefix: String?
    private let endOfWordSuffix: String?
    /// Ids of `<0x00>` … `<0xFF>`, -1 where absent.
    private let byteFallbackIds: [Int32]

    private var cache: [[Unicode.Scalar]: [Int32]] = [:]
    private let cacheLock = NSLock()
    /// Bound on cached words, so encoding an endless stream of unique words cannot grow memory
    /// without limit (`tokenizers` uses a similar fixed capacity).
    private static let cacheCapacity = 100_000
    /// Long pre-tokens (a SentencePiece model without splitting sees a whole line as one) rarely
    /// repeat and would pin large keys in memory.
    private static let maximumCachedWordLength = 256

    /// - Parameter sentencePieceDefaults: use `LlamaTokenizer`'s model options (`fuse_unk` and
    ///   `byte_fallback` on, no unknown token, no `ignore_merges`) instead of the file's.
    init(_ node: JSONNode, sentencePieceDefaults: Bool = false) throws {
        let path = node.path
        let type = try node.optionalString("type") ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerError.unsupported(path: path, component: "model", type: type)
        }
        if node.has("dropout") {
            // Dropout makes encoding random; a checker must be deterministic.
            if let dropout = node.value("dropout")?.double, dropout != 0 {
                throw TokenizerError.unsupported(path: path, component: "BPE option", type: "dropout \(dropout)")
            }
        }

        guard let rawVocabulary = node.value("vocab")?.object else {
            throw node.has("vocab") ? node.invalid("vocab", "expected an object of token → id")
                                    : TokenizerError.missingField(path: path, field: node.qualified("vocab"))
        }
        var vocabulary = [ExactString: Int](minimumCapacity: rawVocabulary.keys.count)
        var maxId = -1
        for (token, rawId) in zip(rawVocabulary.keys, rawVocabulary.values) {
            guard let id = rawId.int, id >= 0, id < Int(Int32.max) else {
                throw node.invalid("vocab", "token '\(token)' has a non-integer or negative id")
            }
            vocabulary[ExactString(token)] = id
            maxId = max(maxId, id)
        }
        var tokensById = [String?](repeating: nil, count: maxId + 1)
        for (token, id) in vocabulary { tokensById[id] = token.text }
        self.vocabulary = vocabulary
        self.tokensById = tokensById

        var singleScalarIds = [UInt32: Int32]()
        for (token, id) in vocabulary {
            var scalars = token.text.unicodeScalars.makeIterator()
            if let first = scalars.next(), scalars.next() == nil { singleScalarIds[first.value] = Int32(id) }
        }
        self.singleScalarIds = singleScalarIds

        var byteFallbackIds = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = vocabulary[ExactString(Self.byteFallbackToken(UInt8(byte)))] { byteFallbackIds[byte] = Int32(id) }
        }
        self.byteFallbackIds = byteFallbackIds

        continuingSubwordPrefix = try node.optionalString("continuing_subword_prefix")
        endOfWordSuffix = try node.optionalString("end_of_word_suffix")
        fuseUnknown = try sentencePieceDefaults || node.bool("fuse_unk", default: false)
        byteFallback = try sentencePieceDefaults || node.bool("byte_fallback", default: false)
        ignoreMerges = try !sentencePieceDefaults && node.bool("ignore_merges", default: false)
        if !sentencePieceDefaults, let unknownToken = try node.optionalString("unk_token") {
            // `tokenizers` only complains about an out-of-vocabulary unk token when it needs it; an
            // unknown scalar is then dropped, which is what a nil id does here.
            unknownId = vocabulary[ExactString(unknownToken)].map(Int32.init)
        } else {
            unknownId = nil
        }

        let rawMerges = node.has("merges") ? try node.array("merges") : []
        var merges = [UInt64: Merge](minimumCapacity: rawMerges.count)
        let prefixLength = continuingSubwordPrefix?.count ?? 0
        for (rank, rawMerge) in rawMerges.enumerated() {
            let left: String, right: String
            if let line = rawMerge.string {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError.malformedMerge(path: path, index: rank, merge: line, reason: "expected two tokens separated by one space")
                }
                left = String(parts[0]); right = String(parts[1])
            } else if let pair = rawMerge.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                left = a; right = b
            } else {
                throw TokenizerError.malformedMerge(path: path, index: rank, merge: "#\(rank)", reason: "expected \"a b\" or [\"a\", \"b\"]")
            }
            let mergeText = "\(left) \(right)"
            guard let leftId = vocabulary[ExactString(left)] else {
                throw TokenizerError.malformedMerge(path: path, index: rank, merge: mergeText, reason: "'\(left)' is not in the vocabulary")
            }
            guard let rightId = vocabulary[ExactString(right)] else {
                throw TokenizerError.malformedMerge(path: path, index: rank, merge: mergeText, reason: "'\(right)' is not in the vocabulary")
            }
            let merged = left + String(right.dropFirst(min(prefixLength, right.count)))
            guard let newId = vocabulary[ExactString(merged)] else {
                throw TokenizerError.malformedMerge(path: path, index: rank, merge: mergeText, reason: "the merged token '\(merged)' is not in the vocabulary")
            }
            let key = Self.pairKey(Int32(leftId), Int32(rightId))
            // The first (best-ranked) occurrence of a duplicated merge wins, as in `tokenizers`.
            if merges[key] == nil { merges[key] = Merge(rank: Int32(rank), newId: Int32(newId)) }
        }
        self.merges = merges
    }

    static func byteFallbackToken(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "<0x\(hex.count == 1 ? "0" + hex : hex)>"
    }

    @inline(__always)
    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the ids of one pre-token to `output`.
    func tokenize(_ word: [Unicode.Scalar], into output: inout [Int]) {
        if word.isEmpty { return }
        if ignoreMerges {
            // Llama 3 sets this: a pre-token that is itself a vocabulary entry is taken whole even
            // when the merge ranks would build it differently.
            var text = String.UnicodeScalarView()
            text.append(contentsOf: word)
            if let id = vocabulary[ExactString(String(text))] { output.append(id); return }
        }
        cacheLock.lock()
        let cached = cache[word]
        cacheLock.unlock()
        if let cached {
            for id in cached { output.append(Int(id)) }
            return
        }
        let ids = mergeWord(word)
        if word.count <= Self.maximumCachedWordLength {
            cacheLock.lock()
            if cache.count < Self.cacheCapacity { cache[word] = ids }
            cacheLock.unlock()
        }
        for id in ids { output.append(Int(id)) }
    }

    /// The initial symbols: one per scalar, with byte fallback and unknown-token handling exactly as
    /// `BPE::merge_word` does (including its quirk that byte-fallback symbols are emitted before a
    /// pending, not yet flushed unknown token).
    private func initialSymbols(_ word: [Unicode.Scalar]) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false
        let usesAffixes = continuingSubwordPrefix != nil || endOfWordSuffix != nil
        for (index, scalar) in word.enumerated() {
            var id: Int32?
            if usesAffixes {
                var piece = String(scalar)
                if index > 0, let prefix = continuingSubwordPrefix { piece = prefix + piece }
                if index == word.count - 1, let suffix = endOfWordSuffix { piece += suffix }
                id = vocabulary[ExactString(piece)].map(Int32.init)
            } else {
                id = singleScalarIds[scalar.value]
            }
            if let id {
                if pendingUnknown, let unknownId { symbols.append(unknownId); pendingUnknown = false }
                symbols.append(id)
                continue
            }
            if byteFallback {
                var byteIds: [Int32] = []
                var complete = true
                UTF8.encode(scalar) { byte in
                    let byteId = byteFallbackIds[Int(byte)]
                    if byteId < 0 { complete = false } else { byteIds.append(byteId) }
                }
                if complete { symbols += byteIds; continue }
            }
            if let unknownId {
                if pendingUnknown && !fuseUnknown { symbols.append(unknownId) }
                pendingUnknown = true
            }
        }
        if pendingUnknown, let unknownId { symbols.append(unknownId) }
        return symbols
    }

    private struct HeapEntry {
        let rank: Int32
        let position: Int32
        let newId: Int32

        @inline(__always)
        func precedes(_ other: HeapEntry) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }

    private func mergeWord(_ word: [Unicode.Scalar]) -> [Int32] {
        var ids = initialSymbols(word)
        let count = ids.count
        if count < 2 { return ids }
        // Doubly linked list over symbol positions; a merged-away symbol is marked dead.
        var previous = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = Int32(i) - 1 }
            initialized = count
        }
        var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = i + 1 < count ? Int32(i + 1) : -1 }
            initialized = count
        }
        var alive = [Bool](repeating: true, count: count)

        var heap: [HeapEntry] = []
        heap.reserveCapacity(count)
        for position in 0..<(count - 1) {
            if let merge = merges[Self.pairKey(ids[position], ids[position + 1])] {
                Self.push(HeapEntry(rank: merge.rank, position: Int32(position), newId: merge.newId), onto: &heap)
            }
        }
        while let top = Self.pop(&heap) {
            let position = Int(top.position)
            guard alive[position], next[position] >= 0 else { continue }
            let right = Int(next[position])
            // Skip entries made stale by an earlier merge that changed either symbol.
            guard let current = merges[Self.pairKey(ids[position], ids[right])], current.newId == top.newId else { continue }
            ids[position] = top.newId
            alive[right] = false
            let afterRight = next[right]
            next[position] = afterRight
            if afterRight >= 0 { previous[Int(afterRight)] = Int32(position) }
            let left = previous[position]
            if left >= 0, let merge = merges[Self.pairKey(ids[Int(left)], ids[position])] {
                Self.push(HeapEntry(rank: merge.rank, position: left, newId: merge.newId), onto: &heap)
            }
            if afterRight >= 0, let merge = merges[Self.pairKey(ids[position], ids[Int(afterRight)])] {
                Self.push(HeapEntry(rank: merge.rank, position: Int32(position), newId: merge.newId), onto: &heap)
            }
        }
        var result: [Int32] = []
        result.reserveCapacity(count)
        var position = 0
        while position >= 0 && position < count {
            result.append(ids[position])
            position = Int(next[position])
        }
        return result
    }

    // MARK: - Binary min-heap on (rank, position)

    private static func push(_ entry: HeapEntry, onto heap: inout [HeapEntry]) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private static func pop(_ heap: inout [HeapEntry]) -> HeapEntry? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        heap[0] = last
        var parent = 0
        while true {
            let leftChild = 2 * parent + 1
            if leftChild >= heap.count { break }
            var best = leftChild
            let rightChild = leftChild + 1
            if rightChild < heap.count && heap[rightChild].precedes(heap[leftChild]) { best = rightChild }
            guard heap[best].precedes(heap[parent]) else { break }
            heap.swapAt(best, parent)
            parent = best
        }
        return top
    }
}
