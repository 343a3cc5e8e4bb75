import Foundation
import MLPKit
import XCTest

/// A model trained from a CSV reads other CSV files by its columns' names: `predict` and `eval`
/// on the columns in another order, with an extra column and the target, give what they give on
/// the training file; a resumed run on reordered columns is bit for bit an uninterrupted one.
final class ColumnNameCLITests: XCTestCase {
    var folder: URL!
    /// The training table's columns (features a…e, target price), random values.
    var columns: [String: [String]] = [:]
    let rows = 200

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 21)
        var features: [[Float]] = []
        for _ in 0..<5 { features.append((0..<rows).map { _ in Float(generator.nextNormal()) }) }
        let price = (0..<rows).map { 3 * features[0][$0] - features[2][$0] + 0.5 * features[3][$0] * features[4][$0] }
        for (name, values) in zip(["a", "b", "c", "d", "e", "price"], features + [price]) {
            columns[name] = values.map { "\($0)" }
        }
        columns["id"] = (0..<rows).map { "\($0 + 1000)" }
        try write(["a", "b", "c", "d", "e", "price"], to: "train.csv")
        XCTAssertEqual(try run(["train", "--data", "train.csv", "--target", "price", "--hidden", "16", "--epochs", "3",
                                "--batch-size", "32", "--standardize", "--out", "m.safetensors"]).status, 0)
    }

    /// The named columns as a CSV, under `header` (the names themselves by default).
    func write(_ names: [String], to name: String, header: [String]? = nil) throws {
        var text = (header ?? names).joined(separator: ",") + "\n"
        for row in 0..<rows { text += names.map { columns[$0]![row] }.joined(separator: ",") + "\n" }
        try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func contents(_ name: String) throws -> Data { try Data(contentsOf: folder.appendingPathComponent(name)) }

    func testCheckpointRecordsTheColumns() throws {
        let checkpoint = try Checkpoint.load(from: folder.appendingPathComponent("m.safetensors").path)
        XCTAssertEqual(checkpoint.featureNames, ["a", "b", "c", "d", "e"])
        XCTAssertEqual(checkpoint.targetName, "price")
    }

    func testPredictAndEvalReadColumnsByName() throws {
        try write(["id", "e", "price", "c", "a", "d", "b"], to: "shuffled.csv")
        try write(["d", "b", "a", "e", "c"], to: "new.csv")
        for (data, out) in [("train.csv", "p1.csv"), ("shuffled.csv", "p2.csv"), ("new.csv", "p3.csv")] {
            let predict = try run(["predict", "--model", "m.safetensors", "--data", data, "--out", out])
            XCTAssertEqual(predict.status, 0, predict.standardError)
            XCTAssertEqual(predict.standardError.contains("note: shuffled.csv: left out column 'id', not among the model's inputs"),
                           data == "shuffled.csv", predict.standardError)
        }
        XCTAssertEqual(try contents("p1.csv"), try contents("p2.csv"))
        XCTAssertEqual(try contents("p1.csv"), try contents("p3.csv"))

        // eval takes the recorded target when --target is not given
        let reference = try run(["eval", "--model", "m.safetensors", "--data", "train.csv", "--target", "price", "--json"])
        XCTAssertEqual(reference.status, 0, reference.standardError)
        for data in ["train.csv", "shuffled.csv"] {
            let evaluation = try run(["eval", "--model", "m.safetensors", "--data", data, "--json"])
            XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
            XCTAssertEqual(evaluation.standardOutput, reference.standardOutput)
        }
    }

    func testMissingOrMisusedColumnsAreOneError() throws {
        try write(["a", "b", "c", "e", "price"], to: "short.csv")
        try assertCommandFails(["predict", "--model", "m.safetensors", "--data", "short.csv", "--out", "p.csv"], in: folder,
                               mentioning: "short.csv has no column named 'd', the model's input 4 of 5 (columns: a, b, c, e, price)",
                               status: 1)
        try assertCommandFails(["eval", "--model", "m.safetensors", "--data", "train.csv", "--target", "c"], in: folder,
                               mentioning: "train.csv: the target 'c' is one of the model's input columns", status: 1)
        try write(["a", "b", "c", "d", "e"], to: "unlabelled.csv")
        try assertCommandFails(["eval", "--model", "m.safetensors", "--data", "unlabelled.csv"], in: folder,
                               mentioning: "unlabelled.csv has no column named 'price'", status: 1)
    }

    /// Two epochs on the training file, then one more from the checkpoint on its columns
    /// reordered (with no --target: the checkpoint's), equal three epochs bit for bit.
    func testResumeOnReorderedColumns() throws {
        try write(["price", "e", "id", "d", "c", "b", "a"], to: "reordered.csv")
        let common = ["--hidden", "16", "--batch-size", "32", "--seed", "4", "--standardize"]
        XCTAssertEqual(try run(["train", "--data", "train.csv", "--target", "price", "--epochs", "3", "--out", "full.safetensors"]
                               + common).status, 0)
        XCTAssertEqual(try run(["train", "--data", "train.csv", "--target", "price", "--epochs", "2", "--out", "part.safetensors"]
                               + common).status, 0)
        let resumed = try run(["train", "--init", "part.safetensors", "--data", "reordered.csv", "--epochs", "1",
                               "--out", "resumed.safetensors", "--json"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardError.contains("left out column 'id'"), resumed.standardError)
        let full = try Checkpoint.load(from: folder.appendingPathComponent("full.safetensors").path)
        let again = try Checkpoint.load(from: folder.appendingPathComponent("resumed.safetensors").path)
        XCTAssertEqual(full.parameters.map(\.bitPattern), again.parameters.map(\.bitPattern))
        XCTAssertEqual(full.optimizer?.secondMoment.map(\.bitPattern), again.optimizer?.secondMoment.map(\.bitPattern))
        XCTAssertEqual(again.featureNames, ["a", "b", "c", "d", "e"])
        XCTAssertEqual(again.targetName, "price")
    }

    /// A model trained from arrays records no names, so a CSV is read by position, as always;
    /// and a model with names still takes arrays (--x) by position.
    func testModelsWithoutNamesReadByPosition() throws {
        let x = (0..<rows).flatMap { row in ["a", "b", "c", "d", "e"].map { Float(columns[$0]![row])! } }
        let y = columns["price"]!.map { Float($0)! }
        try Data(NumpyFile.encode(DataMatrix(rows: rows, columns: 5, values: x, isIntegral: false)))
            .write(to: folder.appendingPathComponent("x.npy"))
        try Data(NumpyFile.encode(DataMatrix(rows: rows, columns: 1, values: y, isIntegral: false)))
            .write(to: folder.appendingPathComponent("y.npy"))
        XCTAssertEqual(try run(["train", "--x", "x.npy", "--y", "y.npy", "--hidden", "8", "--epochs", "1",
                                "--out", "arrays.safetensors"]).status, 0)
        let unnamed = try Checkpoint.load(from: folder.appendingPathComponent("arrays.safetensors").path)
        XCTAssertNil(unnamed.featureNames)
        XCTAssertNil(unnamed.targetName)
        try write(["a", "b", "price", "c", "d", "e"], to: "renamed.csv", header: ["v", "w", "price", "x", "y", "z"])
        let positional = try run(["predict", "--model", "arrays.safetensors", "--data", "renamed.csv", "--target", "price",
                                  "--out", "q1.npy"])
        XCTAssertEqual(positional.status, 0, positional.standardError)
        let fromArrays = try run(["predict", "--model", "arrays.safetensors", "--x", "x.npy", "--out", "q2.npy"])
        XCTAssertEqual(fromArrays.status, 0, fromArrays.standardError)
        XCTAssertEqual(try contents("q1.npy"), try contents("q2.npy"))
        // the named model on the same arrays: by position
        let named = try run(["predict", "--model", "m.safetensors", "--x", "x.npy", "--out", "q3.csv"])
        XCTAssertEqual(named.status, 0, named.standardError)
        let byName = try run(["predict", "--model", "m.safetensors", "--data", "train.csv", "--out", "q4.csv"])
        XCTAssertEqual(byName.status, 0, byName.standardError)
        XCTAssertEqual(try contents("q3.csv"), try contents("q4.csv"))
    }

    /// `predict --keep` copies the columns as written, whether they are read with the inputs (an id
    /// the model does not take), again (a kept input column), or from a file without a header.
    func testKeptColumnsAreCopiedWhicheverWayTheyAreRead() throws {
        try write(["id", "e", "price", "c", "a", "d", "b"], to: "shuffled.csv")
        XCTAssertEqual(try run(["predict", "--model", "m.safetensors", "--data", "shuffled.csv", "--out", "plain.csv"]).status, 0)
        let plain = try String(contentsOf: folder.appendingPathComponent("plain.csv"), encoding: .utf8).split(separator: "\n")
        let kept = try run(["predict", "--model", "m.safetensors", "--data", "shuffled.csv", "--keep", "c,id,price", "--out", "k.csv"])
        XCTAssertEqual(kept.status, 0, kept.standardError)
        XCTAssertFalse(kept.standardError.contains("left out"), kept.standardError)
        let lines = try String(contentsOf: folder.appendingPathComponent("k.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, rows + 1)
        XCTAssertEqual(lines[0], "c,id,price," + plain[0])
        for row in 0..<rows {
            XCTAssertEqual(lines[row + 1], "\(columns["c"]![row]),\(columns["id"]![row]),\(columns["price"]![row]),\(plain[row + 1])")
        }
        // without a header: columns by number, read a second time
        try write(["a", "b", "c", "d", "e", "id"], to: "bare.csv", header: [])
        let bare = try String(contentsOf: folder.appendingPathComponent("bare.csv"), encoding: .utf8).dropFirst()
        try String(bare).write(to: folder.appendingPathComponent("bare.csv"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try run(["train", "--data", "bare.csv", "--no-header", "--target", "5", "--drop", "6", "--hidden", "4",
                                "--steps", "2", "--out", "n.safetensors"]).status, 0)
        let numbered = try run(["predict", "--model", "n.safetensors", "--data", "bare.csv", "--no-header", "--drop", "5,6",
                                "--keep", "6", "--out", "n.csv"])
        XCTAssertEqual(numbered.status, 0, numbered.standardError)
        let numberedLines = try String(contentsOf: folder.appendingPathComponent("n.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(numberedLines.count, rows + 1)
        for row in 0..<rows { XCTAssertTrue(numberedLines[row + 1].hasPrefix("\(columns["id"]![row]),"), String(numberedLines[row + 1])) }
    }
}
