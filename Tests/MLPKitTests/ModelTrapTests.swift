import XCTest
@testable import MLPKit

/// Public model and training calls given bad values throw `ModelError` instead of trapping
/// (overflow, an index out of range, a division by zero or a failed allocation).
final class ModelTrapTests: XCTestCase {
    private enum Kind { case invalidLayerSizes, parameterCount, dataShape, invalidHyperparameter }

    private func assertThrows<T>(_ kind: Kind, _ body: @autoclosure () throws -> T,
                                 file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("no error thrown", file: file, line: line)
        } catch let error as ModelError {
            let matched: Bool
            switch (kind, error) {
            case (.invalidLayerSizes, .invalidLayerSizes), (.parameterCount, .parameterCount),
                 (.dataShape, .dataShape), (.invalidHyperparameter, .invalidHyperparameter):
                matched = true
            default:
                matched = false
            }
            XCTAssertTrue(matched, "expected \(kind), got \(error)", file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
        } catch {
            XCTFail("expected a ModelError, got \(error)", file: file, line: line)
        }
    }

    private func model(_ sizes: [Int], _ loss: Loss = .meanSquaredError) throws -> MLP {
        try MLP(layerSizes: sizes, loss: loss, seed: 0)
    }

    private func session(_ sizes: [Int], _ loss: Loss = .meanSquaredError, capacity: Int = 4) throws -> TrainingSession<CPUBackend> {
        try TrainingSession(model: try model(sizes, loss), backend: CPUBackend(), batchCapacity: capacity)
    }

    private func twoRows() throws -> Dataset {
        try Dataset(inputs: [0, 1], features: 1, targets: [0, 1], encoding: .dense, targetWidth: 1)
    }

    // MARK: - LayerLayout and MLP

    func testLayoutWhoseRunningOffsetWouldOverflowIsRefused() throws {
        let sizes = Array(repeating: 1 << 24, count: 40000)
        assertThrows(.invalidLayerSizes, try LayerLayout(sizes: sizes))
        assertThrows(.invalidLayerSizes, try MLP(layerSizes: sizes, loss: .meanSquaredError, seed: 0))
        // just past the limit, with few layers, is refused the same way
        assertThrows(.invalidLayerSizes, try LayerLayout(sizes: [1 << 24, 1 << 24]))
        XCTAssertEqual(try LayerLayout(sizes: [2, 3, 1]).parameterCount, 13)
    }

    func testWeightsAndBiasOfAnUnknownLayerThrow() throws {
        let m = try model([2, 1])
        assertThrows(.dataShape, try m.weights(layer: 0))
        assertThrows(.dataShape, try m.bias(layer: 5))
        assertThrows(.dataShape, try m.weights(layer: Int.min))
        assertThrows(.dataShape, try m.bias(layer: Int.max))
        XCTAssertEqual(try m.weights(layer: 1).count, 2)
        XCTAssertEqual(try m.bias(layer: 1).count, 1)
    }

    func testWeightsAndBiasAfterTheParametersShrankThrow() throws {
        var m = try model([2, 3, 1])
        m.parameters = []
        assertThrows(.parameterCount, try m.weights(layer: 1))
        assertThrows(.parameterCount, try m.bias(layer: 2))
        m.parameters = [Float](repeating: 0, count: 12)
        assertThrows(.parameterCount, try m.weights(layer: 2))
    }

    func testPermutationOfANonPositiveCountIsEmpty() {
        var generator = SeededGenerator(seed: 0)
        XCTAssertEqual(generator.permutation(-1), [])
        XCTAssertEqual(generator.permutation(Int.min), [])
        XCTAssertEqual(generator.permutation(0), [])
        XCTAssertEqual(generator.permutation(1), [0])
    }

    // MARK: - TrainingSession

    func testOptimizerStateForANegativeCountIsEmpty() {
        let state = OptimizerState.zero(count: -1)
        XCTAssertEqual(state.step, 0)
        XCTAssertEqual(state.firstMoment, [])
        XCTAssertEqual(state.secondMoment, [])
    }

    func testBatchCapacityIsBounded() throws {
        assertThrows(.invalidHyperparameter, try session([2, 1], capacity: Int.max / 2 + 1))
        assertThrows(.invalidHyperparameter, try session([1, 1], capacity: 1 << 40))
        assertThrows(.invalidHyperparameter, try session([1, 1], capacity: Int.max))
        assertThrows(.invalidHyperparameter, try session([1, 1], capacity: TrainingSession<CPUBackend>.maximumBatchCapacity + 1))
        // capacity × width past what one workspace buffer may hold
        assertThrows(.invalidHyperparameter, try session([1 << 8, 1], capacity: 1 << 24))
    }

