import Foundation
import TunecheckJSON

/// When an answer counts as repetitive, at two levels. The `max_*` / `min_*` limits (and the two `fail_on_*`
/// switches) are the *mild* level: an answer breaking one of them is repetitive. The `severe_*` limits beside
/// them are the *severe* level: an answer breaking one of those is a degenerate loop (a long run of a repeated
/// unit, a high seq-rep-4, the `hormonal hormonal …` kind). Empty and single-token answers are severe (nothing
/// else is in them). The repetition suite fails a checkpoint on any severe answer, or when more than
/// `maxMildFraction` of its answers are mild; otherwise mild answers are warnings. Every field has a default
/// chosen so that degenerate loops fail while ordinary prose, lists, tables, poetry and code pass; the corpora
/// under `Tests/Fixtures/texts/repetition/` are the calibration set (see `RepetitionCorpusTests`; each collapsed
/// text's expected severity is in `collapsed/expectations.json`).
///
/// Codable (JSON / YAML suite files) with snake_case keys, e.g. `max_seq_rep_4_words`; a missing key keeps
/// its default, an unknown key is a decoding error (a typo must not silently disable a check), and
/// `min_distinct_2: null` disables that check.
///
/// Vocabulary used below. *Word tokens*: the answer split on Unicode whitespace, with runs of letters, digits,
/// `_` and inner apostrophes forming one word (`don't`, `snake_case`, `3.14`, `10,000`), every other
/// punctuation mark / symbol / emoji a token of its own, and every CJK ideograph or kana a word of its own
/// (those scripts use no spaces); lowercased for matching. A *unit* is a sequence of word tokens; its word
/// count counts only tokens containing a letter (`step 1,` is a one-word unit). A *run* is a unit repeated
/// immediately, several times in a row.
public struct RepetitionThresholds: Sendable, Equatable, SettingsCodable {
    /// Fail when seq-rep-4 over the answer's words (letter/digit tokens; punctuation left out) exceeds this, for
    /// answers of at least `minTokensForRatios` words.
    /// 0.5: half of all 4-grams are repeats. Human text sits near 0–0.1 (Welleck et al. report ≈0.01 on
    /// Wikitext; our lists, code and boilerplate stay below 0.3), a loop of r copies scores 1 − 1/r, and
    /// near-loops (`step 1, step 1, step 2, step 2, ...`) that dodge the exact run detector score 0.6–0.9.
    public var maxSeqRep4Words: Double
    /// Same on model token ids, when the caller passes them. 0.5 for the same reasons: BPE tokens of ordinary
    /// text repeat 4-grams about as rarely as words do.
    public var maxSeqRep4Tokens: Double
    /// Units of two or more words (phrases, clauses, whole sentences) may repeat immediately at most this
    /// many times: 2, so the third copy in a row fails (`I think that I think that I think that`). A doubled
    /// phrase is a common rhetorical or lyrical device; three identical phrases in a row almost never are.
    public var maxRepeatedUnitRun: Int
    /// A single word may repeat immediately at most this many times: 3, so `hormonal hormonal hormonal
    /// hormonal` fails while `very, very, very`, `Location, location, location`, `Holy, holy, holy` pass.
    public var maxRepeatedWordRun: Int
    /// The same sentence (three or more words, compared on its lowercased words) may occur at most this many
    /// times anywhere in the answer: 4. A poem's refrain or a song's chorus comes back two to four times;
    /// a model stuck on a sentence repeats it more.
    public var maxSentenceRepeats: Int
    /// A unit made only of punctuation / symbols / emoji (no letters or digits: `!`, `?!`, `? `, `😂`) may
    /// repeat at most this many times in a row: 9. `!!!`, `?!?!`, `🎉🎉🎉` pass; `!!!!!!!!!!!!` fails.
    public var maxPunctuationRun: Int
    /// A loop of layout characters or digits (`-`, `=`, `*`, `_`, `.`, `|`, spaces, box drawing, `0, `) may
    /// cover at most this many characters: 100. Markdown rules, 80-column comment banners, table separator
    /// rows, leaders and zero-filled literals stay below it; an answer that degenerates into dashes or
    /// `0 0 0 ...` goes far beyond.
    public var maxLayoutRunCharacters: Int
    /// A loop of letters with no whitespace in it (`ababab…`, `hormonalhormonal…`, `aaaa…`, a CJK or Thai
    /// loop) may cover at most this many characters: 20 (with at least 3 copies). `hahaha`, `Nooooo`
    /// pass; 21+ characters of a pure in-word loop is not language.
    public var maxCharacterLoopLength: Int
    /// At most this many newlines in one stretch of whitespace: 6 (five blank lines). Prose, code and poetry
    /// use one to three blank lines; `\n\n\n\n...` loops use dozens.
    public var maxConsecutiveNewlines: Int
    /// Fail when more than this fraction of the words sit inside immediate repetitions (two or more copies of any
    /// unit in a row), for answers of at least `minTokensForRatios` words: 0.5. Catches stutters whose every run
    /// is short (`step 1, step 1, step 1, step 2, step 2, step 2, ...`); prose, lists, code and lyrics stay below
    /// 0.25 (a doubled phrase here and there).
    public var maxRepeatedFraction: Double
    /// Fail when distinct-2 over word tokens falls below this (answers with at least `minTokensForRatios`
    /// word tokens); `nil` disables the check. 0.3: ordinary text keeps ≥ 0.6 of its bigrams distinct
    /// (code and lists ≥ 0.45); a loop keeps ≈ 1/r. Complements seq-rep-4 for loops of very short units.
    public var minDistinct2: Double?
    /// Fail when the zlib compression ratio (UTF-8 bytes / zlib-deflated bytes, level 6) exceeds this, for answers
    /// of at least `minBytesForCompression` bytes. 6.0: prose compresses 1.5–2.5×, code and padded Markdown
    /// tables 2–4×, but structured data grows with its length (20 similar JSON records or SQL inserts ≈ 5–5.5×,
    /// 40 records ≈ 9×: raise this for suites whose answers are data dumps); loops compress 6–100×. The
    /// backstop for loops no other detector tokenizes, e.g. a counter in a template (`The answer is 1. The
    /// answer is 2. ...`).
    public var maxCompressionRatio: Double
    /// Minimum answer size in UTF-8 bytes for the compression-ratio check: 256. Below that zlib's header and
    /// dictionary warm-up dominate and the ratio says little.
    public var minBytesForCompression: Int
    /// Fail answers that are empty or whitespace only: true (a checkpoint that stops immediately is broken).
    public var failOnEmpty: Bool
    /// Fail answers that are one token repeated (all model token ids equal, three or more; or, without ids,
    /// four or more identical words and nothing else): true.
    public var failOnSingleTokenRepeated: Bool
    /// The ratio checks (seq-rep-4 on words and tokens, distinct-2) apply only to answers with at least this
    /// many word tokens (model tokens for `maxSeqRep4Tokens`): 40. Short answers are judged only by the run
    /// detectors, whose thresholds are absolute counts; ratios over a dozen tokens are noise.
    public var minTokensForRatios: Int

