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
}
