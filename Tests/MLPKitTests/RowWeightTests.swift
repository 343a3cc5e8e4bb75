import XCTest
@testable import MLPKit

/// Row weights (`Dataset.weighted(by:)`, `train --weight-column`) against a Float64 computation
/// written here: each row's loss and gradient times its weight r_i (and for cross-entropy its class
/// weight too), the batch's rows still dividing the gradient. Weights of 1 give the unweighted
/// bits; weights equal to each row's class weight give class weights' bits; training steps use
/// them, gathered or in place, and evaluation does not.
final class RowWeightTests: XCTestCase {
    /// Σ_i r_i·c_i·ℓ_i and r_i·c_i·∂ℓ_i/∂z / B, ℓ the loss of dense target rows `targets`, c_i the
    /// row's class weight (Σ_j classWeights_j·y_j; 1 without class weights).
    func reference(_ loss: Loss, _ z: [Float], targets: [[Double]], rowWeights: [Float], classWeights: [Float]?,
                   columns: Int) -> (gradient: [Double], loss: Double) {
        let rows = targets.count
        var gradient = [Double](repeating: 0, count: z.count), total = 0.0
        for i in 0..<rows {
            let row = (0..<columns).map { Double(z[i * columns + $0]) }
            let y = targets[i]
            let c = classWeights.map { zip($0, y).map { Double($0) * $1 }.reduce(0, +) } ?? 1
            let w = Double(rowWeights[i]) * c
            var rowLoss = 0.0
            switch loss {
            case .meanSquaredError:
                for j in 0..<columns {
                    rowLoss += 0.5 * (row[j] - y[j]) * (row[j] - y[j])
                    gradient[i * columns + j] = w * (row[j] - y[j]) / Double(rows)
                }
            case .binaryCrossEntropy:
                for j in 0..<columns {
                    rowLoss += max(row[j], 0) - row[j] * y[j] + log1p(exp(-abs(row[j])))
                    gradient[i * columns + j] = w * (1 / (1 + exp(-row[j])) - y[j]) / Double(rows)
                }
            case .crossEntropy:
                let largest = row.max()!
                let logSumExp = largest + log(row.map { exp($0 - largest) }.reduce(0, +))
                let targetSum = y.reduce(0, +)
                for j in 0..<columns {
                    rowLoss += y[j] * (logSumExp - row[j])
                    gradient[i * columns + j] = w * (targetSum * exp(row[j] - logSumExp) - y[j]) / Double(rows)
                }
            }
            total += w * rowLoss
        }
        return (gradient, total)
    }

