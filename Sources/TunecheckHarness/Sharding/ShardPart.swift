import CZlib
import Foundation
import TunecheckEngine
import TunecheckJSON

/// One shard's output (`tunecheck-part-I-of-N.json` in its report folder): one header line, then the payload.
///
///     {"format": "tunecheck-shard-part", "format_version": 1, "tunecheck_version", "shard", "shards",
///      "settings_hash", "bytes", "sha256"}
///     {"shard", "shards", "tunecheck_version", "settings_hash", "settings": {…}, "items": {"prompts": [ids], …},
///      "subjects": [{"name", "kind", "step", "record": {"items", "values", "suites"}}]}
///
/// `bytes` and `sha256` are the payload's length and SHA-256, so a truncated or corrupted part is refused; the
/// payload repeats the header's identity fields, so a corrupted header is refused too. `settings_hash` is made from
/// the inputs' contents and their paths relative to the suite file (`SettingsDigest`): jobs that check out into
/// different folders agree, jobs with different inputs or settings do not. Written atomically.
public struct ShardPart {
    public static let format = "tunecheck-shard-part"
    public static let formatVersion = 1

    public var shard: ShardSpec
    public var tunecheckVersion: String
    public var settingsHash: String
    var payload: JSONValue
    /// Where it was read from (merge's messages name it).
    public var url: URL?

    init(shard: ShardSpec, tunecheckVersion: String = TunecheckVersion.current, settingsHash: String, payload: JSONValue) {
        self.shard = shard
        self.tunecheckVersion = tunecheckVersion
        self.settingsHash = settingsHash
        self.payload = payload
    }

    public static func fileName(_ shard: ShardSpec) -> String { "tunecheck-part-\(shard.index)-of-\(shard.count).json" }

    var path: String { url?.path ?? Self.fileName(shard) }

    // MARK: - Writing and reading

