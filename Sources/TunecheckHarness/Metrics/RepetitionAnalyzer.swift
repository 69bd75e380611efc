import Foundation

/// An immediate repetition of a unit (or, for `.sentenceRecurrence` and `.ngram`, a recurring unit) in an answer.
public struct RepeatedRun: Sendable, Equatable {
    /// Which detector found it.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// A unit of word tokens (1–32 tokens) repeated immediately: `hormonal hormonal hormonal`, `I think that I think that`.
        case words
        /// A unit of 1–4 whole sentences repeated immediately (compared on lowercased words, punctuation ignored).
        case sentences
        /// The same sentence (three or more words) occurring several times anywhere; `range` spans first to last occurrence.
        case sentenceRecurrence = "sentence_recurrence"
        /// A loop of punctuation / symbols / emoji without letters or digits: `!!!!`, `? ? ? ?`, `😂😂😂`.
        case punctuation
        /// A loop of layout characters or digits: `-----`, `=====`, `|---|---|`, `0, 0, 0, `, long runs of spaces.
        case layout
        /// A loop of letters with no whitespace in it: `abababab`, `hormonalhormonal`, `aaaaaaa`.
        case characters
        /// A stretch of whitespace with many newlines (`repetitions` = newline count).
        case newlines
        /// The most repeated word n-gram (`repetitions` = occurrences, `range` = first occurrence); not a run,
        /// it is what the ratio checks quote.
        case ngram
    }

    /// The unit as written in the answer (first copy, original case).
    public var unit: String
    /// Words in the unit: tokens containing a letter (`step 1,` is one word; `!!` is zero).
    public var unitWords: Int
    /// How many copies in a row (for `.sentenceRecurrence`/`.ngram`: occurrences; `.newlines`: newline count).
    public var repetitions: Int
    /// `Character` offsets in the answer of the whole run (all copies).
    public var range: Range<Int>
    public var kind: Kind

    public init(unit: String, unitWords: Int, repetitions: Int, range: Range<Int>, kind: Kind = .words) {
        self.unit = unit
        self.unitWords = unitWords
        self.repetitions = repetitions
        self.range = range
        self.kind = kind
    }
}

/// The repetition measurements of one answer. All character offsets (`RepeatedRun.range`, `highlights`) are
/// offsets in Swift `Character`s (extended grapheme clusters) of the answer: offset k is
/// `text.index(text.startIndex, offsetBy: k)`. An emoji with modifiers or `\r\n` counts as one.
public struct RepetitionAnalysis: Sendable, Equatable {
    /// seq-rep-n over the answer's words, n = 1...4 (index 0 is seq-rep-1): 1 − |unique n-grams| / |n-grams|;
    /// 0 when the answer has fewer than n words. Words are the word tokens holding a letter or digit
    /// (lowercased; punctuation split off and left out; each CJK character a word).
    public var seqRepWords: [Double]
    /// seq-rep-n over model token ids, n = 1...4, when ids were given.
    public var seqRepTokens: [Double]?
    /// distinct-n over the same words, n = 1...4: |unique n-grams| / |n-grams|; 1 when there are no n-grams.
    public var distinctWords: [Double]
    /// UTF-8 bytes / zlib-deflated bytes (level 6, zlib's default); 0 for an empty answer. Only judged on answers of at least
    /// `RepetitionThresholds.minBytesForCompression` bytes.
    public var compressionRatio: Double
    /// The run that decides the verdict: the worst run that breaks the thresholds `analyze` was given (the
    /// one covering the most characters), or, when none does, the run with the most repetitions.
    public var longestRun: RepeatedRun?
    /// Empty or whitespace only.
    public var isEmpty: Bool
    /// One token repeated and nothing else: all model token ids equal (three or more), or four or more
    /// identical word tokens (words, not punctuation: a punctuation-only answer is judged by the loop detectors).
    public var isSingleTokenRepeated: Bool
    /// 0 = clean … 1 = fully degenerate, for charts: 1 for empty or single-token answers, otherwise the largest of
    /// - seq-rep-4 (words; model tokens when given),
    /// - the share of the answer that is redundant copies in its worst run (a run of r copies covering a
    ///   fraction f of the answer's characters contributes f·(r − 1)/r; runs of fewer than 3 copies and
    ///   `.ngram`/`.sentenceRecurrence` do not count),
    /// - `repeatedFraction`,
    /// - (compression ratio − 2) / 8 for answers of 256 bytes or more (prose ≈ 0, ratio 6 = 0.5, ratio 10+ = 1),
    /// clamped to 0...1. Threshold-independent; prose scores below 0.3, long structured data (JSON records,
    /// SQL inserts) up to ≈ 0.45, loops above 0.5.
    public var score: Double
    /// Flagged spans (character offsets as above) under the thresholds given to `analyze`; empty when the
    /// answer passes.
    public var highlights: [HighlightSpan]

