import Foundation
import MLPKit
import XCTest

/// `--target u,v`: several target columns of a CSV train the model that the same rows as arrays
/// (`--x` the inputs with the categories one-hot encoded by hand, `--y` the target columns)
/// train, bit for bit; the checkpoint records the targets, which `eval` and `predict` then use
/// by name.
final class MultiTargetCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 91)
        var csv = "a,u,city,b,v\n", swapped = "v,b,city,u,a,id\n", x = "", y = ""
        for row in 0..<120 {
            let a = Float(generator.nextNormal()), b = Float(generator.nextNormal())
            let city = row % 3 == 0 ? "Oslo" : "Bergen"
            let u = a * b + (city == "Oslo" ? 1 : 0), v = 100 * (a - 2 * b)
            csv += "\(a),\(u),\(city),\(b),\(v)\n"
            swapped += "\(v),\(b),\(city),\(u),\(a),r\(row)\n"
            // one-hot in sorted order: Bergen, Oslo
            x += "\(a),\(city == "Bergen" ? 1 : 0),\(city == "Oslo" ? 1 : 0),\(b)\n"
            y += "\(u),\(v)\n"
        }
        for (name, text) in [("data.csv", csv), ("swapped.csv", swapped), ("x.csv", x), ("y.csv", y)] {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func checkpoint(_ name: String) throws -> Checkpoint {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path)
    }

    let common = ["--hidden", "12", "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--seed", "2", "--standardize", "--standardize-target"]

    func testSeveralTargetsTrainTheArraysModel() throws {
        let csv = try run(["train", "--data", "data.csv", "--target", "u, v", "--out", "c.safetensors"] + common)
        XCTAssertEqual(csv.status, 0, csv.standardError)
        XCTAssertTrue(csv.standardError.hasPrefix("loss: mse (chosen from the targets; --loss to change); layers 4,12,2"), csv.standardError)
        let arrays = try run(["train", "--x", "x.csv", "--y", "y.csv", "--out", "a.safetensors"] + common)
        XCTAssertEqual(arrays.status, 0, arrays.standardError)
        let (named, plain) = (try checkpoint("c.safetensors"), try checkpoint("a.safetensors"))
        XCTAssertEqual(named.parameters.map(\.bitPattern), plain.parameters.map(\.bitPattern))
        XCTAssertEqual(named.targetStandardization, plain.targetStandardization)
        XCTAssertEqual(named.targetNames, ["u", "v"])
        XCTAssertEqual(named.featureNames, ["a", "city", "b"])

        // eval and predict find the targets by name, wherever they stand, and leave them out of the inputs
        let evaluated = try jsonObject(run(["eval", "--model", "c.safetensors", "--data", "swapped.csv", "--json"]))
        let reference = try jsonObject(run(["eval", "--model", "a.safetensors", "--x", "x.csv", "--y", "y.csv", "--json"]))
        XCTAssertEqual(evaluated["loss"] as? Double, reference["loss"] as? Double)
        XCTAssertEqual((evaluated["r2_per_output"] as? [Double])?.count, 2)
        let predicted = try run(["predict", "--model", "c.safetensors", "--data", "swapped.csv", "--keep", "id", "--out", "-"])
        XCTAssertEqual(predicted.status, 0, predicted.standardError)
        let lines = predicted.standardOutput.split(separator: "\n")
        XCTAssertEqual(lines.first, "id,u,v")
        let arrayLines = try run(["predict", "--model", "a.safetensors", "--x", "x.csv", "--out", "-"]).standardOutput.split(separator: "\n")
        XCTAssertEqual(arrayLines.first, "y0,y1")
        XCTAssertEqual(lines.dropFirst().map { $0.split(separator: ",").dropFirst().joined(separator: ",") },
                       arrayLines.dropFirst().map(String.init))

        let info = try infoObject("c.safetensors", in: folder)
        XCTAssertEqual(info["targets"] as? [String], ["u", "v"])
        XCTAssertTrue(info["target"] is NSNull)
        XCTAssertTrue(try run(["info", "--model", "c.safetensors"]).standardOutput.contains("targets: u, v\n"))
    }

    func testTheOrderGivenIsTheOutputsOrder() throws {
        let trained = try run(["train", "--data", "data.csv", "--target", "v,u", "--out", "r.safetensors"] + common)
        XCTAssertEqual(trained.status, 0, trained.standardError)
        XCTAssertEqual(try checkpoint("r.safetensors").targetNames, ["v", "u"])
        let predicted = try run(["predict", "--model", "r.safetensors", "--data", "data.csv", "--out", "-"])
        XCTAssertTrue(predicted.standardOutput.hasPrefix("v,u\n"), predicted.standardOutput)
        // a resumed run keeps the outputs' order
        try assertCommandFails(["train", "--init", "r.safetensors", "--data", "data.csv", "--target", "u,v", "--epochs", "1",
                                "--out", "s.safetensors"], in: folder,
                               mentioning: "--target u,v names the checkpoint's targets in another order than its outputs (v,u)", status: 64)
        let resumed = try run(["train", "--init", "r.safetensors", "--data", "data.csv", "--epochs", "1", "--out", "s.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertEqual(try checkpoint("s.safetensors").targetNames, ["v", "u"])
        // without a header, by number: the same model as by name
        let body = try String(contentsOf: folder.appendingPathComponent("data.csv"), encoding: .utf8).drop { $0 != "\n" }.dropFirst()
        try String(body).write(to: folder.appendingPathComponent("bare.csv"), atomically: true, encoding: .utf8)
        let numbered = try run(["train", "--data", "bare.csv", "--no-header", "--target", "5,2", "--out", "n.safetensors"] + common)
        XCTAssertEqual(numbered.status, 0, numbered.standardError)
        XCTAssertEqual(try checkpoint("n.safetensors").parameters.map(\.bitPattern), try checkpoint("r.safetensors").parameters.map(\.bitPattern))
    }

    func testRefused() throws {
        for (target, message, status) in [("u,u", "--target names the column 'u' twice", Int32(64)),
                                          ("u,w", "data.csv has no column named 'w' (columns: a, u, city, b, v)", 1),
                                          ("u,city", "data.csv, line 2, column 3 ('city'): 'Oslo' is not a number", 1),
                                          ("u,", "--target takes column names separated by commas, got '' in 'u,'", 64)] {
            try assertCommandFails(["train", "--data", "data.csv", "--target", target, "--out", "f.safetensors"], in: folder,
                                   mentioning: message, status: status)
        }
        try assertCommandFails(["train", "--data", "data.csv", "--target", "u,v", "--drop", "v", "--out", "f.safetensors"], in: folder,
                               mentioning: "'v' is a target; it cannot be left out", status: 1)
        try "p,q\n1,2\n3,4\n".write(to: folder.appendingPathComponent("two.csv"), atomically: true, encoding: .utf8)
        try assertCommandFails(["train", "--data", "two.csv", "--target", "p,q", "--out", "f.safetensors"], in: folder,
                               mentioning: "two.csv: the targets 'p', 'q' are the only columns; there are no features", status: 1)
        // a column name with a comma is still one target
        try "p,q,\"r, s\"\n1,2,3\n4,5,6\n".write(to: folder.appendingPathComponent("comma.csv"), atomically: true, encoding: .utf8)
        let one = try run(["train", "--data", "comma.csv", "--target", "r, s", "--epochs", "1", "--out", "o.safetensors"])
        XCTAssertEqual(one.status, 0, one.standardError)
        XCTAssertEqual(try checkpoint("o.safetensors").targetNames, ["r, s"])
    }
}
