import XCTest
@testable import MLPKit

/// Files whose cells are separated by semicolons, tabs, vertical bars or runs of spaces read as
/// the same rows written with commas: every value the same bits, the same header, categories
/// and messages that name the file's own lines and columns.
final class SeparatorTests: XCTestCase {
    /// 23 rows of 4 random values (never integral), as text with `format`.
    private func randomRows(seed: UInt64) -> [[Float]] {
        var generator = SeededGenerator(seed: seed)
        return (0..<23).map { _ in (0..<4).map { _ in Float(generator.nextNormal() * 100) } }
    }

    private func text(_ rows: [[Float]], header: [String]?, separator: String, decimal: String = ".",
                      lead: String = "", lineBreak: String = "\n") -> [UInt8] {
        var lines: [String] = header.map { [$0.joined(separator: separator)] } ?? []
        for row in rows {
            lines.append(lead + row.map { "\($0)".replacingOccurrences(of: ".", with: decimal) }.joined(separator: separator))
        }
        return Array((lines.joined(separator: lineBreak) + lineBreak).utf8)
    }

    func testEverySeparatorReadsTheCommaFilesBits() throws {
        let rows = randomRows(seed: 7)
        let header = ["a", "b c", "d", "e"]
        let reference = try CSVFile.decode(text(rows, header: header, separator: ","), name: "r.csv", hasHeader: true)
        XCTAssertEqual(reference.matrix.values.count, 92)
        XCTAssertFalse(reference.matrix.isIntegral)
        XCTAssertEqual(reference.matrix.origin?.separator, .comma)
        let cases: [(String, [UInt8], CSVSeparator)] = [
            ("semicolons", text(rows, header: header, separator: ";"), .semicolon),
            ("semicolons, decimal commas", text(rows, header: header, separator: ";", decimal: ","), .semicolon),
            ("semicolons and spaces, CRLF", text(rows, header: header, separator: " ; ", lineBreak: "\r\n"), .semicolon),
            ("tabs", text(rows, header: header, separator: "\t"), .tab),
            ("vertical bars", text(rows, header: header, separator: "|"), .bar),
            ("old Mac line ends", text(rows, header: header, separator: ";", lineBreak: "\r"), .semicolon),
        ]
        for (name, bytes, separator) in cases {
            let decoded = try CSVFile.decode(bytes, name: "s.csv", hasHeader: true)
            XCTAssertEqual(decoded.header, header, name)
            XCTAssertEqual(decoded.matrix.values.map(\.bitPattern), reference.matrix.values.map(\.bitPattern), name)
            XCTAssertEqual(decoded.matrix.origin?.separator, separator, name)
        }
        // runs of spaces, as numpy.savetxt writes them (no header: a header of "b c" would split)
        let spaced = try CSVFile.decode(text(rows, header: nil, separator: "   ", lead: "  "), name: "x.txt", hasHeader: false)
        XCTAssertEqual(spaced.matrix.values.map(\.bitPattern), reference.matrix.values.map(\.bitPattern))
        XCTAssertEqual(spaced.matrix.origin?.separator, .whitespace)
        let named = try CSVFile.decode(text(rows, header: ["a", "b", "d", "e"], separator: " \t "), name: "x.txt", hasHeader: true)
        XCTAssertEqual(named.header, ["a", "b", "d", "e"])
        XCTAssertEqual(named.matrix.values.map(\.bitPattern), reference.matrix.values.map(\.bitPattern))
        // numpy.savetxt's own format, %.18e
        let savetxt = "1.500000000000000000e+00 -2.250000000000000000e-01\n3.000000000000000000e+00 4.000000000000000000e+00\n"
        let saved = try CSVFile.decode(Array(savetxt.utf8), name: "x.txt", hasHeader: false)
        XCTAssertEqual(saved.matrix.values, [1.5, -0.225, 3, 4])
    }