    /// Writes the part into `directory` (created if needed), atomically; returns its file.
    @discardableResult
    public func write(into directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(Self.fileName(shard))
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw HarnessError.writeFailed(path: directory.path, reason: error.localizedDescription)
        }
        var header = JSONObject()
        header.set("format", .string(Self.format))
        header.set("format_version", .from(Self.formatVersion))
        header.set("tunecheck_version", .string(tunecheckVersion))
        header.set("shard", .from(shard.index))
        header.set("shards", .from(shard.count))
        header.set("settings_hash", .string(settingsHash))
        do {
            try AtomicWrite.write(ChecksummedJSON.encode(header: header, payload: payload), to: url)
        } catch {
            throw HarnessError.writeFailed(path: url.path, reason: (error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
        return url
    }

    /// Reads and checks a part file: its header, the payload's length and checksum, and that the two agree.
    public static func read(_ url: URL) throws -> ShardPart {
        let data: Data
        do { data = try BoundedFile.read(url, limit: 1 << 32) } catch {
            throw ShardError.unreadable(path: url.path, reason: error.reason)
        }
        func corrupt(_ reason: String) -> ShardError { .corrupt(path: url.path, reason: reason) }
        guard let (header, body) = ChecksummedJSON.split([UInt8](data)) else {
            throw corrupt("no header line (empty, truncated, or another kind of file)")
        }
        func field(_ key: String) -> String { header[key].map { JSONWriter.string($0) } ?? "missing" }
        guard header["format"]?.string == format else { throw corrupt("not a tunecheck part file (format \(field("format")))") }
        guard let version = header["format_version"]?.int, version == formatVersion else {
            throw corrupt("part format version \(field("format_version")), this tunecheck reads \(formatVersion)")
        }
        switch ChecksummedJSON.problem(header: header, body: body) {
        case nil: break
        case .noChecksum?: throw corrupt("the header has no length or checksum")
        case let .truncated(actual, expected)?: throw corrupt("truncated: \(actual) payload bytes, the header says \(expected)")
        case .checksumMismatch?: throw corrupt("checksum mismatch (the file was changed or damaged)")
        }
        guard let payload = try? JSONParser.parse(body), let object = payload.object else { throw corrupt("the payload is not JSON") }
        guard let index = header["shard"]?.int, let count = header["shards"]?.int, let shard = try? ShardSpec(index: index, count: count),
              let tunecheckVersion = header["tunecheck_version"]?.string, let settingsHash = header["settings_hash"]?.string,
              object["shard"]?.int == index, object["shards"]?.int == count, object["tunecheck_version"]?.string == tunecheckVersion,
              object["settings_hash"]?.string == settingsHash else {
            throw corrupt("the header and the payload disagree on the shard, version or settings")
        }
        var part = ShardPart(shard: shard, tunecheckVersion: tunecheckVersion, settingsHash: settingsHash, payload: payload)
        part.url = url
        return part
    }

    /// The part files named by `arguments`: files, folders (the `tunecheck-part-*.json` in them and their
    /// subfolders), or glob patterns.
    public static func files(in arguments: [String]) throws -> [URL] {
        var urls: [URL] = []
        for argument in arguments {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) {
                if isDirectory.boolValue {
                    // Also in subfolders (an artifact download puts each job's folder under one).
                    let folder = URL(fileURLWithPath: argument)
                    let found = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
                    urls += found.filter { $0.lastPathComponent.hasPrefix("tunecheck-part-") && $0.pathExtension == "json" }
                        .sorted { $0.path < $1.path }
                } else {
                    urls.append(URL(fileURLWithPath: argument))
                }
            } else if argument.contains(where: { "*?[".contains($0) }) {
                urls += try files(in: CheckpointSpec.expandGlob(argument).sorted())
            } else {
                throw ShardError.unreadable(path: argument, reason: "no such file or folder")
            }
        }
        guard !urls.isEmpty else { throw ShardError.noParts(arguments: arguments) }
        return urls
    }

    /// Checks that `parts` are exactly shards 1…N of one evaluation: one split, one tunecheck version, one
    /// settings hash, each shard once.
    public static func checkComplete(_ parts: [ShardPart]) throws {
        guard let first = parts.first else { throw ShardError.noParts(arguments: []) }
        if parts.contains(where: { $0.shard.count != first.shard.count }) {
            throw ShardError.mixedShardCounts(parts.map { ($0.path, $0.shard.count) })
        }
        if parts.contains(where: { $0.tunecheckVersion != first.tunecheckVersion }) {
            throw ShardError.mixedVersions(parts.map { ($0.path, $0.tunecheckVersion) })
        }
        if parts.contains(where: { $0.settingsHash != first.settingsHash }) {
            throw ShardError.mixedSettings(parts.map { ($0.path, $0.settingsHash) })
        }
        let byIndex = Dictionary(grouping: parts, by: \.shard.index)
        if let (index, group) = byIndex.sorted(by: { $0.key < $1.key }).first(where: { $0.value.count > 1 }) {
            throw ShardError.duplicateShard(index: index, paths: group.map(\.path))
        }
        let missing = (1...first.shard.count).filter { byIndex[$0] == nil }
        if !missing.isEmpty {
            throw ShardError.missingShards(indices: missing, count: first.shard.count, present: parts.map(\.path))
        }
    }
}

/// The settings hash of a sharded evaluation: SHA-256 over the settings that change results and the inputs'
/// contents, with paths relative to the suite file's folder (or the working folder without a suite file), so CI
/// jobs that check out into different folders agree. Each file counts by its size and CRC-32: whole up to 64 MiB;
/// larger ones (weights, optimizer states) by their first and last 4 MiB, which tells apart any two different
/// checkpoints in practice without reading gigabytes in every job. An adapter given as a numbered file counts with
/// the `adapter_config.json` beside it.
enum SettingsDigest {
    static func hash(_ settings: SessionSettings, subjects: [String], anchor: URL) throws -> String {
        var lines: [String] = ["name \(settings.name)", "golden \(settings.goldenSuiteName) \(relative(settings.goldenDirectory.path, to: anchor))",
                               "suites \(settings.suites.map { $0.map(\.rawValue).joined(separator: ",") } ?? "(all the inputs allow)")"]
        lines.append("generation \(JSONWriter.string(try JSONValueEncoder().encode(settings.generation)))")
        lines.append("thresholds \(JSONWriter.string(try JSONValueEncoder().encode(settings.thresholds)))")
        if let base = settings.base { lines.append("base \(relative(base.path, to: anchor)) \(try digest(ofPath: base))") }
        for (key, path) in [("prompts", settings.evalsets.prompts), ("pairs", settings.evalsets.pairs), ("texts", settings.evalsets.texts),
                            ("answers", settings.evalsets.answers), ("choices", settings.evalsets.choices)] {
            guard let path else { continue }
            lines.append("evalset \(key) \(relative(path, to: anchor)) \(try digest(ofPath: path.asFileURL))")
        }
        for spec in settings.checkpoints {
            let url: URL?
            switch spec.source {
            case .base: url = nil
            case .adapter(let location), .modelFolder(let location): url = location
            }
            var line = "checkpoint \(spec.name) \(spec.step.map(String.init) ?? "-") "
                + (try url.map { "\(relative($0.path, to: anchor)) \(try digest(ofPath: $0))" } ?? "base")
            if case .adapter(let file) = spec.source, file.pathExtension == "safetensors" {
                let config = file.deletingLastPathComponent().appendingPathComponent("adapter_config.json")
                if FileManager.default.fileExists(atPath: config.path) { line += " config \(try digest(ofFile: config))" }
            }
            lines.append(line)
        }
        for fused in settings.fused {
            lines.append("fused \(relative(fused.path, to: anchor)) \(try digest(ofPath: fused.path.asFileURL))"
                         + (try fused.adapter.map { " adapter \(relative($0, to: anchor)) \(try digest(ofPath: $0.asFileURL))" } ?? ""))
        }
        lines.append("subjects \(subjects.joined(separator: ","))")
        return SHA256.hex(Array(lines.joined(separator: "\n").utf8))
    }

