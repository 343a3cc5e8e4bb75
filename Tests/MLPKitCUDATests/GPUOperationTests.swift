import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// Every operation on the GPU against the CPU backend, on fresh random inputs at odd sizes,
/// operands at offsets inside NaN-padded buffers, outputs poisoned with NaN. Skips without a GPU.
final class GPUOperationTests: XCTestCase {
    /// m, n, k: ones, thin shapes, primes, tile multiples, and sizes just past a tile.
    static let sizes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 37, 5), (41, 1, 7), (1, 1, 97), (37, 53, 29), (13, 7, 101), (3, 131, 2),
        (64, 64, 64), (128, 128, 32), (32, 96, 16), (129, 65, 17), (200, 130, 257), (257, 300, 129), (1000, 17, 513),
    ]

    enum EpilogueKind: CaseIterable {
        case none, bias, biasReLU, reluMask
    }

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

    func checkProducts(_ backend: CUDABackend, sizes: [(m: Int, n: Int, k: Int)], group: String) throws {
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
                    assertClose(actual, expected, "\(layout) \(epilogue) \(m)×\(n)×\(k) tiles \(backend.tiles)", group: group)
                }
            }
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
            try checkProducts(backend, sizes: [(1, 1, 1), (37, 53, 29), (tiles.bm, tiles.bn, 2 * tiles.bk),
                                               (tiles.bm + 1, 2 * tiles.bn - 1, tiles.bk + 3)],
                              group: "cuda product (\(tiles))")
        }
    }

    func testEmptyProducts() throws {
        let backend = try SharedCUDA.backend()
        let result = try Self.product(on: backend, .nt, m: 2, n: 3, k: 0, a: [], b: [], epilogue: .biasReLU,
                                      auxiliary: [0.5, -0.25, 2], offset: false)
        XCTAssertEqual(result, [0.5, 0, 2, 0.5, 0, 2])
        let empty = try Self.product(on: backend, .nn, m: 0, n: 3, k: 4, a: [], b: [Float](repeating: 1, count: 12),
                                     epilogue: .none, auxiliary: [], offset: false)
        XCTAssertEqual(empty, [])
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
        let backend = try SharedCUDA.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 11)
        for (index, (rows, columns)) in [(1, 1), (5, 31), (64, 32), (300, 33), (7, 100), (1000, 3), (4096, 257)].enumerated() {
            let matrix = random.values(rows * columns)
            let offset = index % 2 == 1 ? 9 : 0
            func run<B: Backend>(_ b: B) throws -> [Float] {
                let sums = try b.poisoned(columns, offset: offset)
                try b.columnSums(b.buffer(matrix, offset: offset), rows: rows, columns: columns, into: sums)
                return try b.read(sums, columns)
            }
            assertClose(try run(backend), try run(reference), "column sums \(rows)×\(columns)", group: "cuda column sums")
        }
    }

    func testLossGradients() throws {
        let backend = try SharedCUDA.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 12)
        let shapes = [(1, 1), (1, 10), (7, 3), (64, 10), (257, 33), (1000, 2), (4099, 10)]
        for loss in [Loss.meanSquaredError, .crossEntropy] {
            for encoding in [TargetEncoding.classIndices, .dense] {
                for (index, (rows, columns)) in shapes.enumerated() {
                    let output = random.values(rows * columns).map { $0 * 4 }
                    var targets: [Float]
                    if encoding == .classIndices {
                        targets = random.labels(rows, classes: columns)
                    } else if loss == .meanSquaredError {
                        targets = random.values(rows * columns)
                    } else {
                        targets = random.values(rows * columns).map { abs($0) + 0.01 }
                        if index % 2 == 0 {
                            for i in 0..<rows {
                                let total = targets[i * columns..<(i + 1) * columns].reduce(0, +)
                                for j in 0..<columns { targets[i * columns + j] /= total }
                            }
                        }
                    }
                    let offset = index % 2 == 1 ? 4 : 0
                    func run<B: Backend>(_ b: B) throws -> (gradient: [Float], loss: Float) {
                        let gradient = try b.poisoned(rows * columns, offset: offset)
                        let sum = try b.poisoned(1, offset: offset)
                        try b.lossGradient(loss, targets: encoding, output: b.buffer(output, offset: offset),
                                           target: b.buffer(targets, offset: offset), rows: rows, columns: columns,
                                           gradient: gradient, lossSum: sum)
                        return (try b.read(gradient, rows * columns), try b.read(sum, 1)[0])
                    }
                    let actual = try run(backend), expected = try run(reference)
                    let name = "\(loss) \(encoding) \(rows)×\(columns)"
                    assertClose(actual.gradient, expected.gradient, "\(name) gradient", group: "cuda loss gradient")
                    assertClose([actual.loss], [expected.loss], "\(name) loss sum", group: "cuda loss sum")
                }
            }
        }
    }

    func testInvalidLabelPoisonsLoss() throws {
        let backend = try SharedCUDA.backend()
        let gradient = try backend.poisoned(6), sum = try backend.poisoned(1)
        try backend.lossGradient(.crossEntropy, targets: .classIndices, output: backend.buffer([1, 2, 3, 4, 5, 6]),
                                 target: backend.buffer([1, 3]), rows: 2, columns: 3, gradient: gradient, lossSum: sum)
        XCTAssert(try backend.read(sum, 1)[0].isNaN)
    }

    func testGatherRows() throws {
        let backend = try SharedCUDA.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 13)
        for (index, (sourceRows, width, count)) in [(1, 1, 1), (50, 13, 17), (300, 1, 64), (97, 784, 33), (5000, 3, 4096)].enumerated() {
            let source = random.values(sourceRows * width)
            let indices = random.labels(count, classes: sourceRows)
            let offset = index % 2 == 1 ? 6 : 0
            func run<B: Backend>(_ b: B) throws -> [Float] {
                let destination = try b.poisoned(count * width, offset: offset)
                try b.gatherRows(b.buffer(source, offset: offset, trailing: 0), width: width,
                                 indices: b.buffer(indices, offset: offset), count: count, into: destination)
                return try b.read(destination, count * width)
            }
            XCTAssertEqual(try run(backend), try run(reference), "gather \(count) of \(sourceRows)×\(width)")
        }
    }

    /// Adam over several steps with t in device memory: advanced by a kernel, or written on a jump.
    func testAdamSteps() throws {
        let backend = try CUDABackend(tiles: SharedCUDA.backend().tiles)
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 21)
        let count = 100_003, offset = 5
        let hyperparameters = AdamHyperparameters(learningRate: 0.01)
        let initial = random.values(count), zeros = [Float](repeating: 0, count: count)
        let onDevice = (θ: try backend.buffer(initial, offset: offset), m: try backend.buffer(zeros, offset: offset),
                        v: try backend.buffer(zeros, offset: offset))
        let onCPU = (θ: try reference.buffer(initial, offset: offset), m: try reference.buffer(zeros, offset: offset),
                     v: try reference.buffer(zeros, offset: offset))
        for step in [1, 2, 3, 4, 9, 10, 1000] {
            let gradient = random.values(count)
            try backend.adamUpdate(parameters: onDevice.θ, gradients: backend.buffer(gradient, offset: offset),
                                   firstMoment: onDevice.m, secondMoment: onDevice.v, count: count,
                                   hyperparameters: hyperparameters, step: step)
            try reference.adamUpdate(parameters: onCPU.θ, gradients: reference.buffer(gradient, offset: offset),
                                     firstMoment: onCPU.m, secondMoment: onCPU.v, count: count,
                                     hyperparameters: hyperparameters, step: step)
            XCTAssertEqual(try backend.deviceStepCounter(), step, "t in device memory")
            for (name, device, host) in [("θ", onDevice.θ, onCPU.θ), ("m", onDevice.m, onCPU.m), ("v", onDevice.v, onCPU.v)] {
                assertClose(try backend.read(device, count), try reference.read(host, count), "Adam \(name) after step \(step)",
                            group: "cuda adam")
            }
        }
    }

    func testBuffersAreZeroFilled() throws {
        let backend = try SharedCUDA.backend()
        let buffer = try backend.makeBuffer(count: 100_001)
        XCTAssertEqual(try backend.read(BufferSlice(buffer), 100_001), [Float](repeating: 0, count: 100_001))
    }

    override class func tearDown() {
        for (group, error) in ErrorLog.worst.sorted(by: { $0.key < $1.key }) where group.hasPrefix("cuda") {
            print("max relative error \(group): \(error)")
        }
        super.tearDown()
    }
}
