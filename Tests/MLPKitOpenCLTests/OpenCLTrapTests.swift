import MLPKit
import MLPKitCUDA
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// The GPU backends' shared planning and range checks, and the tiles' validation, with values
/// that used to overflow (trap) instead of throwing; the OpenCL checks run on PoCL when present.
final class OpenCLTrapTests: XCTestCase {
    struct PlanBuffer: KernelPlanBuffer {
        var count: Int
    }

    func expectPlanError(_ file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) {
            guard case KernelPlanError.invalidArgument = $0 else {
                return XCTFail("expected KernelPlanError.invalidArgument, got \($0)", file: file, line: line)
            }
        }
    }

    // MARK: KernelTiles

    func testInvalidTilesDescribeThemselvesWithoutTrapping() {
        for tiles in [KernelTiles(bm: 8, bn: 8, bk: 8, tm: 0, tn: 4), KernelTiles(bm: 8, bn: 8, bk: 8, tm: 4, tn: 0),
                      KernelTiles(bm: 8, bn: 8, bk: 8, tm: -4, tn: -4)] {
            XCTAssertThrowsError(try tiles.validate()) {
                XCTAssertTrue("\($0)".contains("every size must be positive"), "\($0)")
            }
            XCTAssertEqual(tiles.gemmThreads, 0)
            _ = tiles.description
        }
    }

    func testHugeTilesAreRefusedNotOverflowed() {
        let huge = 1 << 40
        for tiles in [
            KernelTiles(bm: huge, bn: huge, bk: huge, tm: 4, tn: 4),            // threads and stages overflow
            KernelTiles(bm: huge, bn: huge, bk: huge, tm: huge, tn: huge),      // one thread, stages overflow
            KernelTiles(bm: 1 << 62, bn: 1 << 62, bk: 4, tm: 1 << 61, tn: 1 << 61),
            KernelTiles(bm: Int.max - 3, bn: 8, bk: 4, tm: 4, tn: 4),
        ] {
            XCTAssertThrowsError(try tiles.validate()) { error in
                XCTAssertTrue("\(error)".hasPrefix("invalid kernel tiles"), "\(error)")
            }
            _ = tiles.description
            _ = tiles.compact
            _ = tiles.gemmSharedBytes
            _ = tiles.maxThreads
        }
        XCTAssertEqual(KernelTiles(bm: huge, bn: huge, bk: 4, tm: 4, tn: 4).gemmThreads, Int.max)
        XCTAssertEqual(KernelTiles(bm: Int.max, bn: Int.max, bk: Int.max, tm: 4, tn: 4).gemmSharedBytes, Int.max)
        // the presets are unchanged
        for tiles in KernelTiles.presets {
            XCTAssertNoThrow(try tiles.validate())
        }
        XCTAssertEqual(KernelTiles.large.gemmThreads, 256)
        XCTAssertEqual(KernelTiles.large.gemmSharedBytes, 2 * 16 * (128 + 4 + 128 + 4) * 4)
        XCTAssertEqual(KernelTiles.large.compact, KernelTiles(bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, minBlocks: 4))
    }

    // MARK: KernelLaunchPlanner

    func testPlannerRangeChecksDoNotOverflow() {
        let buffer = PlanBuffer(count: 4)
        for (offset, count) in [(Int.max, 1), (1, Int.max), (Int.min, 1), (5, 0)] {
            expectPlanError { try KernelLaunchPlanner.checkRange(BufferSlice(buffer, offset: offset), count, "x") }
        }
        XCTAssertEqual(try KernelLaunchPlanner.checkRange(BufferSlice(buffer, offset: 4), 0, "x"), 4)
        XCTAssertEqual(try KernelLaunchPlanner.checkRange(BufferSlice(buffer, offset: 1), 3, "x"), 1)
    }

    func testPlannerSizeProductsAreChecked() {
        let planner = KernelLaunchPlanner(tiles: .medium, elementThreads: 256, maxElementBlocks: 1024)
        let slice = BufferSlice(PlanBuffer(count: 4))
        expectPlanError { _ = try KernelLaunchPlanner.product(Int.max, 2, "m·n") }
        XCTAssertEqual(try KernelLaunchPlanner.product(1 << 31, 1 << 31, "m·n"), 1 << 62)
        let big = Int(Int32.max)
        expectPlanError { _ = try planner.matrixProduct(.nn, m: big, n: big, k: big, a: slice, b: slice, c: slice, epilogue: .none) }
        expectPlanError { _ = try planner.columnSums(slice, rows: big, columns: big, into: slice) }
        expectPlanError {
            _ = try planner.lossGradient(.meanSquaredError, targets: .dense, output: slice, target: slice, rows: big, columns: big,
                                         gradient: slice, lossSum: slice)
        }
        expectPlanError { _ = try planner.gatherRows(slice, width: big, indices: slice, count: big, into: slice) }
        expectPlanError { _ = try planner.gatherRows(BufferSlice(PlanBuffer(count: 4), offset: Int.max), width: 1, indices: slice,
                                                     count: 1, into: slice) }
        expectPlanError { _ = try planner.activationForward(.tanh, rows: big, columns: big, c: slice, preActivation: nil) }
        expectPlanError { _ = try planner.activationDerivative(.tanh, rows: big, columns: big, c: slice, source: slice) }
        expectPlanError { _ = try planner.activationForward(.tanh, rows: 1 << 40, columns: 1 << 40, c: slice, preActivation: nil) }
    }

    // MARK: ComputeCapability

    func testComputeCapabilityNumberSaturates() {
        XCTAssertEqual(ComputeCapability(major: 9, minor: 0).number, 90)
        XCTAssertEqual(ComputeCapability(major: 8, minor: 6).architecture, "sm_86")
        XCTAssertEqual(ComputeCapability(major: Int.max, minor: 0).number, Int.max)
        XCTAssertEqual(ComputeCapability(major: Int.min, minor: 0).number, Int.min)
        XCTAssertEqual(ComputeCapability(major: Int.max / 10, minor: Int.max).number, Int.max)
        XCTAssertTrue(ComputeCapability(major: 9, minor: 0) < ComputeCapability(major: Int.max, minor: 0))
    }

    // MARK: OpenCL backend (PoCL)

    func testOpenCLRangesAndAllocationsThrow() throws {
        let backend = try SharedBackends.backend()
        for count in [Int.max, Int.max / 4 + 1] {
            XCTAssertThrowsError(try backend.makeBuffer(count: count)) {
                guard case OpenCLError.invalidArgument = $0 else { return XCTFail("\($0)") }
            }
        }
        let buffer = try backend.makeBuffer(count: 4)
        XCTAssertThrowsError(try [Float(1)].withUnsafeBufferPointer {
            try backend.upload($0, to: BufferSlice(buffer, offset: Int.max))
        }) {
            guard case OpenCLError.invalidArgument = $0 else { return XCTFail("\($0)") }
        }
        var out = [Float](repeating: 0, count: 1)
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer {
            try backend.download(BufferSlice(buffer, offset: 1), count: Int.max, into: $0)
        }) {
            guard case OpenCLError.invalidArgument = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try backend.matrixProduct(.nn, m: 1 << 32, n: 1, k: 1 << 32, a: BufferSlice(buffer),
                                                       b: BufferSlice(buffer), c: BufferSlice(buffer), epilogue: .none))
    }
}
