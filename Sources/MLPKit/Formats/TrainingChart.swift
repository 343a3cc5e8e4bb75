#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loss (and accuracy) per epoch as an SVG chart: training and validation lines, labelled
/// axes, a legend.
public enum TrainingChart {
    /// One epoch's figures.
    public struct Point: Sendable, Equatable {
        public var epoch: Int
        public var trainingLoss: Double
        public var trainingAccuracy: Double?
        public var validationLoss: Double?
        public var validationAccuracy: Double?

        public init(epoch: Int, trainingLoss: Double, trainingAccuracy: Double? = nil,
                    validationLoss: Double? = nil, validationAccuracy: Double? = nil) {
            self.epoch = epoch
            self.trainingLoss = trainingLoss
            self.trainingAccuracy = trainingAccuracy
            self.validationLoss = validationLoss
            self.validationAccuracy = validationAccuracy
        }
    }

    struct Series {
        let name: String
        let color: String
        let dashed: Bool
        let points: [(Int, Double)]
    }

    static let panelWidth = 460.0, panelHeight = 300.0
    static let margin = (left: 64.0, right: 16.0, top: 40.0, bottom: 48.0)

    /// The chart's SVG text.
    public static func svg(history: [Point], loss: Loss) -> String {
        let lossSeries = [
            Series(name: "training", color: "#1f77b4", dashed: false, points: history.map { ($0.epoch, $0.trainingLoss) }),
            Series(name: "validation", color: "#d62728", dashed: true,
                   points: history.compactMap { p in p.validationLoss.map { (p.epoch, $0) } }),
        ].filter { !$0.points.isEmpty }
        let accuracySeries = [
            Series(name: "training", color: "#1f77b4", dashed: false,
                   points: history.compactMap { p in p.trainingAccuracy.map { (p.epoch, $0) } }),
            Series(name: "validation", color: "#d62728", dashed: true,
                   points: history.compactMap { p in p.validationAccuracy.map { (p.epoch, $0) } }),
        ].filter { !$0.points.isEmpty }
        let panels = accuracySeries.isEmpty ? 1 : 2
        let width = panelWidth * Double(panels), height = panelHeight
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>

            """
        svg += panel(title: "Loss (\(loss.rawValue))", series: lossSeries, originX: 0, fixedRange: nil, legendAtTop: true)
        if panels == 2 {
            svg += panel(title: "Accuracy", series: accuracySeries, originX: panelWidth, fixedRange: (0, 1), legendAtTop: false)
        }
        svg += "</svg>\n"
        return svg
    }

    /// A tick spacing of 1, 2 or 5 times a power of ten giving about four intervals over `span`.
    static func niceStep(_ span: Double) -> Double {
        let raw = span / 4
        let power = pow(10, (log10(raw)).rounded(.down))
        for factor in [1.0, 2.0, 5.0, 10.0] where raw <= factor * power { return factor * power }
        return 10 * power
    }

    static func panel(title: String, series: [Series], originX: Double, fixedRange: (Double, Double)?, legendAtTop: Bool) -> String {
        let left = originX + margin.left, right = originX + panelWidth - margin.right
        let top = margin.top, bottom = panelHeight - margin.bottom
        let epochs = series.flatMap { $0.points.map(\.0) }
        let values = series.flatMap { $0.points.map(\.1) }.filter(\.isFinite)
        // in Float64, so that any epoch numbers (even near Int.max) cannot overflow
        let firstEpoch = Double(epochs.min() ?? 1)
        let lastEpoch = max(Double(epochs.max() ?? 1), firstEpoch + 1)
        var (low, high) = fixedRange ?? (min(values.min() ?? 0, 0), values.max() ?? 1)
        // a range whose span overflows, or too narrow for a tick step (a loss of 5e-324), would
        // make the ticks endless or zero apart: keep it within ±2^1020 and at least 1e-290 wide
        let limit = 0x1p1020
        (low, high) = (max(low, -limit), min(high, limit))
        if !(high - low > 1e-290) { high = low + max(1, abs(low)) }
        let tickStep = fixedRange == nil ? niceStep(high - low) : 0.25
        if fixedRange == nil { high = (high / tickStep).rounded(.up) * tickStep }
        func x(_ epoch: Double) -> Double { left + (epoch - firstEpoch) / (lastEpoch - firstEpoch) * (right - left) }
        func y(_ value: Double) -> Double { bottom - (value - low) / (high - low) * (bottom - top) }
        func number(_ value: Double) -> String { String(format3(value)) }

        var out = "<g>\n"
        out += "<text x=\"\(number((left + right) / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(title)</text>\n"
        // axes, grid and tick labels
        let tickCount = min(40, max(0, Int(((high - low) / tickStep + 0.5).rounded(.down))))
        for index in 0...tickCount {
            let value = low + Double(index) * tickStep
            let yy = y(value)
            out += "<line x1=\"\(number(left))\" y1=\"\(number(yy))\" x2=\"\(number(right))\" y2=\"\(number(yy))\" stroke=\"#e0e0e0\"/>\n"
            out += "<text x=\"\(number(left - 6))\" y=\"\(number(yy + 4))\" text-anchor=\"end\">\(format3(value))</text>\n"
        }
        let epochStep = max(1, ((lastEpoch - firstEpoch) / 6).rounded(.down))
        var epoch = firstEpoch
        for _ in 0..<13 where epoch <= lastEpoch {  // at most 12 ticks (a span of 11 at a step of 1)
            let label = abs(epoch) < 0x1p53 ? String(Int(epoch)) : format3(epoch)
            out += "<text x=\"\(number(x(epoch)))\" y=\"\(number(bottom + 16))\" text-anchor=\"middle\">\(label)</text>\n"
            epoch += epochStep
        }
        out += "<line x1=\"\(number(left))\" y1=\"\(number(bottom))\" x2=\"\(number(right))\" y2=\"\(number(bottom))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(number(left))\" y1=\"\(number(top))\" x2=\"\(number(left))\" y2=\"\(number(bottom))\" stroke=\"black\"/>\n"
        out += "<text x=\"\(number((left + right) / 2))\" y=\"\(number(panelHeight - 10))\" text-anchor=\"middle\">epoch</text>\n"
        // the lines, with a dot per epoch, and the legend
        for (index, line) in series.enumerated() {
            let points = line.points.filter { $0.1.isFinite }
            let path = points.map { "\(number(x(Double($0.0)))),\(number(y($0.1)))" }.joined(separator: " ")
            let dash = line.dashed ? " stroke-dasharray=\"6 4\"" : ""
            out += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"\(dash) points=\"\(path)\"/>\n"
            for point in points where points.count <= 60 {
                out += "<circle cx=\"\(number(x(Double(point.0))))\" cy=\"\(number(y(point.1)))\" r=\"2.5\" fill=\"\(line.color)\"/>\n"
            }
            let legendY = (legendAtTop ? top + 14 : bottom - 8 - Double(series.count - 1) * 16) + Double(index) * 16
            out += "<line x1=\"\(number(right - 110))\" y1=\"\(number(legendY - 4))\" x2=\"\(number(right - 86))\" y2=\"\(number(legendY - 4))\" stroke=\"\(line.color)\" stroke-width=\"2\"\(dash)/>\n"
            out += "<text x=\"\(number(right - 80))\" y=\"\(number(legendY))\">\(line.name)</text>\n"
        }
        return out + "</g>\n"
    }

    /// A short number: up to 3 significant decimals, no exponent for ordinary values.
    static func format3(_ value: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1000 || magnitude < 0.001 {
            return "\(Float(value))"
        }
        let scaled = (value * 1000).rounded() / 1000
        var text = "\(scaled)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }
}