    // MARK: Severe level (a degenerate loop fails the checkpoint outright)
    //
    // Chosen on the calibration corpora (`RepetitionCorpusTests.calibrationTable` prints them): every normal text
    // stays clean (it is within the mild limits), and a collapsed text is severe when it is a loop that took
    // over the answer or a long stretch of it (`hormonal` ×6 cut off by max_tokens, a sentence ×5, 30 emoji,
    // `The answer is 1. The answer is 2. …` ×60); short repeats stay mild (a word ×4, a phrase ×3, `!` ×12,
    // fourteen newlines between two lines).

    /// Severe when seq-rep-4 over the answer's words exceeds this (answers of at least `minTokensForRatios`
    /// words): 0.7. A loop of r copies scores 1 − 1/r, so this is four or more copies filling the answer (a
    /// 37-word sentence ×4 scores 0.74); normal texts stay below 0.5 (20 SQL inserts 0.47).
    public var severeSeqRep4Words: Double
    /// Same on model token ids: 0.7.
    public var severeSeqRep4Tokens: Double
    /// Severe when a unit of two or more words repeats immediately more than this many times: 4, so a short
    /// phrase three or four times in a row is mild and five copies (`Lo siento, no puedo ayudar con eso.` ×5) are severe.
    public var severeRepeatedUnitRun: Int
    /// Severe when a single word repeats immediately more than this many times: 5, so `hormonal` ×4 or ×5 is
    /// mild and ×6 (the `hormonal hormonal …` loop cut off by max_tokens) is severe.
    public var severeRepeatedWordRun: Int
    /// Severe when the same sentence occurs more than this many times anywhere in the answer: 8 (twice the mild limit).
    public var severeSentenceRepeats: Int
    /// Severe when a punctuation / symbol / emoji unit repeats more than this many times in a row: 20. `!` ×12
    /// is mild, 😂 ×30 and `? ` ×40 are severe.
    public var severePunctuationRun: Int
    /// Severe when a loop of layout characters or digits covers more than this many characters: 200 (two and a
    /// half 80-column rules; normal texts stay below 80, loops of dashes or `1, 2, 3, ` run to hundreds).
    public var severeLayoutRunCharacters: Int
    /// Severe when a loop of letters without whitespace covers more than this many characters: 40
    /// (`hormonalhormonal…` over 48 characters is severe).
    public var severeCharacterLoopLength: Int
    /// Severe above this many newlines in one stretch of whitespace: 20 (14 newlines between two lines are mild,
    /// a `\n` loop of 80 is severe).
    public var severeConsecutiveNewlines: Int
    /// Severe when more than this fraction of the words sit inside immediate repetitions: 0.8 (a stutter such as
    /// `step 1, step 1, step 1, step 2, …` scores 1.0; normal texts of 40+ words stay below 0.25).
    public var severeRepeatedFraction: Double
    /// Severe when distinct-2 falls below this; `nil` disables the check: 0.2 (a loop of five or more copies;
    /// normal texts of 40+ words keep ≥ 0.37).
    public var severeDistinct2: Double?
    /// Severe when the compression ratio exceeds this (answers of at least `minBytesForCompression` bytes): 6.5.
    /// Close to the mild 6.0 on purpose: an answer only the compression ratio catches is a template loop (`The
    /// answer is 1. The answer is 2. …` ×60 compresses 6.9×; normal texts stay below 5.3). Raise both for
    /// suites whose answers are data dumps.
    public var severeCompressionRatio: Double
    /// The repetition suite fails a checkpoint when more than this fraction of its answers are mild: 0.25 (one or
    /// two mild answers among eight are warnings, three fail; one among four is a warning).
    public var maxMildFraction: Double

