import Foundation
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// In CI a missing tool (NVRTC) is a failure; on a developer's machine the test skips. A missing
/// GPU always skips: CI has none.
let toolsRequired = ProcessInfo.processInfo.environment["CI"] != nil

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

/// NVRTC through the library's loader, or a skip (a failure in CI) saying what to install.
func sharedNVRTC() throws -> NVRTCCompiler {
    switch NVRTCCompiler.shared {
    case let .success(compiler): return compiler
    case let .failure(error): try missingTool("\(error)")
    }
}

/// CUDA backends on the real driver, shared across tests (compiling and loading take time).
enum SharedCUDA {
    nonisolated(unsafe) private static var cache: [KernelTiles?: Result<CUDABackend, CUDAError>] = [:]

    /// The first line of the reason, without the list of paths tried.
    static func shortReason(_ error: CUDAError) -> String {
        if case let .libraryUnavailable(library, tried, _) = error { return "\(library) not found in \(tried.count) places" }
        return "\(error)"
    }

    /// The backend on device 0, or a skip naming why there is no GPU here.
    static func backend(tiles: KernelTiles? = nil) throws -> CUDABackend {
        let result = cache[tiles] ?? Result { () throws(CUDAError) in try CUDABackend(tiles: tiles) }
        cache[tiles] = result
        switch result {
        case let .success(backend):
            return backend
        case let .failure(error) where error.meansUnavailable:
            throw XCTSkip("needs an NVIDIA GPU (\(Self.shortReason(error)))")
        case let .failure(error):
            throw error
        }
    }
}

extension SeededGenerator {
    /// `count` uniform values in [-1, 1).
    mutating func values(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float(nextUnitDouble() * 2 - 1) }
    }

    /// `count` class indices in 0..<classes, stored as floats.
    mutating func labels(_ count: Int, classes: Int) -> [Float] {
        (0..<count).map { _ in Float(Int(next() % UInt64(classes))) }
    }
}

/// ‖x − reference‖ / ‖reference‖, in Float64 (NaN anywhere gives NaN, which fails every check).
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


/// Sets an environment variable for the duration of `body`.
func withEnvironment<T>(_ name: String, _ value: String?, _ body: () throws -> T) rethrows -> T {
    let previous = getenv(name).map { String(cString: $0) }
    if let value { setenv(name, value, 1) } else { unsetenv(name) }
    defer {
        if let previous { setenv(name, previous, 1) } else { unsetenv(name) }
    }
    return try body()
}