    /// Words in the answer, as counted for `seqRepWords` (the length the ratio checks compare with `minTokensForRatios`).
    public var wordTokenCount: Int
    /// Model tokens, when ids were given.
    public var modelTokenCount: Int?
    /// UTF-8 bytes of the answer.
    public var byteCount: Int
    /// `Character`s in the answer.
    public var characterCount: Int
    /// The candidate runs `judge` checks against its thresholds (the strongest few of each kind).
    public var runs: [RepeatedRun]
    /// Fraction of the answer's words that sit inside an immediate repetition of any unit (two or more copies
    /// in a row): ≈ 0 for prose, 1 for a stutter like `step 1, step 1, step 1, step 2, step 2, step 2, ...`.
    public var repeatedFraction: Double
    /// The most repeated word n-gram (n = 2...4, occurring twice or more, covering the most words; kind `.ngram`),
    /// quoted by the ratio checks.
    public var mostRepeatedNGram: RepeatedRun?
}

public enum RepetitionAnalyzer {
    /// Measures `text` (and `tokenIds`, the model's token ids for it, when known). `thresholds` only decide
    /// `longestRun` and `highlights`; every number is threshold-independent, so `judge` can apply others.
    public static func analyze(_ text: String, tokenIds: [Int]? = nil, thresholds: RepetitionThresholds = .default) -> RepetitionAnalysis {
        let scan = RepetitionScan(text)
        let tokens = scan.tokens
        // n-gram statistics run over words only (tokens with a letter or digit): punctuation is split off and not
        // counted, so table rules, leaders and code braces do not read as repetition (their loops are the
        // character detector's job).
        let wordPositions = tokens.indices.filter { tokens[$0].isWordLike }
        let wordIds = wordPositions.map { tokens[$0].id }
        let wordStats = RepetitionScan.ngramStats(wordIds)
        let tokenStats = tokenIds.map { RepetitionScan.ngramStats($0) }

        let isEmpty = tokens.isEmpty
        var singleRepeated = false
        if let ids = tokenIds, ids.count >= 3, ids.allSatisfy({ $0 == ids[0] }), !isEmpty { singleRepeated = true }
        if tokens.count >= 4, tokens[0].isWordLike, tokens.allSatisfy({ $0.id == tokens[0].id }) { singleRepeated = true }

        var collector = RunCollector()
        let repeatedFraction = wordRuns(scan, &collector)
        let recurrence = sentenceRuns(scan, &collector)
        characterRuns(scan, &collector)
        newlineRuns(scan, &collector)
        let runs = collector.selected()

        var top4: RepeatedRun?
        var top4Key: [Int] = []
        if let t = wordStats.top {
            let r = tokens[wordPositions[t.start]].start..<tokens[wordPositions[t.start + t.n - 1]].end
            top4Key = Array(wordIds[t.start..<(t.start + t.n)])
            top4 = RepeatedRun(unit: scan.text(r), unitWords: wordPositions[t.start..<(t.start + t.n)].filter { tokens[$0].hasLetter }.count,
                               repetitions: t.count, range: r, kind: .ngram)
        }

        let analysisCompression = RepetitionScan.compressionRatio(scan.bytes)
        var analysis = RepetitionAnalysis(
            seqRepWords: wordStats.seqRep, seqRepTokens: tokenStats?.seqRep, distinctWords: wordStats.distinct,
            compressionRatio: analysisCompression, longestRun: nil, isEmpty: isEmpty,
            isSingleTokenRepeated: singleRepeated, score: 0, highlights: [], wordTokenCount: wordIds.count,
            modelTokenCount: tokenIds?.count, byteCount: scan.bytes.count, characterCount: scan.characterCount,
            runs: runs, repeatedFraction: repeatedFraction, mostRepeatedNGram: top4)

        // Score (threshold-independent).
        if isEmpty || singleRepeated {
            analysis.score = 1
        } else {
            var s = max(wordStats.seqRep[3], tokenStats?.seqRep[3] ?? 0)
            s = max(s, repeatedFraction)
            if scan.bytes.count >= 256 { s = max(s, (analysisCompression - 2) / 8) }
            let total = Double(max(scan.characterCount, 1))
            for run in runs where run.repetitions >= 3 && run.kind != .ngram && run.kind != .sentenceRecurrence {
                let covered = Double(run.range.count) / total
                s = max(s, covered * Double(run.repetitions - 1) / Double(run.repetitions))
            }
            analysis.score = min(1, max(0, s))
        }

        // Verdict-dependent parts: longest run and highlights.
        let mild = thresholds.limits(.mild)
        let violating = runs.filter { violation($0, mild) != nil }.sorted(by: moreSevere)
        analysis.longestRun = violating.first ?? runs.filter { $0.kind != .ngram }.max {
            ($0.repetitions, $0.range.count) < ($1.repetitions, $1.range.count)
        }
        var spans: [HighlightSpan] = []
        func addSpan(_ r: Range<Int>, _ label: String) {
            guard spans.count < 64, !r.isEmpty, !spans.contains(where: { $0.start < r.upperBound && r.lowerBound < $0.end }) else { return }
            spans.append(HighlightSpan(start: r.lowerBound, end: r.upperBound, label: label))
        }
        if isEmpty {
            // nothing to highlight
        } else if singleRepeated && thresholds.failOnSingleTokenRepeated {
            addSpan(0..<scan.characterCount, "single token repeated")
        }
        for run in violating {
            if run.kind == .sentenceRecurrence, let rec = recurrence {
                for r in rec.occurrences { addSpan(r, "sentence ×\(run.repetitions)") }
            } else {
                addSpan(run.range, "\(quote(run.unit, limit: 30)) ×\(run.repetitions)")
            }
        }
        if spans.isEmpty, judge(analysis, text: text, limits: mild) != nil, let top = top4 {
            // A ratio check failed without a run: highlight the occurrences of the most repeated n-gram.
            let n = top4Key.count
            var i = 0
            while i + n <= wordIds.count && spans.count < 64 {
                if wordIds[i..<(i + n)].elementsEqual(top4Key) {
                    var j = i + n
                    while j + n <= wordIds.count && wordIds[j..<(j + n)].elementsEqual(top4Key) { j += n }
                    addSpan(tokens[wordPositions[i]].start..<tokens[wordPositions[j - 1]].end, "\(quote(top.unit, limit: 30)) ×\(top.repetitions)")
                    i = j
                } else { i += 1 }
            }
        }
        analysis.highlights = spans.sorted { $0.start < $1.start }
        return analysis
    }

