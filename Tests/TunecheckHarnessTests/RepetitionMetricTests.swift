import Foundation
import Testing
@testable import TunecheckHarness

/// Each metric on small hand-computed cases.
@Suite struct RepetitionMetricTests {
    func close(_ a: [Double]?, _ b: [Double], _ eps: Double = 1e-9) -> Bool {
        guard let a, a.count == b.count else { return false }
        return zip(a, b).allSatisfy { abs($0 - $1) < eps }
    }

    // MARK: seq-rep-n and distinct-n

    @Test func seqRepAndDistinctOnWords() {
        // words a b c a b c: 1-grams 6 (3 unique), 2-grams 5 (ab bc ca ab bc: 3), 3-grams 4 (abc bca cab abc: 3), 4-grams 3 (3).
        let a = RepetitionAnalyzer.analyze("a b c a b c")
        #expect(close(a.seqRepWords, [0.5, 0.4, 0.25, 0]))
        #expect(close(a.distinctWords, [0.5, 0.6, 0.75, 1]))
        #expect(a.seqRepTokens == nil)
        #expect(a.wordTokenCount == 6)
    }

    @Test func wordsAreLowercasedAndPunctuationIsLeftOut() {
        // the cat the cat: seq-rep-1 = 1 − 2/4, seq-rep-2 = 1 − 2/3 (the·cat, cat·the, the·cat).
        let a = RepetitionAnalyzer.analyze("The cat. the CAT!")
        #expect(a.wordTokenCount == 4)
        #expect(close(a.seqRepWords, [0.5, 1.0 / 3, 0, 0]))
        // Inner apostrophes, decimals and thousands separators stay inside words.
        #expect(RepetitionAnalyzer.analyze("don't stop: 3.14 and 10,000").wordTokenCount == 5)
        // Every CJK character is a word.
        #expect(RepetitionAnalyzer.analyze("我不知道。").wordTokenCount == 4)
    }

    @Test func seqRepOnTokenIds() {
        // 1 2 1 2 1 2: 1-grams 1 − 2/6, 2-grams 1 − 2/5, 3-grams 1 − 2/4, 4-grams 1 − 2/3.
        let a = RepetitionAnalyzer.analyze("x y z", tokenIds: [1, 2, 1, 2, 1, 2])
        #expect(close(a.seqRepTokens, [2.0 / 3, 0.6, 0.5, 1.0 / 3]))
        #expect(a.modelTokenCount == 6)
    }

    @Test func shortAndEmptyAnswers() {
        let short = RepetitionAnalyzer.analyze("hello world")
        #expect(close(short.seqRepWords, [0, 0, 0, 0]))
        #expect(close(short.distinctWords, [1, 1, 1, 1]))
        let empty = RepetitionAnalyzer.analyze("")
        #expect(empty.isEmpty && empty.compressionRatio == 0 && empty.score == 1)
        #expect(close(empty.seqRepWords, [0, 0, 0, 0]))
        #expect(RepetitionAnalyzer.analyze(" \n\t ").isEmpty)
        #expect(!RepetitionAnalyzer.analyze("Paris.").isEmpty)
    }

    // MARK: compression

    @Test func compressionRatioIsZlib() {
        // Python's zlib.compress(b"a" * 1000) is 17 bytes; b"abc" is 11; b"hormonal " * 100 is 26.
        #expect(abs(RepetitionAnalyzer.analyze(String(repeating: "a", count: 1000)).compressionRatio - 1000.0 / 17) < 1e-9)
        #expect(abs(RepetitionAnalyzer.analyze("abc").compressionRatio - 3.0 / 11) < 1e-9)
        #expect(abs(RepetitionAnalyzer.analyze(String(repeating: "hormonal ", count: 100)).compressionRatio - 900.0 / 26) < 1e-9)
    }

    @Test func compressionIsJudgedOnlyOnLongAnswers() {
        var t = RepetitionThresholds.default
        t.maxCompressionRatio = 0.5
        let shortText = "A short, ordinary answer."
        #expect(RepetitionAnalyzer.judge(RepetitionAnalyzer.analyze(shortText), text: shortText, thresholds: t) == nil)
        let longText = String(repeating: "Plain prose with several different words in it, nothing looping. ", count: 1) +
            "Another sentence follows with other vocabulary, to pass the byte minimum of the compression check easily. " +
            "A third sentence makes sure we are comfortably above two hundred and fifty-six bytes in total length."
        #expect(longText.utf8.count >= 256)
        let verdict = RepetitionAnalyzer.judge(RepetitionAnalyzer.analyze(longText), text: longText, thresholds: t)
        #expect(verdict?.message.hasPrefix("compression ratio") == true)
    }

