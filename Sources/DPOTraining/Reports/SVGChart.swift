import Foundation

/// Text for HTML and SVG: the five characters with a meaning in markup written as entities, so any
/// completion (`<script>` included) shows as the text it is. Valid in element text and in quoted
/// attributes alike.
public func escapeHTML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for c in text.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        // Control characters other than tab and newline are not allowed in HTML or XML text.
        case _ where c.value < 0x20 && c != "\n" && c != "\t", _ where c.value == 0x7F: out += "\u{FFFD}"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// A linear map from data values to SVG coordinates: `domain.lowerBound` lands on `from`,
/// `domain.upperBound` on `to` (for a y axis `from` is the plot's bottom edge, so larger values go up).
public struct LinearAxis: Sendable {
    public var domain: ClosedRange<Double>
    public var from: Double
    public var to: Double

    public func map(_ value: Double) -> Double {
        from + (value - domain.lowerBound) / (domain.upperBound - domain.lowerBound) * (to - from)
    }

    /// The data's extent; a single value gets ±1 around it (±|value|/10 when that is larger), so
    /// the axis still has a length.
    public static func extent(_ values: [Double]) -> ClosedRange<Double> {
        guard let lo = values.min(), let hi = values.max() else { return 0...1 }
        if lo < hi { return lo...hi }
        let pad = max(1, abs(lo) / 10)
        return (lo - pad)...(hi + pad)
    }

