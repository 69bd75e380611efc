import Foundation
import Testing
@testable import TunecheckHarness

@Suite struct RepetitionThresholdsTests {
    func decode(_ json: String) throws -> RepetitionThresholds {
        try JSONDecoder().decode(RepetitionThresholds.self, from: Data(json.utf8))
    }

    @Test func documentedDefaults() {
        let d = RepetitionThresholds.default
        #expect(d.maxSeqRep4Words == 0.5 && d.maxSeqRep4Tokens == 0.5)
        #expect(d.maxRepeatedUnitRun == 2 && d.maxRepeatedWordRun == 3 && d.maxSentenceRepeats == 4)
        #expect(d.maxPunctuationRun == 9 && d.maxLayoutRunCharacters == 100 && d.maxCharacterLoopLength == 20)
        #expect(d.maxConsecutiveNewlines == 6 && d.minDistinct2 == 0.3)
        #expect(d.maxCompressionRatio == 6.0 && d.minBytesForCompression == 256 && d.maxRepeatedFraction == 0.5)
        #expect(d.failOnEmpty && d.failOnSingleTokenRepeated && d.minTokensForRatios == 40)
        #expect(d.severeSeqRep4Words == 0.7 && d.severeSeqRep4Tokens == 0.7 && d.severeRepeatedUnitRun == 4)
        #expect(d.severeRepeatedWordRun == 5 && d.severeSentenceRepeats == 8 && d.severePunctuationRun == 20)
        #expect(d.severeLayoutRunCharacters == 200 && d.severeCharacterLoopLength == 40 && d.severeConsecutiveNewlines == 20)
        #expect(d.severeRepeatedFraction == 0.8 && d.severeDistinct2 == 0.2 && d.severeCompressionRatio == 6.5)
        #expect(d.maxMildFraction == 0.25)
    }

    /// Each severe limit is at least as lenient as its mild limit, so every severe answer is also mild-flagged.
    @Test func severeLimitsAreBeyondTheMildOnes() {
        let mild = RepetitionThresholds.default.limits(.mild), severe = RepetitionThresholds.default.limits(.severe)
        #expect(severe.seqRep4Words > mild.seqRep4Words && severe.seqRep4Tokens > mild.seqRep4Tokens)
        #expect(severe.repeatedUnitRun > mild.repeatedUnitRun && severe.repeatedWordRun > mild.repeatedWordRun)
        #expect(severe.sentenceRepeats > mild.sentenceRepeats && severe.punctuationRun > mild.punctuationRun)
        #expect(severe.layoutRunCharacters > mild.layoutRunCharacters && severe.characterLoopLength > mild.characterLoopLength)
        #expect(severe.consecutiveNewlines > mild.consecutiveNewlines && severe.repeatedFraction > mild.repeatedFraction)
        #expect(severe.distinct2! < mild.distinct2! && severe.compressionRatio > mild.compressionRatio)
    }

    /// The rule a severe failure names is a real suite-file key.
    @Test func severeRuleNamesAreSuiteFileKeys() {
        let keys = Set(RepetitionThresholds.fields.map(\.key))
        let severe = RepetitionThresholds.default.limits(.severe), mild = RepetitionThresholds.default.limits(.mild)
        let limited = RepetitionThresholds.LimitKey.allCases
        #expect(limited.allSatisfy { keys.contains($0.rawValue) })
        for key in limited {
            #expect(mild.key(key) == key.rawValue)
            #expect(severe.key(key).hasPrefix("severe_") && keys.contains(severe.key(key)), "\(severe.key(key))")
        }
        #expect(severe.key(.maxRepeatedWordRun) == "severe_repeated_word_run")
        #expect(severe.key(.minDistinct2) == "severe_distinct_2")
    }

    @Test func severeKeysAndMildFractionDecode() throws {
        let t = try decode(#"{"severe_repeated_word_run": 12, "severe_seq_rep_4_words": 0.9, "severe_distinct_2": null, "max_mild_fraction": 0}"#)
        var expected = RepetitionThresholds.default
        expected.severeRepeatedWordRun = 12
        expected.severeSeqRep4Words = 0.9
        expected.severeDistinct2 = nil
        expected.maxMildFraction = 0
        #expect(t == expected)
        #expect(throws: DecodingError.self) { try decode(#"{"severe_repeated_word_runs": 12}"#) }
    }

    @Test func emptyObjectIsTheDefaults() throws {
        #expect(try decode("{}") == .default)
    }

    @Test func snakeCaseKeysOverrideOnlyWhatTheyName() throws {
        let t = try decode(#"{"max_seq_rep_4_words": 0.3, "max_repeated_unit_run": 4, "fail_on_empty": false}"#)
        var expected = RepetitionThresholds.default
        expected.maxSeqRep4Words = 0.3
        expected.maxRepeatedUnitRun = 4
        expected.failOnEmpty = false
        #expect(t == expected)
    }

    @Test func nullDisablesDistinct2() throws {
        #expect(try decode(#"{"min_distinct_2": null}"#).minDistinct2 == nil)
        #expect(try decode(#"{"min_distinct_2": 0.25}"#).minDistinct2 == 0.25)
    }

    @Test(arguments: [#"{"max_seq_rep4_words": 0.3}"#, #"{"maxSeqRep4Words": 0.3}"#, #"{"bogus": 1}"#])
    func unknownKeysAreRejected(_ json: String) {
        #expect(throws: DecodingError.self) { try decode(json) }
    }

    @Test func wrongTypesAreRejected() {
        #expect(throws: DecodingError.self) { try decode(#"{"max_repeated_unit_run": "three"}"#) }
    }

    @Test func encodesEveryKeyInSnakeCaseAndRoundTrips() throws {
        var t = RepetitionThresholds.default
        t.minDistinct2 = nil
        t.maxCompressionRatio = 5
        t.severeDistinct2 = nil
        t.maxMildFraction = 0.5
        let data = try JSONEncoder().encode(t)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == [
            "max_seq_rep_4_words", "max_seq_rep_4_tokens", "max_repeated_unit_run", "max_repeated_word_run",
            "max_sentence_repeats", "max_punctuation_run", "max_layout_run_characters", "max_character_loop_length",
            "max_consecutive_newlines", "max_repeated_fraction", "min_distinct_2", "max_compression_ratio", "min_bytes_for_compression",
            "fail_on_empty", "fail_on_single_token_repeated", "min_tokens_for_ratios",
            "severe_seq_rep_4_words", "severe_seq_rep_4_tokens", "severe_repeated_unit_run", "severe_repeated_word_run",
            "severe_sentence_repeats", "severe_punctuation_run", "severe_layout_run_characters", "severe_character_loop_length",
            "severe_consecutive_newlines", "severe_repeated_fraction", "severe_distinct_2", "severe_compression_ratio",
            "max_mild_fraction",
        ])
        #expect(try JSONDecoder().decode(RepetitionThresholds.self, from: data) == t)
    }
}
