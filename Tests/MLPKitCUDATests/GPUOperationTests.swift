import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// Every operation on the GPU against the CPU backend, on fresh random inputs at odd sizes,
/// operands at offsets inside NaN-padded buffers, outputs poisoned with NaN. Skips without a GPU.
final class GPUOperationTests: XCTestCase {
    /// The shared sizes, and (on a GPU) larger ones.
    static let sizes = OperationChecks.productSizes + [(257, 300, 129), (1000, 17, 513)]

    func checkProducts(_ backend: CUDABackend, sizes: [(m: Int, n: Int, k: Int)], group: String) throws {
        try OperationChecks.checkProducts(backend, sizes: sizes, group: group) { m, n, k, _ in
            "\(m)×\(n)×\(k) tiles \(backend.tiles)"
        }
    }

    /// `BackendCheck` (what `mlp check --device cuda` runs): every row passes, the features beyond
    /// the seed included (binary cross-entropy, each activation's products, AdamW and clipping),
    /// which the tests below otherwise reach only through training runs.
    func testBackendCheckPassesEveryRow() throws {
        let backend = try SharedCUDA.backend()
        let results = try BackendCheck(candidate: backend).run()
        XCTAssertGreaterThanOrEqual(results.count, 222)
        for result in results {
            XCTAssert(result.passed, "\(result.name) \(result.sizes): relative error \(result.relativeError) > \(result.threshold)")
        }
    }

    func testProductsWithDeviceTiles() throws {
        let backend = try SharedCUDA.backend()
        print(backend.summary)
        try checkProducts(backend, sizes: Self.sizes, group: "cuda product (\(backend.tiles))")
    }

    func testProductsWithEveryPreset() throws {
        for tiles in KernelTiles.presets {
            let backend = try SharedCUDA.backend(tiles: tiles)
            try checkProducts(backend, sizes: OperationChecks.edgeSizes(tiles), group: "cuda product (\(tiles))")
        }
    }

    func testEmptyProducts() throws {
        try OperationChecks.checkEmptyProducts(SharedCUDA.backend())
    }

    func testOutOfRangeOperandsThrow() throws {
        let backend = try SharedCUDA.backend()
        let small = try backend.buffer([1, 2, 3], trailing: 0)
        let c = try backend.poisoned(4)
        XCTAssertThrowsError(try backend.matrixProduct(.nn, m: 2, n: 2, k: 2, a: small, b: small, c: c, epilogue: .none)) {
            guard case CUDAError.invalidArgument = $0 else { return XCTFail("unexpected \($0)") }
        }
    }

    func testColumnSums() throws {
        let shapes = [(1, 1), (5, 31), (64, 32), (300, 33), (7, 100), (1000, 3), (4096, 257)]
        try OperationChecks.checkColumnSums(SharedCUDA.backend(), shapes: shapes, group: "cuda column sums")
    }

    /// Every loss, both target encodings; from 64 columns the loss runs as loss_wide.
    func testLossGradients() throws {
        let shapes = [(1, 1), (1, 10), (7, 3), (64, 10), (257, 33), (1000, 2), (4099, 10), (3, 77), (9, 1024), (130, 300)]
        try OperationChecks.checkLossGradients(SharedCUDA.backend(), shapes: shapes, group: "cuda loss")
    }

    func testLossInPlace() throws {
        try OperationChecks.checkInPlaceLoss(SharedCUDA.backend(), group: "CUDA")
    }

    func testInvalidLabelPoisonsLoss() throws {
        try OperationChecks.checkInvalidLabelPoisonsLoss(SharedCUDA.backend())
    }

    func testGatherRows() throws {
        let shapes = [(1, 1, 1), (50, 13, 17), (300, 1, 64), (97, 784, 33), (5000, 3, 4096)]
        try OperationChecks.checkGatherRows(SharedCUDA.backend(), shapes: shapes)
    }

    /// Adam over several steps with t in device memory: advanced by a kernel, or written on a jump.
    func testAdamSteps() throws {
        let backend = try CUDABackend(tiles: SharedCUDA.backend().tiles)
        try OperationChecks.checkAdamSteps(backend, count: 100_003, steps: [1, 2, 3, 4, 9, 10, 1000],
                                           deviceStep: { try backend.deviceStepCounter() }, group: "cuda adam")
    }

    func testBuffersAreZeroFilled() throws {
        let backend = try SharedCUDA.backend()
        let buffer = try backend.makeBuffer(count: 100_001)
        XCTAssertEqual(try backend.read(BufferSlice(buffer), 100_001), [Float](repeating: 0, count: 100_001))
    }

    override class func tearDown() {
        ErrorLog.printWorst(prefix: "cuda")
        super.tearDown()
    }
}
