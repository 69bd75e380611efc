import Foundation
import TunecheckEngine
import TunecheckJSON
import TunecheckTokenizers

/// One tokenized SFT example: the sequence and the first position that is trained (earlier targets are masked).
public struct SFTExample: Sendable, Equatable {
    public var ids: [Int]
    /// Targets `ids[t]` with `t ≥ trainFrom` count in the loss (1 trains everything after the first token).
    public var trainFrom: Int
}

/// One tokenized DPO example.
public struct DPOExample: Sendable, Equatable {
    public var chosen: PromptResponseTokens
    public var rejected: PromptResponseTokens
    /// Reference log-probs, summed and per token, once known.
    public var reference: (chosenSum: Double, chosenMean: Double, rejectedSum: Double, rejectedMean: Double)?

    public init(chosen: PromptResponseTokens, rejected: PromptResponseTokens,
                reference: (chosenSum: Double, chosenMean: Double, rejectedSum: Double, rejectedMean: Double)? = nil) {
        self.chosen = chosen
        self.rejected = rejected
        self.reference = reference
    }

    public static func == (lhs: DPOExample, rhs: DPOExample) -> Bool {
        lhs.chosen == rhs.chosen && lhs.rejected == rhs.rejected && lhs.reference.map { [$0.0, $0.1, $0.2, $0.3] } == rhs.reference.map { [$0.0, $0.1, $0.2, $0.3] }
    }
}

/// Reads training data: a file, or an mlx_lm data folder (`train.jsonl`, optional `valid.jsonl`).
/// SFT lines are `{"text"}` or `{"prompt", "completion"}`; DPO lines `{"prompt", "chosen", "rejected"}`.
public enum TrainingData {
    public static func trainFile(_ path: String) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TrainerError.invalidData(path: path, line: nil, reason: "no such file or folder")
        }
        if isDirectory.boolValue {
            let train = URL(fileURLWithPath: path).appendingPathComponent("train.jsonl")
            guard FileManager.default.fileExists(atPath: train.path) else {
                throw TrainerError.invalidData(path: path, line: nil, reason: "the data folder has no train.jsonl")
            }
            return train
        }
        return URL(fileURLWithPath: path)
    }

    static func records(_ url: URL) throws -> [JSONLRecord] {
        do { return try JSONLines.read(url) } catch let error as JSONLinesError {
            switch error {
            case let .invalidLine(path, line, reason): throw TrainerError.invalidData(path: path, line: line, reason: reason)
            case let .unreadable(path, reason): throw TrainerError.invalidData(path: path, line: nil, reason: "cannot read: \(reason)")
            case let .empty(path): throw TrainerError.invalidData(path: path, line: nil, reason: "no training examples (the file is empty)")
            }
        }
    }

    public static func sft(_ url: URL, tokenizer: Tokenizer, maskPrompt: Bool, appendEOS: Bool, maxLength: Int) throws -> [SFTExample] {
        try records(url).map { record in
            var ids: [Int]
            var trainFrom = 1
            if let text = record.string("text") {
                ids = tokenizer.encode(text)
            } else if let prompt = record.string("prompt"), let completion = record.string("completion") {
                let tokens = PromptResponseTokens(tokenizer: tokenizer, prompt: prompt, response: completion)
                ids = tokens.ids
                if maskPrompt { trainFrom = max(tokens.promptLength, 1) }
            } else {
                throw TrainerError.invalidData(path: url.path, line: record.line,
                                               reason: "expected {\"text\"} or {\"prompt\", \"completion\"} strings")
            }
            if appendEOS, let eos = tokenizer.eosTokenId, ids.last != eos { ids.append(eos) }
            if ids.count > maxLength { ids = Array(ids.prefix(maxLength)) }
            guard ids.count >= 2, trainFrom < ids.count else {
                throw TrainerError.invalidData(path: url.path, line: record.line,
                                               reason: "nothing to train on after tokenizing (and truncating to max_seq_length \(maxLength))")
            }
            return SFTExample(ids: ids, trainFrom: trainFrom)
        }
    }

    public static func dpo(_ url: URL, tokenizer: Tokenizer, appendEOS: Bool, maxLength: Int) throws -> [DPOExample] {
        try records(url).map { record in
            guard let prompt = record.string("prompt"), let chosen = record.string("chosen"), let rejected = record.string("rejected") else {
                throw TrainerError.invalidData(path: url.path, line: record.line, reason: "expected \"prompt\", \"chosen\" and \"rejected\" strings")
            }
            func tokens(_ response: String) throws -> PromptResponseTokens {
                var result = PromptResponseTokens(tokenizer: tokenizer, prompt: prompt, response: response, appendEOS: appendEOS)
                if result.ids.count > maxLength { result.ids = Array(result.ids.prefix(maxLength)) }
                guard result.promptLength > 0, result.responseLength > 0 else {
                    throw TrainerError.invalidData(path: url.path, line: record.line,
                                                   reason: "the prompt or response is empty after tokenizing (and truncating to max_seq_length \(maxLength))")
                }
                return result
            }
            return DPOExample(chosen: try tokens(chosen), rejected: try tokens(rejected))
        }
    }

    /// Reads precomputed summed reference log-probs (`reference_chosen_logps`, `reference_rejected_logps` per line, in
    /// the data's order).
    public static func referenceLogprobs(_ url: URL, count: Int) throws -> [(chosenSum: Double, rejectedSum: Double)] {
        let lines = try records(url)
        guard lines.count == count else {
            throw TrainerError.invalidData(path: url.path, line: nil, reason: "\(lines.count) reference lines for \(count) training examples")
        }
        return try lines.map { record in
            guard let chosen = record.fields["reference_chosen_logps"]?.double, let rejected = record.fields["reference_rejected_logps"]?.double else {
                throw TrainerError.invalidData(path: url.path, line: record.line, reason: "expected \"reference_chosen_logps\" and \"reference_rejected_logps\" numbers")
            }
            return (chosen, rejected)
        }
    }
}
