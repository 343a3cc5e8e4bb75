import Foundation
import XCTest
@testable import MLPKit

/// Model initialisation and layout, data validation, batch schedules, and evaluation and
/// prediction against the Float64 reference.
final class ModelTests: XCTestCase {
    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    // MARK: - Initialisation

    func testInitialisationIsDeterministic() throws {
        for initialization in MLP.Initialization.allCases {
            let a = try MLP(layerSizes: [6, 9, 4], loss: .crossEntropy, initialization: initialization, seed: 123)
            let b = try MLP(layerSizes: [6, 9, 4], loss: .crossEntropy, initialization: initialization, seed: 123)
            let c = try MLP(layerSizes: [6, 9, 4], loss: .crossEntropy, initialization: initialization, seed: 124)
            XCTAssertEqual(bits(a.parameters), bits(b.parameters), "\(initialization)")
            XCTAssertEqual(a.parameters.count, 6 * 9 + 9 + 9 * 4 + 4)
            let sameWeights = zip(a.parameters, c.parameters).filter { $0 == $1 && $0 != 0 }.count
            XCTAssertEqual(sameWeights, 0, "\(initialization): seeds 123 and 124 share \(sameWeights) values")
            XCTAssertNotEqual(bits(a.parameters), bits(c.parameters))
        }
        let pytorch = try MLP(layerSizes: [6, 9, 4], loss: .crossEntropy, initialization: .pytorch, seed: 5)
        let he = try MLP(layerSizes: [6, 9, 4], loss: .crossEntropy, initialization: .heNormal, seed: 5)
        XCTAssertNotEqual(pytorch.parameters, he.parameters)
    }

    func testPyTorchInitialisationBoundsAndVariance() throws {
        let sizes = [1000, 300, 7]
        let model = try MLP(layerSizes: sizes, loss: .meanSquaredError, initialization: .pytorch, seed: 77)
        for layer in 1...2 {
            let bound = 1 / Double(sizes[layer - 1]).squareRoot()
            let weights = try model.weights(layer: layer).map(Double.init), biases = try model.bias(layer: layer).map(Double.init)
            XCTAssertTrue(weights.allSatisfy { abs($0) <= bound }, "W\(layer) outside ±\(bound)")
            XCTAssertTrue(biases.allSatisfy { abs($0) <= bound }, "b\(layer) outside ±\(bound)")
            XCTAssertTrue(biases.contains { $0 != 0 })
            // the values spread over the whole interval
            XCTAssertGreaterThan(weights.max()!, 0.9 * bound)
            XCTAssertLessThan(weights.min()!, -0.9 * bound)
        }
        // the large layer: 300 000 uniform values, variance bound²/3, mean 0
        let bound = 1 / 1000.0.squareRoot()
        let weights = try model.weights(layer: 1).map(Double.init)
        let mean = weights.reduce(0, +) / Double(weights.count)
        let variance = weights.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(weights.count - 1)
        XCTAssertEqual(mean, 0, accuracy: 0.01 * bound)
        XCTAssertEqual(variance, bound * bound / 3, accuracy: 0.02 * bound * bound / 3)
    }

