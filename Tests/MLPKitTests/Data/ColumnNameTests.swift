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

    /// `rawColumns`: left out of the features as `dropping` leaves a column out, its cells handed
    /// back as written (a weight column, read in the same pass as the rest).
    func testRawColumnsAreLeftOutAndHandedBackAsWritten() throws {
        let header = ["a", "w", "y", "b"]
        let (bytes, columns) = table(header, rows: 9, seed: 4)
        let table = try DataLoader.decodeTable(bytes, name: "t.csv", target: "y", rawColumns: ["w"])
        XCTAssertEqual(table.featureNames, ["a", "b"])
        XCTAssertEqual(table.features.values, expected(["a", "b"], columns, rows: 9))
        XCTAssertEqual(table.target?.values, columns["y"])
        XCTAssertEqual(table.rawColumns["w"]?.map { Float($0)! }, columns["w"])
        XCTAssertEqual(Array(table.rawColumns.keys), ["w"])
        // with --drop beside it, a text cell, an empty one, quotes, and missing values filled in the features
        let text = "id,a,w,y\nx1,1.5,\"2\",0\nx2,,heavy,1\nx3,2.5,,0\n"
        let filled = try DataLoader.decodeTable(Array(text.utf8), name: "m.csv", target: "y", dropping: ["id"], missing: .mean,
                                                rawColumns: ["w"])
        XCTAssertEqual(filled.featureNames, ["a"])
        XCTAssertEqual(filled.features.values, [1.5, 2, 2.5])
        XCTAssertEqual(filled.rawColumns["w"], ["2", "heavy", ""])
        // without a header, by number; a column named twice (dropped and raw) is read once, raw
        let numbered = try DataLoader.decodeTable(Array("1,9,0\n2,8,1\n".utf8), name: "n.csv", target: "3", dropping: ["2"],
                                                  hasHeader: false, rawColumns: ["2"])
        XCTAssertEqual(numbered.features.values, [1, 2])
        XCTAssertEqual(numbered.rawColumns["2"], ["9", "8"])
        // a raw column that is not there is the unknown column it is for --drop
        XCTAssertThrowsError(try DataLoader.decodeTable(bytes, name: "t.csv", target: "y", rawColumns: ["weight"])) { error in
            guard case DataLoader.LoadError.unknownColumn(_, let column, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(column, "weight")
        }
    }

    func testFeaturesPickedByNameInTheModelsOrder() throws {
        let header = ["id", "c", "price", "a", "b", "note"]
        let (bytes, columns) = table(header, rows: 7, seed: 1)
        // scattered, out of file order, target present
        let picked = try DataLoader.decodeTable(bytes, name: "t.csv", target: "price", features: ["a", "c", "b"])
        XCTAssertEqual(picked.features.columns, 3)
        XCTAssertEqual(picked.features.values, expected(["a", "c", "b"], columns, rows: 7))
        XCTAssertEqual(picked.target?.values, columns["price"])
        XCTAssertEqual(picked.featureNames, ["a", "c", "b"])
        XCTAssertEqual(picked.ignoredColumns, ["id", "note"])
        // side by side in the file (the contiguous copy), and without a target
        let contiguous = try DataLoader.decodeTable(bytes, name: "t.csv", target: nil, targetRequired: false, features: ["a", "b"])
        XCTAssertEqual(contiguous.features.values, expected(["a", "b"], columns, rows: 7))
        XCTAssertNil(contiguous.target)
        XCTAssertEqual(contiguous.ignoredColumns, ["id", "c", "price", "note"])
        // a target that is not required and not there is left alone
        let absent = try DataLoader.decodeTable(bytes, name: "t.csv", target: "y", targetRequired: false, features: ["note", "id"])
        XCTAssertEqual(absent.features.values, expected(["note", "id"], columns, rows: 7))
        XCTAssertNil(absent.target)
        // without names: every column but the target, in file order, as before
        let all = try DataLoader.decodeTable(bytes, name: "t.csv", target: "price")
        XCTAssertEqual(all.features.values, expected(["id", "c", "a", "b", "note"], columns, rows: 7))
        XCTAssertEqual(all.featureNames, ["id", "c", "a", "b", "note"])
        XCTAssertEqual(all.ignoredColumns, [])
        XCTAssertEqual(all.target?.origin?.columnName, "price")
    }

    func testMissingOrConflictingColumnsAreErrors() {
        let (bytes, _) = table(["a", "b", "price"], rows: 3, seed: 2)
        XCTAssertThrowsError(try DataLoader.decodeTable(bytes, name: "t.csv", target: "price", features: ["a", "d", "b"])) {
            XCTAssertEqual("\($0)", "t.csv has no column named 'd', the model's input 2 of 3 (columns: a, b, price)")
        }
        XCTAssertThrowsError(try DataLoader.decodeTable(bytes, name: "t.csv", target: "b", features: ["a", "b"])) {
            XCTAssertEqual("\($0)", "t.csv: the target 'b' is one of the model's input columns")
        }
        XCTAssertThrowsError(try DataLoader.decodeTable(bytes, name: "t.csv", target: "y", features: ["a", "b"])) {
            XCTAssertEqual("\($0)", "t.csv has no column named 'y' (columns: a, b, price)")
        }
    }

    // MARK: - Text labels

    func testTextLabelsBecomeClassIndicesInSortedOrder() throws {
        let text = "x1,species,x2\n1,virginica,2\n3,\"versi, color\",4\n 5 , setosa ,6\n7,virginica,8\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "iris.csv", target: "species")
        XCTAssertEqual(table.classNames, ["setosa", "versi, color", "virginica"])
        XCTAssertEqual(table.target?.values, [2, 1, 0, 2])
        XCTAssertEqual(table.target?.isIntegral, true)
        XCTAssertEqual(table.features.values, [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(DataLoader.defaultLoss(for: try XCTUnwrap(table.target)), .crossEntropy)
        // a checkpoint's classes decide the indices, whatever the labels' order or presence
        let recorded = try DataLoader.decodeTable(Array(text.utf8), name: "iris.csv", target: "species",
                                                  classes: ["virginica", "dog", "setosa", "versi, color"])
        XCTAssertEqual(recorded.target?.values, [0, 3, 2, 0])
        XCTAssertEqual(recorded.classNames, ["virginica", "dog", "setosa", "versi, color"])
        // a numeric target is read as before, with no class names
        let numeric = try DataLoader.decodeTable(Array("a,y\n1,0\n2,1\n".utf8), name: "n.csv", target: "y", classes: ["p", "q"])
        XCTAssertNil(numeric.classNames)
        XCTAssertEqual(numeric.target?.values, [0, 1])
        // a feature column of text is an error where the model takes no categories
        XCTAssertThrowsError(try DataLoader.decodeTable(Array("a,y\nred,dog\n".utf8), name: "f.csv", target: "y", textFeatures: .refused)) {
            XCTAssertEqual("\($0)", "f.csv, line 2, column 1 ('a'): 'red' is not a number")
        }
    }

    func testBadLabelsAreErrorsNamingTheirLine() {
        func message(_ text: String, classes: [String]? = nil) -> String {
            do {
                _ = try DataLoader.decodeTable(Array(text.utf8), name: "l.csv", target: "y", classes: classes)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(message("a,y\n1,cat\n\n2,emu\n", classes: ["cat", "dog"]),
                       "l.csv, line 4, column 2 ('y'): 'emu' is not one of the model's classes ('cat', 'dog')")
        XCTAssertEqual(message("a,y\n1,cat\n2,\n"), "l.csv, line 3, column 2 ('y'): empty cell")
        XCTAssertEqual(message("a,y\n1,cat\n2,\"\"\n"), "l.csv, line 3, column 2 ('y'): empty cell")
        XCTAssertEqual(message("a,y\n1,\"cat\n"), "l.csv, line 2, column 2 ('y'): unterminated quote in a text cell")
        // a numeric column with a missing value in its first row is not a column of labels
        XCTAssertEqual(message("a,y\n1,N/A\n2,3.5\n3,4\n"),
                       "l.csv, line 2, column 2 ('y'): 'N/A' is not a number (the column's other cells are mostly numbers)")
        // numbers first, then text: the numeric column's error, as before
        XCTAssertEqual(message("a,y\n1,2\n2,cat\n"), "l.csv, line 3, column 2 ('y'): 'cat' is not a number")
        XCTAssertEqual(message("a,y\n1,nan\n"), "l.csv, line 2, column 2 ('y'): NaN is not allowed ('nan')")
    }

    func testLabelsWrittenBeforeTheMatrixQuotedWhereNeeded() {
        let matrix = DataMatrix(rows: 2, columns: 2, values: [0.25, 0.75, 1, 0], isIntegral: false)
        XCTAssertEqual(CSVFile.encode(header: ["class", "p_a", "p_b,c"], matrix: matrix, text: [["a", "b,c"]]),
                       "class,p_a,\"p_b,c\"\na,0.25,0.75\n\"b,c\",1,0\n")
    }

    func testTargetsFileOfTextLabels() throws {
        let text = Array("emu\ncat\n\n\"dog, big\"\ncat\n".utf8)
        let read = try DataLoader.decodeTargets(text, name: "labels.txt")
        XCTAssertEqual(read.classNames, ["cat", "dog, big", "emu"])
        XCTAssertEqual(read.targets.values, [2, 0, 1, 0])
        XCTAssertEqual(read.targets.columns, 1)
        let recorded = try DataLoader.decodeTargets(text, name: "labels.txt", classes: ["emu", "dog, big", "cat"])
        XCTAssertEqual(recorded.targets.values, [0, 2, 1, 2])
        XCTAssertThrowsError(try DataLoader.decodeTargets(text, name: "labels.txt", classes: ["cat", "emu"])) {
            XCTAssertEqual("\($0)", "labels.txt, line 4, column 1: 'dog, big' is not one of the model's classes ('cat', 'emu')")
        }
        XCTAssertThrowsError(try DataLoader.decodeTargets(Array("cat,1\ndog,2\n".utf8), name: "two.csv")) {
            XCTAssertEqual("\($0)", "two.csv: text labels must be the file's only column; it has 2")
        }
        // numbers, .npy and gzip read as readMatrix reads them
        let numbers = try DataLoader.decodeTargets(Array("1\n0\n2\n".utf8), name: "y.csv")
        XCTAssertNil(numbers.classNames)
        XCTAssertEqual(numbers.targets.values, [1, 0, 2])
        let matrix = DataMatrix(rows: 3, columns: 1, values: [2, 0, 1], isIntegral: true)
        let npy = try DataLoader.decodeTargets(NumpyFile.encode(matrix), name: "y.npy")
        XCTAssertNil(npy.classNames)
        XCTAssertEqual(npy.targets, matrix)
    }

    func testTableWithoutAHeaderNumbersItsColumns() throws {
        let text = Array("5.1,3.5,Iris-setosa\n7.0,3.2,Iris-versicolor\n6.3,3.3,Iris-virginica\n4.9,3.0,Iris-setosa\n".utf8)
        let table = try DataLoader.decodeTable(text, name: "iris.data", target: "3", hasHeader: false)
        XCTAssertEqual(table.featureNames, ["1", "2"])
        XCTAssertEqual(table.features.values, [5.1, 3.5, 7.0, 3.2, 6.3, 3.3, 4.9, 3.0])
        XCTAssertEqual(table.classNames, ["Iris-setosa", "Iris-versicolor", "Iris-virginica"])
        XCTAssertEqual(table.target?.values, [0, 1, 2, 0])
        let numeric = try DataLoader.decodeTable(Array("1,2,3\n4,5,6\n".utf8), name: "n.csv", target: "1", hasHeader: false)
        XCTAssertEqual(numeric.target?.values, [1, 4])
        XCTAssertEqual(numeric.features.values, [2, 3, 5, 6])
        XCTAssertEqual(numeric.featureNames, ["2", "3"])
    }

    /// A target that is not there is the error, not a cell of the column that then reads as numbers.
    func testAMissingTargetIsReportedBeforeTheCells() {
        XCTAssertThrowsError(try DataLoader.decodeTable(Array("1,2,cat\n".utf8), name: "t.data", target: "9", hasHeader: false)) {
            XCTAssertEqual("\($0)", "t.data has 3 columns without a header, numbered 1 to 3; there is no column '9'")
        }
        XCTAssertThrowsError(try DataLoader.decodeTable(Array("a,b,kind\n1,2,cat\n".utf8), name: "t.csv", target: "knd")) {
            XCTAssertEqual("\($0)", "t.csv has no column named 'knd' (columns: a, b, kind)")
        }
        // a target that is there leaves the cell's own error
        XCTAssertThrowsError(try DataLoader.decodeTable(Array("a,b,kind\n1,2,dog\n1,x,cat\n".utf8), name: "t.csv", target: "kind")) {
            XCTAssertEqual("\($0)", "t.csv, line 3, column 2 ('b'): 'x' is not a number")
        }
    }
}
