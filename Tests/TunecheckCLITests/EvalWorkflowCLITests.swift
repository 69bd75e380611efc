import Foundation
import TunecheckTestSupport
import Testing

/// `eval` inputs and outputs: bad suite files, evalsets and checkpoints (exit 2, one line naming the file), atomic
/// reports, golden outputs, answers without a model, and `compare`.
struct EvalWorkflowCLITests {
    static let base = CLIRunner.defaultModel.path

    static func inode(_ url: URL) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int)
    }

    // MARK: - Bad input

    static let badSuites: [(file: String, content: String, mentions: [String])] = [
        ("typo.yaml", "name: x\nbase: \(base)\ngeneraton: {max_tokens: 3}\n", ["typo.yaml", "unknown key 'generaton'"]),
        ("nested.yaml", "name: x\nbase: \(base)\nthresholds: {preference: {max_margn: 3}}\n", ["nested.yaml", "max_margn"]),
        ("broken.yaml", "name: x\nbase: [unclosed\n", ["broken.yaml", "not valid YAML"]),
        ("empty.yaml", "", ["empty.yaml", "empty"]),
        ("list.yaml", "- a\n- b\n", ["list.yaml", "mapping"]),
        ("type.yaml", "base: \(base)\ngeneration: {max_tokens: many}\n", ["type.yaml", "generation.max_tokens", "integer"]),
        ("range.yaml", "base: \(base)\nthresholds: {preference: {min_accuracy: 2}}\n", ["range.yaml", "min_accuracy"]),
        ("suite.yaml", "base: \(base)\nsuites: [repetition, vibes]\n", ["suite.yaml", "vibes"]),
        ("format.yaml", "base: \(base)\nreports: {formats: [pdf]}\n", ["format.yaml", "pdf"]),
        ("bad.json", "{\"name\": \"x\", \"bse\": 1}", ["bad.json", "unknown key 'bse'"]),
    ]

    @Test(arguments: badSuites.indices)
    func badSuiteFileIsAnInputError(_ index: Int) throws {
        let (file, content, mentions) = Self.badSuites[index]
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let suite = folder.appendingPathComponent(file)
        try content.write(to: suite, atomically: true, encoding: .utf8)
        let reports = folder.appendingPathComponent("report")
        try BadInputCLITests.expectInputError(["eval", "--suite", suite.path, "--report-dir", reports.path], mentions: mentions, noFileAt: reports)
    }

    @Test func missingSuiteFile() throws {
        try BadInputCLITests.expectInputError(["eval", "--suite", "/nonexistent/suite.yaml"], mentions: ["/nonexistent/suite.yaml", "no such file"])
    }

    @Test func missingOrMalformedEvalsets() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let reports = folder.appendingPathComponent("report")
        let duplicate = folder.appendingPathComponent("dup.jsonl")
        try CLIRunner.writeLines(["{\"id\": \"a\", \"prompt\": \"x\"}", "{\"id\": \"a\", \"prompt\": \"y\"}"], to: duplicate)
        let cases: [([String], [String])] = [
            (["--prompts", folder.appendingPathComponent("nope.jsonl").path], ["nope.jsonl", "no such file"]),
            (["--prompts", duplicate.path], ["dup.jsonl:2", "duplicate id \"a\""]),
            (["--pairs", EvalFixtures.prompts.path], ["prompts.jsonl:1", "missing \"chosen\""]),
        ]
        for (arguments, mentions) in cases {
            try BadInputCLITests.expectInputError(["eval", "--base", Self.base, "--report-dir", reports.path] + arguments,
                                                  mentions: mentions, noFileAt: reports)
        }
        // A suite file naming an evalset that is not there.
        let suite = folder.appendingPathComponent("suite.yaml")
        try "base: \(Self.base)\nevalsets: {prompts: missing.jsonl}\n".write(to: suite, atomically: true, encoding: .utf8)
        try BadInputCLITests.expectInputError(["eval", "--suite", suite.path, "--report-dir", reports.path],
                                              mentions: [folder.appendingPathComponent("missing.jsonl").path], noFileAt: reports)
    }

    @Test func unreadableCheckpoints() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let reports = folder.appendingPathComponent("report")
        let emptyFolder = folder.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: emptyFolder, withIntermediateDirectories: true)
        let adapters = folder.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: adapters, withIntermediateDirectories: true)
        let adapter = try EvalFixtures.adapterBytes(seed: 3, folder: adapters)
        let truncated = adapters.appendingPathComponent("0000010_adapters.safetensors")
        try adapter.prefix(adapter.count - 100).write(to: truncated)
        let model = try BadInputCLITests.copyOfDefaultModel()
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let weights = model.appendingPathComponent("model.safetensors")
        try Data(contentsOf: weights).prefix(5000).write(to: weights)
        let cases: [(String, [String])] = [
            (folder.appendingPathComponent("nothere").path, ["nothere", "checkpoint not found"]),
            (emptyFolder.path, ["empty", "neither adapter_config.json"]),
            (folder.appendingPathComponent("run/*_adapters.safetensors").path, ["no file matches"]),
            (truncated.path, ["0000010_adapters.safetensors"]),
            (model.path, ["model.safetensors", "truncated"]),
        ]
        for (checkpoint, mentions) in cases {
            try BadInputCLITests.expectInputError(["eval", "--base", Self.base, "--prompts", EvalFixtures.prompts.path, "--suites", "repetition",
                                                   "--checkpoint", checkpoint, "--report-dir", reports.path], mentions: mentions, noFileAt: reports)
        }
    }

    @Test func reportsAreReplacedAtomicallyAndKeptOnBadInput() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let reports = folder.appendingPathComponent("report")
        let arguments = ["eval", "--base", Self.base, "--prompts", EvalFixtures.prompts.path, "--suites", "repetition",
                         "--max-tokens", "8", "--report-dir", reports.path]
        let first = try CLIRunner.run(arguments)
        #expect(first.status == 0, "\(first.standardError)")
        #expect(EvalFixtures.listing(reports) == ["junit.xml", "report.html", "report.json"], "no temporary files are left")
        let inodes = try ["junit.xml", "report.html", "report.json"].map { try Self.inode(reports.appendingPathComponent($0)) }

        let second = try CLIRunner.run(arguments)
        #expect(second.status == 0)
        #expect(EvalFixtures.listing(reports) == ["junit.xml", "report.html", "report.json"])
        let after = try ["junit.xml", "report.html", "report.json"].map { try Self.inode(reports.appendingPathComponent($0)) }
        for (old, new) in zip(inodes, after) { #expect(old != new, "each report is a new file renamed into place, not rewritten in place") }

        // A run that fails on bad input leaves the previous reports as they were.
        let snapshot = try Data(contentsOf: reports.appendingPathComponent("report.json"))
        let bad = try CLIRunner.run(arguments + ["--checkpoint", folder.appendingPathComponent("nothere").path])
        #expect(bad.status == 2)
        #expect(try Data(contentsOf: reports.appendingPathComponent("report.json")) == snapshot)
        #expect(EvalFixtures.listing(reports) == ["junit.xml", "report.html", "report.json"])
    }

    // MARK: - Golden outputs

    @Test func goldenOutputsAreCreatedOnlyWhenAskedComparedAndDiffed() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let golden = folder.appendingPathComponent("golden")
        let reports = folder.appendingPathComponent("report")
        let file = golden.appendingPathComponent("tunecheck/base.json")
        let arguments = ["eval", "--base", Self.base, "--prompts", EvalFixtures.prompts.path, "--suites", "golden", "--max-tokens", "8",
                         "--golden-dir", golden.path, "--report-dir", reports.path]

        let missing = try CLIRunner.run(arguments)
        #expect(missing.status == 1)
        #expect(missing.standardOutput.contains("no golden outputs for 'base'"), "\(missing.standardOutput)")
        #expect(!FileManager.default.fileExists(atPath: file.path), "a missing golden file is not created without --update-golden")
        let missingReport = try EvalFixtures.readJSON(reports.appendingPathComponent("report.json"))
        let missingMessage = EvalFixtures.checks(missingReport).first { $0.kind == "golden" }?.check["message"] as? String ?? ""
        #expect(missingMessage.contains("--update-golden") && missingMessage.contains(file.path), "\(missingMessage)")

        let update = try CLIRunner.run(arguments + ["--update-golden"])
        #expect(update.status == 0, "\(update.standardOutput)")
        #expect(EvalFixtures.listing(file.deletingLastPathComponent()) == ["base.json"], "written atomically: no temporary file left")
        let created = try Data(contentsOf: file)
        let createdInode = try Self.inode(file)

        let same = try CLIRunner.run(arguments)
        #expect(same.status == 0, "\(same.standardOutput)")

        // Someone else's golden answer for prompt-1: the check fails and the report shows a word diff.
        var object = try #require(try JSONSerialization.jsonObject(with: created) as? [String: Any])
        var outputs = try #require(object["outputs"] as? [[String: Any]])
        outputs[0]["text"] = "Drink about eight glasses"
        outputs[0]["ids"] = [1, 2, 3]
        object["outputs"] = outputs
        try JSONSerialization.data(withJSONObject: object).write(to: file)
        let changed = try CLIRunner.run(arguments)
        #expect(changed.status == 1)
        #expect(changed.standardOutput.contains("output differs from golden"), "\(changed.standardOutput)")
        let html = try String(contentsOf: reports.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("<del>Drink about eight glasses</del>") || html.contains("<del>Drink"), "the expected words are shown deleted")
        #expect(html.contains("<ins>"), "the new words are shown inserted")
        #expect(html.contains("✘ mismatch"))

        let rewrite = try CLIRunner.run(arguments + ["--update-golden"])
        #expect(rewrite.status == 0)
        #expect(try Data(contentsOf: file) == created, "--update-golden restores the outputs")
        #expect(try Self.inode(file) != createdInode, "the golden file is replaced by rename, not rewritten in place")
        #expect(EvalFixtures.listing(file.deletingLastPathComponent()) == ["base.json"])
    }

    // MARK: - Answers without a model

    @Test func answersRunTheTextSuitesWithoutAModel() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let answers = folder.appendingPathComponent("answers.jsonl")
        let collapsed = Array(repeating: "hormonal", count: 20).joined(separator: " ")
        try CLIRunner.writeLines([
            #"{"id": "p1", "prompt": "Question: How much water?\nAnswer:", "answer": " About eight glasses, more when it is hot.", "checkpoint": "step-100"}"#,
            #"{"id": "p2", "prompt": "Question: Sleep?\nAnswer:", "answer": " Seven to nine hours a night.", "checkpoint": "step-100"}"#,
            #"{"id": "p1", "prompt": "Question: How much water?\nAnswer:", "answer": " \#(collapsed)", "checkpoint": "step-200"}"#,
            #"{"id": "p2", "prompt": "Question: Sleep?\nAnswer:", "answer": " Seven to nine hours a night.", "checkpoint": "step-200"}"#,
        ], to: answers)
        let reports = folder.appendingPathComponent("report")
        let result = try CLIRunner.run(["eval", "--answers", answers.path, "--suites", "repetition", "--report-dir", reports.path])
        #expect(result.status == 1, "\(result.standardError)")
        #expect(result.standardError.contains("repetition [step-200]") && !result.standardError.contains("step-100"), "\(result.standardError)")
        let report = try EvalFixtures.readJSON(reports.appendingPathComponent("report.json"))
        let names = ((report["checkpoints"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        #expect(names == ["step-100", "step-200"], "no base is evaluated")
        let failed = EvalFixtures.checks(report).filter { $0.check["status"] as? String == "failed" }
        #expect(failed.map(\.checkpoint) == ["step-200"])
        #expect((failed.first?.check["message"] as? String ?? "").contains("\"hormonal\""))
        let settings = (report["settings"] as? [String: Any]) ?? [:]
        #expect(settings["base"] == nil, "no model was involved: \(settings)")

        // Suites that need a model are refused with answers alone.
        try BadInputCLITests.expectInputError(["eval", "--answers", answers.path, "--suites", "preference"], mentions: ["preference", "base model"])
    }

    // MARK: - compare

    @Test func compareSideBySideInTerminalMarkdownAndHTML() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let collapsed = try EvalFixtures.collapsedModel(at: folder.appendingPathComponent("collapsed")).folder
        let common = ["compare", "--base", Self.base, "--checkpoint", collapsed.path, "--prompts", EvalFixtures.prompts.path, "--max-tokens", "12"]

        let terminal = try CLIRunner.run(common, environment: ["COLUMNS": "100"])
        #expect(terminal.status == 0, "\(terminal.standardError)")
        let lines = terminal.standardOutput.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first?.hasPrefix("base ") == true && lines.first?.hasSuffix("│ collapsed") == true, "\(lines.first ?? "")")
        #expect(lines.filter { $0.hasPrefix("▶ Question:") }.count == 4)
        let rows = lines.filter { $0.contains(" │ ") }
        #expect(!rows.isEmpty)
        for row in rows {
            let leftWidth = { (line: Substring) in line.components(separatedBy: " │ ")[0].count }
            #expect(leftWidth(row) == leftWidth(rows[0]), "columns line up: \(row.debugDescription)")
        }
        #expect(rows.filter { $0.hasSuffix("[REPETITIVE]") }.count == 4, "only the collapsed column is flagged")
        let controls = terminal.standardOutput.unicodeScalars.filter { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) }
        #expect(controls.isEmpty, "no raw control characters reach the terminal: \(controls.map(\.value))")

        let markdown = try CLIRunner.run(common + ["--format", "markdown"])
        #expect(markdown.status == 0)
        let table = markdown.standardOutput.split(separator: "\n")
        #expect(table.first == "| prompt | base | collapsed |")
        #expect(table.count == 6, "header, rule and one row per prompt: \(markdown.standardOutput)")
        for row in table.dropFirst(2) {
            let cells = row.replacingOccurrences(of: "\\|", with: "").split(separator: "|", omittingEmptySubsequences: false)
            #expect(cells.count == 5, "three cells: \(row)")
            #expect(row.hasSuffix("water water ⚠️ repetitive |"), "\(row)")
        }

        let output = folder.appendingPathComponent("compare.html")
        let html = try CLIRunner.run(common + ["--format", "html", "--output", output.path])
        #expect(html.status == 0)
        let page = try HTMLStructure.parse(Data(contentsOf: output))
        #expect(page.errors.isEmpty, "\(page.errors)")
        #expect(page.text.contains("collapsed") && page.text.contains("water water water"))
        #expect(HTMLStructure.unbalancedTags(try String(contentsOf: output, encoding: .utf8)) == nil)
    }
}