    public init(maxSeqRep4Words: Double = 0.5, maxSeqRep4Tokens: Double = 0.5, maxRepeatedUnitRun: Int = 2,
                maxRepeatedWordRun: Int = 3, maxSentenceRepeats: Int = 4, maxPunctuationRun: Int = 9,
                maxLayoutRunCharacters: Int = 100, maxCharacterLoopLength: Int = 20, maxConsecutiveNewlines: Int = 6,
                maxRepeatedFraction: Double = 0.5, minDistinct2: Double? = 0.3, maxCompressionRatio: Double = 6.0, minBytesForCompression: Int = 256,
                failOnEmpty: Bool = true, failOnSingleTokenRepeated: Bool = true, minTokensForRatios: Int = 40,
                severeSeqRep4Words: Double = 0.7, severeSeqRep4Tokens: Double = 0.7, severeRepeatedUnitRun: Int = 4,
                severeRepeatedWordRun: Int = 5, severeSentenceRepeats: Int = 8, severePunctuationRun: Int = 20,
                severeLayoutRunCharacters: Int = 200, severeCharacterLoopLength: Int = 40,
                severeConsecutiveNewlines: Int = 20, severeRepeatedFraction: Double = 0.8, severeDistinct2: Double? = 0.2,
                severeCompressionRatio: Double = 6.5, maxMildFraction: Double = 0.25) {
        self.maxSeqRep4Words = maxSeqRep4Words
        self.maxSeqRep4Tokens = maxSeqRep4Tokens
        self.maxRepeatedUnitRun = maxRepeatedUnitRun
        self.maxRepeatedWordRun = maxRepeatedWordRun
        self.maxSentenceRepeats = maxSentenceRepeats
        self.maxPunctuationRun = maxPunctuationRun
        self.maxLayoutRunCharacters = maxLayoutRunCharacters
        self.maxCharacterLoopLength = maxCharacterLoopLength
        self.maxConsecutiveNewlines = maxConsecutiveNewlines
        self.maxRepeatedFraction = maxRepeatedFraction
        self.minDistinct2 = minDistinct2
        self.maxCompressionRatio = maxCompressionRatio
        self.minBytesForCompression = minBytesForCompression
        self.failOnEmpty = failOnEmpty
        self.failOnSingleTokenRepeated = failOnSingleTokenRepeated
        self.minTokensForRatios = minTokensForRatios
        self.severeSeqRep4Words = severeSeqRep4Words
        self.severeSeqRep4Tokens = severeSeqRep4Tokens
        self.severeRepeatedUnitRun = severeRepeatedUnitRun
        self.severeRepeatedWordRun = severeRepeatedWordRun
        self.severeSentenceRepeats = severeSentenceRepeats
        self.severePunctuationRun = severePunctuationRun
        self.severeLayoutRunCharacters = severeLayoutRunCharacters
        self.severeCharacterLoopLength = severeCharacterLoopLength
        self.severeConsecutiveNewlines = severeConsecutiveNewlines
        self.severeRepeatedFraction = severeRepeatedFraction
        self.severeDistinct2 = severeDistinct2
        self.severeCompressionRatio = severeCompressionRatio
        self.maxMildFraction = maxMildFraction
    }

