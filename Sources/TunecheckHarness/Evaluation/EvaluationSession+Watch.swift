import Foundation
import TunecheckEngine

/// How a session watches a folder for checkpoints another trainer writes.
public struct WatchSettings: Sendable {
    public var folder: URL
    /// Evaluate what is there now and stop; what cannot be read is reported as broken.
    public var once = false
    /// Seconds between scans.
    public var interval: Double = 2
    /// Stop after this many seconds without a new checkpoint (nil: run until interrupted).
    public var idleExit: Double?

    public init(folder: URL, once: Bool = false, interval: Double = 2, idleExit: Double? = nil) {
        self.folder = folder
        self.once = once
        self.interval = interval
        self.idleExit = idleExit
    }
}

/// What happened to one checkpoint of a watched folder.
public enum WatchEvent: Sendable {
    case evaluated(CheckpointEvaluation)
    case broken(path: String, reason: String)
}

extension EvaluationSession {
    /// Evaluates each checkpoint that appears in the folder (and those already there), once each, in step order,
    /// rewriting the reports after each. Returns how many were evaluated.
    @discardableResult
    public func watch(_ watch: WatchSettings, onEvent: (WatchEvent) -> Void) throws -> Int {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: watch.folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HarnessError.checkpointNotFound(path: watch.folder.path + " (not a folder)")
        }
        let watcher = CheckpointWatcher(directory: watch.folder, settleSeconds: watch.once ? 0 : min(watch.interval, 1))
        var lastActivity = Date()
        var evaluated = 0
        while true {
            var events = watcher.poll()
            if watch.once {
                // Without waiting for sizes to settle, one more scan sees the same files as stable.
                // Nothing is waited for after that scan: what still cannot be read is broken.
                events += watcher.poll(now: Date().addingTimeInterval(1), final: true)
            }
            for event in events {
                lastActivity = Date()
                switch event {
                case .ready(let spec):
                    let evaluation = try evaluate(spec)
                    evaluated += 1
                    onEvent(.evaluated(evaluation))
                case let .broken(path, reason):
                    recordBroken(path: path, reason: reason)
                    onEvent(.broken(path: path, reason: reason))
                }
                try writeReports()
            }
            if watch.once { break }
            if let idleExit = watch.idleExit, Date().timeIntervalSince(lastActivity) > idleExit { break }
            Thread.sleep(forTimeInterval: watch.interval)
        }
        return evaluated
    }
}
