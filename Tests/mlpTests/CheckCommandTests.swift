import Foundation
import XCTest

/// `mlp check`: the table, the JSON keys and the exit status, on PoCL and on the CPU.
final class CheckCommandTests: XCTestCase {
    var folder: URL!

    /// OpenCL is missing while `CI` is set: a failure, not a skip.
    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
    }

    /// Runs `mlp check` with `arguments`; skips (or, with `CI` set, fails) when OpenCL is missing.
    func check(_ arguments: [String]) throws -> CommandResult {
        let result = try CommandRunner.run(["check"] + arguments, in: folder)
        if arguments.contains("opencl"), result.status != 0, result.standardError.contains("OpenCL is unavailable") {
            // the CLI's own message says what to install (pocl-opencl-icd ocl-icd-libopencl1)
            let message = "mlp check --device opencl: "
                + result.standardError.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "error: ", with: "")
            if ProcessInfo.processInfo.environment["CI"] != nil {
                throw Missing(description: message + " (CI is set: required, not skipped)")
            }
            throw XCTSkip(message)
        }
        return result
    }

    func testTableOnOpenCL() throws {
        let result = try check(["--device", "opencl"])
        XCTAssertEqual(result.status, 0, result.standardError + result.standardOutput)
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        XCTAssert(lines.first?.hasPrefix("device: OpenCL: ") ?? false, result.standardOutput)
        XCTAssert(lines.contains { $0.hasPrefix("reference: CPU") })
        let header = try XCTUnwrap(lines.first { $0.hasPrefix("operation ") })
        for column in ["sizes", "relative error", "threshold", "result"] { XCTAssert(header.contains(column), header) }
        let rows = lines.filter { $0.hasSuffix("  ok") || $0.hasSuffix("  FAIL") }
        XCTAssertGreaterThanOrEqual(rows.count, 100)
        XCTAssert(rows.allSatisfy { $0.hasSuffix("  ok") })
        for name in ["matrixProduct nt biasReLU", "matrixProduct tn none", "matrixProduct nn reluMask", "columnSums",
                     "lossGradient cross-entropy indices loss sum", "gatherRows", "adamUpdate", "training mse"] {
            XCTAssert(rows.contains { $0.hasPrefix(name + " ") }, "no row for \(name)")
        }
        XCTAssert(rows.contains { $0.contains("257×130×200") })
        XCTAssertEqual(lines.last, "\(rows.count) of \(rows.count) checks passed")
        XCTAssert(lines.contains { $0.hasPrefix("worst: matrixProduct ") })
    }

    func testJSONOnOpenCL() throws {
        let result = try check(["--device", "opencl", "--json"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        XCTAssert((object["device"] as? String)?.hasPrefix("OpenCL: ") ?? false)
        XCTAssertEqual(object["passed"] as? Bool, true)
        let checks = try XCTUnwrap(object["checks"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(checks.count, 100)
        for check in checks {
            XCTAssertEqual(Set(check.keys), ["name", "sizes", "relative_error", "threshold", "passed"])
            XCTAssertEqual(check["passed"] as? Bool, true, "\(check)")
            let error = try XCTUnwrap(check["relative_error"] as? Double), threshold = try XCTUnwrap(check["threshold"] as? Double)
            XCTAssertLessThanOrEqual(error, threshold)
        }
        let thresholds = Dictionary(checks.map { ($0["name"] as? String ?? "", $0["threshold"] as? Double ?? -1) }) { a, _ in a }
        XCTAssertEqual(thresholds["matrixProduct tn bias"], 1e-5)
        XCTAssertEqual(thresholds["training cross-entropy"], 1e-4)
    }

    /// The CPU backend against itself (BLAS against the Swift product): needs nothing installed.
    func testCPUAgainstItself() throws {
        let result = try check(["--device", "cpu", "--json"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        XCTAssertEqual(object["passed"] as? Bool, true)
        XCTAssert((object["reference"] as? String)?.contains("Swift matrix product") ?? false)
    }

    func testUnavailableDeviceIsAnError() throws {
        let result = try check(["--device", "cuda"])
        if result.status == 0 { return }  // a build with a working CUDA backend
        XCTAssertEqual(result.status, 1)
        XCTAssert(result.standardError.hasPrefix("error: "), result.standardError)
        XCTAssertEqual(result.standardError.split(separator: "\n").count, 1)
        XCTAssertEqual(result.standardOutput, "")
    }
}
