import XCTest
@testable import MLPKit

/// Calls on the CPU backend and the host-array helpers that used to trap (overflow, a negative
/// array count, a failed allocation) or read outside a buffer; each now throws `BackendError`.
final class BackendTrapTests: XCTestCase {
    let backend = CPUBackend()

    /// Asserts `body` throws `BackendError.invalidArgument` for `operation`.
    func expectInvalid(_ operation: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) {
            guard case BackendError.invalidArgument(operation: operation, _) = $0 else {
                return XCTFail("expected invalidArgument(\(operation)), got \($0)", file: file, line: line)
            }
        }
    }

    /// Asserts `body` throws `BackendError.outOfBounds` for `operation`; returns the error's `needed`.
    @discardableResult
    func expectOutOfBounds(_ operation: String, file: StaticString = #filePath, line: UInt = #line,
                           _ body: () throws -> Void) -> Int? {
        var needed: Int?
        XCTAssertThrowsError(try body(), file: file, line: line) {
            guard case let BackendError.outOfBounds(operation: name, needed: n, _) = $0, name == operation else {
                return XCTFail("expected outOfBounds(\(operation)), got \($0)", file: file, line: line)
            }
            needed = n
        }
        return needed
    }

    // MARK: 1. makeBuffer

    func testMakeBufferRefusesCountsWhoseBytesOverflow() {
        for count in [Int.max, Int.max / 4 + 1, CPUBackend.maximumBufferCount + 1] {
            expectInvalid("makeBuffer") { _ = try backend.makeBuffer(count: count) }
        }
        expectInvalid("makeBuffer") { _ = try backend.makeBuffer(count: -1) }
    }

    func testMakeBufferHugeThrowsInsteadOfCrashing() throws {
        // 4 TiB: refused by the allocator (heuristic overcommit) → a typed error, not a crash in
        // `allocate`; where the system overcommits freely, the buffer comes back untouched
        do {
            let buffer = try backend.makeBuffer(count: 1 << 40)
            XCTAssertEqual(buffer.count, 1 << 40)
        } catch let error as BackendError {
            guard case .invalidArgument(operation: "makeBuffer", _) = error else { return XCTFail("\(error)") }
        }
        // ordinary buffers still come back zero-filled
        let buffer = try backend.makeBuffer(count: 1000)
        XCTAssertTrue(UnsafeBufferPointer(start: buffer.pointer, count: 1000).allSatisfy { $0 == 0 })
        XCTAssertEqual(try backend.makeBuffer(count: 0).count, 0)
    }

    // MARK: 2. Host-array helpers

    func testHostArrayHelpersRefuseNegativeAndOverflowingCounts() throws {
        expectInvalid("poisoned") { _ = try backend.poisoned(-1) }
        expectInvalid("poisoned") { _ = try backend.poisoned(1, offset: Int.max) }
        expectInvalid("poisoned") { _ = try backend.poisoned(1, offset: -1) }
        let slice = try backend.buffer([1])
        expectInvalid("read") { _ = try backend.read(slice, -1) }
        expectInvalid("read") { _ = try backend.read(slice, Int.max) }
        expectInvalid("buffer") { _ = try backend.buffer([1], offset: Int.max) }
        expectInvalid("buffer") { _ = try backend.buffer([1], offset: 1, trailing: Int.max) }
        expectInvalid("buffer") { _ = try backend.buffer([1], trailing: -1) }
        // reading more than the buffer holds is out of bounds (the download's check)
        expectOutOfBounds("download") { _ = try backend.read(slice, 1_000) }
        // however many: the host is asked for at most one piece (2²⁰ elements) more than the
        // buffer holds (the whole count, and a trap, before)
        expectOutOfBounds("download") { _ = try backend.read(slice, CPUBackend.maximumBufferCount) }
        expectOutOfBounds("download") { _ = try backend.read(slice, 3 << 20) }
        // and a read of several pieces comes back whole, in order
        let long = (0..<((2 << 20) + 5)).map { Float($0 % 9973) }
        XCTAssertEqual(try backend.read(try backend.buffer(long, offset: 3), long.count), long)
        // and the helpers still do what they did
        let poisoned = try backend.poisoned(2, offset: 1)
        XCTAssertEqual(poisoned.offset, 1)
        XCTAssertEqual(poisoned.buffer.count, 6)
        XCTAssertTrue(try backend.read(BufferSlice(poisoned.buffer), 6).allSatisfy(\.isNaN))
        let values = try backend.buffer([1, 2], offset: 2, trailing: 1)
        let all = try backend.read(BufferSlice(values.buffer), 5)
        XCTAssertEqual(Array(all[2..<4]), [1, 2])
        XCTAssertTrue(all[0].isNaN && all[1].isNaN && all[4].isNaN)
    }

    // MARK: 3. Slice ranges

    func testUploadDownloadWithOverflowingOffsetOrCountThrow() throws {
        let buffer = try backend.makeBuffer(count: 4)
        let needed = expectOutOfBounds("upload") {
            try [Float(1)].withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer, offset: Int.max)) }
        }
        XCTAssertEqual(needed, Int.max)
        var out = [Float](repeating: 0, count: 1)
        expectOutOfBounds("download") {
            try out.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(buffer, offset: 1), count: Int.max, into: $0) }
        }
        expectOutOfBounds("download") {
            try out.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(buffer, offset: Int.min), count: 1, into: $0) }
        }
        expectOutOfBounds("download") {
            try out.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(buffer, offset: 5), count: 0, into: $0) }
        }
        // the last element and an empty read at the end are still inside
        try out.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(buffer, offset: 3), count: 1, into: $0) }
        try out.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(buffer, offset: 4), count: 0, into: $0) }
    }

    func testAdvancedBySaturatesInsteadOfOverflowing() throws {
        let buffer = try backend.makeBuffer(count: 1)
        XCTAssertEqual(BufferSlice(buffer, offset: Int.max).advanced(by: 1).offset, Int.max)
        XCTAssertEqual(BufferSlice(buffer, offset: Int.min).advanced(by: -1).offset, Int.min)
        XCTAssertEqual(BufferSlice(buffer, offset: 3).advanced(by: 4).offset, 7)
        XCTAssertEqual(BufferSlice(buffer, offset: 3).advanced(by: -4).offset, -1)
        // the saturated slice is then refused
        expectOutOfBounds("upload") {
            try [Float(1)].withUnsafeBufferPointer {
                try backend.upload($0, to: BufferSlice(buffer, offset: Int.max).advanced(by: Int.max))
            }
        }
    }

    // MARK: 4. Size products

    func testSizeProductsThatOverflowThrow() throws {
        let buffer = try backend.makeBuffer(count: 4)
        let slice = BufferSlice(buffer)
        let huge = 1 << 32
        for (m, n, k, operand) in [(huge, huge, 1, "C"), (Int.max, 2, 0, "C"), (huge, 1, huge, "A"), (1, huge, huge, "B")] {
            expectInvalid("matrixProduct \(operand)") {
                try backend.matrixProduct(.nn, m: m, n: n, k: k, a: slice, b: slice, c: slice, epilogue: .none)
            }
        }
        for (m, n) in [(huge, huge), (Int.max, 2)] {
            expectInvalid("matrixProduct C") {
                try backend.matrixProduct(.nn, m: m, n: n, k: 1, a: slice, b: slice, c: slice,
                                          activation: .activationDerivative(slice, .tanh))
            }
        }
        expectInvalid("matrixProduct") {
            try backend.matrixProduct(.nn, m: -1, n: 1, k: 1, a: slice, b: slice, c: slice,
                                      activation: .activationDerivative(slice, .tanh))
        }
        expectInvalid("columnSums") { try backend.columnSums(slice, rows: huge, columns: huge, into: slice) }
        expectInvalid("columnSums") { try backend.columnSums(slice, rows: -1, columns: -1, into: slice) }
        for targets in [TargetEncoding.dense, .classIndices] {
            expectInvalid("lossGradient") {
                try backend.lossGradient(.meanSquaredError, targets: targets, output: slice, target: slice, rows: huge, columns: huge,
                                         gradient: slice, lossSum: slice)
            }
            expectInvalid("lossGradient") {
                try backend.lossGradient(.crossEntropy, targets: targets, output: slice, target: slice, rows: -1, columns: -1,
                                         gradient: slice, lossSum: slice)
            }
        }
        expectInvalid("gatherRows output") {
            try backend.gatherRows(slice, width: huge, indices: slice, count: huge, into: slice)
        }
        expectInvalid("gatherRows") { try backend.gatherRows(slice, width: -1, indices: slice, count: -1, into: slice) }
    }

    // MARK: 5. Gather

    func testGatherIndexWhoseRowEndOverflowsThrowsOutOfBounds() throws {
        let width = 1 << 17
        let source = try backend.makeBuffer(count: width)
        let indices = try backend.buffer([1e14])
        let destination = try backend.makeBuffer(count: width)
        let needed = expectOutOfBounds("gatherRows") {
            try backend.gatherRows(BufferSlice(source), width: width, indices: indices, count: 1, into: BufferSlice(destination))
        }
        XCTAssertEqual(needed, Int.max)
        // an index just past the rows reports the elements it needs
        let past = try backend.buffer([1])
        XCTAssertEqual(expectOutOfBounds("gatherRows") {
            try backend.gatherRows(BufferSlice(source), width: width, indices: past, count: 1, into: BufferSlice(destination))
        }, 2 * width)
    }

    func testGatherThroughSessionWithHugeRowIndexThrows() throws {
        let features = 1 << 17
        let model = try MLP(layerSizes: [features, 1], loss: .meanSquaredError, seed: 0)
        let session = try TrainingSession(model: model, backend: backend, batchCapacity: 1)
        let data = try session.upload(try Dataset(inputs: [Float](repeating: 0, count: features), features: features, targets: [0],
                                                  encoding: .dense, targetWidth: 1))
        try session.setRowOrder([100_000_000_000_000])
        XCTAssertThrowsError(try session.trainStep(on: data, positions: 0..<1, gathered: true))
    }

    func testGatherSourceOffsetOutsideTheBufferThrows() throws {
        let source = try backend.buffer([1, 2], trailing: 0)
        let indices = try backend.buffer([0])
        let destination = try backend.poisoned(1)
        for offset in [-1, Int.min, 3, Int.max] {
            expectOutOfBounds("gatherRows source") {
                try backend.gatherRows(BufferSlice(source.buffer, offset: offset), width: 1, indices: indices, count: 1,
                                       into: destination)
            }
        }
        XCTAssertTrue(try backend.read(destination, 1)[0].isNaN, "nothing was copied")
        // at the end of the buffer: no rows, so index 0 is out of bounds
        expectOutOfBounds("gatherRows") {
            try backend.gatherRows(BufferSlice(source.buffer, offset: 2), width: 1, indices: indices, count: 1, into: destination)
        }
        // inside, it still gathers
        try backend.gatherRows(BufferSlice(source.buffer, offset: 1), width: 1, indices: indices, count: 1, into: destination)
        XCTAssertEqual(try backend.read(destination, 1), [2])
    }

    // MARK: 6. Class-index labels in the loss kernels

    func testLabelsThatNameNoClassPoisonEveryLossNotTrap() throws {
        func run(_ loss: Loss, _ label: Float) throws -> (gradient: [Float], loss: Float) {
            let gradient = try backend.poisoned(2), sum = try backend.poisoned(1)
            try backend.lossGradient(loss, targets: .classIndices, output: try backend.buffer([0, 0]),
                                     target: try backend.buffer([label]), rows: 1, columns: 2,
                                     gradient: gradient, lossSum: sum)
            return (try backend.read(gradient, 2), try backend.read(sum, 1)[0])
        }
        // unrepresentable as an Int (NaN, ±∞, beyond Int32: `Int(_:)` would trap), fractions,
        // negatives and the class count itself: no class, so the loss is NaN whatever the loss
        for label: Float in [.nan, .infinity, -.infinity, 1e30, -1e30, 3e9, 1.5, 0.5, -0.5, -1, 2] {
            for loss in Loss.allCases {
                XCTAssertTrue(try run(loss, label).loss.isNaN, "\(loss) label \(label)")
            }
        }
        // a whole-number label in range: the finite loss, by hand
        let crossEntropy = try run(.crossEntropy, 1)
        XCTAssertEqual(crossEntropy.loss, logf(2), accuracy: 1e-6)
        XCTAssertEqual(crossEntropy.gradient, [0.5, -0.5])
        XCTAssertEqual(try run(.meanSquaredError, 1).loss, 0.5)   // ½·(0 − 1)²
        XCTAssertEqual(try run(.meanSquaredError, -0.0).gradient, [-1, 0])
        XCTAssertEqual(LossKernels.classLabel(-0.0, classes: 2), 0)
        XCTAssertEqual(LossKernels.classLabel(-0.5, classes: 2), -1)
        XCTAssertEqual(LossKernels.classLabel(1.5, classes: 2), -1)
        XCTAssertEqual(LossKernels.classLabel(4, classes: 5), 4)
        XCTAssertEqual(LossKernels.classLabel(5, classes: 5), -1)
        XCTAssertEqual(LossKernels.classLabel(2_147_483_520, classes: .max), 2_147_483_520)
        XCTAssertEqual(LossKernels.classLabel(2_147_483_648, classes: .max), -1)
    }
}