    func testWeightedLossesAgainstFloat64() throws {
        var generator = SeededGenerator(seed: 23)
        let backend = CPUBackend()
        for (rows, columns) in [(1, 3), (23, 4), (64, 10), (5, 300), (130, 1)] {
            let z = (0..<(rows * columns)).map { _ in Float(generator.nextNormal() * 3) }
            // weights from 0 to 4, every fifth row 0
            let rowWeights = (0..<rows).map { $0 % 5 == 3 ? 0 : Float.random(in: 0.05...4, using: &generator) }
            let labels = (0..<rows).map { _ in Int(generator.next() % UInt64(columns)) }
            let oneHot = labels.map { label in (0..<columns).map { $0 == label ? 1.0 : 0.0 } }
            let values = (0..<rows).map { _ in (0..<columns).map { _ in Double(Float(generator.nextNormal())) } }
            let soft = (0..<rows).map { _ in (0..<columns).map { _ in Double(Float.random(in: 0...1, using: &generator)) } }
            let classWeights = (0..<columns).map { _ in Float.random(in: 0.25...4, using: &generator) }
            let cases: [(Loss, TargetEncoding, [[Double]], [Float]?)] = [
                (.meanSquaredError, .dense, values, nil),
                (.meanSquaredError, .classIndices, oneHot, nil),
                (.binaryCrossEntropy, .dense, soft, nil),
                (.binaryCrossEntropy, .classIndices, oneHot, nil),
                (.crossEntropy, .classIndices, oneHot, nil),
                (.crossEntropy, .dense, soft, nil),
                (.crossEntropy, .classIndices, oneHot, classWeights),
                (.crossEntropy, .dense, oneHot, classWeights),
            ]
            for (loss, encoding, dense, weights) in cases {
                let name = "\(loss.rawValue) \(encoding) \(weights == nil ? "" : "class-weighted ")\(rows)×\(columns)"
                let targets = encoding == .classIndices ? labels.map(Float.init) : dense.flatMap { $0.map { Float($0) } }
                let (gradient, sum) = try backend.lossGradient(loss, encoding, output: z, targets: targets, rows: rows, columns: columns,
                                                               classWeights: weights, rowWeights: rowWeights)
                let expected = reference(loss, z, targets: dense, rowWeights: rowWeights, classWeights: weights, columns: columns)
                for (index, (actual, wanted)) in zip(gradient, expected.gradient).enumerated() {
                    XCTAssertEqual(Double(actual), wanted, accuracy: 2e-6 * max(1, abs(wanted)), "\(name) [\(index)]")
                    // a row of weight 0 has no gradient
                    if rowWeights[index / columns] == 0 { XCTAssertEqual(actual, 0, name) }
                }
                XCTAssertEqual(Double(sum), expected.loss, accuracy: 1e-5 * max(1, abs(expected.loss)), name)
                // weights of 1: the unweighted gradient's bits, and its loss
                let ones = try backend.lossGradient(loss, encoding, output: z, targets: targets, rows: rows, columns: columns,
                                                    classWeights: weights, rowWeights: [Float](repeating: 1, count: rows))
                let plain = try backend.lossGradient(loss, encoding, output: z, targets: targets, rows: rows, columns: columns,
                                                     classWeights: weights)
                XCTAssertEqual(ones.gradient.map(\.bitPattern), plain.gradient.map(\.bitPattern), name)
                XCTAssertEqual(Double(ones.sum), Double(plain.sum), accuracy: 1e-6 * max(1, abs(Double(plain.sum))), name)
            }
        }
        // one weight per row
        XCTAssertThrowsError(try CPUBackend().lossGradient(.meanSquaredError, targets: .dense, output: BufferSlice(try backend.makeBuffer(count: 4)),
                                                          target: BufferSlice(try backend.makeBuffer(count: 4)), rows: 2, columns: 2,
                                                          gradient: BufferSlice(try backend.makeBuffer(count: 4)),
                                                          lossSum: BufferSlice(try backend.makeBuffer(count: 1)), classWeights: nil,
                                                          rowWeights: BufferSlice(try backend.makeBuffer(count: 1))))
    }

    func testDatasetWeightsAreCheckedAndFollowTheirRows() throws {
        let data = try Dataset(inputs: [1, 2, 3, 4, 5, 6], features: 1, targets: [0, 1, 0, 1, 0, 1], encoding: .classIndices, targetWidth: 1)
        XCTAssertNil(data.rowWeights)
        let weighted = try data.weighted(by: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try weighted.subset([5, 0, 2]).rowWeights, [6, 1, 3])
        let (training, validation) = try weighted.split(validationFraction: 0.5, seed: 3)
        XCTAssertEqual(training.rowWeights, training.inputs)  // each row's weight is its input here
        XCTAssertEqual(validation.rowWeights, validation.inputs)
        XCTAssertNil(try weighted.weighted(by: nil).rowWeights)
        XCTAssertEqual(try data.weighted(by: [0, 0, 0, 0, 0, 0.5]).rowWeights?.last, 0.5)
        for (weights, message) in [([Float](repeating: 1, count: 5), "5 row weights for 6 rows"),
                                   ([1, 1, .nan, 1, 1, 1], "row 3's weight is nan"),
                                   ([1, 1, 1, 1, .infinity, 1], "row 5's weight is inf"),
                                   ([1, -2, 1, 1, 1, 1], "row 2's weight is -2; weights must not be negative"),
                                   ([0, 0, 0, 0, 0, 0], "every row's weight is 0")] {
            XCTAssertThrowsError(try data.weighted(by: weights)) { error in
                XCTAssertEqual("\(error)", message)
            }
        }
    }

