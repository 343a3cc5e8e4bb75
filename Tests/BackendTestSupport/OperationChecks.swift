import MLPKit
import MLPKitKernels
import XCTest

/// The backend operations of SEED.md §5 on a kernel backend (OpenCL, CUDA) against the CPU
/// backend, on random inputs at odd sizes, with operands at offsets inside NaN-padded buffers
/// and outputs poisoned with NaN (so a kernel that reads outside its slice, or leaves an output
/// unwritten, shows). The OpenCL tests run them on PoCL in CI; the CUDA tests run the same
/// checks on a GPU.
public enum OperationChecks {
    /// m, n, k: ones, thin shapes, primes, tile multiples, and sizes just past a tile.
    public static let productSizes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 37, 5), (41, 1, 7), (1, 1, 97), (37, 53, 29), (13, 7, 101), (3, 131, 2),
        (64, 64, 64), (128, 128, 32), (32, 96, 16), (129, 65, 17), (200, 130, 257),
    ]

    /// The sizes that try a tile's edges: one element, a prime shape, whole tiles over two
    /// k-tiles, and one past a tile in every dimension.
    public static func edgeSizes(_ tiles: KernelTiles) -> [(m: Int, n: Int, k: Int)] {
        [(1, 1, 1), (37, 53, 29), (tiles.bm, tiles.bn, 2 * tiles.bk), (tiles.bm + 1, 2 * tiles.bn - 1, tiles.bk + 3)]
    }

    /// Every layout × epilogue × size on `backend` against the CPU backend; size i's operands
    /// sit at `offsets[i % offsets.count]`. `describe` names a size in a failure's message.
    public static func checkProducts<B: Backend>(
        _ backend: B, sizes: [(m: Int, n: Int, k: Int)], seed: UInt64 = 0x5EED, offsets: [ProductOffsets] = [.none, .odd],
        group: String,
        describe: (_ m: Int, _ n: Int, _ k: Int, _ offsets: ProductOffsets) -> String = { m, n, k, _ in "\(m)×\(n)×\(k)" },
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let reference = CPUBackend()
        var random = SeededGenerator(seed: seed)
        for (index, (m, n, k)) in sizes.enumerated() {
            let at = offsets[index % offsets.count]
            for layout in ProductLayout.allCases {
                for epilogue in ProductEpilogueKind.allCases {
                    let a = random.values(m * k), b = random.values(k * n)
                    let auxiliary = random.values(epilogue == .reluMask ? m * n : n)
                    let expected = try reference.product(layout, m: m, n: n, k: k, a: a, b: b, epilogue: epilogue,
                                               auxiliary: auxiliary, offsets: at)
                    let actual = try backend.product(layout, m: m, n: n, k: k, a: a, b: b, epilogue: epilogue,
                                             auxiliary: auxiliary, offsets: at)
                    assertClose(actual, expected, "\(layout) \(epilogue) \(describe(m, n, k, at))", group: group,
                                file: file, line: line)
                }
            }
        }
    }

    /// k = 0 gives the epilogue applied to zeros; m = 0 writes nothing.
    public static func checkEmptyProducts<B: Backend>(_ backend: B, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try backend.product(.nt, m: 2, n: 3, k: 0, a: [], b: [], epilogue: .biasReLU,
                                 auxiliary: [0.5, -0.25, 2])
        XCTAssertEqual(result, [0.5, 0, 2, 0.5, 0, 2], "k = 0", file: file, line: line)
        let empty = try backend.product(.nn, m: 0, n: 3, k: 4, a: [], b: [Float](repeating: 1, count: 12),
                                epilogue: .none, auxiliary: [])
        XCTAssertEqual(empty, [], "m = 0", file: file, line: line)
    }

    /// Column sums of rows×columns matrices (odd shapes at an offset of 9).
    public static func checkColumnSums<B: Backend>(
        _ backend: B, shapes: [(rows: Int, columns: Int)], group: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 11)
        for (index, (rows, columns)) in shapes.enumerated() {
            let matrix = random.values(rows * columns)
            let offset = index % 2 == 1 ? 9 : 0
            func run<C: Backend>(_ b: C) throws -> [Float] {
                try b.columnSums(matrix, rows: rows, columns: columns, offset: offset)
            }
            assertClose(try run(backend), try run(reference), "column sums \(rows)×\(columns)", group: group,
                        file: file, line: line)
        }
    }

    /// Every loss with both target encodings at `shapes`: the gradient and the loss sum (groups
    /// "`group` gradient" and "`group` sum"). Dense cross-entropy targets are positive rows,
    /// every other one normalised to sum to 1 (else the gradient's Σy factor shows).
    public static func checkLossGradients<B: Backend>(
        _ backend: B, shapes: [(rows: Int, columns: Int)], losses: [Loss] = Loss.allCases, group: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 12)
        for loss in losses {
            for encoding in [TargetEncoding.classIndices, .dense] {
                for (index, (rows, columns)) in shapes.enumerated() {
                    let (output, targets) = lossOperands(&random, loss, encoding, rows: rows, columns: columns,
                                                         normalized: index % 2 == 0)
                    let offset = index % 2 == 1 ? 4 : 0
                    func run<C: Backend>(_ b: C) throws -> (gradient: [Float], sum: Float) {
                        try b.lossGradient(loss, encoding, output: output, targets: targets, rows: rows, columns: columns,
                                           offset: offset)
                    }
                    let actual = try run(backend), expected = try run(reference)
                    let name = "\(loss) \(encoding) \(rows)×\(columns)"
                    assertClose(actual.gradient, expected.gradient, "\(name) gradient", group: "\(group) gradient",
                                file: file, line: line)
                    assertClose([actual.sum], [expected.sum], "\(name) loss sum", group: "\(group) sum",
                                file: file, line: line)
                }
            }
        }
    }

    /// Every loss, target encoding and weighting with the gradient written over the logits
    /// (`gradient` the `output` slice itself) against the same call with the gradient apart, on
    /// the same backend: the same bits. Narrow outputs, the CPU's sixteen-row softmax blocks
    /// (past 256 rows), and the kernels' wide-row loss.
    public static func checkInPlaceLoss<B: Backend>(_ backend: B, group: String, file: StaticString = #filePath,
                                                    line: UInt = #line) throws {
        var random = SeededGenerator(seed: 19)
        let shapes = [(5, 3), (37, 10), (300, 10), (3, KernelLaunchPlanner.wideLossColumns + 6)]
        for loss in Loss.allCases {
            for encoding in [TargetEncoding.classIndices, .dense] {
                for (index, (rows, columns)) in shapes.enumerated() {
                    let (output, targets) = lossOperands(&random, loss, encoding, rows: rows, columns: columns,
                                                         normalized: true)
                    let classWeights = random.values(columns).map { abs($0) + 0.5 }
                    let rowWeights = random.values(rows).map { abs($0) + 0.5 }
                    let weightings: [(name: String, classes: [Float]?, rows: [Float]?)] =
                        loss == .meanSquaredError ? [("unweighted", nil, nil), ("row weights", nil, rowWeights)]
                        : [("unweighted", nil, nil), ("class weights", classWeights, nil),
                           ("both weights", classWeights, rowWeights)]
                    for weighting in weightings {
                        func run(inPlace: Bool) throws -> (gradient: [Float], sum: Float) {
                            try backend.lossGradient(loss, encoding, output: output, targets: targets, rows: rows,
                                                     columns: columns, offset: index % 2 == 1 ? 4 : 0,
                                                     classWeights: weighting.classes, rowWeights: weighting.rows,
                                                     inPlace: inPlace)
                        }
                        let apart = try run(inPlace: false), inPlace = try run(inPlace: true)
                        let name = "\(group): \(loss) \(encoding) \(weighting.name) \(rows)×\(columns) in place"
                        XCTAssert(apart.sum.isFinite, "\(name): loss \(apart.sum)", file: file, line: line)
                        XCTAssertEqual(inPlace.sum.bitPattern, apart.sum.bitPattern, "\(name): loss \(inPlace.sum) against \(apart.sum)",
                                       file: file, line: line)
                        XCTAssertEqual(inPlace.gradient.map(\.bitPattern), apart.gradient.map(\.bitPattern),
                                       "\(name): gradient", file: file, line: line)
                    }
                }
            }
        }
    }

    /// Random logits (in [−4, 4)) and targets for `loss`: class indices, or dense rows (MSE's
    /// values, cross-entropy's positive rows, summing to 1 when `normalized`, binary labels).
    private static func lossOperands(_ random: inout SeededGenerator, _ loss: Loss, _ encoding: TargetEncoding, rows: Int,
                                     columns: Int, normalized: Bool) -> (output: [Float], targets: [Float]) {
        let output = random.values(rows * columns).map { $0 * 4 }
        let targets: [Float] = switch (loss, encoding) {
        case (_, .classIndices): random.labels(rows, classes: columns)
        case (.meanSquaredError, .dense): random.values(rows * columns)
        case (.crossEntropy, .dense): probabilityRows(&random, rows: rows, columns: columns, normalized: normalized)
        case (.binaryCrossEntropy, .dense): random.labels(rows * columns, classes: 2)
        }
        return (output, targets)
    }

    /// Positive target rows, summing to 1 when `normalized`.
    private static func probabilityRows(_ random: inout SeededGenerator, rows: Int, columns: Int, normalized: Bool) -> [Float] {
        var values = random.values(rows * columns).map { abs($0) + 0.01 }
        guard normalized else { return values }
        for i in 0..<rows {
            let total = values[i * columns..<(i + 1) * columns].reduce(0, +)
            for j in 0..<columns { values[i * columns + j] /= total }
        }
        return values
    }

    /// A class index that names no class (the class count itself, a fraction, a negative, NaN, ±∞,
    /// beyond Int32) in any one row makes every loss NaN, with narrow outputs (one thread per row)
    /// and wide ones (`loss_wide`, a block per row), as on the CPU; whole-number labels, −0
    /// included, give the CPU's finite loss and gradient.
    public static func checkInvalidLabelPoisonsLoss<B: Backend>(_ backend: B, file: StaticString = #filePath,
                                                                line: UInt = #line) throws {
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 17)
        let rows = 4
        for columns in [3, KernelLaunchPlanner.wideLossColumns + 6] {
            let output = random.values(rows * columns)
            for loss in Loss.allCases {
                func run<C: Backend>(_ b: C, _ labels: [Float]) throws -> (gradient: [Float], loss: Float) {
                    let result = try b.lossGradient(loss, .classIndices, output: output, targets: labels, rows: rows, columns: columns)
                    return (result.gradient, result.sum)
                }
                for invalid: Float in [Float(columns), 1.5, 0.25, -0.5, -1, .nan, .infinity, -.infinity, 3e9, 1e30] {
                    let name = "\(loss) label \(invalid) of \(columns) classes"
                    XCTAssert(try run(backend, [0, invalid, 2, 1]).loss.isNaN, name, file: file, line: line)
                    XCTAssert(try run(reference, [0, invalid, 2, 1]).loss.isNaN, "CPU: \(name)", file: file, line: line)
                }
                let labels: [Float] = [2, -0.0, Float(columns - 1), 1]
                let actual = try run(backend, labels), expected = try run(reference, labels)
                XCTAssert(expected.loss.isFinite, "\(loss) whole-number labels", file: file, line: line)
                assertClose(actual.gradient, expected.gradient, "\(loss) labels \(labels) gradient", group: "loss labels",
                            file: file, line: line)
                assertClose([actual.loss], [expected.loss], "\(loss) labels \(labels) loss", group: "loss labels",
                            file: file, line: line)
            }
        }
    }

    /// Gathering `count` random rows of a sourceRows×width matrix: exactly the CPU's copy.
    public static func checkGatherRows<B: Backend>(
        _ backend: B, shapes: [(sourceRows: Int, width: Int, count: Int)], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 13)
        for (index, (sourceRows, width, count)) in shapes.enumerated() {
            let source = random.values(sourceRows * width)
            let indices = random.labels(count, classes: sourceRows)
            let offset = index % 2 == 1 ? 6 : 0
            func run<C: Backend>(_ b: C) throws -> [Float] {
                try b.gatherRows(source, width: width, indices: indices, offset: offset)
            }
            XCTAssertEqual(try run(backend), try run(reference), "gather \(count) of \(sourceRows)×\(width)",
                           file: file, line: line)
        }
    }

    /// Adam over `steps` on `count` parameters at an offset of 5, against the CPU after each
    /// step; `deviceStep` reads the step counter t the backend keeps in device memory (advanced
    /// by a kernel from one step to the next, written from the host on a jump). `backend` must be
    /// fresh: its counter starts unset.
    public static func checkAdamSteps<B: Backend>(
        _ backend: B, count: Int, steps: [Int], deviceStep: () throws -> Int, group: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 21)
        let offset = 5
        let hyperparameters = AdamHyperparameters(learningRate: 0.01)
        let initial = random.values(count), zeros = [Float](repeating: 0, count: count)
        let onDevice = (θ: try backend.buffer(initial, offset: offset), m: try backend.buffer(zeros, offset: offset),
                        v: try backend.buffer(zeros, offset: offset))
        let onCPU = (θ: try reference.buffer(initial, offset: offset), m: try reference.buffer(zeros, offset: offset),
                     v: try reference.buffer(zeros, offset: offset))
        for step in steps {
            let gradient = random.values(count)
            try backend.adamUpdate(parameters: onDevice.θ, gradients: backend.buffer(gradient, offset: offset),
                                   firstMoment: onDevice.m, secondMoment: onDevice.v, count: count,
                                   hyperparameters: hyperparameters, step: step)
            try reference.adamUpdate(parameters: onCPU.θ, gradients: reference.buffer(gradient, offset: offset),
                                     firstMoment: onCPU.m, secondMoment: onCPU.v, count: count,
                                     hyperparameters: hyperparameters, step: step)
            XCTAssertEqual(try deviceStep(), step, "t in device memory", file: file, line: line)
            let pairs = [("θ", onDevice.θ, onCPU.θ), ("m", onDevice.m, onCPU.m), ("v", onDevice.v, onCPU.v)]
            for (name, device, host) in pairs {
                assertClose(try backend.read(device, count), try reference.read(host, count), "Adam \(name) after step \(step)",
                            group: group, file: file, line: line)
            }
        }
    }
}
