import Foundation
import XCTest
import MLPKit

/// The README's "library in a dozen lines", run as written (on small files made here).
final class ReadmeExampleTests: XCTestCase {
    func testLibraryExample() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(folder.path))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        var generator = SeededGenerator(seed: 2)
        let inputs = (0..<(200 * 6)).map { _ in Float(generator.nextNormal()) }
        let labels = (0..<200).map { Float(inputs[$0 * 6] > 0 ? 1 : 0) + Float(inputs[$0 * 6 + 1] > 0 ? 1 : 0) }
        try Data(NumpyFile.encode(DataMatrix(rows: 200, columns: 6, values: inputs, isIntegral: false))).write(to: folder.appendingPathComponent("x.npy"))
        try Data(NumpyFile.encodeInt64(labels.map { Int64($0) }, rows: 200, columns: 1, flat: true)).write(to: folder.appendingPathComponent("y.npy"))

        // --- as in the README ---
        let x = try NumpyFile.read(path: "x.npy"), y = try NumpyFile.read(path: "y.npy")
        let (data, outputs) = try DataLoader.dataset(inputs: x, targets: y, loss: .crossEntropy)
        let model = try MLP(layerSizes: [x.columns, 256, 128, outputs], loss: .crossEntropy, seed: 0)
        let session = try TrainingSession(model: model, backend: CPUBackend(),
                                          hyperparameters: AdamHyperparameters(learningRate: 1e-3), batchCapacity: 128)
        let device = try session.upload(data)
        try session.train(on: device, configuration: TrainingConfiguration(batchSize: 128, length: .epochs(10)),
                          onEpoch: { epoch in
            print(epoch.epoch, epoch.trainingLoss); return true
        })
        print(try session.evaluate(device))                       // (loss, accuracy)
        try Checkpoint(model: try session.model(), optimizer: try session.optimizerState()).save(to: "model.safetensors")
        let logits = try session.predict(x.values)
        // --- end ---

        XCTAssertEqual(outputs, 3)
        XCTAssertEqual(logits.count, 200 * 3)
        XCTAssertGreaterThan(try XCTUnwrap(session.evaluate(device).accuracy), 0.8)
        XCTAssertEqual(try Checkpoint.load(from: "model.safetensors").optimizer?.step, 20)
    }
}
