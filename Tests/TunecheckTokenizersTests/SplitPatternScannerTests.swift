import Foundation
import Testing
@testable import TunecheckTokenizers

/// The hand-written GPT-2 / Llama-3 / Qwen2 scanners against the splits `tokenizers` (Oniguruma)
/// produces, on the case texts plus seeded random strings of tricky scalars.
@Suite("Split pattern scanners")
struct SplitPatternScannerTests {
    struct SplitCase: Decodable {
        let text: String
        let gpt2: [String]
        let llama3: [String]
        let qwen2: [String]
    }

    static let cases: [SplitCase] = {
        let url = Fixtures.localTokenizers.appendingPathComponent("split_cases.json")
        guard let data = try? Data(contentsOf: url) else { return [] }
        return (try? JSONDecoder().decode([SplitCase].self, from: data)) ?? []
    }()

    private func pieces(_ matcher: SplitMatcher, _ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        let piece = PreTokenizedPiece(scalars: scalars, startsText: true)
        return PreTokenizer.split(piece, matches: matcher.matches(in: scalars), behavior: .isolated, invert: false).map { piece in
            var view = String.UnicodeScalarView()
            view.append(contentsOf: piece.scalars)
            return String(view)
        }
    }

    /// Exact scalar-level comparison (Swift `==` on strings would hide canonical differences).
    private func same(_ a: [String], _ b: [String]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.unicodeScalars.elementsEqual($1.unicodeScalars) }
    }

    @Test func referenceSplitsAreAvailable() {
        #expect(Self.cases.count > 100)
    }

    @Test(arguments: ["gpt2", "llama3", "qwen2"])
    func scannerMatchesOniguruma(pattern: String) {
        let matcher: KnownSplitPattern
        switch pattern {
        case "gpt2": matcher = KnownSplitPattern(kind: .gpt2)
        case "llama3": matcher = KnownSplitPattern(regex: KnownSplitPattern.llama3Pattern)!
        default: matcher = KnownSplitPattern(regex: KnownSplitPattern.qwen2Pattern)!
        }
        var failures = 0
        for testCase in Self.cases {
            let expected = pattern == "gpt2" ? testCase.gpt2 : pattern == "llama3" ? testCase.llama3 : testCase.qwen2
            let actual = pieces(matcher, testCase.text)
            if !same(actual, expected) {
                failures += 1
                if failures <= 3 {
                    Issue.record("\(pattern) \"\(visible(testCase.text))\": \(actual.map(visible)) expected \(expected.map(visible))")
                }
            }
        }
        #expect(failures == 0, "\(failures) of \(Self.cases.count) texts split differently")
    }

    @Test func combiningMarkIsNotPartOfTheLetterRun() {
        // Scalar semantics: "e\u{301}" is a letter then a mark (not a letter), as in `tokenizers`.
        let gpt2 = pieces(KnownSplitPattern(kind: .gpt2), "cafe\u{301} ok")
        #expect(same(gpt2, ["cafe", "\u{301}", " ok"]))
        let llama3 = pieces(KnownSplitPattern(kind: .llama3(maxDigits: 3)), "cafe\u{301}s")
        #expect(same(llama3, ["cafe", "\u{301}s"]))
    }

    @Test func digitsGroupByThreeForLlama3AndSingly() {
        #expect(pieces(KnownSplitPattern(kind: .llama3(maxDigits: 3)), "1234567") == ["123", "456", "7"])
        #expect(pieces(KnownSplitPattern(kind: .llama3(maxDigits: 1)), "123") == ["1", "2", "3"])
        #expect(pieces(KnownSplitPattern(kind: .gpt2), "a 1234567") == ["a", " 1234567"])
    }

    @Test func whitespaceRunLeavesOneSpaceForTheNextWord() {
        #expect(pieces(KnownSplitPattern(kind: .gpt2), "a   b  ") == ["a", "  ", " b", "  "])
        #expect(pieces(KnownSplitPattern(kind: .llama3(maxDigits: 3)), "a \n\n b") == ["a", " \n\n", " b"])
    }

    @Test func unknownPatternUsesTheRegexFallback() throws {
        #expect(KnownSplitPattern(regex: "\\d+") == nil)
        let matcher = try FoundationRegexMatcher(pattern: "\\d+")
        #expect(pieces(matcher, "ab12c\u{1F600}345") == ["ab", "12", "c\u{1F600}", "345"])
    }
}
