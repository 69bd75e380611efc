import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress display with rate and ETA on standard error, redrawn in place. Silent when standard error
/// is not a terminal or when running in CI, so logs stay clean.
final class ProgressLine {
    private let label: String
    private let total: Int
    private let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool

    init(_ label: String, total: Int, unit: String = "items") {
        self.label = label
        self.total = total
        self.unit = unit
        let environment = ProcessInfo.processInfo.environment
        enabled = isatty(STDERR_FILENO) == 1 && environment["CI"] == nil && environment["TUNECHECK_NO_PROGRESS"] == nil
    }

    func update(_ done: Int, detail: String = "") {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 || done >= total else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let width = 24
        let filled = total > 0 ? min(width, width * done / total) : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        var line = "\(label) \(bar) \(done)/\(total) \(unit)  \(String(format: "%.1f", rate))/s  ETA \(Self.format(seconds: remaining))"
        if !detail.isEmpty { line += "  \(detail)" }
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(line)".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }

    static func format(seconds: Double) -> String {
        guard seconds.isFinite else { return "--:--" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
                             : String(format: "%02d:%02d", total / 60, total % 60)
    }
}