    // MARK: runs

    @Test func singleWordRun() throws {
        let text = "The answer is hormonal hormonal hormonal hormonal."
        let a = RepetitionAnalyzer.analyze(text)
        let run = try #require(a.longestRun)
        #expect(run == RepeatedRun(unit: "hormonal", unitWords: 1, repetitions: 4, range: 14..<49, kind: .words))
        #expect(a.highlights == [HighlightSpan(start: 14, end: 49, label: "\"hormonal\" ×4")])
        let verdict = try #require(RepetitionAnalyzer.judge(a, text: text, thresholds: .default))
        #expect(verdict.message == "repeated \"hormonal\" ×4 (seq-rep-4 0.00)")
        #expect(verdict.detail.contains("rule: max_repeated_word_run 3"))
        #expect(verdict.detail.contains("span: hormonal hormonal hormonal hormonal"))
        // Three copies of one word pass.
        let three = "It was very very very cold."
        #expect(RepetitionAnalyzer.judge(RepetitionAnalyzer.analyze(three), text: three, thresholds: .default) == nil)
    }

    @Test func phraseRunAndRotation() throws {
        let a = RepetitionAnalyzer.analyze("Hello. The cat sat. The cat sat. The cat sat.")
        let run = try #require(a.longestRun)
        #expect(run.unit == "The cat sat.")
        #expect(run.unitWords == 3 && run.repetitions == 3)
        #expect(run.range == 7..<45)
        // Two copies of a phrase pass; three fail.
        let two = "I think that I think that we should go."
        #expect(RepetitionAnalyzer.judge(RepetitionAnalyzer.analyze(two), text: two, thresholds: .default) == nil)
        #expect(RepetitionAnalyzer.analyze(two).longestRun?.repetitions == 2)
    }

    @Test func trailingPartialCopyCountsWhenItHoldsTheWord() {
        // "hormonal ," ×3 then "hormonal": the last copy lacks its comma but is a fourth copy.
        #expect(RepetitionAnalyzer.analyze("hormonal, hormonal, hormonal, hormonal").longestRun?.repetitions == 4)
        // "step 1 ," ×3 then "step 2": the partial "step" is not a fourth copy of "step 1,".
        let a = RepetitionAnalyzer.analyze("step 1, step 1, step 1, step 2")
        #expect(a.runs.first { $0.kind == .words }?.repetitions == 3)
    }

    @Test func rangesAreCharacterOffsets() {
        // 👍🏽 is two Unicode scalars but one Character.
        let a = RepetitionAnalyzer.analyze("👍🏽 ok ok ok ok")
        #expect(a.longestRun?.range == 2..<13)
        #expect(a.highlights.first.map { $0.start..<$0.end } == 2..<13)
    }

    @Test func characterLevelRuns() {
        let bang = RepetitionAnalyzer.analyze("Wow" + String(repeating: "!", count: 10))
        #expect(bang.longestRun == RepeatedRun(unit: "!", unitWords: 0, repetitions: 10, range: 3..<13, kind: .punctuation))
        let ab = RepetitionAnalyzer.analyze(String(repeating: "ab", count: 11))
        #expect(ab.longestRun == RepeatedRun(unit: "ab", unitWords: 0, repetitions: 11, range: 0..<22, kind: .characters))
        let rule = RepetitionAnalyzer.analyze(String(repeating: "-", count: 80))
        #expect(rule.longestRun?.kind == .layout && rule.longestRun?.repetitions == 80)
        #expect(RepetitionAnalyzer.judge(rule, text: String(repeating: "-", count: 80), thresholds: .default) == nil)
        let spaced = RepetitionAnalyzer.analyze("1, 2, 3, 1, 2, 3, 1, 2, 3")
        #expect(spaced.runs.contains { $0.kind == .layout && $0.unit == "1, 2, 3, " && $0.repetitions == 3 })
    }