    func testHeInitialisation() throws {
        let sizes = [800, 400, 5]
        let model = try MLP(layerSizes: sizes, loss: .crossEntropy, initialization: .heNormal, seed: 78)
        let weights = try model.weights(layer: 1).map(Double.init)
        let mean = weights.reduce(0, +) / Double(weights.count)
        let deviation = (weights.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(weights.count - 1)).squareRoot()
        let expected = (2 / 800.0).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.01 * expected)
        XCTAssertEqual(deviation, expected, accuracy: 0.02 * expected)
        // normal, not uniform: about 68.3% within one deviation
        let within = Double(weights.filter { abs($0) < expected }.count) / Double(weights.count)
        XCTAssertEqual(within, 0.6827, accuracy: 0.01)
        // the second layer uses its own fan-in
        let second = try model.weights(layer: 2).map(Double.init)
        let secondDeviation = (second.reduce(0) { $0 + $1 * $1 } / Double(second.count)).squareRoot()
        XCTAssertEqual(secondDeviation, (2 / 400.0).squareRoot(), accuracy: 0.1 * (2 / 400.0).squareRoot())
        for layer in 1...2 {
            XCTAssertTrue(try model.bias(layer: layer).allSatisfy { $0 == 0 }, "b\(layer) is not zero")
        }
    }

    func testInvalidLayerSizesThrow() {
        for sizes in [[], [3], [3, 0], [0, 3], [3, -2, 4]] {
            XCTAssertThrowsError(try MLP(layerSizes: sizes, loss: .meanSquaredError, seed: 0), "\(sizes)") { error in
                guard case .invalidLayerSizes(let reason)? = error as? ModelError else {
                    return XCTFail("expected ModelError.invalidLayerSizes for \(sizes), got \(error)")
                }
                let expected = sizes.count < 2 ? "need at least an input and an output size" : "every layer size must be between 1"
                XCTAssertTrue(reason.contains(expected), "\(sizes): \(reason)")
            }
        }
        XCTAssertThrowsError(try MLP(layerSizes: [2, 3], loss: .meanSquaredError, parameters: [1, 2, 3])) { error in
            XCTAssertEqual(error as? ModelError, .parameterCount(expected: 9, got: 3))
        }
    }

    func testLayerLayoutOffsetsAndFlops() throws {
        let layout = try LayerLayout(sizes: [784, 256, 128, 10])
        // W1 784·256 = 200704, b1 256, W2 256·128 = 32768, b2 128, W3 128·10 = 1280, b3 10
        XCTAssertEqual(layout.weightOffsets, [0, 200_960, 233_856])
        XCTAssertEqual(layout.biasOffsets, [200_704, 233_728, 235_136])
        XCTAssertEqual(layout.parameterCount, 235_146)
        XCTAssertEqual(layout.layerCount, 3)
        XCTAssertEqual(layout.inputs, 784)
        XCTAssertEqual(layout.outputs, 10)
        // 2·B·(3·234752 − 200704) = 2·64·503552
        XCTAssertEqual(layout.trainingFlops(batch: 64), 64_454_656)
        XCTAssertEqual(layout.trainingFlops(batch: 1), 1_007_104)
        // one layer: forward and weight gradient only, 2·B·2·in·out
        XCTAssertEqual(try LayerLayout(sizes: [5, 3]).trainingFlops(batch: 4), 240)

        let model = try MLP(layerSizes: [3, 2, 2], loss: .meanSquaredError, parameters: (1...14).map(Float.init))
        XCTAssertEqual(Array(try model.weights(layer: 1)), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Array(try model.bias(layer: 1)), [7, 8])
        XCTAssertEqual(Array(try model.weights(layer: 2)), [9, 10, 11, 12])
        XCTAssertEqual(Array(try model.bias(layer: 2)), [13, 14])
    }

    // MARK: - Data

    func assertDataError(_ body: @autoclosure () throws -> Any, _ expected: (ModelError) -> Bool, _ fragment: String,
                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let modelError = error as? ModelError, expected(modelError) else {
                return XCTFail("unexpected error \(error)", file: file, line: line)
            }
            XCTAssertTrue("\(error)".contains(fragment), "“\(error)” does not contain “\(fragment)”", file: file, line: line)
        }
    }

    static func isNonFinite(_ error: ModelError) -> Bool { if case .nonFinite = error { return true }; return false }
    static func isDataShape(_ error: ModelError) -> Bool { if case .dataShape = error { return true }; return false }

    func testDatasetValidation() throws {
        var random = TestData(seed: 3)
        var inputs = random.normal(12)
        let labels: [Float] = [0, 2, 1, 1]
        XCTAssertNoThrow(try Dataset(inputs: inputs, features: 3, targets: labels, encoding: .classIndices, targetWidth: 1))
        inputs[7] = .nan
        assertDataError(try Dataset(inputs: inputs, features: 3, targets: labels, encoding: .classIndices, targetWidth: 1),
                        Self.isNonFinite, "input row 3, column 2 is nan")
        inputs[7] = .infinity
        assertDataError(try Dataset(inputs: inputs, features: 3, targets: labels, encoding: .classIndices, targetWidth: 1),
                        Self.isNonFinite, "input row 3, column 2 is inf")
        inputs[7] = 0.5
        assertDataError(try Dataset(inputs: inputs, features: 3, targets: [0, 2, -1, 1], encoding: .classIndices, targetWidth: 1),
                        Self.isDataShape, "target row 3: class label -1.0 is not a non-negative integer")
        assertDataError(try Dataset(inputs: inputs, features: 3, targets: [0, 2.5, 1, 1], encoding: .classIndices, targetWidth: 1),
                        Self.isDataShape, "target row 2: class label 2.5 is not a non-negative integer")
        assertDataError(try Dataset(inputs: inputs, features: 3, targets: [0, 2, 1], encoding: .classIndices, targetWidth: 1),
                        Self.isDataShape, "4 input rows but 3 target rows")
        assertDataError(try Dataset(inputs: inputs, features: 5, targets: labels, encoding: .classIndices, targetWidth: 1),
                        Self.isDataShape, "12 input values do not make rows of 5 features")
        assertDataError(try Dataset(inputs: inputs, features: 3, targets: random.normal(6), encoding: .dense, targetWidth: 2),
                        Self.isDataShape, "4 input rows but 3 target rows")
        var dense = random.normal(8)
        dense[3] = .nan
        assertDataError(try Dataset(inputs: inputs, features: 3, targets: dense, encoding: .dense, targetWidth: 2),
                        Self.isNonFinite, "target row 2 is nan")
        // dense targets may be any finite value, negative or fractional
        XCTAssertNoThrow(try Dataset(inputs: inputs, features: 3, targets: [-1, 2.5, 0.3, -7, 1, 1, 0, 4],
                                     encoding: .dense, targetWidth: 2))
    }

    func testDatasetValidateForModel() throws {
        var random = TestData(seed: 4)
        let labels = try Dataset(inputs: random.normal(15), features: 5, targets: [0, 3, 1], encoding: .classIndices, targetWidth: 1)
        XCTAssertEqual(labels.labelClassCount, 4)
        XCTAssertNoThrow(try labels.validate(for: try LayerLayout(sizes: [5, 8, 4]), loss: .crossEntropy))
        assertDataError(try labels.validate(for: try LayerLayout(sizes: [5, 8, 3]), loss: .crossEntropy),
                        Self.isDataShape, "class label 3 is outside the model's 3 classes")
        assertDataError(try labels.validate(for: try LayerLayout(sizes: [4, 8, 4]), loss: .crossEntropy),
                        Self.isDataShape, "the data has 5 features but the model takes 4 inputs")
        let dense = try Dataset(inputs: random.normal(15), features: 5, targets: random.normal(6), encoding: .dense, targetWidth: 2)
        XCTAssertNoThrow(try dense.validate(for: try LayerLayout(sizes: [5, 2]), loss: .meanSquaredError))
        assertDataError(try dense.validate(for: try LayerLayout(sizes: [5, 3]), loss: .meanSquaredError),
                        Self.isDataShape, "the data has 2 target columns but the model has 3 outputs")
        // a session refuses data that does not fit it
        let session = try TrainingSession(model: try MLP(layerSizes: [5, 3], loss: .crossEntropy, seed: 1),
                                          backend: CPUBackend(), batchCapacity: 4)
        assertDataError(try session.upload(labels), Self.isDataShape, "class label 3 is outside")
    }

    // MARK: - Batch schedules

    func testInOrderSchedule() throws {
        let schedule = try BatchSchedule(rows: 23, batchSize: 5, shuffle: false, seed: 0)
        XCTAssertEqual(schedule.stepsPerEpoch, 5)
        let expected = [0..<5, 5..<10, 10..<15, 15..<20, 20..<23]
        for step in 0..<15 {
            let (epoch, positions) = schedule.batch(step: step)
            XCTAssertEqual(epoch, step / 5)
            XCTAssertEqual(positions, expected[step % 5], "step \(step)")
        }
        XCTAssertEqual(schedule.order(epoch: 0), Array(0..<23))
        XCTAssertEqual(schedule.order(epoch: 3), Array(0..<23))
        // every row once per epoch
        XCTAssertEqual((0..<5).flatMap { Array(schedule.batch(step: $0).positions) }, Array(0..<23))

        let exact = try BatchSchedule(rows: 20, batchSize: 5, shuffle: false, seed: 0)
        XCTAssertEqual(exact.stepsPerEpoch, 4)
        XCTAssertEqual(exact.batch(step: 4).positions, 0..<5)
        XCTAssertEqual(exact.batch(step: 4).epoch, 1)
        // a batch larger than the data is the whole data
        let whole = try BatchSchedule(rows: 7, batchSize: 100, shuffle: false, seed: 0)
        XCTAssertEqual(whole.batchSize, 7)
        XCTAssertEqual(whole.stepsPerEpoch, 1)
        XCTAssertEqual(whole.batch(step: 2).positions, 0..<7)

        XCTAssertThrowsError(try BatchSchedule(rows: 0, batchSize: 5, shuffle: false, seed: 0)) { error in
            XCTAssertEqual(error as? ModelError, .dataShape("the training data has no rows"))
        }
        XCTAssertThrowsError(try BatchSchedule(rows: 5, batchSize: 0, shuffle: false, seed: 0)) { error in
            XCTAssertEqual(error as? ModelError, .invalidHyperparameter("batch size must be at least 1, got 0"))
        }
    }

    func testShuffledSchedule() throws {
        let schedule = try BatchSchedule(rows: 23, batchSize: 5, shuffle: true, seed: 7)
        let orders = (0..<4).map { schedule.order(epoch: $0) }
        for (epoch, order) in orders.enumerated() {
            XCTAssertEqual(order.sorted(), Array(0..<23), "epoch \(epoch) is not a permutation")
            XCTAssertNotEqual(order, Array(0..<23), "epoch \(epoch) is not shuffled")
        }
        XCTAssertEqual(Set(orders).count, 4, "epochs share an order")
        let same = try BatchSchedule(rows: 23, batchSize: 5, shuffle: true, seed: 7)
        XCTAssertEqual((0..<4).map { same.order(epoch: $0) }, orders)
        let other = try BatchSchedule(rows: 23, batchSize: 5, shuffle: true, seed: 8)
        XCTAssertNotEqual(other.order(epoch: 0), orders[0])
        // positions are the same as in order: the permutation picks the rows
        XCTAssertEqual(schedule.batch(step: 9).positions, 20..<23)
        XCTAssertEqual(schedule.batch(step: 9).epoch, 1)
    }

    // MARK: - Evaluation and prediction

    func testEvaluateCrossEntropyAgainstReference() throws {
        let layers = [6, 10, 7, 4], rows = 23
        var random = TestData(seed: 51)
        let inputs = random.normal(rows * layers[0]), labels = random.labels(rows, classes: 4)
        let model = try MLP(layerSizes: layers, loss: .crossEntropy, seed: 52)
        let dataset = try Dataset(inputs: inputs, features: 6, targets: labels, encoding: .classIndices, targetWidth: 1)
        let parameters = model.parameters.map(Double.init), x = inputs.map(Double.init)
        let expectedLoss = DoubleReference.loss(.crossEntropy, layers: layers, parameters: parameters, inputs: x,
                                                targets: labels.map(Double.init), encoding: .classIndices, rows: rows)
        let z = DoubleReference.forward(layers: layers, parameters: parameters, inputs: x, rows: rows)
        var correct = 0
        for r in 0..<rows {
            let row = Array(z[(r * 4)..<((r + 1) * 4)])
            if row.firstIndex(of: row.max()!) == Int(labels[r]) { correct += 1 }
        }
        for useBLAS in [false, true] {
            let session = try TrainingSession(model: model, backend: CPUBackend(useBLAS: useBLAS), batchCapacity: 5)
            let (loss, accuracy) = try session.evaluate(try session.upload(dataset))
            XCTAssertEqual(loss, expectedLoss, accuracy: 1e-5 * expectedLoss)
            XCTAssertEqual(try XCTUnwrap(accuracy), Double(correct) / Double(rows), accuracy: 1e-12)
            XCTAssertEqual(session.step, 0, "evaluation is not a training step")
            XCTAssertEqual(try session.model().parameters, model.parameters)
        }
        // and with one-hot dense targets, the same loss and accuracy
        let oneHot = labels.flatMap { label in (0..<4).map { Float($0 == Int(label) ? 1 : 0) } }
        let denseData = try Dataset(inputs: inputs, features: 6, targets: oneHot, encoding: .dense, targetWidth: 4)
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 5)
        let (denseLoss, denseAccuracy) = try session.evaluate(try session.upload(denseData))
        XCTAssertEqual(denseLoss, expectedLoss, accuracy: 1e-5 * expectedLoss)
        XCTAssertEqual(try XCTUnwrap(denseAccuracy), Double(correct) / Double(rows), accuracy: 1e-12)
    }

    func testEvaluateMeanSquaredErrorAgainstReference() throws {
        let layers = [4, 9, 3], rows = 17
        var random = TestData(seed: 53)
        let inputs = random.normal(rows * 4), targets = random.normal(rows * 3)
        let model = try MLP(layerSizes: layers, loss: .meanSquaredError, seed: 54)
        let dataset = try Dataset(inputs: inputs, features: 4, targets: targets, encoding: .dense, targetWidth: 3)
        let expected = DoubleReference.loss(.meanSquaredError, layers: layers, parameters: model.parameters.map(Double.init),
                                            inputs: inputs.map(Double.init), targets: targets.map(Double.init),
                                            encoding: .dense, rows: rows)
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 4)
        let (loss, accuracy) = try session.evaluate(try session.upload(dataset))
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected)
        XCTAssertNil(accuracy)
    }

    func testPredictAgainstReference() throws {
        let layers = [5, 8, 6, 3], rows = 13
        var random = TestData(seed: 55)
        let inputs = random.normal(rows * 5)
        let model = try MLP(layerSizes: layers, loss: .meanSquaredError, seed: 56)
        let expected = DoubleReference.forward(layers: layers, parameters: model.parameters.map(Double.init),
                                               inputs: inputs.map(Double.init), rows: rows)
        for useBLAS in [false, true] {
            let session = try TrainingSession(model: model, backend: CPUBackend(useBLAS: useBLAS), batchCapacity: 4)
            let got = try session.predict(inputs)
            XCTAssertEqual(got.count, rows * 3)
            for (index, (value, reference)) in zip(got, expected).enumerated() {
                XCTAssertEqual(Double(value), reference, accuracy: 1e-5 * max(1, abs(reference)), "output \(index)")
            }
        }
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 4)
        XCTAssertEqual(try session.predict([]), [])
        XCTAssertThrowsError(try session.predict([1, 2, 3, 4, 5, 6])) { error in
            XCTAssertEqual(error as? ModelError, .dataShape("6 values do not make rows of 5 inputs"))
        }
    }
}
