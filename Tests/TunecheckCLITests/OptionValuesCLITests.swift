import Foundation
import Testing
import TunecheckTestSupport

/// Options over closed sets: a bad value exits 2 before any work, naming the allowed values; help lists them.
struct OptionValuesCLITests {
    @Test(arguments: [
        (["eval", "--base", "/nonexistent", "--format", "junit,pdf"], ["'junit,pdf'", "'junit'", "'json'", "'html'"]),
        (["eval", "--base", "/nonexistent", "--suites", "repetition,bogus"], ["'repetition,bogus'", "weight-delta", "fused-consistency"]),
        (["eval", "--base", "/nonexistent", "--chat-template", "yes"], ["'yes'", "'none'", "'auto'"]),
        (["watch", "--suite", "/nonexistent.yaml", "--dir", "/tmp", "--format", "xml"], ["'xml'", "'junit'"]),
        (["preflight", "--model", "/nonexistent", "--pairs", "/nonexistent.jsonl", "--fail-on", "maybe"], ["'maybe'", "'fail'", "'warn'", "'never'"]),
        (["bench", "score", "--shape", "big"], ["'big'", "- s15m", "- m7b"]),
        (["bench", "train", "--shape", "s15m", "--mode", "ppo"], ["'ppo'", "'sft'", "'dpo'"]),
        (["compare", "--base", "/nonexistent", "--checkpoint", "/nonexistent", "--format", "pdf"], ["'pdf'", "'terminal'", "'markdown'"]),
    ])
    func badValueNamesTheAllowedValues(_ arguments: [String], _ fragments: [String]) throws {
        let result = try CLIRunner.run(arguments)
        #expect(result.status == 2, "exit status \(result.status); stderr: \(result.standardError)")
        for fragment in fragments {
            #expect(result.standardError.contains(fragment), "stderr should mention \(fragment): \(result.standardError)")
        }
    }

    @Test func helpListsTheValues() throws {
        let result = try CLIRunner.run(["eval", "--help"])
        #expect(result.status == 0)
        let help = result.standardOutput.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        #expect(help.contains("(values: junit, json, html)"), "\(help)")
        #expect(help.contains("(values: none, auto)"))
        #expect(help.contains("weight-delta, choices, perplexity, golden, fused-consistency"))
    }
}