    /// Cross-entropy with each row weighted by its class's weight trains bit for bit as class
    /// weights do (shuffled batches, so gathered weights, and the last partial batch), and a
    /// consecutive run (in-place weights) too; evaluation is unweighted.
    func testRowWeightsTrainAsTheSameClassWeights() throws {
        var generator = SeededGenerator(seed: 29)
        let rows = 70
        let inputs = (0..<(rows * 4)).map { _ in Float(generator.nextNormal()) }
        let labels = (0..<rows).map { _ in Float(generator.next() % 3) }
        let data = try Dataset(inputs: inputs, features: 4, targets: labels, encoding: .classIndices, targetWidth: 1)
        let classWeights: [Float] = [0.5, 2, 1.25]
        let model = try MLP(layerSizes: [4, 8, 6, 3], loss: .crossEntropy, seed: 5)
        for shuffle in [true, false] {
            let configuration = TrainingConfiguration(batchSize: 16, length: .epochs(3), shuffle: shuffle, seed: 1)
            let byClass = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 16)
            try byClass.setClassWeights(classWeights)
            try byClass.train(on: try byClass.upload(data), configuration: configuration)
            let byRow = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 16)
            let weighted = try data.weighted(by: labels.map { classWeights[Int($0)] })
            let uploaded = try byRow.upload(weighted)
            try byRow.train(on: uploaded, configuration: configuration)
            XCTAssertEqual(try byRow.model().parameters.map(\.bitPattern), try byClass.model().parameters.map(\.bitPattern), "shuffle \(shuffle)")
            let plain = try TrainingSession(model: try byRow.model(), backend: CPUBackend(), batchCapacity: 16)
            XCTAssertEqual(try byRow.evaluate(uploaded).loss, try plain.evaluate(try plain.upload(data)).loss)
        }
    }

    /// Every loss: weights of 1 train bit for bit as no weights; weights of 0 on some rows give
    /// another model; whole-number weights train a full batch as the rows written that many
    /// times (to Adam's ε: the batch's rows still divide the gradient, and Adam's step does not
    /// depend on the gradient's scale).
    func testWholeWeightsTrainAsRepeatedRows() throws {
        var generator = SeededGenerator(seed: 31)
        let rows = 24
        let inputs = (0..<(rows * 3)).map { _ in Float(generator.nextNormal()) }
        let repeats = (0..<rows).map { _ in Int(generator.next() % 3) + 1 }
        let labels = (0..<rows).map { _ in Float(generator.next() % 2) }
        let values = (0..<(rows * 2)).map { _ in Float(generator.nextNormal()) }
        for loss in [Loss.meanSquaredError, .crossEntropy, .binaryCrossEntropy] {
            let (targets, width, encoding): ([Float], Int, TargetEncoding) = switch loss {
            case .meanSquaredError: (values, 2, .dense)
            case .crossEntropy: (labels, 1, .classIndices)
            case .binaryCrossEntropy: (values.map { $0 > 0 ? 1 : 0 }, 2, .dense)
            }
            let data = try Dataset(inputs: inputs, features: 3, targets: targets, encoding: encoding, targetWidth: width)
            let model = try MLP(layerSizes: [3, 6, 2], loss: loss, seed: 7)
            func trained(_ data: Dataset) throws -> [Float] {
                let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: data.rows)
                try session.train(on: try session.upload(data),
                                  configuration: TrainingConfiguration(batchSize: data.rows, length: .steps(20), shuffle: false, seed: 0))
                return try session.model().parameters
            }
            let plain = try trained(data)
            XCTAssertEqual(try trained(data.weighted(by: [Float](repeating: 1, count: rows))).map(\.bitPattern), plain.map(\.bitPattern),
                           loss.rawValue)
            XCTAssertNotEqual(try trained(data.weighted(by: (0..<rows).map { $0 % 4 == 0 ? 0 : 1 })), plain, loss.rawValue)
            let repeated = try data.subset((0..<rows).flatMap { Array(repeating: $0, count: repeats[$0]) })
            let weighted = try trained(data.weighted(by: repeats.map(Float.init)))
            for (a, b) in zip(weighted, try trained(repeated)) {
                XCTAssertEqual(a, b, accuracy: 2e-5, loss.rawValue)
            }
        }
    }
}
