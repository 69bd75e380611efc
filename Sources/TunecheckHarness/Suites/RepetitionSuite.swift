import Foundation
import TunecheckEngine

/// Repetition / mode collapse on generated answers: one check per answer. Each answer is classified clean, mild or
/// severe (`RepetitionAnalyzer.classify`). A severe answer fails its check, quoting the repeated span; a mild one
/// passes with a warning, unless more than `maxMildFraction` of the answers are mild, in which case every mild
/// answer fails (one mild answer among eight is a quirk, a third of them is a trend). Suite metrics summarise the
/// worst and mean answer and count each severity.
public enum RepetitionSuite: EvaluationSuite {
    public static let kind = SuiteKind.repetition
    public static let shortName = "rep"
    public static let requirement = "prompts (or answers) and a model"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.prompts && inputs.model || inputs.answers }
    public static func applies(to subject: SubjectKind) -> Bool { subject != .fused }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding { .computations([.answers]) }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let answers = try context.answers() else { return nil }
        let (result, records) = run(checkpoint: context.name, outputs: answers.outputs, useTokenIds: answers.hasTokenIds,
                                    thresholds: context.thresholds.repetition)
        return SuiteRun(result: result, answers: records)
    }

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
        let metrics = [Metric(.maxRepetitionScore, scores.max() ?? 0), Metric(.meanRepetitionScore, Statistics.mean(scores)),
                       Metric(.flaggedAnswers, Double(mild + severe)), Metric(.answers, Double(outputs.count)),
                       Metric(.severeAnswers, Double(severe)), Metric(.mildAnswers, Double(mild))]
        return (SuiteResult(kind: .repetition, checkpoint: checkpoint, checks: checks, metrics: metrics,
                            startedAt: started, durationSeconds: Date().timeIntervalSince(started)), records)
    }
}

extension SuiteKind {
    public static let repetition = SuiteKind(declaring: "repetition")
}

extension MetricName {
    /// Answers of the severity (suite level): any severe answer fails the checkpoint; mild ones fail it only above
    /// `max_mild_fraction`. (`flaggedAnswers` counts both.)
    public static let severeAnswers = MetricName("severe_answers")
    public static let mildAnswers = MetricName("mild_answers")
}
