import Foundation
import MLPKit
import XCTest

/// Every bad input gets one line `error: …` on stderr, a non-zero exit, and no output file.
final class BadInputTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        func write(_ name: String, _ text: String) throws {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try write("good.csv", "a,b,label\n0.5,1.5,0\n-1,2,1\n3,0.25,2\n1,1,1\n")
        try write("letters.csv", "a,b,label\n0.5,1.5,0\n-1,oops,1\n")
        try write("short.csv", "a,b,label\n0.5,1.5,0\n-1,2\n")
        try write("long.csv", "a,b,label\n0.5,1.5,0\n-1,2,1,7\n")
        try write("nan.csv", "a,b,label\n0.5,nan,0\n-1,2,1\n")
        try write("inf.csv", "a,b,label\n0.5,1,0\n-1,inf,1\n")
        try write("bigLabel.csv", "a,b,label\n0.5,1.5,0\n-1,2,12\n")
        try write("x.csv", "0.5,1.5\n-1,2\n3,0.25\n1,1\n")
        try write("y3.csv", "0\n1\n2\n")
        // a float16 .npy, which MLPKit does not read
        var header = "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var npy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
        npy += [0, 0x3C, 0, 0x40]
        try Data(npy).write(to: folder.appendingPathComponent("half.npy"))
        // a good model, then a truncated and an inconsistent copy
        let model = try MLP(layerSizes: [2, 4, 3], loss: .crossEntropy, seed: 1)
        try Checkpoint(model: model).save(to: folder.appendingPathComponent("model.safetensors").path)
        let bytes = try Data(contentsOf: folder.appendingPathComponent("model.safetensors"))
        try bytes.prefix(bytes.count - 9).write(to: folder.appendingPathComponent("truncated.safetensors"))
        // W2's shape swapped in the header, byte for byte (the same length, the data untouched)
        var swapped = [UInt8](bytes)
        let (from, to) = (Array("\"shape\":[3,4]".utf8), Array("\"shape\":[4,3]".utf8))
        let at = try XCTUnwrap((0...(swapped.count - from.count)).first { Array(swapped[$0..<($0 + from.count)]) == from })
        swapped.replaceSubrange(at..<(at + from.count), with: to)
        try Data(swapped).write(to: folder.appendingPathComponent("inconsistent.safetensors"))
        // the same network saved without its loss, as a PyTorch state dict would be
        var lossless = try Checkpoint.load(from: folder.appendingPathComponent("model.safetensors").path)
        lossless.loss = nil
        try lossless.save(to: folder.appendingPathComponent("lossless.safetensors").path)
        // every weight and bias 1e18: inputs near 1 give outputs near 1e37, inputs of 1e10 overflow
        let huge = try MLP(layerSizes: [2, 4, 3], loss: .crossEntropy, parameters: [Float](repeating: 1e18, count: 27))
        try Checkpoint(model: huge).save(to: folder.appendingPathComponent("huge.safetensors").path)
        try Checkpoint(model: model).save(to: folder.appendingPathComponent("model.svg").path)
        let wide = try MLP(layerSizes: [5, 4, 3], loss: .crossEntropy, seed: 1)
        try Checkpoint(model: wide).save(to: folder.appendingPathComponent("wide.safetensors").path)
    }

    func assertFails(_ arguments: [String], mentioning expected: String, status: Int32, file: StaticString = #filePath,
                     line: UInt = #line) throws {
        try assertCommandFails(arguments, in: folder, mentioning: expected, status: status, file: file, line: line)
    }

    let train = ["train", "--data", "good.csv", "--target", "label", "--hidden", "4", "--epochs", "1", "--out", "out.safetensors"]

    func testBadFlagValues() throws {
        try assertFails(train + ["--batch-size", "0"], mentioning: "batch-size", status: 64)
        try assertFails(train + ["--lr=-0.1"], mentioning: "--lr", status: 64)
        try assertFails(train + ["--hidden", "8,abc"], mentioning: "abc", status: 64)
        try assertFails(train + ["--hidden", "8,0"], mentioning: "--hidden", status: 64)
        try assertFails(train + ["--device", "tpu"], mentioning: "tpu", status: 64)
        try assertFails(train + ["--epochs", "0"], mentioning: "--epochs", status: 64)
        try assertFails(train + ["--steps", "5"], mentioning: "--epochs or --steps", status: 64)
        try assertFails(train + ["--validation-split", "1.5"], mentioning: "validation-split", status: 64)
        try assertFails(train + ["--beta1", "1"], mentioning: "beta1", status: 64)
        try assertFails(train + ["--eps", "0"], mentioning: "eps", status: 64)
        try assertFails(train + ["--loss", "hinge"], mentioning: "hinge", status: 64)
        try assertFails(train + ["--plot", "chart.png"], mentioning: "svg", status: 64)
        try assertFails(train + ["--unknown-flag"], mentioning: "unknown-flag", status: 64)
    }

    func testMissingAndMalformedData() throws {
        try assertFails(["train", "--data", "missing.csv", "--target", "label", "--out", "out.safetensors"], mentioning: "missing.csv", status: 1)
        try assertFails(["train", "--data", "good.csv", "--target", "nope", "--out", "out.safetensors"], mentioning: "nope", status: 1)
        try assertFails(["train", "--data", "good.csv", "--out", "out.safetensors"], mentioning: "--target", status: 64)
        try assertFails(["train", "--data", "letters.csv", "--target", "label", "--out", "out.safetensors"], mentioning: "line 3", status: 1)
        try assertFails(["train", "--data", "short.csv", "--target", "label", "--out", "out.safetensors"], mentioning: "line 3", status: 1)
        try assertFails(["train", "--data", "long.csv", "--target", "label", "--out", "out.safetensors"], mentioning: "line 3", status: 1)
        try assertFails(["train", "--data", "nan.csv", "--target", "label", "--out", "out.safetensors"], mentioning: "line 2", status: 1)
        try assertFails(["train", "--data", "inf.csv", "--target", "label", "--out", "out.safetensors"], mentioning: "line 3", status: 1)
        try assertFails(["train", "--x", "half.npy", "--y", "y3.csv", "--out", "out.safetensors"], mentioning: "f2", status: 1)
        try assertFails(["train", "--x", "x.csv", "--y", "y3.csv", "--out", "out.safetensors"], mentioning: "rows", status: 1)
        try assertFails(["train", "--x", "x.csv", "--out", "out.safetensors"], mentioning: "--y", status: 64)
    }

    /// Missing or conflicting data flags are usage errors (64), found before any file is read.
    func testDataFlagsMisused() throws {
        try assertFails(["train", "--out", "out.safetensors"], mentioning: "no data", status: 64)
        try assertFails(["train", "--data", "good.csv", "--target", "label", "--x", "x.csv", "--out", "out.safetensors"],
                        mentioning: "not both", status: 64)
        try assertFails(["train", "--x", "x.csv", "--y", "y3.csv", "--target", "label", "--out", "out.safetensors"],
                        mentioning: "--target goes with --data", status: 64)
        try assertFails(["eval", "--model", "model.safetensors"], mentioning: "no data", status: 64)
        try assertFails(["eval", "--model", "model.safetensors", "--x", "x.csv"], mentioning: "--y", status: 64)
        try assertFails(["predict", "--model", "model.safetensors", "--x", "x.csv", "--y", "y3.csv", "--out", "out.csv"],
                        mentioning: "drop --y", status: 64)
    }

    /// A checkpoint that records no loss: `eval` needs `--loss`; `predict` writes the raw outputs
    /// and says so (with `--loss`, classes and probabilities); a `--loss` that disagrees with a
    /// recorded loss is refused by both, and by `train --init`, each naming the file and its loss.
    func testCheckpointWithoutLoss() throws {
        let data = ["--data", "good.csv", "--target", "label"]
        try assertFails(["eval", "--model", "lossless.safetensors"] + data, mentioning: "records no loss: pass --loss", status: 64)
        let evaluation = try CommandRunner.run(["eval", "--model", "lossless.safetensors", "--loss", "cross-entropy"] + data,
                                               in: folder)
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        let recorded = try CommandRunner.run(["eval", "--model", "model.safetensors"] + data, in: folder)
        XCTAssertEqual(evaluation.standardOutput, recorded.standardOutput)
        let disagreement = "--loss mse disagrees with model.safetensors, which records cross-entropy"
        try assertFails(["eval", "--model", "model.safetensors", "--loss", "mse"] + data, mentioning: disagreement, status: 64)
        try assertFails(["predict", "--model", "model.safetensors", "--loss", "mse", "--x", "x.csv", "--out", "out.csv"],
                        mentioning: disagreement, status: 64)
        try assertFails(["train", "--init", "model.safetensors", "--loss", "mse", "--epochs", "1", "--out", "out.safetensors"] + data,
                        mentioning: disagreement, status: 64)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out.safetensors").path))
        let resumed = try CommandRunner.run(["train", "--init", "lossless.safetensors", "--loss", "cross-entropy", "--epochs", "1",
                                             "--out", "resumed.safetensors"] + data, in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)

        let raw = try CommandRunner.run(["predict", "--model", "lossless.safetensors", "--x", "x.csv", "--out", "raw.csv"], in: folder)
        XCTAssertEqual(raw.status, 0, raw.standardError)
        XCTAssertTrue(raw.standardError.contains("records no loss: the raw outputs"), raw.standardError)
        let text = try String(contentsOf: folder.appendingPathComponent("raw.csv"), encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("y0,y1,y2\n"), text)
        let classes = try CommandRunner.run(["predict", "--model", "lossless.safetensors", "--loss", "cross-entropy", "--x", "x.csv",
                                             "--out", "classes.csv"], in: folder)
        XCTAssertEqual(classes.status, 0, classes.standardError)
        XCTAssertFalse(classes.standardError.contains("records no loss"), classes.standardError)
        let expected = try CommandRunner.run(["predict", "--model", "model.safetensors", "--x", "x.csv", "--out", "expected.csv"],
                                             in: folder)
        XCTAssertEqual(expected.status, 0, expected.standardError)
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("classes.csv")),
                       try Data(contentsOf: folder.appendingPathComponent("expected.csv")))
    }

    /// Where the results go is checked before any work: a missing folder, a folder as the file,
    /// two outputs on one file, an output over an input. Nothing is written.
    func testOutputsCheckedBeforeTraining() throws {
        let run = ["train", "--data", "good.csv", "--target", "label", "--hidden", "4", "--epochs", "1"]
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("folder.svg"), withIntermediateDirectories: false)
        try assertFails(run + ["--out", "missing/out.safetensors"], mentioning: "the folder missing does not exist", status: 1)
        try assertFails(run + ["--out", "out.safetensors", "--plot", "missing/chart.svg"], mentioning: "missing", status: 1)
        try assertFails(run + ["--out", "folder.svg"], mentioning: "is a folder", status: 1)
        try assertFails(run + ["--out", "out.safetensors", "--plot", "folder.svg"], mentioning: "is a folder", status: 1)
        try assertFails(run + ["--out", "chart.svg", "--plot", "./chart.svg"], mentioning: "the same file", status: 64)
        try assertFails(run + ["--out", "./good.csv"], mentioning: "would overwrite the --data file", status: 64)
        try assertFails(["train", "--x", "x.csv", "--y", "y3.csv", "--out", "y3.csv"], mentioning: "would overwrite the --y file",
                        status: 64)
        try assertFails(["train", "--init", "model.svg", "--data", "good.csv", "--target", "label", "--epochs", "1",
                         "--plot", "model.svg"], mentioning: "would overwrite the --init checkpoint", status: 64)
        try assertFails(["predict", "--model", "model.safetensors", "--x", "x.csv", "--out", "x.csv"],
                        mentioning: "would overwrite the --x file", status: 64)
        // resuming into the checkpoint it started from is allowed
        let resumed = try CommandRunner.run(["train", "--init", "model.safetensors", "--data", "good.csv", "--target", "label",
                                             "--steps", "1", "--out", "model.safetensors"], in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
    }

    /// Counts too large to run are refused up front, not trapped on overflow.
    func testOverflowingStepCounts() throws {
        try assertFails(train.filter { $0 != "--epochs" && $0 != "1" } + ["--epochs", "4611686018427387904"],
                        mentioning: "more than 9007199254740992 steps", status: 64)
        try assertFails(train.filter { $0 != "--epochs" && $0 != "1" } + ["--steps", "9223372036854775807"],
                        mentioning: "--steps must be at most", status: 64)
    }

    /// A negative number is the flag's value, refused by name, not a missing value.
    func testNegativeValuesAreNamed() throws {
        try assertFails(train.filter { $0 != "--epochs" && $0 != "1" } + ["--epochs", "-1"], mentioning: "--epochs must be at least 1, got -1",
                        status: 64)
        try assertFails(train + ["--lr", "-1"], mentioning: "--lr must be a non-negative number", status: 64)
        try assertFails(train + ["--batch-size", "-5"], mentioning: "--batch-size must be at least 1, got -5", status: 64)
        try assertFails(train.filter { $0 != "--hidden" && $0 != "4" } + ["--hidden", "-1"], mentioning: "'-1' is not one", status: 64)
    }

    /// A resumed run keeps its architecture: a --hidden that disagrees is refused, one that agrees is fine.
    func testHiddenWithInit() throws {
        let resume = ["train", "--init", "model.safetensors", "--data", "good.csv", "--target", "label", "--steps", "1"]
        try assertFails(resume + ["--hidden", "16,16", "--out", "out.safetensors"], mentioning: "checkpoint's hidden layers 4", status: 64)
        let agreeing = try CommandRunner.run(resume + ["--hidden", "4", "--out", "agreeing.safetensors"], in: folder)
        XCTAssertEqual(agreeing.status, 0, agreeing.standardError)
    }

    /// Outputs that overflow to infinity or NaN are an error in eval and predict, with no file written.
    func testNonFiniteInference() throws {
        try FileManager.default.removeItem(at: folder.appendingPathComponent("x.csv"))
        try "0.5,1.5\n1e10,1\n".write(to: folder.appendingPathComponent("x.csv"), atomically: true, encoding: .utf8)
        try "0\n1\n".write(to: folder.appendingPathComponent("y2.csv"), atomically: true, encoding: .utf8)
        try assertFails(["predict", "--model", "huge.safetensors", "--x", "x.csv", "--out", "out.csv"],
                        mentioning: "overflow to", status: 1)
        try assertFails(["eval", "--model", "huge.safetensors", "--x", "x.csv", "--y", "y2.csv"], mentioning: "the loss is", status: 1)
        // the same model on inputs near 1 is fine
        try "0.5,1.5\n1,1\n".write(to: folder.appendingPathComponent("x.csv"), atomically: true, encoding: .utf8)
        let fine = try CommandRunner.run(["predict", "--model", "huge.safetensors", "--x", "x.csv", "--out", "fine.csv"], in: folder)
        XCTAssertEqual(fine.status, 0, fine.standardError)
        let evaluation = try CommandRunner.run(["eval", "--model", "huge.safetensors", "--x", "x.csv", "--y", "y2.csv"], in: folder)
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
    }

    func testBadCheckpoints() throws {
        try assertFails(["eval", "--model", "truncated.safetensors", "--data", "good.csv", "--target", "label"], mentioning: "truncated.safetensors", status: 1)
        try assertFails(["eval", "--model", "inconsistent.safetensors", "--data", "good.csv", "--target", "label"], mentioning: "W2", status: 1)
        try assertFails(["eval", "--model", "missing.safetensors", "--data", "good.csv", "--target", "label"], mentioning: "missing.safetensors", status: 1)
        try assertFails(["eval", "--model", "good.csv", "--data", "good.csv", "--target", "label"], mentioning: "checkpoint", status: 1)
        try assertFails(train + ["--init", "truncated.safetensors"], mentioning: "truncated.safetensors", status: 1)
        // sizes that do not fit the data
        try assertFails(["eval", "--model", "wide.safetensors", "--data", "good.csv", "--target", "label"], mentioning: "inputs", status: 1)
        try assertFails(train + ["--init", "wide.safetensors"], mentioning: "inputs", status: 1)
        try assertFails(["predict", "--model", "wide.safetensors", "--x", "x.csv", "--out", "out.csv"], mentioning: "inputs", status: 1)
        // a label outside the model's classes
        try assertFails(["eval", "--model", "model.safetensors", "--data", "bigLabel.csv", "--target", "label"], mentioning: "12", status: 1)
        try assertFails(["train", "--init", "model.safetensors", "--data", "bigLabel.csv", "--target", "label",
                         "--out", "out.safetensors"], mentioning: "12", status: 1)
    }

    /// Without a GPU, `--device cuda` is one clear line (and nothing about the data before it).
    func testUnavailableCUDAIsOneLine() throws {
        try XCTSkipIf(FileManager.default.fileExists(atPath: "/dev/nvidia0"), "this machine has an NVIDIA GPU")
        try assertFails(train + ["--device", "cuda"], mentioning: "CUDA is unavailable", status: 1)
        let result = try CommandRunner.run(train + ["--device", "cuda"], in: folder)
        XCTAssertFalse(result.standardError.contains("loss: "), result.standardError)
    }

    func testPredictRefusesBadOutput() throws {
        try assertFails(["predict", "--model", "model.safetensors", "--x", "x.csv", "--out", "out.txt"], mentioning: ".npy or .csv", status: 64)
        try assertFails(["predict", "--model", "model.safetensors", "--x", "x.csv", "--out", "missing-folder/out.csv"], mentioning: "out.csv", status: 1)
    }
}
