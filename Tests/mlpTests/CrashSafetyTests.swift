import Foundation
import MLPKit
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Crash safety of the built `mlp`: `kill -9` in the middle of `--checkpoint-every` saves never
/// leaves a torn checkpoint, and a run that diverges stops naming the step and keeps the last
/// good checkpoint.
final class CrashSafetyTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// The files beside `model.safetensors` that a killed writer could leave.
    func temporaries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".model.safetensors.tmp-") }
    }

    /// Whether process `pid` is stopped (state T in /proc/PID/stat).
    static func isStopped(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T")
    }

    /// Starts `mlp` with `arguments` in the test folder, its output discarded.
    func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = CommandRunner.executable
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    // MARK: - kill -9 during saves

    func testKillNineDuringSavesNeverLeavesATornCheckpoint() throws {
        // 512 rows of 64 features and 10 classes; [64, 256, 256, 10] with Adam's state makes a
        // 1 MB checkpoint, written after every step.
        var generator = SystemRandomNumberGenerator()
        let rows = 512
        let x = DataMatrix(rows: rows, columns: 64, values: (0..<(rows * 64)).map { _ in Float.random(in: -1...1, using: &generator) },
                           isIntegral: false)
        let y = DataMatrix(rows: rows, columns: 1, values: (0..<rows).map { Float($0 % 10) }, isIntegral: true)
        try Data(NumpyFile.encode(x)).write(to: folder.appendingPathComponent("x.npy"))
        try Data(NumpyFile.encode(y, flat: true)).write(to: folder.appendingPathComponent("y.npy"))
        let common = ["train", "--x", "x.npy", "--y", "y.npy", "--hidden", "256,256", "--batch-size", "64",
                      "--checkpoint-every", "1", "--device", "cpu", "--out", "model.safetensors"]
        let arguments = common + ["--steps", "1000000"]
        let out = path("model.safetensors")

        /// Polls every 0.2 ms until `condition` holds or `seconds` pass.
        func wait(upTo seconds: Double, for process: Process, until condition: () throws -> Bool) rethrows {
            let began = Date()
            while try !condition(), process.isRunning, Date().timeIntervalSince(began) < seconds { usleep(200) }
        }

        // How long until the first save (slower under a sanitizer), to spread the kills over.
        let warmup = try start(arguments)
        let began = Date()
        wait(upTo: 120, for: warmup) { FileManager.default.fileExists(atPath: out) }
        let firstSave = Date().timeIntervalSince(began)
        kill(warmup.processIdentifier, SIGKILL)
        warmup.waitUntilExit()
        XCTAssertEqual(warmup.terminationReason, .uncaughtSignal, "mlp train exited by itself")
        guard FileManager.default.fileExists(atPath: out) else {
            return XCTFail("mlp train --checkpoint-every 1 saved no checkpoint in 120 s")
        }
        try FileManager.default.removeItem(atPath: out)
        for name in try temporaries() { try FileManager.default.removeItem(atPath: path(name)) }

        // Odd kills come at a random moment. Even ones come inside a save: after a random wait,
        // once the process's temporary file exists, it is stopped (SIGSTOP) and, if the file is
        // still there, so the save has not reached its rename, killed where it stands; otherwise
        // it continues to its next save.
        var seen = false, killedMidWrite = 0, loaded = 0
        let kills = 30
        for attempt in 1...kills {
            let process = try start(arguments)
            let pid = process.processIdentifier
            let temporary = ".model.safetensors.tmp-\(pid)"
            let began = Date()
            if attempt % 2 == 1 {
                usleep(useconds_t(Double.random(in: 0...(firstSave * 1.5 + 0.5), using: &generator) * 1e6))
            } else {
                usleep(useconds_t(Double.random(in: 0...(firstSave + 0.2), using: &generator) * 1e6))
                while process.isRunning, Date().timeIntervalSince(began) < firstSave * 3 + 20 {
                    try wait(upTo: firstSave * 3 + 20, for: process) { try temporaries().contains(temporary) }
                    kill(pid, SIGSTOP)
                    wait(upTo: 5, for: process) { Self.isStopped(pid) }
                    if try temporaries().contains(temporary) { break }
                    kill(pid, SIGCONT)
                }
            }
            let delay = Date().timeIntervalSince(began)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .uncaughtSignal, "kill \(attempt): mlp exited by itself")
            if FileManager.default.fileExists(atPath: out) {
                seen = true
                do {
                    let checkpoint = try Checkpoint.load(from: out)
                    XCTAssertEqual(checkpoint.layerSizes, [64, 256, 256, 10])
                    XCTAssertGreaterThanOrEqual(checkpoint.optimizer?.step ?? 0, 1)
                    loaded += 1
                } catch {
                    XCTFail("kill \(attempt) after \(delay) s left a torn checkpoint: \(error)")
                }
            } else {
                XCTAssertFalse(seen, "kill \(attempt) after \(delay) s: the checkpoint disappeared")
            }
            // each save first removes the temporaries of killed writers, so at most one is left
            let left = try temporaries()
            XCTAssertLessThanOrEqual(left.count, 1, "kill \(attempt): \(left)")
            if left.contains(temporary) { killedMidWrite += 1 }
        }
        XCTAssertTrue(seen, "no kill came after a save; the first save took \(firstSave) s")
        XCTAssertGreaterThanOrEqual(killedMidWrite, kills / 2, "the even kills should all land inside a save")
        print("CrashSafetyTests: \(kills) kills, \(loaded) left a checkpoint that loads, \(killedMidWrite) landed inside a save"
              + " (its temporary file present); first save after \((firstSave * 100).rounded() / 100) s")

        // A run that finishes leaves the checkpoint and no temporary file.
        let finished = try CommandRunner.run(common + ["--steps", "2"], in: folder)
        XCTAssertEqual(finished.status, 0, finished.standardError)
        XCTAssertEqual(try temporaries(), [])
        XCTAssertEqual(try Checkpoint.load(from: out).optimizer?.step, 2)
    }

    // MARK: - The NaN guard

    /// 1,280 rows in batches of 32 without shuffling: row 1157 has a feature of 1e30 (finite, but
    /// its squared error is not), so the loss becomes infinite at step 37.
    func writeDivergingData() throws {
        var text = "a,b,c,y\n"
        for row in 0..<1280 {
            let a = row == 36 * 32 + 5 ? 1e30 : Double(row % 17) / 8 - 1, b = Double(row % 5) / 2 - 1, c = Double(row % 11) / 5 - 1
            text += "\(a),\(b),\(c),\(2 * a - b + c / 2)\n"
        }
        try text.write(to: folder.appendingPathComponent("diverge.csv"), atomically: true, encoding: .utf8)
    }

    let divergingRun = ["train", "--data", "diverge.csv", "--target", "y", "--hidden", "16,16", "--no-shuffle",
                        "--epochs", "3", "--batch-size", "32", "--device", "cpu", "--out", "model.safetensors"]

    func testDivergingRunStopsNamingTheStepAndKeepsTheLastGoodCheckpoint() throws {
        try writeDivergingData()
        let result = try CommandRunner.run(divergingRun + ["--checkpoint-every", "10"], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.standardError.split(separator: "\n").last.map(String.init),
                       "error: the loss became inf at step 37; kept the last good checkpoint model.safetensors (step 30)")
        XCTAssertEqual(result.standardOutput, "")
        let kept = try Checkpoint.load(from: path("model.safetensors"))
        XCTAssertEqual(kept.optimizer?.step, 30)
        XCTAssertTrue(kept.parameters.allSatisfy(\.isFinite))
        XCTAssertEqual(try temporaries(), [])
        // the kept checkpoint is usable (on the rows without the 1e30, whose squared error overflows)
        let rows = try String(contentsOf: folder.appendingPathComponent("diverge.csv"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.contains("e+30") }
        XCTAssertEqual(rows.count, 1280)
        try (rows.joined(separator: "\n") + "\n").write(to: folder.appendingPathComponent("clean.csv"), atomically: true, encoding: .utf8)
        let resumed = try CommandRunner.run(["eval", "--model", "model.safetensors", "--data", "clean.csv", "--target", "y"],
                                            in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        // on all of them, the infinite loss is an error, not a number printed
        let overflowing = try CommandRunner.run(["eval", "--model", "model.safetensors", "--data", "diverge.csv", "--target", "y"],
                                                in: folder)
        XCTAssertEqual(overflowing.status, 1)
        XCTAssertTrue(overflowing.standardError.hasPrefix("error: the loss is infinity"), overflowing.standardError)
    }

    func testDivergingRunWithoutCheckpointsLeavesAnOlderFileAlone() throws {
        try writeDivergingData()
        let older = Data("an older file".utf8)
        try older.write(to: folder.appendingPathComponent("model.safetensors"))
        let result = try CommandRunner.run(divergingRun, in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.standardError.split(separator: "\n").last.map(String.init),
                       "error: the loss became inf at step 37; did not write model.safetensors")
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("model.safetensors")), older)
    }

    func testAHugeLearningRateStopsWithinAFewSteps() throws {
        try writeDivergingData()
        let result = try CommandRunner.run(["train", "--data", "diverge.csv", "--target", "y", "--hidden", "16,16",
                                            "--lr", "1e30", "--steps", "100", "--checkpoint-every", "1", "--device", "cpu",
                                            "--out", "model.safetensors"], in: folder)
        XCTAssertEqual(result.status, 1)
        let line = try XCTUnwrap(result.standardError.split(separator: "\n").last.map(String.init))
        XCTAssertNotNil(line.range(of: #"^error: (the loss|a parameter|Adam's moments) became (nan|inf|-inf) (at|by) step \d+"#
                                       + #"(.*); (kept the last good checkpoint model\.safetensors \(step \d+\)|did not write model\.safetensors)$"#,
                                   options: .regularExpression), line)
        if FileManager.default.fileExists(atPath: path("model.safetensors")) {
            XCTAssertTrue(try Checkpoint.load(from: path("model.safetensors")).parameters.allSatisfy(\.isFinite))
        }
    }

    func testCheckpointEveryMustBePositive() throws {
        let result = try CommandRunner.run(["train", "--data", "diverge.csv", "--target", "y", "--checkpoint-every", "0"], in: folder)
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.standardError.contains("--checkpoint-every must be at least 1"), result.standardError)
    }
}
