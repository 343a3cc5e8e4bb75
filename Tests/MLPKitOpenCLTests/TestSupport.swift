import Foundation
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// In CI a missing tool is a failure; on a developer's machine the test skips.
let toolsRequired = ProcessInfo.processInfo.environment["CI"] != nil

/// A tool the test needs is missing while `CI` is set.
struct MissingTool: Error, CustomStringConvertible {
    var description: String
}

/// Skips with `message` (what to install), or fails when `CI` is set.
func missingTool(_ message: String) throws -> Never {
    if toolsRequired {
        throw MissingTool(description: "\(message) (CI is set: required, not skipped)")
    }
    throw XCTSkip(message)
}

/// OpenCL backends shared across tests: building the program on PoCL takes seconds.
enum SharedBackends {
    nonisolated(unsafe) private static var cache: [KernelTiles?: Result<OpenCLBackend, OpenCLError>] = [:]

    /// The backend for the default device, with `tiles` or the device's own choice.
    static func backend(tiles: KernelTiles? = nil) throws -> OpenCLBackend {
        let result = cache[tiles] ?? Result { () throws(OpenCLError) in try OpenCLBackend(tiles: tiles) }
        cache[tiles] = result
        switch result {
        case let .success(backend):
            return backend
        case let .failure(error):
            switch error {
            case .libraryUnavailable, .missingSymbol, .noPlatform, .noDevice:
                try missingTool("\(error)")
            default:
                throw error
            }
        }
    }
}

/// A reproducible generator (SplitMix64), so a failing case can be rerun.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` uniform values in [-1, 1).
    mutating func values(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1..<1, using: &self) }
    }

    /// `count` class indices in 0..<classes, stored as floats.
    mutating func labels(_ count: Int, classes: Int) -> [Float] {
        (0..<count).map { _ in Float(Int.random(in: 0..<classes, using: &self)) }
    }
}

/// ‖x − reference‖ / ‖reference‖, in Float64.
func relativeError(_ x: [Float], _ reference: [Float]) -> Double {
    precondition(x.count == reference.count)
    var difference = 0.0, norm = 0.0
    for (a, b) in zip(x, reference) {
        difference += Double(a - b) * Double(a - b)
        norm += Double(b) * Double(b)
    }
    if norm == 0 { return difference == 0 ? 0 : .infinity }
    return (difference / norm).squareRoot()
}

/// Largest relative error seen per check, printed by the tests.
enum ErrorLog {
    nonisolated(unsafe) private(set) static var worst: [String: Double] = [:]

    static func record(_ name: String, _ error: Double) {
        worst[name] = max(worst[name] ?? 0, error.isNaN ? .infinity : error)
    }
}

/// Asserts relative error ≤ tolerance and records it.
func assertClose(_ x: [Float], _ reference: [Float], tolerance: Double = 1e-5, _ what: String,
                 group: String, file: StaticString = #filePath, line: UInt = #line) {
    let error = relativeError(x, reference)
    ErrorLog.record(group, error)
    XCTAssert(error <= tolerance, "\(what): relative error \(error) > \(tolerance)", file: file, line: line)
}

