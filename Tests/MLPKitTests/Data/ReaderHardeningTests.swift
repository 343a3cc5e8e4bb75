import Foundation
import XCTest
@testable import MLPKit

/// The error `body` throws, failing the test when it throws none.
private func caught<T>(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) -> Error? {
    do {
        _ = try body()
        XCTFail("expected an error, but nothing was thrown", file: file, line: line)
    } catch {
        return error
    }
    return nil
}

/// The text a user sees for `error`.
private func message(_ error: Error?) -> String {
    guard let error else { return "<no error>" }
    return String(describing: error)
}

/// True when `text` is one printable line: no control characters of any kind (a NUL would cut a C string, a
/// carriage return or newline would break the line).
private func isOnePrintableLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029 }
}

/// Input-hardening checks for the data readers: implausible class counts, control characters and long text in
/// messages, file types recognised by content, duplicate header names, and CR-only line endings.
final class ReaderHardeningTests: FileTestCase {
    private func write(_ text: String, to name: String) throws -> String {
        try write(Array(text.utf8), to: name)
    }

    private func randomInputs(rows: Int, features: Int, seed: UInt64) -> DataMatrix {
        var generator = SeededGenerator(seed: seed)
        let values = (0..<(rows * features)).map { _ in Float.random(in: -1...1, using: &generator) }
        return DataMatrix(rows: rows, columns: features, values: values, isIntegral: false)
    }

    // MARK: - 1. Class counts inferred from the labels

    func testOneFarOutLabelInANpyIsRefusedNamingLabelRowAndRowCount() throws {
        var generator = SeededGenerator(seed: 11)
        var labels = (0..<60).map { _ in Int64.random(in: 0...2, using: &generator) }
        labels[5] = 16_777_215
        let path = try write(NumpyFile.encodeInt64(labels, rows: 60, columns: 1, flat: true), to: "y.npy")
        let targets = try DataLoader.readMatrix(path: path)
        let inputs = randomInputs(rows: 60, features: 3, seed: 1)
        let error = caught { try DataLoader.dataset(inputs: inputs, targets: targets, loss: .crossEntropy) }
        XCTAssertEqual(error as? DataLoader.LoadError, .mismatch(
            "\(path): label 16777215 (row 6) would make 16,777,216 classes, more than the 60 rows; is the label column right?"))
        // The same labels with a checkpoint's class count are not second-guessed here: they are outside the model.
        let withModel = caught { try DataLoader.dataset(inputs: inputs, targets: targets, loss: .crossEntropy, outputs: 3) }
        XCTAssertEqual(message(withModel), "class label 16777215 is outside the model's 3 classes (0…2)")
    }

    func testInferredClassCountLimitIsTheRowsOr1024() throws {
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<40 {
            let rows = Int.random(in: 2...3000, using: &generator)
            let limit = max(rows, 1024)
            var values = (0..<rows).map { _ in Float(Int.random(in: 0...9, using: &generator)) }
            let at = Int.random(in: 0..<rows, using: &generator)
            let inputs = randomInputs(rows: rows, features: 2, seed: UInt64(rows))

            values[at] = Float(limit - 1)  // exactly `limit` classes: accepted
            let fits = DataMatrix(rows: rows, columns: 1, values: values, isIntegral: true)
            let accepted = try DataLoader.dataset(inputs: inputs, targets: fits, loss: .crossEntropy)
            XCTAssertEqual(accepted.outputs, limit)

            values[at] = Float(limit)  // one class too many
            let over = DataMatrix(rows: rows, columns: 1, values: values, isIntegral: true)
            let error = caught { try DataLoader.dataset(inputs: inputs, targets: over, loss: .crossEntropy) }
            XCTAssertEqual(message(error), "label \(limit) (target row \(at + 1)) would make \(DataLoader.grouped(limit + 1)) classes, "
                           + "more than the \(DataLoader.grouped(rows)) rows; is the label column right?")
            // With the class count from a checkpoint the data decides nothing: any label inside the model is fine.
            XCTAssertEqual(try DataLoader.dataset(inputs: inputs, targets: over, loss: .crossEntropy, outputs: limit + 1).outputs,
                           limit + 1)
        }
    }

