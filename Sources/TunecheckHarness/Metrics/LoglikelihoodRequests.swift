import Foundation
import TunecheckEngine
import TunecheckTokenizers

/// How lm-evaluation-harness 0.4.13 (`hf` backend, causal models) turns multiple-choice items and perplexity texts
/// into token requests, reproduced so the numbers are lm-eval's (docs/lm-eval.md has every rule with its source).
///
/// - A choice is the continuation `targetDelimiter + choice` after the context (`api/task.py`,
///   `construct_requests`). Trailing whitespace of the context moves to the front of the continuation; the whole
///   string and the (stripped) context are encoded with the tokenizer's default special tokens, and the
///   continuation's tokens are those of the whole string after the context's (`api/model.py`, `_encode_pair`). A
///   string that already starts with the prefix token's text is encoded without special tokens (`tok_encode`). An
///   empty context is the prefix token alone, the continuation encoded without special tokens.
/// - The model sees `(context + continuation)[-(maxLength + 1):]` and the continuation's tokens are scored
///   (`_loglikelihood_tokens`: left truncation, the last token is not fed).
/// - A perplexity text is encoded with default special tokens and scored in disjoint rolling windows of
///   `maxLength` tokens, the first conditioned on the prefix token (`utils.get_rolling_token_windows` with
///   `context_len=1`, `make_disjoint_window`). The prefix token is BOS, else EOS.
public enum LoglikelihoodRequests {
    /// lm-eval's `prefix_token_id`: BOS, else EOS.
    public static func prefixToken(_ tokenizer: Tokenizer) -> Int? { tokenizer.bosTokenId ?? tokenizer.eosTokenId }

    /// lm-eval's `tok_encode(string)` with the default special-token handling: none when the string already starts
    /// with the prefix token's text.
    static func encode(_ string: String, tokenizer: Tokenizer, prefixText: String?) -> [Int] {
        // Python's `startswith`: code points, not grapheme clusters.
        if let prefixText, !prefixText.isEmpty, string.unicodeScalars.starts(with: prefixText.unicodeScalars) {
            return tokenizer.encode(string, addSpecialTokens: false)
        }
        return tokenizer.encode(string, addSpecialTokens: true)
    }

    static func prefixText(_ tokenizer: Tokenizer) -> String? {
        prefixToken(tokenizer).flatMap { try? tokenizer.decode([$0]) }
    }

    /// The context and continuation tokens of one (context, continuation) request (`loglikelihood` + `_encode_pair`).
    public static func encodePair(context: String, continuation: String, tokenizer: Tokenizer) throws -> (context: [Int], continuation: [Int]) {
        let prefix = prefixText(tokenizer)
        if context.isEmpty {
            let continuationIds = tokenizer.encode(continuation, addSpecialTokens: false)
            guard let token = prefixToken(tokenizer) else {
                throw HarnessError.missingInput("an empty context needs a BOS or EOS token to condition on; the tokenizer has neither")
            }
            guard let first = continuationIds.first else { return ([token], []) }
            return first == token ? ([first], Array(continuationIds.dropFirst())) : ([token], continuationIds)
        }
        var context = context
        var continuation = continuation
        // Python's `len(context) - len(context.rstrip())`: trailing whitespace in Unicode scalars.
        let scalars = Array(context.unicodeScalars)
        var kept = scalars.count
        while kept > 0 && isPythonWhitespace(scalars[kept - 1]) { kept -= 1 }
        if kept < scalars.count {
            var head = String.UnicodeScalarView(), tail = String.UnicodeScalarView()
            head.append(contentsOf: scalars[..<kept])
            tail.append(contentsOf: scalars[kept...])
            context = String(head)
            continuation = String(tail) + continuation
        }
        let whole = encode(context + continuation, tokenizer: tokenizer, prefixText: prefix)
        let contextIds = encode(context, tokenizer: tokenizer, prefixText: prefix)
        return (contextIds, Array(whole.dropFirst(contextIds.count)))
    }

