import Foundation
import Testing
import TunecheckJSON
import TunecheckTestSupport

/// SHA-256 on both compression paths (SHA-NI when this CPU has it, and the portable C loop): the FIPS 180-4 example
/// vectors, every length 0...300 (one to five blocks, every padding case) against hashlib, split update() calls,
/// and files read across the 4 MiB chunk boundary. Exact: a digest matches or it does not.
@Suite struct SHA256Tests {
    static let paths: [SHA256.Implementation] = [.fastest, .portable]

    static func hex(_ bytes: [UInt8], _ implementation: SHA256.Implementation) -> String {
        var hasher = SHA256(implementation: implementation)
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    /// The 64-bit LCG of scripts/fixtures/make_sha256_lengths.py: byte = state >> 56 after each step.
    struct LCG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
        mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next() >> 56) }
    }

    @Test(arguments: paths)
    func fipsVectors(_ implementation: SHA256.Implementation) {
        // FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf").
        #expect(Self.hex([], implementation) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex(Array("abc".utf8), implementation) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), implementation)
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let message896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        #expect(Self.hex(Array(message896.utf8), implementation) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(Self.hex([UInt8](repeating: 0x61, count: 1_000_000), implementation)
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func thisMachineUsesTheSHAExtensionsWhenItHasThem() throws {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
        #if arch(x86_64)
        if !cpuinfo.isEmpty { #expect(SHA256.usesSHAExtensions == flags.contains("sha_ni")) }
        #else
        #expect(!SHA256.usesSHAExtensions)
        #endif
    }

    @Test func everyLengthUpTo300MatchesHashlibOnBothPaths() {
        var generator = LCG(state: 2026)
        var fastest: [String] = [], portable: [String] = []
        for length in 0...300 {
            let message = (0..<length).map { _ in generator.byte() }
            fastest.append(Self.hex(message, .fastest))
            portable.append(Self.hex(message, .portable))
        }
        #expect(fastest == portable)
        #expect(fastest[300] == "790d75bd915ac3aee94539530496845f4c1117df8396374290bfebc0e3b6afd2")
        // hashlib's digests of all 301 messages, concatenated and hashed (make_sha256_lengths.py prints it).
        #expect(SHA256.hex(Array(fastest.joined().utf8)) == "1c74712466b3b81b1f77eacc2f99f901265f6c03093c54981eeb5d3e335be32d")
    }

    @Test(arguments: paths)
    func splitUpdatesGiveTheOneShotDigest(_ implementation: SHA256.Implementation) {
        var generator = LCG(state: 7)
        for _ in 0..<300 {
            let length = Int(generator.next() % 301)
            let message = (0..<length).map { _ in generator.byte() }
            // 0...4 cut points (repeats allowed, so some pieces are empty).
            let cuts = (0..<Int(generator.next() % 5)).map { _ in Int(generator.next() % UInt64(length + 1)) }.sorted()
            var hasher = SHA256(implementation: implementation)
            var start = 0
            for cut in cuts + [length] {
                hasher.update(Array(message[start..<cut]))
                start = cut
            }
            let split = hasher.finalizeHex()
            #expect(split == Self.hex(message, .portable), "length \(length), cuts \(cuts)")
            #expect(split == Self.hex(message, .fastest), "length \(length), cuts \(cuts)")
        }
    }

    @Test(arguments: paths)
    func aFileAcrossTheChunkBoundaryIsItsBytesDigest(_ implementation: SHA256.Implementation) throws {
        let folder = try TestPaths.temporaryDirectory("sha256")
        defer { try? FileManager.default.removeItem(at: folder) }
        var generator = LCG(state: 99)
        let bytes = (0..<((4 << 20) + 77)).map { _ in generator.byte() }
        let file = folder.appendingPathComponent("weights.bin")
        try Data(bytes).write(to: file)
        #expect(try SHA256.hex(ofFile: file, implementation: implementation) == Self.hex(bytes, .portable))
        #expect(try SHA256.hex(ofFile: file, implementation: implementation) == Self.hex(bytes, .fastest))
        #expect(throws: (any Error).self) { try SHA256.hex(ofFile: folder.appendingPathComponent("missing.bin")) }
    }
}
