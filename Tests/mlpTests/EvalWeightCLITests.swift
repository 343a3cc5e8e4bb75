import Foundation
import MLPKit
import XCTest

/// `eval --weight-column` (and `--weights FILE` beside `--x/--y`): whole-number weights give
/// every figure of the file with each row written that many times (loss, accuracy, RMSE, MAE, R²,
/// precision, recall, F1, the confusion matrix; scikit-learn's `sample_weight`), for each loss;
/// weights of 1 give the unweighted figures; a file beside `--x/--y` gives the column's figures;
/// bad weights are refused with one line.
final class EvalWeightCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 53)
        var lines: [String] = [], repeated: [String] = [], ones: [String] = [], x: [String] = [], weights: [String] = []
        for _ in 0..<150 {
            let (a, b, c) = (Float(generator.nextNormal()), Float(generator.nextNormal()), Float(generator.nextNormal()))
            let label = a + 0.4 * Float(generator.nextNormal()) < -0.3 ? 0 : (b > 0.6 ? 2 : 1)
            let (spam, urgent) = (a + b > 0 ? 1 : 0, c > 0.8 ? 1 : 0)
            let y = sin(2 * a) - b + 0.2 * Float(generator.nextNormal())
            let weight = Int(generator.next() % 4)  // 0 to 3
            let cells = "\(a),\(b),\(c),\(label),\(spam),\(urgent),\(y)"
            lines.append(cells + ",\(weight)")
            repeated += Array(repeating: cells + ",1", count: weight)
            ones.append(cells + ",1")
            x.append("\(a),\(b),\(c)")
            weights.append("\(weight)")
        }
        let header = "a,b,c,label,spam,urgent,y,w"
        try write("data.csv", [header] + lines)
        try write("body.csv", lines)
        try write("repeated.csv", [header] + repeated)
        try write("ones.csv", [header] + ones)
        try write("x.csv", x)
        try write("labels.csv", lines.map { String($0.split(separator: ",")[3]) })
        try write("weights.csv", weights)
        try write("zeros.csv", weights.map { _ in "0" })
        // three models, one per loss, trained unweighted on the same rows
        for (name, flags) in [("c", ["--target", "label", "--drop", "spam,urgent,y,w"]),
                              ("r", ["--target", "y", "--drop", "label,spam,urgent,w", "--standardize-target"]),
                              ("t", ["--target", "spam,urgent", "--loss", "binary-cross-entropy", "--drop", "label,y,w"])] {
            let result = try run(["train", "--data", "data.csv", "--hidden", "8", "--epochs", "4", "--batch-size", "16", "--out", "\(name).safetensors"] + flags)
            XCTAssertEqual(result.status, 0, result.standardError)
        }
    }

    func write(_ name: String, _ lines: [String]) throws {
        try lines.joined(separator: "\n").appending("\n").write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func evaluation(_ arguments: [String]) throws -> [String: Any] {
        let result = try run(["eval", "--json"] + arguments)
        XCTAssertEqual(result.status, 0, result.standardError)
        return try jsonObject(result)
    }

    /// Every figure of `weighted` equals `plain`'s: numbers to `tolerance` (relative; the loss
    /// to 1e-6, the unweighted one being summed in Float32 on the backend), arrays and objects
    /// entry by entry; `rows` and `weight_sum` are left out.
    func assertSameFigures(_ weighted: [String: Any], _ plain: [String: Any], tolerance: Double = 1e-9,
                           file: StaticString = #filePath, line: UInt = #line) {
        func same(_ a: Any, _ b: Any, _ path: String) {
            switch (a, b) {
            case let (a as Double, b as Double):
                let limit = (path == "loss" ? 1e-6 : tolerance) * max(1, abs(b))
                XCTAssertEqual(a, b, accuracy: limit, path, file: file, line: line)
            case let (a as [Any], b as [Any]):
                XCTAssertEqual(a.count, b.count, path, file: file, line: line)
                for (index, (x, y)) in zip(a, b).enumerated() { same(x, y, "\(path)[\(index)]") }
            case let (a as [String: Any], b as [String: Any]):
                XCTAssertEqual(Set(a.keys), Set(b.keys), path, file: file, line: line)
                for (key, x) in a { if let y = b[key] { same(x, y, path.isEmpty ? key : "\(path).\(key)") } }
            case (is NSNull, is NSNull):
                break
            case let (a as String, b as String):
                XCTAssertEqual(a, b, path, file: file, line: line)
            default:
                XCTFail("\(path): \(a) against \(b)", file: file, line: line)
            }
        }
        var (a, b) = (weighted, plain)
        for key in ["rows", "weight_sum"] { (a[key], b[key]) = (nil, nil) }
        same(a, b, "")
    }

    func testWholeWeightsAreRepeatedRows() throws {
        for model in ["c", "r", "t"] {
            let weighted = try evaluation(["--model", "\(model).safetensors", "--data", "data.csv", "--weight-column", "w"])
            let repeated = try evaluation(["--model", "\(model).safetensors", "--data", "repeated.csv"])
            assertSameFigures(weighted, repeated)
            XCTAssertEqual(weighted["rows"] as? Int, 150)
            XCTAssertEqual(weighted["weight_sum"] as? Int, repeated["rows"] as? Int)
            // weights of 1 are the unweighted figures
            assertSameFigures(try evaluation(["--model", "\(model).safetensors", "--data", "ones.csv", "--weight-column", "w"]),
                              try evaluation(["--model", "\(model).safetensors", "--data", "ones.csv"]))
        }
        // the weighted figures differ from the unweighted ones on these rows
        let weighted = try evaluation(["--model", "c.safetensors", "--data", "data.csv", "--weight-column", "w"])
        let plain = try evaluation(["--model", "c.safetensors", "--data", "data.csv"])
        XCTAssertNotEqual(try XCTUnwrap(weighted["loss"] as? Double), try XCTUnwrap(plain["loss"] as? Double), accuracy: 1e-4)
        // the text report: weighted counts, and the sum of the weights
        let text = try run(["eval", "--model", "c.safetensors", "--data", "data.csv", "--weight-column", "w", "--confusion"])
        XCTAssertEqual(text.status, 0, text.standardError)
        XCTAssertTrue(text.standardOutput.contains("rows: 150, weighted: Σ w = \(try XCTUnwrap(weighted["weight_sum"] as? Int))"),
                      text.standardOutput)
    }

    func testWeightsFileBesideArraysAndImportance() throws {
        // a model of arrays: --weights gives the figures of the column
        XCTAssertEqual(try run(["train", "--x", "x.csv", "--y", "labels.csv", "--hidden", "8", "--epochs", "3", "--out", "a.safetensors"]).status, 0)
        let file = try evaluation(["--model", "a.safetensors", "--x", "x.csv", "--y", "labels.csv", "--weights", "weights.csv"])
        let column = try evaluation(["--model", "a.safetensors", "--data", "body.csv", "--no-header", "--target", "4",
                                     "--drop", "5,6,7", "--weight-column", "8"])
        assertSameFigures(file, column)
        // permutation importance with weights: with weights of 1, the unweighted figures
        let importance = { (flags: [String]) in
            try self.evaluation(["--model", "c.safetensors", "--data", "ones.csv", "--importance", "--repeats", "2"] + flags)["importance"]
        }
        let weightedImportance = try XCTUnwrap(importance(["--weight-column", "w"]) as? [[String: Any]])
        let plainImportance = try XCTUnwrap(importance([]) as? [[String: Any]])
        XCTAssertEqual(weightedImportance.count, 3)
        for (a, b) in zip(weightedImportance, plainImportance) {
            XCTAssertEqual(a["column"] as? String, b["column"] as? String)
            XCTAssertEqual(try XCTUnwrap(a["loss_increase"] as? Double), try XCTUnwrap(b["loss_increase"] as? Double), accuracy: 1e-5)
            XCTAssertEqual(try XCTUnwrap(a["accuracy_decrease"] as? Double), try XCTUnwrap(b["accuracy_decrease"] as? Double), accuracy: 1e-12)
        }
    }

    func testRefused() throws {
        XCTAssertEqual(try run(["train", "--x", "x.csv", "--y", "labels.csv", "--hidden", "4", "--steps", "2", "--out", "a.safetensors"]).status, 0)
        let base = ["eval", "--model", "c.safetensors"]
        try assertCommandFails(base + ["--data", "data.csv", "--weight-column", "label"], in: folder,
                               mentioning: "--weight-column 'label' is the target; weights are a column of their own", status: 64)
        try assertCommandFails(base + ["--data", "data.csv", "--weight-column", "weight"], in: folder,
                               mentioning: "data.csv has no column named 'weight'")
        try assertCommandFails(base + ["--data", "data.csv", "--weight-column", "y"], in: folder,
                               mentioning: "is not a weight; --weight-column takes numbers ≥ 0, one in every row")
        try assertCommandFails(["eval", "--model", "a.safetensors", "--x", "x.csv", "--y", "labels.csv", "--weight-column", "w"], in: folder,
                               mentioning: "--weight-column names a column of --data; beside --x/--y give --weights FILE", status: 64)
        try assertCommandFails(base + ["--data", "data.csv", "--weight-column", "w", "--weights", "weights.csv"], in: folder,
                               mentioning: "give --weight-column (a column of --data) or --weights (a file beside --x/--y), not both",
                               status: 64)
        try assertCommandFails(base + ["--data", "data.csv", "--weights", "weights.csv"], in: folder,
                               mentioning: "--weights goes with --x/--y; beside --data name the column with --weight-column", status: 64)
        try assertCommandFails(["eval", "--model", "a.safetensors", "--x", "x.csv", "--y", "labels.csv", "--weights", "zeros.csv"], in: folder,
                               mentioning: "--weights zeros.csv: the weights sum to 0; at least one row needs a weight above 0")
    }
}
