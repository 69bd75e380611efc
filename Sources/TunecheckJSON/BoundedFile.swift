import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads input files that other tools wrote (configs, indexes, tokenizers, evalsets, golden files) without trusting
/// what sits at the path: a named pipe would block `Data(contentsOf:)` forever and a character device (or a 50 GB
/// file named `config.json`) would be read until memory runs out. Only regular files up to a stated size are read,
/// opened non-blocking so that the type check runs before any read can wait.
public enum BoundedFile {
    /// Why a file was not read; `reason` is a short phrase for "<path>: cannot read: <reason>" messages.
    public struct Failure: Error, CustomStringConvertible, Sendable, Equatable {
        public let reason: String
        /// True when nothing exists at the path (callers that treat a missing optional file as absent check this).
        public let isMissing: Bool
        public var description: String { reason }
    }

    /// Size limits per kind of file: generous for real files, small enough that a wrong file is refused at once.
    public enum Limit {
        /// `config.json`, `generation_config.json`, adapter configs, suite and training configs.
        public static let config = 16 << 20
        /// `model.safetensors.index.json`, `tokenizer_config.json` (may hold long chat templates), golden files.
        public static let index = 64 << 20
        /// `tokenizer.json` (large vocabularies are ~35 MB).
        public static let tokenizer = 256 << 20
        /// Evalsets and other JSON Lines inputs.
        public static let jsonLines = 1 << 30
    }

    /// The whole file, read into memory; `limit` bytes at most.
    public static func read(_ url: URL, limit: Int) throws(Failure) -> Data {
        let fd = try openRegularFile(url, limit: limit)
        defer { close(fd.descriptor) }
        // Files under /proc and /sys report size 0 and are read to their end (still at most `limit` bytes).
        if fd.size == 0 { return try readToEnd(fd.descriptor, limit: limit) }
        var data = Data(count: fd.size)
        var filled = 0
        let failure: Failure? = data.withUnsafeMutableBytes { buffer in
            while filled < fd.size {
                let count = Glibc.read(fd.descriptor, buffer.baseAddress! + filled, fd.size - filled)
                if count < 0 {
                    if errno == EINTR { continue }
                    return Failure(reason: String(cString: strerror(errno)), isMissing: false)
                }
                if count == 0 { break } // shrank while being read: what was there is what we got
                filled += count
            }
            return nil
        }
        if let failure { throw failure }
        if filled < data.count { data.removeSubrange(filled...) }
        return data
    }

    private static func readToEnd(_ descriptor: Int32, limit: Int) throws(Failure) -> Data {
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(reason: String(cString: strerror(errno)), isMissing: false)
            }
            if count == 0 { return data }
            data.append(contentsOf: chunk[0..<count])
            guard data.count <= limit else {
                throw Failure(reason: "file is more than the \(limit)-byte limit for this kind of file", isMissing: false)
            }
        }
    }

    /// The file memory-mapped read-only (no copy; pages load on demand), for large line-oriented inputs.
    public static func map(_ url: URL, limit: Int) throws(Failure) -> Data {
        let fd = try openRegularFile(url, limit: limit)
        defer { close(fd.descriptor) }
        guard fd.size > 0 else { return Data() }
        guard let base = mmap(nil, fd.size, PROT_READ, MAP_PRIVATE, fd.descriptor, 0), base != MAP_FAILED else {
            throw Failure(reason: "mmap failed: \(String(cString: strerror(errno)))", isMissing: false)
        }
        let size = fd.size
        return Data(bytesNoCopy: base, count: size, deallocator: .custom { pointer, _ in munmap(pointer, size) })
    }

    /// UTF-8 text of the file.
    public static func readText(_ url: URL, limit: Int) throws(Failure) -> String {
        let data = try read(url, limit: limit)
        guard let text = String(data: data, encoding: .utf8) else {
            throw Failure(reason: "not valid UTF-8 text", isMissing: false)
        }
        return text
    }

    /// Whether `url` is (or links to) a regular file.
    public static func isRegularFile(_ url: URL) -> Bool {
        var status = stat()
        return stat(url.path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }

    /// Opens `url` for reading if it is a regular file no larger than `limit`.
    static func openRegularFile(_ url: URL, limit: Int) throws(Failure) -> (descriptor: Int32, size: Int) {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno
            switch code {
            case ENOENT: throw Failure(reason: "no such file", isMissing: true)
            case ENOTDIR: throw Failure(reason: "no such file (a path component is not a folder)", isMissing: true)
            case EISDIR: throw Failure(reason: "is a directory, expected a file", isMissing: false)
            default: throw Failure(reason: String(cString: strerror(code)), isMissing: false)
            }
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(reason: reason, isMissing: false)
        }
        switch status.st_mode & S_IFMT {
        case S_IFREG:
            break
        case S_IFDIR:
            close(fd)
            throw Failure(reason: "is a directory, expected a file", isMissing: false)
        case S_IFIFO:
            close(fd)
            throw Failure(reason: "is a named pipe, expected a regular file", isMissing: false)
        default:
            close(fd)
            throw Failure(reason: "is not a regular file (a device or socket)", isMissing: false)
        }
        let size = Int(status.st_size)
        guard size <= limit else {
            close(fd)
            throw Failure(reason: "file is \(size) bytes, more than the \(limit)-byte limit for this kind of file", isMissing: false)
        }
        return (fd, size)
    }
}
