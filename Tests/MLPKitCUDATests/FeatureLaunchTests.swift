import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// The training features beyond the seed on the CUDA backend: against the fake driver (every
/// launch's arity, graphed steps with the features replaying the eager launches, nothing read
/// back inside a step), and on a real GPU against the CPU (skipped without one).
final class FeatureLaunchTests: XCTestCase {
    func fakeBackend() throws -> CUDABackend {
        _ = try sharedNVRTC()
        try FakeDriver.reset()
        return try CUDABackend(driver: FakeDriver.driver(), compiler: { () throws(CUDAError) in try NVRTCCompiler.shared.get() },
                               device: .automatic, tiles: nil)
    }

    /// Every feature operation's launches pass exactly the arguments their kernels declare.
    func testFeatureOperationsPassTheKernelsArity() throws {
        let backend = try fakeBackend()
        let signatures = FakeDriverTests.sourceSignatures()
        let x = try backend.poisoned(4096)
        backend.recording = []
        defer { backend.recording = nil }
        try backend.lossGradient(.binaryCrossEntropy, targets: .dense, output: x, target: x, rows: 3, columns: 4,
                                 gradient: x, lossSum: x)
        try backend.matrixProduct(.nt, m: 3, n: 4, k: 5, a: x, b: x, c: x, activation: .biasActivation(x, .gelu, preActivation: x))
        try backend.matrixProduct(.nn, m: 3, n: 4, k: 5, a: x, b: x, c: x, activation: .activationDerivative(x, .leakyReLU(slope: 0.1)))
        try backend.adamWUpdate(parameters: x, gradients: x, firstMoment: x, secondMoment: x, count: 1000,
                                hyperparameters: .init(weightDecay: 0.1, clipNorm: 1), step: 1)
        try backend.adamWUpdate(parameters: x, gradients: x, firstMoment: x, secondMoment: x, count: 1000,
                                hyperparameters: .init(weightDecay: 0.1), step: 2)
        let recorded = try XCTUnwrap(backend.recording)
        let names = Set(recorded.map(\.kernel.rawValue))
        for name in ["loss_binary_cross_entropy", "activation_forward", "activation_derivative", "gradient_norm_partials",
                     "clip_scale", "adamw_update"] {
            XCTAssert(names.contains(name), name)
        }
        for launch in recorded {
            XCTAssertEqual(launch.arguments.count, signatures[launch.kernel.rawValue]?.count, launch.kernel.rawValue)
        }
        // the norm: ⌈1000/256⌉ blocks of REDUCE_THREADS, then one block; AdamW reads the scale
        let norm = try XCTUnwrap(recorded.first { $0.kernel == .gradientNormPartials })
        XCTAssertEqual(norm.grid.x, 4)
        XCTAssertEqual(norm.block.x, UInt32(backend.tiles.reduceThreads))
        let updates = recorded.filter { $0.kernel == .adamW }
        XCTAssertEqual(updates.count, 2)
        XCTAssertEqual(updates[0].arguments.last, backend.scratchBuffers[.clip]?.address, "clipped: the scale's buffer")
        XCTAssertEqual(updates[1].arguments.last, 0, "not clipped: NULL")
    }

