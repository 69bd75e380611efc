import Foundation
import TunecheckEngine

/// Finds checkpoints that a trainer writes into a folder: mlx_lm's and tunecheck's numbered adapters
/// (`NNNNNNN_adapters.safetensors`, with `adapter_config.json` beside them), tunecheck's full fine-tuning folders
/// (`NNNNNNN_model/`) and Hugging Face Trainer `checkpoint-N/` folders (PEFT adapters or full models); the names
/// are `CheckpointName`'s. Each is reported once, in step order, and only when complete: a file
/// whose safetensors header does not yet describe its full length, or whose size or modification time is still
/// changing, is pending and retried later, never reported as corrupt while it may still be written.
public final class CheckpointWatcher {
    public enum Event: Sendable, Equatable {
        case ready(CheckpointSpec)
        /// A checkpoint that stayed unreadable for longer than `settleSeconds · 10` after its last change.
        case broken(path: String, reason: String)
    }

    public let directory: URL
    /// A file must be unchanged for this long before it is read.
    public let settleSeconds: TimeInterval
    private var reported: Set<String> = []
    private var lastSeen: [String: (size: Int, modified: Date, firstSeen: Date)] = [:]

    public init(directory: URL, settleSeconds: TimeInterval = 1) {
        self.directory = directory
        self.settleSeconds = settleSeconds
    }

    /// Marks paths as already handled (e.g. from a previous run's state).
    public func markReported(_ paths: [String]) { reported.formUnion(paths) }

    /// One scan: the checkpoints that became ready since the last scan, in step order. A `final` scan (the last
    /// one of `watch --once`) waits for nothing: a checkpoint that cannot be read yet is reported as broken
    /// instead of pending, so it neither disappears silently nor holds back the checkpoints after it.
    public func poll(now: Date = Date(), final: Bool = false) -> [Event] {
        let candidates = Self.candidates(in: directory)
        var events: [Event] = []
        var blocked = false
        for candidate in candidates where !reported.contains(candidate.path.path) {
            // Every candidate's size and time are recorded on every scan, so those behind a pending one start
            // settling now rather than only once it is done.
            let state = readiness(of: candidate.path, files: candidate.files, now: now, final: final)
            if blocked { continue }
            switch state {
            case .pending:
                // Later checkpoints wait for earlier ones, so they are evaluated in step order.
                blocked = true
            case .ready:
                do {
                    var spec = try CheckpointSpec.from(path: candidate.path.path)
                    spec.step = candidate.step
                    reported.insert(candidate.path.path)
                    events.append(.ready(spec))
                } catch {
                    reported.insert(candidate.path.path)
                    events.append(.broken(path: candidate.path.path, reason: (error as? LocalizedError)?.errorDescription ?? "\(error)"))
                }
            case .broken(let reason):
                reported.insert(candidate.path.path)
                events.append(.broken(path: candidate.path.path, reason: reason))
            }
        }
        return events
    }

    /// A numbered checkpoint found in a folder: its step, path, and the files whose completeness decides whether
    /// it can be read (the safetensors and JSON files of a folder; a numbered adapter and `adapter_config.json`).
    public struct Candidate: Sendable {
        public var step: Int
        public var path: URL
        public var files: [URL]
    }

    /// The numbered checkpoints in `directory` (dot-named leftovers of atomic writes ignored), in step order.
    public static func candidates(in directory: URL) -> [Candidate] {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: directory.path) else { return [] }
        var candidates: [Candidate] = []
        for name in names where !name.hasPrefix(".") {
            guard let checkpointName = CheckpointName(fileName: name), let step = checkpointName.step else { continue }
            let url = directory.appendingPathComponent(name)
            if checkpointName.isFolder {
                var isDirectory: ObjCBool = false
                guard fileManager.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
                let contents = (try? fileManager.contentsOfDirectory(atPath: url.path)) ?? []
                let files = contents.filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".json") }.map { url.appendingPathComponent($0) }
                candidates.append(Candidate(step: step, path: url, files: files))
            } else {
                candidates.append(Candidate(step: step, path: url, files: [url, directory.appendingPathComponent("adapter_config.json")]))
            }
        }
        return candidates.sorted { $0.step < $1.step }
    }

    /// Why a checkpoint cannot be read as it is now (nil when it can): no files, a file missing, or a safetensors
    /// file whose header does not describe its full length (still being written, or cut short). The content
    /// half of `readiness`, for readers that look once (`tunecheck runs`) instead of waiting for files to settle.
    public static func incompleteness(of candidate: Candidate) -> String? {
        guard !candidate.files.isEmpty else { return "\(candidate.path.path): no weights or config files in it" }
        for file in candidate.files where !FileManager.default.fileExists(atPath: file.path) {
            return "\(file.path): missing"
        }
        // A trainer that writes into the folder itself (the Hugging Face Trainer) may have written only configs so far.
        guard candidate.files.contains(where: { $0.pathExtension == "safetensors" }) else {
            return "\(candidate.path.path): no .safetensors weights in it yet"
        }
        return safetensorsProblem(candidate.files)
    }

    /// The first safetensors file among `files` that cannot be opened (its header does not describe its whole
    /// length, or it is malformed), with why; nil when all can.
    static func safetensorsProblem(_ files: [URL]) -> String? {
        for file in files where file.pathExtension == "safetensors" {
            do {
                _ = try SafeTensorsFile(url: file)
            } catch {
                return (error as? LocalizedError)?.errorDescription ?? "\(error)"
            }
        }
        return nil
    }

    enum Readiness { case pending, ready, broken(String) }

    func readiness(of checkpoint: URL, files: [URL], now: Date, final: Bool = false) -> Readiness {
        let fileManager = FileManager.default
        var newestChange = Date.distantPast
        var stable = true
        var safetensors: [URL] = []
        guard !files.isEmpty else { return final ? .broken("\(checkpoint.path): no weights or config files in it") : .pending }
        for file in files {
            guard let attributes = try? fileManager.attributesOfItem(atPath: file.path),
                  let size = (attributes[.size] as? NSNumber)?.intValue, let modified = attributes[.modificationDate] as? Date else {
                return final ? .broken("\(file.path): missing or unreadable") : .pending
            }
            let key = file.path
            if let previous = lastSeen[key], previous.size == size, previous.modified == modified {
                if now.timeIntervalSince(previous.firstSeen) < settleSeconds { stable = false }
            } else {
                lastSeen[key] = (size, modified, now)
                stable = false
            }
            newestChange = max(newestChange, modified)
            if file.pathExtension == "safetensors" { safetensors.append(file) }
        }
        guard stable else { return .pending }
        if let problem = Self.safetensorsProblem(safetensors) {
            // Maybe still being written by a writer that does not write atomically: wait, and only call it
            // broken when it has not changed for a long time.
            if final || now.timeIntervalSince(newestChange) > max(settleSeconds * 10, 30) { return .broken(problem) }
            return .pending
        }
        return .ready
    }
}
