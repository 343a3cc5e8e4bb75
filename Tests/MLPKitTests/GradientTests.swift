import XCTest
@testable import MLPKit

/// Every parameter's gradient against central finite differences of a Float64 loss.
final class GradientTests: XCTestCase {
    func testMeanSquaredErrorSeedDepth() throws {
        try checkGradients(layers: [6, 9, 7, 3], loss: .meanSquaredError, encoding: .dense, rows: 5, seed: 1)
    }

    func testMeanSquaredErrorDeeper() throws {
        try checkGradients(layers: [4, 8, 6, 5, 2], loss: .meanSquaredError, encoding: .dense, rows: 7, seed: 2)
    }

    func testMeanSquaredErrorSingleLayer() throws {
        try checkGradients(layers: [5, 3], loss: .meanSquaredError, encoding: .dense, rows: 4, seed: 3)
    }

    func testCrossEntropyLabelsSeedDepth() throws {
        try checkGradients(layers: [6, 10, 8, 4], loss: .crossEntropy, encoding: .classIndices, rows: 6, seed: 4)
    }

    func testCrossEntropyProbabilitiesDeeper() throws {
        try checkGradients(layers: [5, 7, 6, 6, 3], loss: .crossEntropy, encoding: .dense, rows: 5, seed: 5)
    }

    func testCrossEntropyLabelsOneHidden() throws {
        try checkGradients(layers: [3, 11, 5], loss: .crossEntropy, encoding: .classIndices, rows: 9, seed: 6)
    }
}

extension XCTestCase {
    /// Trains one step with α = 0 and compares every parameter's gradient with central finite
    /// differences (h = 1e-6) of `DoubleReference.loss`, to a relative error below 1e-4.
    /// Targets: labels, probability rows (cross-entropy), normal values (MSE), or for binary
    /// cross-entropy 0/1 labels (soft values in [0, 1] with `softTargets`).
    func checkGradients(layers: [Int], loss: Loss, encoding: TargetEncoding, rows: Int, seed: UInt64,
                        activation: ActivationFunction = .relu, softTargets: Bool = false,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        var data = TestData(seed: seed)
        let outputs = layers[layers.count - 1]
        let inputs = data.normal(rows * layers[0])
        let targets: [Float]
        switch (loss, encoding) {
        case (_, .classIndices): targets = data.labels(rows, classes: outputs)
        case (.crossEntropy, .dense): targets = data.probabilities(rows: rows, columns: outputs)
        case (.meanSquaredError, .dense): targets = data.normal(rows * outputs)
        case (.binaryCrossEntropy, .dense):
            targets = softTargets ? (0..<(rows * outputs)).map { _ in Float(data.generator.nextUnitDouble()) }
                                  : data.binary(rows * outputs)
        }
        let model = try MLP(layerSizes: layers, activation: activation, loss: loss, seed: seed)
        let dataset = try Dataset(inputs: inputs, features: layers[0], targets: targets, encoding: encoding,
                                  targetWidth: encoding.width(outputs: outputs))
        // α = 0: the step computes the gradient and leaves θ as it was.
        let session = try TrainingSession(model: model, backend: CPUBackend(useBLAS: false),
                                          hyperparameters: AdamHyperparameters(learningRate: 0), batchCapacity: rows)
        let device = try session.upload(dataset)
        try session.trainStep(on: device, positions: 0..<rows, gathered: false)
        let analytic = try session.gradientValues()
        XCTAssertEqual(try session.model().parameters, model.parameters, file: file, line: line)

        let parameters = model.parameters.map(Double.init)
        let x = inputs.map(Double.init), y = targets.map(Double.init)
        func lossAt(_ p: [Double]) -> Double {
            DoubleReference.loss(loss, layers: layers, parameters: p, inputs: x, targets: y, encoding: encoding, rows: rows,
                                 activation: activation)
        }
        let h = 1e-6
        var worst = 0.0
        for index in parameters.indices {
            var plus = parameters, minus = parameters
            plus[index] += h
            minus[index] -= h
            let numeric = (lossAt(plus) - lossAt(minus)) / (2 * h)
            let error = abs(Double(analytic[index]) - numeric) / max(abs(numeric), 1e-3)
            worst = max(worst, error)
            XCTAssertLessThan(error, 1e-4, "parameter \(index): analytic \(analytic[index]) numeric \(numeric)",
                              file: file, line: line)
        }
        XCTAssertTrue(analytic.contains { $0 != 0 }, file: file, line: line)
        print("gradient check \(layers) \(loss) \(encoding) \(activation): worst relative error \(worst)")
    }
}