    func testFarOutLabelInACSVTableNamesTheLineAndColumn() throws {
        let path = try write("a,price,b\n1,0,2\n\n3,1,4\n\n\n5,5000,6\n7,2,8\n", to: "houses.csv")
        let table = try DataLoader.readTable(path: path, target: "price")
        let target = try XCTUnwrap(table.target)
        let error = caught { try DataLoader.dataset(inputs: table.features, targets: target, loss: .crossEntropy) }
        XCTAssertEqual(message(error),
                       "\(path): label 5000 (line 7, column 'price') would make 5,001 classes, more than the 4 rows; is the target column right?")
        // A headerless CSV of labels names the line.
        let labels = try write("0\n1\n\n9999\n", to: "y.csv")
        let y = try DataLoader.readMatrix(path: labels)
        let yError = caught { try DataLoader.dataset(inputs: randomInputs(rows: 3, features: 2, seed: 2), targets: y, loss: .crossEntropy) }
        XCTAssertEqual(message(yError), "\(labels): label 9999 (line 4) would make 10,000 classes, more than the 3 rows; is the label column right?")
    }

    func testLabelsBeyondFloat32sExactIntegersAreTooLarge() throws {
        let path = try write(NumpyFile.encode(DataMatrix(rows: 3, columns: 1, values: [0, 2e7, 1], isIntegral: true)), to: "big.npy")
        let targets = try DataLoader.readMatrix(path: path)
        let inputs = randomInputs(rows: 3, features: 2, seed: 3)
        for outputs in [nil, 3] as [Int?] {
            let error = caught { try DataLoader.dataset(inputs: inputs, targets: targets, loss: .crossEntropy, outputs: outputs) }
            XCTAssertEqual(message(error),
                           "\(path): label 20000000 (row 2) is too large for a class label: Float32 represents integers exactly only up to 16,777,216")
        }
        let csvError = caught {
            try DataLoader.dataset(inputs: inputs, targets: try CSVFile.decode(Array("1\n16777216\n0\n".utf8), name: "y.csv", hasHeader: false).matrix,
                                   loss: .crossEntropy)
        }
        XCTAssertEqual(message(csvError),
                       "y.csv: label 16777216 (line 2) is too large for a class label: Float32 represents integers exactly only up to 16,777,216")
        // Labels far beyond any integer type, and infinity from code, are refused without trapping.
        let huge = DataMatrix(rows: 3, columns: 1, values: [0, 3e38, 1], isIntegral: true)
        XCTAssertEqual(message(caught { try DataLoader.dataset(inputs: inputs, targets: huge, loss: .crossEntropy) }),
                       "label 3e+38 (target row 2) is too large for a class label: Float32 represents integers exactly only up to 16,777,216")
        let infinite = DataMatrix(rows: 3, columns: 1, values: [0, .infinity, 1], isIntegral: true)
        XCTAssertEqual(message(caught { try DataLoader.dataset(inputs: inputs, targets: infinite, loss: .crossEntropy) }),
                       "cross-entropy needs class labels 0, 1, 2, … in the target column")
        // Dataset itself says the same thing rather than "not a non-negative integer".
        let direct = caught {
            try Dataset(inputs: inputs.values, features: 2, targets: [0, 2e7, 1], encoding: .classIndices, targetWidth: 1)
        }
        XCTAssertEqual(message(direct), "target row 2: class label 20000000 is too large (Float32 represents integers exactly only up to 16,777,216)")
        let directHuge = caught {
            try Dataset(inputs: inputs.values, features: 2, targets: [0, 1, 3e38], encoding: .classIndices, targetWidth: 1)
        }
        XCTAssertEqual(message(directHuge), "target row 3: class label 3e+38 is too large (Float32 represents integers exactly only up to 16,777,216)")
    }

    func testCSVRowOriginMatchesTheLines() throws {
        var generator = SeededGenerator(seed: 77)
        for trial in 0..<30 {
            var text = trial % 2 == 0 ? "x,y\n" : "\n\nx,y\r\n"
            var line = trial % 2 == 0 ? 1 : 3
            var lines: [Int] = []
            for row in 0..<Int.random(in: 1...50, using: &generator) {
                let blankLines = Bool.random(using: &generator) ? 0 : Int.random(in: 1...3, using: &generator)
                for _ in 0..<blankLines {
                    text += Bool.random(using: &generator) ? "\n" : " \t\n"
                    line += 1
                }
                text += "\(row),\(row * 2)\n"
                line += 1
                lines.append(line)
            }
            let (_, matrix) = try CSVFile.decode(Array(text.utf8), name: "o.csv", hasHeader: true)
            let origin = try XCTUnwrap(matrix.origin)
            XCTAssertEqual(origin.path, "o.csv")
            XCTAssertEqual((0..<matrix.rows).map { origin.line(ofRow: $0) }, lines, "trial \(trial)")
        }
        let npy = try NumpyFile.decode(NumpyFile.encode(DataMatrix(rows: 2, columns: 1, values: [1, 2], isIntegral: true)), name: "n.npy")
        XCTAssertEqual(npy.origin?.path, "n.npy")
        XCTAssertNil(npy.origin?.line(ofRow: 1))
        // Origin is not part of equality.
        XCTAssertEqual(npy, DataMatrix(rows: 2, columns: 1, values: [1, 2], isIntegral: true))
    }

