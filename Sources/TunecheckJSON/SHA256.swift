import CKernels
import Foundation

/// SHA-256 (FIPS 180-4), streaming, for content keys and checksums (the base-result cache keys model files by their
/// bytes, never by modification time; it remembers each file's digest by the file's identity, so gigabytes of
/// weights are hashed once per machine). Whole 64-byte blocks go to CKernels' `tc_sha256_blocks`: the x86 SHA
/// extensions (SHA-NI) when the CPU has them, else a portable C loop; padding and buffering stay here.
///
/// Measured on a 1 GiB file in the page cache, release builds, 2 cores shared with other builds, best of 3:
/// - `tunecheck bench sha256` (load 5.1): SHA-NI 902 MB/s, portable C loop 140 MB/s; the former plain-Swift
///   rounds (same file, `swiftc -O -wmo`, run right after) 139 MB/s.
/// - earlier, load 6–10: former Swift 112 MB/s; SHA-NI 885 MB/s, portable C 134 MB/s.
/// So a 14.5 GB 7B base costs ~16 s of hashing once instead of ~105–130 s (plus reading it from disk on a cold page
/// cache).
public struct SHA256 {
    /// Which compression path to use: `.fastest` picks SHA-NI when available; `.portable` forces the C loop
    /// (tests compare the two).
    public enum Implementation: Sendable { case fastest, portable }

    /// True when `.fastest` runs on the SHA extensions on this CPU.
    public static var usesSHAExtensions: Bool { tc_uses_sha_ni() != 0 }

    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var length: UInt64 = 0
    private let implementation: Implementation

    public init(implementation: Implementation = .fastest) { self.implementation = implementation }

    /// The hex digest of `bytes`.
    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(Array(bytes))
        return hasher.finalizeHex()
    }

    /// The hex digest of a file's bytes, read in 4 MiB chunks into one reused buffer (the file is never held whole).
    public static func hex(ofFile url: URL, implementation: Implementation = .fastest) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 22, alignment: 64)
        defer { chunk.deallocate() }
        var hasher = SHA256(implementation: implementation)
        while true {
            let count = read(handle.fileDescriptor, chunk.baseAddress, chunk.count)
            if count == 0 { break }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                let reason = "reading \(url.path): \(String(cString: strerror(code)))"
                throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: url.path, NSLocalizedDescriptionKey: reason])
            }
            hasher.update(UnsafeRawBufferPointer(rebasing: chunk[0..<count]))
        }
        return hasher.finalizeHex()
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        length &+= UInt64(bytes.count)
        var offset = 0
        if buffered > 0 {
            let take = min(64 - buffered, bytes.count)
            for index in 0..<take { buffer[buffered + index] = bytes[index] }
            buffered += take
            offset = take
            if buffered == 64 {
                buffer.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
                buffered = 0
            }
        }
        let blocks = (bytes.count - offset) / 64
        if blocks > 0 {
            compress(base + offset, blocks: blocks)
            offset += blocks * 64
        }
        for index in offset..<bytes.count { buffer[buffered + index - offset] = bytes[index] }
        buffered += bytes.count - offset
    }

    public mutating func finalizeHex() -> String {
        let bitLength = length &* 8
        var padding: [UInt8] = [0x80]
        let total = buffered + 1
        padding += [UInt8](repeating: 0, count: (total <= 56 ? 56 - total : 120 - total))
        for shift in stride(from: 56, through: 0, by: -8) { padding.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        let savedLength = length
        update(padding)
        length = savedLength
        let words = [state.0, state.1, state.2, state.3, state.4, state.5, state.6, state.7]
        return words.map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }.joined()
    }

    /// `blocks` whole 64-byte blocks at `data` into the state.
    private mutating func compress(_ data: UnsafeRawPointer, blocks: Int) {
        let implementation = implementation
        withUnsafeMutableBytes(of: &state) { raw in
            let words = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
            let bytes = data.assumingMemoryBound(to: UInt8.self)
            switch implementation {
            case .fastest: tc_sha256_blocks(words, bytes, blocks)
            case .portable: tc_sha256_blocks_portable(words, bytes, blocks)
            }
        }
    }
}
