import Foundation
import MLPKit
import XCTest

/// `train --standardize-target`: prices in the hundreds of thousands train as the same rows with
/// the targets standardised by hand (bit for bit); `predict` gives z · deviation + mean of the
/// hand-standardised model's z, and `eval` the seed's loss in the targets' units.
final class TargetStandardizationCLITests: XCTestCase {
    var folder: URL!
    var prices: [Float] = []

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 51)
        var text = "rooms,area,price\n"
        for _ in 0..<200 {
            let rooms = Float(1 + generator.next() % 6)
            let area = Float(generator.nextNormal()) * 30 + 100
            let price = (50_000 * rooms + 2_000 * area + Float(generator.nextNormal()) * 10_000).rounded()
            prices.append(price)
            text += "\(rooms),\(area),\(price)\n"
        }
        try text.write(to: folder.appendingPathComponent("houses.csv"), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func checkpoint(_ name: String) throws -> Checkpoint {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path)
    }

    func predictions(_ model: String, _ data: String) throws -> [Float] {
        let result = try run(["predict", "--model", model, "--data", data, "--out", "-"])
        XCTAssertEqual(result.status, 0, result.standardError)
        return try result.standardOutput.split(separator: "\n").dropFirst().map { try XCTUnwrap(Float(String($0))) }
    }

    func testStandardizedTargetsTrainAsTheRowsStandardizedByHand() throws {
        let common = ["--hidden", "8", "--epochs", "20", "--lr", "0.01", "--batch-size", "32", "--seed", "2", "--standardize"]
        let train = try run(["train", "--data", "houses.csv", "--target", "price", "--standardize-target", "--out", "s.safetensors"] + common)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("loss: mse (chosen from the targets; --loss to change); layers 2,8,1; standardized inputs; "
                                                   + "standardized targets"), train.standardError)
        // the mean and population deviation of the prices, in Float64
        let mean = prices.map(Double.init).reduce(0, +) / Double(prices.count)
        var spread = 0.0
        for price in prices { spread += (Double(price) - mean) * (Double(price) - mean) }
        let deviation = (spread / Double(prices.count)).squareRoot()
        let scaling = try XCTUnwrap(try checkpoint("s.safetensors").targetStandardization)
        XCTAssertEqual(scaling.mean, [Float(mean)])
        XCTAssertEqual(scaling.deviation, [Float(deviation)])
        // the same rows with the prices standardised here, in Float32, train the same parameters
        let (m, d) = (scaling.mean[0], scaling.deviation[0])
        var text = try String(contentsOf: folder.appendingPathComponent("houses.csv"), encoding: .utf8)
        var lines = text.split(separator: "\n").map(String.init)
        for index in 1..<lines.count {
            var cells = lines[index].split(separator: ",").map(String.init)
            cells[2] = "\((prices[index - 1] - m) / d)"
            lines[index] = cells.joined(separator: ",")
        }
        text = lines.joined(separator: "\n") + "\n"
        try text.write(to: folder.appendingPathComponent("scaled.csv"), atomically: true, encoding: .utf8)
        let byHand = try run(["train", "--data", "scaled.csv", "--target", "price", "--loss", "mse", "--out", "h.safetensors"] + common)
        XCTAssertEqual(byHand.status, 0, byHand.standardError)
        XCTAssertEqual(try checkpoint("s.safetensors").parameters.map(\.bitPattern), try checkpoint("h.safetensors").parameters.map(\.bitPattern))

        // predict: z · deviation + mean of the hand-standardised model's outputs z
        let predicted = try predictions("s.safetensors", "houses.csv")
        let z = try predictions("h.safetensors", "houses.csv")
        XCTAssertEqual(predicted, z.map { $0 * d + m })
        // eval: the seed's loss, RMSE and R² in dollars
        let figures = try jsonObject(run(["eval", "--model", "s.safetensors", "--data", "houses.csv", "--json"]))
        var squares = 0.0
        for (output, price) in zip(predicted, prices) {
            let error = Double(output) - Double(price)
            squares += error * error
        }
        let loss = try XCTUnwrap(figures["loss"] as? Double)
        XCTAssertEqual(loss, squares / Double(2 * prices.count), accuracy: 1e-12 * loss)
        XCTAssertEqual(try XCTUnwrap(figures["rmse"] as? Double), (squares / Double(prices.count)).squareRoot(), accuracy: 1e-6)
        XCTAssertGreaterThan(try XCTUnwrap(figures["r2"] as? Double), 0.5, "standardised, the prices are learnt in 20 epochs")

        // a resumed run keeps the checkpoint's standardisation; info shows it
        let resumed = try run(["train", "--init", "s.safetensors", "--data", "houses.csv", "--epochs", "1", "--out", "r.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertEqual(try checkpoint("r.safetensors").targetStandardization, scaling)
        let info = try run(["info", "--model", "s.safetensors"])
        XCTAssertTrue(info.standardOutput.contains("targets standardized: outputs × \(d) + \(m)\n"), info.standardOutput)
    }

    func testMistakesAreOneLine() throws {
        try assertCommandFails(["train", "--data", "houses.csv", "--target", "price", "--standardize-target", "--loss", "cross-entropy"],
                               in: folder, mentioning: "--standardize-target goes with --loss mse (regression), not cross-entropy", status: 64)
        XCTAssertEqual(try run(["train", "--data", "houses.csv", "--target", "price", "--loss", "mse", "--steps", "1", "--out", "raw.safetensors"]).status, 0)
        try assertCommandFails(["train", "--data", "houses.csv", "--init", "raw.safetensors", "--standardize-target", "--out", "x.safetensors"],
                               in: folder, mentioning: "the checkpoint was trained on raw targets", status: 1)
    }
}
