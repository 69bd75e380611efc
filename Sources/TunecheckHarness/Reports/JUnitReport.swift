import CLibXML2
import Foundation

/// JUnit XML for CI servers (Jenkins, GitLab, GitHub Actions reporters), written with libxml2's `xmlTextWriter`
/// so every attribute and text node is escaped by the library. The output validates against the Jenkins xUnit
/// plugin's `junit-10.xsd` (see `JUnitValidator`).
///
/// Shape:
///
///     <testsuites name="<title>" tests failures errors time>
///       <testsuite name="tunecheck.<checkpoint>.<suite>" package="tunecheck.<checkpoint>" id tests failures
///                  errors skipped time timestamp hostname>
///         <properties>  checkpoint, suite, setting.<key>, <suite metric>, <check>.<check metric>
///         <testcase classname="tunecheck.<checkpoint>.<suite>" name="<check>" time>
///           <failure message="<one line>" type="<suite>">message, blank line, detail</failure>
///           | <error message type>…</error> | <skipped message="<reason>"/>
///           <system-out>`WARNING: <message>` and its detail for a passing check with a warning, then the check
///                       metrics, one `name = value` a line</system-out>
///
/// Naming: `tunecheck.<checkpoint>.<suite>` reads as package `tunecheck.<checkpoint>`, class `<suite>` in
/// Jenkins (which splits `classname` at the last dot), so the test tree groups by checkpoint first and then by
/// suite; GitLab shows `classname` as its "Suite" column and `name` as the test; dorny/test-reporter and
/// action-junit-report list `classname.name`. Checkpoint names are kept readable; only dots and whitespace (which
/// would shift Jenkins' package split) become `_`; the exact checkpoint name is in the `checkpoint` property.
///
/// What the XSD dictates: `testsuites` carries only name/time/tests/failures/errors (no skipped, timestamp or
/// properties), so run settings are repeated as `setting.*` properties of each suite; `testcase` cannot hold
/// `properties`, so per-check metrics become suite properties prefixed with the check name and are also written
/// to the check's `system-out` (the only per-test text GitLab shows besides failures); `time` must match
/// `SUREFIRE_TIME` (plain decimal, no exponent). GitLab ignores the `message` attribute, so the failure text
/// starts with the message, then the detail.
public enum JUnitReport {
    /// Longest failure or error text kept (characters); longer details are cut with a note (report.json has all).
    public static let detailLimit = 64 * 1024

    /// The `testsuite` name and `testcase` classname of a suite.
    public static func suiteName(for suite: SuiteResult) -> String {
        "tunecheck.\(identifierPart(suite.checkpoint)).\(suite.kind.rawValue)"
    }

    /// The suite names of a whole report, in order. A repeated name (two suites of one kind on one checkpoint,
    /// e.g. two evalsets) gets `-2`, `-3`, … appended: GitLab keeps only the first of two tests with the same
    /// classname and name.
    public static func suiteNames(for report: EvaluationReport) -> [String] {
        var seen: [String: Int] = [:]
        return report.suites.map { suite in
            let name = suiteName(for: suite)
            let count = (seen[name] ?? 0) + 1
            seen[name] = count
            return count == 1 ? name : "\(name)-\(count)"
        }
    }

    /// The machine's host name (`localhost` if unknown), for the `hostname` attribute.
    public static func currentHostname() -> String {
        let name = ProcessInfo.processInfo.hostName
        return name.isEmpty ? "localhost" : name
    }

    /// Renders `report` as a UTF-8 JUnit XML document.
    public static func render(_ report: EvaluationReport, hostname: String = currentHostname()) throws -> Data {
        LibXML.initialize()
        guard let buffer = xmlBufferCreate() else { throw JUnitError.writerFailed("cannot allocate an XML buffer") }
        defer { xmlBufferFree(buffer) }
        guard let handle = xmlNewTextWriterMemory(buffer, 0) else {
            throw JUnitError.writerFailed("cannot create an XML text writer")
        }
        let writer = XMLWriter(handle)
        do {
            try write(report, hostname: hostname, with: writer)
        } catch {
            xmlFreeTextWriter(handle)
            throw error
        }
        xmlFreeTextWriter(handle)  // flushes into `buffer`
        guard let content = xmlBufferContent(buffer) else { throw JUnitError.writerFailed("empty XML buffer") }
        return Data(bytes: content, count: Int(xmlBufferLength(buffer)))
    }

