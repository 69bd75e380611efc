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
        let data = try JSONEncoder().encode(t)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == [
            "max_seq_rep_4_words", "max_seq_rep_4_tokens", "max_repeated_unit_run", "max_repeated_word_run",
            "max_sentence_repeats", "max_punctuation_run", "max_layout_run_characters", "max_character_loop_length",
            "max_consecutive_newlines", "max_repeated_fraction", "min_distinct_2", "max_compression_ratio", "min_bytes_for_compression",
            "fail_on_empty", "fail_on_single_token_repeated", "min_tokens_for_ratios",
        ])
        #expect(try JSONDecoder().decode(RepetitionThresholds.self, from: data) == t)
    }
}
