import Foundation
import XCTest
@testable import MLPKit

/// The hidden activations: every parameter's gradient against central finite differences for
/// each activation with each loss, the forward pass against Float64, the checkpoint round trip,
/// and a backend that implements only the seed's operations refusing what it lacks.
final class ActivationTests: XCTestCase {
    static let functions: [ActivationFunction] = [.relu, .leakyReLU(slope: 0.01), .leakyReLU(slope: 0.2), .tanh, .sigmoid, .gelu]

    func testGradientsEveryActivationWithMeanSquaredError() throws {
        for (index, function) in Self.functions.enumerated() {
            try checkGradients(layers: [5, 8, 6, 3], loss: .meanSquaredError, encoding: .dense, rows: 6,
                               seed: 10 + UInt64(index), activation: function)
        }
    }

    func testGradientsEveryActivationWithCrossEntropy() throws {
        for (index, function) in Self.functions.enumerated() {
            try checkGradients(layers: [4, 9, 7, 4], loss: .crossEntropy, encoding: .classIndices, rows: 7,
                               seed: 20 + UInt64(index), activation: function)
            try checkGradients(layers: [6, 5, 3], loss: .crossEntropy, encoding: .dense, rows: 5,
                               seed: 30 + UInt64(index), activation: function)
        }
    }

    func testGradientsEveryActivationWithBinaryCrossEntropy() throws {
        for (index, function) in Self.functions.enumerated() {
            // multi-label 0/1 rows, one 0/1 column, and soft targets, at depths 3, 2 and 4
            try checkGradients(layers: [5, 8, 6, 3], loss: .binaryCrossEntropy, encoding: .dense, rows: 6,
                               seed: 40 + UInt64(index), activation: function)
            try checkGradients(layers: [4, 7, 1], loss: .binaryCrossEntropy, encoding: .dense, rows: 8,
                               seed: 50 + UInt64(index), activation: function)
            try checkGradients(layers: [3, 6, 5, 4, 2], loss: .binaryCrossEntropy, encoding: .dense, rows: 5,
                               seed: 60 + UInt64(index), activation: function, softTargets: true)
        }
    }

    /// The single-layer case has no hidden activation; deeper nets with GELU use the kept Z.
    func testGradientsDeepGELUAndTanh() throws {
        try checkGradients(layers: [4, 8, 6, 5, 3], loss: .meanSquaredError, encoding: .dense, rows: 7, seed: 70, activation: .gelu)
        try checkGradients(layers: [4, 8, 6, 5, 3], loss: .crossEntropy, encoding: .classIndices, rows: 7, seed: 71, activation: .tanh)
    }

    /// Z_L from the session against the Float64 forward pass, with both matrix products.
    func testForwardPassAgainstFloat64() throws {
        let layers = [7, 16, 12, 5], rows = 9
        var data = TestData(seed: 80)
        let inputs = data.normal(rows * layers[0])
        for function in Self.functions {
            let model = try MLP(layerSizes: layers, activation: function, loss: .meanSquaredError, seed: 81)
            let expected = DoubleReference.forward(layers: layers, parameters: model.parameters.map(Double.init),
                                                   inputs: inputs.map(Double.init), rows: rows, activation: function)
            for useBLAS in [false, true] {
                let session = try TrainingSession(model: model, backend: CPUBackend(useBLAS: useBLAS), batchCapacity: 4)
                let outputs = try session.predict(inputs)
                XCTAssertEqual(outputs.count, rows * layers[layers.count - 1])
                XCTAssertEqual(expected.count, outputs.count)
                for (got, want) in zip(outputs, expected) {
                    XCTAssertEqual(Double(got), want, accuracy: 1e-5 * max(1, abs(want)), "\(function) BLAS \(useBLAS)")
                }
            }
        }
    }

