import Foundation

/// The run history as one self-contained HTML page (inline CSS and SVG, no scripts, no external assets): the
/// run table, then overlaid charts of loss, reward margin and reward accuracy per training step for every run,
/// each checkpoint's evaluation marked on the curves (green passed, red failed, hollow not evaluated) and the
/// margin threshold drawn as a dashed line.
public enum RunHTML {
    public static func render(_ summaries: [RunSummary], settings: RunHistorySettings) -> String {
        let failed = summaries.contains { $0.verdict == .fail }
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="tunecheck">
        <title>tunecheck runs — \(summaries.count) run\(summaries.count == 1 ? "" : "s")</title>
        <style>\(HTMLReport.stylesheet)\(stylesheet)</style>
        </head>
        <body>
        <header class="top\(failed ? " is-fail" : "")"><div class="wrap">
        <span class="verdict">\(failed ? "a run failed" : "no run failed")</span>
        <h1>Training runs side by side</h1>
        <p class="meta">margin threshold \(HTML.escape(RunFormat.number(settings.marginThreshold))) (\(HTML.escape(settings.marginThresholdSource)))\(settings.suite.map { " · checkpoints evaluated with <code>\(HTML.escape($0))</code>" } ?? " · checkpoint verdicts as the runs recorded them")</p>
        </div></header>
        <main>

        """
        html += "<section id=\"table\"><h2>Runs</h2><div class=\"table-scroll\"><table class=\"matrix runs\"><thead><tr>"
        // The verdict comes right after the run's name, where it is seen without scrolling a wide table.
        html += "<th></th><th>\(HTML.escape(RunTable.headers[0]))</th><th>\(HTML.escape(RunTable.headers.last!))</th>"
            + RunTable.headers.dropFirst().dropLast().map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for (index, summary) in summaries.enumerated() {
            let cells = RunTable.cells(summary)
            let tone = summary.verdict == .pass ? "cell-pass" : summary.verdict == .fail ? "cell-fail" : "cell-skip"
            html += "<tr><td><span class=\"swatch\" style=\"background:\(color(index))\"></span></td>"
            // The folder's name in the table (the full path in its tooltip and in the reasons below).
            html += "<th title=\"\(HTML.escape(cells[0]))\"><code>\(HTML.escape(shortName(summary.run.path)))</code></th>"
            html += "<td class=\"\(tone)\">\(HTML.escape(cells.last!))</td>"
            html += cells.dropFirst().dropLast().map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>\n"
        }
        html += "</tbody></table></div>\n<ul class=\"reasons\">"
        for summary in summaries {
            html += "<li><code>\(HTML.escape(summary.run.path))</code>: <strong>\(summary.verdict.rawValue)</strong>: \(HTML.escape(summary.reason))</li>"
        }
        let notices = summaries.flatMap(\.run.notices)
        if !notices.isEmpty { html += notices.map { "<li class=\"muted\">notice: \(HTML.escape($0))</li>" }.joined() }
        html += "</ul></section>\n"

        html += "<section id=\"charts\"><h2>Per step</h2><p class=\"legend\">"
        html += summaries.enumerated().map {
            "<span class=\"item\" title=\"\(HTML.escape($0.element.run.path))\"><span class=\"swatch\" style=\"background:\(color($0.offset))\"></span>"
                + "\(HTML.escape(shortName($0.element.run.path)))</span>"
        }.joined(separator: " ")
        html += " <span class=\"item\">· checkpoints:<span class=\"dot dot-pass\"></span>passed<span class=\"dot dot-fail\"></span>failed"
            + "<span class=\"dot dot-none\"></span>not evaluated</span></p><div class=\"charts\">\n"
        let charts: [(String, KeyPath<TrainingRun.Step, Double?>, (value: Double, label: String)?, ClosedRange<Double>?)] = [
            ("Training loss", \.loss, nil, nil),
            ("Reward margin (rewards/margins)", \.margin, (settings.marginThreshold, "threshold \(RunFormat.number(settings.marginThreshold))"), nil),
            ("Reward accuracy (rewards/accuracies)", \.accuracy, nil, 0...1),
        ]
        for (index, chart) in charts.enumerated() {
            let series = summaries.enumerated().map { offset, summary in
                OverlayChart.Series(label: shortName(summary.run.path), color: color(offset),
                                    points: summary.run.history.compactMap { step in step[keyPath: chart.1].map { (step.step, $0) } },
                                    marks: marks(summary, value: chart.1))
            }
            var overlay = OverlayChart(title: chart.0, series: series)
            overlay.reference = chart.2
            overlay.fixedDomain = chart.3
            html += "<figure><figcaption>\(HTML.escape(chart.0))</figcaption>\(overlay.svg(id: "run-chart-\(index)"))</figure>\n"
        }
        html += "</div></section>\n</main>\n<footer>Generated by tunecheck runs</footer>\n</body>\n</html>\n"
        return html
    }

    /// Each checkpoint on the curve: at its step's logged value (or the closest earlier logged step's).
    static func marks(_ summary: RunSummary, value: KeyPath<TrainingRun.Step, Double?>) -> [OverlayChart.Mark] {
        summary.run.checkpoints.compactMap { checkpoint in
            guard let logged = summary.run.history.last(where: { $0.step <= checkpoint.step && $0[keyPath: value] != nil }),
                  let y = logged[keyPath: value] else { return nil }
            let evaluation = summary.evaluations.first { $0.name == checkpoint.name }
            return OverlayChart.Mark(step: checkpoint.step, value: y, label: checkpoint.name, passed: evaluation?.passed)
        }
    }

    /// A run's folder name (`runs/lr-1e-4/` → `lr-1e-4`), for the table and legends.
    static func shortName(_ path: String) -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return name.isEmpty ? path : name
    }

    /// Series colours: distinguishable, colour-blind-safe (Okabe–Ito).
    static func color(_ index: Int) -> String {
        let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
        return palette[index % palette.count]
    }

    static let stylesheet = """
    .swatch{display:inline-block;width:14px;height:4px;border-radius:2px;vertical-align:3px;margin:0 4px 0 10px}
    .dot-none{background:#fff;border:2px solid #8c959f}
    ul.reasons{font-size:14px;padding-left:20px}
    .legend .item{white-space:nowrap;display:inline-block}
    .wrap,main,footer{max-width:1680px}
    table.runs{font-size:12.5px}
    table.runs th,table.runs td{padding:6px 6px;white-space:normal;vertical-align:top}
    table.runs td:nth-child(16){min-width:10em;max-width:14em}
    table.runs th code,table.runs td:nth-child(6),table.runs td:nth-child(9),table.runs td:nth-child(13),
    table.runs td:nth-child(15),table.runs td:nth-child(17){white-space:nowrap}
    svg.chart .overlay{fill:none;stroke-width:2;stroke-linejoin:round}
    svg.chart .pt-none{fill:#fff;stroke:#57606a;stroke-width:1.5}
    """
}

/// Several runs' values of one metric against the training step, on shared axes (the tick and label helpers are
/// `LineChart`'s, so both reports read the same).
struct OverlayChart {
    struct Series {
        var label: String
        var color: String
        var points: [(step: Int, value: Double)]
        var marks: [Mark]
    }

    struct Mark {
        var step: Int
        var value: Double
        var label: String
        /// nil: not evaluated.
        var passed: Bool?
    }

    var title: String
    var series: [Series]
    var reference: (value: Double, label: String)?
    var fixedDomain: ClosedRange<Double>?

    private let width = 520.0, height = 250.0
    private let left = 60.0, right = 20.0, top = 22.0, bottom = 50.0

    init(title: String, series: [Series]) {
        self.title = title
        self.series = series
    }

    func svg(id: String) -> String {
        let f = LineChart.f
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        var out = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-labelledby=\"\(id)-t\" "
            + "preserveAspectRatio=\"xMidYMid meet\"><title id=\"\(id)-t\">\(HTML.escape(title))</title>"
        let finite = series.flatMap { $0.points.filter { $0.value.isFinite } }
        guard !finite.isEmpty else {
            out += "<text class=\"empty\" x=\"\(f(left + plotWidth / 2))\" y=\"\(f(top + plotHeight / 2))\" text-anchor=\"middle\">no data</text></svg>"
            return out
        }
        // X: steps, shared by all runs.
        let steps = finite.map { Double($0.step) } + series.flatMap { $0.marks.map { Double($0.step) } }
        var xLo = steps.min()!, xHi = steps.max()!
        if xLo == xHi { xLo -= 1; xHi += 1 }
        let xTicks = LineChart.niceTicks(xLo, xHi, target: 6)
        let xDLo = min(xLo, xTicks.first!), xDHi = max(xHi, xTicks.last!)
        let xMap = { (x: Double) in left + (x - xDLo) / (xDHi - xDLo) * plotWidth }
        // Y: the data (and the reference line), or a fixed domain widened to the data.
        let values = finite.map(\.value)
        var lo = values.min()!, hi = values.max()!
        if let fixedDomain { lo = min(lo, fixedDomain.lowerBound); hi = max(hi, fixedDomain.upperBound) }
        if let reference { lo = min(lo, reference.value); hi = max(hi, reference.value) }
        if lo == hi { let pad = lo == 0 ? 1 : abs(lo) * 0.5; lo -= pad; hi += pad }
        let yTicks = LineChart.niceTicks(lo, hi, target: 5)
        let yDLo = yTicks.first!, yDHi = yTicks.last!
        let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        let yMap = { (y: Double) in top + plotHeight - (y - yDLo) / (yDHi - yDLo) * plotHeight }

        for tick in yTicks {
            let y = f(yMap(tick))
            out += "<line class=\"grid\" x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(y)\" y2=\"\(y)\"/>"
            out += "<text class=\"tick\" x=\"\(f(left - 8))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(LineChart.tickLabel(tick, step: yStep))</text>"
        }
        let baseline = f(top + plotHeight)
        out += "<line class=\"axis\" x1=\"\(f(left))\" x2=\"\(f(left))\" y1=\"\(f(top))\" y2=\"\(baseline)\"/>"
        out += "<line class=\"axis\" x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(baseline)\" y2=\"\(baseline)\"/>"
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        for tick in xTicks where tick >= xDLo && tick <= xDHi {
            let x = f(xMap(tick))
            out += "<line class=\"axis\" x1=\"\(x)\" x2=\"\(x)\" y1=\"\(baseline)\" y2=\"\(f(top + plotHeight + 5))\"/>"
            out += "<text class=\"tick\" x=\"\(x)\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\">\(LineChart.tickLabel(tick, step: xStep))</text>"
        }
        out += "<text class=\"axis-title\" x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">training step</text>"
        if let reference {
            let y = f(yMap(reference.value))
            out += "<line class=\"reference\" x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(y)\" y2=\"\(y)\"/>"
            out += "<text class=\"reference-label\" x=\"\(f(left + plotWidth - 4))\" y=\"\(f(yMap(reference.value) - 5))\" text-anchor=\"end\">\(HTML.escape(reference.label))</text>"
        }
        for line in series {
            // A non-finite value (a NaN loss) breaks the line.
            var segment: [String] = []
            func flush() {
                if segment.count > 1 {
                    out += "<polyline class=\"overlay\" style=\"stroke:\(line.color)\" points=\"\(segment.joined(separator: " "))\"><title>\(HTML.escape(line.label))</title></polyline>"
                } else if segment.count == 1 {
                    let xy = segment[0].split(separator: ",")
                    out += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2.5\" style=\"fill:\(line.color)\"/>"
                }
                segment = []
            }
            for point in line.points {
                if point.value.isFinite { segment.append("\(f(xMap(Double(point.step)))),\(f(yMap(point.value)))") } else { flush() }
            }
            flush()
        }
        for line in series {
            for mark in line.marks where mark.value.isFinite {
                let kind = mark.passed.map { $0 ? "pt-pass" : "pt-fail" } ?? "pt-none"
                let verdict = mark.passed.map { $0 ? "passed" : "failed" } ?? "not evaluated"
                out += "<circle class=\"\(kind)\" cx=\"\(f(xMap(Double(mark.step))))\" cy=\"\(f(yMap(mark.value)))\" r=\"5\">"
                    + "<title>\(HTML.escape("\(line.label) · \(mark.label) (step \(mark.step)): \(verdict), \(LineChart.compact(mark.value))"))</title></circle>"
            }
        }
        out += "</svg>"
        return out
    }
}
