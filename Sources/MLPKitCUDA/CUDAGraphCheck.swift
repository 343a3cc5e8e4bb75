import MLPKit

/// The outcome of `CUDABackend.graphReplayCheck`: graphed training steps against the same steps
/// launched one kernel at a time.
public struct CUDAGraphCheckResult: Sendable, CustomStringConvertible {
    public var loss: Loss
    public var steps: Int
    /// The largest |graphed − eager| over parameters, Adam's moments and every step's loss sum.
    public var maxDifference: Double
    /// Whether Adam's t agrees: both runs' on the host, and the graphed run's in device memory.
    public var stepsAgree: Bool
    /// Graphs built and nodes patched while the graphed run took its steps.
    public var graphsBuilt: Int
    public var nodesPatched: Int

    /// The same kernels on the same inputs in the same order: the results must be identical.
    public var passed: Bool { maxDifference == 0 && stepsAgree }

    public var description: String {
        "graph replay vs eager, \(loss), \(steps) steps: max |difference| \(maxDifference), "
            + "\(graphsBuilt) graphs built, \(nodesPatched) nodes patched\(stepsAgree ? "" : ", Adam's t differs")"
    }
}

extension CUDABackend {
    /// Trains one model twice from the same start on the same shuffled batches (several epochs,
    /// the last batch of each partial): once with every step graphed (`graphed(_:)`), once
    /// launching kernel by kernel. The parameters, Adam's moments and step, and every loss sum
    /// must be bit-for-bit equal.
    public func graphReplayCheck(loss: Loss = .crossEntropy, steps: Int = 40, seed: UInt64 = 7,
                                 activation: ActivationFunction = .relu,
                                 hyperparameters: AdamHyperparameters = AdamHyperparameters(learningRate: 3e-3)) throws -> CUDAGraphCheckResult {
        let sizes = [13, 32, 24, 5], rows = 203, batch = 32
        var generator = SeededGenerator(seed: seed)
        let inputs = (0..<(rows * sizes[0])).map { _ in Float(generator.nextNormal()) }
        let dataset: Dataset
        if loss == .crossEntropy {
            let labels = (0..<rows).map { _ in Float(generator.next() % UInt64(sizes[3])) }
            dataset = try Dataset(inputs: inputs, features: sizes[0], targets: labels, encoding: .classIndices, targetWidth: 1)
        } else {
            // binary cross-entropy: 0/1 labels, one per output
            let targets = (0..<(rows * sizes[3])).map { _ in
                let value = Float(generator.nextNormal())
                return loss == .binaryCrossEntropy ? (value > 0 ? 1 : 0) : value
            }
            dataset = try Dataset(inputs: inputs, features: sizes[0], targets: targets, encoding: .dense, targetWidth: sizes[3])
        }
        let model = try MLP(layerSizes: sizes, activation: activation, loss: loss, seed: seed)
        let schedule = try BatchSchedule(rows: rows, batchSize: batch, shuffle: true, seed: seed)
        let before = graphStatistics

        func train(graphed: Bool) throws -> (session: TrainingSession<CUDABackend>, lossSums: [Float]) {
            let session = try TrainingSession(model: model, backend: self, hyperparameters: hyperparameters, batchCapacity: batch)
            let data = try session.upload(dataset)
            try session.reserveLossSums(schedule.stepsPerEpoch)
            var lossSums: [Float] = [], epoch = -1, slot = 0
            for index in 0..<steps {
                let (stepEpoch, positions) = schedule.batch(step: index)
                if stepEpoch != epoch {
                    if slot > 0 { lossSums += try session.lossSums(count: slot) }
                    epoch = stepEpoch
                    slot = 0
                    try session.setRowOrder(schedule.order(epoch: epoch))
                }
                if graphed {
                    try graphedStep(session, data, positions, slot)
                } else {
                    try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot)
                }
                slot += 1
            }
            if slot > 0 { lossSums += try session.lossSums(count: slot) }
            return (session, lossSums)
        }
        func graphedStep(_ session: TrainingSession<CUDABackend>, _ data: DeviceDataset<CUDABackend>,
                         _ positions: Range<Int>, _ slot: Int) throws {
            try graphed { try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot) }
        }

        let withGraphs = try train(graphed: true)
        let after = graphStatistics
        let graphDeviceStep = try deviceStepCounter()
        let eager = try train(graphed: false)
        var largest = 0.0
        func compare(_ a: [Float], _ b: [Float]) {
            guard a.count == b.count else { largest = .infinity; return }
            for (x, y) in zip(a, b) {
                let difference = x.isNaN || y.isNaN ? Double.infinity : Double(abs(x - y))
                largest = max(largest, difference)
            }
        }
        compare(try withGraphs.session.model().parameters, try eager.session.model().parameters)
        let graphState = try withGraphs.session.optimizerState(), eagerState = try eager.session.optimizerState()
        compare(graphState.firstMoment, eagerState.firstMoment)
        compare(graphState.secondMoment, eagerState.secondMoment)
        compare(withGraphs.lossSums, eager.lossSums)
        return CUDAGraphCheckResult(loss: loss, steps: steps, maxDifference: largest,
                                    stepsAgree: graphState.step == eagerState.step && graphState.step == steps && graphDeviceStep == steps,
                                    graphsBuilt: after.built - before.built,
                                    nodesPatched: after.patchedNodes - before.patchedNodes)
    }
}

extension CUDABackend {
    /// `graphReplayCheck` for both losses, and for GELU with binary cross-entropy and AdamW with
    /// clipping (the norm reduced on the device inside the graph), as `mlp check` rows:
    /// |graphed − eager| must be 0 (a step count that differs reads as infinity).
    public func graphReplayCheckRows(steps: Int = 40) throws -> [BackendCheckResult] {
        let features = AdamHyperparameters(learningRate: 3e-3, weightDecay: 0.01, clipNorm: 0.5)
        let runs: [(String, Loss, ActivationFunction, AdamHyperparameters)] = [
            ("\(Loss.crossEntropy)", .crossEntropy, .relu, AdamHyperparameters(learningRate: 3e-3)),
            ("\(Loss.meanSquaredError)", .meanSquaredError, .relu, AdamHyperparameters(learningRate: 3e-3)),
            ("gelu, binary-cross-entropy, adamw, clip", .binaryCrossEntropy, .gelu, features),
        ]
        return try runs.map { name, loss, activation, hyperparameters in
            let result = try graphReplayCheck(loss: loss, steps: steps, activation: activation, hyperparameters: hyperparameters)
            return BackendCheckResult(
                name: "graph replay vs eager (\(name))",
                sizes: "[13,32,24,5] batch 32, \(steps) steps, \(result.graphsBuilt) graphs, \(result.nodesPatched) patches",
                relativeError: result.stepsAgree ? result.maxDifference : .infinity, threshold: 0)
        }
    }
}
