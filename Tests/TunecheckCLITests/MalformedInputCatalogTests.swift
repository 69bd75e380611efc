import Foundation
import TunecheckTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The malformed-input catalogue: broken files of every format tunecheck reads, each run through the real CLI.
/// Every case must exit 2 with exactly one stderr line that names the file and the problem, leave no output file,
/// and print exactly the message stored in `Tests/Fixtures/snapshots/malformed-messages.json` (temporary folder
/// shown as `$TMP`, the repository as `$REPO`). After an intended message change, re-record with
/// `TUNECHECK_RECORD_SNAPSHOTS=1 swift test --filter MalformedInputCatalogTests` and review the diff.
@Suite(.serialized)
struct MalformedInputCatalogTests {
    @Test(arguments: MalformedCatalog.cases.map(\.name))
    func malformedInput(_ name: String) throws {
        let entry = try #require(MalformedCatalog.cases.first { $0.name == name })
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let invocation = try entry.make(folder)
        let before = try Set(FileManager.default.subpathsOfDirectory(atPath: folder.path))
        let result = try CLIRunner.run(invocation.arguments, environment: invocation.environment)

        #expect(result.status == 2, "\(name): exit status \(result.status); stderr: \(result.standardError)")
        let lines = result.standardError.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        #expect(lines.count == 1, "\(name): one stderr line expected, got: \(result.standardError)")
        #expect(result.standardOutput.isEmpty, "\(name): nothing on stdout expected, got: \(result.standardOutput)")
        if let output = invocation.output {
            #expect(!FileManager.default.fileExists(atPath: output.path), "\(name): no output expected at \(output.path)")
        }
        // Nothing new at all in the folder: no output, no temporary file, no staging folder.
        let after = try Set(FileManager.default.subpathsOfDirectory(atPath: folder.path))
        #expect(after.subtracting(before).isEmpty, "\(name): files left behind: \(after.subtracting(before).sorted())")

        let message = MalformedCatalog.normalise(result.standardError.trimmingCharacters(in: .newlines), temporary: folder)
        try SnapshotStore.shared.check(name, message)
    }

    @Test func snapshotHasNoStaleEntries() throws {
        let stored = try SnapshotStore.shared.stored()
        let names = Set(MalformedCatalog.cases.map(\.name))
        #expect(MalformedCatalog.cases.count >= 40)
        #expect(names.count == MalformedCatalog.cases.count, "case names must be unique")
        if !SnapshotStore.recording {
            #expect(Set(stored.keys).subtracting(names).isEmpty, "stale snapshot entries: \(Set(stored.keys).subtracting(names).sorted())")
        }
    }
}

/// Snapshots of messages, keyed by case name, in one JSON file with sorted keys (so diffs are reviewable).
final class SnapshotStore: @unchecked Sendable {
    static let shared = SnapshotStore(url: TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/snapshots/malformed-messages.json"))
    static let recording = ProcessInfo.processInfo.environment["TUNECHECK_RECORD_SNAPSHOTS"] == "1"

    let url: URL
    private let lock = NSLock()

    init(url: URL) { self.url = url }

    func stored() throws -> [String: String] {
        guard let data = try? Data(contentsOf: url) else { return [:] }
        return try JSONDecoder().decode([String: String].self, from: data)
    }

    func check(_ name: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        lock.lock()
        defer { lock.unlock() }
        var snapshots = try stored()
        if Self.recording {
            snapshots[name] = message
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try (encoder.encode(snapshots) + Data("\n".utf8)).write(to: url, options: .atomic)
            return
        }
        guard let expected = snapshots[name] else {
            Issue.record("no snapshot for '\(name)'; record with TUNECHECK_RECORD_SNAPSHOTS=1. Message: \(message)", sourceLocation: sourceLocation)
            return
        }
        #expect(message == expected, "message for '\(name)' changed", sourceLocation: sourceLocation)
    }
}

/// One catalogue entry: builds its broken input inside a temporary folder and returns the command line to run.
struct MalformedCase: Sendable {
    struct Invocation {
        var arguments: [String]
        /// The file or folder the command would write (must not exist afterwards).
        var output: URL?
        var environment: [String: String] = [:]
    }

    let name: String
    let make: @Sendable (URL) throws -> Invocation
}

enum MalformedCatalog {
    static let repository = TestPaths.repositoryRoot
    static let defaultModel = CLIRunner.defaultModel
    static let fixtures = repository.appendingPathComponent("Tests/Fixtures")

