import Foundation
import XCTest
@testable import MLPKit

/// Hardening (issue 8): the NaN guard and periodic checkpoints in the library, saves that never
/// write a non-finite model, stale temporary files cleaned up, and the readers against the fuzz
/// seeds, their regressions and a quick deterministic mutation run (the real fuzzing is Fuzz/).
final class HardeningTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mlpkit-hardening-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
    }

    // MARK: - The NaN guard

    /// 1,280 rows of 3 features and a regression target, in batches of 32 without shuffling, so
    /// row `poisonedRow` (a feature of 1e30, finite but squaring to infinity) is in step 37.
    static let poisonedRow = 36 * 32 + 5

    static func divergingData() throws -> Dataset {
        var inputs: [Float] = [], targets: [Float] = []
        for row in 0..<1280 {
            let a = Float(row % 17) / 8 - 1, b = Float(row % 5) / 2 - 1, c = Float(row % 11) / 5 - 1
            inputs += [row == poisonedRow ? 1e30 : a, b, c]
            targets.append(2 * a - b + c / 2)
        }
        return try Dataset(inputs: inputs, features: 3, targets: targets, encoding: .dense, targetWidth: 1)
    }

    /// A device that never ends (or any device) is refused at once instead of read forever.
    func testEndlessDeviceIsRefused() throws {
        XCTAssertThrowsError(try FileIO.read("/dev/zero")) { error in
            XCTAssertEqual(error as? FileError, .readFailed(path: "/dev/zero", reason: "not a regular file or a pipe"))
        }
        XCTAssertThrowsError(try NumpyFile.read(path: "/dev/zero")) { error in
            XCTAssertTrue("\(error)".contains("not a regular file or a pipe"), "\(error)")
        }
    }

    func testDivergingRunStopsNamingTheStepAndKeepsTheLastGoodCheckpoint() throws {
        let model = try MLP(layerSizes: [3, 16, 16, 1], loss: .meanSquaredError, seed: 3)
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 32)
        let data = try session.upload(try Self.divergingData())
        let path = folder + "/model.safetensors"
        var saved: [Int] = []
        XCTAssertThrowsError(try session.train(
            on: data, configuration: TrainingConfiguration(batchSize: 32, length: .epochs(3), shuffle: false),
            checkpointEvery: 10,
            onCheckpoint: { snapshot in
                try Checkpoint(model: snapshot.model, optimizer: snapshot.optimizer).save(to: path)
                saved.append(snapshot.step)
            })
        ) { error in
            XCTAssertEqual(error as? ModelError, .nonFinite("the loss became inf at step 37"))
        }
        XCTAssertEqual(saved, [10, 20, 30])
        let kept = try Checkpoint.load(from: path)
        XCTAssertEqual(kept.optimizer?.step, 30)
        XCTAssertTrue(kept.parameters.allSatisfy(\.isFinite))
        XCTAssertTrue(kept.optimizer.map { ($0.firstMoment + $0.secondMoment).allSatisfy(\.isFinite) } ?? false)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model.safetensors"])
    }

    func testDivergenceIsCaughtAtTheEpochEndWithoutCheckpoints() throws {
        let model = try MLP(layerSizes: [3, 8, 1], loss: .meanSquaredError, seed: 4)
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 32)
        let data = try session.upload(try Self.divergingData())
        var epochs = 0
        XCTAssertThrowsError(try session.train(
            on: data, configuration: TrainingConfiguration(batchSize: 32, length: .epochs(2), shuffle: false),
            onEpoch: { _ in epochs += 1; return true })
        ) { error in
            XCTAssertEqual(error as? ModelError, .nonFinite("the loss became inf at step 37"))
        }
        XCTAssertEqual(epochs, 0, "the first epoch (40 steps) holds step 37")
    }

    func testAHugeLearningRateIsStoppedAndNeverSnapshotted() throws {
        // Adam moves every parameter by about the learning rate: 1e30 overflows within two steps.
        let model = try MLP(layerSizes: [3, 16, 16, 1], loss: .meanSquaredError, seed: 5)
        let session = try TrainingSession(model: model, backend: CPUBackend(),
                                          hyperparameters: AdamHyperparameters(learningRate: 1e30), batchCapacity: 32)
        var inputs: [Float] = [], targets: [Float] = []
        for row in 0..<64 { inputs += [Float(row % 3), 1, -1]; targets.append(Float(row % 7)) }
        let data = try session.upload(try Dataset(inputs: inputs, features: 3, targets: targets, encoding: .dense, targetWidth: 1))
        var snapshots: [TrainingSnapshot] = []
        XCTAssertThrowsError(try session.train(
            on: data, configuration: TrainingConfiguration(batchSize: 32, length: .steps(50)), checkpointEvery: 1,
            onCheckpoint: { snapshots.append($0) })
        ) { error in
            guard case .nonFinite(let reason)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.range(of: #"^(the loss|a parameter|Adam's moments) became (nan|inf|-inf) (at|by) step \d+"#,
                                       options: .regularExpression) != nil, reason)
        }
        XCTAssertLessThan(snapshots.count, 50)
        for snapshot in snapshots {
            XCTAssertTrue(snapshot.model.parameters.allSatisfy(\.isFinite), "snapshot \(snapshot.step)")
        }
    }

    func testCheckpointEveryHandsOutSnapshotsAtMultiplesOfTheStep() throws {
        let model = try MLP(layerSizes: [3, 4, 1], loss: .meanSquaredError, seed: 6)
        let session = try TrainingSession(model: model, backend: CPUBackend(), batchCapacity: 32)
        var inputs: [Float] = [], targets: [Float] = []
        for row in 0..<100 { inputs += [Float(row % 3), 1, -1]; targets.append(Float(row % 7) / 7) }
        let data = try session.upload(try Dataset(inputs: inputs, features: 3, targets: targets, encoding: .dense, targetWidth: 1))
        var steps: [Int] = []
        var last: TrainingSnapshot?
        try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .steps(25)),
                          checkpointEvery: 7, onCheckpoint: { steps.append($0.step); last = $0 })
        XCTAssertEqual(steps, [7, 14, 21])
        // a resumed run keeps counting from Adam's t
        try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .steps(10)),
                          checkpointEvery: 7, onCheckpoint: { steps.append($0.step) })
        XCTAssertEqual(steps, [7, 14, 21, 28, 35])
        XCTAssertEqual(last?.optimizer.step, 21)
        XCTAssertEqual(last?.model.layerSizes, [3, 4, 1])
        XCTAssertThrowsError(try session.train(on: data, configuration: TrainingConfiguration(), checkpointEvery: -1,
                                               onCheckpoint: { _ in }))
    }

    func testSaveRefusesANonFiniteModelAndKeepsTheOldFile() throws {
        let path = folder + "/model.safetensors"
        let good = Checkpoint(model: try MLP(layerSizes: [2, 3, 1], loss: .meanSquaredError, seed: 1))
        try good.save(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for poison in [Float.nan, .infinity, -.infinity] {
            var bad = good
            bad.parameters[4] = poison
            XCTAssertThrowsError(try bad.save(to: path)) { error in
                guard case .nonFinite? = error as? ModelError else { return XCTFail("\(error)") }
            }
            var badMoments = good
            badMoments.optimizer = OptimizerState(step: 3, firstMoment: good.parameters, secondMoment: good.parameters)
            badMoments.optimizer?.secondMoment[0] = poison
            XCTAssertThrowsError(try badMoments.save(to: path))
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model.safetensors"])
    }

    // MARK: - Temporary files

    func testASaveRemovesStaleTemporaryFilesOfTheSameTargetOnly() throws {
        let path = folder + "/model.safetensors"
        // 2147483647 exceeds any pid_max, so no such process exists; pid 1 always does.
        let names = [
            ".model.safetensors.tmp-2147483647",  // stale: removed
            ".model.safetensors.tmp-1",           // a live writer's: kept
            ".model.safetensors.tmp-12ab",        // not our pattern: kept
            ".model.safetensors.tmp-",            // not our pattern: kept
            ".other.safetensors.tmp-2147483647",  // another target's: kept
            "model.safetensors.tmp-2147483647",   // no leading dot: kept
        ]
        for name in names {
            XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/" + name, contents: Data("x".utf8)))
        }
        try Checkpoint(model: try MLP(layerSizes: [2, 1], loss: .meanSquaredError, seed: 2)).save(to: path)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: folder))
        XCTAssertEqual(left, Set(names.dropFirst() + ["model.safetensors"]))
        // a relative path cleans the current folder the same way
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/" + names[0], contents: Data("x".utf8)))
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(folder))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        FileIO.removeStaleTemporaries(for: "model.safetensors")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/" + names[0]))
    }

    // MARK: - Readers against the fuzz corpora

    /// The readers Scripts/fuzz.sh fuzzes, each with Fuzz/Corpus/READER and Fuzz/Regressions/READER.
    static let readers = ["checkpoint", "numpy", "csv", "idx", "archive"]

    /// Fuzz/ beside Sources/ and Tests/.
    static let fuzzFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func files(_ subfolder: String) throws -> [(name: String, bytes: [UInt8])] {
        let url = fuzzFolder.appendingPathComponent(subfolder)
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().map {
            ($0, [UInt8](try Data(contentsOf: url.appendingPathComponent($0))))
        }
    }

    /// Every reader on `bytes`: each must return or throw, never crash.
    static func decodeAll(_ bytes: [UInt8]) {
        _ = try? Checkpoint.decode(bytes)
        _ = try? NumpyFile.decode(bytes, name: "x")
        _ = try? CSVFile.decode(bytes, name: "x", hasHeader: false)
        if let table = try? DataLoader.decodeTable(bytes, name: "x", target: nil, targetRequired: false),
           let last = table.featureNames.last {
            // the last column as a target that may hold text labels, other columns of text
            // categories, as the CSV fuzzer reads it; then the first column dropped
            _ = try? DataLoader.decodeTable(bytes, name: "x", target: last)
            _ = try? DataLoader.decodeTable(bytes, name: "x", target: last, targetRequired: false, dropping: [table.featureNames[0]])
        }
        if let table = try? DataLoader.decodeTable(bytes, name: "x", target: nil, targetRequired: false, missing: .mean),
           let last = table.featureNames.last {
            _ = try? DataLoader.decodeTable(bytes, name: "x", target: last, missing: .mean)
        }
        _ = try? DataLoader.decodeTargets(bytes, name: "x")
        _ = try? DataLoader.decodeTable(bytes, name: "x", target: "1", hasHeader: false)
        _ = try? IDXFile.decode(bytes, name: "x")
        _ = try? DataLoader.decodeMatrix(bytes, name: "x")
        _ = try? DataLoader.decodeMatrix(bytes, name: "x", member: "x")
    }

    func testEverySeedOfTheFuzzCorporaIsAValidFile() throws {
        let checkpoints = try Self.files("Corpus/checkpoint"), arrays = try Self.files("Corpus/numpy")
        let tables = try Self.files("Corpus/csv"), images = try Self.files("Corpus/idx")
        try XCTSkipIf(checkpoints.isEmpty, "no Fuzz/Corpus beside the tests")
        for file in checkpoints { XCTAssertNoThrow(try Checkpoint.decode(file.bytes), file.name) }
        for file in arrays { XCTAssertNoThrow(try NumpyFile.decode(file.bytes, name: file.name)) }
        for file in tables {  // header-*.csv have a header row, plain-*.csv none; header-text-labels.csv's last column is text, header-categories.csv's middle ones; header-missing.csv misses values; header-semicolons.csv and header-tabs.csv both
            if file.name == "header-text-labels.csv" {
                let table = try DataLoader.decodeTable(file.bytes, name: file.name, target: "species")
                XCTAssertEqual(table.classNames, [" versi, \"color\"", "setosa"])
            } else if file.name == "header-missing.csv" {
                let table = try DataLoader.decodeTable(file.bytes, name: file.name, target: "y", missing: .mean)
                XCTAssertEqual(table.categories, [nil, ["B, 2", "C85"], nil])
                XCTAssertEqual(table.missingCounts, [3, 2, 2])
            } else if file.name == "header-semicolons.csv" {  // decimal commas, a missing value, text with ; and ,
                let table = try DataLoader.decodeTable(file.bytes, name: file.name, target: "y", missing: .mean)
                XCTAssertEqual(table.featureNames, ["a", "b c", "kind"])
                XCTAssertEqual(table.categories, [nil, nil, ["Oslo, west", "x;y"]])
                XCTAssertEqual(table.missingCounts, [1, 0, 0])
                XCTAssertEqual(table.features.values, [1.5, -2.25e-3, 0, 1, 1.5, 3, 1, 0])
            } else if file.name == "header-tabs.csv" {
                let table = try DataLoader.decodeTable(file.bytes, name: file.name, target: "y", missing: .mean)
                XCTAssertEqual(table.categories, [nil, ["Mo, i Rana", "q \"t\""]])
                XCTAssertEqual(table.missingCounts, [1, 0])
            } else if file.name == "header-categories.csv" {
                let table = try DataLoader.decodeTable(file.bytes, name: file.name, target: "price", dropping: ["id"])
                XCTAssertEqual(table.categories, [nil, ["Bergen", "Mo, i Rana", "Oslo"], ["a \"b\"", "flat", "house"]])
            } else {
                XCTAssertNoThrow(try CSVFile.decode(file.bytes, name: file.name, hasHeader: file.name.hasPrefix("header")) as Any)
            }
        }
        for file in images { XCTAssertNoThrow(try IDXFile.decode(file.bytes, name: file.name)) }
        let archives = try Self.files("Corpus/archive")
        XCTAssertEqual(archives.count, 7)
        for file in archives {  // the .npz seeds hold x and y: take x
            XCTAssertNoThrow(try DataLoader.decodeMatrix(file.bytes, name: file.name, member: ["stored.npz", "deflated.npz"].contains(file.name) ? "x" : nil),
                             file.name)
        }
    }

    func testTheFuzzRegressionsAreRefusedCleanly() throws {
        for reader in Self.readers {
            for file in try Self.files("Regressions/\(reader)") { Self.decodeAll(file.bytes) }
        }
        // a block of literals alone (no distance code) that then asks for a distance once read
        // past the end of its one-entry table
        let literalsOnly = try XCTUnwrap(try Self.files("Regressions/archive").first?.bytes)
        XCTAssertThrowsError(try DataLoader.decodeMatrix(literalsOnly, name: "r.gz")) { error in
            XCTAssertEqual("\(error)", "r.gz: gzip: a code the block's Huffman tables do not define")
        }
        // a moved or emptied folder would pass the loop above without reading anything
        XCTAssertFalse(try Self.files("Regressions/csv").isEmpty, "no Fuzz/Regressions/csv beside the tests")
    }

    func testAWideHeaderOverAShortRowIsRefusedWithoutAHugeReservation() {
        // 4,001 columns named in the header, then a one-cell row and 8 KB more: the reader once
        // reserved rows-estimate × columns (about 64 MB) before noticing the short row.
        let bytes = Array((String(repeating: "a,", count: 4000) + "a\n1\n" + String(repeating: "9", count: 8000)).utf8)
        XCTAssertThrowsError(try CSVFile.decode(bytes, name: "wide.csv", hasHeader: true)) { error in
            XCTAssertTrue("\(error)".contains("row has 1 cells but 4001 are expected"), "\(error)")
        }
    }

    /// A quick, deterministic stand-in for the fuzzers (so `swift test --sanitize=address` sees the
    /// readers on broken input too): each seed with random bytes flipped, inserted, removed or cut.
    func testMutatedSeedsNeverCrashTheReaders() throws {
        var seeds = try Self.readers.flatMap { try Self.files("Corpus/\($0)").map(\.bytes) }
        try XCTSkipIf(seeds.isEmpty, "no Fuzz/Corpus beside the tests")
        seeds.append([])
        var random = SeededGenerator(seed: 8)
        let interesting: [UInt8] = [0, 0xFF, 0x7F, 0x80, UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "\""),
                                    UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "e"), UInt8(ascii: "{"), UInt8(ascii: "(")]
        for iteration in 0..<3000 {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
                let byte = random.next() % 2 == 0 ? UInt8(truncatingIfNeeded: random.next()) : interesting[Int(random.next() % 12)]
                switch random.next() % 4 {
                case 0 where !bytes.isEmpty: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                case 2 where !bytes.isEmpty: bytes.remove(at: position)
                default: bytes.removeSubrange(min(position + 1, bytes.count)...)
                }
            }
            Self.decodeAll(bytes)
        }
    }

    /// The CPU gather copies every row (from a source at an offset); a bad index (past the end,
    /// negative, fractional, NaN, infinite) is an error that copies nothing, never a trap.
    func testGatherRowsAndBadIndices() throws {
        let backend = CPUBackend()
        let (width, sourceRows, count) = (784, 300, 128)
        let values = CPUParallelTests.randomValues(width * sourceRows + 3, seed: 91)
        let source = try backend.makeBuffer(count: values.count)
        try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(source)) }
        let order = (0..<count).map { Float(($0 * 97 + 5) % sourceRows) }
        let indices = try backend.makeBuffer(count: count), output = try backend.makeBuffer(count: count * width)
        try order.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(indices)) }
        try backend.gatherRows(BufferSlice(source, offset: 3), width: width, indices: BufferSlice(indices), count: count,
                               into: BufferSlice(output))
        for row in 0..<count {
            let from = 3 + Int(order[row]) * width
            XCTAssertEqual(Array(UnsafeBufferPointer(start: output.pointer + row * width, count: width)),
                           Array(values[from..<(from + width)]), "row \(row)")
        }
        for bad in [Float(sourceRows), -1, 2.5, .nan, .infinity, 1e30] {
            output.pointer.update(repeating: 7, count: count * width)
            var poisoned = order
            poisoned[count - 1] = bad
            try poisoned.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(indices)) }
            XCTAssertThrowsError(try backend.gatherRows(BufferSlice(source, offset: 3), width: width, indices: BufferSlice(indices),
                                                        count: count, into: BufferSlice(output)), "index \(bad)") {
                guard case BackendError.outOfBounds(operation: "gatherRows", _, _) = $0 else {
                    return XCTFail("index \(bad): \($0)")
                }
            }
            XCTAssertTrue(UnsafeBufferPointer(start: output.pointer, count: count * width).allSatisfy { $0 == 7 },
                          "index \(bad): rows were copied before the error")
        }
    }
}
