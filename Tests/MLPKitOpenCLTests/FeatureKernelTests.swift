import BackendTestSupport
@testable import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// The training features beyond the seed through the portable kernels (on PoCL), against the
/// CPU backend: the hidden activations (forward with the pre-activation kept, and derivative),
/// binary cross-entropy, AdamW's weight decay and clipping by global norm; then a short
/// `TrainingSession` run for each. Outputs are poisoned with NaN before every operation.
final class FeatureKernelTests: XCTestCase {
    static let functions: [ActivationFunction] = [.leakyReLU(slope: 0.01), .leakyReLU(slope: 0.2), .tanh, .sigmoid, .gelu]
    static let products: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (1, 97, 13), (41, 1, 7), (37, 53, 29), (130, 67, 41)]

    override class func tearDown() {
        ErrorLog.printWorst(prefix: "feature")
        super.tearDown()
    }

    func testEveryFeatureIsSupported() throws {
        let backend = try SharedBackends.backend()
        for function in Self.functions + [.relu] {
            XCTAssertNoThrow(try backend.requireSupport(.activation(function)), "\(function)")
        }
        for loss in Loss.allCases {
            XCTAssertNoThrow(try backend.requireSupport(.loss(loss)), "\(loss)")
        }
        XCTAssertNoThrow(try backend.requireSupport(.weightDecay))
        XCTAssertNoThrow(try backend.requireSupport(.gradientClipping))
        XCTAssertThrowsError(try backend.requireSupport(.activation(.leakyReLU(slope: -1))), "a negative slope")
        XCTAssertThrowsError(try backend.requireSupport(.activation(.leakyReLU(slope: .nan))), "a NaN slope")
    }

    // MARK: - Activations

    /// C = f(A·Bᵀ + bias) with Z kept (for every function, ReLU too: a ReLU epilogue that keeps Z
    /// is not the fused one), in every layout, odd sizes, operands at offsets; inputs wide enough
    /// to reach σ's negative branch and GELU's tails.
    func testBiasActivationMatchesCPU() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 51)
        for function in Self.functions + [.relu] {
            for (index, (m, n, k)) in Self.products.enumerated() {
                for layout in ProductLayout.allCases {
                    let a = random.values(m * k).map { $0 * 2 }, b = random.values(k * n)
                    let bias = random.values(n).map { $0 * 3 }
                    let offset = index % 2 == 1
                    for keep in [false, true] {
                        func run<B: Backend>(_ backend: B) throws -> [Float] {
                            try backend.activationProduct(
                                layout, m: m, n: n, k: k, a: a, b: b, function: function, derivative: false, auxiliary: bias,
                                keepsPreActivation: keep, offsets: offset ? ProductOffsets(a: 7, b: 2, c: 5, auxiliary: 1) : .none,
                                preActivationOffset: offset ? 3 : 0)
                        }
                        assertClose(try run(backend), try run(reference),
                                    "\(function) forward \(layout) \(m)×\(n)×\(k)\(keep ? " keeping Z" : "")",
                                    group: "feature activation forward \(function.kind.rawValue)")
                    }
                }
            }
        }
    }

    /// C = (A·B) ⊙ f'(source), source = f(Z) (exact zeros and, for leaky ReLU, negative values
    /// included) or Z for GELU, in every layout.
    func testActivationDerivativeMatchesCPU() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 52)
        for function in Self.functions + [.relu] {
            for (index, (m, n, k)) in Self.products.enumerated() {
                for layout in ProductLayout.allCases {
                    let a = random.values(m * k), b = random.values(k * n)
                    let z = random.values(m * n).map { $0 * 4 }
                    let source = function.derivativeNeedsPreActivation
                        ? z : z.enumerated().map { $0.offset % 7 == 3 ? function.apply(0) : function.apply($0.element) }
                    let offset = index % 2 == 1
                    func run<B: Backend>(_ backend: B) throws -> [Float] {
                        try backend.activationProduct(
                            layout, m: m, n: n, k: k, a: a, b: b, function: function, derivative: true, auxiliary: source,
                            offsets: offset ? ProductOffsets(a: 3, b: 6, c: 4, auxiliary: 2) : .none)
                    }
                    assertClose(try run(backend), try run(reference), "\(function) derivative \(layout) \(m)×\(n)×\(k)",
                                group: "feature activation derivative \(function.kind.rawValue)")
                }
            }
        }
    }

    /// A slice past its buffer throws before anything is queued, and empty products do nothing.
    func testActivationOperandsAreChecked() throws {
        let backend = try SharedBackends.backend()
        let a = try backend.buffer([1, 2, 3, 4]), small = try backend.buffer([1, 2], trailing: 0)
        let c = try backend.buffer([9, 9, 9, 9], trailing: 0)
        XCTAssertThrowsError(try backend.matrixProduct(.nt, m: 2, n: 2, k: 1, a: a, b: a, c: c,
                                                       activation: .biasActivation(a, .tanh, preActivation: small)))
        XCTAssertThrowsError(try backend.matrixProduct(.nn, m: 2, n: 2, k: 1, a: a, b: a, c: c,
                                                       activation: .activationDerivative(small, .sigmoid)))
        XCTAssertEqual(try backend.read(c, 4), [9, 9, 9, 9], "nothing ran")
        try backend.matrixProduct(.nt, m: 0, n: 2, k: 1, a: a, b: a, c: c, activation: .biasActivation(a, .gelu, preActivation: c))
        try backend.matrixProduct(.nn, m: 2, n: 0, k: 1, a: a, b: a, c: c, activation: .activationDerivative(a, .gelu))
        XCTAssertEqual(try backend.read(c, 4), [9, 9, 9, 9])
    }

    // MARK: - Binary cross-entropy

    /// Hard labels, soft targets and class indices; logits up to ±120 (exp overflows without the
    /// stable form); the gradient written over the logits in place; wide rows (a block per row) too.
    func testBinaryCrossEntropyMatchesCPU() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 53)
        let shapes = [(1, 1), (1, 10), (7, 3), (64, 10), (257, 33), (1000, 2), (9, 130), (3, 1000)]
        for (index, (rows, columns)) in shapes.enumerated() {
            for encoding in ["labels", "soft", "indices"] {
                let scale: Float = index % 3 == 2 ? 120 : 6
                let output = random.values(rows * columns).map { $0 * scale }
                let targets: [Float] = switch encoding {
                case "labels": random.labels(rows * columns, classes: 2)
                case "soft": random.values(rows * columns).map { abs($0) }
                default: random.labels(rows, classes: columns)
                }
                let targetEncoding: TargetEncoding = encoding == "indices" ? .classIndices : .dense
                let offset = index % 2 == 1 ? 3 : 0
                for inPlace in [false, true] {
                    func run<B: Backend>(_ b: B) throws -> (gradient: [Float], loss: Float) {
                        let logits = try b.buffer(output, offset: offset)
                        let gradient = inPlace ? logits : try b.poisoned(rows * columns, offset: offset + 1)
                        let sum = try b.poisoned(1, offset: offset)
                        try b.lossGradient(.binaryCrossEntropy, targets: targetEncoding, output: logits,
                                           target: b.buffer(targets, offset: offset), rows: rows, columns: columns,
                                           gradient: gradient, lossSum: sum)
                        return (try b.read(gradient, rows * columns), try b.read(sum, 1)[0])
                    }
                    let actual = try run(backend), expected = try run(reference)
                    XCTAssert(expected.loss.isFinite)
                    let name = "BCE \(encoding) \(rows)×\(columns) ±\(scale)\(inPlace ? " in place" : "")"
                    assertClose(actual.gradient, expected.gradient, "\(name) gradient", group: "feature bce gradient")
                    assertClose([actual.loss], [expected.loss], "\(name) loss sum", group: "feature bce loss sum")
                }
            }
        }
    }

    // MARK: - AdamW and clipping

    /// Weight decay alone, clipping alone (active: a norm far above c; inactive: far below), and
    /// both, over several steps with t advanced on the device and a jump; θ, m and v each step.
    func testAdamWMatchesCPU() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 54)
        let settings: [(String, AdamHyperparameters)] = [
            ("weight decay", AdamHyperparameters(learningRate: 0.01, weightDecay: 0.1)),
            ("clip active", AdamHyperparameters(learningRate: 0.01, clipNorm: 0.5)),
            ("clip inactive", AdamHyperparameters(learningRate: 0.01, clipNorm: 1e6)),
            ("weight decay and clip", AdamHyperparameters(learningRate: 3e-3, weightDecay: 0.05, clipNorm: 2)),
        ]
        for (name, hyperparameters) in settings {
            for (index, count) in [1, 37, 4099, 100_003].enumerated() {
                let offset = index % 2 == 1 ? 5 : 0
                let initial = (random.values(count), random.values(count).map { $0 * 0.1 },
                               random.values(count).map { abs($0) * 0.01 })
                func state<B: Backend>(_ b: B) throws -> (BufferSlice<B.Buffer>, BufferSlice<B.Buffer>, BufferSlice<B.Buffer>) {
                    (try b.buffer(initial.0, offset: offset), try b.buffer(initial.1, offset: offset),
                     try b.buffer(initial.2, offset: offset))
                }
                let device = try state(backend), host = try state(reference)
                for step in [1, 2, 3, 7, 8] {
                    let gradient = random.values(count).map { $0 * 2 }
                    try backend.adamWUpdate(parameters: device.0, gradients: backend.buffer(gradient, offset: offset),
                                            firstMoment: device.1, secondMoment: device.2, count: count,
                                            hyperparameters: hyperparameters, step: step)
                    try reference.adamWUpdate(parameters: host.0, gradients: reference.buffer(gradient, offset: offset),
                                              firstMoment: host.1, secondMoment: host.2, count: count,
                                              hyperparameters: hyperparameters, step: step)
                    for (part, d, h) in [("θ", device.0, host.0), ("m", device.1, host.1), ("v", device.2, host.2)] {
                        assertClose(try backend.read(d, count), try reference.read(h, count),
                                    "\(name) \(part), \(count) parameters, step \(step)", group: "feature adamw \(name)")
                    }
                }
            }
        }
    }

    /// The scale the clip kernels leave in device memory against the CPU's (‖g‖ in Float64):
    /// below 1 when the norm exceeds c, exactly 1 otherwise; and the same bits run to run.
    func testClipScaleOnTheDevice() throws {
        let backend = try SharedBackends.backend()
        var random = SeededGenerator(seed: 55)
        for count in [1, 255, 256, 257, 4099, 100_003, 1_000_003] {
            let gradient = random.values(count).map { $0 < 0 ? $0 - 1 : $0 + 1 }  // |g| ≥ 1 > c = 0.25
            let g = try backend.buffer(gradient)
            let zeros = [Float](repeating: 0, count: count)
            for clipNorm: Float in [0.25, 1e9] {
                var scales: [Float] = []
                for _ in 0..<2 {
                    try backend.adamWUpdate(parameters: backend.buffer(zeros), gradients: g, firstMoment: backend.buffer(zeros),
                                            secondMoment: backend.buffer(zeros), count: count,
                                            hyperparameters: AdamHyperparameters(clipNorm: clipNorm), step: 1)
                    scales.append(try backend.read(BufferSlice(XCTUnwrap(backend.scratchBuffers[.clip])), 1)[0])
                }
                let expected = gradient.withUnsafeBufferPointer {
                    ElementwiseKernels.clipScale($0.baseAddress!, count: count, clipNorm: clipNorm)
                }
                XCTAssertEqual(scales[0].bitPattern, scales[1].bitPattern, "deterministic, \(count) gradients")
                assertClose([scales[0]], [expected], "clip scale, \(count) gradients, c \(clipNorm)", group: "feature clip scale")
                if clipNorm > 1e6 { XCTAssertEqual(scales[0], 1) } else { XCTAssertLessThan(scales[0], 1) }
            }
        }
    }

    /// A NaN or infinite gradient: NaN in the same places as on the CPU (an infinite norm scales
    /// every gradient by 0, so only the infinite one becomes NaN; a NaN norm poisons all).
    func testNonFiniteGradientsMatchTheCPU() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        for poison in [Float.infinity, .nan] {
            var random = SeededGenerator(seed: 56)
            var gradient = random.values(300)
            gradient[123] = poison
            func run<B: Backend>(_ b: B) throws -> [Float] {
                let theta = try b.buffer([Float](repeating: 1, count: 300))
                try b.adamWUpdate(parameters: theta, gradients: b.buffer(gradient), firstMoment: b.buffer([Float](repeating: 0, count: 300)),
                                  secondMoment: b.buffer([Float](repeating: 0, count: 300)), count: 300,
                                  hyperparameters: AdamHyperparameters(weightDecay: 0.1, clipNorm: 1), step: 1)
                return try b.read(theta, 300)
            }
            let actual = try run(backend), expected = try run(reference)
            XCTAssertEqual(actual.map(\.isNaN), expected.map(\.isNaN), "NaN where the CPU has NaN (\(poison))")
            let finite = zip(actual, expected).filter { !$0.1.isNaN }
            assertClose(finite.map(\.0), finite.map(\.1), "finite parameters (\(poison))", group: "feature adamw non-finite")
        }
    }

    /// `adamUpdate` given λ or c does what the CPU backend's does: AdamW.
    func testAdamUpdateHonoursWeightDecayAndClipping() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 57)
        let values = random.values(1000)
        let hyperparameters = AdamHyperparameters(learningRate: 0.01, weightDecay: 0.3, clipNorm: 0.1)
        func run<B: Backend>(_ b: B) throws -> [Float] {
            let theta = try b.buffer(values)
            try b.adamUpdate(parameters: theta, gradients: b.buffer(values.reversed()), firstMoment: b.buffer(values.map { $0 * 0.1 }),
                             secondMoment: b.buffer(values.map { abs($0) }), count: 1000, hyperparameters: hyperparameters, step: 3)
            return try b.read(theta, 1000)
        }
        assertClose(try run(backend), try run(reference), "adamUpdate with λ and c", group: "feature adamw via adamUpdate")
    }

    // MARK: - Training runs

    /// 100 steps of `TrainingSession` on OpenCL and on the CPU from the same start (shuffled
    /// batches of 32 from 203 rows, so each epoch ends with a partial batch): the parameters
    /// agree to 1e-4, and the loss falls.
    func checkTraining(_ group: String, activation: ActivationFunction = .relu, loss: Loss = .meanSquaredError,
                       hyperparameters: AdamHyperparameters = AdamHyperparameters(learningRate: 3e-3)) throws {
        let backend = try SharedBackends.backend()
        var random = SeededGenerator(seed: 61)
        let sizes = [13, 29, 17, 5], rows = 203
        let inputs = random.values(rows * sizes[0])
        let targets: [Float] = switch loss {
        case .meanSquaredError: random.values(rows * sizes[3])
        case .crossEntropy: random.labels(rows, classes: sizes[3])
        case .binaryCrossEntropy: random.labels(rows * sizes[3], classes: 2)
        }
        let encoding: TargetEncoding = loss == .crossEntropy ? .classIndices : .dense
        let dataset = try Dataset(inputs: inputs, features: sizes[0], targets: targets, encoding: encoding,
                                  targetWidth: encoding.width(outputs: sizes[3]))
        let model = try MLP(layerSizes: sizes, activation: activation, loss: loss, seed: 62)
        let configuration = TrainingConfiguration(batchSize: 32, length: .steps(100), shuffle: true, seed: 63)
        func train<B: Backend>(_ b: B) throws -> (parameters: [Float], losses: [Double]) {
            let session = try TrainingSession(model: model, backend: b, hyperparameters: hyperparameters, batchCapacity: 32)
            let data = try session.upload(dataset)
            var losses: [Double] = []
            try session.train(on: data, configuration: configuration, onEpoch: {
                losses.append($0.trainingLoss)
                return true
            })
            return (try session.model().parameters, losses)
        }
        let gpu = try train(backend), cpu = try train(CPUBackend())
        assertClose(gpu.parameters, cpu.parameters, tolerance: 1e-4, "\(group): parameters after 100 steps",
                    group: "feature training \(group)")
        assertClose(gpu.losses.map { Float($0) }, cpu.losses.map { Float($0) }, tolerance: 1e-4, "\(group): epoch losses",
                    group: "feature training \(group) losses")
        XCTAssertLessThan(cpu.losses.last ?? .infinity, cpu.losses.first ?? 0, "\(group): training lowers the loss")
        print("\(group): epoch loss \(cpu.losses.first ?? .nan) → \(cpu.losses.last ?? .nan); parameters off by \(ErrorLog.worst["feature training \(group)"] ?? .nan)")
    }

    func testBinaryCrossEntropyTraining() throws {
        try checkTraining("bce", loss: .binaryCrossEntropy)
    }

    func testTanhTraining() throws {
        try checkTraining("tanh", activation: .tanh)
    }

    func testSigmoidTraining() throws {
        try checkTraining("sigmoid", activation: .sigmoid, loss: .crossEntropy)
    }

    func testGELUTraining() throws {
        try checkTraining("gelu", activation: .gelu)
    }

    func testLeakyReLUTraining() throws {
        try checkTraining("leaky-relu", activation: .leakyReLU(slope: 0.1), loss: .crossEntropy)
    }

    func testAdamWTraining() throws {
        try checkTraining("adamw", hyperparameters: AdamHyperparameters(learningRate: 3e-3, weightDecay: 0.1))
    }

    /// c = 0.05 sits well under these gradients' norms, so every step clips.
    func testClipNormTraining() throws {
        try checkTraining("clip-norm", loss: .crossEntropy, hyperparameters: AdamHyperparameters(learningRate: 3e-3, clipNorm: 0.05))
    }

    /// Everything at once: GELU, BCE, AdamW with clipping.
    func testAllFeaturesTraining() throws {
        try checkTraining("gelu+bce+adamw+clip", activation: .gelu, loss: .binaryCrossEntropy,
                          hyperparameters: AdamHyperparameters(learningRate: 3e-3, weightDecay: 0.01, clipNorm: 0.5))
    }
}
