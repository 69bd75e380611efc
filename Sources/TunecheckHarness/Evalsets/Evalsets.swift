import Foundation
import TunecheckEngine
import TunecheckJSON

/// A prompt for the generation suites: `{"id", "prompt", ...}`.
public struct PromptItem: Sendable, Equatable {
    public var id: String
    public var prompt: String
}

/// A preference pair: `{"id", "prompt", "chosen", "rejected"}` (the TRL / mlx-lm-lora DPO format).
public struct PairItem: Sendable, Equatable {
    public var id: String
    public var prompt: String
    public var chosen: String
    public var rejected: String
}

/// A reference text for drift and perplexity: `{"id", "text"}`.
public struct TextItem: Sendable, Equatable {
    public var id: String
    public var text: String
}

/// An answer produced elsewhere (mlx_lm, vLLM, an API): `{"id", "prompt", "answer", "checkpoint"?}`.
public struct AnswerItem: Sendable, Equatable {
    public var id: String
    public var prompt: String
    public var answer: String
    public var checkpoint: String?
}

/// Reads evalset JSONL files, checking required fields and unique ids. A line without an `id` gets `line-N`.
public enum EvalsetLoader {
    public static func prompts(_ url: URL) throws -> [PromptItem] {
        try load(url, required: ["prompt"]) { id, record in
            PromptItem(id: id, prompt: record.string("prompt")!)
        }
    }

    public static func pairs(_ url: URL) throws -> [PairItem] {
        try load(url, required: ["prompt", "chosen", "rejected"]) { id, record in
            PairItem(id: id, prompt: record.string("prompt")!, chosen: record.string("chosen")!, rejected: record.string("rejected")!)
        }
    }

    public static func texts(_ url: URL) throws -> [TextItem] {
        try load(url, required: ["text"]) { id, record in
            TextItem(id: id, text: record.string("text")!)
        }
    }

    public static func answers(_ url: URL) throws -> [AnswerItem] {
        try load(url, required: ["prompt", "answer"], uniqueIdsPerField: "checkpoint") { id, record in
            AnswerItem(id: id, prompt: record.string("prompt")!, answer: record.string("answer")!, checkpoint: record.string("checkpoint"))
        }
    }

    /// Reads records, checks that every `required` field is a string and that ids are unique (per value of
    /// `uniqueIdsPerField` when given: the same prompt id may appear once per checkpoint).
    static func load<Item>(_ url: URL, required: [String], uniqueIdsPerField: String? = nil,
                           _ make: (String, JSONLRecord) -> Item) throws -> [Item] {
        let records: [JSONLRecord]
        do { records = try JSONLines.read(url) } catch let error as JSONLinesError {
            switch error {
            case let .invalidLine(path, line, reason): throw HarnessError.invalidEvalset(path: path, line: line, reason: reason)
            case let .unreadable(path, reason): throw HarnessError.invalidEvalset(path: path, line: nil, reason: "cannot read: \(reason)")
            case let .empty(path): throw HarnessError.invalidEvalset(path: path, line: nil, reason: "no records (the file is empty)")
            }
        }
        var seen: [String: Int] = [:]
        var items: [Item] = []
        for record in records {
            for field in required {
                guard let value = record.fields[field] else {
                    throw HarnessError.invalidEvalset(path: url.path, line: record.line, reason: "missing \"\(field)\"")
                }
                guard value.string != nil else {
                    throw HarnessError.invalidEvalset(path: url.path, line: record.line, reason: "\"\(field)\" must be a string")
                }
            }
            let id: String
            switch record.fields["id"] {
            case .some(.string(let text)): id = text
            case .some(.number(let number, true)): id = String(Int(number))
            case .none, .some(.null): id = "line-\(record.line)"
            default: throw HarnessError.invalidEvalset(path: url.path, line: record.line, reason: "\"id\" must be a string or an integer")
            }
            let scope = uniqueIdsPerField.flatMap { record.string($0) } ?? ""
            let key = scope + "\u{0}" + id
            if let first = seen[key] {
                throw HarnessError.invalidEvalset(path: url.path, line: record.line, reason: "duplicate id \"\(id)\" (first on line \(first))")
            }
            seen[key] = record.line
            items.append(make(id, record))
        }
        return items
    }
}