    /// nil when the answer passes; otherwise the failure: `message` is one line quoting the offending span
    /// (e.g. `repeated "hormonal" ×12 (seq-rep-4 0.89)`), `detail` the numbers and the full span.
    /// Checks in order: empty, single token repeated, runs (worst first), seq-rep-4 on words, repeated fraction,
    /// seq-rep-4 on tokens, distinct-2, compression ratio.
    /// This is the mild level (today's limits, `max_*`); `classify` also applies the severe level.
    public static func judge(_ analysis: RepetitionAnalysis, text: String, thresholds: RepetitionThresholds) -> (message: String, detail: String)? {
        judge(analysis, text: text, limits: thresholds.limits(.mild))
    }

    /// `judge` at one level of limits; the rule in `detail` names that level's key (`max_repeated_word_run 3`,
    /// `severe_repeated_word_run 5`).
    static func judge(_ analysis: RepetitionAnalysis, text: String, limits t: RepetitionLimits) -> (message: String, detail: String)? {
        let a = analysis
        let sr4 = String(format: "%.2f", a.seqRepWords.count > 3 ? a.seqRepWords[3] : 0)
        if a.isEmpty {
            guard t.failOnEmpty else { return nil }
            let what = text.isEmpty ? "empty answer" : "empty answer (whitespace only, \(a.characterCount) characters)"
            return (what, details(a, text: text, rule: "fail_on_empty", span: nil))
        }
        if a.isSingleTokenRepeated && t.failOnSingleTokenRepeated {
            let best = a.runs.filter { $0.kind != .ngram }.max { $0.repetitions < $1.repetitions }
            let unit = best?.unit ?? String(text.trimmingCharacters(in: .whitespacesAndNewlines).prefix(40))
            let count = a.modelTokenCount ?? best?.repetitions ?? a.wordTokenCount
            return ("single token repeated: \(quote(unit)) ×\(count)",
                    details(a, text: text, rule: "fail_on_single_token_repeated", span: 0..<a.characterCount))
        }
        if let worst = a.runs.filter({ violation($0, t) != nil }).sorted(by: moreSevere).first {
            let rule = violation(worst, t)!
            let message: String
            switch worst.kind {
            case .sentenceRecurrence:
                message = "sentence repeated ×\(worst.repetitions): \(quote(worst.unit)) (seq-rep-4 \(sr4))"
            case .punctuation, .layout, .characters:
                message = "repeated \(quote(worst.unit)) ×\(worst.repetitions) (character loop, \(worst.range.count) characters)"
            case .newlines:
                message = "repeated \(quote(worst.unit)) ×\(worst.repetitions) (\(worst.repetitions) newlines in a row)"
            case .words, .sentences, .ngram:
                message = "repeated \(quote(worst.unit)) ×\(worst.repetitions) (seq-rep-4 \(sr4))"
            }
            return (message, details(a, text: text, rule: rule, span: worst.range, run: worst))
        }
        let quoted = a.mostRepeatedNGram.map { "; most repeated \(quote($0.unit)) ×\($0.repetitions)" } ?? ""
        let span = a.mostRepeatedNGram?.range
        if a.wordTokenCount >= t.minTokensForRatios, a.seqRepWords[3] > t.seqRep4Words {
            return ("seq-rep-4 \(sr4) > \(fmt(t.seqRep4Words)) (words)\(quoted)",
                    details(a, text: text, rule: "\(t.key(.maxSeqRep4Words)) \(fmt(t.seqRep4Words))", span: span, run: a.mostRepeatedNGram))
        }
        if a.wordTokenCount >= t.minTokensForRatios, a.repeatedFraction > t.repeatedFraction {
            let run = a.runs.filter { $0.kind == .words }.max { ($0.repetitions, $0.range.count) < ($1.repetitions, $1.range.count) }
            let quotedRun = run.map { "; e.g. \(quote($0.unit)) ×\($0.repetitions)" } ?? quoted
            return ("\(Int((a.repeatedFraction * 100).rounded()))% of words in immediate repeats > \(Int((t.repeatedFraction * 100).rounded()))%\(quotedRun)",
                    details(a, text: text, rule: "\(t.key(.maxRepeatedFraction)) \(fmt(t.repeatedFraction))", span: run?.range, run: run))
        }
        if let tokenRep = a.seqRepTokens, let n = a.modelTokenCount, n >= t.minTokensForRatios, tokenRep[3] > t.seqRep4Tokens {
            return ("seq-rep-4 \(fmt(tokenRep[3])) > \(fmt(t.seqRep4Tokens)) (model tokens)\(quoted)",
                    details(a, text: text, rule: "\(t.key(.maxSeqRep4Tokens)) \(fmt(t.seqRep4Tokens))", span: span, run: a.mostRepeatedNGram))
        }
        if let minD2 = t.distinct2, a.wordTokenCount >= t.minTokensForRatios, a.distinctWords[1] < minD2 {
            return ("distinct-2 \(fmt(a.distinctWords[1])) < \(fmt(minD2))\(quoted)",
                    details(a, text: text, rule: "\(t.key(.minDistinct2)) \(fmt(minD2))", span: span, run: a.mostRepeatedNGram))
        }
        if a.byteCount >= t.minBytesForCompression, a.compressionRatio > t.compressionRatio {
            return ("compression ratio \(fmt(a.compressionRatio)) > \(fmt(t.compressionRatio))\(quoted)",
                    details(a, text: text, rule: "\(t.key(.maxCompressionRatio)) \(fmt(t.compressionRatio))", span: span, run: a.mostRepeatedNGram))
        }
        return nil
    }

