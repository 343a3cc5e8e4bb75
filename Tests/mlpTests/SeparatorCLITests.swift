import Foundation
import MLPKit
import XCTest

/// A spreadsheet's semicolon CSV with decimal commas, a tab-separated file and `numpy.savetxt`'s
/// spaces train bit for bit the models their comma versions train; `train` says how it read
/// them; `eval`, `predict` and `--drop` read them as well.
final class SeparatorCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 11)
        var comma = "id,acidity,sugar,colour,quality\n"
        var semicolon = "\"id\";\"acidity\";\"sugar\";\"colour\";\"quality\"\r\n"
        var tab = "id\tacidity\tsugar\tcolour\tquality\n"
        var inputs = "", commaInputs = "", labels = ""
        for row in 0..<90 {
            let acidity = Float(generator.nextNormal()) * 3 + 7
            let sugar = Float(generator.nextNormal()) * 0.5
            let colour = row % 3 == 0 ? "red, deep" : "white"
            let quality = acidity + 2 * sugar > 7 ? 1 : 0
            comma += "w\(row),\(acidity),\(sugar),\"\(colour)\",\(quality)\n"
            let decimal = { (value: Float) in "\(value)".replacingOccurrences(of: ".", with: ",") }
            semicolon += "w\(row);\(decimal(acidity));\(decimal(sugar));\(colour);\(quality)\r\n"
            tab += "w\(row)\t\(acidity)\t\(sugar)\t\(colour)\t\(quality)\n"
            inputs += "  \(acidity)   \(sugar)\n"
            commaInputs += "\(acidity),\(sugar)\n"
            labels += "\(quality)\n"
        }
        for (name, text) in [("comma.csv", comma), ("semicolon.csv", semicolon), ("tab.tsv", tab), ("x.txt", inputs),
                             ("x.csv", commaInputs), ("y.txt", labels)] {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func parameters(_ name: String) throws -> [UInt32] {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path).parameters.map(\.bitPattern)
    }

    func testOtherSeparatorsTrainTheCommaFilesModel() throws {
        let common = ["--hidden", "8", "--epochs", "3", "--batch-size", "16", "--seed", "3"]
        let reference = try run(["train", "--data", "comma.csv", "--target", "quality", "--drop", "id", "--out", "c.safetensors"] + common)
        XCTAssertEqual(reference.status, 0, reference.standardError)
        XCTAssertFalse(reference.standardError.contains("-separated"), reference.standardError)
        for (file, told) in [("semicolon.csv", "read semicolon.csv semicolon-separated"), ("tab.tsv", "read tab.tsv tab-separated")] {
            let out = file + ".safetensors"
            let train = try run(["train", "--data", file, "--target", "quality", "--drop", "id", "--out", out] + common)
            XCTAssertEqual(train.status, 0, train.standardError)
            XCTAssertTrue(train.standardError.contains("one-hot 'colour' (2); \(told)"), train.standardError)
            XCTAssertEqual(try parameters(out), try parameters("c.safetensors"), file)
            try assertSamePredictions(("c.safetensors", "comma.csv"), (out, file), in: folder)
            let evaluation = try run(["eval", "--model", out, "--data", file, "--json"])
            XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
            XCTAssertEqual(evaluation.standardOutput, try run(["eval", "--model", "c.safetensors", "--data", "comma.csv", "--json"]).standardOutput)
        }
        // --x as numpy.savetxt writes it (runs of spaces), --y one number a line
        let spaced = try run(["train", "--x", "x.txt", "--y", "y.txt", "--out", "s.safetensors"] + common)
        XCTAssertEqual(spaced.status, 0, spaced.standardError)
        XCTAssertTrue(spaced.standardError.contains("; read x.txt whitespace-separated"), spaced.standardError)
        let commas = try run(["train", "--x", "x.csv", "--y", "y.txt", "--out", "x.safetensors"] + common)
        XCTAssertEqual(commas.status, 0, commas.standardError)
        XCTAssertEqual(try parameters("s.safetensors"), try parameters("x.safetensors"))
    }

    /// `--separator` for a comma file whose header misleads detection (more semicolons in its
    /// names than commas between them): without it, one error that says how the line was read
    /// and what to do; with it, the model the same rows with plain names train, bit for bit.
    func testTheSeparatorFlag() throws {
        let comma = try String(contentsOf: folder.appendingPathComponent("comma.csv"), encoding: .utf8)
        let body = comma.drop { $0 != "\n" }
        let header = "id;no;key,acidity;g/l;x,sugar;g/l,colour,quality"
        try (header + body).write(to: folder.appendingPathComponent("named.csv"), atomically: true, encoding: .utf8)
        let common = ["--target", "quality", "--hidden", "8", "--epochs", "2", "--batch-size", "16", "--seed", "5"]
        let reference = try run(["train", "--data", "comma.csv", "--drop", "id", "--out", "c.safetensors"] + common)
        XCTAssertEqual(reference.status, 0, reference.standardError)

        let misread = try run(["train", "--data", "named.csv", "--drop", "id;no;key", "--out", "n.safetensors"] + common)
        XCTAssertEqual(misread.status, 1)
        XCTAssertEqual(misread.standardError.split(separator: "\n").count, 1, misread.standardError)
        XCTAssertTrue(misread.standardError.contains("its first line read as semicolon-separated (--separator chooses another)"),
                      misread.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("n.safetensors").path))

        for flag in ["comma", ","] {
            let train = try run(["train", "--data", "named.csv", "--drop", "id;no;key", "--separator", flag, "--out", "n.safetensors"] + common)
            XCTAssertEqual(train.status, 0, train.standardError)
            XCTAssertFalse(train.standardError.contains("-separated"), train.standardError)
            XCTAssertEqual(try parameters("n.safetensors"), try parameters("c.safetensors"), flag)
        }
        // eval and predict read the file by the recorded names with the flag
        let evaluation = try run(["eval", "--model", "n.safetensors", "--data", "named.csv", "--separator", "comma", "--json"])
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        XCTAssertEqual(evaluation.standardOutput, try run(["eval", "--model", "c.safetensors", "--data", "comma.csv", "--json"]).standardOutput)
        let predicted = try run(["predict", "--model", "n.safetensors", "--data", "named.csv", "--separator", "comma", "--out", "-"])
        XCTAssertEqual(predicted.status, 0, predicted.standardError)
        XCTAssertEqual(predicted.standardOutput, try run(["predict", "--model", "c.safetensors", "--data", "comma.csv", "--out", "-"]).standardOutput)
        let unhinted = try run(["eval", "--model", "n.safetensors", "--data", "named.csv"])
        XCTAssertEqual(unhinted.status, 1)
        XCTAssertTrue(unhinted.standardError.contains("(--separator chooses another)"), unhinted.standardError)

        // the flag names the separator of every file the run reads; a wrong one is the file's error, with no hint
        let tab = try run(["train", "--data", "tab.tsv", "--drop", "id", "--separator", "tab", "--out", "t.safetensors"] + common)
        XCTAssertEqual(tab.status, 0, tab.standardError)
        XCTAssertEqual(try parameters("t.safetensors"), try parameters("c.safetensors"))
        let wrong = try run(["train", "--data", "comma.csv", "--drop", "id", "--separator", "semicolon", "--out", "w.safetensors"] + common)
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.standardError.contains("comma.csv has no column named 'id'"), wrong.standardError)
        XCTAssertFalse(wrong.standardError.contains("--separator chooses"), wrong.standardError)
        let spaced = try run(["train", "--x", "x.txt", "--y", "y.txt", "--separator", "space", "--out", "s.safetensors"] + common.dropFirst(2))
        XCTAssertEqual(spaced.status, 0, spaced.standardError)
        let commas = try run(["train", "--x", "x.csv", "--y", "y.txt", "--out", "x.safetensors"] + common.dropFirst(2))
        XCTAssertEqual(commas.status, 0, commas.standardError)
        XCTAssertEqual(try parameters("s.safetensors"), try parameters("x.safetensors"))
        try assertCommandFails(["train", "--x", "x.csv", "--y", "y.txt", "--separator", "\\t", "--out", "f.safetensors"], in: folder,
                               mentioning: "x.csv, line 1, column 1", status: 1)
        try assertCommandFails(["eval", "--model", "c.safetensors", "--data", "comma.csv", "--separator", "colon"], in: folder,
                               mentioning: "--separator must be auto, comma, semicolon, tab, bar or space, got 'colon'", status: 64)
    }
}
