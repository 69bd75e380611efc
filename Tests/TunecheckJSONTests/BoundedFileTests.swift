import Foundation
import Testing
import TunecheckJSON
import TunecheckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `BoundedFile` reads only regular files up to a limit and never blocks on what sits at the path.
@Suite struct BoundedFileTests {
    static func folder() throws -> URL { try TestPaths.temporaryDirectory("bounded-file") }

    /// The failure `body` throws (nil when it returns, or throws something else).
    func failure<T>(_ body: () throws -> T) -> BoundedFile.Failure? {
        do { _ = try body(); return nil } catch { return error as? BoundedFile.Failure }
    }

    @Test func readsARegularFileWithinTheLimit() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("config.json")
        try Data("{\"a\": 1}".utf8).write(to: url)
        #expect(try BoundedFile.read(url, limit: 8) == Data("{\"a\": 1}".utf8))
        #expect(try BoundedFile.readText(url, limit: 100) == "{\"a\": 1}")
        #expect(try BoundedFile.map(url, limit: 100) == Data("{\"a\": 1}".utf8))
        #expect(BoundedFile.isRegularFile(url) && !BoundedFile.isRegularFile(folder))
        let empty = folder.appendingPathComponent("empty")
        try Data().write(to: empty)
        #expect(try BoundedFile.read(empty, limit: 1).isEmpty && BoundedFile.map(empty, limit: 1).isEmpty)
    }

    @Test func refusesFilesOverTheLimit() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("big.json")
        try Data(repeating: 0x20, count: 9).write(to: url)
        let error = try #require(failure { try BoundedFile.read(url, limit: 8) })
        #expect(error.reason == "file is 9 bytes, more than the 8-byte limit for this kind of file" && !error.isMissing)
        #expect(failure { try BoundedFile.map(url, limit: 8) } == error)
    }

    @Test func missingFilesAndFoldersAreNamed() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = try #require(failure { try BoundedFile.read(folder.appendingPathComponent("nope.json"), limit: 10) })
        #expect(missing.isMissing && missing.reason == "no such file")
        let file = folder.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        let underFile = try #require(failure { try BoundedFile.read(file.appendingPathComponent("x.json"), limit: 10) })
        #expect(underFile.isMissing && underFile.reason.hasPrefix("no such file"))
        let directory = try #require(failure { try BoundedFile.read(folder, limit: 10) })
        #expect(!directory.isMissing && directory.reason == "is a directory, expected a file")
    }

    /// A named pipe with no writer would block `Data(contentsOf:)` forever; it is refused at once.
    @Test(.timeLimit(.minutes(1))) func refusesPipesAndDevicesWithoutBlocking() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipe = folder.appendingPathComponent("config.json")
        #expect(mkfifo(pipe.path, 0o600) == 0)
        #expect(failure { try BoundedFile.read(pipe, limit: 10) }?.reason == "is a named pipe, expected a regular file")
        #expect(!BoundedFile.isRegularFile(pipe))
        let device = try #require(failure { try BoundedFile.read(URL(fileURLWithPath: "/dev/zero"), limit: 10) })
        #expect(device.reason == "is not a regular file (a device or socket)")
    }

    @Test func readTextRejectsInvalidUTF8() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("bad.txt")
        try Data([0x61, 0xFF, 0x62]).write(to: url)
        #expect(failure { try BoundedFile.readText(url, limit: 10) }?.reason == "not valid UTF-8 text")
    }
}