    /// The limits of one level as `RepetitionAnalyzer.judge` applies them (`level` is `.mild` or `.severe`).
    func limits(_ level: RepetitionSeverity) -> RepetitionLimits {
        let severe = level == .severe
        return RepetitionLimits(
            level: level,
            seqRep4Words: severe ? severeSeqRep4Words : maxSeqRep4Words,
            seqRep4Tokens: severe ? severeSeqRep4Tokens : maxSeqRep4Tokens,
            repeatedUnitRun: severe ? severeRepeatedUnitRun : maxRepeatedUnitRun,
            repeatedWordRun: severe ? severeRepeatedWordRun : maxRepeatedWordRun,
            sentenceRepeats: severe ? severeSentenceRepeats : maxSentenceRepeats,
            punctuationRun: severe ? severePunctuationRun : maxPunctuationRun,
            layoutRunCharacters: severe ? severeLayoutRunCharacters : maxLayoutRunCharacters,
            characterLoopLength: severe ? severeCharacterLoopLength : maxCharacterLoopLength,
            consecutiveNewlines: severe ? severeConsecutiveNewlines : maxConsecutiveNewlines,
            repeatedFraction: severe ? severeRepeatedFraction : maxRepeatedFraction,
            distinct2: severe ? severeDistinct2 : minDistinct2,
            compressionRatio: severe ? severeCompressionRatio : maxCompressionRatio,
            minBytesForCompression: minBytesForCompression, minTokensForRatios: minTokensForRatios,
            failOnEmpty: failOnEmpty, failOnSingleTokenRepeated: failOnSingleTokenRepeated)
    }

    /// The documented defaults.
    public static let `default` = RepetitionThresholds()

    public init() { self.init(maxSeqRep4Words: 0.5) }

    /// The mild limits a failure's `rule:` line can name (each has a `severe_` counterpart).
    enum LimitKey: String, CaseIterable {
        case maxSeqRep4Words = "max_seq_rep_4_words", maxSeqRep4Tokens = "max_seq_rep_4_tokens"
        case maxRepeatedUnitRun = "max_repeated_unit_run", maxRepeatedWordRun = "max_repeated_word_run"
        case maxSentenceRepeats = "max_sentence_repeats", maxPunctuationRun = "max_punctuation_run"
        case maxLayoutRunCharacters = "max_layout_run_characters", maxCharacterLoopLength = "max_character_loop_length"
        case maxConsecutiveNewlines = "max_consecutive_newlines", maxRepeatedFraction = "max_repeated_fraction"
        case minDistinct2 = "min_distinct_2", maxCompressionRatio = "max_compression_ratio"
    }

