import Foundation
import XCTest
@testable import MLPKit

/// Feature columns of text (categories): `decodeTable` one-hot encodes them, in sorted order when
/// they come from the data and in the recorded order when a checkpoint gives them, reads past
/// columns left out (`dropping`, or not among a checkpoint's inputs), and refuses what it cannot
/// encode (`data.categories`' round trip and validation are in `CheckpointTests`).
final class CategoryTests: XCTestCase {
    func testATextColumnBecomesOneHotInputsInSortedOrder() throws {
        let text = "size,color,price,shape\n1.5,red,10,\"round, flat\"\n2,green,11,square\n-3,red,12,square\n4,blue,13,\"round, flat\"\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "s.csv", target: "price")
        XCTAssertEqual(table.featureNames, ["size", "color", "shape"])
        XCTAssertEqual(table.categories, [nil, ["blue", "green", "red"], ["round, flat", "square"]])
        XCTAssertEqual(table.features.columns, 6)
        XCTAssertEqual(table.features.values, [
            1.5, 0, 0, 1, 1, 0,
            2, 0, 1, 0, 0, 1,
            -3, 0, 0, 1, 0, 1,
            4, 1, 0, 0, 1, 0,
        ])
        XCTAssertFalse(table.features.isIntegral)
        XCTAssertEqual(table.target?.values, [10, 11, 12, 13])
        // numeric only: no categories, the values as before
        let numeric = try DataLoader.decodeTable(Array("a,y,b\n1,2,3\n4,5,6\n".utf8), name: "n.csv", target: "y")
        XCTAssertNil(numeric.categories)
        XCTAssertEqual(numeric.features.values, [1, 3, 4, 6])
        // a category that looks like a number later in the column is a category like any other
        let mixed = try DataLoader.decodeTable(Array("k,y\nA,1\n10,2\nA,3\n".utf8), name: "m.csv", target: "y")
        XCTAssertEqual(mixed.categories, [["10", "A"]])
        XCTAssertEqual(mixed.features.values, [0, 1, 1, 0, 0, 1])
    }

