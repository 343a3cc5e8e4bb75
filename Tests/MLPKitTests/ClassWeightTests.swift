import XCTest
@testable import MLPKit

/// Cross-entropy with class weights against a Float64 computation written here: each row's loss
/// w·(log Σ e^z − z_label) and gradient w·(softmax − onehot)/B, w the row's class weight (for a
/// dense row Σ_j w_j·y_j); weights of 1 give the unweighted bits; training steps use them and
/// evaluation does not.
final class ClassWeightTests: XCTestCase {
    func reference(_ z: [Float], targets: [[Double]], weights: [Double], columns: Int) -> (gradient: [Double], loss: Double) {
        let rows = targets.count
        var gradient = [Double](repeating: 0, count: z.count), loss = 0.0
        for i in 0..<rows {
            let row = (0..<columns).map { Double(z[i * columns + $0]) }
            let largest = row.max()!
            let sum = row.map { exp($0 - largest) }.reduce(0, +)
            let logSumExp = largest + log(sum)
            let w = zip(weights, targets[i]).map { $0 * $1 }.reduce(0, +)
            let targetSum = targets[i].reduce(0, +)
            for j in 0..<columns {
                loss += w * targets[i][j] * (logSumExp - row[j])
                gradient[i * columns + j] = w * (targetSum * exp(row[j] - logSumExp) - targets[i][j]) / Double(rows)
            }
        }
        return (gradient, loss)
    }

    func testWeightedLossAndGradientAgainstFloat64() throws {
        var generator = SeededGenerator(seed: 17)
        let backend = CPUBackend()
        for (rows, columns) in [(1, 3), (23, 4), (64, 10), (5, 300)] {
            let z = (0..<(rows * columns)).map { _ in Float(generator.nextNormal() * 3) }
            let weights = (0..<columns).map { _ in Float.random(in: 0.25...4, using: &generator) }
            let labels = (0..<rows).map { _ in Int(generator.next() % UInt64(columns)) }
            // class indices, one-hot rows, and probability rows
            let oneHot = labels.map { label in (0..<columns).map { $0 == label ? 1.0 : 0.0 } }
            let soft: [[Double]] = (0..<rows).map { _ in
                let raw = (0..<columns).map { _ in Double(Float.random(in: 0.01...1, using: &generator)) }
                let total = raw.reduce(0, +)
                return raw.map { Double(Float($0 / total)) }
            }
            let cases: [(String, TargetEncoding, [Float], [[Double]])] = [
                ("indices", .classIndices, labels.map(Float.init), oneHot),
                ("one-hot", .dense, oneHot.flatMap { $0.map(Float.init) }, oneHot),
                ("probabilities", .dense, soft.flatMap { $0.map { Float($0) } }, soft),
            ]
            for (name, encoding, targets, dense) in cases {
                let (gradient, sum) = try backend.lossGradient(.crossEntropy, encoding, output: z, targets: targets, rows: rows,
                                                               columns: columns, classWeights: weights)
                let expected = reference(z, targets: dense, weights: weights.map(Double.init), columns: columns)
                for (actual, wanted) in zip(gradient, expected.gradient) {
                    XCTAssertEqual(Double(actual), wanted, accuracy: 2e-6 * max(1, abs(wanted)), "\(name) \(rows)×\(columns)")
                }
                XCTAssertEqual(Double(sum), expected.loss, accuracy: 1e-5 * max(1, abs(expected.loss)), "\(name) \(rows)×\(columns)")
                // weights of 1: the unweighted bits, for class indices and one-hot rows
                if name != "probabilities" {
                    let ones = try backend.lossGradient(.crossEntropy, encoding, output: z, targets: targets, rows: rows, columns: columns,
                                                        classWeights: [Float](repeating: 1, count: columns))
                    let plain = try backend.lossGradient(.crossEntropy, encoding, output: z, targets: targets, rows: rows, columns: columns)
                    XCTAssertEqual(ones.gradient.map(\.bitPattern), plain.gradient.map(\.bitPattern), name)
                    XCTAssertEqual(ones.sum.bitPattern, plain.sum.bitPattern, name)
                }
            }
        }
        // other losses refuse them
        XCTAssertThrowsError(try backend.lossGradient(.meanSquaredError, .dense, output: [1, 2], targets: [0, 1], rows: 1, columns: 2,
                                                      classWeights: [1, 2]))
    }

    func testSessionWeighsTrainingNotEvaluation() throws {
        var generator = SeededGenerator(seed: 19)
        let rows = 40
        let inputs = (0..<(rows * 3)).map { _ in Float(generator.nextNormal()) }
        let labels = (0..<rows).map { _ in Float(generator.next() % 3) }
        let data = try Dataset(inputs: inputs, features: 3, targets: labels, encoding: .classIndices, targetWidth: 1)
        let model = try MLP(layerSizes: [3, 5, 3], loss: .crossEntropy, seed: 2)
        let weights: [Float] = [0.5, 2, 1.25]
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: rows)
        XCTAssertThrowsError(try session.setClassWeights([1, 2]))
        XCTAssertThrowsError(try session.setClassWeights([1, -2, 1]))
        try session.setClassWeights(weights)
        XCTAssertEqual(session.classWeights, weights)
        let uploaded = try session.upload(data)
        // evaluation: the plain loss
        let plain = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: rows)
        XCTAssertEqual(try session.evaluate(uploaded).loss, try plain.evaluate(try plain.upload(data)).loss)
        // one full-batch step, weighted and not: they differ, and Adam's first step moves each
        // parameter by about lr·sign(g), so the output biases follow the weighted gradient's signs
        let configuration = TrainingConfiguration(batchSize: rows, length: .steps(1), shuffle: false, seed: 0)
        try session.train(on: uploaded, configuration: configuration)
        try plain.train(on: try plain.upload(data), configuration: configuration)
        XCTAssertNotEqual(try session.model().parameters, try plain.model().parameters)
        // the weighted output-layer bias gradient, by hand from the model before the step: Σ_i w_i·(softmax − onehot)/B
        let fresh = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: rows)
        let outputs = try fresh.predict(inputs)
        let expected = reference(outputs, targets: labels.map { label in (0..<3).map { $0 == Int(label) ? 1.0 : 0.0 } },
                                 weights: weights.map(Double.init), columns: 3)
        var biasGradient = [Double](repeating: 0, count: 3)
        for i in 0..<rows { for j in 0..<3 { biasGradient[j] += expected.gradient[i * 3 + j] } }
        // Adam's first step: θ − lr·g/(|g| + ε') ≈ θ − lr·sign(g)
        let before = try model.bias(layer: 2), after = try session.model().bias(layer: 2)
        for j in 0..<3 where abs(biasGradient[j]) > 1e-4 {
            XCTAssertEqual(Double(after[after.startIndex + j] - before[before.startIndex + j]), -1e-3 * (biasGradient[j] > 0 ? 1 : -1),
                           accuracy: 1e-5, "bias \(j)")
        }
    }
}
