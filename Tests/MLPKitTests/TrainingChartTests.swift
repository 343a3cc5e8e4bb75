import XCTest
@testable import MLPKit

/// The SVG chart behind `mlp train --plot`: its ticks and lines for ordinary histories, and
/// any history (epochs near Int.max, losses of 5e-324 or ±1e308) drawn in bounded time.
final class TrainingChartTests: XCTestCase {
    func count(_ text: String, _ piece: String) -> Int { text.components(separatedBy: piece).count - 1 }

    func testOrdinaryHistory() {
        let history = (1...10).map { epoch in
            TrainingChart.Point(epoch: epoch, trainingLoss: 2 / Double(epoch), trainingAccuracy: 0.5 + 0.04 * Double(epoch),
                                validationLoss: 2.2 / Double(epoch), validationAccuracy: 0.45 + 0.04 * Double(epoch))
        }
        let svg = TrainingChart.svg(history: history, loss: .crossEntropy)
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"920\""), String(svg.prefix(80)))
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertEqual(count(svg, "<polyline"), 4)  // training and validation, loss and accuracy
        XCTAssertEqual(count(svg, "<circle"), 40)
        // epochs 1 to 10 labelled one by one in each panel; loss (up to 2.2) ticks 0, 1, 2, 3; accuracy 0, 0.25, …, 1
        for epoch in 1...10 { XCTAssertEqual(count(svg, "text-anchor=\"middle\">\(epoch)</text>"), 2, "epoch \(epoch)") }
        let ticks = svg.components(separatedBy: "text-anchor=\"end\">").dropFirst().map { $0.prefix { $0 != "<" } }
        XCTAssertEqual(ticks, ["0", "1", "2", "3", "0", "0.25", "0.5", "0.75", "1"])
        XCTAssertFalse(svg.lowercased().contains("nan") || svg.contains("inf"))
    }

    func testExtremeHistoriesDrawInBoundedTime() {
        let histories: [[TrainingChart.Point]] = [
            [.init(epoch: Int.max, trainingLoss: 1)],
            [.init(epoch: Int.min, trainingLoss: 1), .init(epoch: Int.max, trainingLoss: 2)],
            [.init(epoch: -(1 << 62), trainingLoss: 1), .init(epoch: 1 << 62, trainingLoss: 1)],
            [.init(epoch: 1, trainingLoss: .leastNonzeroMagnitude)],
            [.init(epoch: 1, trainingLoss: 1e308), .init(epoch: 2, trainingLoss: -1e308)],
            [.init(epoch: 1, trainingLoss: .greatestFiniteMagnitude)],
            [.init(epoch: 1, trainingLoss: .nan), .init(epoch: 2, trainingLoss: .infinity)],
            [.init(epoch: 3, trainingLoss: 1e300), .init(epoch: 4, trainingLoss: 1e300)],
            [],
        ]
        for history in histories {
            let svg = TrainingChart.svg(history: history, loss: .meanSquaredError)
            XCTAssertTrue(svg.hasSuffix("</svg>\n"), "\(history)")
            XCTAssertLessThan(svg.utf8.count, 20_000, "\(history)")
            XCTAssertLessThanOrEqual(count(svg, "text-anchor=\"end\">"), 41, "\(history)")
        }
    }
}
