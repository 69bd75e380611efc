import Foundation
import TunecheckTestSupport
import Testing

/// The issue's check on the demo data: a sane DPO run improves held-out preference accuracy (and passes the demo
/// suite), using the committed gentle config with fewer steps so the test stays short.
struct DemoHealthyRunTests {
    @Test func gentleDPOImprovesHeldOutPreferenceAccuracy() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let demo = TestPaths.repositoryRoot.appendingPathComponent("evalsets/demo")
        let config = demo.appendingPathComponent("dpo-healthy.yaml")
        // Only the suites this check reads: the generation suites make a debug build slow and are covered elsewhere.
        let suite = folder.appendingPathComponent("suite.yaml")
        try """
        name: demo-healthy-test
        base: \(TestPaths.repositoryRoot.appendingPathComponent("models/demo-base").path)
        evalsets: {pairs: \(demo.appendingPathComponent("pairs.heldout.jsonl").path)}
        suites: [preflight, preference]
        reports: {dir: \(folder.appendingPathComponent("unused").path)}
        """.write(to: suite, atomically: true, encoding: .utf8)
        let result = try CLIRunner.run(["train", "--config", config.path, "--set", "iters=8", "--set", "save_every=8",
                                        "--set", "adapter_path=\(folder.path)", "--set", "eval_suite=\(suite.path)"],
                                       environment: ["TUNECHECK_NO_PROGRESS": "1"])
        #expect(result.status == 0, "healthy run should pass: \(result.standardError)")
        let data = try Data(contentsOf: folder.appendingPathComponent("eval/report.json"))
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let suites = try #require(report["suites"] as? [[String: Any]])
        func metric(_ suite: [String: Any], _ name: String) -> Double? {
            (suite["metrics"] as? [String: Any])?[name] as? Double
        }
        let preference = try #require(suites.first { ($0["name"] as? String)?.hasSuffix(".preference") == true })
        let accuracy = try #require(metric(preference, "rewards/accuracies"))
        let margin = try #require(metric(preference, "rewards/margins"))
        // Under the base every implicit reward is 0, so its accuracy is 0; the preflight says the base prefers no
        // held-out pair. After 8 gentle steps the majority must be ranked right, with a positive margin.
        #expect(accuracy > 0.5, "held-out preference accuracy \(accuracy)")
        #expect(margin > 0, "held-out reward margin \(margin)")
        let preflight = try #require(suites.first { ($0["name"] as? String)?.hasSuffix(".preflight") == true })
        let alreadyPreferred = try #require(metric(preflight, "already_preferred_sum"))
        #expect(accuracy > alreadyPreferred, "accuracy \(accuracy) vs base's \(alreadyPreferred)")
        let rawAccuracy = try #require(metric(preference, "raw_accuracy_sum"))
        #expect(rawAccuracy >= alreadyPreferred, "raw accuracy without reference must not fall below the base's")
    }
}
