import Foundation
import XCTest
@testable import MLPKit

/// Learning-rate schedules against their formulas, the checkpoint round trip, a resumed run
/// continuing mid-schedule bit for bit, and early stopping's bookkeeping.
final class ScheduleTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mlpkit-schedule-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
    }

    func testConstant() {
        for t in [1, 2, 1000] { XCTAssertEqual(LearningRateSchedule.constant.rate(base: 0.0123, step: t), 0.0123) }
    }

    /// α·γ^floor((t − 1)/N) with α = 0.1, γ = 0.5, N = 3, by hand.
    func testStepDecay() {
        let schedule = LearningRateSchedule.step(stepSize: 3, gamma: 0.5)
        let expected: [(Int, Double)] = [(1, 0.1), (2, 0.1), (3, 0.1), (4, 0.05), (6, 0.05), (7, 0.025), (10, 0.0125), (31, 0.1 / 1024)]
        for (t, rate) in expected {
            XCTAssertEqual(Double(schedule.rate(base: 0.1, step: t)), rate, accuracy: 1e-7 * rate, "t=\(t)")
            // and exactly the formula computed in Float64, rounded once
            XCTAssertEqual(schedule.rate(base: 0.1, step: t), Float(Double(Float(0.1)) * pow(0.5, Double((t - 1) / 3))))
        }
        // a schedule begun at step 100 counts from there
        let later = LearningRateSchedule.step(stepSize: 3, gamma: 0.5, start: 100)
        XCTAssertEqual(later.rate(base: 0.1, step: 101), 0.1)
        XCTAssertEqual(later.rate(base: 0.1, step: 104), schedule.rate(base: 0.1, step: 4))
    }

    /// α·t/W for t ≤ W, then α·0.5·(1 + cos(π·(t − W)/(T − W))), with α = 0.01, W = 4, T = 20.
    func testCosineWithWarmup() {
        let schedule = LearningRateSchedule.cosine(warmupSteps: 4, totalSteps: 20)
        let alpha = 0.01
        let expected: [(Int, Double)] = [
            (1, 0.0025), (2, 0.005), (3, 0.0075), (4, 0.01),
            (5, alpha * 0.5 * (1 + cos(Double.pi / 16))),   // just past the warm-up
            (12, 0.005),                                     // halfway: cos(π/2) = 0
            (16, alpha * 0.5 * (1 + cos(Double.pi * 12 / 16))),
            (19, alpha * 0.5 * (1 + cos(Double.pi * 15 / 16))),
            (20, 0), (25, 0),
        ]
        for (t, rate) in expected {
            XCTAssertEqual(Double(schedule.rate(base: 0.01, step: t)), rate, accuracy: 1e-9 + 1e-7 * rate, "t=\(t)")
        }
        // no warm-up: starts at α and falls monotonically
        let plain = LearningRateSchedule.cosine(warmupSteps: 0, totalSteps: 10)
        XCTAssertEqual(Double(plain.rate(base: 1, step: 1)), 0.5 * (1 + cos(Double.pi / 10)), accuracy: 1e-7)
        let rates = (1...10).map { plain.rate(base: 1, step: $0) }
        XCTAssertEqual(rates, rates.sorted(by: >))
        // begun at step 50
        XCTAssertEqual(LearningRateSchedule.cosine(warmupSteps: 4, totalSteps: 20, start: 50).rate(base: 0.01, step: 51), 0.0025)
    }

    func testValidationAndMetadata() throws {
        for schedule in [LearningRateSchedule.constant, .step(stepSize: 7, gamma: 0.3, start: 2),
                         .cosine(warmupSteps: 10, totalSteps: 300, start: 40), .cosine(warmupSteps: 0, totalSteps: 1)] {
            XCTAssertEqual(try LearningRateSchedule(metadata: schedule.metadata), schedule)
            let model = try MLP(layerSizes: [2, 2], loss: .meanSquaredError, seed: 0)
            let decoded = try Checkpoint.decode(try Checkpoint(model: model, schedule: schedule).encoded())
            XCTAssertEqual(decoded.schedule, schedule)
            XCTAssertTrue(decoded.metadata.isEmpty, "\(decoded.metadata)")
        }
        XCTAssertNil(try LearningRateSchedule(metadata: [:]))
        XCTAssertThrowsError(try LearningRateSchedule(metadata: ["schedule": "exponential"]))
        XCTAssertThrowsError(try LearningRateSchedule(metadata: ["schedule": "step", "schedule.gamma": "0.5", "schedule.start_step": "0"]))
        for bad in [LearningRateSchedule.step(stepSize: 0, gamma: 0.5), .step(stepSize: 2, gamma: 0), .step(stepSize: 2, gamma: .nan),
                    .cosine(warmupSteps: -1, totalSteps: 10), .cosine(warmupSteps: 10, totalSteps: 10), .cosine(warmupSteps: 0, totalSteps: 0)] {
            XCTAssertThrowsError(try bad.validate(), "\(bad)")
        }
    }

    // MARK: - In a session

    func problem(seed: UInt64) throws -> (model: MLP, dataset: Dataset) {
        var random = TestData(seed: seed)
        let inputs = random.normal(23 * 5), labels = random.labels(23, classes: 3)
        return (try MLP(layerSizes: [5, 9, 7, 3], activation: .tanh, loss: .crossEntropy, seed: seed + 1),
                try Dataset(inputs: inputs, features: 5, targets: labels, encoding: .classIndices, targetWidth: 1))
    }

    /// The session steps at α_t: the same as setting the learning rate by hand before each step.
    func testSessionUsesTheScheduledRate() throws {
        let (model, dataset) = try problem(seed: 1)
        let schedule = LearningRateSchedule.cosine(warmupSteps: 3, totalSteps: 9)
        let h = AdamHyperparameters(learningRate: 0.02)
        let scheduled = try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: h, batchCapacity: 5)
        scheduled.schedule = schedule
        let manual = try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: h, batchCapacity: 5)
        let (a, b) = (try scheduled.upload(dataset), try manual.upload(dataset))
        for t in 1...9 {
            let positions = ((t - 1) % 4 * 5)..<min((t - 1) % 4 * 5 + 5, 23)
            XCTAssertEqual(try scheduled.learningRate(step: t), schedule.rate(base: 0.02, step: t))
            let before = try scheduled.model().parameters
            try scheduled.trainStep(on: a, positions: positions, gathered: false)
            let after = try scheduled.model().parameters
            if t == 9 {
                // the last step runs at rate 0: with no weight decay, nothing moves
                XCTAssertEqual(after.map(\.bitPattern), before.map(\.bitPattern))
            } else {
                XCTAssertNotEqual(after, before, "t=\(t) moved nothing")
            }
            manual.hyperparameters.learningRate = schedule.rate(base: 0.02, step: t)
            try manual.trainStep(on: b, positions: positions, gathered: false)
            XCTAssertEqual(try scheduled.model().parameters.map(\.bitPattern), try manual.model().parameters.map(\.bitPattern), "t=\(t)")
        }
        XCTAssertEqual(schedule.rate(base: 0.02, step: 9), 0)
    }

    /// 30 steps with cosine warm-up (and AdamW, clipping, tanh and shuffled partial batches)
    /// against 11 steps, a checkpoint file, and 19 more from the file: bit for bit the same
    /// parameters, moments and step, and likewise for step decay.
    func testResumeMidScheduleIsBitIdentical() throws {
        let (model, dataset) = try problem(seed: 2)
        let h = AdamHyperparameters(learningRate: 0.01, beta1: 0.85, beta2: 0.99, weightDecay: 0.05, clipNorm: 0.5)
        for schedule in [LearningRateSchedule.cosine(warmupSteps: 6, totalSteps: 30), .step(stepSize: 4, gamma: 0.7)] {
            for useBLAS in [false, true] {
                func configuration(_ steps: Int) -> TrainingConfiguration {
                    TrainingConfiguration(batchSize: 5, length: .steps(steps), shuffle: true, seed: 9)
                }
                let whole = try TrainingSession(model: model, backend: CPUBackend(useBLAS: useBLAS), hyperparameters: h, batchCapacity: 5)
                whole.schedule = schedule
                try whole.train(on: try whole.upload(dataset), configuration: configuration(30))

                let first = try TrainingSession(model: model, backend: CPUBackend(useBLAS: useBLAS), hyperparameters: h, batchCapacity: 5)
                first.schedule = schedule
                try first.train(on: try first.upload(dataset), configuration: configuration(11))
                let path = folder + "/resume.safetensors"
                try Checkpoint(model: try first.model(), optimizer: try first.optimizerState(), hyperparameters: first.hyperparameters,
                               schedule: first.schedule).save(to: path)
                let checkpoint = try Checkpoint.load(from: path)
                XCTAssertEqual(checkpoint.schedule, schedule)
                XCTAssertEqual(checkpoint.hyperparameters, h)
                XCTAssertEqual(checkpoint.activation, .tanh)
                let resumed = try TrainingSession(model: try checkpoint.model(), backend: CPUBackend(useBLAS: useBLAS),
                                                  hyperparameters: try XCTUnwrap(checkpoint.hyperparameters),
                                                  optimizerState: checkpoint.optimizer, batchCapacity: 5)
                resumed.schedule = try XCTUnwrap(checkpoint.schedule)
                try resumed.train(on: try resumed.upload(dataset), configuration: configuration(19))

                let (a, b) = (try whole.optimizerState(), try resumed.optimizerState())
                XCTAssertEqual(a.step, 30)
                XCTAssertEqual(b.step, 30)
                XCTAssertEqual(try whole.model().parameters.map(\.bitPattern), try resumed.model().parameters.map(\.bitPattern), "\(schedule)")
                XCTAssertEqual(a.firstMoment.map(\.bitPattern), b.firstMoment.map(\.bitPattern))
                XCTAssertEqual(a.secondMoment.map(\.bitPattern), b.secondMoment.map(\.bitPattern))

                // resuming without the schedule (constant) gives a different model: the check is not vacuous
                let forgetful = try TrainingSession(model: try checkpoint.model(), backend: CPUBackend(useBLAS: useBLAS),
                                                    hyperparameters: h, optimizerState: checkpoint.optimizer, batchCapacity: 5)
                try forgetful.train(on: try forgetful.upload(dataset), configuration: configuration(19))
                XCTAssertNotEqual(try forgetful.model().parameters, try whole.model().parameters)
            }
        }
    }

    // MARK: - Early stopping

    func testEarlyStoppingBookkeeping() throws {
        var stopping = try EarlyStopping(patience: 3)
        let losses = [1.0, 0.8, 0.85, 0.7, 0.75, 0.72, 0.71, 0.5]
        var decisions: [EarlyStopping.Decision] = []
        for (index, loss) in losses.enumerated() {
            let decision = stopping.record(epoch: index + 1, validationLoss: loss)
            decisions.append(decision)
            if decision == .stop { break }
        }
        XCTAssertEqual(decisions, [.improved, .improved, .wait, .improved, .wait, .wait, .stop])
        XCTAssertEqual(stopping.best?.epoch, 4)
        XCTAssertEqual(stopping.best?.loss, 0.7)
        // equal is not better, and NaN never is
        var strict = try EarlyStopping(patience: 2)
        XCTAssertEqual(strict.record(epoch: 1, validationLoss: 0.5), .improved)
        XCTAssertEqual(strict.record(epoch: 2, validationLoss: 0.5), .wait)
        XCTAssertEqual(strict.record(epoch: 3, validationLoss: .nan), .stop)
        XCTAssertEqual(strict.best?.epoch, 1)
        XCTAssertThrowsError(try EarlyStopping(patience: 0))
    }

    /// Early stopping in a training loop, as `mlp train --patience` runs it: the model kept is
    /// the best epoch's, whose validation loss is the lowest seen, and the run stops `patience`
    /// epochs after it. Validation labels unrelated to the inputs make the model overfit.
    func testEarlyStoppingKeepsTheBestEpoch() throws {
        var random = TestData(seed: 3)
        let inputs = random.normal(120 * 6), labels = random.labels(120, classes: 3)
        let all = try Dataset(inputs: inputs, features: 6, targets: labels, encoding: .classIndices, targetWidth: 1)
        let (training, validation) = try all.split(validationFraction: 0.5, seed: 4)
        let session = try TrainingSession(model: try MLP(layerSizes: [6, 64, 3], loss: .crossEntropy, seed: 5), backend: CPUBackend(),
                                          hyperparameters: AdamHyperparameters(learningRate: 0.01), batchCapacity: 60)
        let (trainingData, validationData) = (try session.upload(training), try session.upload(validation))
        var stopping = try EarlyStopping(patience: 3)
        var best: MLP?
        var losses: [Double] = []
        var stoppedAfter: Int?
        try session.train(on: trainingData, configuration: TrainingConfiguration(batchSize: 16, length: .epochs(200)), onEpoch: { report in
            let loss = try session.evaluate(validationData).loss
            losses.append(loss)
            switch stopping.record(epoch: report.epoch, validationLoss: loss) {
            case .improved: best = try session.model()
            case .wait: break
            case .stop:
                stoppedAfter = report.epoch
                return false
            }
            return true
        })
        let stopped = try XCTUnwrap(stoppedAfter, "the run never stopped")
        let bestEpoch = try XCTUnwrap(stopping.best?.epoch)
        XCTAssertEqual(stopped, bestEpoch + 3)
        XCTAssertEqual(losses.count, stopped)
        XCTAssertEqual(losses.min(), losses[bestEpoch - 1])
        XCTAssertEqual(session.step, stopped * 4)
        // the kept model is the best epoch's: its validation loss is the best one, bit for bit
        let check = try TrainingSession(model: try XCTUnwrap(best), backend: CPUBackend(), batchCapacity: 60)
        XCTAssertEqual(try check.evaluate(try check.upload(validation)).loss, losses[bestEpoch - 1])
        XCTAssertNotEqual(try session.model(), best)
    }
}
