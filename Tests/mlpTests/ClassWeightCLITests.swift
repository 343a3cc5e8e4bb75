import Foundation
import MLPKit
import XCTest

/// `train --class-weight`: a weight of 2 on a class trains, full-batch, the model that the same
/// file with that class's rows written twice trains (Adam does not see the batch's scale);
/// `balanced` is n/(C·n_c) over the training rows; the checkpoint keeps the weights for a
/// resumed run; weights of 1 are the unweighted run, bit for bit.
final class ClassWeightCLITests: XCTestCase {
    var folder: URL!
    var lines: [String] = []

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 29)
        for _ in 0..<200 {
            let (a, b) = (Float(generator.nextNormal()), Float(generator.nextNormal()))
            let rare = a + b / 2 + Float(generator.nextNormal()) * 0.6 > 1.4
            lines.append("\(a),\(b),\(rare ? "rare" : "common")")
        }
        try write(lines, to: "data.csv")
        try write(lines.flatMap { $0.hasSuffix(",rare") ? [$0, $0] : [$0] }, to: "twice.csv")
    }

    func write(_ rows: [String], to name: String) throws {
        try (["a,b,label"] + rows).joined(separator: "\n").appending("\n")
            .write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func parameters(_ name: String) throws -> [Float] {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path).parameters
    }

    let fullBatch = ["--target", "label", "--hidden", "8", "--steps", "25", "--batch-size", "1000", "--no-shuffle", "--lr", "0.01"]

    func testAWeightOfTwoIsTheRowsTwice() throws {
        let weighted = try run(["train", "--data", "data.csv", "--class-weight", "1,2", "--out", "w.safetensors"] + fullBatch)
        XCTAssertEqual(weighted.status, 0, weighted.standardError)
        XCTAssertTrue(weighted.standardError.contains("; class weights 1.0000, 2.0000;"), weighted.standardError)
        let twice = try run(["train", "--data", "twice.csv", "--out", "t.safetensors"] + fullBatch)
        XCTAssertEqual(twice.status, 0, twice.standardError)
        let (a, b) = (try parameters("w.safetensors"), try parameters("t.safetensors"))
        let largest = zip(a, b).map { abs($0 - $1) }.max() ?? .nan
        XCTAssertLessThan(largest, 1e-5, "largest parameter difference")
        // and not the unweighted model
        let plain = try run(["train", "--data", "data.csv", "--out", "p.safetensors"] + fullBatch)
        XCTAssertEqual(plain.status, 0, plain.standardError)
        XCTAssertGreaterThan(zip(a, try parameters("p.safetensors")).map { abs($0 - $1) }.max() ?? 0, 1e-3)
        // weights of 1: the unweighted run, bit for bit
        let ones = try run(["train", "--data", "data.csv", "--class-weight", "1,1", "--out", "o.safetensors"] + fullBatch)
        XCTAssertEqual(ones.status, 0, ones.standardError)
        XCTAssertEqual(try parameters("o.safetensors").map(\.bitPattern), try parameters("p.safetensors").map(\.bitPattern))
    }

    func testBalancedWeightsAndResuming() throws {
        let rare = lines.filter { $0.hasSuffix(",rare") }.count
        XCTAssertGreaterThan(rare, 10)
        let common = ["--target", "label", "--hidden", "8", "--epochs", "2", "--batch-size", "32"]
        let trained = try run(["train", "--data", "data.csv", "--class-weight", "balanced", "--out", "b.safetensors"] + common)
        XCTAssertEqual(trained.status, 0, trained.standardError)
        // classes in sorted order: common, rare; n/(C·n_c)
        let expected = [Float(200.0 / (2.0 * Double(200 - rare))), Float(200.0 / (2.0 * Double(rare)))]
        let info = try infoObject("b.safetensors", in: folder)
        let recorded = try XCTUnwrap((info["training"] as? [String: Any])?["class_weights"] as? [Double])
        XCTAssertEqual(recorded.map { Float($0) }, expected)
        // a resumed run keeps them: two epochs then one is three epochs
        let resumed = try run(["train", "--init", "b.safetensors", "--data", "data.csv", "--epochs", "1", "--out", "r.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        let whole = try run(["train", "--data", "data.csv", "--class-weight", "balanced", "--out", "c.safetensors",
                             "--target", "label", "--hidden", "8", "--epochs", "3", "--batch-size", "32"])
        XCTAssertEqual(whole.status, 0, whole.standardError)
        XCTAssertEqual(try parameters("r.safetensors").map(\.bitPattern), try parameters("c.safetensors").map(\.bitPattern))
        // the minority class's recall rises (the point of weighing it)
        func recall(_ model: String) throws -> Double {
            let figures = try jsonObject(run(["eval", "--model", model, "--data", "data.csv", "--json"]))
            let classes = try XCTUnwrap(figures["classes"] as? [[String: Any]])
            return try XCTUnwrap(classes.first { $0["class"] as? String == "rare" }?["recall"] as? Double)
        }
        let plain = try run(["train", "--data", "data.csv", "--out", "p.safetensors"] + common.dropLast(4) + ["--epochs", "30", "--batch-size", "32", "--lr", "0.01"])
        XCTAssertEqual(plain.status, 0, plain.standardError)
        let balanced = try run(["train", "--data", "data.csv", "--class-weight", "balanced", "--out", "q.safetensors"]
                               + common.dropLast(4) + ["--epochs", "30", "--batch-size", "32", "--lr", "0.01"])
        XCTAssertEqual(balanced.status, 0, balanced.standardError)
        XCTAssertGreaterThan(try recall("q.safetensors"), try recall("p.safetensors"))
    }

    func testRefused() throws {
        for (flags, message) in [(["--class-weight", "1,x"], "--class-weight takes balanced or non-negative weights separated by commas, got 'x' in '1,x'"),
                                 (["--class-weight", "1,-2"], "got '-2' in '1,-2'"),
                                 (["--class-weight", "1,2,3"], "--class-weight gives 3 weights for 2 classes"),
                                 (["--class-weight", "balanced", "--loss", "mse"], "--class-weight goes with --loss cross-entropy (classes), not mse")] {
            let target = flags.contains("mse") ? ["--target", "a", "--drop", "label"] : ["--target", "label"]
            try assertCommandFails(["train", "--data", "data.csv", "--epochs", "1", "--out", "f.safetensors"] + target + flags, in: folder,
                                   mentioning: message, status: 64)
        }
    }
}
