import CLibXML2
import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckHarness

/// An element read back from generated XML with libxml2's parser.
struct ParsedElement {
    var name: String
    var attributes: [String: String]
    var text: String
    var children: [ParsedElement]

    subscript(_ attribute: String) -> String? { attributes[attribute] }
    func all(_ name: String) -> [ParsedElement] { children.filter { $0.name == name } }
    func first(_ name: String) -> ParsedElement? { children.first { $0.name == name } }

    static func parse(_ data: Data) throws -> ParsedElement {
        LibXML.initialize()
        let document = data.withUnsafeBytes { bytes in
            xmlReadMemory(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count), "junit.xml", nil,
                          Int32(XML_PARSE_NONET.rawValue))
        }
        guard let document, let root = xmlDocGetRootElement(document) else {
            struct NotXML: Error {}
            throw NotXML()
        }
        defer { xmlFreeDoc(document) }
        return element(root)
    }

    private static func element(_ node: xmlNodePtr) -> ParsedElement {
        var attributes: [String: String] = [:]
        var attribute = node.pointee.properties
        while let current = attribute {
            let name = String(cString: current.pointee.name)
            // An attribute's value is the text node(s) below it.
            var value = ""
            var textNode = current.pointee.children
            while let node = textNode {
                if let content = node.pointee.content { value += String(cString: content) }
                textNode = node.pointee.next
            }
            attributes[name] = value
            attribute = current.pointee.next
        }
        var children: [ParsedElement] = []
        var text = ""
        var child = node.pointee.children
        while let current = child {
            if current.pointee.type == XML_ELEMENT_NODE {
                children.append(element(current))
            } else if current.pointee.type == XML_TEXT_NODE || current.pointee.type == XML_CDATA_SECTION_NODE,
                      let content = current.pointee.content {
                text += String(cString: content)
            }
            child = current.pointee.next
        }
        return ParsedElement(name: String(cString: node.pointee.name), attributes: attributes, text: text, children: children)
    }
}

@Suite struct ReportJUnitTests {
    @Test func countsAndNamesMatchTheReport() throws {
        let report = ReportSample.report()
        let root = try ParsedElement.parse(try JUnitReport.render(report, hostname: "ci-runner-7"))
        #expect(root.name == "testsuites")
        #expect(root["name"] == report.title)
        let totalChecks = report.suites.map(\.checks.count).reduce(0, +)
        #expect(root["tests"] == String(totalChecks))
        #expect(root["failures"] == "4")  // 500 accuracy, 1500 repetition and weight delta, golden capital
        #expect(root["errors"] == "0")

        let suites = root.all("testsuite")
        #expect(suites.count == report.suites.count)
        for (parsed, suite) in zip(suites, report.suites) {
            #expect(parsed["name"] == JUnitReport.suiteName(for: suite))
            #expect(parsed["tests"] == String(suite.checks.count))
            #expect(parsed["failures"] == String(suite.failureCount))
            #expect(parsed["skipped"] == String(suite.skippedCount))
            #expect(parsed["hostname"] == "ci-runner-7")
            #expect(parsed.all("testcase").map { $0["name"] } == suite.checks.map(\.name))
            #expect(parsed.all("testcase").allSatisfy { $0["classname"] == parsed["name"] })
        }
        #expect(suites.first?["timestamp"] == "2025-03-01T12:00:00")
        #expect(suites.first?["name"] == "tunecheck.base.preflight")
        #expect(suites.first?["package"] == "tunecheck.base")
    }

