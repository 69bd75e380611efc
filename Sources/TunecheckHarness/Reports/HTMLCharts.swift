import Foundation

/// Axis scale for a chart's y axis.
public enum ChartScale: String, Sendable, CaseIterable {
    case linear
    case log
    /// Log when all values are positive and span at least two decades, else linear.
    case automatic
}

/// A small, dependency-free SVG line chart of one metric across checkpoints: nice ticks, gaps for missing values,
/// points coloured by the checkpoint's verdict, optional log y axis and a dashed reference line.
struct LineChart {
    struct Point {
        var label: String
        /// Training step, or nil (then the chart lays checkpoints out in order).
        var step: Int?
        var value: Double?
        var passed: Bool
    }

    var title: String
    var points: [Point]
    var scale: ChartScale = .linear
    /// A fixed y domain (e.g. 0…1 for accuracy); nil fits the data.
    var fixedDomain: ClosedRange<Double>?
    /// Whether the fitted linear domain must include zero.
    var includeZero = false
    var reference: (value: Double, label: String)?
    /// How values are printed next to points and in tooltips.
    var format: (Double) -> String = LineChart.compact

    // Geometry (SVG user units; the SVG scales to its container).
    private let width = 520.0
    private let left = 60.0, right = 20.0, top = 22.0
    /// Ordinal axes with many checkpoints slant their labels and need more room below the plot.
    private var slanted: Bool { !numericX && points.count > 4 }
    private var bottom: Double { slanted ? 78 : 50 }
    private var height: Double { 200 + bottom }
    private var numericX: Bool { !points.isEmpty && points.allSatisfy { $0.step != nil } }

    init(title: String, points: [Point]) {
        self.title = title
        self.points = points
    }

    /// The scale actually used, resolving `.automatic`.
    var resolvedScale: ChartScale {
        let positives = points.compactMap(\.value).filter { $0 > 0 && $0.isFinite }
        switch scale {
        case .linear: return .linear
        case .log: return positives.isEmpty ? .linear : .log
        case .automatic:
            // Zeros (the base model's own delta) are allowed and shown as n/a; a negative value means linear.
            let values = points.compactMap(\.value).filter(\.isFinite)
            guard let lo = positives.min(), let hi = positives.max(), values.allSatisfy({ $0 >= 0 }) else { return .linear }
            return hi / lo >= 100 ? .log : .linear
        }
    }

    func svg(id: String) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let scale = resolvedScale
        let finite = points.map { point -> Double? in
            guard let value = point.value, value.isFinite else { return nil }
            if scale == .log && value <= 0 { return nil }
            return value
        }
        var out = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-labelledby=\"\(id)-t\" "
            + "preserveAspectRatio=\"xMidYMid meet\"><title id=\"\(id)-t\">\(HTML.escape(title))</title>"

        // X positions: steps when every point has one, else evenly spaced in order.
        var xTicks: [(position: Double, label: String)] = []
        var xs: [Double] = []
        if numericX {
            let steps = points.map { Double($0.step!) }
            var lo = steps.min()!, hi = steps.max()!
            if lo == hi { lo -= 1; hi += 1 }
            let ticks = Self.niceTicks(lo, hi, target: 6)
            let dLo = min(lo, ticks.first!), dHi = max(hi, ticks.last!)
            let map = { (x: Double) in left + (x - dLo) / (dHi - dLo) * plotWidth }
            xs = steps.map(map)
            if Set(steps).count == 1 {
                xTicks = [(map(steps[0]), Self.tickLabel(steps[0], step: 1))]
            } else {
                let tickStep = ticks.count > 1 ? ticks[1] - ticks[0] : 1
                xTicks = ticks.filter { $0 >= dLo && $0 <= dHi }.map { (map($0), Self.tickLabel($0, step: tickStep)) }
            }
        } else {
            let n = points.count
            let band = plotWidth / Double(max(n, 1))
            xs = (0..<n).map { left + band * (Double($0) + 0.5) }
            xTicks = Array(zip(xs, Self.shortLabels(points.map(\.label), limit: n > 6 ? 12 : 18)))
        }

        // Y domain and ticks.
        let values = finite.compactMap { $0 }
        var yTicks: [(value: Double, label: String)] = []
        let yMap: (Double) -> Double
        if scale == .log {
            let lo = floor(log10(values.min()!)), hi0 = ceil(log10(values.max()!))
            let hi = hi0 == lo ? lo + 1 : hi0
            yMap = { top + plotHeight - (log10($0) - lo) / (hi - lo) * plotHeight }
            yTicks = stride(from: lo, through: hi, by: 1).map { (pow(10, $0), Self.powerLabel(Int($0))) }
        } else {
            var lo: Double, hi: Double
            if let fixed = fixedDomain {
                lo = min(fixed.lowerBound, values.min() ?? fixed.lowerBound)
                hi = max(fixed.upperBound, values.max() ?? fixed.upperBound)
            } else {
                lo = values.min() ?? 0
                hi = values.max() ?? 1
                if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
                if let reference { lo = min(lo, reference.value); hi = max(hi, reference.value) }
                if lo == hi { let pad = lo == 0 ? 1 : abs(lo) * 0.5; lo -= pad; hi += pad }
            }
            let ticks = Self.niceTicks(lo, hi, target: 5)
            let dLo = fixedDomain == nil ? ticks.first! : lo, dHi = fixedDomain == nil ? ticks.last! : hi
            let tickStep = ticks.count > 1 ? ticks[1] - ticks[0] : 1
            yMap = { top + plotHeight - ($0 - dLo) / (dHi - dLo) * plotHeight }
            yTicks = ticks.filter { $0 >= dLo - 1e-12 && $0 <= dHi + 1e-12 }.map { ($0, Self.tickLabel($0, step: tickStep)) }
        }

