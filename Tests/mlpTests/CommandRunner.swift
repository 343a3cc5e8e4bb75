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

    /// With `input`, the child's standard input is that file of `folder` (else this process's own);
    /// `program` runs instead of `mlp` when given.
    static func run(_ arguments: [String], in folder: URL, environment: [String: String] = [:], input: String? = nil,
                    program: URL? = nil) throws -> CommandResult
    {
        let process = Process()
        if let input { process.standardInput = try FileHandle(forReadingFrom: folder.appendingPathComponent(input)) }
        process.executableURL = program ?? executable
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

/// Runs `mlp` in `folder` expecting failure: one `error:` line naming `expected` (besides the
/// training's own `loss: …` announcement), no file added to or removed from the folder, no
/// crash, and the exit status `status` when given (64 for a bad or missing flag, 1 for bad data
/// or files).
func assertCommandFails(_ arguments: [String], in folder: URL, mentioning expected: String, status: Int32? = nil,
                        file: StaticString = #filePath, line: UInt = #line) throws {
    let before = Set(try FileManager.default.contentsOfDirectory(atPath: folder.path))
    let result = try CommandRunner.run(arguments, in: folder)
    XCTAssertNotEqual(result.status, 0, "\(arguments) succeeded", file: file, line: line)
    if let status {
        XCTAssertEqual(result.status, status, "\(arguments): \(result.standardError)", file: file, line: line)
    }
    let lines = result.standardError.split(separator: "\n", omittingEmptySubsequences: true).filter { !$0.hasPrefix("loss: ") }
    XCTAssertEqual(lines.count, 1, "\(arguments): stderr was \(result.standardError)", file: file, line: line)
    XCTAssertTrue(lines.first?.hasPrefix("error: ") ?? false, "\(arguments): \(result.standardError)", file: file, line: line)
    XCTAssertTrue(result.standardError.localizedCaseInsensitiveContains(expected),
                  "\(arguments): expected '\(expected)' in \(result.standardError)", file: file, line: line)
    XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), before,
                   "\(arguments) left files behind", file: file, line: line)
    XCTAssertFalse(result.standardError.contains("Fatal error"), file: file, line: line)
}

/// A fresh temporary folder, removed at the end of the test.
func makeTemporaryFolder(_ testCase: XCTestCase) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlp-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    return folder
}

/// `mlp info --model MODEL --json`'s object.
func infoObject(_ model: String, in folder: URL, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    try jsonObject(CommandRunner.run(["info", "--model", model, "--json"], in: folder), file: file, line: line)
}

/// The JSON object a successful run printed (`--json`).
func jsonObject(_ result: CommandResult, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    XCTAssertEqual(result.status, 0, result.standardError, file: file, line: line)
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], file: file, line: line)
}

/// `mlp predict` of each model on its data writes the same file: a model trained on one form of
/// the data (categories, missing values) against one trained on the same rows prepared by hand.
func assertSamePredictions(_ first: (model: String, data: String), _ second: (model: String, data: String), in folder: URL,
                           file: StaticString = #filePath, line: UInt = #line) throws {
    var outputs: [String] = []
    for (index, pair) in [first, second].enumerated() {
        let out = "same-predictions-\(index).csv"
        let result = try CommandRunner.run(["predict", "--model", pair.model, "--data", pair.data, "--out", out], in: folder)
        XCTAssertEqual(result.status, 0, result.standardError, file: file, line: line)
        outputs.append(try String(contentsOf: folder.appendingPathComponent(out), encoding: .utf8))
    }
    XCTAssertEqual(outputs[0], outputs[1], file: file, line: line)
}
