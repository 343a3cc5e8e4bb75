import Foundation
import XCTest
@testable import MLPKit

/// `SwiftMatrixProduct` against a naive Float64 triple loop and against BLAS, in every layout,
/// and the CPU backend's epilogues, column sums and bounds checks against loops in the test.
final class MatrixProductTests: XCTestCase {
    /// C[m×n] in Float64 from the layout's definition (see `ProductLayout`):
    /// .nt: A[m×k]·B[n×k]ᵀ, .tn: A[k×m]ᵀ·B[k×n], .nn: A[m×k]·B[k×n].
    static func naive(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float]) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let aValue: Float, bValue: Float
                    switch layout {
                    case .nt: (aValue, bValue) = (a[i * k + p], b[j * k + p])
                    case .tn: (aValue, bValue) = (a[p * m + i], b[p * n + j])
                    case .nn: (aValue, bValue) = (a[i * k + p], b[p * n + j])
                    }
                    sum += Double(aValue) * Double(bValue)
                }
                c[i * n + j] = sum
            }
        }
        return c
    }

    /// ‖a − b‖ / ‖b‖ (Frobenius).
    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        var difference = 0.0, norm = 0.0
        for (x, y) in zip(a, b) {
            difference += (Double(x) - y) * (Double(x) - y)
            norm += y * y
        }
        return (difference / norm).squareRoot()
    }

    static func swiftProduct(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float]) -> [Float] {
        var c = [Float](repeating: .nan, count: m * n)  // every element must be written
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    SwiftMatrixProduct.multiply(layout, m: m, n: n, k: k, a: ap.baseAddress!, b: bp.baseAddress!, c: cp.baseAddress!)
                }
            }
        }
        return c
    }

    static func blasProduct(_ blas: BLASLibrary, _ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float]) -> [Float] {
        var c = [Float](repeating: .nan, count: m * n)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    blas.product(layout, m: m, n: n, k: k, a: ap.baseAddress!, b: bp.baseAddress!, c: cp.baseAddress!)
                }
            }
        }
        return c
    }

    static let shapes: [(m: Int, n: Int, k: Int)] = {
        var shapes = [
            (1, 1, 1), (1, 41, 13), (1, 300, 1), (41, 1, 13), (300, 1, 7), (23, 19, 1), (64, 512, 1),
            (37, 53, 29), (4, 16, 256), (5, 17, 257), (65, 513, 3), (70, 530, 300),
        ]
        var generator = SeededGenerator(seed: 2024)
        for _ in 0..<4 {
            shapes.append((1 + Int(generator.next() % 90), 1 + Int(generator.next() % 90), 1 + Int(generator.next() % 90)))
        }
        return shapes
    }()

    func testSwiftProductAgainstNaiveDouble() {
        var data = TestData(seed: 11)
        for (m, n, k) in Self.shapes {
            for layout in ProductLayout.allCases {
                let a = data.normal(m * k), b = data.normal(k * n)
                let expected = Self.naive(layout, m: m, n: n, k: k, a: a, b: b)
                let got = Self.swiftProduct(layout, m: m, n: n, k: k, a: a, b: b)
                let error = Self.relativeError(got, expected)
                XCTAssertLessThanOrEqual(error, 1e-5, "\(layout) \(m)×\(n)×\(k)")
                XCTAssertFalse(got.contains { $0.isNaN }, "\(layout) \(m)×\(n)×\(k) left an element unwritten")
            }
        }
    }

    func testSwiftProductAgainstBLAS() throws {
        let blas = try requireBLAS()
        var data = TestData(seed: 12)
        for (m, n, k) in Self.shapes {
            for layout in ProductLayout.allCases {
                let a = data.normal(m * k), b = data.normal(k * n)
                let reference = Self.blasProduct(blas, layout, m: m, n: n, k: k, a: a, b: b).map(Double.init)
                let got = Self.swiftProduct(layout, m: m, n: n, k: k, a: a, b: b)
                XCTAssertLessThanOrEqual(Self.relativeError(got, reference), 1e-5, "\(layout) \(m)×\(n)×\(k)")
            }
        }
    }

    func testBLASAgainstNaiveDouble() throws {
        let blas = try requireBLAS()
        var data = TestData(seed: 13)
        for (m, n, k) in [(1, 1, 1), (37, 53, 29), (70, 530, 300), (9, 1, 40), (1, 9, 40)] {
            for layout in ProductLayout.allCases {
                let a = data.normal(m * k), b = data.normal(k * n)
                let expected = Self.naive(layout, m: m, n: n, k: k, a: a, b: b)
                let got = Self.blasProduct(blas, layout, m: m, n: n, k: k, a: a, b: b)
                XCTAssertLessThanOrEqual(Self.relativeError(got, expected), 1e-5, "BLAS \(layout) \(m)×\(n)×\(k)")
            }
        }
    }

    /// Hand-computed 2×3 · 3×2 in every layout.
    func testSmallProductByHand() {
        // A = [[1, 2, 3], [4, 5, 6]], B = [[7, 8], [9, 10], [11, 12]]; A·B = [[58, 64], [139, 154]]
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [7, 8, 9, 10, 11, 12]
        XCTAssertEqual(Self.swiftProduct(.nn, m: 2, n: 2, k: 3, a: a, b: b), [58, 64, 139, 154])
        // .nt with B stored as Bᵀ [2×3] = [[7, 9, 11], [8, 10, 12]]
        XCTAssertEqual(Self.swiftProduct(.nt, m: 2, n: 2, k: 3, a: a, b: [7, 9, 11, 8, 10, 12]), [58, 64, 139, 154])
        // .tn with A stored as Aᵀ [3×2] = [[1, 4], [2, 5], [3, 6]]
        XCTAssertEqual(Self.swiftProduct(.tn, m: 2, n: 2, k: 3, a: [1, 4, 2, 5, 3, 6], b: b), [58, 64, 139, 154])
    }

    func testZeroDepthWritesZeros() {
        var c: [Float] = [1, 2, 3, 4, 5, 6]
        let a: [Float] = [1], b: [Float] = [1]
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    SwiftMatrixProduct.multiply(.nn, m: 2, n: 3, k: 0, a: ap.baseAddress!, b: bp.baseAddress!, c: cp.baseAddress!)
                }
            }
        }
        XCTAssertEqual(c, [0, 0, 0, 0, 0, 0])
    }

    // MARK: - The CPU backend

    func buffer(_ backend: CPUBackend, _ values: [Float]) throws -> CPUBuffer {
        let buffer = try backend.makeBuffer(count: values.count)
        try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
        return buffer
    }

    func read(_ backend: CPUBackend, _ slice: BufferSlice<CPUBuffer>, count: Int) throws -> [Float] {
        var values = [Float](repeating: .nan, count: count)
        try values.withUnsafeMutableBufferPointer { try backend.download(slice, count: count, into: $0) }
        return values
    }

    static let backends: [(String, CPUBackend)] = [("swift", CPUBackend(useBLAS: false)), ("default", CPUBackend())]

    /// Every epilogue, with operands at non-zero offsets into larger buffers.
    func testEpiloguesAgainstLoops() throws {
        var data = TestData(seed: 21)
        for (name, backend) in Self.backends {
            for layout in ProductLayout.allCases {
                let (m, n, k) = (13, 21, 17)
                let a = data.normal(m * k + 3), b = data.normal(k * n + 5)
                let bias = data.normal(n + 2), activation = data.normal(m * n + 4)
                let aBuffer = try buffer(backend, a), bBuffer = try buffer(backend, b)
                let biasBuffer = try buffer(backend, bias), activationBuffer = try buffer(backend, activation)
                let product = Self.naive(layout, m: m, n: n, k: k, a: Array(a[3...]), b: Array(b[5...]))
                let cases: [(String, ProductEpilogue<CPUBuffer>, (Int, Int) -> Double)] = [
                    ("none", .none, { i, j in product[i * n + j] }),
                    ("bias", .bias(BufferSlice(biasBuffer, offset: 2)), { i, j in product[i * n + j] + Double(bias[2 + j]) }),
                    ("biasReLU", .biasReLU(BufferSlice(biasBuffer, offset: 2)),
                     { i, j in max(0, product[i * n + j] + Double(bias[2 + j])) }),
                    ("reluMask", .reluMask(BufferSlice(activationBuffer, offset: 4)),
                     { i, j in activation[4 + i * n + j] > 0 ? product[i * n + j] : 0 }),
                ]
                for (epilogueName, epilogue, expected) in cases {
                    let cBuffer = try buffer(backend, [Float](repeating: 99, count: m * n + 7))
                    try backend.matrixProduct(layout, m: m, n: n, k: k, a: BufferSlice(aBuffer, offset: 3),
                                              b: BufferSlice(bBuffer, offset: 5), c: BufferSlice(cBuffer, offset: 6),
                                              epilogue: epilogue)
                    let all = try read(backend, BufferSlice(cBuffer), count: m * n + 7)
                    XCTAssertEqual(Array(all[0..<6]), [Float](repeating: 99, count: 6), "\(name) \(layout) \(epilogueName) before C")
                    XCTAssertEqual(all[m * n + 6], 99, "\(name) \(layout) \(epilogueName) after C")
                    var zeros = 0, positives = 0
                    for i in 0..<m {
                        for j in 0..<n {
                            let want = expected(i, j), got = Double(all[6 + i * n + j])
                            if want == 0 {
                                XCTAssertEqual(got, 0, "\(name) \(layout) \(epilogueName) [\(i), \(j)]")
                                zeros += 1
                            } else {
                                XCTAssertEqual(got, want, accuracy: 1e-5 * max(1, abs(want)),
                                               "\(name) \(layout) \(epilogueName) [\(i), \(j)]")
                                positives += 1
                            }
                        }
                    }
                    if epilogueName == "biasReLU" || epilogueName == "reluMask" {
                        // random data: both sides of the ReLU are exercised
                        XCTAssertGreaterThan(zeros, m * n / 5, "\(epilogueName) zeroed too few")
                        XCTAssertGreaterThan(positives, m * n / 5, "\(epilogueName) kept too few")
                    } else {
                        XCTAssertEqual(zeros, 0)
                    }
                }
            }
        }
    }

    func testColumnSumsAgainstLoop() throws {
        var data = TestData(seed: 22)
        let backend = CPUBackend()
        for (rows, columns) in [(1, 1), (1, 9), (9, 1), (37, 23), (200, 3), (5, 75), (64, 32)] {
            let values = data.normal(rows * columns + 2)
            let matrix = try buffer(backend, values)
            let sums = try buffer(backend, [Float](repeating: 42, count: columns + 1))  // stale values are overwritten
            try backend.columnSums(BufferSlice(matrix, offset: 2), rows: rows, columns: columns, into: BufferSlice(sums, offset: 1))
            let got = try read(backend, BufferSlice(sums), count: columns + 1)
            XCTAssertEqual(got[0], 42)
            for j in 0..<columns {
                var expected = 0.0, magnitude = 0.0
                for i in 0..<rows {
                    expected += Double(values[2 + i * columns + j])
                    magnitude += abs(Double(values[2 + i * columns + j]))
                }
                XCTAssertEqual(Double(got[1 + j]), expected, accuracy: 1e-6 * magnitude, "\(rows)×\(columns) column \(j)")
            }
        }
        // hand-computed: [[1, 2], [3, 4], [5, -6]] → [9, 0]
        let matrix = try buffer(backend, [1, 2, 3, 4, 5, -6])
        let sums = try backend.makeBuffer(count: 2)
        try backend.columnSums(BufferSlice(matrix), rows: 3, columns: 2, into: BufferSlice(sums))
        XCTAssertEqual(try read(backend, BufferSlice(sums), count: 2), [9, 0])
    }

    func testOutOfBoundsSlicesThrow() throws {
        let backend = CPUBackend()
        var data = TestData(seed: 23)
        let a = try buffer(backend, data.normal(12))   // 3×4
        let b = try buffer(backend, data.normal(20))   // 4×5
        let c = try backend.makeBuffer(count: 15)     // 3×5
        let shortBias = try buffer(backend, data.normal(4))
        func expect(_ error: BackendError, _ body: () throws -> Void, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { thrown in
                XCTAssertEqual(thrown as? BackendError, error, line: line)
            }
        }
        expect(.outOfBounds(operation: "matrixProduct A", needed: 13, available: 12)) {
            try backend.matrixProduct(.nn, m: 3, n: 5, k: 4, a: BufferSlice(a, offset: 1), b: BufferSlice(b),
                                      c: BufferSlice(c), epilogue: .none)
        }
        expect(.outOfBounds(operation: "matrixProduct B", needed: 24, available: 20)) {
            try backend.matrixProduct(.nn, m: 3, n: 6, k: 4, a: BufferSlice(a), b: BufferSlice(b),
                                      c: BufferSlice(c), epilogue: .none)
        }
        expect(.outOfBounds(operation: "matrixProduct C", needed: 16, available: 15)) {
            try backend.matrixProduct(.nn, m: 3, n: 5, k: 4, a: BufferSlice(a), b: BufferSlice(b),
                                      c: BufferSlice(c, offset: 1), epilogue: .none)
        }
        expect(.outOfBounds(operation: "matrixProduct bias", needed: 5, available: 4)) {
            try backend.matrixProduct(.nn, m: 3, n: 5, k: 4, a: BufferSlice(a), b: BufferSlice(b),
                                      c: BufferSlice(c), epilogue: .bias(BufferSlice(shortBias)))
        }
        expect(.outOfBounds(operation: "matrixProduct bias", needed: 6, available: 4)) {
            try backend.matrixProduct(.nn, m: 3, n: 5, k: 4, a: BufferSlice(a), b: BufferSlice(b),
                                      c: BufferSlice(c), epilogue: .biasReLU(BufferSlice(shortBias, offset: 1)))
        }
        expect(.outOfBounds(operation: "matrixProduct relu mask", needed: 15, available: 12)) {
            try backend.matrixProduct(.nn, m: 3, n: 5, k: 4, a: BufferSlice(a), b: BufferSlice(b),
                                      c: BufferSlice(c), epilogue: .reluMask(BufferSlice(a)))
        }
        expect(.outOfBounds(operation: "matrixProduct A", needed: 11, available: 12)) {
            try backend.matrixProduct(.nn, m: 3, n: 5, k: 4, a: BufferSlice(a, offset: -1), b: BufferSlice(b),
                                      c: BufferSlice(c), epilogue: .none)
        }
        expect(.outOfBounds(operation: "columnSums", needed: 16, available: 15)) {
            try backend.columnSums(BufferSlice(c, offset: 1), rows: 3, columns: 5, into: BufferSlice(b))
        }
        expect(.outOfBounds(operation: "columnSums output", needed: 5, available: 4)) {
            try backend.columnSums(BufferSlice(c), rows: 3, columns: 5, into: BufferSlice(shortBias))
        }
        expect(.outOfBounds(operation: "upload", needed: 5, available: 4)) {
            let values: [Float] = [1, 2, 3, 4]
            try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(shortBias, offset: 1)) }
        }
        expect(.outOfBounds(operation: "download", needed: 13, available: 12)) {
            var values = [Float](repeating: 0, count: 13)
            try values.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(a), count: 13, into: $0) }
        }
        expect(.invalidArgument(operation: "matrixProduct", reason: "negative size 3×-1×4")) {
            try backend.matrixProduct(.nn, m: 3, n: -1, k: 4, a: BufferSlice(a), b: BufferSlice(b),
                                      c: BufferSlice(c), epilogue: .none)
        }
        // the message names the operation and both sizes
        let message = "\(BackendError.outOfBounds(operation: "matrixProduct A", needed: 13, available: 12))"
        XCTAssertTrue(message.contains("matrixProduct A") && message.contains("13") && message.contains("12"), message)
    }
}