    func testModelWhoseParametersNoLongerFitItsLayoutIsRefused() throws {
        var m = try model([2, 1])
        m.parameters = [1]
        assertThrows(.parameterCount, try TrainingSession(model: m, backend: CPUBackend(), batchCapacity: 1))
        m.parameters = [1, 2, 3, 4]
        assertThrows(.parameterCount, try TrainingSession(model: m, backend: CPUBackend(), batchCapacity: 1))
    }

    func testLossSumsOutsideTheReservedSlotsThrow() throws {
        let s = try session([2, 1])
        assertThrows(.dataShape, try s.lossSums(count: -1))
        assertThrows(.dataShape, try s.lossSums(count: Int.min))
        assertThrows(.dataShape, try s.lossSums(count: 2))
        XCTAssertEqual(try s.lossSums(count: 0), [])
        XCTAssertEqual(try s.lossSums(count: 1).count, 1)
    }

    func testReservingTooManyOrNegativeLossSumsThrows() throws {
        let s = try session([2, 1])
        assertThrows(.invalidHyperparameter, try s.reserveLossSums(Int.max))
        assertThrows(.invalidHyperparameter, try s.reserveLossSums(-1))
        assertThrows(.invalidHyperparameter, try s.reserveLossSums(TrainingSession<CPUBackend>.maximumLossSums + 1))
        try s.reserveLossSums(3)
        XCTAssertEqual(try s.lossSums(count: 3).count, 3)
    }

    func testDataUploadedByASessionOfAnotherShapeIsRefused() throws {
        let a = try session([4, 10], .crossEntropy), b = try session([2, 3], .crossEntropy)
        let d = try a.upload(try Dataset(inputs: [0, 1, 2, 3, 4, 5, 6, 7], features: 4, targets: [9, 8],
                                         encoding: .classIndices, targetWidth: 1))
        assertThrows(.dataShape, try b.evaluate(d))
        assertThrows(.dataShape, try b.trainStep(on: d, positions: 0..<2, gathered: false))
        // the same features, but labels past the other model's classes
        let c = try session([4, 3], .crossEntropy)
        assertThrows(.dataShape, try c.evaluate(d))
        assertThrows(.dataShape, try c.trainStep(on: d, positions: 0..<2, gathered: false))
        XCTAssertEqual(c.step, 0)
        // dense targets of another width
        let wide = try session([1, 3])
        let dense = try wide.upload(try Dataset(inputs: [0], features: 1, targets: [1, 2, 3], encoding: .dense, targetWidth: 3))
        let narrow = try session([1, 1])
        assertThrows(.dataShape, try narrow.evaluate(dense))
        assertThrows(.dataShape, try narrow.trainStep(on: dense, positions: 0..<1, gathered: false))
        // data of the right shape from another session is still accepted
        let same = try session([4, 10], .crossEntropy)
        _ = try same.evaluate(d)
        try same.trainStep(on: d, positions: 0..<2, gathered: false)
    }

    // MARK: - Training length and batches

    func testEpochCountWhoseStepsOverflowIsRefused() throws {
        let s = try session([1, 1])
        let d = try s.upload(try twoRows())
        let configuration = TrainingConfiguration(batchSize: 1, length: .epochs(Int.max), shuffle: false)
        assertThrows(.invalidHyperparameter, try s.train(on: d, configuration: configuration, onEpoch: { _ in false }))
        XCTAssertEqual(s.step, 0)
    }

    func testBatchScheduleRowsAreBounded() throws {
        assertThrows(.dataShape, try BatchSchedule(rows: Int.max, batchSize: 2, shuffle: false, seed: 0))
        assertThrows(.dataShape, try BatchSchedule(rows: 1 << 40, batchSize: 1, shuffle: false, seed: 0))
        assertThrows(.dataShape, try BatchSchedule(rows: (1 << 24) + 1, batchSize: 1, shuffle: true, seed: 0))
        let largest = try BatchSchedule(rows: 1 << 24, batchSize: 3, shuffle: false, seed: 0)
        XCTAssertEqual(largest.stepsPerEpoch, ((1 << 24) + 2) / 3)
        XCTAssertEqual(try BatchSchedule(rows: 10, batchSize: 3, shuffle: false, seed: 0).stepsPerEpoch, 4)
        XCTAssertEqual(try BatchSchedule(rows: 9, batchSize: 3, shuffle: false, seed: 0).stepsPerEpoch, 3)
        XCTAssertEqual(try BatchSchedule(rows: 1, batchSize: 5, shuffle: false, seed: 0).stepsPerEpoch, 1)
    }

    // MARK: - Dataset

    func testTargetWidthWhoseProductOverflowsIsRefused() {
        assertThrows(.dataShape, try Dataset(inputs: [0, 0], features: 1, targets: [], encoding: .dense, targetWidth: Int.max / 2 + 1))
        assertThrows(.dataShape, try Dataset(inputs: [0, 0], features: 1, targets: [], encoding: .dense, targetWidth: Int.max))
    }

