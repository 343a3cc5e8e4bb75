import Foundation
import XCTest
@testable import MLPKit

/// Missing values in a CSV's feature columns (`decodeTable(…, missing:)`): refused by default;
/// with `.mean` a numeric column's take its mean and a column of categories' no category; with
/// `.recorded` a checkpoint's fills. The target's are always an error. (`data.fill`'s round trip
/// and validation are in `CheckpointTests`.)
final class MissingValueTests: XCTestCase {
    func testEveryMarkerIsMissingAndTakesTheMean() throws {
        let text = "a,b,y\n1.5,,1\nNA,2,2\n\"n/a\",4,3\n2.5,?,4\n nan ,8,5\nNULL,16,6\n\"\",32,7\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "m.csv", target: "y", missing: .mean)
        // a: 1.5 and 2.5 present, mean 2; b: 2, 4, 8, 16, 32 present, mean 12.4
        let b = Float((2.0 + 4 + 8 + 16 + 32) / 5)
        XCTAssertEqual(table.features.values, [1.5, b, 2, 2, 2, 4, 2.5, b, 2, 8, 2, 16, 2, 32])
        XCTAssertEqual(table.fills, [2, b])
        XCTAssertEqual(table.missingCounts, [5, 2])
        XCTAssertEqual(table.target?.values, [1, 2, 3, 4, 5, 6, 7])
        // a column with nothing missing still records its mean, for new rows that miss it
        let full = try DataLoader.decodeTable(Array("a,y\n1,0\n2,1\n".utf8), name: "f.csv", target: "y", missing: .mean)
        XCTAssertEqual(full.fills, [1.5])
        XCTAssertEqual(full.missingCounts, [0])
        // refused by default, and NaN without missing values allowed is refused by name
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array(text.utf8), name: "m.csv", target: "y") },
                       "m.csv, line 2, column 2 ('b'): empty cell")
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array("a,y\n1,1\nNaN,2\n".utf8), name: "n.csv", target: "y") },
                       "n.csv, line 3, column 1 ('a'): NaN is not allowed ('NaN')")
        XCTAssertNil(try DataLoader.decodeTable(Array("a,y\n1,0\n".utf8), name: "f.csv", target: "y").fills)
    }

    /// Without missing values allowed, a missing value is its own typed error (`.missingValue`, so
    /// that the tool can say `--fill-missing` would fill it), every other bad cell `.csv`; both
    /// describe themselves the same way.
    func testMissingValuesAreTypedErrors() {
        func kind(_ text: String) -> String {
            do {
                _ = try DataLoader.decodeTable(Array(text.utf8), name: "k.csv", target: "y")
                return "read"
            } catch let error as DataFileError {
                switch error {
                case let .missingValue(_, line, column, _, _): return "missing \(line):\(column)"
                case let .csv(_, line, column, _, _): return "csv \(line):\(column)"
                default: return "other \(error)"
                }
            } catch { return "other \(error)" }
        }
        for marker in ["", " ", "NA", "na", "N/A", "\"NA\"", "NaN", "nan", "null", "NULL", "?", "\"\""] {
            XCTAssertEqual(kind("a,b,y\n1,2,3\n4,\(marker),6\n"), "missing 3:2", "feature cell \(marker)")
            XCTAssertEqual(kind("a,b,y\n1,2,3\n4,5,\(marker)\n"), "missing 3:3", "target cell \(marker)")
        }
        for bad in ["abc", "1x", "NAN1", "-", "inf", "nulls"] {
            XCTAssertEqual(kind("a,b,y\n1,2,3\n4,\(bad),6\n"), "csv 3:2", "feature cell \(bad)")
        }
        // a column of numbers whose first cell is a marker (read as text at first): the marker's line
        XCTAssertEqual(kind("a,b,y\nN/A,2,3\n4,5,6\n7,8,9\n"), "missing 2:1")
        XCTAssertEqual(kind("a,b,y\nx,2,3\n4,5,6\n7,8,9\n"), "csv 2:1")
        // the same one line either way
        let missing = DataFileError.missingValue(path: "k.csv", line: 3, column: 2, columnName: "b", reason: "empty cell")
        let cell = DataFileError.csv(path: "k.csv", line: 3, column: 2, columnName: "b", reason: "empty cell")
        XCTAssertEqual(missing.description, cell.description)
        XCTAssertTrue(missing.isCSVCell && cell.isCSVCell)
        XCTAssertFalse(DataFileError.empty(path: "k.csv", reason: "no rows").isCSVCell)
    }

    /// With a validation split, the means are the training rows' alone.
    func testMeansOfTheTrainingRows() throws {
        let values: [Float] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        var text = "a,y\n"
        for (row, value) in values.enumerated() { text += "\(value),\(row)\n" }
        text += "NA,10\n"
        let (training, validation) = try Dataset.splitRows(11, validationFraction: 0.3, seed: 9)
        XCTAssertEqual(validation.count, 3)
        let trainingValues = training.filter { $0 < 10 }.map { Double(values[$0]) }
        let expected = Float(trainingValues.reduce(0, +) / Double(trainingValues.count))
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "s.csv", target: "y",
                                               missing: .meanOfTraining(validationFraction: 0.3, seed: 9))
        XCTAssertEqual(table.fills, [expected])
        XCTAssertEqual(table.features.values.last, expected)
        XCTAssertNotEqual(expected, Float(values.reduce(0, +)) / 10, "the split leaves out some of the values")
        XCTAssertEqual(try DataLoader.decodeTable(Array(text.utf8), name: "s.csv", target: "y", missing: .mean).fills,
                       [Float(values.reduce(0, +)) / 10])
    }

    /// For a fold, the means are those of the rows named (the fold's others); rows past the file are an error.
    func testMeansOfChosenRowsAndFolds() throws {
        let values: [Float] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        var text = "a,y\n"
        for (row, value) in values.enumerated() { text += "\(value),\(row)\n" }
        text += "NA,10\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "s.csv", target: "y", missing: .meanOfRows([1, 3, 10]))
        XCTAssertEqual(table.fills, [5])  // (2 + 8) / 2: row 10's own cell is the missing one
        XCTAssertEqual(table.features.values.last, 5)
        XCTAssertThrowsError(try DataLoader.decodeTable(Array(text.utf8), name: "s.csv", target: "y", missing: .meanOfRows([2, 11])))

        let folds = try Dataset.foldRows(11, folds: 3, seed: 4)
        XCTAssertEqual(folds.map(\.count), [4, 4, 3])
        XCTAssertEqual(folds.flatMap { $0 }.sorted(), Array(0..<11))
        XCTAssertTrue(folds.allSatisfy { $0 == $0.sorted() })
        var generator = SeededGenerator(seed: 4 ^ 0xF01D_F01D_F01D_F01D)
        let order = generator.permutation(11)
        XCTAssertEqual(folds, [order[0..<4].sorted(), order[4..<8].sorted(), order[8..<11].sorted()])
        XCTAssertNotEqual(try Dataset.foldRows(11, folds: 3, seed: 5), folds)
        XCTAssertThrowsError(try Dataset.foldRows(11, folds: 1, seed: 4))
        XCTAssertThrowsError(try Dataset.foldRows(11, folds: 12, seed: 4))
        XCTAssertEqual(try Dataset.foldRows(3, folds: 3, seed: 4).map(\.count), [1, 1, 1])
    }

    func testCategoriesWithMissingValuesHaveNoCategory() throws {
        // Cabin's first cells are missing: its first cell that is not decides it is text; Embarked misses one
        let text = "cabin,fare,embarked,y\n,7.25,S,0\nNA,71.5,C,1\n\"C85, deck\",8,,1\n,53,S,0\nB2,8.5,Q,1\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "t.csv", target: "y", missing: .mean)
        XCTAssertEqual(table.categories, [["B2", "C85, deck"], nil, ["C", "Q", "S"]])
        XCTAssertEqual(table.features.values, [
            0, 0, 7.25, 0, 0, 1,
            0, 0, 71.5, 1, 0, 0,
            0, 1, 8, 0, 0, 0,
            0, 0, 53, 0, 0, 1,
            1, 0, 8.5, 0, 1, 0,
        ])
        XCTAssertEqual(table.fills, [nil, Float((7.25 + 71.5 + 8 + 53 + 8.5) / 5), nil])
        XCTAssertEqual(table.missingCounts, [3, 0, 1])
        // recorded categories: a missing value has no category there too
        let recorded = try DataLoader.decodeTable(Array("embarked,fare\n?,1\nQ,2\n".utf8), name: "r.csv", target: nil,
                                                  targetRequired: false, features: ["embarked", "fare"],
                                                  textFeatures: .recorded([["S", "Q"], nil]), missing: .recorded([nil, 5]))
        XCTAssertEqual(recorded.features.values, [0, 0, 1, 0, 1, 2])
        // numbers after missing cells keep the column numeric, and text after numbers is not a category
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("a,y\n,1\n3,2\nx,3\n".utf8), name: "n.csv", target: "y", missing: .mean)
        }, "n.csv, line 4, column 1 ('a'): 'x' is not a number")
        // nor is a column of numbers whose first cell that is not missing is text
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("a,y\n,1\nx,2\n3,3\n4,4\n".utf8), name: "n.csv", target: "y", missing: .mean)
        }, "n.csv, line 3, column 1 ('a'): 'x' is not a number (the column's other cells are mostly numbers)")
    }

    func testWhatCannotBeFilledIsAnError() throws {
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array("a,y\n1,\n2,3\n".utf8), name: "t.csv", target: "y", missing: .mean) },
                       "t.csv, line 2, column 2 ('y'): the target is missing")
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array("a,y\n1,NA\n2,cat\n".utf8), name: "t.csv", target: "y", missing: .mean) },
                       "t.csv, line 2, column 2 ('y'): the target is missing")
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array("a,b,y\n1,,1\n2,NA,0\n".utf8), name: "e.csv", target: "y", missing: .mean) },
                       "e.csv: column 'b' has no values, every cell is missing: leave it out of the file")
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("a,b\n1,2\n".utf8), name: "r.csv", target: nil, targetRequired: false, features: ["a", "b"],
                                       missing: .recorded([1]))
        }, "r.csv has 2 feature columns but the model records missing values' fills for 1")
        // left-out columns may miss anything
        let table = try DataLoader.decodeTable(Array("id,a,y\n,1,0\nNA,,1\n".utf8), name: "d.csv", target: "y", dropping: ["id"],
                                               missing: .recorded([7]))
        XCTAssertEqual(table.features.values, [1, 7])
    }
}