    func testRecordedCategoriesDecideTheInputsOrder() throws {
        // the file's columns in another order, an extra column of text, a value of the recorded
        // categories absent from this file
        let text = "note,color,size\nhello,red,1\n\"a, b\",blue,2\n,red,3\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "r.csv", target: nil, targetRequired: false,
                                               features: ["size", "color"],
                                               textFeatures: .recorded([nil, ["red", "purple", "blue"]]))
        XCTAssertEqual(table.features.values, [1, 1, 0, 0, 2, 0, 0, 1, 3, 1, 0, 0])
        XCTAssertEqual(table.categories, [nil, ["red", "purple", "blue"]])
        XCTAssertEqual(table.ignoredColumns, ["note"], "a column left out is read past: text, quoted, empty")
        // a value the model does not know, with its line and column
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("color,size\nred,1\ngreen,2\n".utf8), name: "r.csv", target: nil, targetRequired: false,
                                       features: ["size", "color"], textFeatures: .recorded([nil, ["red", "blue"]]))
        }, "r.csv, line 3, column 1 ('color'): 'green' is not one of the categories the model knows for this column ('red', 'blue')")
        // a recorded category column whose cells look like numbers is still read as categories
        let numbers = try DataLoader.decodeTable(Array("zip,size\n10115,1\n80331,2\n".utf8), name: "z.csv", target: nil,
                                                 targetRequired: false, features: ["zip", "size"],
                                                 textFeatures: .recorded([["80331", "10115"], nil]))
        XCTAssertEqual(numbers.features.values, [0, 1, 1, 1, 0, 2])
        // a recorded numeric column holding text is not a category
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("color,size\nred,big\n".utf8), name: "r.csv", target: nil, targetRequired: false,
                                       features: ["size", "color"], textFeatures: .recorded([nil, ["red"]]))
        }, "r.csv, line 2, column 2 ('size'): 'big' is not a number")
        // a model that records no categories takes numbers only
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("color,size\nred,1\n".utf8), name: "r.csv", target: nil, targetRequired: false,
                                       features: ["size", "color"], textFeatures: .refused)
        }, "r.csv, line 2, column 1 ('color'): 'red' is not a number")
        // by position, the file must have as many feature columns as the model records
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("1,red,3\n".utf8), name: "p.data", target: "3", textFeatures: .recorded([nil]),
                                       hasHeader: false)
        }, "p.data has 2 feature columns but the model takes 1, by position")
    }

    func testWithoutAHeaderCategoriesGoByPosition() throws {
        // the target first: the category column is the second feature column, the file's third
        let text = "5,1.5,red\n6,2.5,blue\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "h.data", target: "1", hasHeader: false)
        XCTAssertEqual(table.featureNames, ["2", "3"])
        XCTAssertEqual(table.categories, [nil, ["blue", "red"]])
        XCTAssertEqual(table.features.values, [1.5, 0, 1, 2.5, 1, 0])
        let recorded = try DataLoader.decodeTable(Array(text.utf8), name: "h.data", target: "1",
                                                  textFeatures: .recorded([nil, ["red", "blue"]]), hasHeader: false)
        XCTAssertEqual(recorded.features.values, [1.5, 1, 0, 2.5, 0, 1])
        // dropping a column by number shifts the positions after it
        let dropped = try DataLoader.decodeTable(Array("x,5,1.5,red\ny,6,2.5,blue\n".utf8), name: "h.data", target: "2",
                                                 textFeatures: .recorded([nil, ["red", "blue"]]), dropping: ["1"], hasHeader: false)
        XCTAssertEqual(dropped.features.values, [1.5, 1, 0, 2.5, 0, 1])
        XCTAssertEqual(dropped.featureNames, ["3", "4"])
    }

    func testDroppedColumnsAreReadPast() throws {
        // an id column of text, empty cells and numbers alike, left out
        let text = "id,a,y\nx1,1,0\n,2,1\n\"q, r\",3,0\n17,4,1\n"
        let table = try DataLoader.decodeTable(Array(text.utf8), name: "d.csv", target: "y", dropping: ["id"])
        XCTAssertEqual(table.featureNames, ["a"])
        XCTAssertEqual(table.features.values, [1, 2, 3, 4])
        XCTAssertEqual(table.ignoredColumns, [], "columns asked to be left out are not reported as left out")
        XCTAssertNil(table.categories)
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array(text.utf8), name: "d.csv", target: "y", dropping: ["ID"]) },
                       "d.csv has no column named 'ID' (columns: id, a, y)")
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array(text.utf8), name: "d.csv", target: "y", dropping: ["y"]) },
                       "d.csv: 'y' is the target; it cannot be left out")
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array(text.utf8), name: "d.csv", target: "y", dropping: ["id", "a"]) },
                       "d.csv: no feature columns are left once 'id', 'a' are left out")
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array(text.utf8), name: "d.csv", target: "y", features: ["a", "id"], dropping: ["id"])
        }, "d.csv: 'id' is one of the model's input columns; it cannot be left out")
        // without a target (predict): the dropped column still goes
        let inputs = try DataLoader.decodeTable(Array(text.utf8), name: "d.csv", target: nil, targetRequired: false, dropping: ["id", "y"])
        XCTAssertEqual(inputs.features.values, [1, 2, 3, 4])
    }

    func testWhatCannotBeEncodedIsRefused() throws {
        // a numeric column whose first cell is a missing value
        XCTAssertEqual(thrownMessage {
            try DataLoader.decodeTable(Array("a,y\nN/A,1\n2,2\n3,3\n".utf8), name: "n.csv", target: "y")
        }, "n.csv, line 2, column 1 ('a'): 'N/A' is not a number (the column's other cells are mostly numbers)")
        // an empty category
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array("a,y\nred,1\n,2\n".utf8), name: "e.csv", target: "y") },
                       "e.csv, line 3, column 1 ('a'): empty cell")
        // more categories than inputs allowed
        var text = "name,a,y\n"
        for row in 0...DataLoader.categoriesAllowed { text += "n\(row),\(row),1\n" }
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTable(Array(text.utf8), name: "i.csv", target: "y") },
                       "i.csv: column 'name' holds 1,025 different text values, too many to one-hot (at most 1,024); "
                           + "an id or free text is no input: leave the column out of the file")
        XCTAssertNoThrow(try DataLoader.decodeTable(Array(text.utf8), name: "i.csv", target: "y", dropping: ["name"]))
    }

    func testTextColumnsAreReadAsWritten() throws {
        let text = "id,a,note\nx1,1,\"a, b\"\n,2,NA\n\"\"\"q\"\"\",3, spaced \n"
        XCTAssertEqual(try DataLoader.decodeTextColumns(Array(text.utf8), name: "k.csv", columns: ["note", "id", "a"]),
                       [["a, b", "NA", "spaced"], ["x1", "", "\"q\""], ["1", "2", "3"]])
        XCTAssertEqual(try DataLoader.decodeTextColumns(Array("x1,1\nx2,2\n".utf8), name: "k.data", columns: ["1"], hasHeader: false),
                       [["x1", "x2"]])
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTextColumns(Array(text.utf8), name: "k.csv", columns: ["ID"]) },
                       "k.csv has no column named 'ID' (columns: id, a, note)")
        // a header name holding a carriage return (a file of \n line ends), and old Mac line ends
        XCTAssertEqual(try DataLoader.decodeTextColumns(Array("a\rb,c\r\nx,1\r\n".utf8), name: "k.csv", columns: ["a\rb"]), [["x"]])
        XCTAssertEqual(try DataLoader.decodeTextColumns(Array("a,c\rx,1\ry,2\r".utf8), name: "k.csv", columns: ["c"]), [["1", "2"]])
        XCTAssertEqual(try DataLoader.decodeTable(Array("a\rb,c,y\nx,1,0\n".utf8), name: "k.csv", target: "y", dropping: ["a\rb"])
            .features.values, [1])
        // a short row is still an error
        XCTAssertEqual(thrownMessage { try DataLoader.decodeTextColumns(Array("id,a\nx,1\ny\n".utf8), name: "k.csv", columns: ["id"]) },
                       "k.csv, line 3, column 2 ('a'): row has 1 cells but 2 are expected (as in the header)")
    }
}
