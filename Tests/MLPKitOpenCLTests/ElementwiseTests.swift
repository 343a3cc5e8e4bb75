import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// Column sums, the fused loss gradients and the batch gather, against the CPU backend.
final class ElementwiseTests: XCTestCase {
    func testColumnSums() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 11)
        for (index, (rows, columns)) in [(1, 1), (5, 31), (64, 32), (300, 33), (7, 100), (1000, 3)].enumerated() {
            let matrix = random.values(rows * columns)
            let offset = index % 2 == 1 ? 9 : 0
            func run<B: Backend>(_ b: B) throws -> [Float] {
                let sums = try b.poisoned(columns, offset: offset)
                try b.columnSums(b.buffer(matrix, offset: offset), rows: rows, columns: columns, into: sums)
                return try b.read(sums, columns)
            }
            assertClose(try run(backend), try run(reference), "column sums \(rows)×\(columns)", group: "column sums")
        }
    }

    /// Both losses, both target encodings, odd and even shapes: gradient and loss sum.
    func testLossGradients() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 12)
        // from 64 columns the loss runs as loss_wide (a block per row)
        let shapes = [(1, 1), (1, 10), (7, 3), (64, 10), (257, 33), (1000, 2), (1, 64), (3, 77), (9, 1024), (130, 300)]
        for loss in [Loss.meanSquaredError, .crossEntropy, .binaryCrossEntropy] {
            for encoding in [TargetEncoding.classIndices, .dense] {
                for (index, (rows, columns)) in shapes.enumerated() {
                    let output = random.values(rows * columns).map { $0 * 4 }
                    let targets: [Float] = switch (loss, encoding) {
                    case (_, .classIndices): random.labels(rows, classes: columns)
                    case (.meanSquaredError, .dense): random.values(rows * columns)
                    case (.crossEntropy, .dense): probabilityRows(&random, rows: rows, columns: columns,
                                                                  normalized: index % 2 == 0)
                    case (.binaryCrossEntropy, .dense): random.labels(rows * columns, classes: 2)
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
                    assertClose(actual.gradient, expected.gradient, "\(name) gradient", group: "loss gradient")
                    assertClose([actual.loss], [expected.loss], "\(name) loss sum", group: "loss sum")
                }
            }
        }
    }

    /// Positive target rows, summing to 1 when `normalized` (else the gradient's Σy factor shows).
    private func probabilityRows(_ random: inout SeededGenerator, rows: Int, columns: Int, normalized: Bool) -> [Float] {
        var values = random.values(rows * columns).map { abs($0) + 0.01 }
        guard normalized else { return values }
        for i in 0..<rows {
            let total = values[i * columns..<(i + 1) * columns].reduce(0, +)
            for j in 0..<columns { values[i * columns + j] /= total }
        }
        return values
    }

    /// A class index outside the classes makes the cross-entropy loss NaN, as on the CPU.
    func testInvalidLabelPoisonsLoss() throws {
        let backend = try SharedBackends.backend()
        let gradient = try backend.poisoned(6), sum = try backend.poisoned(1)
        try backend.lossGradient(.crossEntropy, targets: .classIndices, output: backend.buffer([1, 2, 3, 4, 5, 6]),
                                 target: backend.buffer([1, 3]), rows: 2, columns: 3, gradient: gradient, lossSum: sum)
        XCTAssert(try backend.read(sum, 1)[0].isNaN)
    }

    func testGatherRows() throws {
        let backend = try SharedBackends.backend()
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 13)
        for (index, (sourceRows, width, count)) in [(1, 1, 1), (50, 13, 17), (300, 1, 64), (97, 784, 33)].enumerated() {
            let source = random.values(sourceRows * width)
            let indices = random.labels(count, classes: sourceRows)
            let offset = index % 2 == 1 ? 6 : 0
            func run<B: Backend>(_ b: B) throws -> [Float] {
                let destination = try b.poisoned(count * width, offset: offset)
                try b.gatherRows(b.buffer(source, offset: offset, trailing: 0), width: width,
                                 indices: b.buffer(indices, offset: offset), count: count, into: destination)
                return try b.read(destination, count * width)
            }
            let actual = try run(backend)
            XCTAssertEqual(actual, try run(reference), "gather \(count) of \(sourceRows)×\(width)")
            ErrorLog.record("gather", relativeError(actual, try run(reference)))
        }
    }

    override class func tearDown() {
        for group in ["column sums", "loss gradient", "loss sum", "gather"] {
            print("max relative error \(group): \(ErrorLog.worst[group].map { "\($0)" } ?? "-")")
        }
        super.tearDown()
    }
}