    @Test func newlineRuns() {
        let a = RepetitionAnalyzer.analyze("a\n\n\n\nb")
        #expect(a.runs.contains(RepeatedRun(unit: "\n", unitWords: 0, repetitions: 4, range: 1..<5, kind: .newlines)))
        let crlf = RepetitionAnalyzer.analyze("a\r\n\r\n\r\nb")   // "\r\n" is one Character
        #expect(crlf.runs.contains(RepeatedRun(unit: "\n", unitWords: 0, repetitions: 3, range: 1..<4, kind: .newlines)))
    }

    @Test func sentenceRecurrence() throws {
        let text = "The cat sat down. Hello there. The cat sat down! Bye now. The cat sat down. Ok. The cat sat down. And. The cat sat down."
        let a = RepetitionAnalyzer.analyze(text)
        let rec = try #require(a.runs.first { $0.kind == .sentenceRecurrence })
        #expect(rec.unit == "The cat sat down." && rec.repetitions == 5 && rec.unitWords == 4)
        let verdict = try #require(RepetitionAnalyzer.judge(a, text: text, thresholds: .default))
        #expect(verdict.message.hasPrefix("sentence repeated ×5: \"The cat sat down.\""))
        #expect(a.highlights.count == 5)
        var t = RepetitionThresholds.default
        t.maxSentenceRepeats = 5
        #expect(RepetitionAnalyzer.judge(a, text: text, thresholds: t) == nil)
    }

    @Test func sentenceRunsBeyondTheWordUnitCap() throws {
        let sentence = (1...40).map { "w\($0)" }.joined(separator: " ") + ". "
        let a = RepetitionAnalyzer.analyze(String(repeating: sentence, count: 3))
        let run = try #require(a.longestRun)
        #expect(run.kind == .sentences && run.repetitions == 3 && run.unitWords == 40)
    }

    // MARK: single token, empty

    @Test func singleTokenRepeated() throws {
        #expect(RepetitionAnalyzer.analyze("ing", tokenIds: [278, 278, 278]).isSingleTokenRepeated)
        #expect(!RepetitionAnalyzer.analyze("Hi!", tokenIds: [17250, 0]).isSingleTokenRepeated)
        #expect(RepetitionAnalyzer.analyze("no no no no").isSingleTokenRepeated)
        #expect(!RepetitionAnalyzer.analyze("no no no").isSingleTokenRepeated)
        let text = String(repeating: "ing", count: 5)
        let a = RepetitionAnalyzer.analyze(text, tokenIds: Array(repeating: 278, count: 5))
        let verdict = try #require(RepetitionAnalyzer.judge(a, text: text, thresholds: .default))
        #expect(verdict.message == "single token repeated: \"ing\" ×5")
        #expect(a.score == 1)
    }

    @Test func emptyAnswer() {
        let a = RepetitionAnalyzer.analyze("")
        #expect(RepetitionAnalyzer.judge(a, text: "", thresholds: .default)?.message == "empty answer")
        var t = RepetitionThresholds.default
        t.failOnEmpty = false
        #expect(RepetitionAnalyzer.judge(a, text: "", thresholds: t) == nil)
    }

    // MARK: ratios, thresholds, messages, metrics

    @Test func ratioChecksNeedEnoughWords() {
        var t = RepetitionThresholds.default
        t.maxSeqRep4Words = 0.1
        let text = "a b c d a b c d e f"   // seq-rep-4 = 1 − 6/7
        let a = RepetitionAnalyzer.analyze(text)
        #expect(RepetitionAnalyzer.judge(a, text: text, thresholds: t) == nil)
        t.minTokensForRatios = 5
        #expect(RepetitionAnalyzer.judge(a, text: text, thresholds: t)?.message.hasPrefix("seq-rep-4 0.14 > 0.10 (words)") == true)
    }

    @Test func distinct2CanBeDisabled() {
        var t = RepetitionThresholds.default
        t.minTokensForRatios = 4
        t.maxSeqRep4Words = 1
        t.maxRepeatedUnitRun = 100
        t.maxRepeatedWordRun = 100
        t.maxCompressionRatio = 1000
        t.maxRepeatedFraction = 1
        t.failOnSingleTokenRepeated = false
        let text = "go stop go stop go stop go stop"
        let a = RepetitionAnalyzer.analyze(text)
        #expect(RepetitionAnalyzer.judge(a, text: text, thresholds: t)?.message.hasPrefix("distinct-2 0.29 < 0.30") == true)
        t.minDistinct2 = nil
        #expect(RepetitionAnalyzer.judge(a, text: text, thresholds: t) == nil)
    }

