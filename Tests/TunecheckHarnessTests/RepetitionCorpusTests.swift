import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckHarness

/// The calibration corpora under `Tests/Fixtures/texts/repetition/`: every `collapsed/*.txt` must fail the mild
/// limits with a message quoting its repeated unit and be classified with the severity of
/// `collapsed/expectations.json` (severe: a loop that took over the answer; mild: a short repeat), every
/// `normal/*.txt` must pass and be clean. Files are read byte-exact (no trimming).
enum RepetitionCorpus {
    static let root = TestPaths.ownFixtures.appendingPathComponent("texts/repetition")

    static func names(_ folder: String) -> [String] {
        let dir = root.appendingPathComponent(folder)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
    }

    static func text(_ folder: String, _ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(folder).appendingPathComponent(name), encoding: .utf8)
    }

    struct Expectation: Decodable { var expect: String; var severity: RepetitionSeverity; var ids: [Int]? }

    static let expectations: [String: Expectation] = {
        let url = root.appendingPathComponent("collapsed/expectations.json")
        guard let data = try? Data(contentsOf: url) else { return [:] }
        return (try? JSONDecoder().decode([String: Expectation].self, from: data)) ?? [:]
    }()

    static var collapsedNames: [String] { names("collapsed") }
    static var normalNames: [String] { names("normal") }
}

@Suite struct RepetitionCorpusTests {
    @Test func corporaAreLargeEnough() {
        #expect(RepetitionCorpus.collapsedNames.count >= 25)
        #expect(RepetitionCorpus.normalNames.count >= 40)
        #expect(Set(RepetitionCorpus.expectations.keys) == Set(RepetitionCorpus.collapsedNames))
        #expect(RepetitionCorpus.expectations.values.filter { $0.severity == .mild }.count >= 5)
        #expect(RepetitionCorpus.expectations.values.filter { $0.severity == .severe }.count >= 25)
    }

    @Test(arguments: RepetitionCorpus.collapsedNames)
    func collapsedAnswerFails(_ name: String) throws {
        let text = try RepetitionCorpus.text("collapsed", name)
        let expectation = try #require(RepetitionCorpus.expectations[name])
        let analysis = RepetitionAnalyzer.analyze(text, tokenIds: expectation.ids)
        let verdict = RepetitionAnalyzer.judge(analysis, text: text, thresholds: .default)
        let failure = try #require(verdict, "\(name) passed: \(RepetitionAnalyzer.metrics(analysis).map { "\($0.name)=\($0.value)" })")
        #expect(failure.message.lowercased().contains(expectation.expect.lowercased()), "\(name): \(failure.message)")
        #expect(!failure.message.contains("\n"), "message must be one line")
        #expect(failure.message.count <= 200, "message too long: \(failure.message)")
        #expect(analysis.score >= 0.3 || text.count < 40 || expectation.severity == .mild, "\(name): score \(analysis.score)")
        let classified = RepetitionAnalyzer.classify(analysis, text: text, thresholds: .default)
        #expect(classified.severity == expectation.severity, "\(name): \(classified.severity) \(classified.message)")
        #expect(classified.message.lowercased().contains(expectation.expect.lowercased()), "\(name): \(classified.message)")
        if classified.severity == .severe && !analysis.isEmpty && !analysis.isSingleTokenRepeated {
            #expect(classified.detail.contains("rule: severe_"), "\(name): \(classified.detail)")
        }
        if !analysis.isEmpty {
            #expect(!analysis.highlights.isEmpty, "\(name): no highlight")
            let count = text.count
            for h in analysis.highlights { #expect(0 <= h.start && h.start < h.end && h.end <= count) }
        }
    }

    @Test(arguments: RepetitionCorpus.normalNames)
    func normalAnswerPasses(_ name: String) throws {
        let text = try RepetitionCorpus.text("normal", name)
        let analysis = RepetitionAnalyzer.analyze(text)
        let verdict = RepetitionAnalyzer.judge(analysis, text: text, thresholds: .default)
        #expect(verdict == nil, "\(name) flagged: \(verdict?.message ?? "")\n\(verdict?.detail ?? "")")
        #expect(RepetitionAnalyzer.classify(analysis, text: text, thresholds: .default) == .clean)
        #expect(analysis.highlights.isEmpty)
        #expect(analysis.score < 0.5, "\(name): score \(analysis.score)")
    }

    /// Prints the headline numbers of both corpora and how many texts of each are clean / mild / severe (run with
    /// `--filter calibrationTable` to re-tune defaults).
    @Test func calibrationTable() throws {
        for folder in ["normal", "collapsed"] {
            var counts: [RepetitionSeverity: Int] = [:]
            defer {
                print("\(folder): " + RepetitionSeverity.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", "))
            }
            for name in RepetitionCorpus.names(folder) {
                let text = try RepetitionCorpus.text(folder, name)
                let a = RepetitionAnalyzer.analyze(text)
                let run = a.runs.filter { $0.kind != .ngram }.max { $0.repetitions < $1.repetitions }
                print(String(format: "%@/%@ rf=%.2f words=%d sr4=%.2f d2=%.2f zr=%.2f bytes=%d score=%.2f run=%@",
                             folder, name, a.repeatedFraction, a.wordTokenCount, a.seqRepWords[3], a.distinctWords[1], a.compressionRatio,
                             a.byteCount, a.score, run.map { "\($0.kind.rawValue):\($0.unit.debugDescription)x\($0.repetitions)" } ?? "-"))
                let verdict = RepetitionAnalyzer.classify(a, text: text, thresholds: .default)
                counts[verdict.severity, default: 0] += 1
                if verdict.severity != .clean { print("    -> \(verdict.severity.rawValue): \(verdict.message)") }
            }
        }
    }
}