    // MARK: - 2. File content quoted in messages

    func testNulInACellIsEscapedNotACutLine() throws {
        // The NUL lies past the first 4 KiB, so the file counts as text and the cell is reported.
        var text = "a,b\n"
        var rows = 0
        while text.utf8.count <= FileSniffer.textWindow {
            text += "1,2\n"
            rows += 1
        }
        text += "3\u{0}4,5\n"
        let error = caught { try CSVFile.decode(Array(text.utf8), name: "d.csv", hasHeader: true) }
        XCTAssertEqual(message(error), "d.csv, line \(rows + 2), column 1 ('a'): '3\\04' is not a number")
        XCTAssertTrue(isOnePrintableLine(message(error)))
    }

    func testControlCharactersInCellsAreEscaped() {
        let cases: [(String, String)] = [
            ("1,2\r3\n", "d.csv, line 1, column 2: '2\\r3' is not a number"),
            ("1,\u{1b}[31m\n", "d.csv, line 1, column 2: '\\u{1b}[31m' is not a number"),
            ("x\u{7f}\n", "d.csv, line 1, column 1: 'x\\u{7f}' is not a number"),
            // a tab separates cells in a file with no commas (SeparatorTests)
            ("1\t\u{0b}2\n", "d.csv, line 1, column 2: '\\u{b}2' is not a number"),
            ("1,\t\u{0b}2\n", "d.csv, line 1, column 2: '\\u{b}2' is not a number"),
            ("1,2\u{0b}\t3\n", "d.csv, line 1, column 2: '2\\u{b}\\t3' is not a number"),
        ]
        for (text, expected) in cases {
            let error = caught { try CSVFile.decode(Array(text.utf8), name: "d.csv", hasHeader: false) }
            XCTAssertEqual(message(error), expected)
        }
    }

    func testLongCellsAreCutInMessages() {
        let long = String(repeating: "x", count: 500)
        let error = caught { try CSVFile.decode(Array("1,\(long)\n".utf8), name: "d.csv", hasHeader: false) }
        XCTAssertEqual(message(error), "d.csv, line 1, column 2: '\(String(repeating: "x", count: 40))…' is not a number")
        // Multi-byte characters are cut whole.
        let accents = String(repeating: "é", count: 60)
        let accentError = caught { try CSVFile.decode(Array("\(accents)\n".utf8), name: "d.csv", hasHeader: false) }
        XCTAssertEqual(message(accentError), "d.csv, line 1, column 1: '\(String(repeating: "é", count: 40))…' is not a number")
    }

    func testHeaderNamesWithControlCharactersAreEscaped() throws {
        let text = "a\rb,c\nx,2\n"
        let cellError = caught { try CSVFile.decode(Array(text.utf8), name: "h.csv", hasHeader: true) }
        XCTAssertEqual(message(cellError), "h.csv, line 2, column 1 ('a\\rb'): 'x' is not a number")
        // The name itself is kept as written.
        XCTAssertEqual(try CSVFile.decode(Array("a\rb,c\n1,2\n".utf8), name: "h.csv", hasHeader: true).header, ["a\rb", "c"])
        let path = try write("a\rb,\"q\u{1}\",\(String(repeating: "n", count: 100))\n1,2,3\n", to: "h.csv")
        let columnError = caught { try DataLoader.readTable(path: path, target: "price\n") }
        XCTAssertEqual(message(columnError),
                       "\(path) has no column named 'price\\n' (columns: a\\rb, q\\u{1}, \(String(repeating: "n", count: 40))…)")
    }

