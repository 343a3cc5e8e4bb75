/// How long and how to train.
public struct TrainingConfiguration: Sendable, Equatable {
    /// How long a run lasts.
    public enum Length: Sendable, Equatable {
        /// Whole passes over the data (each `ceil(rows / batchSize)` steps).
        case epochs(Int)
        /// An exact number of steps.
        case steps(Int)
    }

    public var batchSize: Int
    public var length: Length
    public var shuffle: Bool
    /// Seeds the shuffling (and nothing else: the model's initialisation has its own seed).
    public var seed: UInt64

    public init(batchSize: Int = 128, length: Length = .epochs(10), shuffle: Bool = true, seed: UInt64 = 0) {
        self.batchSize = batchSize
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
    }
}

/// What a training run reports after each epoch (or the part of one a run ends in).
public struct EpochReport: Sendable, Equatable {
    /// 1-based epoch number, counted from step 1 of the model's history.
    public var epoch: Int
    /// Adam's t after the epoch.
    public var step: Int
    /// The mean of the seed's loss over the epoch's rows (each batch weighted by its rows).
    public var trainingLoss: Double
    /// Steps of this epoch that this run took.
    public var stepsInEpoch: Int
}

/// What a training run reports after each step, for progress display.
public struct StepReport: Sendable, Equatable {
    public var step: Int
    public var stepsDone: Int
    public var stepsTotal: Int
    public var epoch: Int
    public var rowsDone: Int
}

/// The model and Adam's state at a periodic checkpoint of a training run, both checked finite.
public struct TrainingSnapshot {
    /// Adam's t: the steps the model has taken.
    public var step: Int
    public var model: MLP
    public var optimizer: OptimizerState
}

extension TrainingSession {
    /// Trains on `data` for the configured length, continuing from the session's step t so a
    /// resumed run takes exactly the batches an uninterrupted one would.
    ///
    /// - Parameters:
    ///   - onStep: called after every step (cheap; the loss is not read back for it).
    ///   - onEpoch: called when an epoch ends, and at the end of the run; return false to stop.
    /// - Throws: `ModelError.nonFinite` naming the step when the loss or the parameters become NaN
    ///   or infinite, and the backend's errors.
    public func train(
        on data: DeviceDataset<B>, configuration: TrainingConfiguration,
        onStep: (StepReport) -> Void = { _ in },
        onEpoch: (EpochReport) throws -> Bool = { _ in true }
    ) throws {
        try train(on: data, configuration: configuration, checkpointEvery: 0, onStep: onStep, onEpoch: onEpoch,
                  onCheckpoint: { _ in })
    }

