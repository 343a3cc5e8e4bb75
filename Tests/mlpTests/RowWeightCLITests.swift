import Foundation
import MLPKit
import XCTest

/// `train --weight-column` (and `--weights FILE` beside `--x/--y`): whole-number weights train,
/// full-batch, the model that the file with each row written that many times trains (Adam does not
/// see the batch's scale); the column is left out of the inputs; weights of 1 are the unweighted
/// run bit for bit; the same weights from a file beside `--x/--y` train the same bits; a resumed
/// run keeps the recorded column; bad weights are refused with one line.
final class RowWeightCLITests: XCTestCase {
    var folder: URL!
    var rows: [(a: Float, b: Float, weight: Int, y: Float)] = []

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 37)
        for _ in 0..<120 {
            let (a, b) = (Float(generator.nextNormal()), Float(generator.nextNormal()))
            let y = a - 2 * b + Float(generator.nextNormal()) * 0.3
            rows.append((a, b, Int(generator.next() % 4), y))  // weights 0 to 3
        }
        try write("data.csv", rows.map { "\($0.a),\($0.weight),\($0.b),\($0.y)" }, header: "a,w,b,y")
        try write("repeated.csv", rows.flatMap { row in Array(repeating: "\(row.a),\(row.b),\(row.y)", count: row.weight) }, header: "a,b,y")
        try write("plain.csv", rows.map { "\($0.a),\($0.b),\($0.y)" }, header: "a,b,y")
        try write("x.csv", rows.map { "\($0.a),\($0.b)" })
        try write("y.csv", rows.map { "\($0.y)" })
        try write("weights.csv", rows.map { "\($0.weight)" })
        try write("ones.csv", rows.map { _ in "1" })
    }

    func write(_ name: String, _ lines: [String], header: String? = nil) throws {
        try ((header.map { [$0] } ?? []) + lines).joined(separator: "\n").appending("\n")
            .write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func parameters(_ name: String) throws -> [Float] {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path).parameters
    }

    func train(_ flags: [String], _ out: String) throws {
        let result = try run(["train", "--out", out, "--hidden", "8,6", "--lr", "0.01"] + flags)
        XCTAssertEqual(result.status, 0, result.standardError)
    }

    let fullBatch = ["--steps", "30", "--batch-size", "1000", "--no-shuffle"]

    func testWholeWeightsAreRepeatedRows() throws {
        try train(["--data", "data.csv", "--target", "y", "--weight-column", "w"] + fullBatch, "w.safetensors")
        try train(["--data", "repeated.csv", "--target", "y"] + fullBatch, "r.safetensors")
        let (a, b) = (try parameters("w.safetensors"), try parameters("r.safetensors"))
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max() ?? .nan, 1e-5, "largest parameter difference")
        // the column is not an input, and the checkpoint records it
        let info = try infoObject("w.safetensors", in: folder)
        XCTAssertEqual(info["inputs"] as? [String], ["a", "b"])
        XCTAssertEqual((info["training"] as? [String: Any])?["weight_column"] as? String, "w")
        let text = try run(["info", "--model", "w.safetensors"])
        XCTAssertTrue(text.standardOutput.contains("rows weighted by column 'w'"), text.standardOutput)
        // the same weights beside --x/--y: the same bits
        try train(["--x", "x.csv", "--y", "y.csv", "--weights", "weights.csv"] + fullBatch, "f.safetensors")
        XCTAssertEqual(try parameters("f.safetensors").map(\.bitPattern), a.map(\.bitPattern))
        // weights of 1: the unweighted run, bit for bit; and the weighted model is another
        try train(["--x", "x.csv", "--y", "y.csv", "--weights", "ones.csv"] + fullBatch, "o.safetensors")
        try train(["--data", "plain.csv", "--target", "y"] + fullBatch, "p.safetensors")
        XCTAssertEqual(try parameters("o.safetensors").map(\.bitPattern), try parameters("p.safetensors").map(\.bitPattern))
        XCTAssertGreaterThan(zip(a, try parameters("p.safetensors")).map { abs($0 - $1) }.max() ?? 0, 1e-3)
    }

    func testResumingKeepsTheColumnAndFoldsUseIt() throws {
        let batches = ["--data", "data.csv", "--batch-size", "16"]
        try train(batches + ["--target", "y", "--weight-column", "w", "--epochs", "2"], "two.safetensors")
        let resumed = try run(["train", "--init", "two.safetensors", "--epochs", "1", "--out", "three.safetensors"] + batches)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardError.contains("; rows weighted by 'w'"), resumed.standardError)
        try train(batches + ["--target", "y", "--weight-column", "w", "--epochs", "3"], "whole.safetensors")
        XCTAssertEqual(try parameters("three.safetensors").map(\.bitPattern), try parameters("whole.safetensors").map(\.bitPattern))
        // eval reads the file the model was trained on, the weight column left out as any other
        let evaluated = try run(["eval", "--model", "whole.safetensors", "--data", "data.csv"])
        XCTAssertEqual(evaluated.status, 0, evaluated.standardError)
        // cross-validation: each fold's model is weighted, and the saved model is the run's without --folds
        try train(batches + ["--target", "y", "--weight-column", "w", "--epochs", "3", "--folds", "3"], "folds.safetensors")
        XCTAssertEqual(try parameters("folds.safetensors").map(\.bitPattern), try parameters("whole.safetensors").map(\.bitPattern))
    }

    func testRefused() throws {
        let base = ["train", "--epochs", "1", "--out", "f.safetensors"]
        let data = ["--data", "data.csv", "--target", "y"]
        try write("negative.csv", ["1,2,3,-1", "2,3,4,1"], header: "a,b,y,w")
        try write("empty.csv", ["1,2,3,1", "2,3,4,"], header: "a,b,y,w")
        try write("zero.csv", ["1,2,3,0", "2,3,4,0"], header: "a,b,y,w")
        try write("short.csv", ["1", "2"])
        try write("wide.csv", rows.map { _ in "1,2" })
        for (flags, message, status) in [
            (data + ["--weight-column", "y"], "--weight-column 'y' is the target; weights are a column of their own", Int32(64)),
            (data + ["--weight-column", "nope"], "data.csv has no column named 'nope'", 1),
            (data + ["--weights", "weights.csv"], "--weights goes with --x/--y; beside --data name the column with --weight-column", 64),
            (["--x", "x.csv", "--y", "y.csv", "--weight-column", "w"], "--weight-column names a column of --data; beside --x/--y give --weights FILE", 64),
            (["--data", "negative.csv", "--target", "y", "--weight-column", "w"],
             "negative.csv, line 2, column 4 ('w'): '-1' is not a weight; --weight-column takes numbers ≥ 0, one in every row", 1),
            (["--data", "empty.csv", "--target", "y", "--weight-column", "w"],
             "empty.csv, line 3, column 4 ('w'): an empty weight; --weight-column takes numbers ≥ 0, one in every row", 1),
            (["--data", "zero.csv", "--target", "y", "--weight-column", "w"], "--weight-column w: every row's weight is 0", 1),
            (["--x", "x.csv", "--y", "y.csv", "--weights", "short.csv"], "--weights short.csv has 2 rows but the inputs have 120", 1),
            (["--x", "x.csv", "--y", "y.csv", "--weights", "wide.csv"], "--weights wide.csv has 2 columns; it needs one weight per row, in one column", 1),
        ] {
            try assertCommandFails(base + flags, in: folder, mentioning: message, status: status)
        }
    }
}
