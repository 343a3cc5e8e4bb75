import Foundation
import MLPKit
import XCTest

/// `eval --importance`: each column's figures are what `mlp eval` gives for the file with that
/// column's cells shuffled by hand (the shuffles drawn as the README says), minus eval's figures
/// for the file as it is; a column the target depends on ranks above one it does not.
final class ImportanceCLITests: XCTestCase {
    var folder: URL!
    /// The data rows as cells: size, noise, city, score, label.
    var rows: [[String]] = []
    let header = ["size", "noise", "city", "score", "label"]

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 71)
        let cities = ["Oslo", "Bergen", "Mo"]
        for _ in 0..<160 {
            let size = Float(generator.nextNormal()), noise = Float(generator.nextNormal())
            let city = cities[Int(generator.next() % 3)]
            let score = 2 * size + (city == "Oslo" ? 1.5 : 0) + Float(generator.nextNormal()) * 0.1
            rows.append(["\(size)", "\(noise)", city, "\(score * 1000)", score > 0.5 ? "high" : "low"])
        }
        try write(rows, to: "data.csv")
    }

    func write(_ rows: [[String]], to name: String) throws {
        let text = ([header] + rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
        try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    /// Trains on `target` (leaving the other target column out), then checks one shuffle per
    /// column against eval of the file shuffled by hand.
    func checkAgainstShuffledFiles(target: String, extra: [String]) throws {
        let dropped = target == "score" ? "label" : "score"
        let train = try run(["train", "--data", "data.csv", "--target", target, "--drop", dropped, "--hidden", "12", "--epochs", "40",
                             "--batch-size", "32", "--lr", "0.01", "--out", "m.safetensors"] + extra)
        XCTAssertEqual(train.status, 0, train.standardError)
        let result = try run(["eval", "--model", "m.safetensors", "--data", "data.csv", "--importance", "--repeats", "2", "--seed", "7", "--json"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try jsonObject(result)
        let importance = try XCTUnwrap(object["importance"] as? [[String: Any]])
        XCTAssertEqual(importance.compactMap { $0["column"] as? String }, ["size", "noise", "city"])
        let base = try jsonObject(run(["eval", "--model", "m.safetensors", "--data", "data.csv", "--json"]))
        let baseLoss = try XCTUnwrap(base["loss"] as? Double)
        XCTAssertEqual(object["loss"] as? Double, baseLoss)

        // the shuffles: one generator seeded 7, shuffle after shuffle, column after column
        var generator = SeededGenerator(seed: 7)
        var increases = [[Double]](repeating: [], count: 3), decreases = [[Double]](repeating: [], count: 3)
        for _ in 0..<2 {
            for column in 0..<3 {
                let order = generator.permutation(rows.count)
                var shuffled = rows
                for (row, source) in order.enumerated() { shuffled[row][column] = rows[source][column] }
                try write(shuffled, to: "shuffled.csv")
                let evaluated = try jsonObject(run(["eval", "--model", "m.safetensors", "--data", "shuffled.csv", "--json"]))
                increases[column].append(try XCTUnwrap(evaluated["loss"] as? Double) - baseLoss)
                if let accuracy = evaluated["accuracy"] as? Double, let before = base["accuracy"] as? Double {
                    decreases[column].append(before - accuracy)
                }
            }
        }
        for (column, entry) in importance.enumerated() {
            let mean = (increases[column][0] + increases[column][1]) / 2
            let deviation = abs(increases[column][0] - increases[column][1]) / 2
            XCTAssertEqual(try XCTUnwrap(entry["loss_increase"] as? Double), mean, accuracy: 1e-12 * max(1, abs(mean)), header[column])
            XCTAssertEqual(try XCTUnwrap(entry["sd"] as? Double), deviation, accuracy: 1e-12 * max(1, abs(mean)), header[column])
            if target == "label" {
                let decrease = (decreases[column][0] + decreases[column][1]) / 2
                XCTAssertEqual(try XCTUnwrap(entry["accuracy_decrease"] as? Double), decrease, accuracy: 1e-12, header[column])
            } else {
                XCTAssertNil(entry["accuracy_decrease"])
            }
        }
        // what the target depends on matters; the noise hardly does
        let loss = importance.map { $0["loss_increase"] as? Double ?? .nan }
        XCTAssertGreaterThan(loss[0], loss[2])
        XCTAssertGreaterThan(loss[2], 5 * abs(loss[1]), "\(loss)")
    }

    func testRegressionInTheTargetsUnits() throws {
        // scores in the thousands, standardised for training: the increases are in the targets' units
        try checkAgainstShuffledFiles(target: "score", extra: ["--standardize", "--standardize-target"])
    }

    func testClassificationWithAccuracy() throws {
        try checkAgainstShuffledFiles(target: "label", extra: [])
    }

    func testTheTableAndItsFlags() throws {
        let train = try run(["train", "--data", "data.csv", "--target", "label", "--drop", "score", "--hidden", "8", "--epochs", "20",
                             "--batch-size", "32", "--lr", "0.01", "--out", "m.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        let result = try run(["eval", "--model", "m.safetensors", "--data", "data.csv", "--importance"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("importance (") })
        XCTAssertEqual(lines[start], "importance (the loss's increase with the column shuffled, mean and sd of 5 shuffles):")
        XCTAssertTrue(lines[start + 1].hasPrefix("column  loss +"), lines[start + 1])
        XCTAssertTrue(lines[start + 1].hasSuffix("accuracy −"), lines[start + 1])
        XCTAssertEqual(lines[(start + 2)...].map { String($0.prefix { $0 != " " }) }.first, "size")  // the largest first
        XCTAssertEqual(Set(lines[(start + 2)...].map { String($0.prefix { $0 != " " }) }), ["size", "noise", "city"])
        try assertCommandFails(["eval", "--model", "m.safetensors", "--data", "data.csv", "--repeats", "3"], in: folder,
                               mentioning: "--repeats goes with --importance", status: 64)
        try assertCommandFails(["eval", "--model", "m.safetensors", "--data", "data.csv", "--seed", "3"], in: folder,
                               mentioning: "--seed goes with --importance", status: 64)
        try assertCommandFails(["eval", "--model", "m.safetensors", "--data", "data.csv", "--importance", "--repeats", "0"], in: folder,
                               mentioning: "--repeats must be at least 1, got 0", status: 64)
    }
}
