// Temporary until the repetition metrics land (branch `repetition`): the thresholds type the suite file needs.
public struct RepetitionThresholds: Sendable, Equatable, Codable {
    public static let `default` = RepetitionThresholds()
}
