import Foundation
import TunecheckEngine
import TunecheckJSON

/// The base model's side of an evaluation (its log-probs of the pairs and texts, its greedy answers), kept between
/// runs and between CI jobs that restore the folder, so a later run does not recompute it.
///
/// An entry's key is a SHA-256 over the content of everything that determines it: the model's weight, config and
/// tokenizer files (by name, size and SHA-256), the evalset file's bytes, the generation settings and chat template
/// mode (answers), and tunecheck's version. Modification times are not part of any key, so a fresh clone or a
/// restored download hits; a file's digest is remembered by its identity (path, size, modification time, inode) in
/// `file-digests.json`, so a warm run does not hash gigabytes again. Token distributions for KL are not stored (0.5 MB
/// per token at a 128k vocabulary); they are recomputed.
///
/// An entry file is one header line (`{"format", "kind", "key", "bytes", "sha256"}`) and then the payload's JSON;
/// a payload whose length or checksum does not match, or an entry for another key, is recomputed with a notice,
/// never trusted. Entries are written atomically (temp file + rename), so concurrent jobs writing the same entry
/// each leave a complete one.
public final class BaseResultCache {
    public static let format = 1

    public let directory: URL
    /// Called with a one-line notice (a corrupt entry recomputed).
    var onNotice: ((String) -> Void)?
    /// What this run found: entry kind → hit or not.
    public private(set) var outcomes: [(kind: String, hit: Bool)] = []
    private var fileDigests: [String: String] = [:]
    private var digestsChanged = false

