import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// The product kernels in all three layouts with every epilogue, against the CPU backend.
final class ProductTests: XCTestCase {
    /// Every layout × epilogue × size on `backend`, compared with the CPU backend.
    func checkProducts(_ backend: OpenCLBackend, sizes: [(m: Int, n: Int, k: Int)], group: String) throws {
        try OperationChecks.checkProducts(backend, sizes: sizes, group: group) { m, n, k, _ in
            "\(m)×\(n)×\(k) tiles \(backend.tiles)"
        }
    }

    /// The device's own tiles at every size.
    func testProductsWithDeviceTiles() throws {
        let backend = try SharedBackends.backend()
        try checkProducts(backend, sizes: OperationChecks.productSizes, group: "product (\(backend.tiles))")
    }

    /// Every tile preset, the sm_90 one included, so the CUDA tiling logic runs in CI too.
    func testProductsWithEveryPreset() throws {
        for tiles in KernelTiles.presets {
            let backend = try SharedBackends.backend(tiles: tiles)
            try checkProducts(backend, sizes: OperationChecks.edgeSizes(tiles), group: "product (\(tiles))")
        }
    }

    /// k = 0 gives the epilogue applied to zeros; m or n = 0 does nothing.
    func testEmptyProducts() throws {
        try OperationChecks.checkEmptyProducts(SharedBackends.backend())
    }

    /// Operands that reach past their buffers are refused before anything runs.
    func testOutOfRangeOperandsThrow() throws {
        let backend = try SharedBackends.backend()
        let small = try backend.buffer([1, 2, 3], trailing: 0)
        let c = try backend.poisoned(4)
        XCTAssertThrowsError(try backend.matrixProduct(.nn, m: 2, n: 2, k: 2, a: small, b: small, c: c, epilogue: .none)) {
            guard case OpenCLError.invalidArgument = $0 else { return XCTFail("unexpected \($0)") }
        }
    }

    override class func tearDown() {
        ErrorLog.printWorst(prefix: "product")
        super.tearDown()
    }
}

/// The paths the default sizes above rarely take: 16-byte loads and stores (aligned operands,
/// dimensions divisible by 4, whole tiles), the compact tile, and k split into slices added by
/// `gemm_splitk_sum`, with every layout and epilogue against the CPU backend.
final class ProductPathTests: XCTestCase {
    /// Sizes divisible by 4 (vector loads inside, element loads at the edges) and long k.
    static let alignedSizes: [(m: Int, n: Int, k: Int)] = [
        (64, 64, 64), (132, 68, 36), (4, 260, 48), (200, 8, 1000), (96, 100, 516),
    ]
    static let longSizes: [(m: Int, n: Int, k: Int)] = [
        (37, 53, 300), (5, 7, 999), (64, 64, 512), (130, 66, 777), (1, 1, 1000),
    ]

    /// Runs every layout × epilogue at `sizes` with operands at `offsets` (elements), comparing
    /// with the CPU backend.
    func check(_ backend: OpenCLBackend, sizes: [(m: Int, n: Int, k: Int)], offsets: [Int], group: String) throws {
        try OperationChecks.checkProducts(backend, sizes: sizes, seed: 0xA11C, offsets: offsets.map { .multiples(of: $0) },
                                          group: group) { m, n, k, at in
            "\(m)×\(n)×\(k) at offset \(at.a), \(backend.launchPlanner.productGeometry(m: m, n: n, k: k))"
        }
    }

    /// Aligned operands (offsets 0, 4, 8 floats) with every preset: the 16-byte path.
    func testAlignedOperandsWithEveryPreset() throws {
        for tiles in KernelTiles.presets {
            let backend = try SharedBackends.backend(tiles: tiles)
            try check(backend, sizes: Self.alignedSizes, offsets: [0, 4, 8], group: "aligned product (\(tiles))")
        }
    }

