import Foundation
import XCTest
@testable import MLPKit

/// A CSV's columns picked by the names a checkpoint records (`data.features`, `data.target`;
/// their round trip and validation are in `CheckpointTests`): `readTable(…, features:)` against
/// the values the test wrote.
final class ColumnNameTests: XCTestCase {
    /// A table of random values (no two alike) with the given header, as CSV bytes, and its
    /// values by column name.
    func table(_ header: [String], rows: Int, seed: UInt64) -> (bytes: [UInt8], columns: [String: [Float]]) {
        var random = TestData(seed: seed)
        var columns: [String: [Float]] = [:]
        for name in header { columns[name] = random.normal(rows).map { ($0 * 1000).rounded() / 1000 + 0.0005 } }
        var text = header.joined(separator: ",") + "\n"
        for row in 0..<rows {
            text += header.map { "\(columns[$0]![row])" }.joined(separator: ",") + "\n"
        }
        return (Array(text.utf8), columns)
    }

    /// The matrix's values, row by row, as the named columns side by side.
    func expected(_ names: [String], _ columns: [String: [Float]], rows: Int) -> [Float] {
        (0..<rows).flatMap { row in names.map { columns[$0]![row] } }
    }

    func testFeaturesPickedByNameInTheModelsOrder() throws {
        let header = ["id", "c", "price", "a", "b", "note"]
        let (bytes, columns) = table(header, rows: 7, seed: 1)
        // scattered, out of file order, target present
        let picked = try DataLoader.readTable(bytes: bytes, name: "t.csv", target: "price", features: ["a", "c", "b"])
        XCTAssertEqual(picked.features.columns, 3)
        XCTAssertEqual(picked.features.values, expected(["a", "c", "b"], columns, rows: 7))
        XCTAssertEqual(picked.target?.values, columns["price"])
        XCTAssertEqual(picked.featureNames, ["a", "c", "b"])
        XCTAssertEqual(picked.ignoredColumns, ["id", "note"])
        // side by side in the file (the contiguous copy), and without a target
        let contiguous = try DataLoader.readTable(bytes: bytes, name: "t.csv", target: nil, targetRequired: false, features: ["a", "b"])
        XCTAssertEqual(contiguous.features.values, expected(["a", "b"], columns, rows: 7))
        XCTAssertNil(contiguous.target)
        XCTAssertEqual(contiguous.ignoredColumns, ["id", "c", "price", "note"])
        // a target that is not required and not there is left alone
        let absent = try DataLoader.readTable(bytes: bytes, name: "t.csv", target: "y", targetRequired: false, features: ["note", "id"])
        XCTAssertEqual(absent.features.values, expected(["note", "id"], columns, rows: 7))
        XCTAssertNil(absent.target)
        // without names: every column but the target, in file order, as before
        let all = try DataLoader.readTable(bytes: bytes, name: "t.csv", target: "price")
        XCTAssertEqual(all.features.values, expected(["id", "c", "a", "b", "note"], columns, rows: 7))
        XCTAssertEqual(all.featureNames, ["id", "c", "a", "b", "note"])
        XCTAssertEqual(all.ignoredColumns, [])
        XCTAssertEqual(all.target?.origin?.columnName, "price")
    }

    func testMissingOrConflictingColumnsAreErrors() {
        let (bytes, _) = table(["a", "b", "price"], rows: 3, seed: 2)
        XCTAssertThrowsError(try DataLoader.readTable(bytes: bytes, name: "t.csv", target: "price", features: ["a", "d", "b"])) {
            XCTAssertEqual("\($0)", "t.csv has no column named 'd', the model's input 2 of 3 (columns: a, b, price)")
        }
        XCTAssertThrowsError(try DataLoader.readTable(bytes: bytes, name: "t.csv", target: "b", features: ["a", "b"])) {
            XCTAssertEqual("\($0)", "t.csv: the target 'b' is one of the model's input columns")
        }
        XCTAssertThrowsError(try DataLoader.readTable(bytes: bytes, name: "t.csv", target: "y", features: ["a", "b"])) {
            XCTAssertEqual("\($0)", "t.csv has no column named 'y' (columns: a, b, price)")
        }
    }
}