    public init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw HarnessError.writeFailed(path: directory.path, reason: "cannot create the cache folder: \(error.localizedDescription)")
        }
        if let data = try? Data(contentsOf: digestsURL), let object = try? JSONParser.parse([UInt8](data)).object {
            for (key, value) in zip(object.keys, object.values) {
                if let digest = value.string { fileDigests[key] = digest }
            }
        }
    }

    private var digestsURL: URL { directory.appendingPathComponent("file-digests.json") }

    /// One line for the terminal: what this run read and computed.
    public var summary: String? {
        guard !outcomes.isEmpty else { return nil }
        let read = outcomes.filter(\.hit).map(\.kind), computed = outcomes.filter { !$0.hit }.map(\.kind)
        return "cache: base results read: \(read.isEmpty ? "none" : read.joined(separator: ", ")); computed and stored: "
            + "\(computed.isEmpty ? "none" : computed.joined(separator: ", ")) (\(directory.path))"
    }

    // MARK: - Keys

    /// SHA-256 of a file's bytes, remembered by the file's identity. A symbolic link (Hugging Face cache folders are
    /// links into `blobs/`) is identified by the file it points to: the link's own size and times say nothing of the
    /// weights, and a changed target behind an unchanged link must miss.
    func digest(ofFile url: URL) throws -> String {
        let url = url.resolvingSymlinksInPath()
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let inode = (attributes[.systemFileNumber] as? NSNumber)?.intValue ?? 0
        let identity = "\(url.standardizedFileURL.path)|\(size)|\(modified)|\(inode)"
        if let known = fileDigests[identity] { return known }
        let digest = try SHA256.hex(ofFile: url)
        fileDigests[identity] = digest
        digestsChanged = true
        return digest
    }

    /// The content of a model folder: every safetensors file, the shard index, config, generation config and
    /// tokenizer files, each as name, size and digest (sorted by name).
    func modelDigest(_ folder: URL) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        let relevant = names.filter { name in
            !name.hasPrefix(".") && (name.hasSuffix(".safetensors") || name.hasSuffix(".json") || name.hasSuffix(".jinja")
                                     || name.hasSuffix(".model") || name == "merges.txt" || name == "vocab.txt")
        }
        var lines: [String] = []
        for name in relevant {
            let url = folder.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            lines.append("\(name) \(try digest(ofFile: url))")
        }
        return SHA256.hex(Array(lines.joined(separator: "\n").utf8))
    }

    /// The key of an entry: its kind, tunecheck's version and the given parts, hashed.
    func key(kind: String, parts: [String]) -> String {
        SHA256.hex(Array(([kind, "tunecheck \(TunecheckVersion.current)", "format \(Self.format)"] + parts).joined(separator: "\n").utf8))
    }

    /// Writes the remembered file digests (atomically), when new ones were computed.
    func saveDigests() {
        guard digestsChanged else { return }
        var object = JSONObject()
        for key in fileDigests.keys.sorted() { object.set(key, .string(fileDigests[key]!)) }
        try? AtomicWrite.write(JSONWriter.data(.object(object)), to: digestsURL)
        digestsChanged = false
    }

    // MARK: - Entries

    /// The stored value for (`kind`, `key`), or `compute()`'s, which is then stored.
    func value<T>(kind: String, key: String, decode: (JSONValue) -> T?, encode: (T) -> JSONValue, compute: () throws -> T) throws -> T {
        if let value = lookup(kind: kind, key: key, decode: decode) { return value }
        let value = try compute()
        store(kind: kind, key: key, payload: encode(value))
        return value
    }

    private func url(kind: String, key: String) -> URL {
        directory.appendingPathComponent("base-\(kind)-\(key.prefix(32)).json")
    }

    /// The stored value for (`kind`, `key`); nil on a miss, or (with a notice) for an entry that is corrupt,
    /// truncated, foreign or does not decode.
    func lookup<T>(kind: String, key: String, decode: (JSONValue) -> T?) -> T? {
        let url = url(kind: kind, key: key)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        switch read(url, kind: kind, key: key) {
        case .success(let payload):
            if let value = decode(payload) {
                outcomes.append((kind, true))
                // A restored cache on a fresh clone hits every entry but had to hash the files for the keys:
                // remember those digests too, or every later run hashes the weights again.
                saveDigests()
                return value
            }
            onNotice?("cache: \(url.lastPathComponent) does not hold valid \(kind) results; recomputing")
        case .failure(let reason):
            onNotice?("cache: \(url.lastPathComponent) \(reason); recomputing")
        }
        return nil
    }

    /// Stores a computed value (atomically); a folder that cannot be written gives a notice, not an error.
    func store(kind: String, key: String, payload value: JSONValue) {
        let url = url(kind: kind, key: key)
        outcomes.append((kind, false))
        var header = JSONObject()
        header.set("format", .from(Self.format))
        header.set("kind", .string(kind))
        header.set("key", .string(key))
        do {
            try AtomicWrite.write(ChecksummedJSON.encode(header: header, payload: value), to: url)
        } catch {
            onNotice?("cache: cannot write \(url.path) (\((error as? LocalizedError)?.errorDescription ?? "\(error)")); continuing without it")
        }
        saveDigests()
    }

    private enum ReadError: Error { case problem(String) }

    private func read(_ url: URL, kind: String, key: String) -> Result<JSONValue, ReadError> {
        guard let data = try? Data(contentsOf: url) else { return .failure(.problem("cannot be read")) }
        guard let (header, payload) = ChecksummedJSON.split([UInt8](data)) else {
            return .failure(.problem("has no valid header (corrupt or truncated)"))
        }
        guard header["format"]?.int == Self.format, header["kind"]?.string == kind, header["key"]?.string == key else {
            return .failure(.problem("belongs to another version, kind or key"))
        }
        guard ChecksummedJSON.problem(header: header, body: payload) == nil else {
            return .failure(.problem("is corrupt or truncated (checksum mismatch)"))
        }
        guard let value = try? JSONParser.parse(payload) else { return .failure(.problem("holds invalid JSON")) }
        return .success(value)
    }
}

// MARK: - What is stored

extension BaseResultCache {
    static func encode(_ scores: [PairScore]) -> JSONValue {
        .array(scores.map { score in
            var object = JSONObject()
            object.set("id", .string(score.id))
            object.set("chosen", .from(score.chosen.tokenLogprobs))
            object.set("rejected", .from(score.rejected.tokenLogprobs))
            return .object(object)
        })
    }

    static func decodePairs(_ value: JSONValue, expecting ids: [String]) -> [PairScore]? {
        guard let items = value.array, items.count == ids.count else { return nil }
        var scores: [PairScore] = []
        for (item, id) in zip(items, ids) {
            guard let object = item.object, object["id"]?.string == id, let chosen = doubles(object["chosen"]),
                  let rejected = doubles(object["rejected"]) else { return nil }
            scores.append(PairScore(id: id, chosen: SpanScore(tokenLogprobs: chosen), rejected: SpanScore(tokenLogprobs: rejected)))
        }
        return scores
    }

