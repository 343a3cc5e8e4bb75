import Foundation
import XCTest

/// In CI (`CI` set) a missing tool (NVRTC, an OpenCL platform) is a failure; on a developer's
/// machine the test skips. A missing GPU always skips: CI has none.
public let toolsRequired = ProcessInfo.processInfo.environment["CI"] != nil

/// A tool the test needs is missing while `CI` is set.
public struct MissingTool: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

/// Skips with `message` (what to install), or fails when `CI` is set.
public func missingTool(_ message: String) throws -> Never {
    if toolsRequired {
        throw MissingTool(description: "\(message) (CI is set: required, not skipped)")
    }
    throw XCTSkip(message)
}

/// Sets an environment variable for the duration of `body`.
public func withEnvironment<T>(_ name: String, _ value: String?, _ body: () throws -> T) rethrows -> T {
    let previous = getenv(name).map { String(cString: $0) }
    if let value { setenv(name, value, 1) } else { unsetenv(name) }
    defer {
        if let previous { setenv(name, previous, 1) } else { unsetenv(name) }
    }
    return try body()
}
