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

/// A multiple-choice item: `{"id", "context", "choices": ["...", ...], "answer": INDEX, "target_delimiter"?}`, scored
/// as lm-eval's `multiple_choice` output type: each choice is the continuation `targetDelimiter + choice` after
/// `context` (see `LoglikelihoodRequests`).
public struct ChoiceItem: Sendable, Equatable {
    public var id: String
    public var context: String
    public var choices: [String]
    /// Index of the right choice.
    public var answer: Int
    /// Put between the context and each choice; lm-eval's default is one space.
    public var targetDelimiter: String

    public init(id: String, context: String, choices: [String], answer: Int, targetDelimiter: String = " ") {
        self.id = id
        self.context = context
        self.choices = choices
        self.answer = answer
        self.targetDelimiter = targetDelimiter
    }
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

    /// Multiple-choice items. Every problem names the file and line: a missing or non-string context, choices that
    /// are missing, not a list, empty or hold a non-string, a missing or non-integer answer, an answer index out of
    /// range, a non-string target delimiter.
    public static func choices(_ url: URL) throws -> [ChoiceItem] {
        try load(url, required: ["context"]) { id, record -> ChoiceItem in
            func fail(_ reason: String) -> HarnessError { .invalidEvalset(path: url.path, line: record.line, reason: reason) }
            guard let value = record.fields["choices"] else { throw fail("missing \"choices\"") }
            guard let list = value.array else { throw fail("\"choices\" must be a list of strings") }
            guard !list.isEmpty else { throw fail("\"choices\" is empty: an item needs at least one choice") }
            var choices: [String] = []
            for (index, element) in list.enumerated() {
                guard let text = element.string else { throw fail("choice \(index) is not a string (\"choices\" must be a list of strings)") }
                choices.append(text)
            }
            guard let answerValue = record.fields["answer"], !answerValue.isNull else { throw fail("missing \"answer\" (the index of the right choice)") }
            guard case .number(let number, true) = answerValue, let answer = Int(exactly: number) else {
                throw fail("\"answer\" must be an integer index into \"choices\"")
            }
            guard choices.indices.contains(answer) else {
                throw fail("\"answer\" \(answer) is out of range: \(choices.count) choice(s), indices 0...\(choices.count - 1)")
            }
            var delimiter = " "
            if let value = record.fields["target_delimiter"], !value.isNull {
                guard let text = value.string else { throw fail("\"target_delimiter\" must be a string") }
                delimiter = text
            }
            return ChoiceItem(id: id, context: record.string("context")!, choices: choices, answer: answer, targetDelimiter: delimiter)
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
                           _ make: (String, JSONLRecord) throws -> Item) throws -> [Item] {
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
            items.append(try make(id, record))
        }
        return items
    }
}
