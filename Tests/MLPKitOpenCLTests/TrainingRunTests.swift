import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// A whole training run composed from the backend operations (gather, forward with fused bias
/// and ReLU, fused loss, backward in the TN and NN layouts with the ReLU mask, column sums,
/// Adam), run on OpenCL and on the CPU from the same start: the parameters must agree.
final class TrainingRunTests: XCTestCase {
    /// The operations of SEED.md §5 over one flat parameter buffer, generic over the backend.
    struct Run<B: Backend> {
        let backend: B
        let sizes: [Int]
        let loss: Loss
        let encoding: TargetEncoding
        let batch: Int
        let parameters, gradients, firstMoment, secondMoment: B.Buffer
        let inputs, targets, indices, lossSum: BufferSlice<B.Buffer>
        /// A_0 (the gathered batch), A_1, ..., A_L; and dZ_1, ..., dZ_L.
        let activations: [BufferSlice<B.Buffer>]
        let deltas: [BufferSlice<B.Buffer>]
        let targetBatch: BufferSlice<B.Buffer>

        var parameterCount: Int { Self.count(sizes) }

        static func count(_ sizes: [Int]) -> Int {
            zip(sizes, sizes.dropFirst()).reduce(0) { $0 + $1.1 * $1.0 + $1.1 }
        }

        init(_ backend: B, sizes: [Int], loss: Loss, encoding: TargetEncoding, batch: Int, initial: [Float],
             inputs: [Float], targets: [Float]) throws {
            self.backend = backend
            self.sizes = sizes
            self.loss = loss
            self.encoding = encoding
            self.batch = batch
            let count = Self.count(sizes)
            parameters = try backend.buffer(initial).buffer
            gradients = try backend.makeBuffer(count: count)
            firstMoment = try backend.makeBuffer(count: count)
            secondMoment = try backend.makeBuffer(count: count)
            self.inputs = try backend.buffer(inputs, trailing: 0)
            self.targets = try backend.buffer(targets, trailing: 0)
            indices = try backend.poisoned(batch)
            lossSum = try backend.poisoned(1)
            activations = try sizes.map { try backend.poisoned(batch * $0) }
            deltas = try sizes.dropFirst().map { try backend.poisoned(batch * $0) }
            targetBatch = try backend.poisoned(batch * encoding.width(outputs: sizes[sizes.count - 1]))
        }

        /// Offsets of W_i and b_i in the flat buffer (i from 0).
        func offsets(_ layer: Int) -> (weights: Int, bias: Int) {
            let before = Self.count(Array(sizes[0...layer]))
            return (before, before + sizes[layer + 1] * sizes[layer])
        }

        /// One training step on the rows `batchIndices`; returns nothing, reads nothing back.
        func step(_ t: Int, batchIndices: [Float], hyperparameters: AdamHyperparameters) throws {
            let layers = sizes.count - 1
            try batchIndices.withUnsafeBufferPointer { try backend.upload($0, to: indices) }
            try backend.gatherRows(inputs, width: sizes[0], indices: indices, count: batch, into: activations[0])
            try backend.gatherRows(targets, width: encoding.width(outputs: sizes[layers]), indices: indices,
                                   count: batch, into: targetBatch)
            for layer in 0..<layers {
                let (w, b) = offsets(layer)
                let bias = BufferSlice(parameters, offset: b)
                try backend.matrixProduct(.nt, m: batch, n: sizes[layer + 1], k: sizes[layer], a: activations[layer],
                                          b: BufferSlice(parameters, offset: w), c: activations[layer + 1],
                                          epilogue: layer < layers - 1 ? .biasReLU(bias) : .bias(bias))
            }
            try backend.lossGradient(loss, targets: encoding, output: activations[layers], target: targetBatch,
                                     rows: batch, columns: sizes[layers], gradient: deltas[layers - 1], lossSum: lossSum)
            for layer in stride(from: layers - 1, through: 0, by: -1) {
                let (w, b) = offsets(layer)
                let (fanIn, fanOut) = (sizes[layer], sizes[layer + 1])
                try backend.matrixProduct(.tn, m: fanOut, n: fanIn, k: batch, a: deltas[layer], b: activations[layer],
                                          c: BufferSlice(gradients, offset: w), epilogue: .none)
                try backend.columnSums(deltas[layer], rows: batch, columns: fanOut, into: BufferSlice(gradients, offset: b))
                if layer > 0 {
                    try backend.matrixProduct(.nn, m: batch, n: fanIn, k: fanOut, a: deltas[layer],
                                              b: BufferSlice(parameters, offset: w), c: deltas[layer - 1],
                                              epilogue: .reluMask(activations[layer]))
                }
            }
            try backend.adamUpdate(parameters: BufferSlice(parameters), gradients: BufferSlice(gradients),
                                   firstMoment: BufferSlice(firstMoment), secondMoment: BufferSlice(secondMoment),
                                   count: parameterCount, hyperparameters: hyperparameters, step: t)
        }
    }

