import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckJSON
import TunecheckTokenizers

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text with a KV cache: greedy by default, or sampled with a seed.",
        discussion: """
        One prompt with --prompt, or many with --input prompts.jsonl --output out.jsonl (lines {"prompt": ...} or \
        {"prompt_ids": [...]}). The prompt is encoded with the tokenizer's special tokens (BOS), as \
        transformers' tokenizer(prompt) does. Generation stops at EOS (generation_config.json) unless \
        --ignore-eos, or after --max-tokens. JSON output carries "prompt_ids", "ids" (new tokens only), "text" \
        (their decode, without a final EOS) and "finish_reason".

        Examples:
          tunecheck generate --model models/tiny --prompt "Once upon a time" --max-tokens 32
          tunecheck generate --model models/tiny --prompt "Hello" --temperature 0.8 --top-p 0.9 --seed 7 --json
          tunecheck generate --model models/tiny --input prompts.jsonl --output answers.jsonl
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt text.")
    var prompt: String?

    @Option(name: .long, help: ArgumentHelp("Prompts file (JSONL).", valueName: "prompts.jsonl"))
    var input: String?

    @Option(name: .long, help: ArgumentHelp("Output file for --input (JSONL, written atomically).", valueName: "out.jsonl"))
    var output: String?

    @Option(name: .long, help: "Most new tokens.")
    var maxTokens = 64

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, help: "Keep the smallest set of tokens whose probability reaches P (1 disables).")
    var topP: Float = 1

    @Option(name: .long, help: "Keep the K most likely tokens (0 disables).")
    var topK = 0

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64?

    @Flag(name: .long, help: "Do not stop at EOS (and never generate it).")
    var ignoreEos = false

    @Flag(name: .long, help: "Print a JSON object instead of the text.")
    var json = false

    func validate() throws {
        switch (prompt, input) {
        case (nil, nil): throw ValidationError("give --prompt TEXT or --input prompts.jsonl")
        case (.some, .some): throw ValidationError("give either --prompt or --input, not both")
        default: break
        }
        if input != nil {
            guard let output else { throw ValidationError("--input needs --output") }
            try validateOutputPath(output)
        } else if output != nil {
            throw ValidationError("--output goes with --input")
        }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must not be negative") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or positive") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard topK >= 0 else { throw ValidationError("--top-k must not be negative") }
    }

    func run() throws {
        let model = try modelOptions.loadLanguageModel()
        let generator = Generator(model: model.decoder)
        var options = GenerationOptions(maxNewTokens: maxTokens,
                                        sampling: SamplingSettings(temperature: temperature, topK: topK, topP: topP),
                                        seed: seed, stopTokenIds: model.stopTokenIds, ignoreEOS: ignoreEos)
        if let prompt {
            let result = try generator.generate(promptIds: model.tokenizer.encode(prompt), options: options)
            let fields = try Self.fields(result, tokenizer: model.tokenizer)
            if json {
                printJSON(fields)
            } else {
                print(fields["text"]?.string ?? "")
            }
            return
        }
        guard let input, let output else { return }
        let records = try JSONLines.read(URL(fileURLWithPath: input))
        var prompts: [[Int]] = []
        for record in records {
            if let ids = try record.integers("prompt_ids", path: input) {
                prompts.append(ids)
            } else if let text = record.string("prompt") {
                prompts.append(model.tokenizer.encode(text))
            } else {
                throw JSONLinesError.invalidLine(path: input, line: record.line, reason: "expected a \"prompt\" string or \"prompt_ids\" array")
            }
            guard !(prompts.last ?? []).isEmpty else {
                throw JSONLinesError.invalidLine(path: input, line: record.line, reason: "the prompt encodes to no tokens")
            }
        }
        let progress = ProgressLine("generate", total: prompts.count, unit: "prompts")
        var lines: [JSONObject] = []
        for (index, (record, promptIds)) in zip(records, prompts).enumerated() {
            // A fixed seed gives every prompt its own reproducible stream.
            if let seed { options.seed = seed &+ UInt64(index) }
            let result = try generator.generate(promptIds: promptIds, options: options)
            var fields = record.fields
            let generated = try Self.fields(result, tokenizer: model.tokenizer)
            for (key, value) in zip(generated.keys, generated.values) { fields.set(key, value) }
            lines.append(fields)
            progress.update(index + 1)
        }
        progress.finish()
        try JSONLines.write(lines, to: URL(fileURLWithPath: output))
    }

    static func fields(_ result: GenerationResult, tokenizer: Tokenizer) throws -> JSONObject {
        var fields = JSONObject()
        fields.set("prompt_ids", .from(result.promptIds))
        fields.set("ids", .from(result.ids))
        fields.set("text", .string(try result.text(tokenizer: tokenizer)))
        fields.set("finish_reason", .string(result.finishReason.rawValue))
        return fields
    }
}