    /// One multiple-choice (or loglikelihood) request as the model sees it: left-truncated to `maxLength + 1`
    /// tokens, the continuation's tokens scored. Nil when the continuation has no tokens of its own (its text merged
    /// into the context's last token, e.g. "potass" + "ium" → "potassium"): lm-eval then sums no log-probs, 0.
    public static func request(context: [Int], continuation: [Int], maxLength: Int) throws -> TailRequest? {
        guard !continuation.isEmpty else { return nil }
        guard !context.isEmpty else { throw HarnessError.missingInput("a request needs at least one context token") }
        guard continuation.count <= maxLength else {
            throw HarnessError.missingInput("the continuation has \(continuation.count) tokens, more than the window of \(maxLength)")
        }
        return TailRequest(tokens: Array((context + continuation).suffix(maxLength + 1)), scoredCount: continuation.count)
    }

    /// The disjoint rolling windows of one text (`get_rolling_token_windows` + `make_disjoint_window` +
    /// `_loglikelihood_tokens`): every token of `tokens` is scored exactly once, the first window after `prefix`,
    /// the others after the `maxLength` tokens before them (fewer at the start of the text).
    public static func rollingWindows(_ tokens: [Int], prefix: Int, maxLength: Int) -> [TailRequest] {
        guard !tokens.isEmpty, maxLength >= 1 else { return [] }
        var windows: [TailRequest] = []
        let first = min(maxLength, tokens.count)
        windows.append(TailRequest(tokens: [prefix] + tokens[..<first], scoredCount: first))
        var predicted = first
        while predicted < tokens.count {
            let count = min(tokens.count - predicted, maxLength)
            let end = predicted + count
            // Context + continuation = tokens[end − maxLength − 1 ..< end]; the model sees all but the last.
            windows.append(TailRequest(tokens: Array(tokens[max(end - maxLength - 1, 0)..<end]), scoredCount: count))
            predicted = end
        }
        return windows
    }

    /// The window lm-eval uses for a model: its `max_length` (given), else the config's `n_positions` /
    /// `max_position_embeddings` / `n_ctx` (the engine's `maxPositions`).
    public static func maxLength(model: LanguageModel, override: Int?) -> Int { override ?? model.decoder.spec.maxPositions }

    /// Python's `str.isspace` / `re`'s `\s` on str: the characters `str.split()` and `rstrip()` treat as whitespace.
    static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// lm-eval's `count_words`: `len(re.split(r"\s+", doc))`, one more than the runs of whitespace.
    public static func wordCount(_ text: String) -> Int {
        var runs = 0
        var inRun = false
        for scalar in text.unicodeScalars {
            let space = isPythonWhitespace(scalar)
            if space && !inRun { runs += 1 }
            inRun = space
        }
        return runs + 1
    }

    /// lm-eval's `count_bytes`: UTF-8 bytes.
    public static func byteCount(_ text: String) -> Int { text.utf8.count }
}

/// Scores evalsets the lm-eval way through the engine: every request of every item packed into few forward
/// passes, split over the cores (the choices of one item share a pass).
public enum LoglikelihoodScoring {
    /// Per item, the summed log-likelihood of each choice (in choice order).
    /// `progress(done, total)` is called as items are scored, in groups of `groupSize` items (each group is its own
    /// packed batch, so a progress line moves on a long evalset).
    public static func scoreChoices(_ items: [ChoiceItem], model: LanguageModel, maxLength: Int?, path: String = "choices",
                                    groupSize: Int = 256, progress: (Int, Int) -> Void = { _, _ in }) throws -> [ChoiceScore] {
        guard items.count > groupSize else { return try scoreChoiceGroup(items, model: model, maxLength: maxLength, path: path) }
        var scores: [ChoiceScore] = []
        for start in stride(from: 0, to: items.count, by: groupSize) {
            progress(start, items.count)
            scores += try scoreChoiceGroup(Array(items[start..<min(start + groupSize, items.count)]), model: model, maxLength: maxLength, path: path)
        }
        return scores
    }

