import Foundation
import TunecheckEngine

/// Repetition / mode collapse on generated answers: one check per answer, failing with a message that quotes the
/// repeated span. Suite metrics summarise the worst and mean answer.
public enum RepetitionSuite: EvaluationSuite {
    public static let kind = SuiteKind.repetition
    public static let shortName = "rep"
    public static let requirement = "prompts (or answers) and a model"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.prompts && inputs.model || inputs.answers }
    public static func applies(to subject: SubjectKind) -> Bool { subject != .fused }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let answers = try context.answers() else { return nil }
        let (result, records) = run(checkpoint: context.name, outputs: answers.outputs, useTokenIds: answers.hasTokenIds,
                                    thresholds: context.thresholds.repetition)
        return SuiteRun(result: result, answers: records)
    }

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
        let metrics = [Metric(.maxRepetitionScore, scores.max() ?? 0), Metric(.meanRepetitionScore, Statistics.mean(scores)),
                       Metric(.flaggedAnswers, Double(flagged)), Metric(.answers, Double(outputs.count))]
        return (SuiteResult(kind: .repetition, checkpoint: checkpoint, checks: checks, metrics: metrics,
                            startedAt: started, durationSeconds: Date().timeIntervalSince(started)), records)
    }
}

extension SuiteKind {
    public static let repetition = SuiteKind(declaring: "repetition")
}