    // MARK: - Document

    private static func write(_ report: EvaluationReport, hostname: String, with writer: XMLWriter) throws {
        try writer.check(xmlTextWriterSetIndent(writer.handle, 1), "set indentation")
        try writer.check(xmlTextWriterSetIndentString(writer.handle, "  "), "set indentation")
        try writer.check(xmlTextWriterStartDocument(writer.handle, "1.0", "UTF-8", nil), "start the document")

        let suites = report.suites
        try writer.start("testsuites")
        try writer.attribute("name", report.title)
        try writer.attribute("tests", String(suites.map(\.checks.count).reduce(0, +)))
        try writer.attribute("failures", String(suites.map(\.failureCount).reduce(0, +)))
        try writer.attribute("errors", String(suites.map(\.errorCount).reduce(0, +)))
        try writer.attribute("time", ReportSupport.seconds(report.durationSeconds))

        for (index, (suite, name)) in zip(suites, suiteNames(for: report)).enumerated() {
            try writeSuite(suite, name: name, id: index, report: report, hostname: hostname, with: writer)
        }
        try writer.end()  // testsuites
        try writer.check(xmlTextWriterEndDocument(writer.handle), "end the document")
    }

    private static func writeSuite(_ suite: SuiteResult, name: String, id: Int, report: EvaluationReport, hostname: String,
                                   with writer: XMLWriter) throws {
        try writer.start("testsuite")
        try writer.attribute("name", name)
        try writer.attribute("package", "tunecheck.\(identifierPart(suite.checkpoint))")
        try writer.attribute("id", String(id))
        try writer.attribute("tests", String(suite.checks.count))
        try writer.attribute("failures", String(suite.failureCount))
        try writer.attribute("errors", String(suite.errorCount))
        try writer.attribute("skipped", String(suite.skippedCount))
        try writer.attribute("time", ReportSupport.seconds(suite.durationSeconds))
        try writer.attribute("timestamp", timestamp(suite.startedAt))
        try writer.attribute("hostname", hostname)

        try writer.start("properties")
        try writer.property("checkpoint", suite.checkpoint)
        try writer.property("suite", suite.kind.rawValue)
        for setting in report.settings { try writer.property("setting.\(setting.key)", setting.value) }
        for metric in suite.metrics { try writer.property(metric.name, ReportSupport.exactNumber(metric.value)) }
        for check in suite.checks {
            for metric in check.metrics {
                try writer.property("\(check.name).\(metric.name)", ReportSupport.exactNumber(metric.value))
            }
        }
        try writer.end()  // properties

        for check in suite.checks {
            try writer.start("testcase")
            try writer.attribute("name", check.name)
            try writer.attribute("classname", name)
            try writer.attribute("time", ReportSupport.seconds(check.durationSeconds))
            switch check.status {
            case .passed:
                break
            case let .failed(message, detail):
                try writeProblem("failure", message: message, detail: detail, type: suite.kind.rawValue, with: writer)
            case let .error(message, detail):
                try writeProblem("error", message: message, detail: detail, type: suite.kind.rawValue, with: writer)
            case let .skipped(reason):
                try writer.start("skipped")
                try writer.attribute("message", ReportSupport.oneLine(reason))
                if reason.contains(where: \.isNewline) { try writer.text(reason) }
                try writer.end()
            }
            // A warning (the test case passes: JUnit has no warning state and the XSD no per-test properties)
            // opens the system-out, then the metrics.
            var output: [String] = []
            if let warning = check.passingWarning {
                output.append("WARNING: " + warning.message + (warning.detail.isEmpty ? "" : "\n" + truncatedDetail(warning.detail)))
            }
            if !check.metrics.isEmpty {
                output.append(check.metrics.map { "\($0.name) = \(ReportSupport.exactNumber($0.value))" }.joined(separator: "\n"))
            }
            if !output.isEmpty {
                try writer.start("system-out")
                try writer.text(output.joined(separator: "\n\n"))
                try writer.end()
            }
            try writer.end()  // testcase
        }
        try writer.end()  // testsuite
    }

