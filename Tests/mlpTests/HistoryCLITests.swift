import Foundation
import MLPKit
import XCTest

/// `train --history FILE.csv` and `--json`'s `history`: one row per epoch, numbered on across a
/// resumed run, whose losses and accuracies are those `mlp eval` gives for the model of that
/// epoch, whose learning rate is the schedule's formula, and which is written only when the
/// checkpoint is.
final class HistoryCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 61)
        var train = "size,score,label,price\n", validation = "size,score,label,price\n"
        for row in 0..<130 {
            let size = Float(generator.nextNormal()) * 2 + 3, score = Float(generator.nextNormal())
            let label = size + score > 3.2 ? "big" : "small"
            let line = "\(size),\(score),\(label),\(size * 3 - score + Float(generator.nextNormal()) * 0.1)\n"
            if row < 100 { train += line } else { validation += line }
        }
        try train.write(to: folder.appendingPathComponent("train.csv"), atomically: true, encoding: .utf8)
        try validation.write(to: folder.appendingPathComponent("validation.csv"), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    /// The CSV's header and its rows as numbers.
    func table(_ name: String) throws -> (header: [String], rows: [[Double]]) {
        let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        let rows = try lines.dropFirst().map { try $0.map { try XCTUnwrap(Double($0), $0) } }
        return (lines.first ?? [], rows)
    }

    func testClassifierHistoryMatchesEvalAndTheSchedule() throws {
        // 100 rows in batches of 16: 7 steps an epoch; the step schedule halves the rate every 5 steps
        let trained = try run(["train", "--data", "train.csv", "--target", "label", "--drop", "price", "--validation-data", "validation.csv",
                               "--hidden", "8", "--epochs", "3", "--batch-size", "16", "--lr", "0.01", "--schedule", "step",
                               "--step-size", "5", "--gamma", "0.5", "--history", "h.csv", "--plot", "h.svg", "--out", "m.safetensors", "--json"])
        XCTAssertEqual(trained.status, 0, trained.standardError)
        let (header, rows) = try table("h.csv")
        XCTAssertEqual(header, ["epoch", "step", "training_loss", "training_accuracy", "validation_loss", "validation_accuracy",
                                "learning_rate", "seconds"])
        XCTAssertEqual(rows.map { $0[0] }, [1, 2, 3])
        XCTAssertEqual(rows.map { $0[1] }, [7, 14, 21])
        XCTAssertEqual(rows.map { $0[6] }, [7, 14, 21].map { Double(Float(0.01 * pow(0.5, Double(($0 - 1) / 5)))) }.map { Double("\(Float($0))")! })
        XCTAssertEqual(rows.map { $0[7] }, rows.map { $0[7] }.sorted())
        for row in rows {
            XCTAssertTrue((0...1).contains(row[3]) && (0...1).contains(row[5]))
            XCTAssertGreaterThan(row[2], 0)
        }
        // --json's history holds the same figures, and its last is the run's final figures
        let object = try jsonObject(trained)
        let history = try XCTUnwrap(object["history"] as? [[String: Any]])
        XCTAssertEqual(history.count, 3)
        for (record, row) in zip(history, rows) {
            for (index, name) in header.enumerated() where name != "seconds" {
                XCTAssertEqual(try XCTUnwrap(record[name] as? Double, name), row[index], name)
            }
        }
        XCTAssertEqual(object["final_loss"] as? Double, rows[2][2])
        XCTAssertEqual(object["validation_loss"] as? Double, rows[2][4])
        // the last epoch's figures are eval's for the saved model: on the validation file, and on the training rows
        let onValidation = try jsonObject(run(["eval", "--model", "m.safetensors", "--data", "validation.csv", "--json"]))
        XCTAssertEqual(rows[2][4], try XCTUnwrap(onValidation["loss"] as? Double), accuracy: 1e-6 * rows[2][4])
        XCTAssertEqual(rows[2][5], try XCTUnwrap(onValidation["accuracy"] as? Double))
        let onTraining = try jsonObject(run(["eval", "--model", "m.safetensors", "--data", "train.csv", "--json"]))
        XCTAssertEqual(rows[2][3], try XCTUnwrap(onTraining["accuracy"] as? Double))

        // a resumed run numbers its epochs and steps on, and continues the schedule
        let resumed = try run(["train", "--init", "m.safetensors", "--data", "train.csv", "--target", "label", "--drop", "price",
                               "--epochs", "2", "--batch-size", "16", "--history", "r.csv", "--out", "r.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        let again = try table("r.csv")
        XCTAssertEqual(again.header, ["epoch", "step", "training_loss", "training_accuracy", "learning_rate", "seconds"])
        XCTAssertEqual(again.rows.map { $0[0] }, [4, 5])
        XCTAssertEqual(again.rows.map { $0[1] }, [28, 35])
        XCTAssertEqual(again.rows.map { $0[4] }, [28, 35].map { Double("\(Float(0.01 * pow(0.5, Double(($0 - 1) / 5))))")! })
    }

    func testRegressionHistoryHasNoAccuracy() throws {
        let trained = try run(["train", "--data", "train.csv", "--target", "price", "--drop", "label", "--validation-split", "0.2",
                               "--hidden", "8", "--epochs", "4", "--batch-size", "20", "--history", "h.csv", "--out", "m.safetensors"])
        XCTAssertEqual(trained.status, 0, trained.standardError)
        let (header, rows) = try table("h.csv")
        XCTAssertEqual(header, ["epoch", "step", "training_loss", "validation_loss", "learning_rate", "seconds"])
        XCTAssertEqual(rows.map { $0[1] }, [4, 8, 12, 16])
        XCTAssertEqual(rows.map { $0[4] }, [0.001, 0.001, 0.001, 0.001])
        // training_loss falls from the first epoch to the last on this easy fit
        XCTAssertLessThan(rows[3][2], rows[0][2])
    }

    func testHistoryPathsAreCheckedBeforeTraining() throws {
        let common = ["--data", "train.csv", "--target", "price", "--drop", "label", "--epochs", "1", "--hidden", "4"]
        let first = try run(["train", "--out", "m.safetensors"] + common)
        XCTAssertEqual(first.status, 0, first.standardError)
        try assertCommandFails(["train", "--out", "n.safetensors", "--history", "n.safetensors"] + common, in: folder,
                               mentioning: "--out and --history name the same file", status: 64)
        try assertCommandFails(["train", "--init", "m.safetensors", "--out", "n.safetensors", "--history", "m.safetensors"] + common,
                               in: folder, mentioning: "--history m.safetensors would overwrite the --init checkpoint", status: 64)
        try assertCommandFails(["train", "--out", "n.safetensors", "--history", "train.csv"] + common, in: folder,
                               mentioning: "--history train.csv would overwrite the --data file", status: 64)
        try assertCommandFails(["train", "--out", "n.safetensors", "--history", "none/h.csv"] + common, in: folder,
                               mentioning: "the folder none does not exist", status: 1)
    }
}