    func testNpyHeaderCharactersAreEscaped() {
        var bytes: [UInt8] = NumpyFile.magic + [1, 0, 16, 0]
        bytes += Array("{'descr': \u{0}  }".utf8) + [0x0A]
        bytes += [UInt8](repeating: 0x20, count: 26 - bytes.count)
        let error = caught { try NumpyFile.decode(bytes, name: "n.npy") }
        XCTAssertEqual(message(error), "n.npy: invalid .npy header: unexpected character '\\0'")
        let dtype = DataFileError.unsupportedDType(path: "n.npy", dtype: "<x\r" + String(repeating: "y", count: 80), supported: "<f4")
        XCTAssertEqual(dtype.description, "n.npy: unsupported element type '<x\\r\(String(repeating: "y", count: 37))…' (supported: <f4)")
    }

    func testEveryCSVMessageIsOnePrintableLineOfBoundedLength() {
        // Random short files over an alphabet rich in separators, quotes and control bytes.
        let alphabet: [UInt8] = Array("0123456789,,,.-+e\"\n\n\r\t x".utf8) + [0x00, 0x01, 0x0B, 0x1B, 0x7F, 0xC2, 0x85, 0xFF]
        var generator = SeededGenerator(seed: 2024)
        var failures = 0
        for trial in 0..<3000 {
            let length = Int.random(in: 0...60, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            for header in [false, true] {
                do {
                    _ = try CSVFile.decode(bytes, name: "r.csv", hasHeader: header)
                    _ = try DataLoader.decodeTable(bytes, name: "r.csv", target: "x")
                } catch {
                    let text = message(error)
                    failures += 1
                    XCTAssertTrue(isOnePrintableLine(text), "trial \(trial): \(text.debugDescription)")
                    XCTAssertLessThan(text.count, 200, "trial \(trial): \(text)")
                }
            }
        }
        XCTAssertGreaterThan(failures, 1000)
    }

    // MARK: - 3. File types told by content

    func testDamagedGzipFilesAreOneLineErrorsWhateverTheName() throws {
        // a header, then a stored block whose length check is cut off
        let gz: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 1, 2, 3]
        for name in ["train-labels-idx1-ubyte.gz", "y.npy", "y.csv", "labels"] {
            let path = try write(gz, to: name)
            let error = caught { try DataLoader.readMatrix(path: path) }
            XCTAssertEqual(message(error), "\(path): gzip: the compressed data ends inside a block (truncated?)")
            XCTAssertTrue(isOnePrintableLine(message(error)))
        }
        let table = try write(gz, to: "d.csv.gz")
        XCTAssertEqual(message(caught { try DataLoader.readTable(path: table, target: "y") }),
                       "\(table): gzip: the compressed data ends inside a block (truncated?)")
        let three = try write([0x1F, 0x8B, 0x08], to: "three")
        XCTAssertEqual(message(caught { try DataLoader.readMatrix(path: three) }),
                       "\(three): gzip: the file ends inside a member's header (truncated?)")
    }

