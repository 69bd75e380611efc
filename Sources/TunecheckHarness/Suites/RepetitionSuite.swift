import Foundation

/// Repetition / mode collapse on generated answers: one check per answer. Each answer is classified clean, mild or
/// severe (`RepetitionAnalyzer.classify`). A severe answer fails its check, quoting the repeated span; a mild one
/// passes with a warning, unless more than `maxMildFraction` of the answers are mild, in which case every mild
/// answer fails (one mild answer among eight is a quirk, a third of them is a trend). Suite metrics summarise the
/// worst and mean answer and count each severity.
public enum RepetitionSuite {
    public static func run(checkpoint: String, outputs: [GoldenOutput], useTokenIds: Bool,
                           thresholds: RepetitionThresholds) -> (SuiteResult, [AnswerRecord]) {
        let started = Date()
        let judged = outputs.map { output -> (analysis: RepetitionAnalysis, verdict: RepetitionVerdict) in
            let analysis = RepetitionAnalyzer.analyze(output.text, tokenIds: useTokenIds ? output.ids : nil, thresholds: thresholds)
            return (analysis, RepetitionAnalyzer.classify(analysis, text: output.text, thresholds: thresholds))
        }
        let mild = judged.filter { $0.verdict.severity == .mild }.count
        let severe = judged.filter { $0.verdict.severity == .severe }.count
        let mildFraction = outputs.isEmpty ? 0 : Double(mild) / Double(outputs.count)
        let tooManyMild = mildFraction > thresholds.maxMildFraction

        var checks: [CheckResult] = []
        var records: [AnswerRecord] = []
        for (output, (analysis, verdict)) in zip(outputs, judged) {
            let detail = "prompt: \(output.prompt)\n\(verdict.detail)"
            var status = CheckStatus.passed
            var warning: CheckWarning?
            switch verdict.severity {
            case .clean:
                break
            case .severe:
                status = .failed(message: verdict.message, detail: detail)
            case .mild where tooManyMild:
                let share = "\(mild) of \(outputs.count) answers mild > max_mild_fraction \(RepetitionAnalyzer.fmt(thresholds.maxMildFraction))"
                status = .failed(message: "mild repetition in \(share): \(verdict.message)", detail: detail)
            case .mild:
                warning = CheckWarning(message: "mild repetition: \(verdict.message)", detail: detail)
            }
            checks.append(CheckResult(name: "prompt \(output.id)", status: status, metrics: RepetitionAnalyzer.metrics(analysis),
                                      warning: warning))
            records.append(AnswerRecord(checkpoint: checkpoint, promptId: output.id, prompt: output.prompt, text: output.text, ids: output.ids,
                                        highlights: analysis.highlights, flagged: verdict.severity != .clean, severity: verdict.severity))
        }
        let scores = judged.map(\.analysis.score)
        let metrics = [Metric("max_repetition_score", scores.max() ?? 0), Metric("mean_repetition_score", Statistics.mean(scores)),
                       Metric("flagged_answers", Double(mild + severe)), Metric("answers", Double(outputs.count)),
                       Metric("severe_answers", Double(severe)), Metric("mild_answers", Double(mild))]
        return (SuiteResult(kind: .repetition, checkpoint: checkpoint, checks: checks, metrics: metrics,
                            startedAt: started, durationSeconds: Date().timeIntervalSince(started)), records)
    }
}