    /// The analysis as named numbers: `seq_rep_{1..4}_words`, `seq_rep_{1..4}_tokens` (when ids were given),
    /// `distinct_{1..4}`, `compression_ratio`, `repeated_fraction`, `longest_run` (repetitions, 0 if none), `longest_run_unit_words`,
    /// `empty`, `single_token_repeated` (0/1), `word_tokens`, `repetition_score`.
    public static func metrics(_ analysis: RepetitionAnalysis) -> [Metric] {
        var out: [Metric] = []
        for (i, v) in analysis.seqRepWords.enumerated() { out.append(Metric("seq_rep_\(i + 1)_words", v)) }
        if let t = analysis.seqRepTokens {
            for (i, v) in t.enumerated() { out.append(Metric("seq_rep_\(i + 1)_tokens", v)) }
        }
        for (i, v) in analysis.distinctWords.enumerated() { out.append(Metric("distinct_\(i + 1)", v)) }
        out.append(Metric("compression_ratio", analysis.compressionRatio))
        out.append(Metric("repeated_fraction", analysis.repeatedFraction))
        out.append(Metric("longest_run", Double(analysis.longestRun?.repetitions ?? 0)))
        out.append(Metric("longest_run_unit_words", Double(analysis.longestRun?.unitWords ?? 0)))
        out.append(Metric("empty", analysis.isEmpty ? 1 : 0))
        out.append(Metric("single_token_repeated", analysis.isSingleTokenRepeated ? 1 : 0))
        out.append(Metric("word_tokens", Double(analysis.wordTokenCount)))
        out.append(Metric("repetition_score", analysis.score))
        return out
    }