        // Grid and axes.
        for tick in yTicks {
            let y = Self.f(yMap(tick.value))
            out += "<line class=\"grid\" x1=\"\(Self.f(left))\" x2=\"\(Self.f(left + plotWidth))\" y1=\"\(y)\" y2=\"\(y)\"/>"
            out += "<text class=\"tick\" x=\"\(Self.f(left - 8))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(HTML.escape(tick.label))</text>"
        }
        let baseline = Self.f(top + plotHeight)
        out += "<line class=\"axis\" x1=\"\(Self.f(left))\" x2=\"\(Self.f(left))\" y1=\"\(Self.f(top))\" y2=\"\(baseline)\"/>"
        out += "<line class=\"axis\" x1=\"\(Self.f(left))\" x2=\"\(Self.f(left + plotWidth))\" y1=\"\(baseline)\" y2=\"\(baseline)\"/>"
        let rotate = slanted
        for tick in xTicks {
            let x = Self.f(tick.position)
            out += "<line class=\"axis\" x1=\"\(x)\" x2=\"\(x)\" y1=\"\(baseline)\" y2=\"\(Self.f(top + plotHeight + 5))\"/>"
            if rotate {
                let y = Self.f(top + plotHeight + 14)
                out += "<text class=\"tick\" x=\"\(x)\" y=\"\(y)\" text-anchor=\"end\" transform=\"rotate(-25 \(x) \(y))\">\(HTML.escape(tick.label))</text>"
            } else {
                out += "<text class=\"tick\" x=\"\(x)\" y=\"\(Self.f(top + plotHeight + 18))\" text-anchor=\"middle\">\(HTML.escape(tick.label))</text>"
            }
        }
        out += "<text class=\"axis-title\" x=\"\(Self.f(left + plotWidth / 2))\" y=\"\(Self.f(height - 6))\" text-anchor=\"middle\">"
            + (numericX ? "training step" : "checkpoint") + (scale == .log ? " · log scale" : "") + "</text>"

        // A reference line on the bottom or top edge would only double the axis or gridline.
        let edges = [yMap(yTicks.first?.value ?? .nan), yMap(yTicks.last?.value ?? .nan), top, top + plotHeight]
        if let reference, scale == .linear || reference.value > 0,
           !edges.contains(where: { abs($0 - yMap(reference.value)) < 0.5 }) {
            let y = Self.f(yMap(reference.value))
            out += "<line class=\"reference\" x1=\"\(Self.f(left))\" x2=\"\(Self.f(left + plotWidth))\" y1=\"\(y)\" y2=\"\(y)\"/>"
            out += "<text class=\"reference-label\" x=\"\(Self.f(left + plotWidth - 4))\" y=\"\(Self.f(yMap(reference.value) - 5))\" text-anchor=\"end\">\(HTML.escape(reference.label))</text>"
        }

        if values.isEmpty {
            out += "<text class=\"empty\" x=\"\(Self.f(left + plotWidth / 2))\" y=\"\(Self.f(top + plotHeight / 2))\" text-anchor=\"middle\">no data</text></svg>"
            return out
        }

        // Line segments between consecutive known values (a missing value breaks the line).
        var segment: [String] = []
        func flush() {
            if segment.count > 1 { out += "<polyline class=\"series\" points=\"\(segment.joined(separator: " "))\"/>" }
            segment = []
        }
        for (index, value) in finite.enumerated() {
            if let value { segment.append("\(Self.f(xs[index])),\(Self.f(yMap(value)))") } else { flush() }
        }
        flush()

