import Foundation
import MLPKit
import XCTest

/// `-` for a data file reads standard input (a file redirected in, or a pipe), once even when
/// `predict --keep` reads the data twice; `predict --out -` writes its CSV to standard output.
final class StandardStreamCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 41)
        var table = "id,a,b,kind\n", x = "", y = ""
        for row in 0..<80 {
            let (a, b) = (Float(generator.nextNormal()), Float(generator.nextNormal()))
            let kind = a + b > 0 ? "up" : "down"
            table += "r\(row),\(a),\(b),\(kind)\n"
            x += "\(a),\(b)\n"
            y += "\(kind == "up" ? 1 : 0)\n"
        }
        for (name, text) in [("t.csv", table), ("x.csv", x), ("y.csv", y), ("bad.csv", "a,b,kind\n1,x,up\n")] {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let train = try run(["train", "--data", "t.csv", "--target", "kind", "--drop", "id", "--hidden", "8", "--epochs", "3",
                             "--out", "m.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
    }

    func run(_ arguments: [String], input: String? = nil) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder, input: input)
    }

    func testStandardInputReadsAsTheFile() throws {
        // predict: from standard input to standard output, the file's predictions with the kept id
        let file = try run(["predict", "--model", "m.safetensors", "--data", "t.csv", "--keep", "id", "--out", "p.csv"])
        XCTAssertEqual(file.status, 0, file.standardError)
        let streamed = try run(["predict", "--model", "m.safetensors", "--data", "-", "--keep", "id", "--out", "-"], input: "t.csv")
        XCTAssertEqual(streamed.status, 0, streamed.standardError)
        XCTAssertEqual(streamed.standardOutput, try String(contentsOf: folder.appendingPathComponent("p.csv"), encoding: .utf8))
        XCTAssertTrue(streamed.standardOutput.hasPrefix("id,class,p_down,p_up\nr0,"), streamed.standardOutput)
        // the kept id is read with the inputs, in the same pass, and is no column left out to note
        XCTAssertEqual(streamed.standardError, "wrote 80 predictions to standard output\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("-").path))
        // eval, and train from arrays, as from the files
        let evaluation = try run(["eval", "--model", "m.safetensors", "--data", "-", "--json"], input: "t.csv")
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        XCTAssertEqual(evaluation.standardOutput, try run(["eval", "--model", "m.safetensors", "--data", "t.csv", "--json"]).standardOutput)
        let common = ["--hidden", "4", "--steps", "10", "--batch-size", "16"]
        XCTAssertEqual(try run(["train", "--x", "-", "--y", "y.csv", "--out", "s.safetensors"] + common, input: "x.csv").status, 0)
        XCTAssertEqual(try run(["train", "--x", "x.csv", "--y", "y.csv", "--out", "f.safetensors"] + common).status, 0)
        XCTAssertEqual(try Checkpoint.load(from: folder.appendingPathComponent("s.safetensors").path).parameters.map(\.bitPattern),
                       try Checkpoint.load(from: folder.appendingPathComponent("f.safetensors").path).parameters.map(\.bitPattern))
    }

    func testMistakesNameStandardInput() throws {
        try assertCommandFails(["train", "--x", "-", "--y", "-", "--out", "e.safetensors"], in: folder,
                               mentioning: "--x and --y both read standard input (-); give one of them a file", status: 64)
        try assertCommandFails(["train", "--data", "-", "--target", "kind", "--validation-data", "-"], in: folder,
                               mentioning: "--data and --validation-data both read standard input")
        let bad = try run(["eval", "--model", "m.safetensors", "--data", "-"], input: "bad.csv")
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.standardError, "error: stdin, line 2, column 2 ('b'): 'x' is not a number\n")
        try assertCommandFails(["predict", "--model", "m.safetensors", "--data", "t.csv", "--out", "out.npz"], in: folder,
                               mentioning: "--out must end in .npy or .csv (or be - for standard output)")
    }
}
