import Foundation
import MLPKit
import XCTest

/// A passenger list with missing ages, cabins and ports (`--fill-missing`): `train` fills each
/// numeric column's missing values with its mean and leaves a column of categories' without a
/// category, which trains bit for bit the model the same rows filled by hand train; the fills go
/// into the checkpoint, and `eval`, `predict` and `info` use them.
final class MissingValueCLITests: XCTestCase {
    var folder: URL!
    let rows = 90

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 11)
        var text = "id,survived,sex,age,fare,port\n"
        // filled by hand: age's mean over the ages present, the port one-hot (C, Q, S) or all 0 when missing
        var ages: [Float] = []
        var cells: [(sex: Int, age: Float?, fare: Float, port: Int?)] = []
        for row in 0..<rows {
            let sex = row % 2
            let age: Float? = row % 4 == 1 ? nil : Float(Int(20 + 40 * abs(generator.nextNormal()) * 10)) / 10
            let fare = Float(5 + row % 17)
            let port: Int? = row % 11 == 3 ? nil : row % 3
            if let age { ages.append(age) }
            cells.append((sex, age, fare, port))
            let missing = ["", "NA", "?"][row % 3]
            text += "p\(row),\(sex == 1 ? (row % 5 == 0 ? 0 : 1) : (row % 5 == 0 ? 1 : 0)),\(sex == 1 ? "female" : "male"),"
                + "\(age.map { "\($0)" } ?? missing),\(fare),\(port.map { ["C", "Q", "S"][$0] } ?? missing)\n"
        }
        let mean = Float(ages.reduce(0.0) { $0 + Double($1) } / Double(ages.count))
        var filled = "survived,female,male,age,fare,C,Q,S\n"
        for (row, cell) in cells.enumerated() {
            let survived = text.split(separator: "\n")[row + 1].split(separator: ",")[1]
            let port = (0..<3).map { cell.port == $0 ? "1" : "0" }.joined(separator: ",")
            filled += "\(survived),\(cell.sex == 1 ? "1,0" : "0,1"),\(cell.age ?? mean),\(cell.fare),\(port)\n"
        }
        try text.write(to: folder.appendingPathComponent("passengers.csv"), atomically: true, encoding: .utf8)
        try filled.write(to: folder.appendingPathComponent("filled.csv"), atomically: true, encoding: .utf8)
        self.mean = mean
    }

    var mean: Float = 0

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func checkpoint(_ name: String) throws -> Checkpoint {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path)
    }

    func testFilledValuesTrainAsTheHandFilledFile() throws {
        let common = ["--hidden", "10", "--epochs", "5", "--batch-size", "30", "--seed", "4", "--loss", "cross-entropy"]
        let train = try run(["train", "--data", "passengers.csv", "--target", "survived", "--drop", "id", "--fill-missing",
                             "--out", "m.safetensors"] + common)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("note: passengers.csv: filled missing values: 'age' 23 (mean \(mean)), 'port' 8 (no category)"),
                      train.standardError)
        let byHand = try run(["train", "--data", "filled.csv", "--target", "survived", "--out", "e.safetensors"] + common)
        XCTAssertEqual(byHand.status, 0, byHand.standardError)
        let model = try checkpoint("m.safetensors")
        XCTAssertEqual(model.parameters.map(\.bitPattern), try checkpoint("e.safetensors").parameters.map(\.bitPattern))
        XCTAssertEqual(model.categories, [["female", "male"], nil, nil, ["C", "Q", "S"]])
        XCTAssertEqual(model.fills?.map { $0?.bitPattern }, [nil, mean.bitPattern, Float(Double((0..<rows).map { 5 + $0 % 17 }.reduce(0, +)) / Double(rows)).bitPattern, nil])

        // eval and predict fill with the model's values, whatever the file's own mean
        let evaluation = try run(["eval", "--model", "m.safetensors", "--data", "passengers.csv", "--json"])
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        XCTAssertTrue(evaluation.standardError.contains("'age' 23 (the model's \(mean))"), evaluation.standardError)
        XCTAssertEqual(evaluation.standardOutput,
                       try run(["eval", "--model", "e.safetensors", "--data", "filled.csv", "--json"]).standardOutput)
        // new rows whose target column is blank: predict reads past it
        try "survived,sex,age,fare,port\n,male,,10,S\n?,female,30,NA,\n".write(to: folder.appendingPathComponent("new.csv"),
                                                                                 atomically: true, encoding: .utf8)
        let fare = try XCTUnwrap(model.fills?[2] ?? nil)
        try "female,male,age,fare,C,Q,S\n0,1,\(mean),10,0,0,1\n1,0,30,\(fare),0,0,0\n".write(
            to: folder.appendingPathComponent("new-filled.csv"), atomically: true, encoding: .utf8)
        try assertSamePredictions(("m.safetensors", "new.csv"), ("e.safetensors", "new-filled.csv"), in: folder)

        let info = try run(["info", "--model", "m.safetensors"])
        XCTAssertTrue(info.standardOutput.contains("missing values: sex no category, age \(mean), fare \(fare), port no category\n"),
                      info.standardOutput)
        let fills = try XCTUnwrap(try infoObject("m.safetensors", in: folder)["fills"] as? [Any])
        XCTAssertTrue(fills[0] is NSNull)
        XCTAssertEqual(try XCTUnwrap(fills[1] as? Double), Double(mean), accuracy: 1e-4)
    }

    /// `predict --keep` copies columns of the file, as written, before each row's prediction.
    func testKeepCopiesColumnsIntoThePredictions() throws {
        XCTAssertEqual(try run(["train", "--data", "passengers.csv", "--target", "survived", "--drop", "id", "--fill-missing",
                                "--hidden", "4", "--steps", "2", "--loss", "cross-entropy", "--out", "m.safetensors"]).status, 0)
        let predict = try run(["predict", "--model", "m.safetensors", "--data", "passengers.csv", "--keep", "id, port", "--out", "p.csv"])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let lines = try String(contentsOf: folder.appendingPathComponent("p.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "id,port,class,p0,p1")
        XCTAssertEqual(lines.count, rows + 1)
        let source = try String(contentsOf: folder.appendingPathComponent("passengers.csv"), encoding: .utf8).split(separator: "\n")
        for row in 0..<rows {
            let cells = source[row + 1].split(separator: ",", omittingEmptySubsequences: false)
            XCTAssertTrue(lines[row + 1].hasPrefix("p\(row),\(cells[5]),"), "\(lines[row + 1]) against \(source[row + 1])")
        }
        // the predictions themselves are those without --keep
        XCTAssertEqual(try run(["predict", "--model", "m.safetensors", "--data", "passengers.csv", "--out", "q.csv"]).status, 0)
        let plain = try String(contentsOf: folder.appendingPathComponent("q.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).dropFirst(2).joined(separator: ",") },
                       plain.dropFirst().map(String.init))
        try assertCommandFails(["predict", "--model", "m.safetensors", "--data", "passengers.csv", "--keep", "name", "--out", "r.csv"],
                               in: folder, mentioning: "passengers.csv has no column named 'name' (columns: id, survived, sex, age, fare, port)",
                               status: 1)
        try assertCommandFails(["predict", "--model", "m.safetensors", "--data", "passengers.csv", "--keep", "id", "--out", "r.npy"],
                               in: folder, mentioning: "--keep copies columns of text into a .csv output, not r.npy", status: 64)
        try assertCommandFails(["predict", "--model", "m.safetensors", "--x", "filled.csv", "--keep", "id", "--out", "r.csv"],
                               in: folder, mentioning: "--keep copies columns of --data", status: 64)
    }

    /// With --validation-split, the fills are the means of the training rows alone.
    func testFillsLeaveTheValidationRowsOut() throws {
        let train = try run(["train", "--data", "passengers.csv", "--target", "survived", "--drop", "id", "--fill-missing",
                             "--validation-split", "0.25", "--seed", "6", "--hidden", "4", "--steps", "1", "--out", "v.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        let (training, _) = try Dataset.splitRows(rows, validationFraction: 0.25, seed: 6)
        let lines = try String(contentsOf: folder.appendingPathComponent("passengers.csv"), encoding: .utf8).split(separator: "\n")
        let ages = training.compactMap { Double(lines[$0 + 1].split(separator: ",", omittingEmptySubsequences: false)[3]) }
        let expected = Float(ages.reduce(0, +) / Double(ages.count))
        XCTAssertEqual(try checkpoint("v.safetensors").fills?[1], expected)
        XCTAssertNotEqual(expected, mean)
        XCTAssertTrue(train.standardError.contains("'age' 23 (mean \(expected))"), train.standardError)
    }

    /// Two epochs, then one more from the checkpoint (its fills, not the file's), equal three.
    func testResumeKeepsTheFills() throws {
        let common = ["--hidden", "8", "--batch-size", "40", "--seed", "3", "--drop", "id", "--target", "survived"]
        XCTAssertEqual(try run(["train", "--data", "passengers.csv", "--fill-missing", "--epochs", "3", "--out", "full.safetensors"] + common).status, 0)
        XCTAssertEqual(try run(["train", "--data", "passengers.csv", "--fill-missing", "--epochs", "2", "--out", "part.safetensors"] + common).status, 0)
        let resumed = try run(["train", "--init", "part.safetensors", "--data", "passengers.csv", "--epochs", "1", "--out", "resumed.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertEqual(try checkpoint("full.safetensors").parameters.map(\.bitPattern),
                       try checkpoint("resumed.safetensors").parameters.map(\.bitPattern))
        XCTAssertEqual(try checkpoint("resumed.safetensors").fills, try checkpoint("part.safetensors").fills)
    }

    func testMissingValuesWithoutFillsAreOneError() throws {
        try assertCommandFails(["train", "--data", "passengers.csv", "--target", "survived", "--drop", "id", "--out", "m.safetensors"],
                               in: folder, mentioning: "passengers.csv, line 3, column 4 ('age'): 'NA' is not a number (--fill-missing fills missing values)",
                               status: 1)
        // a model trained without missing values does not guess them
        XCTAssertEqual(try run(["train", "--data", "filled.csv", "--target", "survived", "--hidden", "4", "--steps", "1",
                                "--out", "e.safetensors"]).status, 0)
        try "female,male,age,fare,C,Q,S\n0,1,NA,10,0,0,1\n".write(to: folder.appendingPathComponent("gap.csv"), atomically: true, encoding: .utf8)
        try assertCommandFails(["predict", "--model", "e.safetensors", "--data", "gap.csv", "--out", "p.csv"], in: folder,
                               mentioning: "gap.csv, line 2, column 3 ('age'): 'NA' is not a number", status: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("p.csv").path))
        // the target is never filled, so a missing target gets no hint to fill it
        try "a,y\n1,\n2,1\n".write(to: folder.appendingPathComponent("target.csv"), atomically: true, encoding: .utf8)
        let unfilled = try run(["train", "--data", "target.csv", "--target", "y", "--out", "t.safetensors"])
        XCTAssertEqual(unfilled.standardError, "error: target.csv, line 2, column 2 ('y'): empty cell\n")
        let numbered = try run(["train", "--data", "target.csv", "--no-header", "--target", "2", "--out", "t.safetensors"])
        XCTAssertTrue(numbered.standardError.hasSuffix("line 2, column 2: empty cell\n"), numbered.standardError)
        try assertCommandFails(["train", "--data", "target.csv", "--target", "y", "--fill-missing", "--out", "t.safetensors"], in: folder,
                               mentioning: "target.csv, line 2, column 2 ('y'): the target is missing", status: 1)
        XCTAssertEqual(try run(["train", "--x", "filled.csv", "--y", "filled.csv", "--fill-missing", "--out", "x.safetensors"]).status, 64)
    }
}