    private static func writeProblem(_ element: String, message: String, detail: String, type: String,
                                     with writer: XMLWriter) throws {
        let line = ReportSupport.oneLine(message)
        try writer.start(element)
        try writer.attribute("message", line.isEmpty ? "(no message)" : line)
        try writer.attribute("type", type)
        var body = message
        if !detail.isEmpty { body += "\n\n" + truncatedDetail(detail) }
        try writer.text(body)
        try writer.end()
    }

    /// `detail` cut to `detailLimit` characters with a note.
    private static func truncatedDetail(_ detail: String) -> String {
        guard detail.count > detailLimit else { return detail }
        return String(detail.prefix(detailLimit)) + "\n… [\(detail.count - detailLimit) more characters; the full text is in report.json]"
    }

    /// Checkpoint names inside the dotted suite name: dots and whitespace would move Jenkins' package/class split.
    static func identifierPart(_ name: String) -> String {
        let mapped = String(name.map { $0 == "." || $0.isWhitespace ? "_" : $0 })
        return mapped.isEmpty ? "_" : mapped
    }

    /// Surefire/Ant timestamps: `yyyy-MM-ddTHH:mm:ss`, here always UTC.
    static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d", c.year ?? 1970, c.month ?? 1, c.day ?? 1,
                      c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }
}

/// Problems writing or validating JUnit XML.
public enum JUnitError: Error, LocalizedError, Equatable {
    case writerFailed(String)
    case unreadableSchema(path: String, reason: String)
    case unreadableDocument(path: String, reason: String)
    /// The document is well-formed but breaks the schema; each problem is `line N: message`.
    case invalid(path: String, problems: [String])

    public var errorDescription: String? {
        switch self {
        case let .writerFailed(reason): return "cannot write JUnit XML: \(reason)"
        case let .unreadableSchema(path, reason): return "\(path): cannot load the XML schema: \(reason)"
        case let .unreadableDocument(path, reason): return "\(path): not well-formed XML: \(reason)"
        case let .invalid(path, problems):
            let shown = problems.prefix(20).map { "  \($0)" }.joined(separator: "\n")
            let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more" : ""
            return "\(path): does not validate against the JUnit schema (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n\(shown)\(more)"
        }
    }
}

/// libxml2's global set-up (`xmlInitParser`) must run once before threads use the library concurrently; a Swift
/// static is initialised exactly once, thread-safely.
enum LibXML {
    private static let initialized: Bool = {
        xmlInitParser()
        return true
    }()

    static func initialize() { _ = initialized }
}

/// A thin wrapper over `xmlTextWriterPtr` that turns libxml2's negative return codes into errors and cleans
/// strings (XML 1.0 cannot hold most control characters) before they reach the writer.
private struct XMLWriter {
    let handle: xmlTextWriterPtr

    init(_ handle: xmlTextWriterPtr) { self.handle = handle }

    func check(_ code: Int32, _ what: String) throws {
        if code < 0 { throw JUnitError.writerFailed("libxml2 could not \(what)") }
    }

    func start(_ name: String) throws {
        try check(xmlTextWriterStartElement(handle, name), "start <\(name)>")
    }

    func end() throws {
        try check(xmlTextWriterEndElement(handle), "end an element")
    }

    func attribute(_ name: String, _ value: String) throws {
        try check(xmlTextWriterWriteAttribute(handle, name, ReportSupport.xmlSafe(value)), "write @\(name)")
    }

    func text(_ value: String) throws {
        try check(xmlTextWriterWriteString(handle, ReportSupport.xmlSafe(value)), "write text")
    }

    func property(_ name: String, _ value: String) throws {
        try start("property")
        try attribute("name", name)
        try attribute("value", value)
        try end()
    }
}
