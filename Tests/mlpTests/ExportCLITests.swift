import BackendTestSupport
import Foundation
import MLPKit
import XCTest

/// `mlp export` against ONNX Runtime: every exported model passes onnx's full checker, and ONNX
/// Runtime, given inputs this test encodes itself (NaN for a missing value, one-hot categories in
/// sorted order), gives what `mlp predict` writes for the same rows, for every loss, activation
/// and preprocessing a checkpoint records.
final class ExportCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    /// Checks the model with onnx's checker, runs it on `ort_x.npy` with ONNX Runtime, saves each
    /// output as `ort_NAME.npy`, and prints the inputs, outputs and metadata as JSON.
    static let script = """
        import json, sys
        import numpy as np, onnx, onnxruntime as ort
        path, inputs = sys.argv[1], sys.argv[2]
        onnx.checker.check_model(onnx.load(path), full_check=True)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        results = session.run(None, {"input": np.load(inputs)})
        for output, values in zip(session.get_outputs(), results):
            np.save("ort_" + output.name + ".npy", values)
        print(json.dumps({"inputs": [[i.name, i.shape] for i in session.get_inputs()],
                          "outputs": [o.name for o in session.get_outputs()],
                          "metadata": session.get_modelmeta().custom_metadata_map}))
        """

    /// `model` run by ONNX Runtime on `inputs` (rows of `columns`): each output by name, and the
    /// JSON the script prints.
    func runtime(_ model: String, inputs: [Float], columns: Int) throws -> (outputs: [String: DataMatrix], description: [String: Any]) {
        let x = DataMatrix(rows: inputs.count / columns, columns: columns, values: inputs, isIntegral: false)
        try Data(NumpyFile.encode(x)).write(to: folder.appendingPathComponent("ort_x.npy"))
        let result = try CommandRunner.run(["python3", "-c", Self.script, model, "ort_x.npy"], in: folder,
                                           program: URL(fileURLWithPath: "/usr/bin/env"))
        if result.status != 0 {
            let last = result.standardError.split(separator: "\n").last.map(String.init) ?? "exit \(result.status)"
            if result.status == 127 || last.contains("No module named") {
                try missingTool("needs Python 3 with onnx and onnxruntime (python3 -m pip install onnx onnxruntime): \(last)")
            }
            XCTFail(result.standardError)
            throw MissingTool(description: "ONNX Runtime failed: \(last)")
        }
        let description = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        var outputs: [String: DataMatrix] = [:]
        for name in try XCTUnwrap(description["outputs"] as? [String]) {
            outputs[name] = try NumpyFile.read(path: folder.appendingPathComponent("ort_\(name).npy").path)
        }
        return (outputs, description)
    }

    /// `mlp predict`'s `.npy` output for `arguments`.
    func predicted(_ arguments: [String]) throws -> DataMatrix {
        let result = try run(["predict"] + arguments + ["--out", "predicted.npy"])
        XCTAssertEqual(result.status, 0, result.standardError)
        return try NumpyFile.read(path: folder.appendingPathComponent("predicted.npy").path)
    }

    func export(_ model: String, to out: String, outputs: String) throws {
        let result = try run(["export", "--model", model, "--out", out])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertTrue(result.standardOutput.contains("wrote \(out): ONNX opset 17, input 'input' [batch, "), result.standardOutput)
        XCTAssertTrue(result.standardOutput.hasSuffix("outputs \(outputs)\n"), result.standardOutput)
    }

    /// Each value of `actual` within `tolerance` of `expected`'s, relative to values above 1.
    func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 2e-6, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        let worst = zip(actual, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .nan
        XCTAssertLessThanOrEqual(worst, tolerance, what, file: file, line: line)
        XCTAssertTrue(expected.contains { $0 != 0 }, what, file: file, line: line)
    }

    /// Writes `x.csv` (`rows` rows of `columns` random normal numbers) and `y.csv` (`target` of
    /// each row, a CSV line); returns the inputs.
    func writeArrays(seed: UInt64, rows: Int, columns: Int, target: ([Float]) -> String) throws -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var x = "", y = ""
        var inputs: [Float] = []
        for _ in 0..<rows {
            let row = (0..<columns).map { _ in Float(generator.nextNormal()) }
            inputs += row
            x += row.map { "\($0)" }.joined(separator: ",") + "\n"
            y += target(row) + "\n"
        }
        try x.write(to: folder.appendingPathComponent("x.csv"), atomically: true, encoding: .utf8)
        try y.write(to: folder.appendingPathComponent("y.csv"), atomically: true, encoding: .utf8)
        return inputs
    }

    /// Column `column` of a matrix's rows.
    func columns(_ matrix: DataMatrix, _ range: Range<Int>) -> [Float] {
        (0..<matrix.rows).flatMap { row in range.map { matrix.values[row * matrix.columns + $0] } }
    }

    func testClassifierWithCategoriesFillsAndStandardisation() throws {
        var generator = SeededGenerator(seed: 41)
        let cities = ["Oslo", "Bergen", "Tromsø"]
        var csv = "a,b,city,kind\n"
        var inputs: [Float] = []
        for row in 0..<150 {
            let a = Float(generator.nextNormal()), b = Float(generator.nextNormal()) * 3
            let city = cities[Int(generator.next() % 3)]
            let missing = row % 9 == 4
            let kind = a + b / 3 > 0.3 ? "x" : (city == "Oslo" ? "y" : "z")
            csv += "\(missing ? "" : "\(a)"),\(b),\(city),\(kind)\n"
            // one-hot in sorted order: Bergen, Oslo, Tromsø
            inputs += [missing ? .nan : a, b] + ["Bergen", "Oslo", "Tromsø"].map { $0 == city ? 1 : 0 }
        }
        try csv.write(to: folder.appendingPathComponent("d.csv"), atomically: true, encoding: .utf8)
        let train = try run(["train", "--data", "d.csv", "--target", "kind", "--fill-missing", "--standardize", "--hidden", "8,6",
                             "--activation", "gelu", "--epochs", "8", "--batch-size", "16", "--lr", "0.01", "--out", "m.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        try export("m.safetensors", to: "m.onnx", outputs: "'class', 'probabilities', 'logits'")

        let (outputs, description) = try runtime("m.onnx", inputs: inputs, columns: 5)
        let metadata = try XCTUnwrap(description["metadata"] as? [String: String])
        XCTAssertEqual(metadata["inputs"], #"["a","b","city=Bergen","city=Oslo","city=Tromsø"]"#)
        XCTAssertEqual(metadata["classes"], #"["x","y","z"]"#)
        XCTAssertEqual(metadata["target"], "kind")
        XCTAssertEqual(metadata["loss"], "cross-entropy")
        XCTAssertEqual(metadata["activation"], "gelu")
        XCTAssertEqual(metadata["layers"], "5,8,6,3")
        let declared = try XCTUnwrap(description["inputs"] as? [[Any]])
        XCTAssertEqual(declared.first?.first as? String, "input")
        XCTAssertEqual((declared.first?.last as? [Any])?.count, 2)

        // predict's .npy: the class index, then one probability per class
        let expected = try predicted(["--model", "m.safetensors", "--data", "d.csv"])
        XCTAssertEqual(expected.columns, 4)
        let probabilities = try XCTUnwrap(outputs["probabilities"])
        assertClose(probabilities.values, columns(expected, 1..<4), "probabilities")
        let classes = try XCTUnwrap(outputs["class"]).values, expectedClasses = columns(expected, 0..<1)
        XCTAssertEqual(classes.count, 150)
        for row in 0..<150 where classes[row] != expectedClasses[row] {
            // only a near tie may part them
            let (a, b) = (probabilities.values[row * 3 + Int(classes[row])], probabilities.values[row * 3 + Int(expectedClasses[row])])
            XCTAssertLessThan(abs(a - b), 1e-5, "row \(row)")
        }
        XCTAssertGreaterThan(Set(classes).count, 1)
        // the logits are the probabilities' logarithms up to a constant per row
        let logits = try XCTUnwrap(outputs["logits"]).values
        var shifted: [Float] = [], logProbabilities: [Float] = []
        for row in 0..<150 {
            shifted += (0..<3).map { logits[row * 3 + $0] - logits[row * 3] }
            logProbabilities += (0..<3).map { log(probabilities.values[row * 3 + $0]) - log(probabilities.values[row * 3]) }
        }
        assertClose(shifted, logProbabilities, tolerance: 1e-4, "logits")
    }

    func testRegressionWithStandardisedTargetsAndThreeHiddenLayers() throws {
        let inputs = try writeArrays(seed: 43, rows: 120, columns: 3) { "\(50_000 * $0[0] + 2_000 * $0[1] + 300_000),\($0[2] * $0[0] - 7)" }
        let train = try run(["train", "--x", "x.csv", "--y", "y.csv", "--standardize-target", "--standardize", "--hidden", "16,8,8",
                             "--activation", "tanh", "--epochs", "10", "--batch-size", "16", "--lr", "0.01", "--out", "r.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        try export("r.safetensors", to: "r.onnx", outputs: "'prediction'")
        let (outputs, description) = try runtime("r.onnx", inputs: inputs, columns: 3)
        let metadata = try XCTUnwrap(description["metadata"] as? [String: String])
        XCTAssertNil(metadata["inputs"])  // trained from arrays: no names
        XCTAssertEqual(metadata["loss"], "mse")
        XCTAssertEqual(metadata["layers"], "3,16,8,8,2")
        let expected = try predicted(["--model", "r.safetensors", "--x", "x.csv"])
        XCTAssertEqual(expected.columns, 2)
        let prediction = try XCTUnwrap(outputs["prediction"]).values
        assertClose(prediction, expected.values, "prediction")
        XCTAssertGreaterThan(prediction.map(abs).max() ?? 0, 1_000)  // in the targets' units
    }

    func testBinaryCrossEntropyLeakyReLUAndSigmoid() throws {
        let inputs = try writeArrays(seed: 47, rows: 100, columns: 4) { "\($0[0] > 0 ? 1 : 0),\($0[1] + $0[2] > 0 ? 1 : 0)" }
        for (activation, name) in [(["--activation", "leaky-relu", "--leaky-slope", "0.05"], "leaky-relu (slope 0.05)"),
                                   (["--activation", "sigmoid"], "sigmoid")] {
            let train = try run(["train", "--x", "x.csv", "--y", "y.csv", "--loss", "binary-cross-entropy", "--hidden", "12,6",
                                 "--epochs", "6", "--batch-size", "10", "--lr", "0.01", "--out", "b.safetensors"] + activation)
            XCTAssertEqual(train.status, 0, train.standardError)
            try export("b.safetensors", to: "b.onnx", outputs: "'probabilities', 'logits'")
            let (outputs, description) = try runtime("b.onnx", inputs: inputs, columns: 4)
            XCTAssertEqual((description["metadata"] as? [String: String])?["activation"], name)
            let expected = try predicted(["--model", "b.safetensors", "--x", "x.csv"])
            XCTAssertEqual(expected.columns, 2)
            assertClose(try XCTUnwrap(outputs["probabilities"]).values, expected.values, name)
            let logits = try XCTUnwrap(outputs["logits"]).values
            assertClose(logits.map { 1 / (1 + exp(-$0)) }, expected.values, tolerance: 1e-5, name + " logits")
        }
    }

    func testRawOutputsOfACheckpointWithoutALoss() throws {
        var generator = SeededGenerator(seed: 53)
        let model = try MLP(layerSizes: [3, 7, 2], loss: .meanSquaredError, seed: 53)
        var checkpoint = Checkpoint(model: model)
        checkpoint.loss = nil
        try checkpoint.save(to: folder.appendingPathComponent("raw.safetensors").path)
        try export("raw.safetensors", to: "raw.onnx", outputs: "'output'")
        let inputs = (0..<30).map { _ in Float(generator.nextNormal()) }
        var csv = ""
        for row in 0..<10 { csv += inputs[(row * 3)..<(row * 3 + 3)].map { "\($0)" }.joined(separator: ",") + "\n" }
        try csv.write(to: folder.appendingPathComponent("x.csv"), atomically: true, encoding: .utf8)
        let (outputs, description) = try runtime("raw.onnx", inputs: inputs, columns: 3)
        XCTAssertNil((description["metadata"] as? [String: String])?["loss"])
        assertClose(try XCTUnwrap(outputs["output"]).values, try predicted(["--model", "raw.safetensors", "--x", "x.csv"]).values, "output")
    }

    func testBadInput() throws {
        let model = try MLP(layerSizes: [2, 3, 1], loss: .meanSquaredError, seed: 59)
        try Checkpoint(model: model).save(to: folder.appendingPathComponent("m.safetensors").path)
        var bytes = try Array(Data(contentsOf: folder.appendingPathComponent("m.safetensors")))
        bytes.removeLast(9)
        try Data(bytes).write(to: folder.appendingPathComponent("cut.safetensors"))
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: false)
        try assertCommandFails(["export", "--model", "none.safetensors", "--out", "a.onnx"], in: folder, mentioning: "none.safetensors", status: 1)
        try assertCommandFails(["export", "--model", "cut.safetensors", "--out", "a.onnx"], in: folder, mentioning: "cut.safetensors", status: 1)
        try assertCommandFails(["export", "--model", "m.safetensors", "--out", "sub"], in: folder, mentioning: "is a folder", status: 1)
        try assertCommandFails(["export", "--model", "m.safetensors", "--out", "m.safetensors"], in: folder,
                               mentioning: "would overwrite the --model file", status: 64)
        try assertCommandFails(["export", "--model", "m.safetensors", "--out", "missing/a.onnx"], in: folder,
                               mentioning: "does not exist", status: 1)
        try assertCommandFails(["export", "--model", "m.safetensors"], in: folder, mentioning: "--out", status: 64)
    }
}