    static func scoreChoiceGroup(_ items: [ChoiceItem], model: LanguageModel, maxLength: Int?, path: String) throws -> [ChoiceScore] {
        let window = LoglikelihoodRequests.maxLength(model: model, override: maxLength)
        var requests: [TailRequest] = []
        // Per choice, its request's index (nil: no continuation tokens, log-likelihood 0).
        var requestIndex: [Int?] = []
        for item in items {
            for (index, choice) in item.choices.enumerated() {
                do {
                    let (context, continuation) = try LoglikelihoodRequests.encodePair(context: item.context, continuation: item.targetDelimiter + choice,
                                                                                        tokenizer: model.tokenizer)
                    if let request = try LoglikelihoodRequests.request(context: context, continuation: continuation, maxLength: window) {
                        requestIndex.append(requests.count)
                        requests.append(request)
                    } else {
                        requestIndex.append(nil)
                    }
                } catch let error as HarnessError {
                    throw HarnessError.invalidEvalset(path: path, line: nil, reason: "item \"\(item.id)\", choice \(index): \(error.errorDescription ?? "")")
                }
            }
        }
        let scores = try Scorer(model: model.decoder).scoreTails(requests)
        var cursor = 0
        return items.map { item in
            let sums = requestIndex[cursor..<(cursor + item.choices.count)].map { index in index.map { scores[$0].reduce(0, +) } ?? 0 }
            cursor += item.choices.count
            return ChoiceScore(id: item.id, loglikelihoods: sums, gold: item.answer, choiceLengths: item.choices.map { $0.unicodeScalars.count })
        }
    }

    /// Per text, its summed log-likelihood over the rolling windows.
    public static func scoreRolling(_ texts: [TextItem], model: LanguageModel, maxLength: Int?) throws -> [RollingScore] {
        let window = LoglikelihoodRequests.maxLength(model: model, override: maxLength)
        guard let prefix = LoglikelihoodRequests.prefixToken(model.tokenizer) else {
            throw HarnessError.missingInput("perplexity needs a BOS or EOS token to condition the first token on; the tokenizer of \(model.folder.path) has neither")
        }
        var requests: [TailRequest] = []
        var counts: [Int] = []
        for text in texts {
            let windows = LoglikelihoodRequests.rollingWindows(LoglikelihoodRequests.encode(text.text, tokenizer: model.tokenizer, prefixText: LoglikelihoodRequests.prefixText(model.tokenizer)), prefix: prefix, maxLength: window)
            requests += windows
            counts.append(windows.count)
        }
        let scores = try Scorer(model: model.decoder).scoreTails(requests)
        var cursor = 0
        return zip(texts, counts).map { text, count in
            let sum = scores[cursor..<(cursor + count)].reduce(0) { $0 + $1.reduce(0, +) }
            cursor += count
            return RollingScore(id: text.id, loglikelihood: sum, words: LoglikelihoodRequests.wordCount(text.text),
                                bytes: LoglikelihoodRequests.byteCount(text.text))
        }
    }
}

/// The summed log-likelihood of each choice of one item under one model, with what the metrics need from the item
/// (so a suite, or `merge` replaying sharded values, needs no evalset): the right answer and each choice's length in
/// characters (Unicode scalars, Python's `len`, without the delimiter).
public struct ChoiceScore: Sendable, Equatable {
    public var id: String
    public var loglikelihoods: [Double]
    public var gold: Int
    public var choiceLengths: [Int]

    public init(id: String, loglikelihoods: [Double], gold: Int, choiceLengths: [Int]) {
        self.id = id
        self.loglikelihoods = loglikelihoods
        self.gold = gold
        self.choiceLengths = choiceLengths
    }
}

/// The summed rolling log-likelihood of one text under one model, with lm-eval's word and byte counts of the text.
public struct RollingScore: Sendable, Equatable {
    public var id: String
    public var loglikelihood: Double
    public var words: Int
    public var bytes: Int

    public init(id: String, loglikelihood: Double, words: Int, bytes: Int) {
        self.id = id
        self.loglikelihood = loglikelihood
        self.words = words
        self.bytes = bytes
    }
}
