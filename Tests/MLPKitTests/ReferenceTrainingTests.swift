import Foundation
import XCTest
@testable import MLPKit

/// 20 training steps against a NumPy float64 implementation of the seed
/// (Fixtures/reference/make_reference.py), in order with partial batches.
final class ReferenceTrainingTests: XCTestCase {
    struct Case: Decodable {
        let layers: [Int]
        let loss: String
        let targets: String
        let batch_size: Int
        let steps: Int
        let learning_rate: Double
        let beta1: Double
        let beta2: Double
        let epsilon: Double
        let x: [Double]
        let y: [Double]
        let initial_parameters: [Double]
        let losses: [Double]
        let final_parameters: [Double]
        let final_first_moment: [Double]
        let final_second_moment: [Double]
        let gradients_first_step: [Double]
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/reference")

    func run(_ name: String, useBLAS: Bool) throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("\(name).json"))
        let reference = try JSONDecoder().decode(Case.self, from: data)
        let loss = try XCTUnwrap(Loss(rawValue: reference.loss))
        let encoding: TargetEncoding = reference.targets == "labels" ? .classIndices : .dense
        let model = try MLP(layerSizes: reference.layers, loss: loss,
                            parameters: reference.initial_parameters.map { Float($0) })
        let dataset = try Dataset(inputs: reference.x.map { Float($0) }, features: reference.layers[0],
                                  targets: reference.y.map { Float($0) }, encoding: encoding,
                                  targetWidth: encoding.width(outputs: reference.layers.last ?? 1))
        let hyperparameters = AdamHyperparameters(
            learningRate: Float(reference.learning_rate), beta1: Float(reference.beta1),
            beta2: Float(reference.beta2), epsilon: Float(reference.epsilon))
        let session = try TrainingSession(model: model, backend: CPUBackend(useBLAS: useBLAS),
                                          hyperparameters: hyperparameters, batchCapacity: reference.batch_size)
        let device = try session.upload(dataset)
        let schedule = try BatchSchedule(rows: dataset.rows, batchSize: reference.batch_size, shuffle: false, seed: 0)
        try session.reserveLossSums(reference.steps)
        for index in 0..<reference.steps {
            let (_, positions) = schedule.batch(step: index)
            try session.trainStep(on: device, positions: positions, gathered: false, lossSlot: index)
            if index == 0 {
                let gradient = try session.gradientValues()
                assertClose(gradient, reference.gradients_first_step, relative: 1e-5, "\(name) first gradient")
            }
            let batchLoss = Double(try session.lossSums(count: index + 1)[index]) / Double(positions.count)
            XCTAssertEqual(batchLoss, reference.losses[index], accuracy: 1e-5 * max(1, abs(reference.losses[index])),
                           "\(name) loss at step \(index + 1)")
        }
        XCTAssertEqual(session.step, reference.steps)
        let state = try session.optimizerState()
        assertClose(try session.model().parameters, reference.final_parameters, relative: 1e-5, "\(name) parameters")
        assertClose(state.firstMoment, reference.final_first_moment, relative: 1e-4, "\(name) m")
        assertClose(state.secondMoment, reference.final_second_moment, relative: 1e-4, "\(name) v")
    }

    /// Element by element, |a − b| ≤ relative · (|b| + ‖b‖∞ / 100): each element to `relative` of
    /// itself, and only elements below a hundredth of the largest judged against that hundredth
    /// (a norm-wise bound would let most of v's small entries be 10% off).
    func assertClose(_ actual: [Float], _ expected: [Double], relative: Double, _ message: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
        let floor = (expected.map(abs).max() ?? 1) / 100
        var worst = (ratio: 0.0, index: 0)
        for (index, (a, b)) in zip(actual, expected).enumerated() {
            let ratio = abs(Double(a) - b) / (abs(b) + floor)
            if !(ratio <= worst.ratio) { worst = (ratio, index) }
        }
        XCTAssertLessThanOrEqual(worst.ratio, relative,
                                 "\(message): element \(worst.index), \(actual[worst.index]) against \(expected[worst.index])",
                                 file: file, line: line)
    }

    func testMeanSquaredErrorDeep() throws { try run("mse_deep", useBLAS: false) }
    func testCrossEntropyLabels() throws { try run("ce_labels", useBLAS: false) }
    func testCrossEntropyProbabilities() throws { try run("ce_probabilities", useBLAS: false) }
    func testMeanSquaredErrorSeedShape() throws { try run("mse_seed", useBLAS: false) }

    func testAllCasesThroughBLAS() throws {
        guard BLASLibrary.shared != nil else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI must install OpenBLAS") }
            throw XCTSkip("no BLAS installed (apt-get install libopenblas0-pthread)")
        }
        for name in ["mse_deep", "ce_labels", "ce_probabilities", "mse_seed"] { try run(name, useBLAS: true) }
    }
}