    /// The suite-file keys, each with the property it sets (absent keeps the default; `min_distinct_2: null` and
    /// `severe_distinct_2: null` switch those checks off).
    public static var fields: [SettingsField<Self>] {
        [
            .field("max_seq_rep_4_words", \.maxSeqRep4Words),
            .field("max_seq_rep_4_tokens", \.maxSeqRep4Tokens),
            .field("max_repeated_unit_run", \.maxRepeatedUnitRun),
            .field("max_repeated_word_run", \.maxRepeatedWordRun),
            .field("max_sentence_repeats", \.maxSentenceRepeats),
            .field("max_punctuation_run", \.maxPunctuationRun),
            .field("max_layout_run_characters", \.maxLayoutRunCharacters),
            .field("max_character_loop_length", \.maxCharacterLoopLength),
            .field("max_consecutive_newlines", \.maxConsecutiveNewlines),
            .field("max_repeated_fraction", \.maxRepeatedFraction),
            .field("min_distinct_2", \.minDistinct2),
            .field("max_compression_ratio", \.maxCompressionRatio),
            .field("min_bytes_for_compression", \.minBytesForCompression),
            .field("fail_on_empty", \.failOnEmpty),
            .field("fail_on_single_token_repeated", \.failOnSingleTokenRepeated),
            .field("min_tokens_for_ratios", \.minTokensForRatios),
            .field("severe_seq_rep_4_words", \.severeSeqRep4Words),
            .field("severe_seq_rep_4_tokens", \.severeSeqRep4Tokens),
            .field("severe_repeated_unit_run", \.severeRepeatedUnitRun),
            .field("severe_repeated_word_run", \.severeRepeatedWordRun),
            .field("severe_sentence_repeats", \.severeSentenceRepeats),
            .field("severe_punctuation_run", \.severePunctuationRun),
            .field("severe_layout_run_characters", \.severeLayoutRunCharacters),
            .field("severe_character_loop_length", \.severeCharacterLoopLength),
            .field("severe_consecutive_newlines", \.severeConsecutiveNewlines),
            .field("severe_repeated_fraction", \.severeRepeatedFraction),
            .field("severe_distinct_2", \.severeDistinct2),
            .field("severe_compression_ratio", \.severeCompressionRatio),
            .field("max_mild_fraction", \.maxMildFraction),
        ]
    }
}

/// The limits of one level (mild or severe) as `RepetitionAnalyzer.judge` applies them, taken from
/// `RepetitionThresholds.limits(_:)`; the size floors and the two `fail_on_*` switches are shared by both levels.
struct RepetitionLimits: Sendable, Equatable {
    var level: RepetitionSeverity
    var seqRep4Words: Double
    var seqRep4Tokens: Double
    var repeatedUnitRun: Int
    var repeatedWordRun: Int
    var sentenceRepeats: Int
    var punctuationRun: Int
    var layoutRunCharacters: Int
    var characterLoopLength: Int
    var consecutiveNewlines: Int
    var repeatedFraction: Double
    var distinct2: Double?
    var compressionRatio: Double
    var minBytesForCompression: Int
    var minTokensForRatios: Int
    var failOnEmpty: Bool
    var failOnSingleTokenRepeated: Bool

    /// The suite-file key of a limit at this level, for the `rule:` line of a failure: the mild key itself
    /// (`max_repeated_word_run`), or its severe counterpart (`severe_repeated_word_run`: `max_`/`min_` replaced).
    func key(_ mild: RepetitionThresholds.LimitKey) -> String {
        guard level == .severe else { return mild.rawValue }
        var name = Substring(mild.rawValue)
        if name.hasPrefix("max_") || name.hasPrefix("min_") { name = name.dropFirst(4) }
        return "severe_" + name
    }
}
