import Foundation
import MLPKit
import XCTest

/// `train --pos-weight` (binary cross-entropy): `balanced` is each label's negatives over its
/// positives in the training rows; the checkpoint keeps the weights for a resumed run; weights of 1
/// train the unweighted model (to rounding: another formula for the same loss); a rare label's
/// recall rises.
final class PositiveWeightCLITests: XCTestCase {
    var folder: URL!
    var labels: [(Int, Int)] = []

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 47)
        var lines: [String] = []
        for _ in 0..<300 {
            let (a, b) = (Float(generator.nextNormal()), Float(generator.nextNormal()))
            let common = a + Float(generator.nextNormal()) * 0.5 > 0 ? 1 : 0
            let rare = a + b + Float(generator.nextNormal()) * 0.5 > 1.8 ? 1 : 0
            labels.append((common, rare))
            lines.append("\(a),\(b),\(common),\(rare)")
        }
        try (["a,b,common,rare"] + lines).joined(separator: "\n").appending("\n")
            .write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func parameters(_ name: String) throws -> [Float] {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path).parameters
    }

    let common = ["--data", "labels.csv", "--target", "common,rare", "--loss", "binary-cross-entropy", "--hidden", "8",
                  "--batch-size", "32"]

    func testBalancedWeightsResumingAndRecall() throws {
        let rare = labels.filter { $0.1 == 1 }.count, usual = labels.filter { $0.0 == 1 }.count
        XCTAssertGreaterThan(rare, 10)
        XCTAssertLessThan(rare, 60)
        let trained = try run(["train", "--pos-weight", "balanced", "--epochs", "2", "--out", "b.safetensors"] + common)
        XCTAssertEqual(trained.status, 0, trained.standardError)
        XCTAssertTrue(trained.standardError.contains("; positive weights "), trained.standardError)
        let info = try infoObject("b.safetensors", in: folder)
        let recorded = try XCTUnwrap((info["training"] as? [String: Any])?["pos_weights"] as? [Double])
        XCTAssertEqual(recorded.map { Float($0) }, [Float(Double(300 - usual) / Double(usual)), Float(Double(300 - rare) / Double(rare))])
        // a resumed run keeps them: two epochs then one is three epochs
        let resumed = try run(["train", "--init", "b.safetensors", "--data", "labels.csv", "--epochs", "1", "--out", "r.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        let whole = try run(["train", "--pos-weight", "balanced", "--epochs", "3", "--out", "c.safetensors"] + common)
        XCTAssertEqual(whole.status, 0, whole.standardError)
        XCTAssertEqual(try parameters("r.safetensors").map(\.bitPattern), try parameters("c.safetensors").map(\.bitPattern))
        // weights of 1: the unweighted model, to rounding
        let ones = try run(["train", "--pos-weight", "1,1", "--epochs", "3", "--out", "o.safetensors"] + common)
        XCTAssertEqual(ones.status, 0, ones.standardError)
        let plain = try run(["train", "--epochs", "3", "--out", "p.safetensors"] + common)
        XCTAssertEqual(plain.status, 0, plain.standardError)
        XCTAssertLessThan(zip(try parameters("o.safetensors"), try parameters("p.safetensors")).map { abs($0 - $1) }.max() ?? .nan, 1e-4)
        // the rare label's recall rises (the point of weighing its positives)
        func recall(_ model: String) throws -> Double {
            let figures = try jsonObject(run(["eval", "--model", model, "--data", "labels.csv", "--json"]))
            let perLabel = try XCTUnwrap(figures["labels"] as? [[String: Any]], "\(figures.keys)")
            return try XCTUnwrap(perLabel.first { $0["label"] as? String == "rare" }?["recall"] as? Double)
        }
        let long = ["--epochs", "30", "--lr", "0.01"]
        XCTAssertEqual(try run(["train", "--out", "u.safetensors"] + common + long).status, 0)
        XCTAssertEqual(try run(["train", "--pos-weight", "balanced", "--out", "w.safetensors"] + common + long).status, 0)
        XCTAssertGreaterThan(try recall("w.safetensors"), try recall("u.safetensors"))
    }

    func testRefused() throws {
        for (flags, message) in [(["--pos-weight", "1,x"], "--pos-weight takes balanced or non-negative weights separated by commas, got 'x' in '1,x'"),
                                 (["--pos-weight", "1,2,3"], "--pos-weight gives 3 weights for 2 outputs"),
                                 (["--pos-weight", "balanced", "--loss", "mse"], "--pos-weight goes with --loss binary-cross-entropy (labels), not mse")] {
            let loss = flags.contains("mse") ? [] : ["--loss", "binary-cross-entropy"]
            try assertCommandFails(["train", "--data", "labels.csv", "--target", "common,rare", "--epochs", "1", "--out", "f.safetensors"]
                                   + loss + flags, in: folder, mentioning: message, status: 64)
        }
    }
}
