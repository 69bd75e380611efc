import CLibXML2
import Foundation
import TunecheckTestSupport
import Testing
import TunecheckHarness

/// `tunecheck eval` end to end on the bundled tiny model: a collapsed checkpoint fails with the repeated span
/// quoted while the base passes; the JUnit output validates against the Jenkins schema; the HTML report parses.
struct EvalCLITests {
    /// Runs `eval` on the base and the collapsed checkpoint, repetition suite only, with reports in `folder/report`.
    static func evalCollapsed(in folder: URL, extra: [String] = []) throws -> (CLIRunner.Result, report: URL) {
        let collapsed = try EvalFixtures.collapsedModel(at: folder.appendingPathComponent("collapsed")).folder
        let reports = folder.appendingPathComponent("report")
        let result = try CLIRunner.run(["eval", "--base", CLIRunner.defaultModel.path, "--checkpoint", collapsed.path,
                                        "--prompts", EvalFixtures.prompts.path, "--report-dir", reports.path] + extra)
        return (result, reports)
    }

    @Test func collapsedCheckpointFailsWithTheRepeatedSpanWhileTheBasePasses() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (result, reports) = try Self.evalCollapsed(in: folder, extra: ["--suites", "repetition"])
        #expect(result.status == 1, "stderr: \(result.standardError)")
        #expect(result.standardError.contains("repetition [collapsed]"), "\(result.standardError)")
        #expect(!result.standardError.contains("[base]"), "\(result.standardError)")
        #expect(result.standardOutput.contains("single token repeated: \"water\""), "\(result.standardOutput)")

        let report = try EvalFixtures.readJSON(reports.appendingPathComponent("report.json"))
        let checks = EvalFixtures.checks(report).filter { $0.kind == "repetition" }
        let base = checks.filter { $0.checkpoint == "base" }
        let collapsed = checks.filter { $0.checkpoint == "collapsed" }
        #expect(base.count == 4 && collapsed.count == 4)
        for check in base {
            #expect(check.check["status"] as? String == "passed", "base: \(check.check)")
        }
        for check in collapsed {
            #expect(check.check["status"] as? String == "failed")
            let message = check.check["message"] as? String ?? ""
            let detail = check.check["detail"] as? String ?? ""
            #expect(message.contains("\"water\""), "message quotes the repeated token: \(message)")
            #expect(detail.contains("span:  water water water water"), "detail quotes the span: \(detail)")
        }
        // The answers themselves: the collapsed model says " water" and nothing else, the base does not.
        let answers = (report["answers"] as? [[String: Any]]) ?? []
        for answer in answers where answer["checkpoint"] as? String == "collapsed" {
            let text = answer["text"] as? String ?? ""
            #expect(text.split(separator: " ").allSatisfy { $0 == "water" } && text.count == 6 * 64, "\(text.debugDescription)")
        }
        #expect(answers.filter { $0["checkpoint"] as? String == "base" && $0["flagged"] as? Bool == false }.count == 4)
    }

    @Test(SharedFixtures.schemaRequired("JUnit from eval against the Jenkins schema"))
    func junitFromEvalValidatesAgainstTheSchema() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Every suite the inputs allow, so failures, passes and skipped checks all appear in the XML.
        let (result, reports) = try Self.evalCollapsed(in: folder, extra: [
            "--pairs", EvalFixtures.pairs.path, "--texts", EvalFixtures.texts.path, "--max-tokens", "16",
            "--golden-dir", folder.appendingPathComponent("golden").path])
        #expect(result.status == 1, "stderr: \(result.standardError)")
        let junit = reports.appendingPathComponent("junit.xml")
        let schema = try #require(SharedFixtures.junitSchema)
        try JUnitValidator.validate(xmlAt: junit, schemaAt: schema)
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("<failure"), "the collapsed checkpoint's failures are in the XML")
        #expect(xml.contains("tunecheck.collapsed.repetition"))
        // Its tensors differ from the base's (MLP biases): weight delta cannot run, a JUnit error, not an abort.
        #expect(xml.contains("<error message=\"cannot compare the weights"), "weight delta reports an error for the collapsed folder")
        // The validator does reject what the schema forbids.
        let broken = Data(xml.replacingOccurrences(of: "<testsuites", with: "<testsuitez").replacingOccurrences(of: "</testsuites>", with: "</testsuitez>").utf8)
        #expect(throws: JUnitError.self) { try JUnitValidator.validate(xml: broken, schemaAt: schema) }
    }

    @Test func htmlReportParsesWithChartsAndEveryCheckpoint() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (result, reports) = try Self.evalCollapsed(in: folder, extra: [
            "--pairs", EvalFixtures.pairs.path, "--texts", EvalFixtures.texts.path, "--max-tokens", "16", "--suites",
            "repetition,preference,drift,weight-delta,preflight"])
        #expect(result.status == 1, "stderr: \(result.standardError)")
        let html = try Data(contentsOf: reports.appendingPathComponent("report.html"))
        let parsed = try HTMLStructure.parse(html)
        #expect(parsed.errors.isEmpty, "libxml2 HTML parser errors: \(parsed.errors)")
        #expect(HTMLStructure.unbalancedTags(String(decoding: html, as: UTF8.self)) == nil)
        #expect(parsed.elementCounts["svg", default: 0] >= 2, "charts are inline SVG: \(parsed.elementCounts)")
        #expect(parsed.elementCounts["table", default: 0] >= 1)
        for name in ["base", "collapsed"] {
            #expect(parsed.text.contains(name), "the page names checkpoint \(name)")
        }
        #expect(parsed.text.contains("single token repeated"), "the failing check's message is on the page")
        #expect(parsed.text.contains("water water water"), "the collapsed answer is shown")
    }

    @Test func balanceCheckCatchesBrokenMarkup() {
        #expect(HTMLStructure.unbalancedTags("<html><body><div><p>x</p></div></body></html>") == nil)
        #expect(HTMLStructure.unbalancedTags("<div><svg><circle r=\"1\"/></svg><br><img src=\"a\"></div>") == nil)
        #expect(HTMLStructure.unbalancedTags("<div><span>x</div></span>") != nil)
        #expect(HTMLStructure.unbalancedTags("<main><section>") != nil)
    }
}