    /// Round values inside the domain: the smallest step of 1, 2 or 5 × 10^k that gives at most
    /// `count` + 1 of them.
    public func ticks(count: Int = 5) -> [Double] {
        let span = domain.upperBound - domain.lowerBound
        let magnitude = pow(10, (log10(span / Double(max(count, 1)))).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { span / $0 <= Double(count + 1) } ?? 10 * magnitude
        var ticks: [Double] = []
        var v = (domain.lowerBound / step).rounded(.up) * step
        while v <= domain.upperBound + step * 1e-9 {
            ticks.append(abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return ticks
    }
}

/// Numbers on axes and in tables: up to 4 significant digits, no trailing zeros.
public func compactNumber(_ v: Double) -> String {
    guard v.isFinite else { return "\(v)" }
    if v == 0 { return "0" }
    if abs(v) >= 1e5 || abs(v) < 1e-3 { return String(format: "%.3g", v) }
    var s = String(format: "%.4g", v)
    if s.contains("."), !s.contains("e") {
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
    }
    return s
}

/// Where a chart's plot area lies in its SVG (the axes are its left and bottom edges).
public struct ChartFrame: Sendable {
    public static let width = 540.0, height = 300.0
    public static let left = 70.0, top = 44.0, right = 16.0, bottom = 48.0
    public static var plotWidth: Double { width - left - right }
    public static var plotHeight: Double { height - top - bottom }
}

/// A line chart as an inline SVG: one polyline per series, the x axis spanning the data exactly
/// (`LinearAxis.extent`), the y axis the data with 5% of its span added above and below (so no
/// point sits on an edge), round ticks with labels, a legend under the title. Each series'
/// polyline carries `data-series="NAME"`; the plot area is the `<rect class="plot">`.
public struct LineChart {
    public struct Series {
        public var name: String
        public var color: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, color: String, points: [(x: Double, y: Double)]) {
            self.name = name; self.color = color; self.points = points.filter { $0.x.isFinite && $0.y.isFinite }
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    public var xAxis: LinearAxis {
        LinearAxis(domain: LinearAxis.extent(series.flatMap { $0.points.map(\.x) }),
                   from: ChartFrame.left, to: ChartFrame.left + ChartFrame.plotWidth)
    }
    public var yAxis: LinearAxis {
        let data = LinearAxis.extent(series.flatMap { $0.points.map(\.y) })
        let room = (data.upperBound - data.lowerBound) * 0.05
        return LinearAxis(domain: (data.lowerBound - room)...(data.upperBound + room),
                          from: ChartFrame.top + ChartFrame.plotHeight, to: ChartFrame.top)
    }

    public var svg: String {
        let x = xAxis, y = yAxis
        var s = svgOpen(title: title)
        s += axes(x: x, y: y, xLabel: xLabel, yLabel: yLabel)
        for (n, line) in series.enumerated() where !line.points.isEmpty {
            let points = line.points.map { "\(coordinate(x.map($0.x))),\(coordinate(y.map($0.y)))" }.joined(separator: " ")
            s += "<polyline class=\"series\" data-series=\"\(escapeHTML(line.name))\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.8\" points=\"\(points)\"/>\n"
            if line.points.count <= 40 {
                for p in line.points {
                    s += "<circle cx=\"\(coordinate(x.map(p.x)))\" cy=\"\(coordinate(y.map(p.y)))\" r=\"2.5\" fill=\"\(line.color)\"/>\n"
                }
            }
            // The legend, under the title, the series side by side.
            let ly = 32.0
            let lx = ChartFrame.left + Double(n) * 90
            s += "<line x1=\"\(coordinate(lx))\" y1=\"\(coordinate(ly))\" x2=\"\(coordinate(lx + 18))\" y2=\"\(coordinate(ly))\" stroke=\"\(line.color)\" stroke-width=\"2.5\"/>"
            s += "<text x=\"\(coordinate(lx + 24))\" y=\"\(coordinate(ly + 4))\" class=\"legend\">\(escapeHTML(line.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}

/// A histogram as an inline SVG: equal-width bins over the values' extent, bars coloured by side of
/// zero (`data-lo`, `data-hi`, `data-count` on each `<rect class="bar">`), a line at zero when it is
/// inside the extent.
public struct Histogram {
    public var title: String
    public var xLabel: String
    public var values: [Double]
    public var binCount: Int

    public init(title: String, xLabel: String, values: [Double], binCount: Int? = nil) {
        self.title = title; self.xLabel = xLabel
        self.values = values.filter(\.isFinite)
        self.binCount = binCount ?? min(30, max(1, Int(Double(self.values.count).squareRoot().rounded(.up))))
    }

    /// Each bin's [lo, hi) (the last one closed) and its count.
    public var bins: [(lo: Double, hi: Double, count: Int)] {
        let range = LinearAxis.extent(values), n = binCount
        let width = (range.upperBound - range.lowerBound) / Double(n)
        var counts = [Int](repeating: 0, count: n)
        for v in values { counts[min(n - 1, max(0, Int((v - range.lowerBound) / width)))] += 1 }
        return (0..<n).map { (range.lowerBound + Double($0) * width, range.lowerBound + Double($0 + 1) * width, counts[$0]) }
    }

    public var svg: String {
        let bins = bins
        let x = LinearAxis(domain: LinearAxis.extent(values), from: ChartFrame.left, to: ChartFrame.left + ChartFrame.plotWidth)
        let y = LinearAxis(domain: 0...Double(max(1, bins.map(\.count).max() ?? 1)),
                           from: ChartFrame.top + ChartFrame.plotHeight, to: ChartFrame.top)
        var s = svgOpen(title: title)
        s += axes(x: x, y: y, xLabel: xLabel, yLabel: "pairs", integerY: true)
        for b in bins {
            let color = b.hi <= 0 ? "#d6604d" : b.lo >= 0 ? "#4393c3" : "#999999"
            let x0 = x.map(b.lo), x1 = x.map(b.hi), top = y.map(Double(b.count))
            s += "<rect class=\"bar\" data-lo=\"\(b.lo)\" data-hi=\"\(b.hi)\" data-count=\"\(b.count)\" x=\"\(coordinate(x0 + 0.5))\" y=\"\(coordinate(top))\" width=\"\(coordinate(max(0, x1 - x0 - 1)))\" height=\"\(coordinate(y.map(0) - top))\" fill=\"\(color)\"/>\n"
        }
        if x.domain.contains(0) {
            s += "<line x1=\"\(coordinate(x.map(0)))\" y1=\"\(coordinate(ChartFrame.top))\" x2=\"\(coordinate(x.map(0)))\" y2=\"\(coordinate(ChartFrame.top + ChartFrame.plotHeight))\" stroke=\"#333333\" stroke-dasharray=\"4 3\"/>\n"
        }
        return s + "</svg>\n"
    }
}

/// Coordinates with two decimals: what the polylines and the tests read.
func coordinate(_ v: Double) -> String { String(format: "%.2f", v) }

private func svgOpen(title: String) -> String {
    "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(Int(ChartFrame.width))\" height=\"\(Int(ChartFrame.height))\" viewBox=\"0 0 \(Int(ChartFrame.width)) \(Int(ChartFrame.height))\" role=\"img\">\n"
        + "<title>\(escapeHTML(title))</title>\n"
        + "<text x=\"\(coordinate(ChartFrame.left))\" y=\"18\" class=\"chart-title\">\(escapeHTML(title))</text>\n"
        + "<rect class=\"plot\" x=\"\(coordinate(ChartFrame.left))\" y=\"\(coordinate(ChartFrame.top))\" width=\"\(coordinate(ChartFrame.plotWidth))\" height=\"\(coordinate(ChartFrame.plotHeight))\" fill=\"#fafafa\" stroke=\"#cccccc\"/>\n"
}

private func axes(x: LinearAxis, y: LinearAxis, xLabel: String, yLabel: String, integerY: Bool = false) -> String {
    let bottom = ChartFrame.top + ChartFrame.plotHeight, right = ChartFrame.left + ChartFrame.plotWidth
    var s = "<line x1=\"\(coordinate(ChartFrame.left))\" y1=\"\(coordinate(bottom))\" x2=\"\(coordinate(right))\" y2=\"\(coordinate(bottom))\" stroke=\"#333333\"/>\n"
    s += "<line x1=\"\(coordinate(ChartFrame.left))\" y1=\"\(coordinate(ChartFrame.top))\" x2=\"\(coordinate(ChartFrame.left))\" y2=\"\(coordinate(bottom))\" stroke=\"#333333\"/>\n"
    for t in x.ticks() {
        let px = coordinate(x.map(t))
        s += "<line x1=\"\(px)\" y1=\"\(coordinate(bottom))\" x2=\"\(px)\" y2=\"\(coordinate(bottom + 5))\" stroke=\"#333333\"/>"
        s += "<text x=\"\(px)\" y=\"\(coordinate(bottom + 18))\" class=\"tick\" text-anchor=\"middle\">\(compactNumber(t))</text>\n"
    }
    for t in y.ticks() where !integerY || t == t.rounded() {
        let py = coordinate(y.map(t))
        s += "<line x1=\"\(coordinate(ChartFrame.left))\" y1=\"\(py)\" x2=\"\(coordinate(right))\" y2=\"\(py)\" stroke=\"#e4e4e4\"/>"
        s += "<text x=\"\(coordinate(ChartFrame.left - 6))\" y=\"\(coordinate(y.map(t) + 4))\" class=\"tick\" text-anchor=\"end\">\(compactNumber(t))</text>\n"
    }
    s += "<text x=\"\(coordinate(ChartFrame.left + ChartFrame.plotWidth / 2))\" y=\"\(coordinate(ChartFrame.height - 8))\" class=\"axis-label\" text-anchor=\"middle\">\(escapeHTML(xLabel))</text>\n"
    let cy = ChartFrame.top + ChartFrame.plotHeight / 2
    s += "<text x=\"14\" y=\"\(coordinate(cy))\" class=\"axis-label\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(coordinate(cy)))\">\(escapeHTML(yLabel))</text>\n"
    return s
}