    // MARK: rules

    /// The rule a run breaks (for the detail), or nil.
    static func violation(_ run: RepeatedRun, _ t: RepetitionLimits) -> String? {
        switch run.kind {
        case .words, .sentences:
            if run.unitWords == 1 {
                return run.repetitions > t.repeatedWordRun ? "\(t.key(.maxRepeatedWordRun)) \(t.repeatedWordRun)" : nil
            }
            return run.unitWords >= 2 && run.repetitions > t.repeatedUnitRun ? "\(t.key(.maxRepeatedUnitRun)) \(t.repeatedUnitRun)" : nil
        case .sentenceRecurrence:
            return run.repetitions > t.sentenceRepeats ? "\(t.key(.maxSentenceRepeats)) \(t.sentenceRepeats)" : nil
        case .punctuation:
            return run.repetitions > t.punctuationRun ? "\(t.key(.maxPunctuationRun)) \(t.punctuationRun)" : nil
        case .layout:
            return run.repetitions >= 3 && run.range.count > t.layoutRunCharacters ? "\(t.key(.maxLayoutRunCharacters)) \(t.layoutRunCharacters)" : nil
        case .characters:
            return run.repetitions >= 3 && run.range.count > t.characterLoopLength ? "\(t.key(.maxCharacterLoopLength)) \(t.characterLoopLength)" : nil
        case .newlines:
            return run.repetitions > t.consecutiveNewlines ? "\(t.key(.maxConsecutiveNewlines)) \(t.consecutiveNewlines)" : nil
        case .ngram:
            return nil
        }
    }

    /// Worse = covers more characters; word and sentence runs get a 15% bonus, so the same loop seen by the
    /// character detector (shifted by a character or two) is quoted as words.
    static func moreSevere(_ a: RepeatedRun, _ b: RepeatedRun) -> Bool {
        func weight(_ r: RepeatedRun) -> Double { Double(r.range.count) * (r.kind == .words || r.kind == .sentences ? 1.15 : 1) }
        if weight(a) != weight(b) { return weight(a) > weight(b) }
        if a.repetitions != b.repetitions { return a.repetitions > b.repetitions }
        let order = RepeatedRun.Kind.allCases
        return order.firstIndex(of: a.kind)! < order.firstIndex(of: b.kind)!
    }

