import Foundation
import MLPKit
import XCTest

/// `train --folds K`: each fold's figures are those of the model `mlp train` makes from a file of
/// the fold's other rows, evaluated by `mlp eval` on a file of the fold's rows (the folds drawn as
/// the README says); the model saved is the run without `--folds`, bit for bit.
final class FoldsCLITests: XCTestCase {
    var folder: URL!
    var lines: [String] = []
    let header = "a,b,city,label"

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 81)
        let cities = ["Oslo", "Bergen", "Mo"]
        for row in 0..<90 {
            let a = Float(generator.nextNormal()), b = Float(generator.nextNormal()) * 2
            let city = cities[row % 3]
            let label = a + b / 2 > 0.2 ? "up" : (city == "Oslo" ? "flat" : "down")
            // a tenth of a's cells missing: filled with the mean of the rows that train each fold
            lines.append("\(row % 10 == 3 ? "" : "\(a)"),\(b),\(city),\(label)")
        }
        try write(lines, to: "data.csv")
    }

    func write(_ rows: [String], to name: String) throws {
        try ([header] + rows).joined(separator: "\n").appending("\n")
            .write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    let common = ["--target", "label", "--fill-missing", "--standardize", "--hidden", "8", "--epochs", "5", "--batch-size", "16",
                  "--lr", "0.01", "--seed", "5"]

    func testEachFoldIsTheRunOnItsOtherRows() throws {
        let result = try run(["train", "--data", "data.csv", "--folds", "3", "--out", "f.safetensors", "--json"] + common)
        XCTAssertEqual(result.status, 0, result.standardError)
        let figures = try XCTUnwrap(try jsonObject(result)["cross_validation"] as? [String: Any])
        XCTAssertEqual(figures["folds"] as? Int, 3)
        let losses = try XCTUnwrap(figures["validation_loss"] as? [Double])
        let accuracies = try XCTUnwrap(figures["validation_accuracy"] as? [Double])
        XCTAssertEqual(losses.count, 3)

        // the folds: a permutation from SeededGenerator(seed: 5 ^ 0xF01D…) cut into three runs of 30
        var generator = SeededGenerator(seed: 5 ^ 0xF01D_F01D_F01D_F01D)
        let order = generator.permutation(90)
        for fold in 0..<3 {
            let held = Set(order[(fold * 30)..<(fold * 30 + 30)])
            try write(lines.indices.filter { !held.contains($0) }.map { lines[$0] }, to: "train\(fold).csv")
            try write(lines.indices.filter { held.contains($0) }.map { lines[$0] }, to: "validate\(fold).csv")
            let trained = try run(["train", "--data", "train\(fold).csv", "--out", "m\(fold).safetensors"] + common)
            XCTAssertEqual(trained.status, 0, trained.standardError)
            let evaluated = try jsonObject(run(["eval", "--model", "m\(fold).safetensors", "--data", "validate\(fold).csv", "--json"]))
            let loss = try XCTUnwrap(evaluated["loss"] as? Double)
            XCTAssertEqual(losses[fold], loss, accuracy: 1e-6 * loss, "fold \(fold + 1)")
            XCTAssertEqual(accuracies[fold], try XCTUnwrap(evaluated["accuracy"] as? Double), "fold \(fold + 1)")
        }
        let mean = losses.reduce(0, +) / 3
        XCTAssertEqual(try XCTUnwrap(figures["mean_validation_loss"] as? Double), mean, accuracy: 1e-12)
        let sd = (losses.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2).squareRoot()
        XCTAssertEqual(try XCTUnwrap(figures["sd_validation_loss"] as? Double), sd, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(figures["mean_validation_accuracy"] as? Double), accuracies.reduce(0, +) / 3, accuracy: 1e-12)

        // the saved model is the run without --folds
        let plain = try run(["train", "--data", "data.csv", "--out", "p.safetensors"] + common)
        XCTAssertEqual(plain.status, 0, plain.standardError)
        let saved = try Checkpoint.load(from: folder.appendingPathComponent("f.safetensors").path)
        let reference = try Checkpoint.load(from: folder.appendingPathComponent("p.safetensors").path)
        XCTAssertEqual(saved.parameters.map(\.bitPattern), reference.parameters.map(\.bitPattern))
        XCTAssertEqual(saved.fills, reference.fills)
    }

    func testWhatItPrintsAndRefuses() throws {
        let result = try run(["train", "--data", "data.csv", "--folds", "4", "--out", "f.safetensors"] + common)
        XCTAssertEqual(result.status, 0, result.standardError)
        let folds = result.standardError.split(separator: "\n").filter { $0.hasPrefix("fold ") }
        XCTAssertEqual(folds.count, 4, result.standardError)
        XCTAssertTrue(folds[0].hasPrefix("fold 1/4: 67 rows trained, 23 rows validated: loss "), String(folds[0]))
        XCTAssertTrue(folds[3].hasPrefix("fold 4/4: 68 rows trained, 22 rows validated: loss "), String(folds[3]))
        XCTAssertTrue(result.standardOutput.hasPrefix("cross-validation, 4 folds: validation loss "), result.standardOutput)
        XCTAssertTrue(result.standardOutput.contains(", validation accuracy "), result.standardOutput)

        for (flags, message) in [(["--folds", "1"], "--folds must be at least 2, got 1"),
                                 (["--folds", "3", "--validation-split", "0.2"], "leave out --validation-split"),
                                 (["--folds", "3", "--patience", "2"], "--patience goes with one validation set, not --folds"),
                                 (["--folds", "3", "--init", "f.safetensors"], "--folds cross-validates a fresh model")] {
            try assertCommandFails(["train", "--data", "data.csv", "--out", "g.safetensors"] + common + flags, in: folder,
                                   mentioning: message, status: 64)
        }
        try assertCommandFails(["train", "--data", "data.csv", "--out", "g.safetensors", "--folds", "91", "--target", "label", "--drop", "a"], in: folder,
                               mentioning: "--folds 91 needs a row for each fold; the data has 90 rows", status: 64)
    }
}
