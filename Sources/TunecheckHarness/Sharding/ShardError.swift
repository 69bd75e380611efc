import Foundation

/// Problems with a sharded run or with merging its parts. Each names the files concerned; `merge` writes nothing
/// when it throws one.
public enum ShardError: Error, LocalizedError, Equatable {
    /// `--shard` is not `I/N` with 1 ≤ I ≤ N.
    case invalidShard(String)
    case updateGoldenWithShard
    case noParts(arguments: [String])
    case unreadable(path: String, reason: String)
    /// Not a part file, a part of another format version, or one whose checksum or length does not match.
    case corrupt(path: String, reason: String)
    case mixedShardCounts([(path: String, count: Int)])
    case mixedVersions([(path: String, version: String)])
    case mixedSettings([(path: String, hash: String)])
    case duplicateShard(index: Int, paths: [String])
    case missingShards(indices: [Int], count: Int, present: [String])
    /// The parts agree on their settings but one lacks a value it should hold (a part made by another build).
    case missingRecord(subject: String, computation: String, item: String?)
    case invalidRecord(subject: String, computation: String, item: String?)

    public var errorDescription: String? {
        switch self {
        case let .invalidShard(text):
            return "--shard \(text): expected I/N with 1 ≤ I ≤ N (e.g. 2/4)"
        case .updateGoldenWithShard:
            return "--update-golden cannot be combined with --shard: golden files are written per checkpoint by an unsharded run"
        case let .noParts(arguments):
            return "no part files (tunecheck-part-*.json) in \(arguments.joined(separator: ", "))"
        case let .unreadable(path, reason):
            return "\(path): cannot read the part file: \(reason)"
        case let .corrupt(path, reason):
            return "\(path): not a valid part file: \(reason)"
        case let .mixedShardCounts(parts):
            return "the parts come from different splits: " + parts.map { "\($0.path) is one of \($0.count)" }.joined(separator: ", ")
        case let .mixedVersions(parts):
            return "the parts were made by different tunecheck versions: " + parts.map { "\($0.path) (\($0.version))" }.joined(separator: ", ")
        case let .mixedSettings(parts):
            return "the parts were made with different settings or inputs: "
                + parts.map { "\($0.path) (settings \($0.hash.prefix(12)))" }.joined(separator: ", ")
        case let .duplicateShard(index, paths):
            return "shard \(index) is given more than once: \(paths.joined(separator: ", "))"
        case let .missingShards(indices, count, present):
            return "shard\(indices.count == 1 ? "" : "s") \(indices.map(String.init).joined(separator: ", ")) of \(count) missing (given: "
                + "\(present.joined(separator: ", ")))"
        case let .missingRecord(subject, computation, item):
            return "the parts hold no \(computation) for \(subject)\(item.map { " item \($0)" } ?? ""): the parts do not cover the evaluation"
        case let .invalidRecord(subject, computation, item):
            return "the parts hold an unreadable \(computation) for \(subject)\(item.map { " item \($0)" } ?? "")"
        }
    }

    public static func == (lhs: ShardError, rhs: ShardError) -> Bool {
        lhs.errorDescription == rhs.errorDescription
    }
}
