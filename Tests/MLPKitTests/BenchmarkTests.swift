import XCTest
@testable import MLPKit

/// The library's benchmark: bad counts are typed errors (not traps), and a run times exactly the
/// steps asked for (no timing thresholds here: speed belongs to `mlp bench` and the README).
final class BenchmarkTests: XCTestCase {
    func testBadCountsThrow() {
        for (steps, warmup) in [(0, 10), (-3, 10), (5, -1)] {
            XCTAssertThrowsError(try Benchmark.run(.tiny, on: CPUBackend(), steps: steps, warmup: warmup)) { error in
                guard case ModelError.invalidHyperparameter = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try Benchmark.checkCounts(steps: 5, warmup: 0, chunk: 0))
        XCTAssertThrowsError(try Benchmark.run(.tiny, on: CPUBackend(), steps: 5, ceiling: try Benchmark.ProductCeiling(on: CPUBackend(), size: 16),
                                               ceilingSamples: 0))
    }

    func testTimesEveryStepAskedFor() throws {
        let result = try Benchmark.run(.tiny, on: CPUBackend(), steps: 7, warmup: 2)
        XCTAssertEqual(result.stepSeconds.count, 7)
        XCTAssertTrue(result.stepSeconds.allSatisfy { $0 > 0 && $0.isFinite })
        XCTAssertEqual(result.configuration, .tiny)
        // 2·B·(3·Σ in·out − h1·h2) for [32, 64, 64, 1] at B = 64
        XCTAssertEqual(Benchmark.Configuration.tiny.flopsPerStep, 2 * 64 * (3 * (32 * 64 + 64 * 64 + 64) - 32 * 64))
    }

    /// A configuration of the user's own: any depth, loss and activation, its steps timed and its
    /// session built as configured.
    func testCustomConfigurationsRunAsConfigured() throws {
        for (loss, activation) in [(Loss.crossEntropy, ActivationFunction.gelu), (.binaryCrossEntropy, .leakyReLU(slope: 0.1)),
                                   (.meanSquaredError, .tanh)] {
            let configuration = Benchmark.Configuration(name: "custom", layers: [5, 7, 6, 4, 3], batch: 9, loss: loss, activation: activation)
            let result = try Benchmark.run(configuration, on: CPUBackend(), steps: 3, warmup: 1)
            XCTAssertEqual(result.stepSeconds.count, 3)
            XCTAssertEqual(configuration.flopsPerStep, 2 * 9 * Double(3 * (5 * 7 + 7 * 6 + 6 * 4 + 4 * 3) - 5 * 7))
            let (session, _, _) = try Benchmark.randomSession(configuration, on: CPUBackend())
            let model = try session.model()
            XCTAssertEqual(model.layerSizes, [5, 7, 6, 4, 3])
            XCTAssertEqual(model.activation, activation)
            XCTAssertEqual(model.loss, loss)
        }
        XCTAssertEqual(Benchmark.Configuration.mnist.activation, .relu)
    }

    /// A configuration that cannot be built is refused before any data is made for it.
    func testBadConfigurationsThrow() {
        let configurations: [Benchmark.Configuration] = [
            .init(name: "empty", layers: [], batch: 1, loss: .meanSquaredError),
            .init(name: "negative batch", layers: [2, 1], batch: -1, loss: .meanSquaredError),
            .init(name: "no outputs", layers: [2, 0], batch: 1, loss: .crossEntropy),
            .init(name: "huge batch", layers: [2, 1], batch: Int.max, loss: .meanSquaredError),
            // 8 batches of 2^21 rows of 16 inputs and 2 targets: 18·2^24 values, past the 2^28 made at most
            .init(name: "too much data", layers: [16, 2], batch: 1 << 21, loss: .meanSquaredError),
            .init(name: "negative slope", layers: [2, 3, 1], batch: 4, loss: .meanSquaredError, activation: .leakyReLU(slope: -1)),
        ]
        for configuration in configurations {
            XCTAssertThrowsError(try Benchmark.run(configuration, on: CPUBackend(), steps: 1), configuration.name)
        }
        XCTAssertThrowsError(try Benchmark.randomSession(.tiny, on: CPUBackend(), batches: -1))
        XCTAssertThrowsError(try Benchmark.randomSession(.tiny, on: CPUBackend(), batches: 0))
        XCTAssertThrowsError(try Benchmark.ProductCeiling(on: CPUBackend(), size: 1 << 32))
        XCTAssertThrowsError(try Benchmark.ProductCeiling(on: CPUBackend(), size: 0))
    }

    /// Every phase of every clocked step is timed, in step order, and the phases' products add
    /// up to the step's count.
    func testBreakdownClocksEveryPhase() throws {
        let breakdown = try Benchmark.breakdown(.tiny, on: CPUBackend(), steps: 6, warmup: 2,
                                                ceiling: try Benchmark.ProductCeiling(on: CPUBackend(), size: 32), ceilingSamples: 2)
        XCTAssertEqual(breakdown.steps, 6)
        XCTAssertEqual(breakdown.phases.map(\.phase.description),
                       ["batch", "forward 1", "forward 2", "forward 3", "loss", "backward 3", "backward 2", "backward 1", "adam"])
        XCTAssertTrue(breakdown.phases.allSatisfy { $0.seconds >= 0 && $0.seconds.isFinite })
        XCTAssertGreaterThan(breakdown.stepSeconds, 0)
        XCTAssertEqual(breakdown.phases.reduce(0) { $0 + $1.flops }, Benchmark.Configuration.tiny.flopsPerStep)
        // forward 2: 2·64·64·64; backward 2: its weight gradient and the first layer's delta, twice that
        let flops = Dictionary(uniqueKeysWithValues: breakdown.phases.map { ($0.phase, $0.flops) })
        XCTAssertEqual(flops[.forward(2)], 2 * 64 * 64 * 64)
        XCTAssertEqual(flops[.backward(2)], 4 * 64 * 64 * 64)
        XCTAssertEqual(flops[.backward(1)], 2 * 64 * 32 * 64, "no delta for the input")
        XCTAssertEqual(flops[.optimizer], 0)
        XCTAssertEqual(breakdown.productPhases.count, 6)
        XCTAssertNotNil(breakdown.ceilingGflops)
    }

    func testPhasesInStepOrder() {
        XCTAssertEqual(StepPhase.all(layerCount: 1), [.batch, .forward(1), .loss, .backward(1), .optimizer])
        for layers in 1...5 {
            let phases = StepPhase.all(layerCount: layers)
            XCTAssertEqual(phases.count, 2 * layers + 3)
            XCTAssertEqual(phases.map { $0.index(layerCount: layers) }, phases.indices.map { $0 })
        }
        XCTAssertNil(StepPhase.forward(4).index(layerCount: 3))
        XCTAssertNil(StepPhase.backward(0).index(layerCount: 3))
    }

    /// A clocked session trains to the same bits as an unclocked one; evaluating between steps
    /// adds no times; a clock for another depth is refused before the step changes anything.
    func testClockedStepsHaveTheSameBits() throws {
        func train(clocked: Bool) throws -> (parameters: [Float], clock: StepPhaseClock?) {
            let (session, data, schedule) = try Benchmark.randomSession(.mnist, on: CPUBackend(), batches: 2)
            let clock = clocked ? StepPhaseClock(layerCount: 3) : nil
            session.phaseClock = clock
            for index in 0..<4 {
                let (_, positions) = schedule.batch(step: index)
                try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: index % schedule.stepsPerEpoch)
                _ = try session.evaluate(data)
            }
            return (try session.model().parameters, clock)
        }
        let plain = try train(clocked: false), clocked = try train(clocked: true)
        XCTAssertEqual(plain.parameters.map(\.bitPattern), clocked.parameters.map(\.bitPattern))
        let clock = try XCTUnwrap(clocked.clock)
        XCTAssertEqual(clock.steps, 4)
        XCTAssertTrue(clock.seconds.allSatisfy { $0.count == 4 }, "\(clock.seconds.map(\.count))")
        XCTAssertEqual(clock.stepSeconds.count, 4)

        let (session, data, schedule) = try Benchmark.randomSession(.tiny, on: CPUBackend(), batches: 1)
        session.phaseClock = StepPhaseClock(layerCount: 2)
        XCTAssertThrowsError(try session.trainStep(on: data, positions: schedule.batch(step: 0).1, gathered: true)) { error in
            guard case ModelError.invalidHyperparameter(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("2 layers"), message)
        }
        XCTAssertEqual(session.step, 0)
    }
}