    func testNumpyMagicIsReadAsNpyWhateverTheName() throws {
        let matrix = DataMatrix(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6.5], isIntegral: false)
        for name in ["x.bin", "x.csv", "x.txt", "x"] {
            let path = try write(NumpyFile.encode(matrix), to: name)
            XCTAssertEqual(try DataLoader.readMatrix(path: path), matrix, name)
        }
    }

    func testDamagedZipArchivesAreOneLineErrors() throws {
        // a local header's first bytes and nothing else: no central directory
        let zip: [UInt8] = [0x50, 0x4B, 0x03, 0x04, 20, 0, 0, 0, 8, 0, 1, 2, 3, 4]
        for name in ["arrays.npz", "bundle.zip", "x.csv"] {
            let path = try write(zip, to: name)
            XCTAssertEqual(message(caught { try DataLoader.readMatrix(path: path) }),
                           "\(path): zip: no end-of-central-directory record (not a zip archive, or truncated?)")
            XCTAssertEqual(message(caught { try DataLoader.readTable(path: path, target: "y") }),
                           "\(path): zip: no end-of-central-directory record (not a zip archive, or truncated?)")
        }
        // NumpyFile alone (no archive reading) still says what a .npz is
        XCTAssertTrue(message(caught { try NumpyFile.decode(zip, name: "a.npz") }).contains(".npz (zip) archive"))
    }

    func testIDXFilesReachTheIDXReaderWhateverTheirType() throws {
        // Float elements (0x0D): the IDX reader's own message, not a CSV parse of binary.
        let float = try write([0, 0, 0x0D, 1, 0, 0, 0, 2] + [UInt8](repeating: 0, count: 8), to: "float-idx1")
        XCTAssertEqual(caught { try DataLoader.readMatrix(path: float) } as? DataFileError,
                       .unsupportedDType(path: float, dtype: "0x0D (float)", supported: "0x08 (unsigned byte)"))
        // Two dimensions.
        let twoDim = try write([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4], to: "matrix-idx2-ubyte")
        XCTAssertEqual(message(caught { try DataLoader.readMatrix(path: twoDim) }),
                       "\(twoDim): magic 0x00000802 means 2 dimensions; expected 0x00000803 (images) or 0x00000801 (labels)")
        // Three bytes: too short for any header.
        let short = try write([0, 0, 8], to: "short")
        XCTAssertEqual(caught { try DataLoader.readMatrix(path: short) } as? DataFileError,
                       .malformed(path: short, reason: "file too short for an IDX header (3 bytes)"))
        let shortNpy = try write([0x93, 0x4E, 0x55], to: "short.npy")
        XCTAssertEqual(caught { try DataLoader.readMatrix(path: shortNpy) } as? DataFileError,
                       .malformed(path: shortNpy, reason: "file ends inside the .npy preamble (3 bytes); file truncated?"))
        // Zero bytes that are no IDX type code: not an IDX file.
        let zeros = try write([UInt8](repeating: 0, count: 64), to: "zeros")
        XCTAssertEqual(message(caught { try DataLoader.readMatrix(path: zeros) }),
                       "\(zeros): not an IDX file: magic 0x00000000, expected 0x00000803 (images) or 0x00000801 (labels)")
        // Real IDX labels still load without a telling name.
        let labels = try write([0, 0, 8, 1, 0, 0, 0, 3, 4, 5, 6], to: "labels")
        XCTAssertEqual(try DataLoader.readMatrix(path: labels), DataMatrix(rows: 3, columns: 1, values: [4, 5, 6], isIntegral: true))
    }

    func testBinaryFilesGivenAsCSVAreRefused() throws {
        let matrix = DataMatrix(rows: 2, columns: 2, values: [1, 2, 3, 4], isIntegral: true)
        let npy = try write(NumpyFile.encode(matrix), to: "x.npy")
        XCTAssertEqual(caught { try DataLoader.readTable(path: npy, target: "y") } as? DataFileError,
                       .malformed(path: npy, reason: "not a text CSV file (it looks like a NumPy .npy file)"))
        XCTAssertEqual(message(caught { try DataLoader.readTable(path: npy, target: "y") }),
                       "\(npy): not a text CSV file (it looks like a NumPy .npy file)")
        let idx = try write([0, 0, 8, 1, 0, 0, 0, 1, 7], to: "labels.csv")
        XCTAssertEqual(message(caught { try DataLoader.readTable(path: idx, target: "y") }),
                       "\(idx): not a text CSV file (it looks like an MNIST IDX file)")
        // Random binary data with a NUL somewhere in its first 4 KiB, under a CSV name and under none.
        var generator = SeededGenerator(seed: 9)
        for trial in 0..<50 {
            var bytes = (0..<Int.random(in: 1...5000, using: &generator)).map { _ in UInt8.random(in: 1...255, using: &generator) }
            bytes[Int.random(in: 0..<min(bytes.count, FileSniffer.textWindow), using: &generator)] = 0
            if bytes.count >= 2, bytes[0] == 0, bytes[1] == 0 { bytes[0] = 1 }
            if FileSniffer.kind(bytes) != .binary { continue }  // a random magic number
            for name in ["data.csv", "data"] {
                let path = try write(bytes, to: name)
                XCTAssertEqual(caught { try DataLoader.readMatrix(path: path) } as? DataFileError,
                               .malformed(path: path, reason: "not a text CSV file (binary data)"), "trial \(trial)")
                XCTAssertEqual(caught { try DataLoader.readTable(path: path, target: "y") } as? DataFileError,
                               .malformed(path: path, reason: "not a text CSV file (binary data)"), "trial \(trial)")
            }
        }
        // UTF-16 text (as Excel's "Unicode text" writes it) is named as such.
        let utf16: [UInt8] = [0xFF, 0xFE] + "a,b\n1,2\n".utf16.flatMap { unit -> [UInt8] in [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        XCTAssertEqual(caught { try CSVFile.decode(utf16, name: "u.csv", hasHeader: true) } as? DataFileError,
                       .malformed(path: "u.csv", reason: "the file is UTF-16 text; save it as UTF-8 to read it as CSV"))
    }

    // MARK: - 4. Duplicate header names

    func testDuplicateHeaderNamesAreRefused() throws {
        let text = "price,b,c,d,price\n1,2,3,4,5\n"
        XCTAssertEqual(caught { try CSVFile.decode(Array(text.utf8), name: "p.csv", hasHeader: true) } as? DataFileError,
                       .csv(path: "p.csv", line: 1, column: 5, columnName: nil,
                            reason: "the header names 'price' twice (columns 1 and 5); column names must differ"))
        let path = try write(text, to: "p.csv")
        XCTAssertEqual(message(caught { try DataLoader.readTable(path: path, target: "price") }),
                       "\(path), line 1, column 5: the header names 'price' twice (columns 1 and 5); column names must differ")
        // Quoting and spaces do not make a name different; the line is the header's own.
        XCTAssertEqual(message(caught { try CSVFile.decode(Array("\n\na, \"b\" ,\"a\"\n1,2,3\n".utf8), name: "q.csv", hasHeader: true) }),
                       "q.csv, line 3, column 3: the header names 'a' twice (columns 1 and 3); column names must differ")
        XCTAssertEqual(message(caught { try CSVFile.decode(Array("x,,y,\n1,2,3,4\n".utf8), name: "e.csv", hasHeader: true) }),
                       "e.csv, line 1, column 4: the header has two columns without a name (columns 2 and 4); column names must differ")
        // Random headers: refused exactly when a name repeats, naming the first repeat.
        var generator = SeededGenerator(seed: 31)
        for _ in 0..<200 {
            let names = (0..<Int.random(in: 1...12, using: &generator)).map { _ in "c\(Int.random(in: 0...15, using: &generator))" }
            let csv = names.joined(separator: ",") + "\n" + names.map { _ in "1" }.joined(separator: ",") + "\n"
            let firstRepeat = names.indices.first { names[..<$0].contains(names[$0]) }
            do {
                let (header, _) = try CSVFile.decode(Array(csv.utf8), name: "r.csv", hasHeader: true)
                XCTAssertNil(firstRepeat, csv)
                XCTAssertEqual(header, names)
            } catch DataFileError.csv(_, 1, let column, nil, let reason) {
                let repeatAt = try XCTUnwrap(firstRepeat, csv)
                XCTAssertEqual(column, repeatAt + 1)
                let first = try XCTUnwrap(names.firstIndex(of: names[repeatAt]))
                XCTAssertEqual(reason, "the header names '\(names[repeatAt])' twice (columns \(first + 1) and \(repeatAt + 1)); column names must differ")
            }
        }
    }

    // MARK: - 5. CR-only line endings

    func testCROnlyLineEndingsAreLineBreaks() throws {
        let (header, matrix) = try CSVFile.decode(Array("a,b\r1,2\r\r3,4.5\r".utf8), name: "m.csv", hasHeader: true)
        XCTAssertEqual(header, ["a", "b"])
        XCTAssertEqual(matrix, DataMatrix(rows: 2, columns: 2, values: [1, 2, 3, 4.5], isIntegral: false))
        XCTAssertEqual(try CSVFile.decode(Array("1\r2\r3".utf8), name: "m.csv", hasHeader: false).matrix.values, [1, 2, 3])
        // Messages count CR-ended lines.
        XCTAssertEqual(caught { try CSVFile.decode(Array("a,b\r1,2\r\r3,x\r".utf8), name: "m.csv", hasHeader: true) } as? DataFileError,
                       .csv(path: "m.csv", line: 4, column: 2, columnName: "b", reason: "'x' is not a number"))
        // Random matrices read the same with \n, \r\n and \r endings.
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<50 {
            let rows = Int.random(in: 1...30, using: &generator), columns = Int.random(in: 1...6, using: &generator)
            let values = (0..<(rows * columns)).map { _ in Float(Int.random(in: -999...999, using: &generator)) / 8 }
            let text = CSVFile.encode(header: (0..<columns).map { "c\($0)" },
                                      matrix: DataMatrix(rows: rows, columns: columns, values: values, isIntegral: false))
            let lf = try CSVFile.decode(Array(text.utf8), name: "r.csv", hasHeader: true)
            for ending in ["\r\n", "\r"] {
                let other = try CSVFile.decode(Array(text.replacingOccurrences(of: "\n", with: ending).utf8), name: "r.csv", hasHeader: true)
                XCTAssertEqual(other.header, lf.header)
                XCTAssertEqual(other.matrix, lf.matrix)
                XCTAssertEqual(other.matrix.values, values)
            }
        }
    }
}