    // MARK: formatting

    static func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

    /// `"unit"` on one line: control characters escaped, whitespace collapsed, at most `limit` characters.
    static func quote(_ s: String, limit: Int = 60) -> String {
        var out = ""
        var count = 0
        var truncated = false
        for ch in s {
            let piece: String
            switch ch {
            case "\n", "\r\n": piece = "\\n"
            case "\r": piece = "\\r"
            case "\t": piece = "\\t"
            default: piece = ch.isWhitespace ? " " : String(ch)
            }
            if count >= limit { truncated = true; break }
            out += piece
            count += 1
        }
        return "\"" + out + (truncated ? "…" : "") + "\""
    }

    static func details(_ a: RepetitionAnalysis, text: String, rule: String, span: Range<Int>?, run: RepeatedRun? = nil) -> String {
        func list(_ v: [Double]) -> String { v.map(fmt).joined(separator: " ") }
        var lines = ["rule: \(rule)"]
        if let run {
            lines.append("unit: \(quote(run.unit, limit: 200)) (\(run.unitWords) word\(run.unitWords == 1 ? "" : "s"), \(run.kind.rawValue))")
            lines.append("repetitions: \(run.repetitions)")
        }
        if let span { lines.append("range: characters \(span.lowerBound)..<\(span.upperBound) of \(a.characterCount)") }
        lines.append("seq-rep-1..4 (words): \(list(a.seqRepWords))")
        if let t = a.seqRepTokens { lines.append("seq-rep-1..4 (tokens): \(list(t))") }
        lines.append("distinct-1..4 (words): \(list(a.distinctWords))")
        lines.append("compression ratio: \(fmt(a.compressionRatio)) (\(a.byteCount) bytes)")
        lines.append("word tokens: \(a.wordTokenCount)" + (a.modelTokenCount.map { ", model tokens: \($0)" } ?? ""))
        lines.append("score: \(fmt(a.score))")
        if let span, !span.isEmpty, span.upperBound <= a.characterCount {
            let chars = Array(text)
            let limit = 4000
            let shown = String(chars[span.lowerBound..<min(span.upperBound, span.lowerBound + limit)])
            lines.append("span: " + shown + (span.count > limit ? "… (\(span.count - limit) more characters)" : ""))
        }
        return lines.joined(separator: "\n")
    }

    // MARK: detectors

    /// Keeps the strongest few runs of each kind (by repetitions and by length), so `judge` can apply any thresholds.
    struct RunCollector {
        var all: [String: [RepeatedRun]] = [:]

        mutating func add(_ run: RepeatedRun) {
            let group = run.kind.rawValue + (run.unitWords == 1 ? "/1" : "/n")
            all[group, default: []].append(run)
            if all[group]!.count > 512 { all[group] = prune(all[group]!) }
        }

        func prune(_ runs: [RepeatedRun]) -> [RepeatedRun] {
            let k = RepetitionScan.keepRunsPerKind
            let byReps = runs.sorted { ($0.repetitions, $0.range.count, -$0.range.lowerBound) > ($1.repetitions, $1.range.count, -$1.range.lowerBound) }.prefix(k)
            let bySpan = runs.sorted { ($0.range.count, $0.repetitions, -$0.range.lowerBound) > ($1.range.count, $1.repetitions, -$1.range.lowerBound) }.prefix(k)
            var out: [RepeatedRun] = []
            for r in byReps + bySpan where !out.contains(r) { out.append(r) }
            return out
        }

        func selected() -> [RepeatedRun] {
            all.keys.sorted().flatMap { prune(all[$0]!) }.sorted { $0.range.lowerBound < $1.range.lowerBound || ($0.range.lowerBound == $1.range.lowerBound && moreSevere($0, $1)) }
        }
    }

