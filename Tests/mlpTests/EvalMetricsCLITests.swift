import Foundation
import MLPKit
import XCTest

/// `mlp eval`'s figures beyond the loss, each worked out here again from `mlp predict`'s output
/// and the targets: RMSE, MAE and R² per output for regression; the confusion matrix, each
/// class's precision, recall and F1, and the macro F1 for classification.
final class EvalMetricsCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func write(_ matrix: DataMatrix, _ name: String) throws {
        try Data(NumpyFile.encode(matrix)).write(to: folder.appendingPathComponent(name))
    }

    func testRegressionFiguresAgreeWithPredictions() throws {
        var generator = SeededGenerator(seed: 31)
        let rows = 150
        var x: [Float] = [], y: [Float] = []
        for _ in 0..<rows {
            let (a, b) = (Float(generator.nextNormal()), Float(generator.nextNormal()))
            x += [a, b]
            y += [a - 2 * b, a * b + 3]
        }
        try write(DataMatrix(rows: rows, columns: 2, values: x, isIntegral: false), "x.npy")
        try write(DataMatrix(rows: rows, columns: 2, values: y, isIntegral: false), "y.npy")
        let train = try run(["train", "--x", "x.npy", "--y", "y.npy", "--hidden", "16", "--epochs", "20", "--batch-size", "16",
                             "--lr", "0.01", "--out", "r.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        let figures = try jsonObject(run(["eval", "--model", "r.safetensors", "--x", "x.npy", "--y", "y.npy", "--json"]))
        let predict = try run(["predict", "--model", "r.safetensors", "--x", "x.npy", "--out", "p.npy"])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let predictions = try NumpyFile.read(path: folder.appendingPathComponent("p.npy").path).values
        var squares = 0.0, absolute = 0.0
        var r2: [Double] = []
        for j in 0..<2 {
            let mean = (0..<rows).map { Double(y[$0 * 2 + j]) }.reduce(0, +) / Double(rows)
            var residual = 0.0, total = 0.0
            for row in 0..<rows {
                let error = Double(predictions[row * 2 + j]) - Double(y[row * 2 + j])
                squares += error * error
                absolute += abs(error)
                residual += error * error
                total += (Double(y[row * 2 + j]) - mean) * (Double(y[row * 2 + j]) - mean)
            }
            r2.append(1 - residual / total)
        }
        let rmse = try XCTUnwrap(figures["rmse"] as? Double)
        XCTAssertEqual(rmse, (squares / Double(2 * rows)).squareRoot(), accuracy: 1e-12 * rmse)
        XCTAssertEqual(try XCTUnwrap(figures["mae"] as? Double), absolute / Double(2 * rows), accuracy: 1e-12)
        let perOutput = try XCTUnwrap(figures["r2_per_output"] as? [Double])
        XCTAssertEqual(perOutput[0], r2[0], accuracy: 1e-12)
        XCTAssertEqual(perOutput[1], r2[1], accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(figures["r2"] as? Double), (r2[0] + r2[1]) / 2, accuracy: 1e-12)
        XCTAssertGreaterThan(r2[0], 0.5, "the network should fit a − 2b")
        // the seed's loss is half the mean squared error per row: 2 outputs, so loss = rmse²
        XCTAssertEqual(try XCTUnwrap(figures["loss"] as? Double), rmse * rmse, accuracy: 1e-5 * rmse * rmse)
        let text = try run(["eval", "--model", "r.safetensors", "--x", "x.npy", "--y", "y.npy"])
        XCTAssertTrue(text.standardOutput.contains("\nrmse: \(String(format: "%.6f", rmse))\nmae: "), text.standardOutput)
    }

    func testClassFiguresAgreeWithPredictions() throws {
        var generator = SeededGenerator(seed: 32)
        var text = "a,b,kind\n"
        var labels: [String] = []
        let names = ["circle", "square", "star"]
        for row in 0..<180 {
            let (a, b) = (Float(generator.nextNormal()), Float(generator.nextNormal()))
            // mostly separable, with a class the model will mix up with another
            let label = row % 10 == 0 ? names[Int(generator.next() % 3)] : a > 0.3 ? "circle" : b > 0 ? "square" : "star"
            labels.append(label)
            text += "\(a),\(b),\(label)\n"
        }
        try text.write(to: folder.appendingPathComponent("shapes.csv"), atomically: true, encoding: .utf8)
        let train = try run(["train", "--data", "shapes.csv", "--target", "kind", "--hidden", "8", "--epochs", "6",
                             "--batch-size", "32", "--lr", "0.01", "--out", "c.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        let figures = try jsonObject(run(["eval", "--model", "c.safetensors", "--data", "shapes.csv", "--json"]))
        let predict = try run(["predict", "--model", "c.safetensors", "--data", "shapes.csv", "--out", "p.csv"])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let predicted = try String(contentsOf: folder.appendingPathComponent("p.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
        XCTAssertEqual(predicted.count, 180)
        var confusion = [[Int]](repeating: [0, 0, 0], count: 3)
        for (actual, guess) in zip(labels, predicted) {
            confusion[try XCTUnwrap(names.firstIndex(of: actual))][try XCTUnwrap(names.firstIndex(of: guess))] += 1
        }
        XCTAssertEqual(try XCTUnwrap(figures["confusion"] as? [[Int]]), confusion)
        XCTAssertEqual(try XCTUnwrap(figures["accuracy"] as? Double), Double((0..<3).map { confusion[$0][$0] }.reduce(0, +)) / 180,
                       accuracy: 1e-15)
        let classes = try XCTUnwrap(figures["classes"] as? [[String: Any]])
        var f1s: [Double] = []
        for (index, entry) in classes.enumerated() {
            XCTAssertEqual(entry["class"] as? String, names[index])
            let hits = Double(confusion[index][index])
            let rows = confusion[index].reduce(0, +), guessed = (0..<3).map { confusion[$0][index] }.reduce(0, +)
            XCTAssertEqual(entry["rows"] as? Int, rows)
            XCTAssertEqual(try XCTUnwrap(entry["recall"] as? Double), hits / Double(rows), accuracy: 1e-15)
            if guessed > 0 {
                let (precision, recall) = (hits / Double(guessed), hits / Double(rows))
                XCTAssertEqual(try XCTUnwrap(entry["precision"] as? Double), precision, accuracy: 1e-15)
                let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
                if hits > 0 { XCTAssertEqual(try XCTUnwrap(entry["f1"] as? Double), f1, accuracy: 1e-15) }
                f1s.append(f1)
            } else {
                XCTAssertTrue(entry["precision"] is NSNull)
                f1s.append(0)
            }
        }
        XCTAssertEqual(try XCTUnwrap(figures["macro_f1"] as? Double), f1s.reduce(0, +) / 3, accuracy: 1e-15)
        // the table and, with --confusion, the matrix under the class names
        let table = try run(["eval", "--model", "c.safetensors", "--data", "shapes.csv", "--confusion"])
        XCTAssertEqual(table.status, 0, table.standardError)
        XCTAssertTrue(table.standardOutput.contains("class   precision  recall     f1         rows\ncircle  "), table.standardOutput)
        XCTAssertTrue(table.standardOutput.contains("confusion (rows: actual, columns: predicted)\n        circle  square    star\ncircle  "),
                      table.standardOutput)
        let counts = confusion[2].map { String(repeating: " ", count: 6 - String($0).count) + String($0) }.joined(separator: "  ")
        XCTAssertTrue(table.standardOutput.contains("\nstar    \(counts)\n"), table.standardOutput)
    }

    /// Binary cross-entropy: each label's precision, recall and F1 from `predict`'s probabilities
    /// (positive above 0.5) against the 0/1 targets, labels named by the target columns.
    func testLabelFiguresAgreeWithPredictions() throws {
        var generator = SeededGenerator(seed: 37)
        var csv = "a,b,c,spam,urgent,never\n"
        var targets: [[Float]] = []
        for _ in 0..<160 {
            let (a, b, c) = (Float(generator.nextNormal()), Float(generator.nextNormal()), Float(generator.nextNormal()))
            // spam mostly follows a + b, with a tenth flipped; urgent is rare; never has no positives
            let spam: Float = (a + b > 0) != (generator.next() % 10 == 0) ? 1 : 0, urgent: Float = c > 1 ? 1 : 0
            csv += "\(a),\(b),\(c),\(Int(spam)),\(Int(urgent)),0\n"
            targets.append([spam, urgent, 0])
        }
        try csv.write(to: folder.appendingPathComponent("m.csv"), atomically: true, encoding: .utf8)
        let train = try run(["train", "--data", "m.csv", "--target", "spam,urgent,never", "--loss", "binary-cross-entropy",
                             "--hidden", "8", "--epochs", "15", "--batch-size", "16", "--lr", "0.01", "--out", "m.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        let figures = try jsonObject(run(["eval", "--model", "m.safetensors", "--data", "m.csv", "--json"]))
        let predict = try run(["predict", "--model", "m.safetensors", "--data", "m.csv", "--out", "p.npy"])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let probabilities = try NumpyFile.read(path: folder.appendingPathComponent("p.npy").path)
        XCTAssertEqual(probabilities.columns, 3)
        let labels = try XCTUnwrap(figures["labels"] as? [[String: Any]])
        XCTAssertEqual(labels.compactMap { $0["label"] as? String }, ["spam", "urgent", "never"])
        var f1s: [Double] = []
        for (j, entry) in labels.enumerated() {
            var (hits, positives, predicted) = (0, 0, 0)
            for (row, target) in targets.enumerated() {
                let yes = probabilities.values[row * 3 + j] > 0.5
                if yes { predicted += 1 }
                if target[j] == 1 { positives += 1 }
                if yes, target[j] == 1 { hits += 1 }
            }
            XCTAssertEqual(entry["positives"] as? Int, positives)
            let precision = predicted > 0 ? Double(hits) / Double(predicted) : nil
            let recall = positives > 0 ? Double(hits) / Double(positives) : nil
            // JSON keeps 15 significant digits
            XCTAssertEqual(entry["precision"] as? Double ?? -1, precision ?? -1, accuracy: 1e-12, "label \(j)")
            XCTAssertEqual(entry["recall"] as? Double ?? -1, recall ?? -1, accuracy: 1e-12, "label \(j)")
            if let precision, let recall, precision + recall > 0 {
                let f1 = 2 * precision * recall / (precision + recall)
                XCTAssertEqual(try XCTUnwrap(entry["f1"] as? Double), f1, accuracy: 1e-12)
                f1s.append(f1)
            } else {
                XCTAssertTrue(entry["f1"] is NSNull)
                if positives > 0 || predicted > 0 { f1s.append(0) }
            }
        }
        XCTAssertEqual(labels[2]["positives"] as? Int, 0)
        XCTAssertTrue(labels[2]["recall"] is NSNull)
        XCTAssertGreaterThan(try XCTUnwrap(labels[0]["f1"] as? Double), 0.5)
        XCTAssertEqual(try XCTUnwrap(figures["macro_f1"] as? Double), f1s.reduce(0, +) / Double(f1s.count), accuracy: 1e-12)
        let written = try run(["predict", "--model", "m.safetensors", "--data", "m.csv", "--out", "-"])
        XCTAssertTrue(written.standardOutput.hasPrefix("p_spam,p_urgent,p_never\n"), written.standardOutput)
        let table = try run(["eval", "--model", "m.safetensors", "--data", "m.csv"])
        XCTAssertTrue(table.standardOutput.contains("label   precision  recall     f1         positives\nspam    "), table.standardOutput)
    }
}