    /// f and f' at a few points, against their definitions.
    func testFunctionValuesAndDerivatives() {
        let points: [Float] = [-3, -0.5, -1e-3, 0, 1e-3, 0.25, 2, 7]
        for function in Self.functions {
            for z in points {
                let value = function.apply(z)
                XCTAssertEqual(Double(value), DoubleReference.activate(Double(z), function), accuracy: 1e-6, "\(function)(\(z))")
                // the derivative, from A (or Z for GELU), against a central difference in Float64
                let h = 1e-5
                let numeric = (DoubleReference.activate(Double(z) + h, function) - DoubleReference.activate(Double(z) - h, function)) / (2 * h)
                let source = function.derivativeNeedsPreActivation ? z : value
                if z != 0 {
                    XCTAssertEqual(Double(function.derivative(from: source)), numeric, accuracy: 1e-4, "\(function)'(\(z))")
                }
            }
        }
        // at 0: ReLU's derivative is 0, leaky ReLU's its slope (PyTorch's convention)
        XCTAssertEqual(ActivationFunction.relu.derivative(from: 0), 0)
        XCTAssertEqual(ActivationFunction.leakyReLU(slope: 0.2).derivative(from: 0), 0.2)
        // σ does not overflow
        XCTAssertEqual(ActivationFunction.sigmoid.apply(-200), 0)
        XCTAssertEqual(ActivationFunction.sigmoid.apply(200), 1)
        XCTAssertThrowsError(try ActivationFunction.leakyReLU(slope: -0.1).validate())
        XCTAssertThrowsError(try MLP(layerSizes: [2, 3, 1], activation: .leakyReLU(slope: .nan), loss: .meanSquaredError))
    }

    /// The activation (and leaky ReLU's slope) is recorded in the metadata and restored.
    func testCheckpointRecordsTheActivation() throws {
        for function in Self.functions {
            let model = try MLP(layerSizes: [3, 4, 2], activation: function, loss: .crossEntropy, seed: 1)
            let bytes = try Checkpoint(model: model).encoded()
            let header = String(decoding: bytes[8..<min(bytes.count, 2000)], as: UTF8.self)
            XCTAssertTrue(header.contains("\"activation\":\"\(function.kind.rawValue)\""), header)
            XCTAssertEqual(header.contains("activation.slope"), function.leakySlope != nil)
            let decoded = try Checkpoint.decode(bytes)
            XCTAssertEqual(decoded.activation, function)
            XCTAssertEqual(try decoded.model(), model)
        }
        // a bad slope or name is an error naming it
        let model = try MLP(layerSizes: [3, 4, 2], activation: .leakyReLU(slope: 0.5), loss: .crossEntropy, seed: 1)
        let bytes = try Checkpoint(model: model).encoded()
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        let text = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        for (from, to, expected) in [("\"activation.slope\":\"0.5\"", "\"activation.slope\":\"-1.0\"", "activation.slope"),
                                     ("\"activation\":\"leaky-relu\"", "\"activation\":\"swish-relu\"", "swish-relu")] {
            XCTAssertTrue(text.contains(from), text)
            let header = Array(text.replacingOccurrences(of: from, with: to).utf8)
            let file = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + bytes[(8 + headerLength)...]
            XCTAssertThrowsError(try Checkpoint.decode(file)) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
        }
    }

    /// Training with each activation lowers the loss on a learnable problem.
    func testEveryActivationLearns() throws {
        var random = TestData(seed: 90)
        let rows = 160
        let inputs = random.normal(rows * 3)
        let labels = (0..<rows).map { r -> Float in inputs[r * 3] - inputs[r * 3 + 2] > 0 ? 1 : 0 }
        let dataset = try Dataset(inputs: inputs, features: 3, targets: labels, encoding: .classIndices, targetWidth: 1)
        for function in Self.functions {
            let model = try MLP(layerSizes: [3, 16, 2], activation: function, loss: .crossEntropy, seed: 91)
            let session = try TrainingSession(model: model, backend: CPUBackend(),
                                              hyperparameters: AdamHyperparameters(learningRate: 0.02), batchCapacity: 32)
            let data = try session.upload(dataset)
            let before = try session.evaluate(data).loss
            try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .epochs(15)))
            let (after, accuracy) = try session.evaluate(data)
            XCTAssertLessThan(after, 0.5 * before, "\(function)")
            XCTAssertGreaterThan(try XCTUnwrap(accuracy), 0.9, "\(function)")
        }
    }
}

/// A backend with only the seed's operations (the CPU's, forwarded), like a GPU backend that has
/// not implemented the features beyond the seed: the protocol's defaults must refuse clearly.
final class SeedOnlyBackend: Backend {
    typealias Buffer = CPUBuffer
    let cpu = CPUBackend(useBLAS: false)
    var summary: String { "seed only" }

