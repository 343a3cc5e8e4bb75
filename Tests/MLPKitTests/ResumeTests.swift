import Foundation
import XCTest
@testable import MLPKit

/// A run interrupted by a checkpoint and resumed from the file is bit-identical to an
/// uninterrupted run: same parameters, moments and step, through shuffled partial batches.
final class ResumeTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mlpkit-resume-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
    }

    struct Problem {
        let model: MLP
        let dataset: Dataset
        let hyperparameters: AdamHyperparameters
    }

    /// 23 rows (batch 5 leaves a partial batch of 3), random inputs and targets.
    func problem(_ loss: Loss, encoding: TargetEncoding, seed: UInt64) throws -> Problem {
        let layers = [6, 12, 8, 4]
        var random = TestData(seed: seed)
        let inputs = random.normal(23 * 6)
        let targets: [Float]
        switch (loss, encoding) {
        case (_, .classIndices): targets = random.labels(23, classes: 4)
        case (.crossEntropy, .dense): targets = random.probabilities(rows: 23, columns: 4)
        case (.meanSquaredError, .dense): targets = random.normal(23 * 4)
        case (.binaryCrossEntropy, .dense): targets = random.binary(23 * 4)
        }
        return Problem(
            model: try MLP(layerSizes: layers, loss: loss, seed: seed + 1),
            dataset: try Dataset(inputs: inputs, features: 6, targets: targets, encoding: encoding,
                                 targetWidth: encoding.width(outputs: 4)),
            hyperparameters: AdamHyperparameters(learningRate: 0.01, beta1: 0.85, beta2: 0.99))
    }

    struct Outcome {
        let parameters: [Float]
        let state: OptimizerState
        let reports: [EpochReport]
    }

    func configuration(_ length: TrainingConfiguration.Length) -> TrainingConfiguration {
        TrainingConfiguration(batchSize: 5, length: length, shuffle: true, seed: 7)
    }

    func train(_ session: TrainingSession<CPUBackend>, _ data: Dataset, _ length: TrainingConfiguration.Length,
               reports: inout [EpochReport]) throws {
        var collected: [EpochReport] = []
        try session.train(on: try session.upload(data), configuration: configuration(length), onEpoch: { report in
            collected.append(report)
            return true
        })
        reports += collected
    }

    func uninterrupted(_ problem: Problem, useBLAS: Bool, _ length: TrainingConfiguration.Length) throws -> Outcome {
        let session = try TrainingSession(model: problem.model, backend: CPUBackend(useBLAS: useBLAS),
                                          hyperparameters: problem.hyperparameters, batchCapacity: 5)
        var reports: [EpochReport] = []
        try train(session, problem.dataset, length, reports: &reports)
        return Outcome(parameters: try session.model().parameters, state: try session.optimizerState(), reports: reports)
    }

    /// `first`, then a checkpoint file, then a fresh session from the file for `second`.
    func resumed(_ problem: Problem, useBLAS: Bool, _ first: TrainingConfiguration.Length,
                 _ second: TrainingConfiguration.Length) throws -> Outcome {
        var reports: [EpochReport] = []
        let path = folder + "/resume-\(useBLAS).safetensors"
        do {
            let session = try TrainingSession(model: problem.model, backend: CPUBackend(useBLAS: useBLAS),
                                              hyperparameters: problem.hyperparameters, batchCapacity: 5)
            try train(session, problem.dataset, first, reports: &reports)
            try Checkpoint(model: try session.model(), optimizer: try session.optimizerState(),
                           hyperparameters: session.hyperparameters).save(to: path)
        }
        let checkpoint = try Checkpoint.load(from: path)
        let hyperparameters = try XCTUnwrap(checkpoint.hyperparameters)
        XCTAssertEqual(hyperparameters, problem.hyperparameters)
        let session = try TrainingSession(model: try checkpoint.model(), backend: CPUBackend(useBLAS: useBLAS),
                                          hyperparameters: hyperparameters, optimizerState: checkpoint.optimizer,
                                          batchCapacity: 5)
        XCTAssertEqual(session.step, checkpoint.optimizer?.step)
        try train(session, problem.dataset, second, reports: &reports)
        return Outcome(parameters: try session.model().parameters, state: try session.optimizerState(), reports: reports)
    }

    func assertBitIdentical(_ a: Outcome, _ b: Outcome, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.state.step, b.state.step, "\(label) step", file: file, line: line)
        XCTAssertEqual(a.parameters.map(\.bitPattern), b.parameters.map(\.bitPattern), "\(label) parameters", file: file, line: line)
        XCTAssertEqual(a.state.firstMoment.map(\.bitPattern), b.state.firstMoment.map(\.bitPattern), "\(label) m", file: file, line: line)
        XCTAssertEqual(a.state.secondMoment.map(\.bitPattern), b.state.secondMoment.map(\.bitPattern), "\(label) v", file: file, line: line)
    }

    func checkSteps(_ problem: Problem, _ label: String) throws {
        for useBLAS in [false, true] {
            let whole = try uninterrupted(problem, useBLAS: useBLAS, .steps(13))
            XCTAssertEqual(whole.state.step, 13)
            XCTAssertNotEqual(whole.parameters, problem.model.parameters, "\(label): training changed nothing")
            let split = try resumed(problem, useBLAS: useBLAS, .steps(6), .steps(7))
            assertBitIdentical(split, whole, "\(label) BLAS \(useBLAS)")
            // 13 steps of 5 per epoch: epochs 1 and 2 complete, 3 steps of epoch 3
            XCTAssertEqual(whole.reports.map(\.epoch), [1, 2, 3])
            XCTAssertEqual(whole.reports.map(\.stepsInEpoch), [5, 5, 3])
            XCTAssertEqual(whole.reports.map(\.step), [5, 10, 13])
            // the interrupted run reports epoch 2 in two parts: 1 step before, 4 after
            XCTAssertEqual(split.reports.map(\.epoch), [1, 2, 2, 3])
            XCTAssertEqual(split.reports.map(\.stepsInEpoch), [5, 1, 4, 3])
            XCTAssertEqual(split.reports[0].trainingLoss.bitPattern, whole.reports[0].trainingLoss.bitPattern)
            XCTAssertEqual(split.reports[3].trainingLoss.bitPattern, whole.reports[2].trainingLoss.bitPattern)
        }
        // a different shuffle seed takes different batches: the comparison above is not vacuous
        let session = try TrainingSession(model: problem.model, backend: CPUBackend(useBLAS: false),
                                          hyperparameters: problem.hyperparameters, batchCapacity: 5)
        var configuration = configuration(.steps(13))
        configuration.seed = 8
        try session.train(on: try session.upload(problem.dataset), configuration: configuration)
        let whole = try uninterrupted(problem, useBLAS: false, .steps(13))
        XCTAssertNotEqual(try session.model().parameters, whole.parameters, "\(label): the shuffle seed is ignored")
    }

    func testCrossEntropyLabelsResumeBitIdentical() throws {
        try checkSteps(try problem(.crossEntropy, encoding: .classIndices, seed: 101), "cross-entropy labels")
    }

    func testMeanSquaredErrorResumeBitIdentical() throws {
        try checkSteps(try problem(.meanSquaredError, encoding: .dense, seed: 202), "mse")
    }

    func testCrossEntropyProbabilitiesResumeBitIdentical() throws {
        try checkSteps(try problem(.crossEntropy, encoding: .dense, seed: 303), "cross-entropy probabilities")
    }

    func testEpochsResumeBitIdentical() throws {
        for (loss, encoding) in [(Loss.crossEntropy, TargetEncoding.classIndices), (.meanSquaredError, .dense)] {
            let problem = try problem(loss, encoding: encoding, seed: 404)
            for useBLAS in [false, true] {
                let whole = try uninterrupted(problem, useBLAS: useBLAS, .epochs(3))
                XCTAssertEqual(whole.state.step, 15)
                let split = try resumed(problem, useBLAS: useBLAS, .epochs(1), .epochs(2))
                assertBitIdentical(split, whole, "\(loss) epochs BLAS \(useBLAS)")
                XCTAssertEqual(whole.reports.map(\.epoch), [1, 2, 3])
                XCTAssertEqual(split.reports.map(\.epoch), [1, 2, 3])
                XCTAssertEqual(split.reports.map(\.stepsInEpoch), [5, 5, 5])
                XCTAssertEqual(split.reports.map(\.trainingLoss.bitPattern), whole.reports.map(\.trainingLoss.bitPattern))
            }
        }
    }

    /// Epoch reports: a finite mean loss that falls on an easy problem, and the mean is the
    /// row-weighted mean of the batches' losses.
    func testEpochReportsOnALearnableProblem() throws {
        // two classes split by a plane through the origin
        var random = TestData(seed: 505)
        let rows = 203
        let inputs = random.normal(rows * 4)
        var labels: [Float] = []
        for r in 0..<rows {
            let side: Float = inputs[r * 4] + 0.5 * inputs[r * 4 + 1] - inputs[r * 4 + 3]
            labels.append(side > 0 ? 1 : 0)
        }
        XCTAssertTrue(labels.contains(0) && labels.contains(1))
        let dataset = try Dataset(inputs: inputs, features: 4, targets: labels, encoding: .classIndices, targetWidth: 1)
        let model = try MLP(layerSizes: [4, 16, 2], loss: .crossEntropy, seed: 506)
        let session = try TrainingSession(model: model, backend: CPUBackend(),
                                          hyperparameters: AdamHyperparameters(learningRate: 0.01), batchCapacity: 32)
        let data = try session.upload(dataset)
        let initialLoss = try session.evaluate(data).loss
        var reports: [EpochReport] = []
        var steps = 0
        try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .epochs(6), shuffle: true, seed: 7),
                          onStep: { _ in steps += 1 }, onEpoch: { reports.append($0); return true })
        XCTAssertEqual(steps, 6 * 7)
        XCTAssertEqual(reports.map(\.epoch), Array(1...6))
        XCTAssertEqual(reports.map(\.step), (1...6).map { $0 * 7 })
        for report in reports { XCTAssertTrue(report.trainingLoss.isFinite && report.trainingLoss > 0, "\(report)") }
        // the first epoch's mean lies below the starting loss, and every epoch improves on the last
        XCTAssertLessThan(reports[0].trainingLoss, initialLoss)
        for (previous, next) in zip(reports, reports.dropFirst()) {
            XCTAssertLessThan(next.trainingLoss, previous.trainingLoss, "epoch \(next.epoch) did not improve")
        }
        XCTAssertLessThan(reports[5].trainingLoss, 0.5 * reports[0].trainingLoss)
        let (finalLoss, accuracy) = try session.evaluate(data)
        XCTAssertLessThan(finalLoss, 0.5 * initialLoss)
        XCTAssertGreaterThan(try XCTUnwrap(accuracy), 0.9)

        // returning false from onEpoch stops the run after that epoch
        let stopped = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 32)
        var seen = 0
        try stopped.train(on: try stopped.upload(dataset), configuration: TrainingConfiguration(batchSize: 32, length: .epochs(5)),
                          onEpoch: { _ in
                              seen += 1
                              return seen < 2
                          })
        XCTAssertEqual(stopped.step, 14)
    }

    /// One epoch's report against the batch losses computed by `DoubleReference` from the
    /// parameters before each step (in order, so the batches are known): Σ rows·loss / Σ rows.
    func testEpochMeanIsRowWeighted() throws {
        let problem = try problem(.meanSquaredError, encoding: .dense, seed: 606)
        let layers = problem.model.layerSizes
        // step by step, reading the parameters each batch is evaluated with
        let stepper = try TrainingSession(model: problem.model, backend: CPUBackend(useBLAS: false),
                                          hyperparameters: problem.hyperparameters, batchCapacity: 5)
        let stepperData = try stepper.upload(problem.dataset)
        var weighted = 0.0
        for start in stride(from: 0, to: 23, by: 5) {
            let count = min(5, 23 - start)
            let batchLoss = DoubleReference.loss(
                .meanSquaredError, layers: layers, parameters: try stepper.model().parameters.map(Double.init),
                inputs: problem.dataset.inputs[(start * 6)..<((start + count) * 6)].map(Double.init),
                targets: problem.dataset.targets[(start * 4)..<((start + count) * 4)].map(Double.init),
                encoding: .dense, rows: count)
            weighted += batchLoss * Double(count)
            try stepper.trainStep(on: stepperData, positions: start..<(start + count), gathered: false)
        }
        let expected = weighted / 23
        // the same epoch through train(on:configuration:)
        let session = try TrainingSession(model: problem.model, backend: CPUBackend(useBLAS: false),
                                          hyperparameters: problem.hyperparameters, batchCapacity: 5)
        var reports: [EpochReport] = []
        try session.train(on: try session.upload(problem.dataset),
                          configuration: TrainingConfiguration(batchSize: 5, length: .epochs(1), shuffle: false, seed: 7),
                          onEpoch: {
                              reports.append($0)
                              return true
                          })
        XCTAssertEqual(reports.count, 1)
        XCTAssertEqual(reports.first?.stepsInEpoch, 5)
        XCTAssertEqual(try XCTUnwrap(reports.first?.trainingLoss), expected, accuracy: 1e-5 * expected)
        XCTAssertEqual(try session.model().parameters.map(\.bitPattern), try stepper.model().parameters.map(\.bitPattern))
    }
}