    /// Number of copies in a run of `length` elements with period `p` starting at `start`: complete copies, plus
    /// the trailing partial copy when it already holds all of the unit's significant elements.
    static func copies(length: Int, period p: Int, start: Int, significant: (Int) -> Bool) -> Int {
        var reps = length / p
        let rem = length % p
        if rem > 0 {
            var lastSignificant = -1
            for k in 0..<p where significant(start + k) { lastSignificant = k }
            if lastSignificant >= 0 && lastSignificant < rem { reps += 1 }
        }
        return reps
    }

    /// Finds word-level runs; returns the fraction of words (letter/digit tokens) inside immediate repeats
    /// (runs of two or more copies).
    @discardableResult
    static func wordRuns(_ scan: RepetitionScan, _ c: inout RunCollector) -> Double {
        let tokens = scan.tokens
        var covered = [Bool](repeating: false, count: tokens.count)
        // Two copies need at least the unit plus its words again; p + p/2 tokens is a cheap lower bound that skips
        // the many chance matches of ordinary text (a unit's trailing punctuation may be missing from the last copy).
        RepetitionScan.periodicRuns(tokens.map(\.id), maxPeriod: RepetitionScan.maxUnitTokens, minLength: { $0 + max(1, $0 / 2) }) { p, s0, l0 in
            // Start the unit at a word (". the cat sat" -> "the cat sat ."), preferring a sentence start.
            guard let first = (0..<p).first(where: { tokens[s0 + $0].hasLetter }) else { return }
            let shift = (0..<p).first(where: { k in
                tokens[s0 + k].hasLetter && (tokens[s0 + k].newlineBefore || (s0 + k > 0 && tokens[s0 + k - 1].isTerminal))
            }) ?? first
            let s = s0 + shift, l = l0 - shift
            guard l >= 2 * p || (l >= p + 1) else { return }
            let reps = copies(length: l, period: p, start: s) { tokens[$0].isWordLike }
            guard reps >= 2 else { return }
            let lastToken = min(s + l, s + reps * p) - 1
            for k in s...lastToken where !covered[k] { covered[k] = true }
            let unitWords = tokens[s..<(s + p)].filter(\.hasLetter).count
            c.add(RepeatedRun(unit: scan.text(tokens[s].start..<tokens[s + p - 1].end), unitWords: unitWords,
                              repetitions: reps, range: tokens[s].start..<tokens[lastToken].end, kind: .words))
        }
        var words = 0, inRuns = 0
        for (k, t) in tokens.enumerated() where t.isWordLike {
            words += 1
            if covered[k] { inRuns += 1 }
        }
        return words == 0 ? 0 : Double(inRuns) / Double(words)
    }

    struct Recurrence { var occurrences: [Range<Int>] }

    /// Immediate repeats of 1–4 whole sentences, and the most frequent sentence anywhere.
    static func sentenceRuns(_ scan: RepetitionScan, _ c: inout RunCollector) -> Recurrence? {
        let tokens = scan.tokens
        var sentences: [(first: Int, last: Int, key: Int, words: Int)] = []
        var start = 0
        func close(_ end: Int) {
            defer { start = end }
            guard end > start else { return }
            // Key: a 64-bit hash of the sentence's word ids (punctuation ignored); a collision would need 2^32 sentences.
            var hasher = Hasher()
            var wordLike = 0, letters = 0
            for k in start..<end where tokens[k].isWordLike {
                hasher.combine(tokens[k].id)
                wordLike += 1
                if tokens[k].hasLetter { letters += 1 }
            }
            guard wordLike > 0 else { return }
            hasher.combine(wordLike)
            sentences.append((start, end - 1, hasher.finalize(), letters))
        }
        for i in tokens.indices {
            if tokens[i].newlineBefore && i > start { close(i) }
            if tokens[i].isTerminal && !(i + 1 < tokens.count && tokens[i + 1].isTerminal && !tokens[i + 1].newlineBefore) { close(i + 1) }
        }
        close(tokens.count)

        func range(_ a: Int, _ b: Int) -> Range<Int> { tokens[sentences[a].first].start..<tokens[sentences[b].last].end }
        RepetitionScan.periodicRuns(sentences.map(\.key), maxPeriod: RepetitionScan.maxUnitSentences, minLength: { 2 * $0 }) { p, s, l in
            let reps = l / p
            guard reps >= 2 else { return }
            let words = sentences[s..<(s + p)].reduce(0) { $0 + $1.words }
            guard words > 0 else { return }
            c.add(RepeatedRun(unit: scan.text(range(s, s + p - 1)), unitWords: words, repetitions: reps,
                              range: range(s, s + reps * p - 1), kind: .sentences))
        }

        var occurrences: [Int: [Int]] = [:]
        for (i, s) in sentences.enumerated() where s.words >= 3 { occurrences[s.key, default: []].append(i) }
        guard let top = occurrences.values.filter({ $0.count >= 2 }).max(by: { ($0.count, -$0[0]) < ($1.count, -$1[0]) }) else { return nil }
        let firstRange = range(top[0], top[0])
        c.add(RepeatedRun(unit: scan.text(firstRange), unitWords: sentences[top[0]].words, repetitions: top.count,
                          range: firstRange.lowerBound..<range(top.last!, top.last!).upperBound, kind: .sentenceRecurrence))
        return Recurrence(occurrences: top.prefix(64).map { range($0, $0) })
    }

