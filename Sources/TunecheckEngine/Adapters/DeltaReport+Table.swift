import Foundation

extension DeltaReport {
    /// The report as a table for the terminal: per tensor, per layer, overall, then the flags.
    public var table: String {
        let report = self
        func number(_ value: Double) -> String { String(format: "%.4g", value) }
        var lines: [String] = []
        switch report.source {
        case .adapter(let path): lines.append("delta of adapter \(path) on \(report.base): \(report.tensors.count) adapted tensors")
        case .model(let path): lines.append("delta of \(path) against \(report.base): \(report.tensors.count) of \(report.comparedTensorCount) tensors differ")
        }
        let nameWidth = max(24, report.tensors.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        func row(_ label: String, _ shape: String, _ columns: [String]) -> String {
            pad(label, nameWidth) + "  " + pad(shape, 12) + columns.dropLast().map { pad($0, 12) }.joined() + (columns.last ?? "")
        }
        func row(_ label: String, _ shape: String, _ frobenius: Double, _ relative: Double, _ maxAbs: Double) -> String {
            row(label, shape, [number(frobenius), number(relative), number(maxAbs)])
        }
        lines.append("")
        lines.append(row("tensor", "shape", ["‖ΔW‖_F", "‖ΔW‖/‖W‖", "max|ΔW|"]))
        for tensor in report.tensors {
            lines.append(row(tensor.name, tensor.shape.map(String.init).joined(separator: "×"), tensor.frobenius, tensor.relative, tensor.maxAbs))
        }
        lines.append("")
        for layer in report.layers {
            lines.append(row(layer.layer.map { "layer \($0)" } ?? "outside blocks", "\(layer.tensorCount) tensors", layer.frobenius, layer.relative, layer.maxAbs))
        }
        lines.append(row("overall", "\(report.total.tensorCount) tensors", report.total.frobenius, report.total.relative, report.total.maxAbs))
        lines.append("")
        let flags = report.flags.map { flag -> String in
            switch flag {
            case .noLearning: return "no-learning (overall ‖ΔW‖/‖W‖ \(number(report.total.relative)) < \(number(report.thresholds.noLearning)))"
            case .largeUpdate: return "large-update (overall ‖ΔW‖/‖W‖ \(number(report.total.relative)) > \(number(report.thresholds.largeUpdate)))"
            }
        }
        lines.append("flags: " + (flags.isEmpty ? "none" : flags.joined(separator: "; ")))
        return lines.joined(separator: "\n") + "\n"
    }
}
