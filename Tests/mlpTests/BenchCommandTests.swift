import Foundation
import MLPKit
import XCTest

/// `mlp bench`: what it reports and that its numbers hang together (never how fast: timings
/// belong in the benchmark and the README, not in a test).
final class BenchCommandTests: XCTestCase {
    private func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: try makeTemporaryFolder(self))
    }

    func testJSONReportIsConsistent() throws {
        let result = try run(["bench", "--config", "tiny", "--device", "cpu", "--steps", "12", "--json"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let results = try XCTUnwrap(object["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 1)
        let row = results[0]
        XCTAssertEqual(row["name"] as? String, "tiny")
        XCTAssertEqual(row["layers"] as? [Int], [32, 64, 64, 1])
        XCTAssertEqual(row["batch"] as? Int, 64)
        let median = try XCTUnwrap(row["step_seconds"] as? Double)
        let minimum = try XCTUnwrap(row["min_seconds"] as? Double)
        let maximum = try XCTUnwrap(row["max_seconds"] as? Double)
        XCTAssertGreaterThan(minimum, 0)
        XCTAssertLessThanOrEqual(minimum, median)
        XCTAssertLessThanOrEqual(median, maximum)
        // 2·B·(3·Σ in·out − in·h1), counted by hand for [32,64,64,1] at batch 64
        let flops = 2.0 * 64 * (3 * (32 * 64 + 64 * 64 + 64 * 1) - 32 * 64)
        let gflops = try XCTUnwrap(row["gflops"] as? Double)
        XCTAssertEqual(gflops, flops / median / 1e9, accuracy: 1e-9 * gflops)
        // the ceiling the row is compared with was measured during its own steps
        let ceiling = try XCTUnwrap(row["ceiling_gflops"] as? Double)
        XCTAssertGreaterThan(ceiling, 0)
        XCTAssertEqual(try XCTUnwrap(row["fraction_of_ceiling"] as? Double), gflops / ceiling, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(object["ceiling_gflops"] as? Double), ceiling, accuracy: 1e-9 * ceiling,
                       "one configuration: the report's ceiling is its samples'")
    }

    func testTextReportHasEveryChosenConfiguration() throws {
        let result = try run(["bench", "--config", "tiny", "--device", "cpu", "--steps", "3"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let lines = result.standardOutput.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("product ceiling: ") && $0.contains("GFLOP/s") }, result.standardOutput)
        let rows = lines.filter { $0.hasPrefix("tiny ") }
        XCTAssertEqual(rows.count, 1, result.standardOutput)
        XCTAssertTrue(rows[0].hasSuffix("%"), String(rows[0]))
        XCTAssertFalse(lines.contains { $0.hasPrefix("mnist") || $0.hasPrefix("wide") })
    }

    /// The ceiling is timed once per ten steps, 9 to 31 times, each sample spread over the steps.
    func testCeilingSamplesGrowWithTheSteps() throws {
        XCTAssertEqual([1, 80, 99, 120, 200, 300, 1000].map { Benchmark.ceilingSamples(steps: $0) }, [9, 9, 10, 13, 21, 31, 31])
        let result = try run(["bench", "--config", "tiny", "--device", "cpu", "--steps", "120"])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertTrue(result.standardOutput.contains("median of 13 products"), result.standardOutput)
    }

    /// --layers: a network of the user's own, reported as "custom" with its loss and activation.
    func testCustomNetworkIsReported() throws {
        let result = try run(["bench", "--layers", "13, 32,32,3", "--batch-size", "16", "--loss", "cross-entropy", "--activation", "tanh",
                              "--device", "cpu", "--steps", "3", "--json"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let results = try XCTUnwrap(object["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 1, "only the custom network")
        let row = results[0]
        XCTAssertEqual(row["name"] as? String, "custom")
        XCTAssertEqual(row["layers"] as? [Int], [13, 32, 32, 3])
        XCTAssertEqual(row["batch"] as? Int, 16)
        XCTAssertEqual(row["loss"] as? String, "cross-entropy")
        XCTAssertEqual(row["activation"] as? String, "tanh")
        let median = try XCTUnwrap(row["step_seconds"] as? Double), gflops = try XCTUnwrap(row["gflops"] as? Double)
        let flops = 2.0 * 16 * Double(3 * (13 * 32 + 32 * 32 + 32 * 3) - 13 * 32)
        XCTAssertEqual(gflops, flops / median / 1e9, accuracy: 1e-9 * gflops)

        // the defaults: batch 128, mse, relu; and the standard rows say theirs
        let plain = try run(["bench", "--layers", "4,8,2", "--device", "cpu", "--steps", "2"])
        XCTAssertEqual(plain.status, 0, plain.standardError)
        XCTAssertTrue(plain.standardOutput.split(separator: "\n").contains { $0.hasPrefix("custom  4,8,2 ") && $0.contains(" 128 ") },
                      plain.standardOutput)
        let tiny = try run(["bench", "--config", "tiny", "--device", "cpu", "--steps", "2", "--json"])
        XCTAssertTrue(tiny.standardOutput.contains(#""loss":"mse","activation":"relu""#), tiny.standardOutput)
    }

    func testBadFlagsAreOneLineErrors() throws {
        for (arguments, mention) in [(["bench", "--steps", "0"], "--steps"), (["bench", "--config", "huge"], "huge"),
                                     (["bench", "--device", "tpu"], "tpu"), (["bench", "--layers", "4,0,2"], "'0'"),
                                     (["bench", "--layers", "4"], "at least an input and an output"),
                                     (["bench", "--layers", "4,x"], "'x'"), (["bench", "--config", "tiny", "--layers", "4,2"], "--config"),
                                     (["bench", "--batch-size", "8"], "--batch-size goes with --layers"),
                                     (["bench", "--activation", "gelu"], "--activation goes with --layers"),
                                     (["bench", "--layers", "4,2", "--batch-size", "0"], "--batch-size"),
                                     (["bench", "--layers", "4,2", "--loss", "hinge"], "hinge"),
                                     (["bench", "--layers", "1000000,2", "--batch-size", "1000"], "random data"),
                                     (["bench", "--layers", "100000,100000"], "parameters")] {
            let result = try run(arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(result.standardOutput.isEmpty, "\(arguments): \(result.standardOutput)")
            XCTAssertTrue(result.standardError.contains(mention), "\(arguments): \(result.standardError)")
            XCTAssertEqual(result.standardError.split(separator: "\n").count, 1, "\(arguments): \(result.standardError)")
        }
    }

    func testBreakdownShowsEveryPhase() throws {
        let result = try run(["bench", "--config", "tiny", "--device", "cpu", "--steps", "4", "--breakdown"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("tiny, phase by phase (4 clocked steps") }, result.standardOutput)
        for phase in ["batch", "forward 1", "forward 3", "loss", "backward 3", "backward 1", "adam"] {
            XCTAssertEqual(lines.filter { $0.hasPrefix("  \(phase) ") }.count, 1, "\(phase): \(result.standardOutput)")
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("  the products with their passes: ") }, result.standardOutput)

        let json = try run(["bench", "--config", "tiny", "--device", "cpu", "--steps", "4", "--breakdown", "--json"])
        XCTAssertEqual(json.status, 0, json.standardError)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let row = try XCTUnwrap((object["results"] as? [[String: Any]])?.first)
        let breakdown = try XCTUnwrap(row["breakdown"] as? [String: Any])
        XCTAssertEqual(breakdown["clocked_steps"] as? Int, 4)
        let phases = try XCTUnwrap(breakdown["phases"] as? [[String: Any]])
        XCTAssertEqual(phases.compactMap { $0["name"] as? String },
                       ["batch", "forward 1", "forward 2", "forward 3", "loss", "backward 3", "backward 2", "backward 1", "adam"])
        let shares = phases.compactMap { $0["share"] as? Double }
        XCTAssertEqual(shares.count, 9)
        XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-9)
        let flops = phases.compactMap { $0["flops"] as? Double }
        let stepFlops: Double = 2 * 64 * Double(3 * (32 * 64 + 64 * 64 + 64 * 1) - 32 * 64)
        XCTAssertEqual(flops.reduce(0, +), stepFlops)
        let ceiling = try XCTUnwrap(breakdown["ceiling_gflops"] as? Double)
        for phase in phases {
            let gflops = try XCTUnwrap(phase["gflops"] as? Double), fraction = try XCTUnwrap(phase["fraction_of_ceiling"] as? Double)
            XCTAssertEqual(fraction, gflops / ceiling, accuracy: 1e-12)
        }
        // without the flag, no breakdown
        let plain = try run(["bench", "--config", "tiny", "--device", "cpu", "--steps", "2", "--json"])
        XCTAssertFalse(plain.standardOutput.contains("breakdown"), plain.standardOutput)
    }
}

