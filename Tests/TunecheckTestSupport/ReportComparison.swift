import TunecheckJSON

/// Reports compared across runs: the same JSON but for when it ran and how long it took.
public enum ReportComparison {
    /// `value` without `started_at` and `duration_seconds` keys, at any depth.
    public static func withoutTimings(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            var result = JSONObject()
            for (key, item) in zip(object.keys, object.values) where !["started_at", "duration_seconds"].contains(key) {
                result.set(key, withoutTimings(item))
            }
            return .object(result)
        case .array(let items): return .array(items.map(withoutTimings))
        default: return value
        }
    }

    /// Whether two JSON values are equal but for numbers within `relative` of each other (strings, booleans, keys
    /// and shapes exact). For reports recomputed inside one test process: tests running in parallel change
    /// OpenBLAS's process-wide thread count, which moves float32 sums in their last bits.
    public static func nearlyEqual(_ a: JSONValue, _ b: JSONValue, relative: Double = 1e-6) -> Bool {
        switch (a, b) {
        case let (.number(x, _), .number(y, _)):
            return x == y || abs(x - y) <= relative * max(abs(x), abs(y))
        case let (.array(x), .array(y)):
            return x.count == y.count && zip(x, y).allSatisfy { nearlyEqual($0, $1, relative: relative) }
        case let (.object(x), .object(y)):
            return x.keys == y.keys && zip(x.values, y.values).allSatisfy { nearlyEqual($0, $1, relative: relative) }
        default:
            return a == b
        }
    }
}
