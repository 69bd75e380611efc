import Foundation
import TunecheckTestSupport
import Testing

/// Bad input gets one clear line on stderr naming the file and the problem, exit code 2, and no output file.
struct BadInputCLITests {
    /// A copy of the default model in a temporary folder, for corrupting.
    static func copyOfDefaultModel() throws -> URL {
        let folder = try CLIRunner.temporaryDirectory().appendingPathComponent("model")
        try FileManager.default.copyItem(at: CLIRunner.defaultModel, to: folder)
        return folder
    }

    static func expectInputError(_ arguments: [String], mentions fragments: [String], noFileAt output: URL? = nil) throws {
        let result = try CLIRunner.run(arguments)
        #expect(result.status == 2, "exit status \(result.status); stderr: \(result.standardError)")
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "one error line expected, got: \(result.standardError)")
        for fragment in fragments {
            #expect(result.standardError.contains(fragment), "stderr should mention \(fragment.debugDescription): \(result.standardError)")
        }
        if let output {
            #expect(!FileManager.default.fileExists(atPath: output.path), "no partial output file")
        }
    }

    @Test func missingModelFolder() throws {
        try Self.expectInputError(["generate", "--model", "/nonexistent/model", "--prompt", "hi"], mentions: ["/nonexistent/model"])
    }

    @Test func jsonlLineThatIsAnArray() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.jsonl")
        let output = folder.appendingPathComponent("out.jsonl")
        try CLIRunner.writeLines(["{\"text\": \"fine\"}", "[1, 2, 3]"], to: input)
        try Self.expectInputError(["score", "--model", CLIRunner.defaultModel.path, "--input", input.path, "--output", output.path],
                                  mentions: ["in.jsonl:2", "expected a JSON object"], noFileAt: output)
    }

    @Test func jsonlLineThatIsNotJSON() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.jsonl")
        let output = folder.appendingPathComponent("out.jsonl")
        try CLIRunner.writeLines(["{\"text\": \"fine\"}", "", "{\"text\": oops}"], to: input)
        try Self.expectInputError(["tokenize", "--model", CLIRunner.defaultModel.path, "--input", input.path, "--output", output.path],
                                  mentions: ["in.jsonl:3", "not valid JSON"], noFileAt: output)
    }

    @Test func scoreLineWithoutKnownFields() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.jsonl")
        let output = folder.appendingPathComponent("out.jsonl")
        try CLIRunner.writeLines(["{\"txt\": \"typo\"}"], to: input)
        try Self.expectInputError(["score", "--model", CLIRunner.defaultModel.path, "--input", input.path, "--output", output.path],
                                  mentions: ["in.jsonl:1", "expected \"text\""], noFileAt: output)
    }

    @Test func outOfVocabularyIds() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.jsonl")
        let output = folder.appendingPathComponent("out.jsonl")
        try CLIRunner.writeLines(["{\"ids\": [1, 2, 99999]}"], to: input)
        try Self.expectInputError(["score", "--model", CLIRunner.defaultModel.path, "--input", input.path, "--output", output.path],
                                  mentions: ["99999", "vocabulary"], noFileAt: output)
    }

    @Test func truncatedSafetensors() throws {
        let model = try Self.copyOfDefaultModel()
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let weights = model.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count / 2).write(to: weights)
        try Self.expectInputError(["generate", "--model", model.path, "--prompt", "hi"], mentions: ["model.safetensors", "truncated"])
    }

    @Test func headerLengthBeyondFile() throws {
        let model = try Self.copyOfDefaultModel()
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let weights = model.appendingPathComponent("model.safetensors")
        var data = try Data(contentsOf: weights)
        var huge = UInt64(data.count * 4).littleEndian
        data.replaceSubrange(0..<8, with: Data(bytes: &huge, count: 8))
        try data.write(to: weights)
        try Self.expectInputError(["generate", "--model", model.path, "--prompt", "hi"], mentions: ["model.safetensors", "header length"])
    }

    @Test func unknownModelType() throws {
        let model = try Self.copyOfDefaultModel()
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let config = model.appendingPathComponent("config.json")
        let text = try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "\"llama\"", with: "\"mamba-9000\"")
        try text.write(to: config, atomically: true, encoding: .utf8)
        try Self.expectInputError(["generate", "--model", model.path, "--prompt", "hi"], mentions: ["config.json", "mamba-9000", "llama"])
    }

    @Test func configWithAbsurdSize() throws {
        let model = try Self.copyOfDefaultModel()
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let config = model.appendingPathComponent("config.json")
        let text = try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": -3")
        try text.write(to: config, atomically: true, encoding: .utf8)
        try Self.expectInputError(["generate", "--model", model.path, "--prompt", "hi"], mentions: ["config.json", "layer count"])
    }

    @Test func unsupportedTokenizerModel() throws {
        let model = try Self.copyOfDefaultModel()
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let tokenizer = model.appendingPathComponent("tokenizer.json")
        let text = try String(contentsOf: tokenizer, encoding: .utf8).replacingOccurrences(of: "\"type\": \"BPE\"", with: "\"type\": \"Unigram\"")
        try text.write(to: tokenizer, atomically: true, encoding: .utf8)
        try Self.expectInputError(["generate", "--model", model.path, "--prompt", "hi"], mentions: ["tokenizer.json", "Unigram"])
    }

    @Test func usageErrorsExitTwo() throws {
        let missing = try CLIRunner.run(["score", "--input", "x.jsonl", "--output", "y.jsonl"])
        #expect(missing.status == 2)
        #expect(missing.standardError.contains("--model"))
        let both = try CLIRunner.run(["generate", "--model", CLIRunner.defaultModel.path, "--prompt", "a", "--input", "b.jsonl", "--output", "c.jsonl"])
        #expect(both.status == 2)
        let unknown = try CLIRunner.run(["frobnicate"])
        #expect(unknown.status == 2)
    }

    @Test(arguments: [[], ["tokenize"], ["score"], ["generate"], ["fuse"], ["delta"]])
    func helpExplainsWithAnExample(command: [String]) throws {
        let result = try CLIRunner.run(command + ["--help"])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("Example"), "--help of \(command) should show an example")
    }
}
