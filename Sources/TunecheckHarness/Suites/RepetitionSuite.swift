import Foundation

/// Repetition / mode collapse on generated answers: one check per answer, failing with a message that quotes the
/// repeated span. Suite metrics summarise the worst and mean answer.
public enum RepetitionSuite {
    public static func run(checkpoint: String, outputs: [GoldenOutput], useTokenIds: Bool,
                           thresholds: RepetitionThresholds) -> (SuiteResult, [AnswerRecord]) {
        let started = Date()
        var checks: [CheckResult] = []
        var records: [AnswerRecord] = []
        var scores: [Double] = []
        var flagged = 0
        for output in outputs {
            let analysis = RepetitionAnalyzer.analyze(output.text, tokenIds: useTokenIds ? output.ids : nil, thresholds: thresholds)
            let verdict = RepetitionAnalyzer.judge(analysis, text: output.text, thresholds: thresholds)
            scores.append(analysis.score)
            if verdict != nil { flagged += 1 }
            let status: CheckStatus = verdict.map { .failed(message: $0.message, detail: "prompt: \(output.prompt)\n\($0.detail)") } ?? .passed
            checks.append(CheckResult(name: "prompt \(output.id)", status: status, metrics: RepetitionAnalyzer.metrics(analysis)))
            records.append(AnswerRecord(checkpoint: checkpoint, promptId: output.id, prompt: output.prompt, text: output.text, ids: output.ids,
                                        highlights: analysis.highlights, flagged: verdict != nil))
        }
        let metrics = [Metric("max_repetition_score", scores.max() ?? 0), Metric("mean_repetition_score", Statistics.mean(scores)),
                       Metric("flagged_answers", Double(flagged)), Metric("answers", Double(outputs.count))]
        return (SuiteResult(kind: .repetition, checkpoint: checkpoint, checks: checks, metrics: metrics,
                            startedAt: started, durationSeconds: Date().timeIntervalSince(started)), records)
    }
}