    static func encode(_ scores: [TextScore]) -> JSONValue {
        .array(scores.map { score in
            var object = JSONObject()
            object.set("id", .string(score.id))
            object.set("ids", .from(score.ids))
            object.set("logprobs", .from(score.logprobs))
            return .object(object)
        })
    }

    static func decodeTexts(_ value: JSONValue, expecting ids: [String]) -> [TextScore]? {
        guard let items = value.array, items.count == ids.count else { return nil }
        var scores: [TextScore] = []
        for (item, id) in zip(items, ids) {
            guard let object = item.object, object["id"]?.string == id, let tokens = integers(object["ids"]),
                  let logprobs = doubles(object["logprobs"]), logprobs.count == tokens.count - 1 else { return nil }
            scores.append(TextScore(id: id, ids: tokens, logprobs: logprobs))
        }
        return scores
    }

    static func encode(_ outputs: [GoldenOutput]) -> JSONValue {
        .array(outputs.map { output in
            var object = JSONObject()
            object.set("id", .string(output.id))
            object.set("prompt", .string(output.prompt))
            object.set("prompt_ids", output.promptIds.map { .from($0) } ?? .null)
            object.set("ids", output.ids.map { .from($0) } ?? .null)
            object.set("text", .string(output.text))
            return .object(object)
        })
    }

    static func decodeAnswers(_ value: JSONValue, expecting ids: [String]) -> [GoldenOutput]? {
        guard let items = value.array, items.count == ids.count else { return nil }
        var outputs: [GoldenOutput] = []
        for (item, id) in zip(items, ids) {
            guard let object = item.object, object["id"]?.string == id, let prompt = object["prompt"]?.string,
                  let text = object["text"]?.string, let promptIds = integers(object["prompt_ids"]), let tokens = integers(object["ids"]) else { return nil }
            outputs.append(GoldenOutput(id: id, prompt: prompt, promptIds: promptIds, ids: tokens, text: text))
        }
        return outputs
    }

    static func encode(_ scores: [ChoiceScore]) -> JSONValue {
        .array(scores.map { .object(JSONObject(["id": .string($0.id), "loglikelihoods": .from($0.loglikelihoods)])) })
        // The item's answer and choice lengths come from the evalset (its bytes are in the key).
    }

    static func decodeChoices(_ value: JSONValue, expecting items: [ChoiceItem]) -> [ChoiceScore]? {
        guard let array = value.array, array.count == items.count else { return nil }
        var scores: [ChoiceScore] = []
        for (element, item) in zip(array, items) {
            guard let object = element.object, object["id"]?.string == item.id, let values = doubles(object["loglikelihoods"]),
                  values.count == item.choices.count else { return nil }
            scores.append(ChoiceScore(id: item.id, loglikelihoods: values, gold: item.answer, choiceLengths: item.choices.map { $0.unicodeScalars.count }))
        }
        return scores
    }

    static func encode(_ scores: [RollingScore]) -> JSONValue {
        .array(scores.map { .object(JSONObject(["id": .string($0.id), "loglikelihood": .from($0.loglikelihood)])) })
    }

    static func decodeRolling(_ value: JSONValue, expecting texts: [TextItem]) -> [RollingScore]? {
        guard let array = value.array, array.count == texts.count else { return nil }
        var scores: [RollingScore] = []
        for (element, text) in zip(array, texts) {
            guard let object = element.object, object["id"]?.string == text.id, let value = object["loglikelihood"]?.double else { return nil }
            scores.append(RollingScore(id: text.id, loglikelihood: value, words: LoglikelihoodRequests.wordCount(text.text),
                                       bytes: LoglikelihoodRequests.byteCount(text.text)))
        }
        return scores
    }

    private static func doubles(_ value: JSONValue?) -> [Double]? {
        guard let array = value?.array else { return nil }
        let numbers = array.compactMap(\.double)
        return numbers.count == array.count ? numbers : nil
    }

    private static func integers(_ value: JSONValue?) -> [Int]? {
        guard let array = value?.array else { return nil }
        let numbers = array.compactMap(\.int)
        return numbers.count == array.count ? numbers : nil
    }
}