    @Test func failuresCarryMessageTypeAndDetail() throws {
        let root = try ParsedElement.parse(try JUnitReport.render(ReportSample.report()))
        let suite = try #require(root.all("testsuite").first { $0["name"] == "tunecheck.checkpoint-1500.repetition" })
        let testcase = try #require(suite.all("testcase").first { $0["name"] == "prompt-2" })
        let failure = try #require(testcase.first("failure"))
        #expect(failure["message"] == "answer repeats \"hormonal\" 5 times (score 0.91 > 0.50)")
        #expect(failure["type"] == "repetition")
        // GitLab shows only the element text: it starts with the message, then the detail.
        #expect(failure.text.hasPrefix("answer repeats \"hormonal\" 5 times"))
        #expect(failure.text.contains("n-gram: [hormonal] ×5"))
        #expect(testcase.first("system-out")?.text == "repetition_score = 0.91")

        let properties = try #require(suite.first("properties")).all("property")
        let byName = Dictionary(properties.map { ($0["name"]!, $0["value"]!) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["checkpoint"] == "checkpoint-1500")
        #expect(byName["suite"] == "repetition")
        #expect(byName["max_repetition_score"] == "0.91")
        #expect(byName["prompt-2.repetition_score"] == "0.91")
        #expect(byName["setting.seed"] == "0")

        let drift = try #require(root.all("testsuite").first { $0["name"] == "tunecheck.checkpoint-500.drift" })
        let skipped = try #require(drift.all("testcase").first?.first("skipped"))
        #expect(skipped["message"] == "drift check needs --base-logits")
    }

    @Test func errorsAreErrorElements() throws {
        var report = ReportSample.report()
        report.suites[0].checks[0].status = .error(message: "config.json: unexpected token", detail: "line 3")
        let root = try ParsedElement.parse(try JUnitReport.render(report))
        #expect(root["errors"] == "1")
        let error = try #require(root.all("testsuite")[0].all("testcase")[0].first("error"))
        #expect(error["message"] == "config.json: unexpected token")
        #expect(error.text == "config.json: unexpected token\n\nline 3")
    }

    @Test func awkwardContentSurvivesEscaping() throws {
        let report = ReportSample.report(extraAwkwardCheck: ReportSample.awkwardCheck)
        let data = try JUnitReport.render(report)
        let root = try ParsedElement.parse(data)
        let suite = try #require(root.all("testsuite").last)
        let testcase = try #require(suite.first("testcase"))
        #expect(testcase["name"] == "weird <name> & \"quoted\"")
        let failure = try #require(testcase.first("failure"))
        #expect(failure["message"] == "first line with <&> \"quotes\" ]]> …")
        #expect(failure.text.contains("quotes \" ' <tag> & &amp; ]]> <![CDATA[ x ]]>"))
        #expect(failure.text.contains("bell:\\u{7} esc:\\u{1B}[31m nul:\\u{0}"))
        #expect(failure.text.contains("emoji:🧪 cjk:漢字 rtl:שלום combining:e\u{301} nonchar:\\u{FFFE}"))
        #expect(failure.text.contains("tab:\t"))
        #expect(failure.text.contains("more characters; the full text is in report.json"))
        #expect(failure.text.count < JUnitReport.detailLimit + 1000)
        #expect(testcase["time"] == "0.000")
        let properties = suite.first("properties")!.all("property")
        #expect(properties.contains { $0["name"] == "weird \"metric\" <&>" && $0["value"] == "1.5" })
        #expect(properties.contains { $0["name"] == "weird <name> & \"quoted\".nan" && $0["value"] == "NaN" })
    }

    @Test(SharedFixtures.schemaRequired("JUnit output against the Jenkins schema"))
    func generatedReportsValidateAgainstTheJenkinsSchema() throws {
        let schema = try #require(SharedFixtures.junitSchema)
        let (mildSuite, mildAnswers) = RepetitionSeverityTests.run(RepetitionSeverityTests.healthy + [RepetitionSeverityTests.mildAnswer])
        let directory = try ReportSample.temporaryDirectory("junit-xsd")
        defer { try? FileManager.default.removeItem(at: directory) }
        let reports: [(String, EvaluationReport)] = [
            ("sample", ReportSample.report()),
            ("awkward", ReportSample.report(extraAwkwardCheck: ReportSample.awkwardCheck)),
            ("empty", EvaluationReport(title: "", startedAt: Date(timeIntervalSince1970: 0), durationSeconds: .nan, suites: [], checkpoints: [])),
            ("edge", EvaluationReport(title: "edge \u{1}", startedAt: ReportSample.start, durationSeconds: 1e20, suites: [
                SuiteResult(kind: .golden, checkpoint: "v1.2 final", checks: [], startedAt: ReportSample.start, durationSeconds: -3),
                SuiteResult(kind: .drift, checkpoint: "", checks: [
                    CheckResult(name: "", status: .error(message: "", detail: ""), durationSeconds: .infinity),
                    CheckResult(name: "s", status: .skipped(reason: "two\nlines")),
                ]),
            ], checkpoints: [])),
            // A passing test case whose system-out carries a mild-repetition warning.
            ("warning", RepetitionSeverityTests.report(mildSuite, mildAnswers)),
        ]
        for (label, report) in reports {
            let url = directory.appendingPathComponent("\(label).xml")
            try JUnitReport.render(report).write(to: url)
            do {
                try JUnitValidator.validate(xmlAt: url, schemaAt: schema)
            } catch {
                Issue.record("\(label): \((error as? LocalizedError)?.errorDescription ?? "\(error)")")
            }
        }
    }

    @Test(SharedFixtures.schemaRequired("the validator's own checks"))
    func validatorReportsSchemaProblemsWithLines() throws {
        let schema = try #require(SharedFixtures.junitSchema)
        let bad = Data("""
        <?xml version="1.0"?>
        <testsuites>
          <testsuite name="x" tests="1" failures="0">
            <testcase name="a" time="1e-3"/>
            <bogus/>
          </testsuite>
        </testsuites>
        """.utf8)
        #expect {
            try JUnitValidator.validate(xml: bad, named: "bad.xml", schemaAt: schema)
        } throws: { error in
            guard case let .invalid(path, problems) = error as? JUnitError else { return false }
            let text = (error as? LocalizedError)?.errorDescription ?? ""
            return path == "bad.xml" && problems.count >= 2 && text.contains("line 3") && text.contains("errors")
        }
        #expect(throws: JUnitError.self) {
            try JUnitValidator.validate(xml: Data("<testsuites>".utf8), schemaAt: schema)
        }
        #expect(throws: JUnitError.self) {
            try JUnitValidator.validate(xml: Data("<testsuites/>".utf8), schemaAt: URL(fileURLWithPath: "/nonexistent/junit.xsd"))
        }
    }
}

@Test func repeatedSuitesGetDistinctNames() throws {
    var report = ReportSample.report()
    report.suites.append(report.suites[1])
    let names = JUnitReport.suiteNames(for: report)
    #expect(names[1] == "tunecheck.base.repetition")
    #expect(names.last == "tunecheck.base.repetition-2")
    #expect(Set(names).count == names.count)
    let root = try ParsedElement.parse(try JUnitReport.render(report))
    #expect(root.all("testsuite").last?.all("testcase").first?["classname"] == "tunecheck.base.repetition-2")
    #expect(JUnitReport.suiteName(for: SuiteResult(kind: .drift, checkpoint: "v1.2 final", checks: [])) == "tunecheck.v1_2_final.drift")
}