    /// Trains as ``train(on:configuration:onStep:onEpoch:)`` does, and every `checkpointEvery`
    /// steps (whenever Adam's t is a multiple of it; 0 for never) hands `onCheckpoint` the model
    /// and Adam's state, after checking that the loss of every step so far in the epoch and every
    /// parameter and moment is finite. So a snapshot is never NaN: the run throws instead, and
    /// the last snapshot handed out is the last good one.
    ///
    /// - Throws: `ModelError.nonFinite` naming the step when the loss or the parameters become NaN
    ///   or infinite (checked at every snapshot, at the end of every epoch and at the end of the
    ///   run), what `onCheckpoint` throws, and the backend's errors.
    public func train(
        on data: DeviceDataset<B>, configuration: TrainingConfiguration, checkpointEvery: Int,
        onStep: (StepReport) -> Void = { _ in },
        onEpoch: (EpochReport) throws -> Bool = { _ in true },
        onCheckpoint: (TrainingSnapshot) throws -> Void
    ) throws {
        guard checkpointEvery >= 0 else {
            throw ModelError.invalidHyperparameter("checkpoint interval must be at least 0, got \(checkpointEvery)")
        }
        // an invalid learning-rate schedule is refused before any work (each step checks it too)
        try self.schedule.validate()
        let schedule = try BatchSchedule(rows: data.rows, batchSize: min(configuration.batchSize, batchCapacity),
                                         shuffle: configuration.shuffle, seed: configuration.seed)
        let total: Int
        switch configuration.length {
        case .epochs(let epochs):
            guard epochs >= 0 else { throw ModelError.invalidHyperparameter("epochs must be at least 0, got \(epochs)") }
            let (product, overflow) = epochs.multipliedReportingOverflow(by: schedule.stepsPerEpoch)
            guard !overflow else {
                throw ModelError.invalidHyperparameter("\(epochs) epochs of \(schedule.stepsPerEpoch) steps is more steps than can be counted")
            }
            total = product
        case .steps(let steps):
            guard steps >= 0 else { throw ModelError.invalidHyperparameter("steps must be at least 0, got \(steps)") }
            total = steps
        }
        try reserveLossSums(schedule.stepsPerEpoch)
        var currentEpoch = -1
        var slotsUsed = 0, rowsInEpoch = 0, rowsDone = 0
        func finishEpoch() throws -> Bool {
            guard slotsUsed > 0 else { return true }
            let sums = try lossSums(count: slotsUsed)
            let mean = sums.reduce(0.0) { $0 + Double($1) } / Double(rowsInEpoch)
            if !mean.isFinite {
                // name the first step whose loss was not finite, and its value
                let bad = sums.firstIndex { !$0.isFinite } ?? 0
                let value = sums[bad].isFinite ? mean : Double(sums[bad])
                throw ModelError.nonFinite("the loss became \(Self.describe(value)) at step \(step - slotsUsed + bad + 1)")
            }
            let report = EpochReport(epoch: currentEpoch + 1, step: step, trainingLoss: mean, stepsInEpoch: slotsUsed)
            slotsUsed = 0
            rowsInEpoch = 0
            return try onEpoch(report)
        }
        // The NaN guard for snapshots: this epoch's losses so far, then the parameters and moments.
        func checkedSnapshot() throws -> TrainingSnapshot {
            if slotsUsed > 0 {
                let sums = try lossSums(count: slotsUsed)
                if let bad = sums.firstIndex(where: { !$0.isFinite }) {
                    throw ModelError.nonFinite("the loss became \(Self.describe(Double(sums[bad]))) at step \(step - slotsUsed + bad + 1)")
                }
            }
            let snapshot = TrainingSnapshot(step: step, model: try model(), optimizer: try optimizerState())
            try Self.checkFinite(snapshot)
            return snapshot
        }
        for done in 0..<total {
            let (epoch, positions) = schedule.batch(step: step)
            if epoch != currentEpoch {
                if !(try finishEpoch()) { _ = try checkedSnapshot(); return }
                currentEpoch = epoch
                if schedule.shuffle { try setRowOrder(schedule.order(epoch: epoch)) }
            }
            try runGraphedWhenPossible {
                try trainStep(on: data, positions: positions, gathered: schedule.shuffle, lossSlot: slotsUsed)
            }
            slotsUsed += 1
            rowsInEpoch += positions.count
            rowsDone += positions.count
            onStep(StepReport(step: step, stepsDone: done + 1, stepsTotal: total, epoch: epoch + 1, rowsDone: rowsDone))
            if checkpointEvery > 0, step % checkpointEvery == 0 {
                try onCheckpoint(try checkedSnapshot())
            }
        }
        _ = try finishEpoch()
        // the last step's update can turn the parameters NaN after a finite loss
        _ = try checkedSnapshot()
    }

    /// Throws `ModelError.nonFinite` naming the step when a parameter or moment is NaN or infinite.
    static func checkFinite(_ snapshot: TrainingSnapshot) throws {
        if let bad = snapshot.model.parameters.first(where: { !$0.isFinite }) {
            throw ModelError.nonFinite("a parameter became \(describe(Double(bad))) by step \(snapshot.step)")
        }
        let moments = snapshot.optimizer
        if let bad = moments.firstMoment.first(where: { !$0.isFinite }) ?? moments.secondMoment.first(where: { !$0.isFinite }) {
            throw ModelError.nonFinite("Adam's moments became \(describe(Double(bad))) by step \(snapshot.step) (the gradients overflow)")
        }
    }

    /// `nan`, `inf` or `-inf` (never `-nan`).
    static func describe(_ value: Double) -> String { value.isNaN ? "nan" : "\(value)" }

    /// Runs one step's operations as a replayed graph on backends that record them
    /// (`StepGraphCapable`) when `usesStepGraphs` is on; else queues them as they come.
    func runGraphedWhenPossible(_ body: () throws -> Void) throws {
        if usesStepGraphs, phaseClock == nil, let recorder = backend as? any StepGraphCapable {
            try recorder.graphed(body)
        } else {
            try body()
        }
    }
}