    func testTextCellsKeepTheirCommasAndQuotes() throws {
        let comma = "id,city,kind,y\n1,\"Berlin, Mitte\",\"say \"\"hi\"\"\",1.5\n2,Paris,plain,2\n3,\"a;b\",x,3\n"
        let semicolon = "id;city;kind;y\n1;Berlin, Mitte;\"say \"\"hi\"\"\";1,5\n2;Paris;plain;2\n3;\"a;b\";x;3\n"
        let tab = "id\tcity\tkind\ty\n1\tBerlin, Mitte\t\"say \"\"hi\"\"\"\t1.5\n2\tParis\tplain\t2\n3\ta;b\tx\t3\n"
        let reference = try DataLoader.decodeTable(Array(comma.utf8), name: "c.csv", target: "y")
        XCTAssertEqual(reference.categories, [nil, ["Berlin, Mitte", "Paris", "a;b"], ["plain", "say \"hi\"", "x"]])
        for (name, file) in [("semicolons", semicolon), ("tabs", tab)] {
            let table = try DataLoader.decodeTable(Array(file.utf8), name: "s.csv", target: "y")
            XCTAssertEqual(table.featureNames, reference.featureNames, name)
            XCTAssertEqual(table.categories, reference.categories, name)
            XCTAssertEqual(table.features.values, reference.features.values, name)
            XCTAssertEqual(table.target?.values, reference.target?.values, name)
        }
        // a column left out, and columns copied through as written (a decimal comma a point), by the file's own names
        let dropped = try DataLoader.decodeTable(Array(semicolon.utf8), name: "s.csv", target: "y", dropping: ["city"])
        XCTAssertEqual(dropped.featureNames, ["id", "kind"])
        XCTAssertEqual(try DataLoader.decodeTextColumns(Array(semicolon.utf8), name: "s.csv", columns: ["city", "y"]),
                       [["Berlin, Mitte", "Paris", "a;b"], ["1.5", "2", "3"]])
        XCTAssertEqual(DataLoader.firstLineNames(Array(tab.utf8), hasHeader: true), ["id", "city", "kind", "y"])
    }

    func testMessagesNameTheFilesOwnLinesAndColumns() throws {
        XCTAssertEqual(thrownMessage {
            try CSVFile.decode(Array("a;b;c\n1;2;3\n\n4;x;6\n".utf8), name: "s.csv", hasHeader: true)
        }, "s.csv, line 4, column 2 ('b'): 'x' is not a number")
        XCTAssertEqual(thrownMessage {
            try CSVFile.decode(Array("1 2 3\n4 5\n".utf8), name: "x.txt", hasHeader: false)
        }, "x.txt, line 2, column 3: row has 2 cells but 3 are expected (as in the first row)")
        XCTAssertEqual(thrownMessage {
            try CSVFile.decode(Array("a\tb\n1\t2\t3\n".utf8), name: "t.tsv", hasHeader: true)
        }, "t.tsv, line 2, column 3: row has more than 2 cells (expected 2, as in the header)")
        // thousands grouped by points before a decimal comma; a point alone is a decimal point
        let grouped = try CSVFile.decode(Array("a;b;c;d\n1.234.567,5;-12.345,25e-1;0.500;1.234\n".utf8), name: "s.csv", hasHeader: true)
        XCTAssertEqual(grouped.matrix.values, [1_234_567.5, -12_345.25e-1, 0.5, 1.234])
        XCTAssertEqual(thrownMessage {
            try CSVFile.decode(Array("a;b\n1.23,5;2\n".utf8), name: "s.csv", hasHeader: true)
        }, "s.csv, line 2, column 1 ('a'): '\"1.23,5\"' is not a number")
        // two commas are no decimal comma: the cell is text, in quotes as the reader saw it (as
        // in a file of commas, where the quoted cell is read whole)
        XCTAssertEqual(thrownMessage {
            try CSVFile.decode(Array("a;b\n1,5,1;2\n".utf8), name: "s.csv", hasHeader: true)
        }, "s.csv, line 2, column 1 ('a'): '\"1,5,1\"' is not a number")
        XCTAssertEqual(thrownMessage {
            try CSVFile.decode(Array("a,b\n\"1,5,1\",2\n".utf8), name: "c.csv", hasHeader: true)
        }, "c.csv, line 2, column 1 ('a'): '\"1,5,1\"' is not a number")
    }

