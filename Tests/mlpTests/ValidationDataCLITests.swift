import Foundation
import MLPKit
import XCTest

/// `train --validation-data FILE` (and `--validation-x/--validation-y` beside `--x/--y`) reports
/// the loss of a separate file each epoch: the loss `mlp eval` gives for the model on that file,
/// read by the training file's columns, categories, fills and classes; the training itself is
/// the run without it, bit for bit; `--patience` keeps its best epoch.
final class ValidationDataCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 21)
        var train = "id,size,city,score,label\n", validation = "label,city,score,size,id\n"
        var trainX = "", trainY = "", validationX = "", validationY = ""
        let cities = ["Oslo", "Bergen", "\"Mo, i Rana\""]
        for row in 0..<150 {
            let size = Float(generator.nextNormal()) * 2 + 3
            let score = Float(generator.nextNormal())
            let city = Int(generator.next() % 3)
            let label = size + score + Float(city) > 4.5 ? "big" : "small"
            // one size missing in each file, filled with the training file's mean
            let sizeText = row == 7 || row == 131 ? "" : "\(size)"
            if row < 110 {
                train += "t\(row),\(sizeText),\(cities[city]),\(score),\(label)\n"
                trainX += "\(size),\(score)\n"
                trainY += "\(label == "big" ? 1 : 0)\n"
            } else {
                validation += "\(label),\(cities[city]),\(score),\(sizeText),v\(row)\n"
                validationX += "\(size),\(score)\n"
                validationY += "\(label == "big" ? 1 : 0)\n"
            }
        }
        for (name, text) in [("train.csv", train), ("validation.csv", validation), ("tx.csv", trainX), ("ty.csv", trainY),
                             ("vx.csv", validationX), ("vy.csv", validationY)] {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func parameters(_ name: String) throws -> [UInt32] {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path).parameters.map(\.bitPattern)
    }

    let common = ["--hidden", "8", "--epochs", "5", "--batch-size", "16", "--seed", "4", "--fill-missing", "--standardize"]

    func testAValidationFileReportsWhatEvalGives() throws {
        let trained = try jsonObject(run(["train", "--data", "train.csv", "--target", "label", "--drop", "id",
                                    "--validation-data", "validation.csv", "--out", "v.safetensors", "--json"] + common))
        let evaluated = try jsonObject(run(["eval", "--model", "v.safetensors", "--data", "validation.csv", "--json"]))
        let loss = try XCTUnwrap(trained["validation_loss"] as? Double), accuracy = try XCTUnwrap(trained["validation_accuracy"] as? Double)
        XCTAssertEqual(loss, try XCTUnwrap(evaluated["loss"] as? Double), accuracy: 1e-6 * loss)
        XCTAssertEqual(accuracy, try XCTUnwrap(evaluated["accuracy"] as? Double))
        XCTAssertEqual(evaluated["rows"] as? Int, 40)
        // the training is the run without it, and its fills and standardisation the training file's
        let plain = try run(["train", "--data", "train.csv", "--target", "label", "--drop", "id", "--out", "p.safetensors"] + common)
        XCTAssertEqual(plain.status, 0, plain.standardError)
        XCTAssertEqual(try parameters("v.safetensors"), try parameters("p.safetensors"))
        // progress lines name the validation file's loss each epoch
        let progress = try run(["train", "--data", "train.csv", "--target", "label", "--drop", "id",
                                "--validation-data", "validation.csv", "--out", "q.safetensors"] + common)
        XCTAssertEqual(progress.status, 0, progress.standardError)
        XCTAssertTrue(progress.standardError.contains("; validating on validation.csv (40 rows)"), progress.standardError)
        XCTAssertTrue(progress.standardError.contains("epoch 5  loss "), progress.standardError)
        XCTAssertTrue(progress.standardError.contains("  validation loss "), progress.standardError)
    }

    func testPatienceKeepsTheBestEpochOfTheFile() throws {
        let trained = try jsonObject(run(["train", "--data", "train.csv", "--target", "label", "--drop", "id", "--validation-data", "validation.csv",
                                    "--patience", "2", "--out", "b.safetensors", "--json", "--lr", "0.05", "--hidden", "32",
                                    "--epochs", "60", "--batch-size", "8", "--seed", "4", "--fill-missing"]))
        let best = try XCTUnwrap(trained["best_validation_loss"] as? Double)
        XCTAssertNotNil(trained["stopped_early_after_epoch"], "\(trained)")
        let evaluated = try jsonObject(run(["eval", "--model", "b.safetensors", "--data", "validation.csv", "--json"]))
        XCTAssertEqual(best, try XCTUnwrap(evaluated["loss"] as? Double), accuracy: 1e-6 * best)
    }

    func testArraysTakeValidationXAndY() throws {
        let arrays = ["--hidden", "8", "--epochs", "5", "--batch-size", "16", "--seed", "4"]
        let trained = try jsonObject(run(["train", "--x", "tx.csv", "--y", "ty.csv", "--validation-x", "vx.csv", "--validation-y", "vy.csv",
                                    "--out", "a.safetensors", "--json"] + arrays))
        let evaluated = try jsonObject(run(["eval", "--model", "a.safetensors", "--x", "vx.csv", "--y", "vy.csv", "--json"]))
        let loss = try XCTUnwrap(trained["validation_loss"] as? Double)
        XCTAssertEqual(loss, try XCTUnwrap(evaluated["loss"] as? Double), accuracy: 1e-6 * loss)
        XCTAssertEqual(trained["validation_accuracy"] as? Double, evaluated["accuracy"] as? Double)
    }

    /// `name` without its rows of missing values, as `clean-NAME`.
    func clean(_ name: String) throws -> String {
        let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
        let kept = text.split(separator: "\n").filter { !$0.contains(",,") }.joined(separator: "\n") + "\n"
        try kept.write(to: folder.appendingPathComponent("clean-" + name), atomically: true, encoding: .utf8)
        return "clean-" + name
    }

    func testMistakesAreOneLine() throws {
        let base = ["train", "--data", try clean("train.csv"), "--target", "label", "--drop", "id", "--out", "e.safetensors"]
        try assertCommandFails(base + ["--validation-data", "validation.csv", "--validation-split", "0.2"], in: folder,
                               mentioning: "--validation-data and --validation-split")
        try assertCommandFails(["train", "--x", "tx.csv", "--y", "ty.csv", "--validation-data", "validation.csv"], in: folder,
                               mentioning: "--validation-data goes with --data")
        try assertCommandFails(base + ["--validation-x", "vx.csv", "--validation-y", "vy.csv"], in: folder,
                               mentioning: "--validation-x and --validation-y go with --x and --y")
        try assertCommandFails(["train", "--x", "tx.csv", "--y", "ty.csv", "--validation-x", "vx.csv"], in: folder,
                               mentioning: "--validation-x needs --validation-y")
        try assertCommandFails(base + ["--validation-data", "missing.csv"], in: folder, mentioning: "cannot read 'missing.csv'")
        // a category the training file never had, by the validation file's line
        var text = try String(contentsOf: folder.appendingPathComponent(try clean("validation.csv")), encoding: .utf8)
        text += "small,Tromsø,0.5,3,v999\n"
        try text.write(to: folder.appendingPathComponent("other.csv"), atomically: true, encoding: .utf8)
        try assertCommandFails(base + ["--validation-data", "other.csv"], in: folder,
                               mentioning: "other.csv, line 41, column 2 ('city'): 'Tromsø' is not one of the categories")
        // arrays of another width
        try "1,2,3\n4,5,6\n".write(to: folder.appendingPathComponent("wide.csv"), atomically: true, encoding: .utf8)
        try "0\n1\n".write(to: folder.appendingPathComponent("two.csv"), atomically: true, encoding: .utf8)
        try assertCommandFails(["train", "--x", "tx.csv", "--y", "ty.csv", "--validation-x", "wide.csv", "--validation-y", "two.csv"],
                               in: folder, mentioning: "--validation-x wide.csv has 3 columns but --x tx.csv has 2")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("e.safetensors").path))
    }
}