    func makeBuffer(count: Int) throws -> CPUBuffer { try cpu.makeBuffer(count: count) }
    func upload(_ values: UnsafeBufferPointer<Float>, to destination: BufferSlice<CPUBuffer>) throws {
        try cpu.upload(values, to: destination)
    }
    func download(_ source: BufferSlice<CPUBuffer>, count: Int, into values: UnsafeMutableBufferPointer<Float>) throws {
        try cpu.download(source, count: count, into: values)
    }
    func matrixProduct(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: BufferSlice<CPUBuffer>, b: BufferSlice<CPUBuffer>,
                       c: BufferSlice<CPUBuffer>, epilogue: ProductEpilogue<CPUBuffer>) throws {
        try cpu.matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: epilogue)
    }
    func columnSums(_ matrix: BufferSlice<CPUBuffer>, rows: Int, columns: Int, into sums: BufferSlice<CPUBuffer>) throws {
        try cpu.columnSums(matrix, rows: rows, columns: columns, into: sums)
    }
    func lossGradient(_ loss: Loss, targets: TargetEncoding, output: BufferSlice<CPUBuffer>, target: BufferSlice<CPUBuffer>,
                      rows: Int, columns: Int, gradient: BufferSlice<CPUBuffer>, lossSum: BufferSlice<CPUBuffer>,
                      classWeights: BufferSlice<CPUBuffer>?, rowWeights: BufferSlice<CPUBuffer>?) throws {
        try cpu.lossGradient(loss, targets: targets, output: output, target: target, rows: rows, columns: columns,
                             gradient: gradient, lossSum: lossSum, classWeights: classWeights, rowWeights: rowWeights)
    }
    func gatherRows(_ source: BufferSlice<CPUBuffer>, width: Int, indices: BufferSlice<CPUBuffer>, count: Int,
                    into destination: BufferSlice<CPUBuffer>) throws {
        try cpu.gatherRows(source, width: width, indices: indices, count: count, into: destination)
    }
    func adamUpdate(parameters: BufferSlice<CPUBuffer>, gradients: BufferSlice<CPUBuffer>, firstMoment: BufferSlice<CPUBuffer>,
                    secondMoment: BufferSlice<CPUBuffer>, count: Int, hyperparameters: AdamHyperparameters, step: Int) throws {
        try cpu.adamUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                           count: count, hyperparameters: hyperparameters, step: step)
    }
    func synchronize() throws {}
}