    func testLabelClassCountOfTargetsThatAreNotLabelsIsNil() throws {
        XCTAssertNil(try Dataset(inputs: [0], features: 1, targets: [1e30], encoding: .dense, targetWidth: 1).labelClassCount)
        XCTAssertNil(try Dataset(inputs: [0], features: 1, targets: [-3e30], encoding: .dense, targetWidth: 1).labelClassCount)
        XCTAssertNil(try Dataset(inputs: [0], features: 1, targets: [-2], encoding: .dense, targetWidth: 1).labelClassCount)
        XCTAssertNil(try Dataset(inputs: [0], features: 1, targets: [0.5], encoding: .dense, targetWidth: 1).labelClassCount)
        XCTAssertEqual(try Dataset(inputs: [0, 0], features: 1, targets: [3, 1], encoding: .classIndices, targetWidth: 1).labelClassCount, 4)
    }

    func testDenseTargetsTooLargeForLabelsStillFitADenseModel() throws {
        // labelClassCount is only used for class indices
        let d = try Dataset(inputs: [0], features: 1, targets: [1e30], encoding: .dense, targetWidth: 1)
        try d.validate(for: try LayerLayout(sizes: [1, 1]), loss: .meanSquaredError)
    }

    func testSubsetOutsideTheRowsThrows() throws {
        let d = try Dataset(inputs: [0], features: 1, targets: [0], encoding: .dense, targetWidth: 1)
        assertThrows(.dataShape, try d.subset([5]))
        assertThrows(.dataShape, try d.subset([1]))
        assertThrows(.dataShape, try d.subset([-1]))
        assertThrows(.dataShape, try d.subset([0, Int.min]))
        XCTAssertEqual(try d.subset([0, 0]).rows, 2)
    }

    func testEmptySubsetIsRefused() throws {
        let d = try Dataset(inputs: [0], features: 1, targets: [0], encoding: .dense, targetWidth: 1)
        assertThrows(.dataShape, try d.subset([Int]()))
    }

    // MARK: - Learning-rate schedules

    func testRateOfAnInvalidScheduleIsZeroInsteadOfATrap() {
        XCTAssertEqual(LearningRateSchedule.step(stepSize: 0, gamma: 0.5).rate(base: 1, step: 1), 0)
        XCTAssertEqual(LearningRateSchedule.step(stepSize: -1, gamma: 0.5).rate(base: 1, step: 10), 0)
        XCTAssertEqual(LearningRateSchedule.step(stepSize: 1, gamma: 0.5, start: Int.min).rate(base: 1, step: Int.max), 0)
        XCTAssertEqual(LearningRateSchedule.cosine(warmupSteps: Int.min, totalSteps: 10).rate(base: 1, step: 5), 0)
        XCTAssertEqual(LearningRateSchedule.cosine(warmupSteps: 0, totalSteps: 0).rate(base: 1, step: 5), 0)
        XCTAssertEqual(LearningRateSchedule.cosine(warmupSteps: 2, totalSteps: 10, start: -1).rate(base: 1, step: 5), 0)
    }

    func testRateAtExtremeStepsOfAValidSchedule() {
        // a step at or before the start counts as the schedule's first step
        XCTAssertEqual(LearningRateSchedule.step(stepSize: 1, gamma: 1, start: 1).rate(base: 1, step: Int.min), 1)
        XCTAssertEqual(LearningRateSchedule.step(stepSize: 2, gamma: 0.5, start: 3).rate(base: 1, step: Int.min), 1)
        XCTAssertEqual(LearningRateSchedule.cosine(warmupSteps: 4, totalSteps: 10).rate(base: 1, step: Int.min), 0.25)
        XCTAssertEqual(LearningRateSchedule.cosine(warmupSteps: 4, totalSteps: 10, start: 7).rate(base: 1, step: Int.min), 0.25)
        XCTAssertEqual(LearningRateSchedule.cosine(warmupSteps: 4, totalSteps: 10).rate(base: 1, step: Int.max), 0)
        XCTAssertEqual(LearningRateSchedule.step(stepSize: 1, gamma: 0.5).rate(base: 1, step: Int.max), 0)
    }

    func testSessionLearningRateOfAnInvalidScheduleThrows() throws {
        let s = try session([1, 1])
        s.schedule = .step(stepSize: 0, gamma: 0.5)
        assertThrows(.invalidHyperparameter, try s.learningRate(step: 1))
        s.schedule = .cosine(warmupSteps: Int.min, totalSteps: 10)
        assertThrows(.invalidHyperparameter, try s.learningRate(step: 5))
        // and training with it is refused before any step
        let d = try s.upload(try twoRows())
        assertThrows(.invalidHyperparameter, try s.train(on: d, configuration: TrainingConfiguration(batchSize: 1, length: .steps(1), shuffle: false)))
        XCTAssertEqual(s.step, 0)
        s.schedule = .step(stepSize: 2, gamma: 0.5)
        XCTAssertEqual(try s.learningRate(step: 3), s.hyperparameters.learningRate * 0.5)
    }
}
