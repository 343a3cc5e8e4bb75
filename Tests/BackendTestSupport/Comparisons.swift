import MLPKit
import XCTest

extension SeededGenerator {
    /// `count` uniform values in [-1, 1).
    public mutating func values(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float(nextUnitDouble() * 2 - 1) }
    }

    /// `count` class indices in 0..<classes, stored as floats.
    public mutating func labels(_ count: Int, classes: Int) -> [Float] {
        (0..<count).map { _ in Float(Int(next() % UInt64(classes))) }
    }
}

/// ‖x − reference‖ / ‖reference‖, in Float64 (NaN anywhere gives NaN, which fails every check).
public func relativeError(_ x: [Float], _ reference: [Float]) -> Double {
    precondition(x.count == reference.count)
    var difference = 0.0, norm = 0.0
    for (a, b) in zip(x, reference) {
        difference += Double(a - b) * Double(a - b)
        norm += Double(b) * Double(b)
    }
    if norm == 0 { return difference == 0 ? 0 : .infinity }
    return (difference / norm).squareRoot()
}

/// Largest relative error seen per group of checks, printed by the tests' `tearDown`.
public enum ErrorLog {
    nonisolated(unsafe) public private(set) static var worst: [String: Double] = [:]

    public static func record(_ name: String, _ error: Double) {
        worst[name] = max(worst[name] ?? 0, error.isNaN ? .infinity : error)
    }

    /// Prints the worst error of every group whose name starts with `prefix`.
    public static func printWorst(prefix: String) {
        for (group, error) in worst.sorted(by: { $0.key < $1.key }) where group.hasPrefix(prefix) {
            print("max relative error \(group): \(error)")
        }
    }
}

/// Asserts relative error ≤ tolerance and records it under `group`.
public func assertClose(_ x: [Float], _ reference: [Float], tolerance: Double = 1e-5, _ what: String,
                        group: String, file: StaticString = #filePath, line: UInt = #line) {
    let error = relativeError(x, reference)
    ErrorLog.record(group, error)
    XCTAssert(error <= tolerance, "\(what): relative error \(error) > \(tolerance)", file: file, line: line)
}
