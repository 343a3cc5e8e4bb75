import Foundation
import MLPKit
import XCTest

/// End-to-end runs of the built `mlp`: train → eval → predict, JSON keys, resumption.
final class CommandLineTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        try BundledData.digitsCSV.write(to: folder.appendingPathComponent("digits.csv"), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    func json(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(text)")
    }

    func testDemoReachesHighAccuracy() throws {
        let result = try run(["demo", "--device", "cpu"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let line = try XCTUnwrap(result.standardOutput.split(separator: "\n").first { $0.hasPrefix("accuracy: ") })
        let accuracy = try XCTUnwrap(Double(line.dropFirst("accuracy: ".count)))
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
    }

    func testTrainEvaluatePredictOnDigits() throws {
        let train = try run(["train", "--data", "digits.csv", "--target", "label", "--hidden", "64,32", "--epochs", "8",
                             "--batch-size", "64", "--validation-split", "0.2", "--out", "digits.safetensors",
                             "--plot", "digits.svg", "--json"])
        XCTAssertEqual(train.status, 0, train.standardError)
        let summary = try json(train.standardOutput)
        for key in ["steps", "epochs", "final_loss", "seconds", "validation_accuracy"] {
            XCTAssertNotNil(summary[key], "missing \(key) in \(train.standardOutput)")
        }
        XCTAssertEqual(summary["epochs"] as? Int, 8)
        XCTAssertEqual(summary["steps"] as? Int, 8 * Int((1438.0 / 64).rounded(.up)))
        XCTAssertGreaterThan(try XCTUnwrap(summary["validation_accuracy"] as? Double), 0.9)
        XCTAssertEqual(summary["loss"] as? String, "cross-entropy")

        let checkpoint = try Checkpoint.load(from: path("digits.safetensors"))
        XCTAssertEqual(checkpoint.layerSizes, [64, 64, 32, 10])
        XCTAssertEqual(checkpoint.loss, .crossEntropy)
        XCTAssertEqual(checkpoint.optimizer?.step, summary["steps"] as? Int)
        let svg = try String(contentsOfFile: path("digits.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("polyline") && svg.contains("Accuracy"))

        let evaluation = try run(["eval", "--model", "digits.safetensors", "--data", "digits.csv", "--target", "label", "--json"])
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        let figures = try json(evaluation.standardOutput)
        XCTAssertEqual(figures["rows"] as? Int, 1797)
        XCTAssertGreaterThan(try XCTUnwrap(figures["accuracy"] as? Double), 0.9)
        let loss = try XCTUnwrap(figures["loss"] as? Double)
        XCTAssertTrue(loss > 0 && loss < 0.5, "loss \(loss)")

        let predict = try run(["predict", "--model", "digits.safetensors", "--data", "digits.csv", "--target", "label",
                               "--out", "predictions.csv"])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let lines = try String(contentsOfFile: path("predictions.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1798)
        XCTAssertEqual(lines[0], "class,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9")
        // the predicted classes agree with the accuracy eval reported
        let digits = try CSVFile.read(path: path("digits.csv"), hasHeader: true).matrix
        var correct = 0
        for (row, line) in lines.dropFirst().enumerated() {
            let cells = line.split(separator: ",").compactMap { Double($0) }
            XCTAssertEqual(cells.count, 11)
            XCTAssertEqual(cells.dropFirst().reduce(0, +), 1, accuracy: 1e-4)
            let best = cells.dropFirst().enumerated().max { $0.element < $1.element }?.offset
            XCTAssertEqual(Double(best ?? -1), cells[0])
            if Float(cells[0]) == digits.values[row * 65 + 64] { correct += 1 }
        }
        XCTAssertEqual(Double(correct) / 1797, try XCTUnwrap(figures["accuracy"] as? Double), accuracy: 1e-9)

        let npy = try run(["predict", "--model", "digits.safetensors", "--data", "digits.csv", "--target", "label",
                           "--out", "predictions.npy"])
        XCTAssertEqual(npy.status, 0, npy.standardError)
        let matrix = try NumpyFile.read(path: path("predictions.npy"))
        XCTAssertEqual(matrix.rows, 1797)
        XCTAssertEqual(matrix.columns, 11)
    }

    func testRegressionFromNumpyFiles() throws {
        var generator = SeededGenerator(seed: 3)
        let rows = 300
        let x = (0..<(rows * 4)).map { _ in Float(generator.nextNormal()) }
        var y: [Float] = []
        for row in 0..<rows {
            let (a, b, c, d) = (x[row * 4], x[row * 4 + 1], x[row * 4 + 2], x[row * 4 + 3])
            y.append(2 * a - b + 0.5 * c * d)
        }
        try Data(NumpyFile.encode(DataMatrix(rows: rows, columns: 4, values: x, isIntegral: false))).write(to: folder.appendingPathComponent("x.npy"))
        try Data(NumpyFile.encode(DataMatrix(rows: rows, columns: 1, values: y, isIntegral: false), flat: true)).write(to: folder.appendingPathComponent("y.npy"))
        let train = try run(["train", "--x", "x.npy", "--y", "y.npy", "--hidden", "32,32", "--epochs", "40", "--batch-size", "32",
                             "--lr", "0.003", "--out", "r.safetensors", "--json"])
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertEqual(try json(train.standardOutput)["loss"] as? String, "mse")
        let evaluation = try run(["eval", "--model", "r.safetensors", "--x", "x.npy", "--y", "y.npy", "--json"])
        let figures = try json(evaluation.standardOutput)
        XCTAssertTrue(figures["accuracy"] is NSNull)
        // The loss eval reports is the seed's 1/(2B)·ΣΣ(ŷ − y)², checked against predict's values.
        let predict = try run(["predict", "--model", "r.safetensors", "--x", "x.npy", "--out", "p.npy"])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let predictions = try NumpyFile.read(path: path("p.npy"))
        var squares = 0.0
        for (predicted, target) in zip(predictions.values, y) {
            let difference = Double(predicted) - Double(target)
            squares += difference * difference
        }
        let expected = squares / Double(2 * rows)
        XCTAssertEqual(try XCTUnwrap(figures["loss"] as? Double), expected, accuracy: 1e-5 * max(1, expected))
        XCTAssertLessThan(expected, 0.25, "the network should fit y = 2a − b + cd/2")

        // the summary line counts its steps in words that agree with the number
        let one = try run(["train", "--x", "x.npy", "--y", "y.npy", "--hidden", "4", "--steps", "1", "--out", "one.safetensors"])
        XCTAssertEqual(one.status, 0, one.standardError)
        XCTAssertTrue(one.standardOutput.hasPrefix("trained 1 step in "), one.standardOutput)
        let two = try run(["train", "--x", "x.npy", "--y", "y.npy", "--hidden", "4", "--steps", "2", "--out", "two.safetensors"])
        XCTAssertTrue(two.standardOutput.hasPrefix("trained 2 steps in "), two.standardOutput)
    }

    /// Arrays from a .npz archive (stored or deflated) by name, and a gzip-compressed CSV: the
    /// fixtures of MLPKitTests' CompressedDataTests, which Python wrote.
    func testArchivedAndCompressedData() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MLPKitTests/Fixtures/compressed")
        for name in ["arrays.npz", "arrays-compressed.npz", "lines.csv.gz"] {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        let train = try run(["train", "--x", "arrays.npz:x", "--y", "arrays.npz:y", "--hidden", "4", "--steps", "3",
                             "--batch-size", "2", "--out", "m.safetensors", "--json"])
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertEqual(try json(train.standardOutput)["layers"] as? [Int], [3, 4, 3])
        for (archive, out) in [("arrays.npz", "p1.npy"), ("arrays-compressed.npz", "p2.npy")] {
            let predict = try run(["predict", "--model", "m.safetensors", "--x", "\(archive):x.npy", "--out", out])
            XCTAssertEqual(predict.status, 0, predict.standardError)
        }
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("p1.npy")),
                       try Data(contentsOf: folder.appendingPathComponent("p2.npy")))
        let regression = try run(["train", "--x", "lines.csv.gz", "--y", "lines.csv.gz", "--loss", "mse", "--hidden", "4",
                                  "--steps", "2", "--out", "r.safetensors", "--json"])
        XCTAssertEqual(regression.status, 0, regression.standardError)
        XCTAssertEqual(try json(regression.standardOutput)["layers"] as? [Int], [3, 4, 3])
        try assertCommandFails(["train", "--x", "arrays.npz", "--y", "arrays.npz:y", "--out", "n.safetensors"], in: folder,
                               mentioning: "the archive holds 2 files (x, y); pick one as arrays.npz:NAME", status: 1)
        try assertCommandFails(["train", "--x", "arrays.npz:x", "--y", "arrays.npz:y", "--out", "arrays.npz"], in: folder,
                               mentioning: "would overwrite the --x file", status: 64)
    }

    /// Training 3 epochs equals 2 epochs, then 1 more from the checkpoint, bit for bit.
    func testResumeWithInitEqualsUninterruptedRun() throws {
        let common = ["--data", "digits.csv", "--target", "label", "--hidden", "32", "--batch-size", "100", "--seed", "5"]
        XCTAssertEqual(try run(["train"] + common + ["--epochs", "3", "--out", "full.safetensors"]).status, 0)
        XCTAssertEqual(try run(["train"] + common + ["--epochs", "2", "--out", "part.safetensors"]).status, 0)
        let resumed = try run(["train", "--init", "part.safetensors", "--data", "digits.csv", "--target", "label",
                               "--epochs", "1", "--out", "resumed.safetensors", "--json"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        let full = try Checkpoint.load(from: path("full.safetensors"))
        let again = try Checkpoint.load(from: path("resumed.safetensors"))
        XCTAssertEqual(full.parameters.map(\.bitPattern), again.parameters.map(\.bitPattern))
        XCTAssertEqual(full.optimizer?.firstMoment.map(\.bitPattern), again.optimizer?.firstMoment.map(\.bitPattern))
        XCTAssertEqual(full.optimizer?.secondMoment.map(\.bitPattern), again.optimizer?.secondMoment.map(\.bitPattern))
        XCTAssertEqual(full.optimizer?.step, 3 * 18)  // 1,797 rows in batches of 100
        XCTAssertEqual(again.optimizer?.step, 3 * 18)
    }

    /// Completion scripts for bash, zsh and fish know every command and their flags.
    func testCompletionScripts() throws {
        for shell in ["bash", "zsh", "fish"] {
            let result = try run(["--generate-completion-script", shell])
            XCTAssertEqual(result.status, 0, result.standardError)
            for word in ["train", "export", "separator", "importance", "folds", "history"] {
                XCTAssertTrue(result.standardOutput.contains(word), "\(shell): \(word)")
            }
        }
    }

    /// Every command's help text is written as paragraphs that the terminal's width wraps: on a very
    /// wide terminal each paragraph is one line (only example lines, indented, follow each other), so
    /// no line breaks where the source did and the screen's width did not.
    func testHelpParagraphsWrapToTheTerminal() throws {
        let commands = ["train", "eval", "predict", "info", "export", "demo", "devices", "bench", "check"]
        for command in commands {
            let result = try CommandRunner.run([command, "--help"], in: folder, environment: ["COLUMNS": "1000"])
            XCTAssertEqual(result.status, 0, result.standardError)
            let lines = result.standardOutput.components(separatedBy: "\n")
            let overview = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("OVERVIEW: ") }, command)
            let usage = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("USAGE: ") }, command)
            for index in (overview + 1)..<usage where !lines[index].isEmpty && !lines[index - 1].isEmpty {
                XCTAssertTrue(lines[index].hasPrefix("  "), "\(command) --help breaks a paragraph: '\(lines[index - 1])' / '\(lines[index])'")
            }
        }
        // and at 80 columns nothing above the usage line is longer than 80 characters (an example line included)
        for command in commands {
            let result = try CommandRunner.run([command, "--help"], in: folder, environment: ["COLUMNS": "80"])
            for line in result.standardOutput.components(separatedBy: "\n").prefix(while: { !$0.hasPrefix("USAGE: ") }) {
                XCTAssertLessThanOrEqual(line.count, 80, "\(command): \(line)")
            }
        }
    }

    func testDevicesListsTheCPU() throws {
        let result = try run(["devices"])
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.standardOutput.hasPrefix("cpu: "), result.standardOutput)
        XCTAssertTrue(result.standardOutput.contains("cuda: "))
        XCTAssertTrue(result.standardOutput.contains("opencl: "))
    }
}
