import CBLAS
import Foundation

/// Data parallelism over the sequences of a batch, shared by scoring and training: each thread runs a contiguous
/// share of the sequences as its own packed pass with OpenBLAS single-threaded inside.
enum BatchSplit {
    /// At most `parts` contiguous groups of about equal token counts, none empty.
    static func contiguousGroups(tokenCounts: [Int], parts: Int) -> [Range<Int>] {
        let total = tokenCounts.reduce(0, +)
        var groups: [Range<Int>] = []
        var groupStart = 0, tokens = 0
        for (index, count) in tokenCounts.enumerated() {
            tokens += count
            let remainingGroups = parts - groups.count
            if remainingGroups > 1, tokens * parts >= total * (groups.count + 1) || tokenCounts.count - index - 1 < remainingGroups {
                groups.append(groupStart..<(index + 1))
                groupStart = index + 1
            }
        }
        if groupStart < tokenCounts.count { groups.append(groupStart..<tokenCounts.count) }
        return groups
    }

    /// Runs `body(part)` for `count` parts on their own threads with OpenBLAS single-threaded; returns the results in
    /// order and rethrows the first error.
    static func run<T>(_ count: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
        let outcomes = UnsafeMutableBufferPointer<Result<T, Error>?>.allocate(capacity: count)
        outcomes.initialize(repeating: nil)
        defer { outcomes.deinitialize(); outcomes.deallocate() }
        let shared = UncheckedSendable((body: body, outcomes: outcomes))
        let blasThreads = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(blasThreads) }
        DispatchQueue.concurrentPerform(iterations: count) { part in
            shared.value.outcomes[part] = Result { try shared.value.body(part) }
        }
        return try outcomes.map { try $0!.get() }
    }
}