        // Value labels on every point when they fit side by side, else on the first, last, lowest and highest.
        let spacing = plotWidth / Double(max(points.count, 1))
        let widest = finite.compactMap { $0 }.map { format($0).count }.max() ?? 0
        var labelled = Set(points.indices)
        if Double(widest) * 6.5 + 6 > spacing {
            let known = finite.indices.filter { finite[$0] != nil }
            labelled = Set([known.first, known.last,
                            known.min { finite[$0]! < finite[$1]! }, known.max { finite[$0]! < finite[$1]! }].compactMap { $0 })
        }
        for (index, point) in points.enumerated() {
            let x = Self.f(xs[index])
            let where_ = point.step.map { " (step \($0))" } ?? ""
            guard let value = finite[index] else {
                let why = point.value == nil ? "not measured" : "\(ReportSupport.number(point.value!)) cannot be shown on a log scale"
                // At the plot's left edge the label starts right of the y axis instead of straddling it.
                let atEdge = xs[index] - left < 14
                out += "<text class=\"missing\" x=\"\(atEdge ? Self.f(left + 4) : x)\" y=\"\(Self.f(top + plotHeight - 8))\" "
                    + "text-anchor=\"\(atEdge ? "start" : "middle")\">"
                    + "<title>\(HTML.escape(point.label + where_)): \(HTML.escape(why))</title>n/a</text>"
                continue
            }
            let y = yMap(value)
            out += "<circle class=\"\(point.passed ? "pt-pass" : "pt-fail")\" cx=\"\(x)\" cy=\"\(Self.f(y))\" r=\"5\">"
                + "<title>\(HTML.escape(point.label + where_)): \(HTML.escape(format(value)))</title></circle>"
            if labelled.contains(index) {
                // Labels of points on the y axis start right of it so they do not cover the tick labels.
                let atEdge = xs[index] - left < 14
                out += "<text class=\"value\" x=\"\(atEdge ? Self.f(xs[index] + 7) : x)\" y=\"\(Self.f(y - 10))\" "
                    + "text-anchor=\"\(atEdge ? "start" : "middle")\">\(HTML.escape(format(value)))</text>"
            }
        }
        out += "</svg>"
        return out
    }

    // MARK: Labels and ticks

    /// A value for a point label: at most 3 significant digits, no exponent between 0.001 and 100 000.
    static func compact(_ value: Double) -> String {
        guard value.isFinite else { return ReportSupport.number(value) }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude < 1e-3 || magnitude >= 1e5 { return String(format: "%.2g", value) }
        let decimals = max(0, 2 - Int(floor(log10(magnitude))))
        var text = String(format: "%.\(decimals)f", value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    /// Axis labels for checkpoint names: when some are too long, the prefix and suffix every name shares (e.g.
    /// `0000` and `_adapters` in `0000100_adapters`) are dropped first, then the rest is cut. Tooltips keep the
    /// full names.
    static func shortLabels(_ names: [String], limit: Int) -> [String] {
        guard names.contains(where: { $0.count > limit }) else { return names }
        // The base model usually has a different name; look for shared parts among the others.
        let candidates = names.count > 2 ? names.filter { $0 != "base" } : names
        var stripped = names
        if candidates.count > 1 {
            let arrays = candidates.map { Array($0) }
            var prefix = 0
            while arrays.allSatisfy({ $0.count > prefix }) && arrays.allSatisfy({ $0[prefix] == arrays[0][prefix] }) { prefix += 1 }
            var suffix = 0
            while arrays.allSatisfy({ $0.count > prefix + suffix })
                    && arrays.allSatisfy({ $0[$0.count - 1 - suffix] == arrays[0][arrays[0].count - 1 - suffix] }) { suffix += 1 }
            // Cut only at punctuation (`checkpoint-` | `500`, `0000100` | `_adapters`), never inside a number or word.
            let reference = arrays[0]
            while prefix > 0 && (reference[prefix - 1].isLetter || reference[prefix - 1].isNumber) { prefix -= 1 }
            while suffix > 0 && (reference[reference.count - suffix].isLetter || reference[reference.count - suffix].isNumber) { suffix -= 1 }
            if prefix + suffix >= 3 {
                let set = Set(candidates)
                stripped = names.map { name in
                    guard set.contains(name) else { return name }
                    let characters = Array(name)
                    return String(characters[prefix..<(characters.count - suffix)])
                }
            }
        }
        return stripped.map { ReportSupport.truncate($0, to: limit) }
    }

    /// About `target` round tick values covering `lo…hi` (1, 2, 2.5 or 5 × 10ⁿ apart).
    static func niceTicks(_ lo: Double, _ hi: Double, target: Int) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(max(target - 1, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let fraction = raw / magnitude
        let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10
        let step = nice * magnitude
        let first = floor(lo / step + 1e-9) * step, last = ceil(hi / step - 1e-9) * step
        var ticks: [Double] = []
        var value = first
        while value <= last + step * 1e-6 && ticks.count < 50 {
            ticks.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return ticks
    }

    static func tickLabel(_ value: Double, step: Double) -> String {
        // As many decimals as the tick step needs (0.25 → 2, 0.2 → 1, 500 → 0).
        var decimals = 0
        while decimals < 6 {
            let scaled = step * pow(10, Double(decimals))
            if abs(scaled - scaled.rounded()) < 1e-6 * max(1, scaled) { break }
            decimals += 1
        }
        if abs(value) >= 10_000 && step >= 1 {
            return value.truncatingRemainder(dividingBy: 1000) == 0 ? "\(Int(value / 1000))k" : String(format: "%.1fk", value / 1000)
        }
        return String(format: "%.\(decimals)f", value)
    }

    static func powerLabel(_ exponent: Int) -> String {
        if (-3...4).contains(exponent) { return ReportSupport.number(pow(10, Double(exponent))) }
        return "1e\(exponent)"
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }
}
