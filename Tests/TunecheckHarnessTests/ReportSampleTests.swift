import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckHarness

/// A realistic `EvaluationReport` shared by the report writer tests: a base model and three checkpoints of a
/// preference fine-tune, the last one collapsed into repetition ("hormonal hormonal hormonal"), with preference
/// metrics, weight deltas and a golden mismatch.
enum ReportSample {
    static let start = Date(timeIntervalSince1970: 1_740_830_400)  // 2025-03-01T12:00:00Z

    static let collapsedAnswer = "Acne in teenagers is mostly hormonal hormonal hormonal hormonal hormonal."
    /// Character range of the repeated words in `collapsedAnswer`.
    static let collapsedSpan: Range<Int> = {
        let text = collapsedAnswer
        let start = text.distance(from: text.startIndex, to: text.range(of: "hormonal")!.lowerBound)
        let end = text.distance(from: text.startIndex, to: text.range(of: "hormonal.")!.lowerBound) + "hormonal".count
        return start..<end
    }()

    static func report(extraAwkwardCheck: CheckResult? = nil) -> EvaluationReport {
        let checkpoints = ["base", "checkpoint-500", "checkpoint-1000", "checkpoint-1500"]
        var suites: [SuiteResult] = []
        var time = start

        func next(_ seconds: Double) -> Date {
            defer { time = time.addingTimeInterval(seconds) }
            return time
        }

        for (index, name) in checkpoints.enumerated() {
            suites.append(SuiteResult(kind: .preflight, checkpoint: name, checks: [
                CheckResult(name: "config", status: .passed, durationSeconds: 0.012),
                CheckResult(name: "tokenizer", status: .passed, durationSeconds: 0.034),
            ], startedAt: next(0.05), durationSeconds: 0.046))

            let collapsed = name == "checkpoint-1500"
            suites.append(SuiteResult(kind: .repetition, checkpoint: name, checks: [
                CheckResult(name: "prompt-1", status: .passed, durationSeconds: 1.2,
                            metrics: [Metric("repetition_score", 0.02 * Double(index))]),
                CheckResult(name: "prompt-2",
                            status: collapsed
                                ? .failed(message: "answer repeats \"hormonal\" 5 times (score 0.91 > 0.50)",
                                          detail: "…teenagers is mostly hormonal hormonal hormonal hormonal hormonal.\nn-gram: [hormonal] ×5")
                                : .passed,
                            durationSeconds: 1.4,
                            metrics: [Metric("repetition_score", collapsed ? 0.91 : 0.03)]),
            ], metrics: [Metric("max_repetition_score", collapsed ? 0.91 : 0.03 * Double(index))],
            startedAt: next(2.6), durationSeconds: 2.6))

            if name != "base" {
                let accuracy = [0.0, 0.68, 0.81, 0.74][index]
                let margin = [0.0, 0.42, 1.37, 0.95][index]
                suites.append(SuiteResult(kind: .preference, checkpoint: name, checks: [
                    CheckResult(name: "accuracy",
                                status: accuracy >= 0.7 ? .passed : .failed(message: "accuracy 0.680 < 0.700", detail: "34 of 50 pairs preferred the chosen answer"),
                                durationSeconds: 8.1, metrics: [Metric("accuracy", accuracy)]),
                    CheckResult(name: "mean_margin", status: .passed, durationSeconds: 0.001, metrics: [Metric("mean_margin", margin)]),
                ], metrics: [Metric("accuracy", accuracy), Metric("mean_margin", margin), Metric("pairs", 50)],
                startedAt: next(8.2), durationSeconds: 8.2))

                let delta = [0.0, 0.0042, 0.011, 0.063][index]
                suites.append(SuiteResult(kind: .weightDelta, checkpoint: name, checks: [
                    CheckResult(name: "relative_delta",
                                status: delta > 0.05 ? .failed(message: "relative weight delta 0.063 > 0.050",
                                                               detail: "largest: model.layers.0.mlp.down_proj.weight 0.21")
                                                     : .passed,
                                durationSeconds: 0.5, metrics: [Metric("relative_delta", delta)]),
                ], metrics: [Metric("relative_delta", delta)], startedAt: next(0.5), durationSeconds: 0.5))

                suites.append(SuiteResult(kind: .drift, checkpoint: name, checks: [
                    CheckResult(name: "kl_to_base", status: .skipped(reason: "drift check needs --base-logits"), durationSeconds: 0),
                ], startedAt: next(0), durationSeconds: 0))
            }
        }

        suites.append(SuiteResult(kind: .golden, checkpoint: "checkpoint-1000", checks: [
            CheckResult(name: "greeting", status: .passed, durationSeconds: 0.8, metrics: [Metric("similarity", 1)]),
            CheckResult(name: "capital", status: .failed(message: "similarity 0.62 < 0.90",
                                                         detail: "expected: The capital of France is Paris.\nactual:   The capital city of France is Lyon."),
                        durationSeconds: 0.9, metrics: [Metric("similarity", 0.62)]),
        ], startedAt: next(1.7), durationSeconds: 1.7))

        if let extraAwkwardCheck {
            suites.append(SuiteResult(kind: .fusedConsistency, checkpoint: "checkpoint-1000", checks: [extraAwkwardCheck],
                                      metrics: [Metric("weird \"metric\" <&>", 1.5)], startedAt: next(0.1), durationSeconds: 0.1))
        }

        let summaries = [
            CheckpointSummary(name: "base", repetitionScore: 0.03, passed: true),
            CheckpointSummary(name: "checkpoint-500", step: 500, preferenceAccuracy: 0.68, meanMargin: 0.42, repetitionScore: 0.03,
                              relativeWeightDelta: 0.0042, passed: false),
            CheckpointSummary(name: "checkpoint-1000", step: 1000, preferenceAccuracy: 0.81, meanMargin: 1.37, repetitionScore: 0.04,
                              relativeWeightDelta: 0.011, passed: false),
            CheckpointSummary(name: "checkpoint-1500", step: 1500, preferenceAccuracy: 0.74, meanMargin: 0.95, repetitionScore: 0.91,
                              relativeWeightDelta: 0.063, passed: false),
        ]

        let prompts = [
            ("prompt-1", "Give one tip for a good night's sleep."),
            ("prompt-2", "Why do teenagers get acne?"),
        ]
        var answers: [AnswerRecord] = []
        for name in checkpoints {
            answers.append(AnswerRecord(checkpoint: name, promptId: prompts[0].0, prompt: prompts[0].1,
                                        text: "Keep a regular schedule: go to bed and wake up at the same time every day (\(name))."))
            if name == "checkpoint-1500" {
                answers.append(AnswerRecord(checkpoint: name, promptId: prompts[1].0, prompt: prompts[1].1, text: collapsedAnswer,
                                            highlights: [HighlightSpan(start: collapsedSpan.lowerBound, end: collapsedSpan.upperBound,
                                                                       label: "repeated 1-gram ×5")],
                                            flagged: true))
            } else {
                answers.append(AnswerRecord(checkpoint: name, promptId: prompts[1].0, prompt: prompts[1].1,
                                            text: "Hormones rise during puberty, skin makes more oil, and pores clog. <script>alert('x')</script> Wash gently twice a day."))
            }
        }

        let golden = [
            GoldenComparison(checkpoint: "checkpoint-1000", promptId: "greeting", expectedText: "Hello! How can I help you today?",
                             actualText: "Hello! How can I help you today?", similarity: 1, matched: true),
            GoldenComparison(checkpoint: "checkpoint-1000", promptId: "capital", expectedText: "The capital of France is Paris.",
                             actualText: "The capital city of France is Lyon.", similarity: 0.62, matched: false),
        ]

        return EvaluationReport(
            title: "tunecheck: dpo-acne run 7", startedAt: start, durationSeconds: 73.25,
            settings: [("base", "models/qwen2-0.5b"), ("checkpoints", "runs/dpo-7"), ("seed", "0"), ("max_new_tokens", "64")],
            suites: suites, checkpoints: summaries, answers: answers, golden: golden)
    }

