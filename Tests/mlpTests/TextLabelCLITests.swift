import Foundation
import MLPKit
import XCTest

/// A CSV whose target column holds class names (`species` = setosa, …): `train` makes them
/// classes in sorted order and records them, `eval` reads them back by name, `predict` writes
/// them, and a resumed run on the same labels is bit for bit an uninterrupted one.
final class TextLabelCLITests: XCTestCase {
    var folder: URL!
    let names = ["virginica", "setosa", "versi, color"]  // sorted: setosa, versi, color, virginica
    let rows = 180

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 8)
        var text = "length,\"species\",width\n"
        for row in 0..<rows {
            let label = row % 3
            let (x, y) = (Float(generator.nextNormal()) + 3 * Float(label), Float(generator.nextNormal()) - 3 * Float(label))
            let name = names[label].contains(",") ? "\"\(names[label])\"" : names[label]
            text += "\(x),\(name),\(y)\n"
        }
        try text.write(to: folder.appendingPathComponent("flowers.csv"), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func testTrainEvalPredictWithClassNames() throws {
        let train = try run(["train", "--data", "flowers.csv", "--target", "species", "--hidden", "16", "--epochs", "20",
                             "--batch-size", "30", "--out", "m.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("loss: cross-entropy (chosen from the targets; --loss to change); layers 2,16,3; "
            + "classes 'setosa', 'versi, color', 'virginica'"), train.standardError)
        let checkpoint = try Checkpoint.load(from: folder.appendingPathComponent("m.safetensors").path)
        XCTAssertEqual(checkpoint.classNames, ["setosa", "versi, color", "virginica"])

        let predict = try run(["predict", "--model", "m.safetensors", "--data", "flowers.csv", "--out", "p.csv"])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let lines = try String(contentsOf: folder.appendingPathComponent("p.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "class,p_setosa,\"p_versi, color\",p_virginica")
        XCTAssertEqual(lines.count, rows + 1)
        // the accuracy eval reports is the share of rows whose predicted name is the label
        var right = 0
        for (row, line) in lines.dropFirst().enumerated() {
            let predicted = line.hasPrefix("\"") ? String(line.dropFirst().prefix { $0 != "\"" }) : String(line.prefix { $0 != "," })
            XCTAssertTrue(names.contains(predicted), String(line))
            if predicted == names[row % 3] { right += 1 }
        }
        let evaluation = try run(["eval", "--model", "m.safetensors", "--data", "flowers.csv", "--json"])
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        let figures = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(evaluation.standardOutput.utf8)) as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(figures["accuracy"] as? Double), Double(right) / Double(rows), accuracy: 1e-12)
        XCTAssertGreaterThan(right, rows * 2 / 3, "the classes are well apart")

        // .npy keeps the class index (setosa 0, versi, color 1, virginica 2) and the probabilities
        XCTAssertEqual(try run(["predict", "--model", "m.safetensors", "--data", "flowers.csv", "--out", "p.npy"]).status, 0)
        let array = try NumpyFile.read(path: folder.appendingPathComponent("p.npy").path)
        XCTAssertEqual(array.columns, 4)
        let sorted = names.sorted()
        for (row, line) in lines.dropFirst().enumerated() {
            let name = sorted[Int(array.values[row * 4])]
            XCTAssertTrue(line.hasPrefix(name.contains(",") ? "\"\(name)\"," : "\(name),"), "row \(row): \(line) against \(name)")
        }
    }

    func testLabelsTheModelDoesNotKnowAndWrongLossAreOneError() throws {
        XCTAssertEqual(try run(["train", "--data", "flowers.csv", "--target", "species", "--hidden", "4", "--steps", "2",
                                "--out", "m.safetensors"]).status, 0)
        try "length,species,width\n1,setosa,2\n3,lotus,4\n".write(to: folder.appendingPathComponent("other.csv"), atomically: true,
                                                                    encoding: .utf8)
        try assertCommandFails(["eval", "--model", "m.safetensors", "--data", "other.csv"], in: folder,
                               mentioning: "other.csv, line 3, column 2 ('species'): 'lotus' is not one of the model's classes "
                                   + "('setosa', 'versi, color', 'virginica')", status: 1)
        try assertCommandFails(["train", "--data", "flowers.csv", "--target", "species", "--loss", "mse", "--out", "n.safetensors"],
                               in: folder, mentioning: "the target 'species' holds text labels (3 classes), which need --loss cross-entropy, not mse",
                               status: 64)
    }

    /// Two epochs, then one more from the checkpoint (no --target: the recorded one), equal three.
    func testResumeOnTextLabels() throws {
        let common = ["--hidden", "8", "--batch-size", "40", "--seed", "3"]
        XCTAssertEqual(try run(["train", "--data", "flowers.csv", "--target", "species", "--epochs", "3",
                                "--out", "full.safetensors"] + common).status, 0)
        XCTAssertEqual(try run(["train", "--data", "flowers.csv", "--target", "species", "--epochs", "2",
                                "--out", "part.safetensors"] + common).status, 0)
        let resumed = try run(["train", "--init", "part.safetensors", "--data", "flowers.csv", "--epochs", "1",
                               "--out", "resumed.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        let full = try Checkpoint.load(from: folder.appendingPathComponent("full.safetensors").path)
        let again = try Checkpoint.load(from: folder.appendingPathComponent("resumed.safetensors").path)
        XCTAssertEqual(full.parameters.map(\.bitPattern), again.parameters.map(\.bitPattern))
        XCTAssertEqual(again.classNames, ["setosa", "versi, color", "virginica"])
    }

    /// Inputs from an array, labels from a text file of one name a line.
    func testTextLabelsFileWithArrays() throws {
        let text = try String(contentsOf: folder.appendingPathComponent("flowers.csv"), encoding: .utf8)
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "flowers.csv", target: "species")
        try Data(NumpyFile.encode(table.features)).write(to: folder.appendingPathComponent("x.npy"))
        let labels = (0..<rows).map { names[$0 % 3].contains(",") ? "\"\(names[$0 % 3])\"" : names[$0 % 3] }
        try (labels.joined(separator: "\n") + "\n").write(to: folder.appendingPathComponent("labels.txt"), atomically: true, encoding: .utf8)
        let common = ["--hidden", "16", "--epochs", "5", "--batch-size", "30", "--seed", "2"]
        XCTAssertEqual(try run(["train", "--x", "x.npy", "--y", "labels.txt", "--out", "a.safetensors"] + common).status, 0)
        XCTAssertEqual(try run(["train", "--data", "flowers.csv", "--target", "species", "--out", "b.safetensors"] + common).status, 0)
        // the same classes in the same order, so the same model bit for bit
        let a = try Checkpoint.load(from: folder.appendingPathComponent("a.safetensors").path)
        let b = try Checkpoint.load(from: folder.appendingPathComponent("b.safetensors").path)
        XCTAssertEqual(a.classNames, ["setosa", "versi, color", "virginica"])
        XCTAssertEqual(a.parameters.map(\.bitPattern), b.parameters.map(\.bitPattern))
        let byArrays = try run(["eval", "--model", "a.safetensors", "--x", "x.npy", "--y", "labels.txt", "--json"])
        let byTable = try run(["eval", "--model", "b.safetensors", "--data", "flowers.csv", "--json"])
        XCTAssertEqual(byArrays.status, 0, byArrays.standardError)
        XCTAssertEqual(byArrays.standardOutput, byTable.standardOutput)
        XCTAssertEqual(try run(["predict", "--model", "a.safetensors", "--x", "x.npy", "--out", "p.csv"]).status, 0)
        let first = try String(contentsOf: folder.appendingPathComponent("p.csv"), encoding: .utf8).split(separator: "\n").first
        XCTAssertEqual(first, "class,p_setosa,\"p_versi, color\",p_virginica")
        try assertCommandFails(["train", "--x", "x.npy", "--y", "labels.txt", "--loss", "mse", "--out", "c.safetensors"], in: folder,
                               mentioning: "--y labels.txt holds text labels (3 classes), which need --loss cross-entropy, not mse", status: 64)
        // a model trained on numbered classes does not guess which name is which number
        let numbers = (0..<rows).map { "\($0 % 3)" }.joined(separator: "\n") + "\n"
        try numbers.write(to: folder.appendingPathComponent("numbers.txt"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try run(["train", "--x", "x.npy", "--y", "numbers.txt", "--out", "n.safetensors"] + common).status, 0)
        try assertCommandFails(["eval", "--model", "n.safetensors", "--x", "x.npy", "--y", "labels.txt"], in: folder,
                               mentioning: "--y labels.txt holds text labels, but n.safetensors records no class names (it was trained "
                                   + "on numbered classes): give the labels as their numbers 0…2", status: 1)
        // training on from it names the outputs in sorted order, and says so
        let named = try run(["train", "--init", "n.safetensors", "--x", "x.npy", "--y", "labels.txt", "--steps", "1",
                             "--out", "named.safetensors"])
        XCTAssertEqual(named.status, 0, named.standardError)
        XCTAssertTrue(named.standardError.contains("note: n.safetensors records no class names; its outputs 0…2 are now "
            + "'setosa', 'versi, color', 'virginica', in that order"), named.standardError)
        XCTAssertEqual(try Checkpoint.load(from: folder.appendingPathComponent("named.safetensors").path).classNames,
                       ["setosa", "versi, color", "virginica"])
    }

    /// A CSV without a header (UCI's iris.data): --no-header and the target by its number.
    func testHeaderlessDataWithTheTargetByNumber() throws {
        let text = try String(contentsOf: folder.appendingPathComponent("flowers.csv"), encoding: .utf8)
        let rowsOnly = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n")
        try rowsOnly.write(to: folder.appendingPathComponent("flowers.data"), atomically: true, encoding: .utf8)
        let common = ["--hidden", "16", "--epochs", "5", "--batch-size", "30", "--seed", "2"]
        XCTAssertEqual(try run(["train", "--data", "flowers.data", "--no-header", "--target", "2", "--out", "a.safetensors"] + common).status, 0)
        XCTAssertEqual(try run(["train", "--data", "flowers.csv", "--target", "species", "--out", "b.safetensors"] + common).status, 0)
        let a = try Checkpoint.load(from: folder.appendingPathComponent("a.safetensors").path)
        let b = try Checkpoint.load(from: folder.appendingPathComponent("b.safetensors").path)
        XCTAssertEqual(a.parameters.map(\.bitPattern), b.parameters.map(\.bitPattern))
        XCTAssertEqual(a.classNames, b.classNames)
        XCTAssertNil(a.featureNames, "column numbers are not names: the model reads by position")
        XCTAssertNil(a.targetName)
        let headerless = try run(["eval", "--model", "a.safetensors", "--data", "flowers.data", "--no-header", "--target", "2", "--json"])
        let named = try run(["eval", "--model", "b.safetensors", "--data", "flowers.csv", "--json"])
        XCTAssertEqual(headerless.status, 0, headerless.standardError)
        XCTAssertEqual(headerless.standardOutput, named.standardOutput)
        XCTAssertEqual(try run(["predict", "--model", "a.safetensors", "--data", "flowers.data", "--no-header", "--target", "2",
                                "--out", "p1.csv"]).status, 0)
        XCTAssertEqual(try run(["predict", "--model", "b.safetensors", "--data", "flowers.csv", "--out", "p2.csv"]).status, 0)
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("p1.csv")),
                       try Data(contentsOf: folder.appendingPathComponent("p2.csv")))
        try assertCommandFails(["train", "--data", "flowers.data", "--no-header", "--target", "species", "--out", "c.safetensors"],
                               in: folder, mentioning: "with --no-header, --target is a column number from 1, got 'species'", status: 64)
        try assertCommandFails(["train", "--data", "flowers.data", "--no-header", "--target", "4", "--out", "c.safetensors"], in: folder,
                               mentioning: "flowers.data has 3 columns without a header, numbered 1 to 3; there is no column '4'", status: 1)
        try assertCommandFails(["train", "--x", "x.npy", "--y", "y.npy", "--no-header", "--out", "c.safetensors"], in: folder,
                               mentioning: "--no-header goes with --data", status: 64)
    }
}