    static func normalise(_ message: String, temporary: URL) -> String {
        message.replacingOccurrences(of: temporary.path, with: "$TMP")
            .replacingOccurrences(of: temporary.resolvingSymlinksInPath().path, with: "$TMP")
            .replacingOccurrences(of: repository.path, with: "$REPO")
    }

    // MARK: - Building blocks

    /// A copy of the default model at `<folder>/model`, for corrupting.
    static func model(in folder: URL) throws -> URL {
        let model = folder.appendingPathComponent("model")
        try FileManager.default.copyItem(at: defaultModel, to: model)
        return model
    }

    static func write(_ text: String, _ url: URL) throws {
        try? FileManager.default.removeItem(at: url)
        try Data(text.utf8).write(to: url)
    }

    static func write(bytes: [UInt8], _ url: URL) throws {
        try? FileManager.default.removeItem(at: url)
        try Data(bytes).write(to: url)
    }

    /// Replaces `url` with a named pipe (nobody ever writes to it: reading it naively blocks forever).
    static func fifo(_ url: URL) throws {
        try? FileManager.default.removeItem(at: url)
        guard mkfifo(url.path, 0o644) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// Replaces `url` with an empty directory.
    static func directory(_ url: URL) throws {
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Replaces `url` with a symbolic link to itself (unreadable for every user, root included: ELOOP).
    static func selfLink(_ url: URL) throws {
        try? FileManager.default.removeItem(at: url)
        guard symlink(url.path, url.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// Rewrites a JSON object file through `edit`.
    static func editJSON(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
    }

    /// A safetensors file: 8-byte little-endian header length, the header bytes as given, then `data`.
    static func safetensors(header: String, declaredLength: UInt64? = nil, data: [UInt8] = []) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        let length = declaredLength ?? UInt64(headerBytes.count)
        return withUnsafeBytes(of: length.littleEndian) { Array($0) } + headerBytes + data
    }

    /// Rewrites the header of a safetensors file through `edit`, keeping the data section (offsets unchanged).
    static func editHeader(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let bytes = try [UInt8](Data(contentsOf: url))
        let length = Int(bytes[0..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        var header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        edit(&header)
        var text = String(decoding: try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]), as: UTF8.self)
        while text.utf8.count % 8 != 0 { text += " " }
        try write(bytes: safetensors(header: text, data: Array(bytes[(8 + length)...])), url)
    }

    /// Overwrites the first float32 of a tensor of the default model's weights.
    static func poison(_ url: URL, tensor: String, value: Float) throws {
        var bytes = try [UInt8](Data(contentsOf: url))
        let length = Int(bytes[0..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        let offsets = (header[tensor] as! [String: Any])["data_offsets"] as! [Int]
        withUnsafeBytes(of: value.bitPattern.littleEndian) { raw in
            for index in 0..<4 { bytes[8 + length + offsets[0] + index] = raw[index] }
        }
        try write(bytes: bytes, url)
    }

    /// `score --model MODEL --input IN --output OUT` with one valid text line; `input` replaces the input file.
    static func score(_ folder: URL, model: URL? = nil, adapter: String? = nil, input: ((URL) throws -> Void)? = nil) throws -> MalformedCase.Invocation {
        let inputURL = folder.appendingPathComponent("in.jsonl")
        try write("{\"text\": \"Question: how much water?\"}\n", inputURL)
        try input?(inputURL)
        let output = folder.appendingPathComponent("out.jsonl")
        var arguments = ["score", "--model", (model ?? defaultModel).path, "--input", inputURL.path, "--output", output.path]
        if let adapter { arguments += ["--adapter", adapter] }
        return .init(arguments: arguments, output: output)
    }

    /// A case that corrupts a copy of the default model, then scores with it.
    static func modelCase(_ name: String, _ corrupt: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        MalformedCase(name: name) { folder in
            let model = try model(in: folder)
            try corrupt(model)
            return try score(folder, model: model)
        }
    }

    static func weightsCase(_ name: String, _ corrupt: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        modelCase(name) { model in try corrupt(model.appendingPathComponent("model.safetensors")) }
    }

    static func configCase(_ name: String, _ corrupt: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        modelCase(name) { model in try corrupt(model.appendingPathComponent("config.json")) }
    }

    static func inputCase(_ name: String, _ corrupt: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        MalformedCase(name: name) { folder in try score(folder, input: corrupt) }
    }

    /// An evalset of `kind` (prompts, answers: `eval --suites repetition`; pairs: `preflight`) holding `lines`.
    static func evalsetCase(_ name: String, kind: String, lines: [String]) -> MalformedCase {
        MalformedCase(name: name) { folder in
            let evalset = folder.appendingPathComponent("\(kind).jsonl")
            try write(lines.joined(separator: "\n") + "\n", evalset)
            if kind == "pairs" {
                let json = folder.appendingPathComponent("preflight.json")
                return .init(arguments: ["preflight", "--model", defaultModel.path, "--pairs", evalset.path, "--json", json.path], output: json)
            }
            let report = folder.appendingPathComponent("report")
            return .init(arguments: ["eval", "--base", defaultModel.path, "--\(kind)", evalset.path, "--suites", "repetition",
                                     "--max-tokens", "2", "--report-dir", report.path], output: report)
        }
    }

    /// `eval --suite FILE` with the suite file's text.
    static func suiteCase(_ name: String, file: String = "suite.yaml", _ contents: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        MalformedCase(name: name) { folder in
            let suite = folder.appendingPathComponent(file)
            try contents(suite)
            let report = folder.appendingPathComponent("report")
            return .init(arguments: ["eval", "--suite", suite.path, "--report-dir", report.path], output: report)
        }
    }

    /// `train --config FILE` with the config file's contents; the adapters folder it names must not appear.
    static func trainCase(_ name: String, _ contents: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        MalformedCase(name: name) { folder in
            let config = folder.appendingPathComponent("train.yaml")
            try contents(config)
            return .init(arguments: ["train", "--config", config.path], output: folder.appendingPathComponent("adapters"))
        }
    }

    static func validTrainingConfig(_ extra: String = "") -> String {
        """
        model: \(defaultModel.path)
        data: \(repository.appendingPathComponent("evalsets/default/texts.jsonl").path)
        adapter_path: adapters
        iters: 1
        \(extra)
        """
    }

    /// A copy of an adapter fixture at `<folder>/adapter`.
    static func adapter(_ name: String, in folder: URL) throws -> URL {
        let source = fixtures.appendingPathComponent("adapters/\(name)")
        let target = folder.appendingPathComponent("adapter")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where file.hasSuffix(".json") || file.hasSuffix(".safetensors") {
            guard file != "reference.json" else { continue }
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: target.appendingPathComponent(file))
        }
        return target
    }

    static let llamaBase = fixtures.appendingPathComponent("models/llama-rope-llama3-old-schema")

    static func adapterCase(_ name: String, fixture: String = "peft-llama", base: URL = llamaBase,
                            _ corrupt: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        MalformedCase(name: name) { folder in
            let adapter = try adapter(fixture, in: folder)
            try corrupt(adapter)
            let output = folder.appendingPathComponent("fused")
            return .init(arguments: ["fuse", "--model", base.path, "--adapter", adapter.path, "--output", output.path], output: output)
        }
    }

    // MARK: - The catalogue

    static let cases: [MalformedCase] = safetensorsCases + configCases + tokenizerCases + jsonlCases + evalsetCases + adapterCases
        + quantizedCases

    /// A copy of the mlx 4-bit fixture (group size 64, bf16 scales, with a tokenizer) at `<folder>/model`, corrupted,
    /// then scored.
    static func quantizedCase(_ name: String, fixture: String = "llama-q4-g64", _ corrupt: @escaping @Sendable (URL) throws -> Void) -> MalformedCase {
        MalformedCase(name: name) { folder in
            let model = folder.appendingPathComponent("model")
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("quantized/\(fixture)"), to: model)
            try corrupt(model)
            return try score(folder, model: model)
        }
    }

    /// Edits `config.json`'s `quantization` and its copy `quantization_config` alike (as mlx_lm writes them).
    static func editQuantization(_ model: URL, _ edit: @escaping (inout [String: Any]) -> Void) throws {
        try editJSON(model.appendingPathComponent("config.json")) { config in
            for key in ["quantization", "quantization_config"] {
                var entry = config[key] as! [String: Any]
                edit(&entry)
                config[key] = entry
            }
        }
    }

    static let quantizedCases: [MalformedCase] = [
        quantizedCase("quantized: scales shape does not match the group size") { model in
            try editHeader(model.appendingPathComponent("model.safetensors")) { header in
                var entry = header["model.layers.0.self_attn.q_proj.scales"] as! [String: Any]
                entry["shape"] = [256, 1]  // same bytes as [128, 2]
                header["model.layers.0.self_attn.q_proj.scales"] = entry
            }
        },
        quantizedCase("quantized: biases missing") { model in
            try editHeader(model.appendingPathComponent("model.safetensors")) { $0["model.layers.1.mlp.down_proj.biases"] = nil }
        },
        quantizedCase("quantized: config bits do not match the packed weights") { model in
            try editQuantization(model) { $0["bits"] = 3 }
        },
        quantizedCase("quantized: group size does not divide the input dimension") { model in
            // hidden 96 (head_dim stays 32): the embedding's rows hold 96 columns, which groups of 64 do not divide.
            try editJSON(model.appendingPathComponent("config.json")) { $0["hidden_size"] = 96 }
        },
        quantizedCase("quantized: unknown bits for one module") { model in
            try editQuantization(model) { $0["model.layers.1.mlp.down_proj"] = ["group_size": 64, "bits": 7] }
        },
        quantizedCase("quantized: module marked unquantized but stored packed") { model in
            try editQuantization(model) { $0["model.layers.0.mlp.up_proj"] = false }
        },
        quantizedCase("quantized: mode mxfp4") { model in
            try editQuantization(model) { $0["mode"] = "mxfp4" }
        },
        quantizedCase("quantized: GPTQ folder") { model in
            try editJSON(model.appendingPathComponent("config.json")) { config in
                config["quantization"] = nil
                config["quantization_config"] = ["quant_method": "gptq", "bits": 4, "group_size": 128]
            }
        },
        // granitemoehybrid-q4-g32: routed experts as mlx's QuantizedSwitchLinear, codes (4, 32, 8), scales (4, 32, 2).
        quantizedCase("quantized experts: scales shape does not match the group size", fixture: "granitemoehybrid-q4-g32") { model in
            try editHeader(model.appendingPathComponent("model.safetensors")) { header in
                let name = "model.layers.1.block_sparse_moe.switch_mlp.up_proj.scales"
                var entry = header[name] as! [String: Any]
                entry["shape"] = [4, 64, 1]  // same bytes as [4, 32, 2]
                header[name] = entry
            }
        },
        quantizedCase("quantized experts: codes stored 2-D", fixture: "granitemoehybrid-q4-g32") { model in
            try editHeader(model.appendingPathComponent("model.safetensors")) { header in
                let name = "model.layers.0.block_sparse_moe.switch_mlp.down_proj.weight"
                var entry = header[name] as! [String: Any]
                entry["shape"] = [256, 4]  // same bytes as [4, 64, 4]
                header[name] = entry
            }
        },
        quantizedCase("quantized: no quantization in config.json") { model in
            try editJSON(model.appendingPathComponent("config.json")) { config in
                config["quantization"] = nil
                config["quantization_config"] = nil
            }
        },
    ]
        + suiteCases + trainingCases + goldenCases

    static let safetensorsCases: [MalformedCase] = [
        weightsCase("safetensors: empty file") { try write(bytes: [], $0) },
        weightsCase("safetensors: truncated inside the length") { try write(bytes: [0x10, 0, 0], $0) },
        weightsCase("safetensors: header length beyond the file") { try write(bytes: safetensors(header: "{}", declaredLength: 4096), $0) },
        weightsCase("safetensors: header length over 100 MB") { try write(bytes: safetensors(header: "{}", declaredLength: 200_000_000), $0) },
        weightsCase("safetensors: header length 2^64-1") { try write(bytes: safetensors(header: "{}", declaredLength: UInt64.max), $0) },
        weightsCase("safetensors: header not JSON") { try write(bytes: safetensors(header: "{\"a\": [1, 2"), $0) },
        weightsCase("safetensors: header is an array") { try write(bytes: safetensors(header: "[1, 2, 3]"), $0) },
        weightsCase("safetensors: data truncated") { url in
            let bytes = try [UInt8](Data(contentsOf: url))
            try write(bytes: Array(bytes.dropLast(1000)), url)
        },
        weightsCase("safetensors: overlapping offsets") { try editHeader($0) { header in
            var entry = header["model.norm.weight"] as! [String: Any]
            let offsets = (header["lm_head.weight"] as! [String: Any])["data_offsets"] as! [Int]
            entry["data_offsets"] = [offsets[0], offsets[0] + 256]
            header["model.norm.weight"] = entry
        } },
        weightsCase("safetensors: begin after end") { try editHeader($0) { header in
            var entry = header["model.norm.weight"] as! [String: Any]
            entry["data_offsets"] = [256, 0]
            header["model.norm.weight"] = entry
        } },
        weightsCase("safetensors: dims whose product overflows") { try editHeader($0) { header in
            var entry = header["model.norm.weight"] as! [String: Any]
            entry["shape"] = [4_294_967_296, 4_294_967_296, 16]
            header["model.norm.weight"] = entry
        } },
        weightsCase("safetensors: unknown dtype") { try editHeader($0) { header in
            var entry = header["model.norm.weight"] as! [String: Any]
            entry["dtype"] = "F4"
            header["model.norm.weight"] = entry
        } },
        weightsCase("safetensors: shape does not match the byte span") { try editHeader($0) { header in
            var entry = header["model.norm.weight"] as! [String: Any]
            entry["shape"] = [65]
            header["model.norm.weight"] = entry
        } },
        weightsCase("safetensors: integer dtype for a weight") { try editHeader($0) { header in
            var entry = header["model.norm.weight"] as! [String: Any]
            entry["dtype"] = "I32"
            header["model.norm.weight"] = entry
        } },
        weightsCase("safetensors: NaN weight") { try poison($0, tensor: "model.layers.1.mlp.down_proj.weight", value: .nan) },
        weightsCase("safetensors: infinite weight") { try poison($0, tensor: "model.embed_tokens.weight", value: -.infinity) },
        weightsCase("safetensors: missing tensor") { try editHeader($0) { $0["model.layers.1.self_attn.k_proj.weight"] = nil } },
        weightsCase("safetensors: wrong shape for the config") { try editHeader($0) { header in
            var entry = header["model.layers.0.mlp.up_proj.weight"] as! [String: Any]
            entry["shape"] = [64, 128]
            header["model.layers.0.mlp.up_proj.weight"] = entry
        } },
        weightsCase("safetensors: a directory") { try directory($0) },
        weightsCase("safetensors: a named pipe") { try fifo($0) },
        weightsCase("safetensors: a symlink loop") { try selfLink($0) },
    ]

    static let configCases: [MalformedCase] = [
        configCase("config.json: empty file") { try write("", $0) },
        configCase("config.json: truncated") { try write("{\"model_type\": \"llama\", \"hidden_size\": 6", $0) },
        configCase("config.json: an array") { try write("[{\"model_type\": \"llama\"}]", $0) },
        configCase("config.json: not UTF-8") { try write(bytes: Array("{\"model_type\": \"ll".utf8) + [0xFF, 0xFE] + Array("ama\"}".utf8), $0) },
        configCase("config.json: no model_type") { try editJSON($0) { $0["model_type"] = nil } },
        configCase("config.json: unknown model_type") { try editJSON($0) { $0["model_type"] = "mamba" } },
        configCase("config.json: wrong field type") { try editJSON($0) { $0["hidden_size"] = "64" } },
        configCase("config.json: fractional size") { try editJSON($0) { $0["num_hidden_layers"] = 2.5 } },
        configCase("config.json: heads do not divide") { try editJSON($0) { $0["num_key_value_heads"] = 3 } },
        configCase("config.json: sizes do not fit the weights") { try editJSON($0) { $0["intermediate_size"] = 256 } },
        // The available memory is pinned (TUNECHECK_MEMORY_AVAILABLE) so that the message does not depend on the machine.
        MalformedCase(name: "config.json: model larger than memory") { folder in
            let model = try model(in: folder)
            try editJSON(model.appendingPathComponent("config.json")) { config in
                config["vocab_size"] = 4_000_000
                config["hidden_size"] = 65_536
                config["head_dim"] = 4_096
                config["num_attention_heads"] = 16
                config["num_key_value_heads"] = 16
            }
            var invocation = try score(folder, model: model)
            invocation.environment["TUNECHECK_MEMORY_AVAILABLE"] = "\(8 << 30)"
            return invocation
        },
        configCase("config.json: a directory") { try directory($0) },
        configCase("config.json: a named pipe") { try fifo($0) },
        modelCase("config.json: missing") { try FileManager.default.removeItem(at: $0.appendingPathComponent("config.json")) },
        modelCase("generation_config.json: not JSON") { try write("{eos_token_id: 2}", $0.appendingPathComponent("generation_config.json")) },
        modelCase("generation_config.json: bad eos_token_id") { try editJSON($0.appendingPathComponent("generation_config.json")) { $0["eos_token_id"] = "</s>" } },
        modelCase("model.safetensors.index.json: a named pipe") { try fifo($0.appendingPathComponent("model.safetensors.index.json")) },
        modelCase("model.safetensors.index.json: names a missing shard") {
            try write("{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\"}}",
                      $0.appendingPathComponent("model.safetensors.index.json"))
        },
        modelCase("model.safetensors.index.json: path outside the folder") {
            try write("{\"weight_map\": {\"model.embed_tokens.weight\": \"../model.safetensors\"}}", $0.appendingPathComponent("model.safetensors.index.json"))
        },
        MalformedCase(name: "model folder: a file") { folder in
            let file = folder.appendingPathComponent("model")
            try write("not a folder", file)
            return try score(folder, model: file)
        },
    ]

    static let tokenizerCases: [MalformedCase] = [
        modelCase("tokenizer.json: missing") { try FileManager.default.removeItem(at: $0.appendingPathComponent("tokenizer.json")) },
        modelCase("tokenizer.json: truncated") { model in
            let url = model.appendingPathComponent("tokenizer.json")
            let bytes = try [UInt8](Data(contentsOf: url))
            try write(bytes: Array(bytes.prefix(bytes.count / 2)), url)
        },
        modelCase("tokenizer.json: no model") { try write("{\"version\": \"1.0\", \"added_tokens\": []}", $0.appendingPathComponent("tokenizer.json")) },
        modelCase("tokenizer.json: a named pipe") { try fifo($0.appendingPathComponent("tokenizer.json")) },
        modelCase("chat_template.jinja: a directory") { try directory($0.appendingPathComponent("chat_template.jinja")) },
    ]

    static let jsonlCases: [MalformedCase] = [
        inputCase("input JSONL: a line that is an array") { try write("{\"text\": \"fine\"}\n[1, 2, 3]\n", $0) },
        inputCase("input JSONL: a line that is not JSON") { try write("{\"text\": \"fine\"}\n\n{\"text\": oops}\n", $0) },
        inputCase("input JSONL: not UTF-8") { try write(bytes: Array("{\"text\": \"ok\"}\n{\"text\": \"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8), $0) },
        inputCase("input JSONL: empty file") { try write("", $0) },
        inputCase("input JSONL: only blank lines") { try write("\n  \n\t\n", $0) },
        inputCase("input JSONL: a directory") { try directory($0) },
        inputCase("input JSONL: a named pipe") { try fifo($0) },
        inputCase("input JSONL: a symlink loop") { try selfLink($0) },
        inputCase("input JSONL: missing") { try FileManager.default.removeItem(at: $0) },
        inputCase("input JSONL: token id out of range") { try write("{\"ids\": [1, 2, 99999]}\n", $0) },
    ]

    static let evalsetCases: [MalformedCase] = [
        evalsetCase("evalset: duplicate ids", kind: "prompts", lines: ["{\"id\": \"a\", \"prompt\": \"x\"}", "{\"id\": \"b\", \"prompt\": \"y\"}",
                                                                       "{\"id\": \"a\", \"prompt\": \"z\"}"]),
        evalsetCase("evalset: missing field", kind: "pairs", lines: ["{\"id\": \"p\", \"prompt\": \"x\", \"chosen\": \"y\"}"]),
        evalsetCase("evalset: field of the wrong type", kind: "prompts", lines: ["{\"id\": \"p\", \"prompt\": [\"x\"]}"]),
        evalsetCase("evalset: id of the wrong type", kind: "prompts", lines: ["{\"id\": {\"n\": 1}, \"prompt\": \"x\"}"]),
        evalsetCase("evalset: a line that is an array", kind: "prompts", lines: ["{\"id\": \"a\", \"prompt\": \"x\"}", "[\"prompt\", \"x\"]"]),
        evalsetCase("answers: duplicate id for one checkpoint", kind: "answers", lines: [
            "{\"id\": \"a\", \"prompt\": \"x\", \"answer\": \"y\", \"checkpoint\": \"base\"}",
            "{\"id\": \"a\", \"prompt\": \"x\", \"answer\": \"z\", \"checkpoint\": \"base\"}"]),
    ]

    static let adapterCases: [MalformedCase] = [
        adapterCase("adapter: for another base", fixture: "peft-gpt2") { _ in },
        adapterCase("adapter: config not JSON") { try write("{\"peft_type\": \"LORA\",", $0.appendingPathComponent("adapter_config.json")) },
        adapterCase("adapter: no weights") { try FileManager.default.removeItem(at: $0.appendingPathComponent("adapter_model.safetensors")) },
        adapterCase("adapter: DoRA") { try editJSON($0.appendingPathComponent("adapter_config.json")) { $0["use_dora"] = true } },
        adapterCase("adapter: missing lora_B") { try editHeader($0.appendingPathComponent("adapter_model.safetensors")) { header in
            let name = header.keys.sorted().first { $0.hasSuffix("lora_B.weight") }!
            header[name] = nil
        } },
        adapterCase("adapter: rank differs from the config") { try editJSON($0.appendingPathComponent("adapter_config.json")) { $0["r"] = 16; $0["rank_pattern"] = [String: Any]() } },
        adapterCase("mlx adapter: alpha without scale", fixture: "mlx-llama") { try editJSON($0.appendingPathComponent("adapter_config.json")) { config in
            config["lora_parameters"] = ["rank": 4, "alpha": 16, "dropout": 0.0]
        } },
        adapterCase("mlx adapter: config a named pipe", fixture: "mlx-llama") { try fifo($0.appendingPathComponent("adapter_config.json")) },
    ]

    static let suiteCases: [MalformedCase] = [
        suiteCase("suite YAML: unknown key") { try write("name: s\nbase: \(defaultModel.path)\nevalset:\n  prompts: p.jsonl\n", $0) },
        suiteCase("suite YAML: not YAML") { try write("name: [unclosed\nbase: x\n", $0) },
        suiteCase("suite YAML: empty file") { try write("", $0) },
        suiteCase("suite YAML: a list at the top") { try write("- name: s\n- base: x\n", $0) },
        suiteCase("suite YAML: wrong type") { try write("name: s\nbase: \(defaultModel.path)\ngeneration:\n  max_tokens: many\n", $0) },
        suiteCase("suite YAML: not UTF-8") { try write(bytes: Array("name: s\n".utf8) + [0xFF, 0x00, 0xC0], $0) },
        suiteCase("suite YAML: a directory") { try directory($0) },
        suiteCase("suite JSON: unknown key", file: "suite.json") { try write("{\"name\": \"s\", \"golden\": \"g\"}", $0) },
    ]

    static let trainingCases: [MalformedCase] = [
        trainCase("training YAML: unknown key") { try write(validTrainingConfig("learning_rat: 0.001"), $0) },
        trainCase("training YAML: unknown nested key") { try write(validTrainingConfig("lora_parameters: {rank: 4, alpha: 8}"), $0) },
        trainCase("training YAML: empty file") { try write("", $0) },
        trainCase("training YAML: missing model") { try write("data: d.jsonl\niters: 2\n", $0) },
        trainCase("training YAML: not UTF-8") { try write(bytes: [0xFE, 0xFF, 0x00, 0x6D], $0) },
        trainCase("training YAML: a named pipe") { try fifo($0) },
        trainCase("training data: a line that is an array") { config in
            let data = config.deletingLastPathComponent().appendingPathComponent("train.jsonl")
            try write("{\"text\": \"fine\"}\n[\"text\"]\n", data)
            try write("model: \(defaultModel.path)\ndata: train.jsonl\nadapter_path: adapters\niters: 1\n", config)
        },
    ]

    static let goldenCases: [MalformedCase] = [
        MalformedCase(name: "golden file: not JSON") { folder in
            let golden = folder.appendingPathComponent("golden")
            try FileManager.default.createDirectory(at: golden.appendingPathComponent("tunecheck"), withIntermediateDirectories: true)
            try write("{\"suite\": \"tunecheck\", \"checkpoint\": \"base\", \"outputs\": [", golden.appendingPathComponent("tunecheck/base.json"))
            let report = folder.appendingPathComponent("report")
            let prompts = repository.appendingPathComponent("evalsets/default/prompts.jsonl")
            return .init(arguments: ["eval", "--base", defaultModel.path, "--prompts", prompts.path, "--suites", "golden",
                                     "--golden-dir", golden.path, "--max-tokens", "2", "--report-dir", report.path], output: report)
        },
    ]
}
