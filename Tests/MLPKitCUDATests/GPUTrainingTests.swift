import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// Whole training runs on the GPU: against the CPU, and graphed against step by step. Skips
/// without a GPU.
final class GPUTrainingTests: XCTestCase {
    /// 100 steps of `TrainingSession` (shuffled batches, a partial last batch each epoch) on the
    /// GPU and on the CPU from the same start: the parameters agree to 1e-4.
    func checkRunAgainstCPU(loss: Loss, graphed: Bool) throws {
        let backend = try SharedCUDA.backend()
        var random = SeededGenerator(seed: 31)
        let sizes = [13, 29, 17, 5], rows = 203, batch = 32, steps = 100
        let inputs = random.values(rows * sizes[0])
        let dataset = loss == .crossEntropy
            ? try Dataset(inputs: inputs, features: sizes[0], targets: random.labels(rows, classes: sizes[3]),
                          encoding: .classIndices, targetWidth: 1)
            : try Dataset(inputs: inputs, features: sizes[0], targets: random.values(rows * sizes[3]),
                          encoding: .dense, targetWidth: sizes[3])
        let model = try MLP(layerSizes: sizes, loss: loss, seed: 17)
        let hyperparameters = AdamHyperparameters(learningRate: 3e-3)
        let schedule = try BatchSchedule(rows: rows, batchSize: batch, shuffle: true, seed: 19)

        func run<B: Backend>(_ backend: B, graph: ((() throws -> Void) throws -> Void)?) throws -> (MLP, [Float]) {
            let session = try TrainingSession(model: model, backend: backend, hyperparameters: hyperparameters, batchCapacity: batch)
            let data = try session.upload(dataset)
            try session.reserveLossSums(schedule.stepsPerEpoch)
            var sums: [Float] = []
            for index in 0..<steps {
                let (epoch, positions) = schedule.batch(step: index)
                let slot = index % schedule.stepsPerEpoch
                if slot == 0 {
                    if index > 0 { sums += try session.lossSums(count: schedule.stepsPerEpoch) }
                    try session.setRowOrder(schedule.order(epoch: epoch))
                }
                let step = { try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot) }
                if let graph { try graph(step) } else { try step() }
            }
            sums += try session.lossSums(count: (steps - 1) % schedule.stepsPerEpoch + 1)
            return (try session.model(), sums)
        }
        let (gpuModel, gpuSums) = try run(backend, graph: graphed ? { try backend.graphed($0) } : nil)
        let (cpuModel, cpuSums) = try run(CPUBackend(), graph: nil)
        let group = "cuda training \(loss)\(graphed ? " graphed" : "")"
        assertClose(gpuModel.parameters, cpuModel.parameters, tolerance: 1e-4, "parameters after \(steps) steps", group: group)
        assertClose(gpuSums, cpuSums, tolerance: 1e-4, "every step's loss sum", group: group)
        XCTAssertLessThan(cpuSums.suffix(7).reduce(0, +), cpuSums.prefix(7).reduce(0, +), "training lowers the loss")
        print("\(group): relative error \(ErrorLog.worst[group] ?? 0)")
    }

    func testMSERunMatchesCPU() throws {
        try checkRunAgainstCPU(loss: .meanSquaredError, graphed: false)
    }

    func testCrossEntropyRunMatchesCPU() throws {
        try checkRunAgainstCPU(loss: .crossEntropy, graphed: false)
    }

    func testGraphedRunMatchesCPU() throws {
        try checkRunAgainstCPU(loss: .crossEntropy, graphed: true)
    }

    /// Graphed steps give bit for bit what the same steps launched one by one give.
    func testGraphReplayEqualsEagerSteps() throws {
        let backend = try SharedCUDA.backend()
        for loss in [Loss.crossEntropy, .meanSquaredError] {
            let result = try backend.graphReplayCheck(loss: loss, steps: 40)
            print(result)
            XCTAssert(result.passed, "\(result)")
            XCTAssertEqual(result.graphsBuilt, 3, "first step, full batches, partial batch")
            XCTAssertGreaterThan(result.nodesPatched, 0)
        }
    }

    /// `Trainer`'s loop on the GPU (eager steps until TrainingSession graphs them): the same loss
    /// as on the CPU.
    func testTrainerOnTheGPU() throws {
        let backend = try SharedCUDA.backend()
        var random = SeededGenerator(seed: 41)
        let dataset = try Dataset(inputs: random.values(500 * 20), features: 20, targets: random.labels(500, classes: 4),
                                  encoding: .classIndices, targetWidth: 1)
        let model = try MLP(layerSizes: [20, 64, 4], loss: .crossEntropy, seed: 2)
        func train<B: Backend>(_ backend: B) throws -> [Double] {
            let session = try TrainingSession(model: model, backend: backend, batchCapacity: 64)
            let data = try session.upload(dataset)
            var losses: [Double] = []
            try session.train(on: data, configuration: TrainingConfiguration(batchSize: 64, length: .epochs(3), seed: 5), onEpoch: {
                losses.append($0.trainingLoss)
                return true
            })
            return losses
        }
        let gpu = try train(backend), cpu = try train(CPUBackend())
        XCTAssertEqual(gpu.count, 3)
        for (g, c) in zip(gpu, cpu) { XCTAssertEqual(g, c, accuracy: 1e-4 * abs(c)) }
    }
}
