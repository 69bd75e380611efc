import Foundation
import TunecheckTestSupport
import Testing

/// End-to-end: the `tunecheck` binary against transformers' numbers. The bundled default model carries its own
/// transformers reference (scripts/default-model); the shared fixtures add the reference pairs and tokenizer
/// cases when present.
struct ScoreGenerateCLITests {
    struct DefaultReference: Decodable {
        struct Text: Decodable { var text: String; var ids: [Int]; var logprobs: [Double] }
        struct Generation: Decodable { var prompt: String; var prompt_ids: [Int]; var greedy_ids: [Int]; var greedy_text: String }
        var texts: [Text]
        var generate: [Generation]
    }

    static func defaultReference() throws -> DefaultReference {
        try JSONDecoder().decode(DefaultReference.self, from: Data(contentsOf: CLIRunner.defaultModel.appendingPathComponent("reference.json")))
    }

    @Test func scoreTextsMatchTransformers() throws {
        let reference = try Self.defaultReference()
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.jsonl")
        let output = folder.appendingPathComponent("out.jsonl")
        let lines = try reference.texts.enumerated().map { index, text in
            String(decoding: try JSONSerialization.data(withJSONObject: ["text": text.text, "id": "t\(index)"]), as: UTF8.self)
        }
        try CLIRunner.writeLines(lines, to: input)
        let result = try CLIRunner.run(["score", "--model", CLIRunner.defaultModel.path, "--input", input.path, "--output", output.path])
        #expect(result.status == 0, "\(result.standardError)")
        let records = try CLIRunner.readJSONLines(output)
        #expect(records.count == reference.texts.count)
        for (record, text) in zip(records, reference.texts) {
            #expect(record["ids"] as? [Int] == text.ids)
            #expect(record["id"] as? String != nil, "input fields are kept")
            let logprobs = try #require(record["token_logprobs"] as? [Double])
            #expect(logprobs.count == text.ids.count - 1)
            let difference = zip(logprobs, text.logprobs).map { abs($0 - $1) }.max() ?? 0
            #expect(difference <= 1e-4, "max |Δlogprob| \(difference)")
            let sum = try #require(record["sum_logprob"] as? Double)
            #expect(abs(sum - text.logprobs.reduce(0, +)) <= 1e-3)
            let mean = try #require(record["mean_logprob"] as? Double)
            #expect(abs(mean - sum / Double(logprobs.count)) <= 1e-9)
        }
    }

    @Test func generateGreedyMatchesTransformers() throws {
        let reference = try Self.defaultReference()
        for generation in reference.generate {
            let result = try CLIRunner.run(["generate", "--model", CLIRunner.defaultModel.path, "--prompt", generation.prompt,
                                            "--max-tokens", "\(generation.greedy_ids.count)", "--ignore-eos", "--json"])
            #expect(result.status == 0, "\(result.standardError)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
            #expect(object["prompt_ids"] as? [Int] == generation.prompt_ids)
            #expect(object["ids"] as? [Int] == generation.greedy_ids)
            #expect(object["text"] as? String == generation.greedy_text)
        }
    }

    @Test func generateBatchFileMatchesSinglePrompts() throws {
        let reference = try Self.defaultReference()
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("prompts.jsonl")
        let output = folder.appendingPathComponent("answers.jsonl")
        let lines = try reference.generate.map {
            String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": $0.prompt]), as: UTF8.self)
        } + ["{\"prompt_ids\": \(reference.generate[0].prompt_ids)}"]
        try CLIRunner.writeLines(lines, to: input)
        let count = reference.generate[0].greedy_ids.count
        let result = try CLIRunner.run(["generate", "--model", CLIRunner.defaultModel.path, "--input", input.path, "--output", output.path,
                                        "--max-tokens", "\(count)", "--ignore-eos"])
        #expect(result.status == 0, "\(result.standardError)")
        let records = try CLIRunner.readJSONLines(output)
        #expect(records.count == 3)
        for (record, generation) in zip(records, reference.generate + [reference.generate[0]]) {
            #expect(record["ids"] as? [Int] == generation.greedy_ids)
        }
    }