    /// `path` relative to `anchor` (with `..` where it lies outside).
    static func relative(_ path: String, to anchor: URL) -> String {
        let target = URL(fileURLWithPath: path).standardizedFileURL.pathComponents
        let base = anchor.standardizedFileURL.pathComponents
        var common = 0
        while common < min(target.count, base.count) && target[common] == base[common] { common += 1 }
        let parts = Array(repeating: "..", count: base.count - common) + target[common...]
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// A file's content digest, or a folder's (its regular, non-hidden files by name and digest, one level).
    static func digest(ofPath url: URL) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw HarnessError.checkpointNotFound(path: url.path)
        }
        guard isDirectory.boolValue else { return try digest(ofFile: url) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        var lines: [String] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let file = url.appendingPathComponent(name)
            var nested: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file.path, isDirectory: &nested), !nested.boolValue else { continue }
            lines.append("\(name) \(try digest(ofFile: file))")
        }
        return SHA256.hex(Array(lines.joined(separator: "\n").utf8))
    }

    static let wholeFileLimit = 64 << 20
    static let sampleBytes = 4 << 20

    /// A file's fingerprint: its size and the CRC-32 (zlib) of its bytes, or of its first and last 4 MiB above
    /// 64 MiB. CRC-32 rather than SHA-256: every shard fingerprints every input, and CRC-32 runs at gigabytes per
    /// second where SHA-256 here runs at tens to hundreds of megabytes (the inputs are compared, not authenticated;
    /// the part files themselves carry a SHA-256).
    static func digest(ofFile url: URL) throws -> String {
        let size = ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? 0
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw HarnessError.invalidCheckpoint(path: url.path, reason: "cannot be read")
        }
        defer { try? handle.close() }
        var crc: UInt = 0
        func add(_ data: Data) {
            data.withUnsafeBytes { bytes in
                guard let base = bytes.bindMemory(to: UInt8.self).baseAddress else { return }
                crc = crc32_z(crc, base, bytes.count)
            }
        }
        if size <= wholeFileLimit {
            while let chunk = try handle.read(upToCount: sampleBytes), !chunk.isEmpty { add(chunk) }
            return "\(size):\(String(crc, radix: 16))"
        }
        add(try handle.read(upToCount: sampleBytes) ?? Data())
        try handle.seek(toOffset: UInt64(size - sampleBytes))
        add(try handle.read(upToCount: sampleBytes) ?? Data())
        return "\(size):sampled:\(String(crc, radix: 16))"
    }
}