    /// GELU, binary cross-entropy and AdamW with clipping, trained with every step graphed and
    /// eagerly: one graph launch per step, the same kernels with the same grids, no bad pointers.
    func testFeatureStepsAreGraphed() throws {
        let backend = try fakeBackend()
        var random = SeededGenerator(seed: 9)
        let dataset = try Dataset(inputs: random.values(75 * 13), features: 13, targets: random.values(75 * 5).map { $0 > 0 ? 1 : 0 },
                                  encoding: .dense, targetWidth: 5)
        let model = try MLP(layerSizes: [13, 32, 24, 5], activation: .gelu, loss: .binaryCrossEntropy, seed: 4)
        let hyperparameters = AdamHyperparameters(learningRate: 3e-3, weightDecay: 0.01, clipNorm: 1)
        var runs: [[FakeDriver.Launch]] = []
        for graphs in [true, false] {
            let session = try TrainingSession(model: model, backend: backend, hyperparameters: hyperparameters, batchCapacity: 32)
            session.usesStepGraphs = graphs
            let data = try session.upload(dataset)
            try FakeDriver.reset()
            try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .epochs(2), shuffle: true, seed: 1))
            XCTAssertEqual(session.step, 6)
            XCTAssertEqual(try FakeDriver.counter("graph_launches"), graphs ? 6 : 0)
            XCTAssertEqual(try FakeDriver.counter("bad_pointers"), 0)
            runs.append(try FakeDriver.launches())
        }
        XCTAssertEqual(runs[0].map(\.kernel), runs[1].map(\.kernel))
        XCTAssertEqual(runs[0].map(\.grid), runs[1].map(\.grid))
        XCTAssert(runs[0].allSatisfy(\.fromGraph))
        let kernels = Set(runs[0].map(\.kernel))
        for name in ["loss_binary_cross_entropy", "activation_forward", "activation_derivative", "gradient_norm_partials",
                     "clip_scale", "adamw_update"] {
            XCTAssert(kernels.contains(name), name)
        }
        XCTAssertFalse(kernels.contains("adam_update"), "AdamW replaces plain Adam")
    }

    // MARK: - On a GPU

    /// 100 steps of `TrainingSession` on the GPU (graphed) and on the CPU for each feature: the
    /// parameters agree to 1e-4.
    func testFeatureRunsMatchCPU() throws {
        let backend = try SharedCUDA.backend()
        let runs: [(String, ActivationFunction, Loss, AdamHyperparameters)] = [
            ("bce", .relu, .binaryCrossEntropy, AdamHyperparameters(learningRate: 3e-3)),
            ("tanh", .tanh, .meanSquaredError, AdamHyperparameters(learningRate: 3e-3)),
            ("sigmoid", .sigmoid, .crossEntropy, AdamHyperparameters(learningRate: 3e-3)),
            ("gelu", .gelu, .meanSquaredError, AdamHyperparameters(learningRate: 3e-3)),
            ("leaky-relu", .leakyReLU(slope: 0.1), .crossEntropy, AdamHyperparameters(learningRate: 3e-3)),
            ("adamw", .relu, .meanSquaredError, AdamHyperparameters(learningRate: 3e-3, weightDecay: 0.1)),
            ("clip-norm", .relu, .crossEntropy, AdamHyperparameters(learningRate: 3e-3, clipNorm: 0.05)),
        ]
        for (name, activation, loss, hyperparameters) in runs {
            var random = SeededGenerator(seed: 61)
            let sizes = [13, 29, 17, 5], rows = 203
            let inputs = random.values(rows * sizes[0])
            let targets: [Float] = switch loss {
            case .meanSquaredError: random.values(rows * sizes[3])
            case .crossEntropy: random.labels(rows, classes: sizes[3])
            case .binaryCrossEntropy: random.values(rows * sizes[3]).map { $0 > 0 ? 1 : 0 }
            }
            let encoding: TargetEncoding = loss == .crossEntropy ? .classIndices : .dense
            let dataset = try Dataset(inputs: inputs, features: sizes[0], targets: targets, encoding: encoding,
                                      targetWidth: encoding.width(outputs: sizes[3]))
            let model = try MLP(layerSizes: sizes, activation: activation, loss: loss, seed: 62)
            func train<B: Backend>(_ b: B) throws -> [Float] {
                let session = try TrainingSession(model: model, backend: b, hyperparameters: hyperparameters, batchCapacity: 32)
                let data = try session.upload(dataset)
                try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .steps(100), seed: 63))
                return try session.model().parameters
            }
            assertClose(try train(backend), try train(CPUBackend()), tolerance: 1e-4, "\(name): parameters after 100 steps",
                        group: "cuda feature training \(name)")
            print("cuda feature training \(name): relative error \(ErrorLog.worst["cuda feature training \(name)"] ?? .nan)")
        }
    }
}
