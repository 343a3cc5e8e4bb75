import MLPKit
#if canImport(Glibc)
import Glibc
#endif

/// A monotonic clock in seconds.
enum Clock {
    static var now: Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    static func seconds(since start: Double) -> Double { now - start }
}

/// Number formatting without Foundation.
enum Format {
    /// `text` with spaces after it to `width` characters (as it is when longer).
    static func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }

    /// `text` with spaces before it to `width` characters (right-aligned).
    static func padLeft(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }

    /// `value` with `digits` digits after the point.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([value]) { vsnprintf(&buffer, 64, "%.\(digits)f", $0) }
        return String(cString: buffer)
    }

    /// Seconds as "42s", "3m05s" or "1h02m".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m" + (total % 60 < 10 ? "0" : "") + "\(total % 60)s" }
        return "\(total / 3600)h" + (total % 3600 / 60 < 10 ? "0" : "") + "\(total % 3600 / 60)m"
    }

    /// "1 step", "2 steps": `count` with `noun`, plural unless the count is 1.
    static func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
        "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
    }

    /// A count with thousands separators.
    static func grouped(_ value: Int) -> String {
        let digits = Array(String(value))
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return result
    }
}

/// Training progress on stderr: a live line when stderr is a terminal, one line per epoch
/// otherwise.
final class Progress {
    let quiet: Bool
    let live: Bool
    let start = Clock.now
    let rowsPerEpoch: Int
    var lastDraw = 0.0

    init(quiet: Bool, rowsPerEpoch: Int) {
        self.quiet = quiet
        live = !quiet && Terminal.standardErrorIsTerminal
        self.rowsPerEpoch = rowsPerEpoch
    }

    func step<B: Backend>(_ report: StepReport, session: TrainingSession<B>) {
        guard live else { return }
        let now = Clock.now
        guard now - lastDraw > 0.1 || report.stepsDone == report.stepsTotal else { return }
        lastDraw = now
        let elapsed = now - start
        let rate = Double(report.rowsDone) / max(elapsed, 1e-9)
        let remaining = elapsed / Double(report.stepsDone) * Double(report.stepsTotal - report.stepsDone)
        let loss = ((try? session.lastLoss()) ?? nil).map { "  loss " + Format.fixed($0, 4) } ?? ""
        let line = "epoch \(report.epoch)  step \(report.stepsDone)/\(report.stepsTotal)\(loss)  "
            + "\(Format.grouped(Int(rate))) rows/s  \(Format.duration(remaining)) left"
        fputs("\r\u{1B}[K" + line, stderr)
    }

    func epoch(_ point: TrainingChart.Point, stepsTotal: Int) {
        guard !quiet else { return }
        var line = "epoch \(point.epoch)  loss \(Format.fixed(point.trainingLoss, 6))"
        if let accuracy = point.trainingAccuracy { line += "  accuracy \(Format.fixed(accuracy, 4))" }
        if let loss = point.validationLoss { line += "  validation loss \(Format.fixed(loss, 6))" }
        if let accuracy = point.validationAccuracy { line += "  validation accuracy \(Format.fixed(accuracy, 4))" }
        line += "  step \(stepsTotal)  \(Format.fixed(Clock.seconds(since: start), 2))s"
        fputs((live ? "\r\u{1B}[K" : "") + line + "\n", stderr)
    }

    func finish() {
        if live { fputs("\r\u{1B}[K", stderr) }
    }
}
