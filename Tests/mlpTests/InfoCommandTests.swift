import Foundation
import MLPKit
import XCTest

/// `mlp info`: what a checkpoint holds, in lines and as JSON, for a model trained from a CSV and
/// for a bare one (weights only, as from PyTorch).
final class InfoCommandTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func testTrainedFromACSV() throws {
        var generator = SeededGenerator(seed: 5)
        var text = "width,kind,height\n"
        for row in 0..<60 { text += "\(generator.nextNormal()),\(["fir", "\"oak, red\""][row % 2]),\(generator.nextNormal())\n" }
        try text.write(to: folder.appendingPathComponent("trees.csv"), atomically: true, encoding: .utf8)
        let train = try run(["train", "--data", "trees.csv", "--target", "kind", "--hidden", "6", "--epochs", "2", "--batch-size", "20",
                             "--seed", "9", "--validation-split", "0.25", "--standardize", "--weight-decay", "0.01",
                             "--schedule", "step", "--step-size", "5", "--out", "m.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)

        let info = try run(["info", "--model", "m.safetensors"])
        XCTAssertEqual(info.status, 0, info.standardError)
        // 2·6 + 6 + 6·2 + 2 parameters; 45 training rows in batches of 20: 3 steps an epoch
        XCTAssertEqual(info.standardOutput, """
            layers: 2,6,2 (32 parameters)
            activation: relu
            loss: cross-entropy
            inputs: width, height; standardized
            target: kind
            classes: fir, 'oak, red'
            adam: step 6; lr 0.001, beta1 0.9, beta2 0.999, eps 1e-08, weight decay 0.01
            schedule: step (×0.1 every 5 steps)
            training: seed 9, batch size 20, shuffled, validation split 0.25

            """)

        let json = try run(["info", "--model", "m.safetensors", "--json"])
        XCTAssertEqual(json.status, 0, json.standardError)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        XCTAssertEqual(object["layers"] as? [Int], [2, 6, 2])
        XCTAssertEqual(object["parameters"] as? Int, 32)
        XCTAssertEqual(object["inputs"] as? [String], ["width", "height"])
        XCTAssertEqual(object["classes"] as? [String], ["fir", "oak, red"])
        XCTAssertEqual(object["target"] as? String, "kind")
        XCTAssertEqual(object["standardized"] as? Bool, true)
        XCTAssertEqual(object["adam_step"] as? Int, 6)
        let h = try XCTUnwrap(object["hyperparameters"] as? [String: Any])
        XCTAssertEqual(h["weight_decay"] as? Double, 0.01)
        XCTAssertTrue(h["clip_norm"] is NSNull)
        let training = try XCTUnwrap(object["training"] as? [String: Any])
        XCTAssertEqual(training["seed"] as? Int, 9)
        XCTAssertEqual(training["validation_split"] as? Double, 0.25)
    }

    func testABareCheckpoint() throws {
        var file = Checkpoint(model: try MLP(layerSizes: [3, 4, 2], activation: .tanh, loss: .meanSquaredError, seed: 1))
        file.loss = nil
        try file.save(to: folder.appendingPathComponent("bare.safetensors").path)
        let info = try run(["info", "--model", "bare.safetensors"])
        XCTAssertEqual(info.status, 0, info.standardError)
        XCTAssertEqual(info.standardOutput, """
            layers: 3,4,2 (26 parameters)
            activation: tanh
            loss: not recorded (give eval and predict a --loss)
            inputs: 3, by position (no column names recorded)
            adam: no state (the model alone; train --init starts Adam afresh)

            """)
        let json = try run(["info", "--model", "bare.safetensors", "--json"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        for key in ["loss", "inputs", "target", "classes", "adam_step", "hyperparameters", "schedule"] {
            XCTAssertTrue(object[key] is NSNull, "\(key): \(String(describing: object[key]))")
        }
    }

    func testBadInputIsOneError() throws {
        try Data("not a checkpoint".utf8).write(to: folder.appendingPathComponent("bad.safetensors"))
        try assertCommandFails(["info", "--model", "bad.safetensors"], in: folder, mentioning: "invalid checkpoint bad.safetensors",
                               status: 1)
        try assertCommandFails(["info", "--model", "missing.safetensors"], in: folder, mentioning: "missing.safetensors", status: 1)
        try assertCommandFails(["info"], in: folder, mentioning: "--model", status: 64)
    }
}
