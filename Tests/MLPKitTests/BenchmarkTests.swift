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

    /// A configuration that cannot be built is refused before any data is made for it.
    func testBadConfigurationsThrow() {
        let configurations: [Benchmark.Configuration] = [
            .init(name: "empty", layers: [], batch: 1, loss: .meanSquaredError),
            .init(name: "negative batch", layers: [2, 1], batch: -1, loss: .meanSquaredError),
            .init(name: "no outputs", layers: [2, 0], batch: 1, loss: .crossEntropy),
            .init(name: "huge batch", layers: [2, 1], batch: Int.max, loss: .meanSquaredError),
        ]
        for configuration in configurations {
            XCTAssertThrowsError(try Benchmark.run(configuration, on: CPUBackend(), steps: 1), configuration.name)
        }
        XCTAssertThrowsError(try Benchmark.randomSession(.tiny, on: CPUBackend(), batches: -1))
        XCTAssertThrowsError(try Benchmark.randomSession(.tiny, on: CPUBackend(), batches: 0))
        XCTAssertThrowsError(try Benchmark.ProductCeiling(on: CPUBackend(), size: 1 << 32))
        XCTAssertThrowsError(try Benchmark.ProductCeiling(on: CPUBackend(), size: 0))
    }
}