final class SeedOnlyBackendTests: XCTestCase {
    /// Each feature beyond the seed is refused when the session is made, in one clear sentence.
    func testUnsupportedFeaturesAreRefused() throws {
        let cases: [(ActivationFunction, Loss, AdamHyperparameters, String)] = [
            (.tanh, .crossEntropy, AdamHyperparameters(), "the tanh activation"),
            (.sigmoid, .meanSquaredError, AdamHyperparameters(), "the sigmoid activation"),
            (.gelu, .crossEntropy, AdamHyperparameters(), "the gelu activation"),
            (.leakyReLU(slope: 0.01), .crossEntropy, AdamHyperparameters(), "the leaky-relu activation"),
            (.relu, .binaryCrossEntropy, AdamHyperparameters(), "the binary-cross-entropy loss"),
            (.relu, .crossEntropy, AdamHyperparameters(weightDecay: 0.01), "weight decay (AdamW)"),
            (.relu, .crossEntropy, AdamHyperparameters(clipNorm: 1), "gradient clipping"),
        ]
        for (function, loss, hyperparameters, feature) in cases {
            let model = try MLP(layerSizes: [4, 5, 3], activation: function, loss: loss, seed: 1)
            XCTAssertThrowsError(try TrainingSession(model: model, backend: SeedOnlyBackend(), hyperparameters: hyperparameters,
                                                     batchCapacity: 4)) { error in
                XCTAssertEqual("\(error)", "the SeedOnly backend does not support \(feature) yet")
                XCTAssertEqual(error as? BackendError, .unsupported(backend: "SeedOnly", feature: feature))
            }
            // the CPU backend runs all of them
            XCTAssertNoThrow(try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: hyperparameters, batchCapacity: 4))
        }
    }

    /// ReLU with MSE or cross-entropy and plain Adam runs through the defaults exactly as on the CPU.
    func testSeedFeaturesRunUnchanged() throws {
        for loss in [Loss.crossEntropy, .meanSquaredError] {
            var random = TestData(seed: 6)
            let inputs = random.normal(12 * 4)
            let targets = loss == .crossEntropy ? random.labels(12, classes: 3) : random.normal(12 * 3)
            let data = try Dataset(inputs: inputs, features: 4, targets: targets, encoding: loss == .crossEntropy ? .classIndices : .dense,
                                   targetWidth: loss == .crossEntropy ? 1 : 3)
            let model = try MLP(layerSizes: [4, 5, 3], loss: loss, seed: 2)
            let configuration = TrainingConfiguration(batchSize: 5, length: .steps(7))
            let seedOnly = try TrainingSession(model: model, backend: SeedOnlyBackend(), batchCapacity: 5)
            try seedOnly.train(on: try seedOnly.upload(data), configuration: configuration)
            let cpu = try TrainingSession(model: model, backend: CPUBackend(useBLAS: false), batchCapacity: 5)
            try cpu.train(on: try cpu.upload(data), configuration: configuration)
            XCTAssertEqual(try seedOnly.model().parameters.map(\.bitPattern), try cpu.model().parameters.map(\.bitPattern))
        }
    }

    /// The default activation product maps ReLU onto `.biasReLU`/`.reluMask` and refuses the
    /// rest; the default AdamW step runs plain Adam and refuses decay and clipping.
    func testDefaultImplementations() throws {
        let backend = SeedOnlyBackend()
        let a = try backend.makeBuffer(count: 6), b = try backend.makeBuffer(count: 6), c = try backend.makeBuffer(count: 4)
        let bias = try backend.makeBuffer(count: 2)
        try [Float](arrayLiteral: 1, -2, 3, 0.5, -1, 2).withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(a)) }
        try [Float](arrayLiteral: 0.5, 1, -1, 2, 0, 1).withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(b)) }
        try [Float](arrayLiteral: 5, -4).withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(bias)) }
        try backend.matrixProduct(.nt, m: 2, n: 2, k: 3, a: BufferSlice(a), b: BufferSlice(b), c: BufferSlice(c),
                                  activation: .biasActivation(BufferSlice(bias), .relu, preActivation: nil))
        var values = [Float](repeating: 0, count: 4)
        try values.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(c), count: 4, into: $0) }
        // [1, −2, 3]·[0.5, 1, −1] = −4.5 and ·[2, 0, 1] = 5; [0.5, −1, 2]·… = −2.75 and 3; + [5, −4], ReLU
        XCTAssertEqual(values, [0.5, 1, 2.25, 0])
        XCTAssertThrowsError(try backend.matrixProduct(.nt, m: 2, n: 2, k: 3, a: BufferSlice(a), b: BufferSlice(b), c: BufferSlice(c),
                                                       activation: .biasActivation(BufferSlice(bias), .sigmoid, preActivation: nil))) {
            XCTAssertEqual("\($0)", "the SeedOnly backend does not support the sigmoid activation yet")
        }
        XCTAssertThrowsError(try backend.matrixProduct(.nn, m: 2, n: 2, k: 2, a: BufferSlice(a), b: BufferSlice(b), c: BufferSlice(c),
                                                       activation: .activationDerivative(BufferSlice(a), .tanh)))
        // without decay or clipping: the backend's plain Adam step, bit for bit (random θ, m, v)
        var random = TestData(seed: 9)
        let start = [random.normal(6), random.normal(6), random.normal(6).map { $0 * $0 }]
        func state() throws -> [CPUBuffer] {
            try start.map { values in
                let buffer = try backend.makeBuffer(count: 6)
                try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
                return buffer
            }
        }
        let (adamW, adam) = (try state(), try state())
        try backend.adamWUpdate(parameters: BufferSlice(adamW[0]), gradients: BufferSlice(a), firstMoment: BufferSlice(adamW[1]),
                                secondMoment: BufferSlice(adamW[2]), count: 6, hyperparameters: AdamHyperparameters(), step: 3)
        try backend.adamUpdate(parameters: BufferSlice(adam[0]), gradients: BufferSlice(a), firstMoment: BufferSlice(adam[1]),
                               secondMoment: BufferSlice(adam[2]), count: 6, hyperparameters: AdamHyperparameters(), step: 3)
        for (index, (left, right)) in zip(adamW, adam).enumerated() {
            var (got, want) = ([Float](repeating: .nan, count: 6), [Float](repeating: 0, count: 6))
            try got.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(left), count: 6, into: $0) }
            try want.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(right), count: 6, into: $0) }
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "θ, m, v [\(index)]")
            XCTAssertNotEqual(got, start[index], "θ, m, v [\(index)] moved")
        }
        let theta = adamW[0], m = adamW[1], v = adamW[2]
        XCTAssertThrowsError(try backend.adamWUpdate(parameters: BufferSlice(theta), gradients: BufferSlice(a), firstMoment: BufferSlice(m),
                                                     secondMoment: BufferSlice(v), count: 6,
                                                     hyperparameters: AdamHyperparameters(weightDecay: 0.1), step: 2)) {
            XCTAssertEqual("\($0)", "the SeedOnly backend does not support weight decay (AdamW) yet")
        }
        XCTAssertThrowsError(try backend.requireSupport(.loss(.binaryCrossEntropy)))
        XCTAssertNoThrow(try backend.requireSupport(.loss(.crossEntropy)))
        XCTAssertNoThrow(try backend.requireSupport(.activation(.relu)))
    }
}
