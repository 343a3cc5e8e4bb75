import XCTest
@testable import MLPKit

/// Matrices made in code with a shape that does not hold together are refused by the loader
/// (not read out of range), and row origins never overflow.
final class DataMatrixConsistencyTests: XCTestCase {
    func testInconsistentMatricesAreRefused() {
        let good = DataMatrix(rows: 2, columns: 1, values: [0, 1], isIntegral: true)
        XCTAssertTrue(good.isConsistent)
        let bad: [DataMatrix] = [
            DataMatrix(rows: 2, columns: 1, values: [0], isIntegral: true),
            DataMatrix(rows: -1, columns: 1, values: [0], isIntegral: true),
            DataMatrix(rows: 2, columns: 2, values: [1, 0], isIntegral: true),
            DataMatrix(rows: Int.max, columns: 2, values: [], isIntegral: true),
        ]
        for matrix in bad {
            XCTAssertFalse(matrix.isConsistent)
            XCTAssertThrowsError(try DataLoader.dataset(inputs: matrix, targets: good, loss: .meanSquaredError))
            XCTAssertThrowsError(try DataLoader.dataset(inputs: good, targets: matrix, loss: .crossEntropy))
            XCTAssertEqual(DataLoader.defaultLoss(for: matrix), .meanSquaredError)
        }
        // no columns: binary cross-entropy would divide by the column count
        let empty = DataMatrix(rows: 1, columns: 0, values: [], isIntegral: true)
        XCTAssertThrowsError(try DataLoader.dataset(inputs: DataMatrix(rows: 1, columns: 1, values: [0], isIntegral: true),
                                                    targets: empty, loss: .binaryCrossEntropy))
    }

    func testOriginsOfRowsNoFileHas() throws {
        let csv = try CSVFile.decode(Array("1,2\n".utf8), name: "x.csv", hasHeader: false).matrix
        XCTAssertEqual(csv.origin?.line(ofRow: 0), 1)
        XCTAssertNil(csv.origin?.line(ofRow: Int.max))
        XCTAssertEqual(csv.origin?.location(ofRow: Int.max), "row \(Int.max) (0-based)")
        let npy = try NumpyFile.decode(NumpyFile.encode(DataMatrix(rows: 1, columns: 1, values: [1], isIntegral: true)), name: "x.npy")
        XCTAssertEqual(npy.origin?.location(ofRow: 0), "row 1")
        XCTAssertEqual(npy.origin?.location(ofRow: Int.max), "row \(Int.max) (0-based)")
    }
}
