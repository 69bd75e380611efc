import CFuzzDriver
import Foundation

/// Helpers shared by the fuzz targets: a private scratch folder (on tmpfs when there is one) and input splitting.
public enum Fuzz {
    public typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    /// Runs libFuzzer with the process's arguments. SwiftPM links executables with `main` renamed to
    /// `<target>_main` (so tests can import them); each target defines that symbol as a call to this.
    public static func driver(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ body: TestOneInput) -> CInt {
        var count = argc
        var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        return LLVMFuzzerRunDriver(&count, &arguments, body)
    }

    /// A folder only this process uses, created once. Targets write the fuzzed bytes into files here because
    /// the readers under test take paths (they mmap, stat and open, as on real model folders).
    public static let scratch: URL = {
        let root = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let url = URL(fileURLWithPath: root).appendingPathComponent("tunecheck-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: "/dev/shm/tunecheck-fuzz-\(getpid())") }
        return url
    }()

    /// The repository root (`TUNECHECK_ROOT`, else the folder above `fuzz/` this file was compiled from).
    public static let repositoryRoot: URL = {
        if let root = ProcessInfo.processInfo.environment["TUNECHECK_ROOT"] { return URL(fileURLWithPath: root) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    /// A sub-folder of the scratch folder.
    public static func folder(_ name: String) -> URL {
        let url = scratch.appendingPathComponent(name)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes bytes to a file (not atomically: the fuzzer is the only reader and writer).
    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, to url: URL) -> URL {
        _ = FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        return url
    }

    @discardableResult
    public static func write(_ data: Data, to url: URL) -> URL {
        _ = FileManager.default.createFile(atPath: url.path, contents: data)
        return url
    }

    /// Splits the input at the first NUL byte: (before, after). Corpus files for multi-part targets use it.
    public static func splitAtNUL(_ bytes: UnsafeRawBufferPointer) -> (Data, Data) {
        guard let index = bytes.firstIndex(of: 0) else { return (Data(bytes), Data()) }
        return (Data(bytes[..<index]), Data(bytes[(index + 1)...]))
    }

    /// Links (or copies) a file from the repository into a scratch folder, once.
    public static func link(_ repositoryPath: String, into folder: URL, as name: String? = nil) {
        let source = repositoryRoot.appendingPathComponent(repositoryPath)
        let target = folder.appendingPathComponent(name ?? source.lastPathComponent)
        guard !FileManager.default.fileExists(atPath: target.path) else { return }
        if (try? FileManager.default.createSymbolicLink(at: target, withDestinationURL: source)) == nil {
            try? FileManager.default.copyItem(at: source, to: target)
        }
    }

    /// Lets an error escape only as a thrown value: every target catches everything, since the property under
    /// test is "no crash, no hang, no sanitizer report", not "no error".
    @inline(__always)
    public static func run(_ body: () throws -> Void) {
        do { try body() } catch { _ = (error as? LocalizedError)?.errorDescription ?? "\(error)" }
    }
}