    @Test func sampledGenerationIsReproducibleWithASeed() throws {
        let arguments = ["generate", "--model", CLIRunner.defaultModel.path, "--prompt", "Question: Is water good?",
                         "--temperature", "1.0", "--top-k", "50", "--top-p", "0.9", "--seed", "42", "--max-tokens", "12", "--json", "--ignore-eos"]
        let first = try CLIRunner.run(arguments)
        let second = try CLIRunner.run(arguments)
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput == second.standardOutput)
        let other = try CLIRunner.run(arguments.map { $0 == "42" ? "43" : $0 })
        #expect(other.standardOutput != first.standardOutput, "a different seed should sample differently")
    }

    @Test(SharedFixtures.required("shared pair reference"))
    func scorePairsAndResponsesMatchSharedReference() throws {
        struct Reference: Decodable {
            struct Pair: Decodable {
                var prompt: String; var chosen: String; var rejected: String; var prompt_len: Int
                var chosen_ids: [Int]; var rejected_ids: [Int]
                var chosen_logprob_sum: Double; var rejected_logprob_sum: Double
                var chosen_logprob_mean: Double; var rejected_logprob_mean: Double
            }
            var pairs: [Pair]
        }
        let model = try #require(SharedFixtures.path("models/llama-tiny"))
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: model.appendingPathComponent("reference.json")))
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("pairs.jsonl")
        let output = folder.appendingPathComponent("scored.jsonl")
        var lines: [String] = []
        for pair in reference.pairs {
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected]), as: UTF8.self))
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": pair.prompt, "response": pair.chosen]), as: UTF8.self))
        }
        try CLIRunner.writeLines(lines, to: input)
        let result = try CLIRunner.run(["score", "--model", model.path, "--input", input.path, "--output", output.path])
        #expect(result.status == 0, "\(result.standardError)")
        let records = try CLIRunner.readJSONLines(output)
        for (index, pair) in reference.pairs.enumerated() {
            let scored = records[2 * index]
            let chosen = try #require(scored["chosen"] as? [String: Any])
            let rejected = try #require(scored["rejected"] as? [String: Any])
            #expect(chosen["ids"] as? [Int] == pair.chosen_ids)
            #expect(rejected["ids"] as? [Int] == pair.rejected_ids)
            #expect(chosen["prompt_len"] as? Int == pair.prompt_len)
            let chosenSum = try #require(chosen["sum_logprob"] as? Double)
            let rejectedSum = try #require(rejected["sum_logprob"] as? Double)
            #expect(abs(chosenSum - pair.chosen_logprob_sum) <= 1e-3)
            #expect(abs(rejectedSum - pair.rejected_logprob_sum) <= 1e-3)
            #expect(abs((chosen["mean_logprob"] as? Double ?? .nan) - pair.chosen_logprob_mean) <= 1e-4)
            #expect(abs((scored["gap_sum"] as? Double ?? .nan) - (pair.chosen_logprob_sum - pair.rejected_logprob_sum)) <= 2e-3)
            #expect(abs((scored["gap_mean"] as? Double ?? .nan) - (pair.chosen_logprob_mean - pair.rejected_logprob_mean)) <= 2e-4)
            let response = records[2 * index + 1]
            #expect(abs((response["sum_logprob"] as? Double ?? .nan) - pair.chosen_logprob_sum) <= 1e-3)
            #expect(response["prompt_len"] as? Int == pair.prompt_len)
        }
    }

    @Test(SharedFixtures.required("shared tokenizer cases"),
          arguments: ["bpe-bytelevel", "llama2-sp"])
    func tokenizeMatchesSharedCases(name: String) throws {
        struct Case: Decodable { var text: String; var ids: [Int]; var decoded: String }
        let tokenizerFolder = try #require(SharedFixtures.path("tokenizers/\(name)"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: tokenizerFolder.appendingPathComponent("tokenizer_cases.json")))
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("texts.jsonl")
        let output = folder.appendingPathComponent("tokens.jsonl")
        try CLIRunner.writeLines(try cases.map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0.text]), as: UTF8.self) }, to: input)
        let result = try CLIRunner.run(["tokenize", "--model", tokenizerFolder.path, "--input", input.path, "--output", output.path])
        #expect(result.status == 0, "\(result.standardError)")
        let records = try CLIRunner.readJSONLines(output)
        #expect(records.count == cases.count)
        for (record, expected) in zip(records, cases) {
            #expect(record["ids"] as? [Int] == expected.ids, "ids of \(expected.text.debugDescription)")
            #expect(record["decoded"] as? String == expected.decoded)
        }
    }
}
