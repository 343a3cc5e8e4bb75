import Foundation
import BackendTestSupport
import XCTest
@testable import MLPKit

/// Binary cross-entropy: the loss and gradient against a hand computation, stability at large
/// logits, per-label accuracy, and how targets are read for it.
final class LossTests: XCTestCase {
    /// Runs the CPU loss kernel on `logits` (rows × columns) and dense `targets`.
    func bce(_ logits: [Float], _ targets: [Float], rows: Int, columns: Int) throws -> (sum: Float, gradient: [Float]) {
        let backend = CPUBackend()
        func buffer(_ values: [Float]) throws -> CPUBuffer {
            let buffer = try backend.makeBuffer(count: values.count)
            try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
            return buffer
        }
        let output = try buffer(logits), target = try buffer(targets)
        let gradient = try backend.makeBuffer(count: logits.count), sum = try backend.makeBuffer(count: 1)
        try backend.lossGradient(.binaryCrossEntropy, targets: .dense, output: BufferSlice(output), target: BufferSlice(target),
                                 rows: rows, columns: columns, gradient: BufferSlice(gradient), lossSum: BufferSlice(sum))
        var g = [Float](repeating: .nan, count: logits.count), s: [Float] = [.nan]
        try g.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(gradient), count: logits.count, into: $0) }
        try s.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(sum), count: 1, into: $0) }
        return (s[0], g)
    }

    /// The gradient written over the logits (`Backend.lossGradient` allows it): every loss,
    /// encoding and weighting gives the bits of the gradient written apart, with and without the
    /// AVX-512 passes (cross-entropy's exponentials had gone into the gradient before the row's
    /// loss read z[label], so in place its loss came from e^(z − max) instead of z).
    func testLossInPlace() throws {
        try OperationChecks.checkInPlaceLoss(CPUBackend(), group: "CPU")
        // the scalar loops (no SIMD, no AVX-512) too, with the gradient a row before the logits
        // (overlapping all but their last row) and exactly over them
        var random = SeededGenerator(seed: 23)
        let rows = 9, columns = 5
        let logits = random.values(rows * columns).map { $0 * 3 }, labels = random.labels(rows, classes: columns)
        for loss in Loss.allCases {
            for (simd, avx512) in [(false, false), (true, false), (true, true)] {
                func run(shift: Int?) -> (sum: Float, gradient: [Float]) {
                    // the logits at row 1 of a buffer one row longer; the gradient apart (nil), or at row
                    // `shift` (1: in place)
                    var buffer = [Float](repeating: .nan, count: (rows + 1) * columns)
                    buffer.replaceSubrange(columns..<(rows + 1) * columns, with: logits)
                    var apart = [Float](repeating: .nan, count: rows * columns)
                    let sum = buffer.withUnsafeMutableBufferPointer { all in
                        apart.withUnsafeMutableBufferPointer { apart in
                            labels.withUnsafeBufferPointer { labels in
                                LossKernels.gradient(loss, targets: .classIndices, output: all.baseAddress! + columns,
                                                     target: labels.baseAddress!, rows: rows, columns: columns,
                                                     gradient: shift.map { all.baseAddress! + $0 * columns } ?? apart.baseAddress!,
                                                     simd: simd, avx512: avx512)
                            }
                        }
                    }
                    let gradient = shift.map { Array(buffer[$0 * columns..<($0 + rows) * columns]) } ?? apart
                    return (sum, gradient)
                }
                let expected = run(shift: nil)
                XCTAssert(expected.sum.isFinite, "\(loss)")
                for shift in [0, 1] {
                    let actual = run(shift: shift)
                    let name = "\(loss), simd \(simd), avx512 \(avx512), the gradient at row \(shift)"
                    XCTAssertEqual(actual.sum.bitPattern, expected.sum.bitPattern, "\(name): loss \(actual.sum) against \(expected.sum)")
                    XCTAssertEqual(actual.gradient.map(\.bitPattern), expected.gradient.map(\.bitPattern), "\(name): gradient")
                }
            }
        }
    }

    /// Two rows of three labels, worked by hand:
    /// row 1, z = (2, −1, 0), y = (1, 0, 1): −log σ(2) = log(1 + e⁻²), −log(1 − σ(−1)) = log(1 + e⁻¹),
    /// −log σ(0) = log 2; row 2, z = (−3, 0.5, 4), y = (0, 1, 0): log(1 + e⁻³), log(1 + e^−0.5),
    /// −log(1 − σ(4)) = 4 + log(1 + e⁻⁴). L = the sum / 2; dL/dz = (σ(z) − y)/2.
    func testLossAndGradientByHand() throws {
        let z: [Float] = [2, -1, 0, -3, 0.5, 4], y: [Float] = [1, 0, 1, 0, 1, 0]
        let (sum, gradient) = try bce(z, y, rows: 2, columns: 3)
        let terms = [log(1 + exp(-2.0)), log(1 + exp(-1.0)), log(2.0), log(1 + exp(-3.0)), log(1 + exp(-0.5)), 4 + log(1 + exp(-4.0))]
        let expected = terms.reduce(0, +)
        XCTAssertEqual(Double(sum), expected, accuracy: 1e-6 * expected)
        XCTAssertEqual(expected / 2, 2.83708, accuracy: 1e-5)   // the mean loss L, from a calculator
        let sigmoid = z.map { 1 / (1 + exp(-Double($0))) }
        for i in 0..<6 {
            XCTAssertEqual(Double(gradient[i]), (sigmoid[i] - Double(y[i])) / 2, accuracy: 1e-7, "element \(i)")
        }
        XCTAssertEqual(gradient[2], 0.25 * -1 + 0.0, accuracy: 1e-7)  // (σ(0) − 1)/2 = −0.25
    }

    /// No overflow or log(0) at large logits: the loss is |z| when the label is on the wrong
    /// side, about e^−|z| when it is right, and the gradient stays in [−1/B, 1/B].
    func testLargeLogitsAreStable() throws {
        let z: [Float] = [100, -100, 100, -100, 30, -30], y: [Float] = [0, 1, 1, 0, 0.25, 0.75]
        let (sum, gradient) = try bce(z, y, rows: 1, columns: 6)
        // 100 + 100 + ~0 + ~0 + (30 − 30·0.25) + (0 + 30·0.75) = 200 + 22.5 + 22.5
        XCTAssertEqual(Double(sum), 245, accuracy: 1e-3)
        XCTAssertEqual(gradient.map { Double($0) }, [1, -1, 0, 0, 0.75, -0.75].map { $0 }, accuracy: 1e-6)
        XCTAssertTrue(gradient.allSatisfy(\.isFinite))
    }

    /// The session's loss equals the Float64 definition, and eval's accuracy is the fraction of
    /// labels with σ(z) on the right side of 0.5.
    func testEvaluateLossAndPerLabelAccuracy() throws {
        let layers = [3, 5, 4], rows = 9
        var random = TestData(seed: 3)
        let inputs = random.normal(rows * 3), targets = random.binary(rows * 4)
        let model = try MLP(layerSizes: layers, activation: .tanh, loss: .binaryCrossEntropy, seed: 4)
        let dataset = try Dataset(inputs: inputs, features: 3, targets: targets, encoding: .dense, targetWidth: 4)
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 4)   // three batches
        let (loss, accuracy) = try session.evaluate(try session.upload(dataset))
        let expected = DoubleReference.loss(.binaryCrossEntropy, layers: layers, parameters: model.parameters.map(Double.init),
                                            inputs: inputs.map(Double.init), targets: targets.map(Double.init),
                                            encoding: .dense, rows: rows, activation: .tanh)
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected)
        let logits = try session.predict(inputs)
        let correct = zip(logits, targets).filter { ($0 > 0) == ($1 == 1) }.count
        XCTAssertEqual(try XCTUnwrap(accuracy), Double(correct) / Double(rows * 4))
        XCTAssertTrue(correct > 0 && correct < rows * 4, "a vacuous accuracy check")
    }

    /// Learning a multi-label problem: each label a different half-space.
    func testLearnsMultiLabelTargets() throws {
        var random = TestData(seed: 7)
        let rows = 256
        let inputs = random.normal(rows * 4)
        var targets: [Float] = []
        for r in 0..<rows {
            let x = inputs[(r * 4)..<(r * 4 + 4)].map { $0 }
            targets += [x[0] > 0, x[1] + x[2] > 0, x[3] - x[0] > 0].map { $0 ? 1 : 0 }
        }
        let dataset = try Dataset(inputs: inputs, features: 4, targets: targets, encoding: .dense, targetWidth: 3)
        let session = try TrainingSession(model: try MLP(layerSizes: [4, 24, 3], loss: .binaryCrossEntropy, seed: 8),
                                          backend: CPUBackend(), hyperparameters: AdamHyperparameters(learningRate: 0.01),
                                          batchCapacity: 32)
        let data = try session.upload(dataset)
        try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .epochs(30)))
        let (loss, accuracy) = try session.evaluate(data)
        XCTAssertLessThan(loss, 0.25)
        XCTAssertGreaterThan(try XCTUnwrap(accuracy), 0.95)
    }

    /// BCE only when asked; one 0/1 column gives one output, rows of labels one per column,
    /// and anything outside [0, 1] is refused naming the cell.
    func testDataLoaderForBinaryCrossEntropy() throws {
        let x = DataMatrix(rows: 3, columns: 2, values: [1, 2, 3, 4, 5, 6], isIntegral: true)
        let column = DataMatrix(rows: 3, columns: 1, values: [0, 1, 1], isIntegral: true)
        XCTAssertEqual(DataLoader.defaultLoss(for: column), .crossEntropy)   // unchanged
        let (binary, outputs) = try DataLoader.dataset(inputs: x, targets: column, loss: .binaryCrossEntropy)
        XCTAssertEqual(outputs, 1)
        XCTAssertEqual(binary.targetEncoding, .dense)
        let labels = DataMatrix(rows: 3, columns: 2, values: [0, 1, 1, 1, 0, 0], isIntegral: true)
        XCTAssertEqual(DataLoader.defaultLoss(for: labels), .meanSquaredError)   // not one-hot: unchanged
        XCTAssertEqual(try DataLoader.dataset(inputs: x, targets: labels, loss: .binaryCrossEntropy).outputs, 2)
        let bad = DataMatrix(rows: 3, columns: 2, values: [0, 1, 1, 2, 0, 0], isIntegral: true)
        XCTAssertThrowsError(try DataLoader.dataset(inputs: x, targets: bad, loss: .binaryCrossEntropy)) {
            XCTAssertTrue("\($0)".contains("row 2, column 2 is 2.0"), "\($0)")
        }
        XCTAssertThrowsError(try DataLoader.dataset(inputs: x, targets: labels, loss: .binaryCrossEntropy, outputs: 3))
        XCTAssertEqual(Loss(rawValue: "binary-cross-entropy"), .binaryCrossEntropy)
        XCTAssertTrue(Loss.binaryCrossEntropy.isClassification)
    }

    /// The checkpoint records the loss, and a model trained with it loads with it.
    func testCheckpointRecordsBinaryCrossEntropy() throws {
        let model = try MLP(layerSizes: [2, 3, 2], loss: .binaryCrossEntropy, seed: 1)
        let decoded = try Checkpoint.decode(try Checkpoint(model: model).encoded())
        XCTAssertEqual(decoded.loss, .binaryCrossEntropy)
        XCTAssertEqual(try decoded.model(), model)
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
