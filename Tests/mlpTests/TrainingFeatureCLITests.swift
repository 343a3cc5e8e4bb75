import Foundation
import MLPKit
import XCTest

/// `mlp train`'s options beyond the seed, end to end: binary cross-entropy through eval and
/// predict, activations, AdamW and clipping, schedules resumed bit for bit, early stopping,
/// standardisation, and every bad value (one `error:` line, a non-zero exit, no file).
final class TrainingFeatureCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var random = SeededGenerator(seed: 21)
        // 240 rows of 4 features; two labels, each a half-space
        let rows = 240
        let x = (0..<(rows * 4)).map { _ in Float(random.nextNormal()) }
        var labels: [Float] = [], single: [Float] = [], noise: [Float] = []
        for r in 0..<rows {
            let v = Array(x[(r * 4)..<(r * 4 + 4)])
            labels += [v[0] + v[1] > 0 ? 1 : 0, v[2] - v[3] > 0.3 ? 1 : 0]
            single.append(v[0] - v[2] > 0 ? 1 : 0)
            noise.append(Float(random.next() % 3))
        }
        try write("x.npy", rows: rows, columns: 4, x)
        try write("labels.npy", rows: rows, columns: 2, labels)
        try write("single.npy", rows: rows, columns: 1, single)
        try write("noise.npy", rows: rows, columns: 1, noise)
        // features on very different scales, for --standardize
        let scaled = x.enumerated().map { index, value in value * Float([1, 1000, 0.001, 50][index % 4]) + Float([3, -2000, 0, 7][index % 4]) }
        try write("scaled.npy", rows: rows, columns: 4, scaled)
        try "a,b,label\n0.5,1.5,0\n-1,2,1\n3,0.25,2\n1,1,1\n".write(to: url("three.csv"), atomically: true, encoding: .utf8)
    }

    func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
    func path(_ name: String) -> String { url(name).path }

    func write(_ name: String, rows: Int, columns: Int, _ values: [Float]) throws {
        try Data(NumpyFile.encode(DataMatrix(rows: rows, columns: columns, values: values, isIntegral: false))).write(to: url(name))
    }

    func run(_ arguments: [String]) throws -> CommandResult { try CommandRunner.run(arguments, in: folder) }

    /// Runs and expects success, returning stdout parsed as JSON when `json`.
    @discardableResult
    func succeed(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
        let result = try run(arguments)
        XCTAssertEqual(result.status, 0, "\(arguments): \(result.standardError)", file: file, line: line)
        return result
    }

    func json(_ result: CommandResult) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], result.standardOutput)
    }

    func assertFails(_ arguments: [String], mentioning expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertCommandFails(arguments, in: folder, mentioning: expected, file: file, line: line)
    }

    /// Multi-label targets: train with BCE and tanh, eval's per-label accuracy, predict's σ(z).
    func testBinaryCrossEntropyTrainEvalPredict() throws {
        let train = try succeed(["train", "--x", "x.npy", "--y", "labels.npy", "--loss", "binary-cross-entropy", "--activation", "tanh",
                                 "--hidden", "16", "--epochs", "40", "--batch-size", "32", "--lr", "0.01", "--out", "bce.safetensors", "--json"])
        XCTAssertEqual(try json(train)["loss"] as? String, "binary-cross-entropy")
        let checkpoint = try Checkpoint.load(from: path("bce.safetensors"))
        XCTAssertEqual(checkpoint.loss, .binaryCrossEntropy)
        XCTAssertEqual(checkpoint.activation, .tanh)
        XCTAssertEqual(checkpoint.layerSizes, [4, 16, 2])

        let evaluation = try json(try succeed(["eval", "--model", "bce.safetensors", "--x", "x.npy", "--y", "labels.npy", "--json"]))
        let accuracy = try XCTUnwrap(evaluation["accuracy"] as? Double)
        XCTAssertGreaterThan(accuracy, 0.9)

        try succeed(["predict", "--model", "bce.safetensors", "--x", "x.npy", "--out", "p.csv"])
        let lines = try String(contentsOfFile: path("p.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "p0,p1")
        XCTAssertEqual(lines.count, 241)
        // σ of the library's logits, and the labels they get right are eval's accuracy
        let x = try NumpyFile.read(path: path("x.npy")), labels = try NumpyFile.read(path: path("labels.npy"))
        let session = try TrainingSession(model: try checkpoint.model(), backend: CPUBackend(), batchCapacity: 64)
        let logits = try session.predict(x.values)
        var correct = 0
        for (row, line) in lines.dropFirst().enumerated() {
            let cells = line.split(separator: ",").compactMap { Double($0) }
            XCTAssertEqual(cells.count, 2)
            for j in 0..<2 {
                XCTAssertTrue(cells[j] >= 0 && cells[j] <= 1)
                XCTAssertEqual(cells[j], 1 / (1 + exp(-Double(logits[row * 2 + j]))), accuracy: 1e-6)
                if (cells[j] > 0.5) == (labels.values[row * 2 + j] == 1) { correct += 1 }
            }
        }
        XCTAssertEqual(Double(correct) / 480, accuracy, accuracy: 1e-9)

        // one 0/1 column: one output, one probability
        try succeed(["train", "--x", "x.npy", "--y", "single.npy", "--loss", "binary-cross-entropy", "--hidden", "8",
                     "--epochs", "30", "--batch-size", "32", "--lr", "0.01", "--out", "single.safetensors"])
        XCTAssertEqual(try Checkpoint.load(from: path("single.safetensors")).layerSizes, [4, 8, 1])
        try succeed(["predict", "--model", "single.safetensors", "--x", "x.npy", "--out", "single.csv"])
        XCTAssertTrue(try String(contentsOfFile: path("single.csv"), encoding: .utf8).hasPrefix("p0\n"))
        let single = try json(try succeed(["eval", "--model", "single.safetensors", "--x", "x.npy", "--y", "single.npy", "--json"]))
        XCTAssertGreaterThan(try XCTUnwrap(single["accuracy"] as? Double), 0.85)
    }

    /// The activation and leaky ReLU's slope go into the checkpoint; a resumed run keeps them and
    /// refuses a different one.
    func testActivationIsRecordedAndKept() throws {
        for name in ["relu", "tanh", "sigmoid", "gelu"] {
            try succeed(["train", "--x", "x.npy", "--y", "single.npy", "--hidden", "6", "--steps", "3", "--activation", name,
                         "--out", "\(name).safetensors"])
            XCTAssertEqual(try Checkpoint.load(from: path("\(name).safetensors")).activation.kind.rawValue, name)
        }
        try succeed(["train", "--x", "x.npy", "--y", "single.npy", "--hidden", "6", "--steps", "3", "--activation", "leaky-relu",
                     "--leaky-slope", "0.2", "--out", "leaky.safetensors"])
        XCTAssertEqual(try Checkpoint.load(from: path("leaky.safetensors")).activation, .leakyReLU(slope: 0.2))
        try succeed(["train", "--x", "x.npy", "--y", "single.npy", "--hidden", "6", "--steps", "3", "--activation", "leaky-relu",
                     "--out", "leaky-default.safetensors"])
        XCTAssertEqual(try Checkpoint.load(from: path("leaky-default.safetensors")).activation, .leakyReLU(slope: 0.01))
        try succeed(["train", "--init", "leaky.safetensors", "--x", "x.npy", "--y", "single.npy", "--steps", "2", "--out", "leaky2.safetensors"])
        let resumed = try Checkpoint.load(from: path("leaky2.safetensors"))
        XCTAssertEqual(resumed.activation, .leakyReLU(slope: 0.2))
        XCTAssertEqual(resumed.optimizer?.step, 5)
        try assertFails(["train", "--init", "leaky.safetensors", "--x", "x.npy", "--y", "single.npy", "--activation", "tanh",
                         "--out", "out.safetensors"], mentioning: "disagrees with the checkpoint's activation leaky-relu")
        try assertFails(["train", "--init", "leaky.safetensors", "--x", "x.npy", "--y", "single.npy", "--leaky-slope", "0.3",
                         "--out", "out.safetensors"], mentioning: "slope")
    }

    /// --weight-decay and --clip-norm are recorded, and a resumed run keeps them unless given.
    func testWeightDecayAndClipNormAreRecorded() throws {
        try succeed(["train", "--x", "x.npy", "--y", "single.npy", "--hidden", "6", "--steps", "4", "--weight-decay", "0.05",
                     "--clip-norm", "0.5", "--out", "w.safetensors"])
        let h = try XCTUnwrap(try Checkpoint.load(from: path("w.safetensors")).hyperparameters)
        XCTAssertEqual(h.weightDecay, 0.05)
        XCTAssertEqual(h.clipNorm, 0.5)
        try succeed(["train", "--init", "w.safetensors", "--x", "x.npy", "--y", "single.npy", "--steps", "2", "--out", "w2.safetensors"])
        XCTAssertEqual(try Checkpoint.load(from: path("w2.safetensors")).hyperparameters, h)
        try succeed(["train", "--init", "w.safetensors", "--x", "x.npy", "--y", "single.npy", "--steps", "2", "--weight-decay", "0",
                     "--out", "w3.safetensors"])
        XCTAssertEqual(try Checkpoint.load(from: path("w3.safetensors")).hyperparameters?.weightDecay, 0)
        // the plain run differs: the options did something
        try succeed(["train", "--x", "x.npy", "--y", "single.npy", "--hidden", "6", "--steps", "4", "--out", "plain.safetensors"])
        XCTAssertNotEqual(try Checkpoint.load(from: path("plain.safetensors")).parameters,
                          try Checkpoint.load(from: path("w.safetensors")).parameters)
    }

    /// Cosine with warm-up over 20 steps in one run, against 8 steps (told the schedule spans 20)
    /// and 12 more from the checkpoint: the same file contents bit for bit. Repeating the
    /// schedule flags on the resumed run continues the schedule too.
    func testCosineScheduleResumesBitForBit() throws {
        let common = ["--x", "x.npy", "--y", "noise.npy", "--hidden", "12", "--batch-size", "50", "--lr", "0.01", "--weight-decay", "0.01",
                      "--clip-norm", "1"]
        try succeed(["train"] + common + ["--steps", "20", "--schedule", "cosine", "--warmup-steps", "5", "--out", "whole.safetensors"])
        try succeed(["train"] + common + ["--steps", "8", "--schedule", "cosine", "--warmup-steps", "5", "--schedule-steps", "20",
                                          "--out", "part.safetensors"])
        let part = try Checkpoint.load(from: path("part.safetensors"))
        XCTAssertEqual(part.schedule, .cosine(warmupSteps: 5, totalSteps: 20, start: 0))
        try succeed(["train", "--init", "part.safetensors", "--x", "x.npy", "--y", "noise.npy", "--steps", "12", "--out", "resumed.safetensors"])
        try succeed(["train", "--init", "part.safetensors", "--x", "x.npy", "--y", "noise.npy", "--steps", "12", "--schedule", "cosine",
                     "--warmup-steps", "5", "--out", "repeated.safetensors"])
        let whole = try Data(contentsOf: url("whole.safetensors"))
        XCTAssertEqual(try Data(contentsOf: url("resumed.safetensors")), whole)
        XCTAssertEqual(try Data(contentsOf: url("repeated.safetensors")), whole)
        let checkpoint = try Checkpoint.load(from: path("whole.safetensors"))
        XCTAssertEqual(checkpoint.schedule, .cosine(warmupSteps: 5, totalSteps: 20, start: 0))
        XCTAssertEqual(checkpoint.optimizer?.step, 20)

        // without the schedule the run differs
        try succeed(["train"] + common + ["--steps", "20", "--out", "constant.safetensors"])
        XCTAssertNotEqual(try Data(contentsOf: url("constant.safetensors")), whole)
        // a different schedule on a resumed run starts afresh at the checkpoint's step
        let restarted = try succeed(["train", "--init", "part.safetensors", "--x", "x.npy", "--y", "noise.npy", "--steps", "4",
                                     "--schedule", "step", "--step-size", "2", "--gamma", "0.5", "--out", "step.safetensors"])
        XCTAssertTrue(restarted.standardError.contains("schedule step"), restarted.standardError)
        XCTAssertEqual(try Checkpoint.load(from: path("step.safetensors")).schedule, .step(stepSize: 2, gamma: 0.5, start: 8))
    }

    /// --patience: the run stops `patience` epochs after its best validation loss and --out holds
    /// the best epoch's model, whose validation loss is the one reported. The labels are noise,
    /// so the model overfits.
    func testEarlyStoppingKeepsTheBestEpoch() throws {
        let result = try succeed(["train", "--x", "x.npy", "--y", "noise.npy", "--hidden", "64", "--epochs", "300", "--batch-size", "40",
                                  "--lr", "0.01", "--validation-split", "0.5", "--patience", "3", "--out", "early.safetensors", "--json"])
        let summary = try json(result)
        let best = try XCTUnwrap(summary["best_epoch"] as? Int)
        let stopped = try XCTUnwrap(summary["stopped_early_after_epoch"] as? Int, "the run did not stop early: \(summary)")
        XCTAssertEqual(stopped, best + 3)
        XCTAssertEqual(summary["epochs"] as? Int, stopped)
        XCTAssertLessThan(stopped, 300)
        let checkpoint = try Checkpoint.load(from: path("early.safetensors"))
        XCTAssertEqual(checkpoint.optimizer?.step, best * 3)   // 120 training rows in batches of 40
        XCTAssertEqual(summary["total_steps"] as? Int, best * 3)
        // the saved model's loss on the held-out rows is the best validation loss
        let x = try NumpyFile.read(path: path("x.npy")), y = try NumpyFile.read(path: path("noise.npy"))
        let (dataset, _) = try DataLoader.dataset(inputs: x, targets: y, loss: .crossEntropy, outputs: 3)
        let validation = try dataset.split(validationFraction: 0.5, seed: 0).validation
        let session = try TrainingSession(model: try checkpoint.model(), backend: CPUBackend(), batchCapacity: 120)
        XCTAssertEqual(try session.evaluate(try session.upload(validation)).loss, try XCTUnwrap(summary["best_validation_loss"] as? Double),
                       accuracy: 1e-12)
        let text = try succeed(["train", "--x", "x.npy", "--y", "noise.npy", "--hidden", "64", "--epochs", "300", "--batch-size", "40",
                                "--lr", "0.01", "--validation-split", "0.5", "--patience", "3", "--out", "early2.safetensors"])
        XCTAssertTrue(text.standardOutput.contains("stopped early after epoch \(stopped)"), text.standardOutput)
        XCTAssertTrue(text.standardOutput.contains("kept epoch \(best)"), text.standardOutput)
        XCTAssertEqual(try Data(contentsOf: url("early2.safetensors")), try Data(contentsOf: url("early.safetensors")))
    }

    /// --standardize fits the training rows, is stored, and eval and predict apply it.
    func testStandardizeThroughTrainEvalPredict() throws {
        try succeed(["train", "--x", "scaled.npy", "--y", "single.npy", "--loss", "binary-cross-entropy", "--hidden", "16",
                     "--epochs", "30", "--batch-size", "32", "--lr", "0.01", "--standardize", "--out", "s.safetensors"])
        let checkpoint = try Checkpoint.load(from: path("s.safetensors"))
        let x = try NumpyFile.read(path: path("scaled.npy"))
        let expected = try Standardization(fitting: x.values, features: 4)
        XCTAssertEqual(checkpoint.standardization, expected)
        let header = String(decoding: try Data(contentsOf: url("s.safetensors")).prefix(4000), as: UTF8.self)
        XCTAssertTrue(header.contains("\"standardize.mean\":{\"dtype\":\"F32\",\"shape\":[4]"))

        let evaluation = try json(try succeed(["eval", "--model", "s.safetensors", "--x", "scaled.npy", "--y", "single.npy", "--json"]))
        XCTAssertGreaterThan(try XCTUnwrap(evaluation["accuracy"] as? Double), 0.85)
        try succeed(["predict", "--model", "s.safetensors", "--x", "scaled.npy", "--out", "s.npy"])
        let predictions = try NumpyFile.read(path: path("s.npy"))
        // the network applied to the standardised inputs
        var plain = try checkpoint.model()
        plain.standardization = nil
        let logits = try TrainingSession(model: plain, backend: CPUBackend(), batchCapacity: 240).predict(try expected.apply(x.values))
        XCTAssertEqual(predictions.values.count, 240)
        XCTAssertEqual(logits.count, 240)
        for (p, z) in zip(predictions.values, logits) { XCTAssertEqual(Double(p), 1 / (1 + exp(-Double(z))), accuracy: 1e-6) }

        // a resumed run keeps it; one cannot start it on a model trained without it
        try succeed(["train", "--init", "s.safetensors", "--x", "scaled.npy", "--y", "single.npy", "--steps", "2", "--out", "s2.safetensors"])
        XCTAssertEqual(try Checkpoint.load(from: path("s2.safetensors")).standardization, expected)
        try succeed(["train", "--x", "scaled.npy", "--y", "single.npy", "--hidden", "4", "--steps", "2", "--out", "raw.safetensors"])
        try assertFails(["train", "--init", "raw.safetensors", "--x", "scaled.npy", "--y", "single.npy", "--standardize",
                         "--out", "out.safetensors"], mentioning: "--standardize")
    }

    func testBadValues() throws {
        let train = ["train", "--x", "x.npy", "--y", "single.npy", "--hidden", "4", "--epochs", "1", "--out", "out.safetensors"]
        try assertFails(train + ["--activation", "swish"], mentioning: "swish")
        try assertFails(train + ["--leaky-slope=-1"], mentioning: "--leaky-slope")
        try assertFails(train + ["--leaky-slope", "nan"], mentioning: "--leaky-slope")
        try assertFails(train + ["--activation", "tanh", "--leaky-slope", "0.1"], mentioning: "leaky-relu")
        try assertFails(train + ["--weight-decay=-0.1"], mentioning: "--weight-decay")
        try assertFails(train + ["--weight-decay", "inf"], mentioning: "--weight-decay")
        try assertFails(train + ["--clip-norm", "0"], mentioning: "--clip-norm")
        try assertFails(train + ["--schedule", "linear"], mentioning: "linear")
        try assertFails(train + ["--schedule", "step"], mentioning: "--step-size")
        try assertFails(train + ["--schedule", "step", "--step-size", "0"], mentioning: "--step-size")
        try assertFails(train + ["--schedule", "step", "--step-size", "2", "--gamma", "0"], mentioning: "--gamma")
        try assertFails(train + ["--step-size", "2"], mentioning: "--schedule step")
        try assertFails(train + ["--warmup-steps", "3"], mentioning: "--schedule cosine")
        try assertFails(train + ["--schedule", "cosine", "--warmup-steps=-1"], mentioning: "--warmup-steps")
        try assertFails(train + ["--schedule", "cosine", "--warmup-steps", "500"], mentioning: "less than")
        try assertFails(train + ["--schedule", "cosine", "--warmup-steps", "5", "--schedule-steps", "5"], mentioning: "less than")
        try assertFails(train + ["--patience", "2"], mentioning: "--validation-split")
        try assertFails(train + ["--patience", "0", "--validation-split", "0.2"], mentioning: "--patience")
        try assertFails(["train", "--x", "x.npy", "--y", "noise.npy", "--loss", "binary-cross-entropy", "--out", "out.safetensors"],
                        mentioning: "binary cross-entropy")
        try assertFails(["train", "--data", "three.csv", "--target", "label", "--loss", "binary-cross-entropy", "--out", "out.safetensors"],
                        mentioning: "column 1 is 2")
    }

    /// The OpenCL backend runs every feature (through the same portable kernels as CUDA): each
    /// run's parameters match the CPU backend's to 1e-4, and eval of a GELU model on OpenCL gives
    /// the CPU's loss.
    func testOpenCLRunsTheNewFeatures() throws {
        let train = ["train", "--x", "x.npy", "--hidden", "8,6", "--steps", "30", "--batch-size", "32", "--lr", "0.01"]
        let probe = try run(train + ["--y", "single.npy", "--device", "opencl", "--out", "probe.safetensors"])
        if probe.status != 0 {
            // only a missing OpenCL platform skips (and not in CI, where PoCL is installed): any
            // other failure of the OpenCL run is this test's failure
            guard probe.standardError.contains("OpenCL is unavailable"),
                  ProcessInfo.processInfo.environment["CI"] == nil else {
                return XCTFail("mlp train --device opencl failed: \(probe.standardError)")
            }
            throw XCTSkip("OpenCL is unavailable here: \(probe.standardError)")
        }
        let runs: [(String, [String])] = [
            ("tanh", ["--y", "single.npy", "--activation", "tanh"]),
            ("leaky-relu", ["--y", "single.npy", "--activation", "leaky-relu", "--leaky-slope", "0.2"]),
            ("sigmoid", ["--y", "single.npy", "--activation", "sigmoid"]),
            ("gelu", ["--y", "single.npy", "--activation", "gelu"]),
            ("bce", ["--y", "labels.npy", "--loss", "binary-cross-entropy"]),
            ("adamw-clip", ["--y", "noise.npy", "--weight-decay", "0.1", "--clip-norm", "0.5"]),
        ]
        for (name, options) in runs {
            try succeed(train + options + ["--device", "opencl", "--out", "\(name)-opencl.safetensors"])
            try succeed(train + options + ["--device", "cpu", "--out", "\(name)-cpu.safetensors"])
            let gpu = try Checkpoint.load(from: path("\(name)-opencl.safetensors")).parameters
            let cpu = try Checkpoint.load(from: path("\(name)-cpu.safetensors")).parameters
            XCTAssertLessThanOrEqual(BackendCheck<CPUBackend>.relativeError(gpu, cpu), 1e-4, name)
        }
        let evaluate = ["eval", "--model", "gelu-cpu.safetensors", "--x", "x.npy", "--y", "single.npy", "--json"]
        let onOpenCL = try json(try succeed(evaluate + ["--device", "opencl"]))
        let onCPU = try json(try succeed(evaluate + ["--device", "cpu"]))
        let loss = try XCTUnwrap(onCPU["loss"] as? Double)
        XCTAssertEqual(try XCTUnwrap(onOpenCL["loss"] as? Double), loss, accuracy: 1e-5 * abs(loss))
    }
}
