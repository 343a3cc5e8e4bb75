import XCTest
@testable import MLPKit

/// Binary cross-entropy with positive weights (`train --pos-weight`, PyTorch's `pos_weight`)
/// against a Float64 computation written here from the definition,
/// −[p·y·log σ(z) + (1 − y)·log(1 − σ(z))] and its derivative p·y·(σ − 1) + (1 − y)·σ, divided
/// by the batch's rows; weights of 1 give the plain loss; training steps use them and evaluation
/// does not.
final class PositiveWeightTests: XCTestCase {
    /// log σ(z), stably.
    func logSigmoid(_ z: Double) -> Double { z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)) }

    func reference(_ z: [Float], targets: [[Double]], weights: [Float], rowWeights: [Float]?, columns: Int)
        -> (gradient: [Double], loss: Double)
    {
        let rows = targets.count
        var gradient = [Double](repeating: 0, count: z.count), loss = 0.0
        for i in 0..<rows {
            let r = Double(rowWeights?[i] ?? 1)
            for j in 0..<columns {
                let (logit, y, p) = (Double(z[i * columns + j]), targets[i][j], Double(weights[j]))
                let sigma = 1 / (1 + exp(-logit))
                loss += r * -(p * y * logSigmoid(logit) + (1 - y) * logSigmoid(-logit))
                gradient[i * columns + j] = r * (p * y * (sigma - 1) + (1 - y) * sigma) / Double(rows)
            }
        }
        return (gradient, loss)
    }

    func testWeightedLossAgainstFloat64() throws {
        var generator = SeededGenerator(seed: 41)
        let backend = CPUBackend()
        for (rows, columns) in [(1, 1), (23, 4), (64, 10), (5, 300)] {
            let z = (0..<(rows * columns)).map { _ in Float(generator.nextNormal() * 4) }
            let weights = (0..<columns).map { _ in Float.random(in: 0...6, using: &generator) }
            let labels = (0..<rows).map { _ in Int(generator.next() % UInt64(columns)) }
            let oneHot = labels.map { label in (0..<columns).map { $0 == label ? 1.0 : 0.0 } }
            let soft = (0..<rows).map { _ in (0..<columns).map { _ in Double(Float.random(in: 0...1, using: &generator)) } }
            let rowWeights = (0..<rows).map { _ in Float.random(in: 0...3, using: &generator) }
            for (name, encoding, targets, dense) in [("indices", TargetEncoding.classIndices, labels.map(Float.init), oneHot),
                                                     ("soft", .dense, soft.flatMap { $0.map { Float($0) } }, soft)] {
                for rowWeighted in [false, true] {
                    let (gradient, sum) = try backend.lossGradient(.binaryCrossEntropy, encoding, output: z, targets: targets, rows: rows,
                                                                   columns: columns, classWeights: weights,
                                                                   rowWeights: rowWeighted ? rowWeights : nil)
                    let expected = reference(z, targets: dense, weights: weights, rowWeights: rowWeighted ? rowWeights : nil, columns: columns)
                    let label = "\(name) \(rows)×\(columns)\(rowWeighted ? " row-weighted" : "")"
                    for (actual, wanted) in zip(gradient, expected.gradient) {
                        XCTAssertEqual(Double(actual), wanted, accuracy: 2e-6 * max(1, abs(wanted)) / Double(rows), label)
                    }
                    XCTAssertEqual(Double(sum), expected.loss, accuracy: 1e-5 * max(1, abs(expected.loss)), label)
                }
                // weights of 1: the plain loss (another formula, so to rounding)
                let ones = try backend.lossGradient(.binaryCrossEntropy, encoding, output: z, targets: targets, rows: rows, columns: columns,
                                                    classWeights: [Float](repeating: 1, count: columns))
                let plain = try backend.lossGradient(.binaryCrossEntropy, encoding, output: z, targets: targets, rows: rows, columns: columns)
                for (a, b) in zip(ones.gradient, plain.gradient) { XCTAssertEqual(a, b, accuracy: 1e-6, name) }
                XCTAssertEqual(ones.sum, plain.sum, accuracy: 1e-5 * max(1, abs(plain.sum)), name)
            }
        }
        // MSE takes no output weights
        XCTAssertThrowsError(try backend.lossGradient(.meanSquaredError, .dense, output: [1, 2], targets: [0, 1], rows: 1, columns: 2,
                                                      classWeights: [1, 2]))
    }

    func testSessionWeighsTrainingNotEvaluation() throws {
        var generator = SeededGenerator(seed: 43)
        let rows = 48
        let inputs = (0..<(rows * 3)).map { _ in Float(generator.nextNormal()) }
        let labels = (0..<(rows * 2)).map { _ in Float(generator.next() % 5 == 0 ? 1 : 0) }
        let data = try Dataset(inputs: inputs, features: 3, targets: labels, encoding: .dense, targetWidth: 2)
        let model = try MLP(layerSizes: [3, 6, 2], loss: .binaryCrossEntropy, seed: 3)
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: rows)
        XCTAssertThrowsError(try session.setPositiveWeights([1, 2, 3]))
        XCTAssertThrowsError(try session.setPositiveWeights([1, .nan]))
        XCTAssertThrowsError(try session.setClassWeights([1, 2]))  // cross-entropy's, not this loss's
        let cross = try TrainingSession(model: try MLP(layerSizes: [3, 6, 2], loss: .crossEntropy, seed: 3), backend: CPUBackend(),
                                        batchCapacity: rows)
        XCTAssertThrowsError(try cross.setPositiveWeights([1, 2]))
        try session.setPositiveWeights([4, 0.5])
        XCTAssertEqual(session.positiveWeights, [4, 0.5])
        let uploaded = try session.upload(data)
        let plain = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: rows)
        XCTAssertEqual(try session.evaluate(uploaded).loss, try plain.evaluate(try plain.upload(data)).loss)
        // one full-batch step: the output biases move by about −lr·sign of the weighted gradient
        let configuration = TrainingConfiguration(batchSize: rows, length: .steps(1), shuffle: false, seed: 0)
        try session.train(on: uploaded, configuration: configuration)
        let outputs = try plain.predict(inputs)
        let expected = reference(outputs, targets: (0..<rows).map { i in (0..<2).map { Double(labels[i * 2 + $0]) } },
                                 weights: [4, 0.5], rowWeights: nil, columns: 2)
        let before = try model.bias(layer: 2), after = try session.model().bias(layer: 2)
        for j in 0..<2 {
            let g = (0..<rows).map { expected.gradient[$0 * 2 + j] }.reduce(0, +)
            XCTAssertGreaterThan(abs(g), 1e-4)
            XCTAssertEqual(Double(after[after.startIndex + j] - before[before.startIndex + j]), -1e-3 * (g > 0 ? 1 : -1), accuracy: 1e-5)
        }
    }
}