    @Test func modelTokenSeqRep() {
        var t = RepetitionThresholds.default
        t.minTokensForRatios = 8
        let text = "A perfectly ordinary sentence with enough different words."
        let ids = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]   // 4-grams: 9, unique 4 -> 1 − 4/9
        let verdict = RepetitionAnalyzer.judge(RepetitionAnalyzer.analyze(text, tokenIds: ids), text: text, thresholds: t)
        #expect(verdict?.message.hasPrefix("seq-rep-4 0.56 > 0.50 (model tokens)") == true)
    }

    @Test func longUnitsAreTruncatedInTheMessage() throws {
        let sentence = "This is a rather long sentence that keeps going well past the sixty character quote limit. "
        let text = String(repeating: sentence, count: 4)
        let verdict = try #require(RepetitionAnalyzer.judge(RepetitionAnalyzer.analyze(text), text: text, thresholds: .default))
        #expect(verdict.message.contains("…\" ×4"))
        #expect(verdict.message.count < 120)
        #expect(verdict.detail.contains("span: " + sentence))
    }

    @Test func messageEscapesNewlines() throws {
        let text = "Answer:" + String(repeating: "\n", count: 20)
        let verdict = try #require(RepetitionAnalyzer.judge(RepetitionAnalyzer.analyze(text), text: text, thresholds: .default))
        #expect(verdict.message == "repeated \"\\n\" ×20 (20 newlines in a row)")
    }

    @Test func metricNames() {
        let names = RepetitionAnalyzer.metrics(RepetitionAnalyzer.analyze("a b c", tokenIds: [1, 2, 3])).map(\.name)
        #expect(names == ["seq_rep_1_words", "seq_rep_2_words", "seq_rep_3_words", "seq_rep_4_words",
                          "seq_rep_1_tokens", "seq_rep_2_tokens", "seq_rep_3_tokens", "seq_rep_4_tokens",
                          "distinct_1", "distinct_2", "distinct_3", "distinct_4", "compression_ratio", "repeated_fraction",
                          "longest_run", "longest_run_unit_words", "empty", "single_token_repeated", "word_tokens",
                          "repetition_score"])
        #expect(!RepetitionAnalyzer.metrics(RepetitionAnalyzer.analyze("a b c")).contains { $0.name.hasPrefix("seq_rep") && $0.name.hasSuffix("_tokens") })
    }

    @Test func scoreIsBounded() {
        #expect(RepetitionAnalyzer.analyze("An ordinary answer with no repetition at all.").score == 0)
        let loop = RepetitionAnalyzer.analyze(String(repeating: "hormonal ", count: 50))
        #expect(loop.score > 0.9 && loop.score <= 1)
    }

    // MARK: performance

    static func timed(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test(arguments: ["prose", "one-word", "two-chars", "period-31", "noise"])
    func linearTimeOnLongInputs(_ kind: String) {
        var rng = SystemRandomNumberGenerator()
        let vocab = ["the", "model", "answer", "water", "because", "of", "a", "sentence", "runs", "fast", "and", "into",
                     "quiet", "data", "is", "it", "on", "for", "with", "we", "they", "checkpoint", "loss", "tokens"]
        let text: String
        switch kind {
        case "prose": text = (0..<10_000).map { i in vocab.randomElement(using: &rng)! + (i % 13 == 12 ? "." : "") }.joined(separator: " ")
        case "one-word": text = String(repeating: "hormonal ", count: 10_000)
        case "two-chars": text = String(repeating: "ab", count: 30_000)
        case "period-31": text = String(repeating: (0..<31).map { "w\($0) " }.joined(), count: 330)
        default: text = String((0..<60_000).map { _ in Character(UnicodeScalar(UInt8.random(in: 33...126, using: &rng))) })
        }
        var analysis: RepetitionAnalysis?
        let seconds = Self.timed { analysis = RepetitionAnalyzer.analyze(text) }
        print("analyze(\(kind), \(text.count) characters): \(Int(seconds * 1000)) ms")
        #expect(analysis != nil)
        // ≈ 35 ms in debug for the 10,000-word prose on one core. This guards against quadratic behaviour, not
        // speed: a quadratic pass over 60,000 characters takes minutes, so the bound is far above any loaded
        // machine's linear time (0.7 s seen with four builds sharing two cores).
        #expect(seconds < 10, "analyze took \(seconds) s on \(kind)")
    }
}
