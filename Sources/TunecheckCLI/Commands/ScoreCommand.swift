import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckJSON
import TunecheckTokenizers

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Per-token log-probabilities of texts, responses and preference pairs.",
        discussion: """
        Input lines (JSONL), extra fields are kept:
          {"text": ...} or {"ids": [...]}     adds "ids", "token_logprobs" (n-1 values: log p(ids[i+1] | ids[..i])),
                                              "sum_logprob", "mean_logprob"
          {"prompt": ..., "response": ...}    the same over the response tokens only, plus "prompt_len"
                                              (prompt encoded with special tokens, response without, as TRL does)
          {"prompt", "chosen", "rejected"}    "chosen" and "rejected" objects of that kind, plus "gap_sum" and
                                              "gap_mean" (chosen minus rejected)
        Sequences are packed into batches of --token-budget tokens (no padding is computed).

        Example:
          tunecheck score --model models/tiny --input evalsets/pairs.jsonl --output scored.jsonl
        """
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var files: JSONLFileOptions

    @Flag(name: .long, help: "Append the tokenizer's EOS to each response (TRL's DPO does).")
    var appendEos = false

    @Option(name: .long, help: "Most tokens packed into one forward pass.")
    var tokenBudget = 2048

    func validate() throws {
        guard tokenBudget > 0 else { throw ValidationError("--token-budget must be positive") }
    }

    /// How one input line is turned into sequences and back into output fields.
    enum Request {
        case sequence(ids: [Int])
        case response(PromptResponseTokens)
        case pair(PreferencePairTokens)
    }

    func run() throws {
        let model = try modelOptions.loadLanguageModel()
        let records = try JSONLines.read(files.inputURL)
        let requests = try records.map { try request(for: $0, tokenizer: model.tokenizer, vocabularySize: model.decoder.spec.vocabularySize) }

        // Every sequence of every request, scored in packed batches.
        var sequences: [[Int]] = []
        for request in requests {
            switch request {
            case .sequence(let ids): sequences.append(ids)
            case .response(let tokens): sequences.append(tokens.ids)
            case .pair(let pair): sequences += [pair.chosen.ids, pair.rejected.ids]
            }
        }
        let scorer = Scorer(model: model.decoder, tokenBudget: tokenBudget)
        let progress = ProgressLine("score", total: sequences.count, unit: "seqs")
        var scores: [[Double]] = []
        scores.reserveCapacity(sequences.count)
        let chunk = 64
        for start in stride(from: 0, to: sequences.count, by: chunk) {
            scores += try scorer.score(Array(sequences[start..<min(start + chunk, sequences.count)]))
            progress.update(scores.count)
        }
        progress.finish()

        var next = 0
        var output: [JSONObject] = []
        for (record, request) in zip(records, requests) {
            var fields = record.fields
            switch request {
            case .sequence(let ids):
                Self.add(Self.fields(ids: ids, span: SpanScore(tokenLogprobs: scores[next]), promptLength: nil), to: &fields)
                next += 1
            case .response(let tokens):
                Self.add(Self.fields(tokens, scores[next]), to: &fields)
                next += 1
            case .pair(let pair):
                let spans = PairSpanScores(chosen: SpanScore(sequenceLogprobs: scores[next], promptLength: pair.chosen.promptLength),
                                           rejected: SpanScore(sequenceLogprobs: scores[next + 1], promptLength: pair.rejected.promptLength))
                fields.set("chosen", .object(Self.fields(pair.chosen, scores[next])))
                fields.set("rejected", .object(Self.fields(pair.rejected, scores[next + 1])))
                fields.set("gap_sum", .from(spans.gapSum))
                fields.set("gap_mean", .from(spans.gapMean))
                next += 2
            }
            output.append(fields)
        }
        try JSONLines.write(output, to: files.outputURL)
    }

    func request(for record: JSONLRecord, tokenizer: Tokenizer, vocabularySize: Int) throws -> Request {
        let path = files.input
        func context() -> String { "\(path):\(record.line)" }
        if let prompt = record.string("prompt") {
            if let chosen = record.string("chosen"), let rejected = record.string("rejected") {
                return .pair(try PreferencePairTokens(tokenizer: tokenizer, prompt: prompt, chosen: chosen, rejected: rejected,
                                                      appendEOS: appendEos, context: context()))
            }
            if let response = record.string("response") {
                let tokens = PromptResponseTokens(tokenizer: tokenizer, prompt: prompt, response: response, appendEOS: appendEos)
                try tokens.validate(context: context())
                return .response(tokens)
            }
            throw JSONLinesError.invalidLine(path: path, line: record.line,
                                             reason: "a \"prompt\" needs a \"response\" string, or \"chosen\" and \"rejected\" strings")
        }
        let ids: [Int]
        if let text = record.string("text") {
            ids = tokenizer.encode(text)
        } else if let given = try record.integers("ids", path: path) {
            if let outside = given.first(where: { $0 >= vocabularySize }) {
                throw JSONLinesError.invalidLine(path: path, line: record.line,
                                                 reason: "token id \(outside) is outside the vocabulary (0..<\(vocabularySize))")
            }
            ids = given
        } else {
            throw JSONLinesError.invalidLine(path: path, line: record.line,
                                             reason: "expected \"text\", \"ids\", \"prompt\"+\"response\" or \"prompt\"+\"chosen\"+\"rejected\"")
        }
        guard ids.count >= 2 else {
            throw JSONLinesError.invalidLine(path: path, line: record.line, reason: "the sequence has \(ids.count) token(s); scoring needs at least 2")
        }
        return .sequence(ids: ids)
    }

    static func fields(_ tokens: PromptResponseTokens, _ sequenceLogprobs: [Double]) -> JSONObject {
        fields(ids: tokens.ids, span: SpanScore(sequenceLogprobs: sequenceLogprobs, promptLength: tokens.promptLength), promptLength: tokens.promptLength)
    }

    static func fields(ids: [Int], span: SpanScore, promptLength: Int?) -> JSONObject {
        var result = JSONObject()
        result.set("ids", .from(ids))
        if let promptLength { result.set("prompt_len", .from(promptLength)) }
        result.set("token_logprobs", .from(span.tokenLogprobs))
        result.set("sum_logprob", .from(span.sum))
        result.set("mean_logprob", .from(span.mean))
        return result
    }

    static func add(_ extra: JSONObject, to fields: inout JSONObject) {
        for (key, value) in zip(extra.keys, extra.values) { fields.set(key, value) }
    }
}