    func testWhatStaysOneColumn() throws {
        func separator(_ text: String) -> CSVSeparator {
            Array(text.utf8).withUnsafeBufferPointer { CSVSeparator.detect($0) }
        }
        // class names with spaces, one per line; a one-column header with a space over numbers
        XCTAssertEqual(separator("Iris setosa\nIris versicolor\n"), .comma)
        XCTAssertEqual(separator("house price\n250000\n"), .comma)
        XCTAssertEqual(separator("3\n4\n"), .comma)
        XCTAssertEqual(separator(""), .comma)
        // a header of names over numbers, numbers alone (one line is enough)
        XCTAssertEqual(separator("x y\n1 2\n"), .whitespace)
        XCTAssertEqual(separator("\n\n 1.5  -2\n"), .whitespace)
        XCTAssertEqual(separator("x y\nred 2\n"), .comma)
        // the first line's separators outside quotes decide; commas win a tie
        XCTAssertEqual(separator("\"a;b;c\",d\n"), .comma)
        XCTAssertEqual(separator("a;b,c\n"), .comma)
        XCTAssertEqual(separator("a;b;c,d\n"), .semicolon)
        XCTAssertEqual(separator("\u{FEFF}a\tb\n"), .tab)
        // a tab before the first cell or after the last separates nothing: one number a line
        XCTAssertEqual(separator("1\t\n2\t\n"), .comma)
        XCTAssertEqual(separator("\t 1\n"), .comma)
        XCTAssertEqual(try CSVFile.decode(Array("1\t\n2 \t\n".utf8), name: "y.txt", hasHeader: false).matrix.values, [1, 2])
        let targets = try DataLoader.decodeTargets(Array("Iris setosa\nIris versicolor\nIris setosa\n".utf8), name: "y.txt")
        XCTAssertEqual(targets.classNames, ["Iris setosa", "Iris versicolor"])
        XCTAssertEqual(targets.targets.values, [0, 1, 0])
    }

    func testAChosenSeparatorOverridesDetection() throws {
        let rows = randomRows(seed: 21)
        // more semicolons in the header's names than commas between them: told semicolon-separated
        let header = ["x;1;a", "x;2;b", "y", "z"]
        let bytes = text(rows, header: header, separator: ",")
        XCTAssertEqual(bytes.withUnsafeBufferPointer { CSVSeparator.detect($0) }, .semicolon)
        XCTAssertEqual(CSVFile.firstLineCells(bytes), ["x", "1", "a,x", "2", "b,y,z"])
        XCTAssertThrowsError(try CSVFile.decode(bytes, name: "m.csv", hasHeader: true))
        let chosen = try CSVSeparator.$chosen.withValue(.comma) { try CSVFile.decode(bytes, name: "m.csv", hasHeader: true) }
        XCTAssertEqual(chosen.header, header)
        XCTAssertEqual(chosen.matrix.origin?.separator, .comma)
        let reference = try CSVFile.decode(text(rows, header: ["a", "b", "c", "d"], separator: ","), name: "r.csv", hasHeader: true)
        XCTAssertEqual(chosen.matrix.values.map(\.bitPattern), reference.matrix.values.map(\.bitPattern))
        // the choice holds only inside withValue
        XCTAssertNil(CSVSeparator.chosen)
        XCTAssertEqual(CSVFile.firstLineCells(bytes), ["x", "1", "a,x", "2", "b,y,z"])
        XCTAssertEqual(CSVSeparator.$chosen.withValue(.comma) { CSVFile.firstLineCells(bytes) }, header)

        // a chosen separator the file does not have: its lines are one cell each, an error naming the cell
        let tabs = text(rows, header: nil, separator: "\t")
        XCTAssertThrowsError(try CSVSeparator.$chosen.withValue(.semicolon) { try CSVFile.decode(tabs, name: "t.tsv", hasHeader: false) }) {
            XCTAssertTrue("\($0)".hasPrefix("t.tsv, line 1, column 1: "), "\($0)")
        }
        // whitespace chosen for a file of single spaces that detection would also take, and for tabs
        for separator in [" ", "\t", "   "] {
            let spaced = text(rows, header: nil, separator: separator)
            let read = try CSVSeparator.$chosen.withValue(.whitespace) { try CSVFile.decode(spaced, name: "s.txt", hasHeader: false) }
            XCTAssertEqual(read.matrix.values.map(\.bitPattern), reference.matrix.values.map(\.bitPattern), separator)
        }
    }

    func testSeparatorNames() {
        let names: [(String, CSVSeparator?)] = [
            ("comma", .comma), (",", .comma), ("Semicolon", .semicolon), (";", .semicolon), ("tab", .tab), ("\\t", .tab),
            ("\t", .tab), ("bar", .bar), ("|", .bar), ("pipe", .bar), ("space", .whitespace), ("whitespace", .whitespace),
            ("auto", nil), ("", nil), (":", nil), ("commas;", nil),
        ]
        for (name, separator) in names { XCTAssertEqual(CSVSeparator(name: name), separator, name) }
    }
}
