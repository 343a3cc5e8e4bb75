import Foundation
import XCTest
@testable import MLPKit

/// Tuning variables set to values they cannot take are reported, one sentence each.
final class EnvironmentSettingsTests: XCTestCase {
    func with(_ settings: [String: String], _ body: () -> Void) {
        let names = ["MLPKIT_BLAS", "MLPKIT_HELPER_THREADS", "MLPKIT_SIMD", "MLPKIT_AVX512", "MLPKIT_SPLIT_PRODUCTS", "MLPKIT_CLAIMED", "MLPKIT_OWNED", "MLPKIT_PANELS"]
        let saved = names.map { name in getenv(name).map { String(cString: $0) } }
        for name in names { unsetenv(name) }
        for (name, value) in settings { setenv(name, value, 1) }
        defer {
            for (name, value) in zip(names, saved) {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        body()
    }

    func testGoodValuesReportNothing() {
        with(["MLPKIT_HELPER_THREADS": "0", "MLPKIT_SIMD": "1", "MLPKIT_AVX512": "0", "MLPKIT_SPLIT_PRODUCTS": "0", "MLPKIT_CLAIMED": "0", "MLPKIT_OWNED": "0", "MLPKIT_PANELS": "0"]) {
            XCTAssertEqual(EnvironmentSettings.problems(), [])
        }
        with(["MLPKIT_BLAS": BLASLibrary.shared?.name ?? "none"]) {
            XCTAssertEqual(EnvironmentSettings.problems(), [])
        }
    }

    func testBadValuesAreNamed() {
        with(["MLPKIT_BLAS": "/nonexistent/libblas.so", "MLPKIT_HELPER_THREADS": "abc", "MLPKIT_SIMD": "off"]) {
            let problems = EnvironmentSettings.problems()
            XCTAssertEqual(problems.count, 3, "\(problems)")
            XCTAssertTrue(problems[0].hasPrefix("MLPKIT_BLAS=/nonexistent/libblas.so could not be loaded"), problems[0])
            XCTAssertEqual(problems[1], "MLPKIT_HELPER_THREADS=abc is not a non-negative whole number; ignored")
            XCTAssertEqual(problems[2], "MLPKIT_SIMD=off is neither 0 nor 1; taken as 1")
        }
        with(["MLPKIT_HELPER_THREADS": "-2"]) {
            XCTAssertEqual(EnvironmentSettings.problems().count, 1)
        }
        with(["MLPKIT_AVX512": "no"]) {
            XCTAssertEqual(EnvironmentSettings.problems(), ["MLPKIT_AVX512=no is neither 0 nor 1; taken as 1"])
        }
        with(["MLPKIT_CLAIMED": "yes"]) {
            XCTAssertEqual(EnvironmentSettings.problems(), ["MLPKIT_CLAIMED=yes is neither 0 nor 1; taken as 1"])
        }
        with(["MLPKIT_OWNED": "2"]) {
            XCTAssertEqual(EnvironmentSettings.problems(), ["MLPKIT_OWNED=2 is neither 0 nor 1; taken as 1"])
        }
        with(["MLPKIT_PANELS": "off"]) {
            XCTAssertEqual(EnvironmentSettings.problems(), ["MLPKIT_PANELS=off is neither 0 nor 1; taken as 1"])
        }
    }
}