    func checkRun(loss: Loss, encoding: TargetEncoding, group: String) throws {
        let device = try SharedBackends.backend()
        var random = SeededGenerator(seed: 31)
        let sizes = [13, 29, 17, 5], rows = 203, batch = 32, steps = 100
        let initial = random.values(Run<CPUBackend>.count(sizes)).map { $0 * 0.5 }
        let inputs = random.values(rows * sizes[0])
        let targets = encoding == .classIndices ? random.labels(rows, classes: sizes[3]) : random.values(rows * sizes[3])
        let hyperparameters = AdamHyperparameters(learningRate: 3e-3)
        let gpu = try Run(device, sizes: sizes, loss: loss, encoding: encoding, batch: batch, initial: initial,
                          inputs: inputs, targets: targets)
        let cpu = try Run(CPUBackend(), sizes: sizes, loss: loss, encoding: encoding, batch: batch, initial: initial,
                          inputs: inputs, targets: targets)
        var firstLoss: Float = 0, lastLoss: Float = 0
        for t in 1...steps {
            let batchIndices = (0..<batch).map { _ in Float(Int.random(in: 0..<rows, using: &random)) }
            try gpu.step(t, batchIndices: batchIndices, hyperparameters: hyperparameters)
            try cpu.step(t, batchIndices: batchIndices, hyperparameters: hyperparameters)
            if t == 1 || t == steps {
                let deviceLoss = try device.read(gpu.lossSum, 1)[0], hostLoss = try cpu.backend.read(cpu.lossSum, 1)[0]
                assertClose([deviceLoss], [hostLoss], "loss at step \(t)", group: group)
                if t == 1 { firstLoss = hostLoss } else { lastLoss = hostLoss }
            }
        }
        let count = gpu.parameterCount
        assertClose(try device.read(BufferSlice(gpu.parameters), count), try cpu.backend.read(BufferSlice(cpu.parameters), count),
                    tolerance: 1e-4, "parameters after \(steps) steps", group: group)
        print("\(group): loss sum \(firstLoss) → \(lastLoss); max relative error \(ErrorLog.worst[group] ?? 0)")
        XCTAssertLessThan(lastLoss, firstLoss, "training lowers the loss")
    }

    func testMSETrainingRunMatchesCPU() throws {
        try checkRun(loss: .meanSquaredError, encoding: .dense, group: "training run mse")
    }

    func testCrossEntropyTrainingRunMatchesCPU() throws {
        try checkRun(loss: .crossEntropy, encoding: .classIndices, group: "training run cross-entropy")
    }

    /// The phase clock synchronises the queue after each phase: clocked steps give the bits of
    /// unclocked ones on the device, and every phase of every step is timed.
    func testClockedStepsHaveTheSameBits() throws {
        let backend = try SharedBackends.backend()
        let breakdown = try Benchmark.breakdown(.tiny, on: backend, steps: 3, warmup: 1)
        XCTAssertEqual(breakdown.steps, 3)
        XCTAssertEqual(breakdown.phases.count, 9)
        func train(clocked: Bool) throws -> [Float] {
            let (session, data, schedule) = try Benchmark.randomSession(.tiny, on: backend, batches: 2)
            session.phaseClock = clocked ? StepPhaseClock(layerCount: 3) : nil
            for index in 0..<3 {
                try session.trainStep(on: data, positions: schedule.batch(step: index).1, gathered: true,
                                      lossSlot: index % schedule.stepsPerEpoch)
            }
            XCTAssertEqual(session.phaseClock?.steps ?? 3, 3)
            return try session.model().parameters
        }
        XCTAssertEqual(try train(clocked: false).map(\.bitPattern), try train(clocked: true).map(\.bitPattern))
    }
}