    /// Detail text full of things XML, HTML and terminals find awkward.
    static let awkwardText = "quotes \" ' <tag> & &amp; ]]> <![CDATA[ x ]]> bell:\u{07} esc:\u{1B}[31m nul:\u{00} ff:\u{0C} "
        + "tab:\t cr:\r emoji:🧪 cjk:漢字 rtl:שלום combining:e\u{301} nonchar:\u{FFFE} "

    static var awkwardCheck: CheckResult {
        CheckResult(name: "weird <name> & \"quoted\"",
                    status: .failed(message: "first line with <&> \"quotes\" ]]>\nsecond line", detail: awkwardText + String(repeating: "long detail ", count: 10_000)),
                    durationSeconds: 1e-7, metrics: [Metric("nan", .nan), Metric("inf", .infinity), Metric("tiny", 1e-12)])
    }

    // MARK: Paths

    static func temporaryDirectory(_ label: String) throws -> URL { try TestPaths.temporaryDirectory("report-\(label)") }
}

@Test func reportSampleIsConsistent() {
    let report = ReportSample.report()
    #expect(report.checkpoints.map(\.name) == ["base", "checkpoint-500", "checkpoint-1000", "checkpoint-1500"])
    #expect(!report.passed)
    let collapsed = report.answers.first { $0.flagged }!
    let characters = Array(collapsed.text)
    let span = collapsed.highlights[0]
    #expect(String(characters[span.start..<span.end]) == "hormonal hormonal hormonal hormonal hormonal")
}
