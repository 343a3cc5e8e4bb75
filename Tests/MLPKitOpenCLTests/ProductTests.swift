import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// The product kernels in all three layouts with every epilogue, against the CPU backend.
final class ProductTests: XCTestCase {
    /// m, n, k: ones, thin shapes, primes, tile multiples, and sizes just past a tile.
    static let sizes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 37, 5), (41, 1, 7), (1, 1, 97), (37, 53, 29), (13, 7, 101), (3, 131, 2),
        (64, 64, 64), (128, 128, 32), (32, 96, 16), (129, 65, 17), (200, 130, 257),
    ]

    enum EpilogueKind: CaseIterable {
        case none, bias, biasReLU, reluMask
    }

    /// Runs one product on `backend` with operands at non-zero offsets when `offset` is set.
    static func product<B: Backend>(
        on backend: B, _ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float],
        epilogue: EpilogueKind, auxiliary: [Float], offset: Bool
    ) throws -> [Float] {
        let aSlice = try backend.buffer(a, offset: offset ? 7 : 0)
        let bSlice = try backend.buffer(b, offset: offset ? 3 : 0)
        let cSlice = try backend.poisoned(m * n, offset: offset ? 5 : 0)
        let auxSlice = try backend.buffer(auxiliary, offset: offset ? 2 : 0)
        let fused: ProductEpilogue<B.Buffer> = switch epilogue {
        case .none: .none
        case .bias: .bias(auxSlice)
        case .biasReLU: .biasReLU(auxSlice)
        case .reluMask: .reluMask(auxSlice)
        }
        try backend.matrixProduct(layout, m: m, n: n, k: k, a: aSlice, b: bSlice, c: cSlice, epilogue: fused)
        return try backend.read(cSlice, m * n)
    }

    /// Every layout × epilogue × size on `backend`, compared with the CPU backend.
    func checkProducts(_ backend: OpenCLBackend, sizes: [(m: Int, n: Int, k: Int)], group: String) throws {
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 0x5EED)
        for (index, size) in sizes.enumerated() {
            let (m, n, k) = size
            for layout in ProductLayout.allCases {
                for epilogue in EpilogueKind.allCases {
                    let a = random.values(m * k), b = random.values(k * n)
                    let auxiliary = random.values(epilogue == .reluMask ? m * n : n)
                    let offset = index % 2 == 1
                    let expected = try Self.product(on: reference, layout, m: m, n: n, k: k, a: a, b: b,
                                                    epilogue: epilogue, auxiliary: auxiliary, offset: offset)
                    let actual = try Self.product(on: backend, layout, m: m, n: n, k: k, a: a, b: b,
                                                  epilogue: epilogue, auxiliary: auxiliary, offset: offset)
                    assertClose(actual, expected, "\(layout) \(epilogue) \(m)×\(n)×\(k) tiles \(backend.tiles)",
                                group: group)
                }
            }
        }
    }

    /// The device's own tiles at every size.
    func testProductsWithDeviceTiles() throws {
        let backend = try SharedBackends.backend()
        try checkProducts(backend, sizes: Self.sizes, group: "product (\(backend.tiles))")
    }

    /// Every tile preset, the sm_90 one included, so the CUDA tiling logic runs in CI too.
    func testProductsWithEveryPreset() throws {
        for tiles in KernelTiles.presets {
            let backend = try SharedBackends.backend(tiles: tiles)
            try checkProducts(backend, sizes: [(1, 1, 1), (37, 53, 29), (tiles.bm, tiles.bn, 2 * tiles.bk),
                                               (tiles.bm + 1, 2 * tiles.bn - 1, tiles.bk + 3)],
                              group: "product (\(tiles))")
        }
    }

    /// k = 0 gives the epilogue applied to zeros; m or n = 0 does nothing.
    func testEmptyProducts() throws {
        let backend = try SharedBackends.backend()
        let bias: [Float] = [0.5, -0.25, 2]
        let result = try Self.product(on: backend, .nt, m: 2, n: 3, k: 0, a: [], b: [], epilogue: .biasReLU,
                                      auxiliary: bias, offset: false)
        XCTAssertEqual(result, [0.5, 0, 2, 0.5, 0, 2])
        let empty = try Self.product(on: backend, .nn, m: 0, n: 3, k: 4, a: [], b: [Float](repeating: 1, count: 12),
                                     epilogue: .none, auxiliary: [], offset: false)
        XCTAssertEqual(empty, [])
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
        for (group, error) in ErrorLog.worst.sorted(by: { $0.key < $1.key }) where group.hasPrefix("product") {
            print("max relative error \(group): \(error)")
        }
        super.tearDown()
    }
}