    /// The CUDA tuning variants (`MLPKIT_CUDA_TILES`) that are not presets: main and compact
    /// tiles, aligned (16-byte path) and not, k split, so any of them can become the default.
    func testProductsWithTuningVariants() throws {
        let presets = Set(KernelTiles.presets)
        for (name, tiles) in KernelTiles.named.sorted(by: { $0.key < $1.key }) where !presets.contains(tiles) {
            let backend = try SharedBackends.backend(tiles: tiles)
            let saved = backend.productParallelism
            defer { backend.productParallelism = saved }
            backend.productParallelism = 132
            let sizes: [(m: Int, n: Int, k: Int)] = [
                (tiles.bm + 1, 2 * tiles.bn - 1, tiles.bk + 3), (tiles.bm, tiles.bn, 4 * tiles.bk),
                (2 * tiles.bm, 2 * tiles.bn, 100), (64, 256, 784),
            ]
            try check(backend, sizes: sizes,
                      offsets: [0, 4], group: "product (\(name): \(tiles))")
        }
    }

    /// A device taken to have many multiprocessors: small products run with the compact tile
    /// and split k (the geometry an H100 gives MLP-sized layers), aligned and not.
    func testCompactTileAndSplitK() throws {
        for tiles in KernelTiles.presets {
            let backend = try SharedBackends.backend(tiles: tiles)
            let saved = backend.productParallelism
            defer { backend.productParallelism = saved }
            backend.productParallelism = 132
            var geometries = Set<String>()
            for (m, n, k) in Self.longSizes + Self.alignedSizes {
                geometries.insert(backend.launchPlanner.productGeometry(m: m, n: n, k: k).description)
            }
            XCTAssertTrue(geometries.contains { $0.contains("slices") }, "\(tiles): no size split k: \(geometries)")
            if tiles.compact != tiles {
                XCTAssertTrue(geometries.contains { $0.contains("compact") }, "\(tiles): \(geometries)")
            }
            try check(backend, sizes: Self.longSizes + Self.alignedSizes, offsets: [0, 3, 4],
                      group: "compact/split product (\(tiles))")
        }
    }

    /// The planner's choices: the main tile when it fills the device, else the compact tile,
    /// k split into BK-multiple slices that cover k exactly once.
    func testGeometryPolicy() {
        let planner = KernelLaunchPlanner(tiles: .large, elementThreads: 256, maxElementBlocks: 1056, parallelism: 132)
        let big = planner.productGeometry(m: 4096, n: 4096, k: 4096)
        XCTAssertEqual(big, .init(compact: false, tiles: .large, splits: 1, kSplit: 4096, blocks: 1024))
        // a 128-block weight gradient fills ¾ of 132 SMs: the main tile alone
        XCTAssertEqual(planner.productGeometry(m: 1024, n: 2048, k: 512),
                       .init(compact: false, tiles: .large, splits: 1, kSplit: 512, blocks: 128))
        // the wide config's layers (512 rows): main tiles with k in 2 or 4 slices of 512
        XCTAssertEqual(planner.productGeometry(m: 512, n: 2048, k: 2048),
                       .init(compact: false, tiles: .large, splits: 2, kSplit: 1024, blocks: 128))
        XCTAssertEqual(planner.productGeometry(m: 512, n: 1024, k: 2048),
                       .init(compact: false, tiles: .large, splits: 4, kSplit: 512, blocks: 128))
        // mnist's first layer, 128×256 over 784 inputs: 2 main tiles would need 50 slices, so
        // compact tiles, k split
        let mnist = planner.productGeometry(m: 128, n: 256, k: 784)
        XCTAssertTrue(mnist.compact)
        XCTAssertGreaterThan(mnist.splits, 1)
        XCTAssertEqual(mnist.kSplit % KernelTiles.large.compact.bk, 0)
        XCTAssertGreaterThanOrEqual(mnist.kSplit * mnist.splits, 784)
        XCTAssertLessThan(mnist.kSplit * (mnist.splits - 1), 784, "every slice holds some k")
        XCTAssertEqual(mnist.blocks, 8 * mnist.splits)
        // too shallow to split: compact tiles alone
        XCTAssertEqual(planner.productGeometry(m: 64, n: 64, k: 32),
                       .init(compact: true, tiles: KernelTiles.large.compact, splits: 1, kSplit: 32, blocks: 1))
        // no parallelism given: always the main tile
        let plain = KernelLaunchPlanner(tiles: .large, elementThreads: 256, maxElementBlocks: 1056)
        XCTAssertEqual(plain.productGeometry(m: 1, n: 1, k: 100_000).splits, 1)
    }
}
