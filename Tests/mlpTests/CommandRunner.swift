import Foundation
import MLPKit
import XCTest

/// Runs the built `mlp` and captures what it prints.
struct CommandResult {
    let status: Int32
    let standardOutput: String
    let standardError: String
}

enum CommandRunner {
    /// The `mlp` built beside this test bundle.
    static let executable: URL = {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if folder.lastPathComponent.hasSuffix(".xctest") { folder.deleteLastPathComponent() }
        return folder.appendingPathComponent("mlp")
    }()

    static func run(_ arguments: [String], in folder: URL, environment: [String: String] = [:]) throws -> CommandResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        // stdout and stderr go to files, so a full pipe can never block the child
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("mlp-capture-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: capture.path + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: capture.path + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: capture.path + ".out")
            try? FileManager.default.removeItem(atPath: capture.path + ".err")
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: capture.path + ".out"))
        let error = try FileHandle(forWritingTo: URL(fileURLWithPath: capture.path + ".err"))
        process.standardOutput = output
        process.standardError = error
        try process.run()
        process.waitUntilExit()
        try output.close()
        try error.close()
        let outputData = try Data(contentsOf: URL(fileURLWithPath: capture.path + ".out"))
        let errorData = try Data(contentsOf: URL(fileURLWithPath: capture.path + ".err"))
        return CommandResult(status: process.terminationStatus,
                             standardOutput: String(decoding: outputData, as: UTF8.self),
                             standardError: String(decoding: errorData, as: UTF8.self))
    }
}

/// A fresh temporary folder, removed at the end of the test.
func makeTemporaryFolder(_ testCase: XCTestCase) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlp-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    return folder
}
