import Foundation
import TunecheckEngine

/// The file formats `ReportWriter` can produce.
public enum ReportFormat: String, Sendable, CaseIterable, Codable {
    case junit
    case json
    case html

    /// The file name inside the report directory.
    public var fileName: String {
        switch self {
        case .junit: return "junit.xml"
        case .json: return "report.json"
        case .html: return "report.html"
        }
    }
}

/// Writes the requested report files into one directory.
public enum ReportWriter {
    /// Writes `report` as each of `formats` into `directory` (created if missing), each file atomically (a reader
    /// sees the old or the new file, never half of one). Returns the written files in `ReportFormat.allCases` order.
    @discardableResult
    public static func write(_ report: EvaluationReport, to directory: URL, formats: Set<ReportFormat>,
                             htmlOptions: HTMLReport.Options = .init()) throws -> [URL] {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw HarnessError.writeFailed(path: directory.path, reason: "cannot create the report directory: \(error.localizedDescription)")
        }
        var written: [URL] = []
        for format in ReportFormat.allCases where formats.contains(format) {
            let url = directory.appendingPathComponent(format.fileName)
            let data: Data
            switch format {
            case .junit: data = try JUnitReport.render(report)
            case .json: data = JSONReport.render(report)
            case .html: data = Data(HTMLReport.render(report, options: htmlOptions).utf8)
            }
            try AtomicWrite.write(data, to: url)
            written.append(url)
        }
        return written
    }
}
