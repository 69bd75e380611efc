import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe writes: every file tunecheck produces is written under a temporary name in the destination's
/// directory, flushed to disk, and renamed over the final name, so a reader (or a crash) sees either the complete
/// old file or the complete new one, never a torn one.
public enum AtomicWrite {
    /// Writes `data` to `url` atomically (temp file in the same directory + fsync + rename).
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { handle in try handle.write(contentsOf: data) }
    }

    /// Writes through `body` into a temporary file beside `url`, then renames it into place.
    public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw EngineError.writeFailed(path: url.path, reason: "cannot create a temporary file in \(directory.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try body(handle)
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            // A streamed body's own errors (bad input found while producing the data) keep their meaning.
            if let engineError = error as? EngineError { throw engineError }
            throw EngineError.writeFailed(path: url.path, reason: describe(error))
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw EngineError.writeFailed(path: url.path, reason: reason)
        }
        syncDirectory(directory)
    }

    /// Builds a folder beside `url` through `body`, then renames it into place. With `replacing`, an existing
    /// folder at `url` is swapped out only after the new one is complete.
    public static func writeDirectory(at url: URL, replacing: Bool, _ body: (URL) throws -> Void) throws {
        let fileManager = FileManager.default
        let parent = url.deletingLastPathComponent()
        if fileManager.fileExists(atPath: url.path) && !replacing {
            throw EngineError.writeFailed(path: url.path, reason: "already exists (use --force to replace it)")
        }
        let staging = parent.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))")
        do {
            try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
            try body(staging)
            // Flush every file the body wrote or copied, so the rename below publishes complete contents.
            syncTree(staging)
        } catch {
            try? fileManager.removeItem(at: staging)
            if let engineError = error as? EngineError { throw engineError }
            throw EngineError.writeFailed(path: url.path, reason: describe(error))
        }
        if fileManager.fileExists(atPath: url.path) {
            // Swap the complete new folder and the old one in one step (renameat2 RENAME_EXCHANGE), so that a crash
            // at any moment leaves the old or the new folder at `url`, never none; the old one then sits under the
            // dot-named staging name, which readers ignore, and is removed.
            if exchange(staging.path, url.path) {
                try? fileManager.removeItem(at: staging)
            } else {
                // Filesystems without RENAME_EXCHANGE: two renames, with a moment where `url` does not exist.
                let old = parent.appendingPathComponent(".\(url.lastPathComponent).old-\(UUID().uuidString.prefix(8))")
                guard rename(url.path, old.path) == 0 else {
                    try? fileManager.removeItem(at: staging)
                    throw EngineError.writeFailed(path: url.path, reason: String(cString: strerror(errno)))
                }
                guard rename(staging.path, url.path) == 0 else {
                    _ = rename(old.path, url.path)
                    try? fileManager.removeItem(at: staging)
                    throw EngineError.writeFailed(path: url.path, reason: String(cString: strerror(errno)))
                }
                try? fileManager.removeItem(at: old)
            }
        } else {
            guard rename(staging.path, url.path) == 0 else {
                try? fileManager.removeItem(at: staging)
                throw EngineError.writeFailed(path: url.path, reason: String(cString: strerror(errno)))
            }
        }
        syncDirectory(parent)
    }

    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    /// glibc's `renameat2`, which the Glibc module does not import (it is behind _GNU_SOURCE); nil before glibc 2.28.
    private static let renameat2: RenameAt2? = dlsym(nil, "renameat2").map { unsafeBitCast($0, to: RenameAt2.self) }

    /// Atomically exchanges two existing paths; false when the system or filesystem cannot.
    static func exchange(_ first: String, _ second: String) -> Bool {
        let renameExchange: UInt32 = 1 << 1 // RENAME_EXCHANGE, <linux/fs.h>
        guard let renameat2 else { return false }
        return renameat2(AT_FDCWD, first, AT_FDCWD, second, renameExchange) == 0
    }

    private static func syncTree(_ folder: URL) {
        let fileManager = FileManager.default
        for name in (try? fileManager.subpathsOfDirectory(atPath: folder.path)) ?? [] {
            let fd = open(folder.appendingPathComponent(name).path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            if fd >= 0 {
                fsync(fd)
                close(fd)
            }
        }
        syncDirectory(folder)
    }

    private static func syncDirectory(_ directory: URL) {
        let fd = open(directory.path, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    static func describe(_ error: Error) -> String {
        (error as? LocalizedError)?.errorDescription ?? error.localizedDescription
    }
}
