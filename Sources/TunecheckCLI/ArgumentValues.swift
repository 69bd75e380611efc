import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckHarness
import TunecheckTrainer

/// A comma-separated list of a closed set's values (`--format junit,json`, `--suites repetition,drift`), parsed in
/// one place. A bad element fails the whole option with ArgumentParser's usage error, which lists the allowed values.
struct CommaSeparated<Element: ExpressibleByArgument & CaseIterable>: ExpressibleByArgument {
    var values: [Element]

    init(_ values: [Element]) { self.values = values }

    init?(argument: String) {
        var values: [Element] = []
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Element(argument: part.trimmingCharacters(in: .whitespaces)) else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    static var allValueStrings: [String] { Element.allValueStrings }
}

// The settings enums are the options' value types, so help and errors list their values.
extension ReportFormat: ExpressibleByArgument {}
extension SuiteKind: ExpressibleByArgument {}
extension GenerationSettings.ChatTemplateMode: ExpressibleByArgument {}
extension TrainingConfiguration.Mode: ExpressibleByArgument {}

/// `compare --format`.
enum CompareFormat: String, ExpressibleByArgument, CaseIterable {
    case terminal, markdown, html
}

/// `runs --format`.
enum RunsFormat: String, ExpressibleByArgument, CaseIterable {
    case terminal, markdown, html, json
}

/// `preflight --fail-on`: the verdict at which the command exits 1.
enum PreflightFailOn: String, ExpressibleByArgument, CaseIterable {
    case fail, warn, never

    func fails(_ verdict: PreflightAnalysis.Verdict) -> Bool {
        switch self {
        case .fail: return verdict == .fail
        case .warn: return verdict != .ok
        case .never: return false
        }
    }
}

/// `bench --shape`: the benchmark shapes of `ModelShape.all`, by name.
enum BenchShape: String, ExpressibleByArgument, CaseIterable {
    case s15m, s110m, q05b, h110m, l3b, m7b

    var shape: ModelShape? { ModelShape.all.first { $0.name == rawValue } }
}