    /// Loops inside the character stream: punctuation, layout, digits, and letters without whitespace.
    static func characterRuns(_ scan: RepetitionScan, _ c: inout RunCollector) {
        let cls = scan.charClass
        RepetitionScan.periodicRuns(scan.charIds, maxPeriod: RepetitionScan.maxUnitCharacters, minLength: { max(3, $0 + $0 / 2) }) { p, s0, l0 in
            var hasNonSpace = false, hasLetter = false, hasDigit = false, allLayout = true
            for k in s0..<(s0 + p) {
                switch cls[k] {
                case .whitespace: if scan.isNewline[k] { allLayout = false }
                case .letter: hasLetter = true; hasNonSpace = true; allLayout = false
                case .digit: hasDigit = true; hasNonSpace = true
                case .layout: hasNonSpace = true
                case .other: hasNonSpace = true; allLayout = false
                }
            }
            let kind: RepeatedRun.Kind
            if hasLetter {
                guard scan.wsPrefix[s0 + l0] == scan.wsPrefix[s0] else { return }   // spans words: the word detector's job
                kind = .characters
            } else if hasDigit || allLayout {
                kind = .layout
            } else if hasNonSpace {
                kind = .punctuation
            } else {
                kind = .layout   // spaces/tabs only (newline stretches are counted by `newlineRuns`)
                guard allLayout else { return }
            }
            // Start the unit at a visible character (" 1, 2, 3," -> "1, 2, 3, ").
            let shift = hasNonSpace ? (0..<p).first { cls[s0 + $0] != .whitespace } ?? 0 : 0
            let s = s0 + shift, l = l0 - shift
            // A trailing partial copy counts when it holds the unit's letters/digits (or, for pure punctuation, all of it).
            let reps = copies(length: l, period: p, start: s) { hasLetter || hasDigit ? cls[$0] == .letter || cls[$0] == .digit : cls[$0] != .whitespace }
            guard reps >= 2, l >= (kind == .punctuation ? 2 : 6) else { return }
            let end = min(s + l, s + reps * p)
            c.add(RepeatedRun(unit: scan.text(s..<(s + p)), unitWords: 0, repetitions: reps, range: s..<end, kind: kind))
        }
    }

    /// Stretches of whitespace holding several newlines.
    static func newlineRuns(_ scan: RepetitionScan, _ c: inout RunCollector) {
        var i = 0
        let n = scan.characterCount
        let cls = scan.charClass, isNewline = scan.isNewline
        while i < n {
            guard cls[i] == .whitespace else { i += 1; continue }
            var j = i
            var newlines = 0
            while j < n && cls[j] == .whitespace {
                if isNewline[j] { newlines += 1 }
                j += 1
            }
            if newlines >= 3 {
                c.add(RepeatedRun(unit: "\n", unitWords: 0, repetitions: newlines, range: i..<j, kind: .newlines))
            }
            i = j
        }
    }
}