/// An HTML page read with libxml2's HTML parser (errors collected), plus a strict tag-balance check of the source.
struct HTMLStructure {
    var errors: [String] = []
    var elementCounts: [String: Int] = [:]
    var text = ""

    static func parse(_ data: Data) throws -> HTMLStructure {
        final class Collector {
            var errors: [String] = []
        }
        let collector = Collector()
        let context = Unmanaged.passUnretained(collector).toOpaque()
        xmlSetStructuredErrorFunc(context) { context, error in
            guard let context, let error else { return }
            // libxml2 2.9's parser knows HTML 4 only: HTML5 elements (main, section, svg, ...) are "invalid tags"
            // but parsed as elements. Every other error (mismatched or stray end tags, bad entities) counts.
            if error.pointee.code == Int32(XML_HTML_UNKNOWN_TAG.rawValue) { return }
            let message = error.pointee.message.map { String(cString: $0) } ?? "?"
            Unmanaged<Collector>.fromOpaque(context).takeUnretainedValue().errors.append("line \(error.pointee.line): \(message)")
        }
        defer { xmlSetStructuredErrorFunc(nil, nil) }
        let document = data.withUnsafeBytes { bytes in
            htmlReadMemory(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count), "report.html", "utf-8",
                           Int32(HTML_PARSE_NONET.rawValue))
        }
        guard let document, let root = xmlDocGetRootElement(document) else { throw FixtureError("not parseable as HTML") }
        defer { xmlFreeDoc(document) }
        var result = HTMLStructure(errors: collector.errors)
        func walk(_ node: xmlNodePtr) {
            var child: xmlNodePtr? = node
            while let current = child {
                if current.pointee.type == XML_ELEMENT_NODE {
                    result.elementCounts[String(cString: current.pointee.name), default: 0] += 1
                } else if current.pointee.type == XML_TEXT_NODE, let content = current.pointee.content {
                    result.text += String(cString: content)
                }
                if let first = current.pointee.children { walk(first) }
                child = current.pointee.next
            }
        }
        walk(root)
        return result
    }

    /// Start and end tags must nest (void elements and `/>` excepted; `<style>` content skipped). Returns a
    /// description of the first problem, nil when balanced.
    static func unbalancedTags(_ html: String) -> String? {
        let void: Set<String> = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]
        var stack: [String] = []
        var index = html.startIndex
        while let open = html[index...].firstIndex(of: "<") {
            guard let close = html[open...].firstIndex(of: ">") else { return "unterminated tag" }
            let tag = html[html.index(after: open)..<close]
            index = html.index(after: close)
            if tag.hasPrefix("!") { continue }
            let isEnd = tag.hasPrefix("/")
            let name = (isEnd ? tag.dropFirst() : tag).prefix { !$0.isWhitespace && $0 != "/" }.lowercased()
            if isEnd {
                guard stack.last == name else { return "</\(name)> closes <\(stack.last ?? "nothing")>" }
                stack.removeLast()
            } else if !tag.hasSuffix("/") && !void.contains(name) {
                stack.append(name)
                if name == "style", let end = html[index...].range(of: "</style>") {
                    index = end.lowerBound
                }
            }
        }
        return stack.isEmpty ? nil : "unclosed: \(stack.joined(separator: " > "))"
    }
}
