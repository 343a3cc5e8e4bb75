import Foundation
import XCTest
@testable import MLPKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The .npy fixtures written by Fixtures/data/make_data_fixtures.py (NumPy), found relative to this file.
private func fixturePath(_ name: String) -> String {
    let here = URL(fileURLWithPath: #filePath)
    return here.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/data/\(name)").path
}

private func fixtureBytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixturePath(name))))
}

/// Asserts that `body` throws exactly `expected`.
private func assertThrows<T>(
    _ expected: DataFileError, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) {
    do {
        _ = try body()
        XCTFail("expected \(expected), but nothing was thrown", file: file, line: line)
    } catch let error as DataFileError {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

/// Returns the `DataFileError` thrown by `body`, failing the test when there is none.
private func thrownError<T>(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) -> DataFileError? {
    do {
        _ = try body()
        XCTFail("expected a DataFileError, but nothing was thrown", file: file, line: line)
    } catch let error as DataFileError {
        return error
    } catch {
        XCTFail("expected a DataFileError, got \(error)", file: file, line: line)
    }
    return nil
}

/// A .npy with a hand-written header dictionary followed by `data`.
private func npy(header: String, data: [UInt8], version: UInt8 = 1) -> [UInt8] {
    var dict = header
    let preamble = version == 1 ? 10 : 12
    dict += String(repeating: " ", count: (64 - (preamble + dict.utf8.count + 1) % 64) % 64) + "\n"
    let length = dict.utf8.count
    var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
    if version == 1 {
        out += [UInt8(length & 0xFF), UInt8(length >> 8)]
    } else {
        out += [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF), 0, 0]
    }
    return out + Array(dict.utf8) + data
}

private func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

final class ReaderTests: FileTestCase {
    // MARK: - .npy fixtures made by NumPy

    func testNpyFloat32TwoDimensional() throws {
        let matrix = try NumpyFile.read(path: fixturePath("f4_2d.npy"))
        XCTAssertEqual(matrix.rows, 2)
        XCTAssertEqual(matrix.columns, 3)
        XCTAssertEqual(bits(matrix.values), bits([1.5, -2.25, 0.1, 3.0e-3, -0.0, 16777216.0]))
        XCTAssertFalse(matrix.isIntegral)
    }

    func testNpyFloat64IsRoundedToFloat32() throws {
        let matrix = try NumpyFile.read(path: fixturePath("f8_2d.npy"))
        XCTAssertEqual(matrix.rows, 2)
        XCTAssertEqual(matrix.columns, 3)
        // np.array(F64).astype(np.float32).view(np.uint32)
        XCTAssertEqual(bits(matrix.values), [1_036_831_949, 3_223_322_624, 228_737_632, 1_206_984_805, 2_139_081_118, 3_235_905_536])
        XCTAssertFalse(matrix.isIntegral)
    }

    func testNpyInt32OneDimensionalIsOneColumn() throws {
        let matrix = try NumpyFile.read(path: fixturePath("i4_1d.npy"))
        XCTAssertEqual(matrix.rows, 5)
        XCTAssertEqual(matrix.columns, 1)
        XCTAssertEqual(matrix.values, [0, -1, 2, Float(Int32.max), Float(Int32.min)])
        XCTAssertTrue(matrix.isIntegral)
    }

    func testNpyInt64TwoDimensional() throws {
        let matrix = try NumpyFile.read(path: fixturePath("i8_2d.npy"))
        XCTAssertEqual(matrix.rows, 3)
        XCTAssertEqual(matrix.columns, 2)
        XCTAssertEqual(matrix.values, [0, 9, -3, 16_777_216, 7, -9_007_199_254_740_992])
        XCTAssertTrue(matrix.isIntegral)
    }

    func testNpyUInt8ThreeDimensionalIsFlattened() throws {
        let matrix = try NumpyFile.read(path: fixturePath("u1_3d.npy"))
        XCTAssertEqual(matrix.rows, 2)
        XCTAssertEqual(matrix.columns, 12)
        XCTAssertEqual(matrix.values, (0..<24).map { Float(($0 * 10) % 256) })
        XCTAssertTrue(matrix.isIntegral)
    }

    func testNpyUInt8DescrSpellings() throws {
        for descr in ["|u1", "<u1", "u1"] {
            let matrix = try NumpyFile.decode(
                npy(header: "{'descr': '\(descr)', 'fortran_order': False, 'shape': (3,), }", data: [0, 7, 255]), name: "u.npy")
            XCTAssertEqual(matrix.values, [0, 7, 255], descr)
        }
    }

    func testNpyIntegralFloatValues() throws {
        let matrix = try NumpyFile.read(path: fixturePath("f4_integral.npy"))
        XCTAssertEqual(matrix.values, [1, 2, -3, 4])
        XCTAssertTrue(matrix.isIntegral)
    }

    func testNpyFormatVersions2And3() throws {
        for name in ["f4_v2.npy", "f4_v3.npy"] {
            let bytes = try fixtureBytes(name)
            XCTAssertEqual(bytes[6], name == "f4_v2.npy" ? 2 : 3)
            let matrix = try NumpyFile.decode(bytes, name: name)
            XCTAssertEqual(bits(matrix.values), bits([1.5, -2.25, 0.1, 3.0e-3, -0.0, 16777216.0]), name)
        }
    }

    func testNpyFortranOrderRejected() {
        let path = fixturePath("f4_fortran.npy")
        assertThrows(.fortranOrder(path: path)) { try NumpyFile.read(path: path) }
    }

    func testNpyBigEndianRejected() {
        let path = fixturePath("f4_bigendian.npy")
        let error = thrownError { try NumpyFile.read(path: path) }
        guard case let .unsupportedDType(errorPath, dtype, _)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(errorPath, path)
        XCTAssertEqual(dtype, ">f4")
        XCTAssertTrue(error?.description.contains("'>f4'") ?? false)
    }

    func testNpyOtherDTypesRejected() throws {
        let error = thrownError { try NumpyFile.decode(try fixtureBytes("f2_2d.npy"), name: "half.npy") }
        guard case let .unsupportedDType(_, dtype, _)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(dtype, "<f2")
        let structured = npy(header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0])
        guard case .unsupportedDType(_, "structured dtype", _)? = thrownError({ try NumpyFile.decode(structured, name: "s.npy") }) else {
            return XCTFail("structured dtype accepted")
        }
    }

    func testNpyScalarRejected() {
        let error = thrownError { try NumpyFile.read(path: fixturePath("f4_scalar.npy")) }
        guard case let .unsupportedShape(_, shape, _)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(shape, "()")
    }

    func testNpyNaNRejectedWithPosition() {
        let path = fixturePath("f4_nan.npy")
        assertThrows(.nonFinite(path: path, row: 0, column: 1, value: "nan")) { try NumpyFile.read(path: path) }
        let infinite = NumpyFile.encode(DataMatrix(rows: 2, columns: 2, values: [1, 2, 3, -.infinity], isIntegral: false))
        assertThrows(.nonFinite(path: "inf.npy", row: 1, column: 1, value: "-inf")) { try NumpyFile.decode(infinite, name: "inf.npy") }
    }

    func testNpyFloat64BeyondFloat32RangeRejected() {
        var data: [UInt8] = []
        for value in [1.0, 1e300] { withUnsafeBytes(of: value.bitPattern.littleEndian) { data += $0 } }
        let bytes = npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data: data)
        assertThrows(.valueOutOfRange(path: "big.npy", row: 1, column: 0, value: "1e+300")) { try NumpyFile.decode(bytes, name: "big.npy") }
    }

    func testNpyTruncatedDataRejected() throws {
        let bytes = try fixtureBytes("f4_2d.npy")
        assertThrows(.sizeMismatch(path: "t.npy", expectedBytes: 24, actualBytes: 23)) {
            try NumpyFile.decode(Array(bytes.dropLast()), name: "t.npy")
        }
        let error = thrownError { try NumpyFile.decode(Array(bytes.dropLast(5)), name: "t.npy") }
        XCTAssertTrue(error?.description.contains("truncated") ?? false, String(describing: error))
    }

    func testNpyTrailingBytesRejected() throws {
        let bytes = try fixtureBytes("f4_2d.npy") + [1, 2, 3]
        assertThrows(.sizeMismatch(path: "t.npy", expectedBytes: 24, actualBytes: 27)) { try NumpyFile.decode(bytes, name: "t.npy") }
        let error = thrownError { try NumpyFile.decode(bytes, name: "t.npy") }
        XCTAssertTrue(error?.description.contains("3 trailing bytes") ?? false, String(describing: error))
    }

    func testNpyHugeShapeRejectedWithoutAllocating() {
        // Claims 400 GB of data but holds 4 bytes: must be a size mismatch, not an allocation.
        let claimsTooMuch = npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }", data: [0, 0, 0, 0])
        assertThrows(.sizeMismatch(path: "h.npy", expectedBytes: 400_000_000_000, actualBytes: 4)) {
            try NumpyFile.decode(claimsTooMuch, name: "h.npy")
        }
        // Dimensions whose product overflows Int.
        let overflowing = npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", data: [])
        guard case .unsupportedShape? = thrownError({ try NumpyFile.decode(overflowing, name: "h.npy") }) else {
            return XCTFail("overflowing shape accepted")
        }
        // Element count fits, byte count (x8) does not.
        let byteOverflow = npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 1152921504606846976), }", data: [])
        guard case .unsupportedShape? = thrownError({ try NumpyFile.decode(byteOverflow, name: "h.npy") }) else {
            return XCTFail("overflowing byte count accepted")
        }
        // A dimension too large for Int at all.
        let hugeDimension = npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", data: [])
        guard case .unsupportedShape? = thrownError({ try NumpyFile.decode(hugeDimension, name: "h.npy") }) else {
            return XCTFail("huge dimension accepted")
        }
    }

    func testNpyMalformedHeadersRejected() {
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("not npy", Array("hello, world".utf8)),
            ("npz", [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("version 4", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 4, 0, 0, 0, 0, 0]),
            ("header past end", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 200, 0, 0x7B]),
            ("no shape", npy(header: "{'descr': '<f4', 'fortran_order': False, }", data: [])),
            ("no descr", npy(header: "{'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0])),
            ("bad literal", npy(header: "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", data: [0, 0, 0, 0])),
            ("negative dim", npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", data: [])),
            ("unterminated", npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,", data: [])),
            ("garbage after", npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", data: [0, 0, 0, 0])),
            ("deep nesting", npy(header: String(repeating: "(", count: 100), data: [])),
        ]
        for (label, bytes) in cases {
            let error = thrownError { try NumpyFile.decode(bytes, name: "m.npy") }
            guard case let .malformed(path, _)? = error else {
                XCTFail("\(label): got \(String(describing: error))")
                continue
            }
            XCTAssertEqual(path, "m.npy", label)
        }
        let npz = thrownError { try NumpyFile.decode([0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0], name: "a.npz") }
        XCTAssertTrue(npz?.description.contains(".npz") ?? false)
    }

    func testNpyEmptyArrayRejected() {
        let bytes = npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", data: [])
        guard case .empty? = thrownError({ try NumpyFile.decode(bytes, name: "e.npy") }) else { return XCTFail("empty array accepted") }
    }

    func testNpyHeaderVariants() throws {
        // Double quotes, Python 2 long suffixes, extra whitespace, key order, version 2 preamble.
        let bytes = npy(header: "{ \"shape\" : ( 2L , 1L ) , \"fortran_order\" : False , \"descr\" : \"<i4\" }",
                        data: [5, 0, 0, 0, 0xFB, 0xFF, 0xFF, 0xFF], version: 2)
        let matrix = try NumpyFile.decode(bytes, name: "v.npy")
        XCTAssertEqual(matrix, DataMatrix(rows: 2, columns: 1, values: [5, -5], isIntegral: true))
    }

    func testNpyEncodeMatchesNumPyBytes() throws {
        let matrix = DataMatrix(rows: 2, columns: 3, values: [1.5, -2.25, 0.1, 3.0e-3, -0.0, 16777216.0], isIntegral: false)
        XCTAssertEqual(NumpyFile.encode(matrix), try fixtureBytes("f4_2d.npy"))
    }

    func testNpyEncodeDecodeRoundTrip() throws {
        var generator = SeededGenerator(seed: 42)
        for (rows, columns) in [(1, 1), (7, 3), (33, 17), (100, 1)] {
            var values: [Float] = []
            while values.count < rows * columns {
                let value = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))
                if value.isFinite { values.append(value) }
            }
            let matrix = DataMatrix(rows: rows, columns: columns, values: values, isIntegral: false)
            let bytes = NumpyFile.encode(matrix)
            XCTAssertEqual((bytes.count - values.count * 4) % 64, 0, "header is 64-byte aligned")
            let decoded = try NumpyFile.decode(bytes, name: "r.npy")
            XCTAssertEqual(decoded.rows, rows)
            XCTAssertEqual(decoded.columns, columns)
            XCTAssertEqual(bits(decoded.values), bits(values))
            let flat = try NumpyFile.decode(NumpyFile.encode(matrix, flat: true), name: "r.npy")
            XCTAssertEqual(flat.rows, rows * columns)
            XCTAssertEqual(flat.columns, 1)
            XCTAssertEqual(bits(flat.values), bits(values))
        }
        let path = try write(NumpyFile.encode(DataMatrix(rows: 1, columns: 2, values: [3, 4], isIntegral: true)), to: "w.npy")
        XCTAssertEqual(try NumpyFile.read(path: path), DataMatrix(rows: 1, columns: 2, values: [3, 4], isIntegral: true))
    }

    func testNpyEncodeInt64() throws {
        let values: [Int64] = [0, 3, -1, 9, 2, 1]
        let matrix = try NumpyFile.decode(NumpyFile.encodeInt64(values, rows: 3, columns: 2), name: "i.npy")
        XCTAssertEqual(matrix, DataMatrix(rows: 3, columns: 2, values: [0, 3, -1, 9, 2, 1], isIntegral: true))
        let flatBytes = NumpyFile.encodeInt64([4, 5, 6], rows: 3, columns: 1, flat: true)
        XCTAssertTrue(String(decoding: flatBytes.prefix(128), as: UTF8.self).contains("'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"))
        let flat = try NumpyFile.decode(flatBytes, name: "i.npy")
        XCTAssertEqual(flat, DataMatrix(rows: 3, columns: 1, values: [4, 5, 6], isIntegral: true))
    }

    func testReadMissingFileAndDirectory() {
        let missing = directory.appendingPathComponent("nope.npy").path
        let error = thrownError { try NumpyFile.read(path: missing) }
        guard case let .cannotOpen(path, _)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(path, missing)
        XCTAssertTrue(error?.description.contains("nope.npy") ?? false)
        let directory = directory.path
        assertThrows(.cannotOpen(path: directory, reason: "is a directory")) { try CSVFile.read(path: directory, hasHeader: false) }
    }

    // MARK: - CSV

    private func csv(_ text: String, header: Bool = false) throws -> (header: [String]?, matrix: DataMatrix) {
        try CSVFile.decode(Array(text.utf8), name: "d.csv", hasHeader: header)
    }

    func testCSVWithHeader() throws {
        let (header, matrix) = try csv("a,b,c\n1,2.5,-3\n4e2,0.125,6\n", header: true)
        XCTAssertEqual(header, ["a", "b", "c"])
        XCTAssertEqual(matrix, DataMatrix(rows: 2, columns: 3, values: [1, 2.5, -3, 400, 0.125, 6], isIntegral: false))
    }

    func testCSVWithoutHeader() throws {
        let (header, matrix) = try csv("1,2\n3,4", header: false)
        XCTAssertNil(header)
        XCTAssertEqual(matrix, DataMatrix(rows: 2, columns: 2, values: [1, 2, 3, 4], isIntegral: true))
    }

    func testCSVLineEndingsEmptyLinesAndSpaces() throws {
        let (header, matrix) = try csv("\u{FEFF}\r\nx , \"y z\",\"q\"\"\"\r\n\r\n 1 ,\t2,3\r\n  \r\n\r\n-4, +5 ,.5\r\n\r\n\n", header: true)
        XCTAssertEqual(header, ["x", "y z", "q\""])
        XCTAssertEqual(matrix, DataMatrix(rows: 2, columns: 3, values: [1, 2, 3, -4, 5, 0.5], isIntegral: false))
        // CRLF without header, no trailing newline.
        XCTAssertEqual(try csv("1\r\n2\r\n3").matrix, DataMatrix(rows: 3, columns: 1, values: [1, 2, 3], isIntegral: true))
    }

    func testCSVQuotedNumbersAccepted() throws {
        XCTAssertEqual(try csv("\"1.5\",2\n").matrix.values, [1.5, 2])
    }

    func testCSVNonNumericCellNamesLineAndColumn() {
        assertThrows(.csv(path: "d.csv", line: 4, column: 2, columnName: "b", reason: "'abc' is not a number")) {
            try csv("a,b,c\n1,2,3\n\n4,abc,6\n", header: true)
        }
        let error = thrownError { try csv("a,b,c\n1,2,3\n\n4,abc,6\n", header: true) }
        XCTAssertEqual(error?.description, "d.csv, line 4, column 2 ('b'): 'abc' is not a number")
        assertThrows(.csv(path: "d.csv", line: 2, column: 3, columnName: nil, reason: "'1.5x' is not a number")) {
            try csv("1,2,3\n4,5,1.5x\n")
        }
        assertThrows(.csv(path: "d.csv", line: 1, column: 1, columnName: nil, reason: "'1 2' is not a number")) { try csv("1 2,3\n") }
        // with no commas at all, spaces separate the cells (SeparatorTests)
        XCTAssertEqual(try csv("1 2\n").matrix.values, [1, 2])
        assertThrows(.csv(path: "d.csv", line: 1, column: 2, columnName: nil, reason: "'1e' is not a number")) { try csv("1,1e\n") }
        assertThrows(.csv(path: "d.csv", line: 1, column: 1, columnName: nil, reason: "'-' is not a number")) { try csv("-\n") }
    }

    func testCSVShortRow() {
        let error = thrownError { try csv("a,b,c\n1,2,3\n4,5\n", header: true) }
        guard case let .csv(_, line, column, name, _)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(line, 3)
        XCTAssertEqual(column, 3)
        XCTAssertEqual(name, "c")
        XCTAssertTrue(error?.description.contains("row has 2 cells but 3 are expected") ?? false, String(describing: error))
        guard case .csv(_, 2, 2, nil, _)? = thrownError({ try csv("1,2\n3\n") }) else { return XCTFail("short row without header") }
    }

    func testCSVLongRow() {
        let error = thrownError { try csv("a,b\n1,2\n\r\n3,4,5\n", header: true) }
        guard case let .csv(_, line, column, name, reason)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(line, 4)
        XCTAssertEqual(column, 3)
        XCTAssertNil(name)
        XCTAssertTrue(reason.contains("more than 2 cells"), reason)
        guard case .csv(_, 2, 3, nil, _)? = thrownError({ try csv("1,2\n3,4,5\n") }) else { return XCTFail("long row without header") }
    }

    func testCSVNaNAndInfinityRejected() {
        for (cell, word) in [("nan", "NaN"), ("NaN", "NaN"), ("-nan", "NaN"), ("inf", "infinity"), ("-Infinity", "infinity"), ("INF", "infinity")] {
            let error = thrownError { try csv("x,y\n1,2\n3,\(cell)\n", header: true) }
            // NaN is a missing value (which `train --fill-missing` fills); infinity is not
            let parts: (Int, Int, String?, String)
            switch error {
            case let .missingValue(_, line, column, name, reason)? where word == "NaN": parts = (line, column, name, reason)
            case let .csv(_, line, column, name, reason)? where word == "infinity": parts = (line, column, name, reason)
            default:
                XCTFail("\(cell): got \(String(describing: error))")
                continue
            }
            let (line, column, name, reason) = parts
            XCTAssertEqual(line, 3, cell)
            XCTAssertEqual(column, 2, cell)
            XCTAssertEqual(name, "y", cell)
            XCTAssertTrue(reason.contains(word), "\(cell): \(reason)")
        }
        let range = thrownError { try csv("1e39\n") }
        XCTAssertTrue(range?.description.contains("beyond the Float32 range") ?? false, String(describing: range))
        let fastRange = thrownError { try csv("1,99999999999e30\n") }
        guard case .csv(_, 1, 2, nil, _)? = fastRange else { return XCTFail("got \(String(describing: fastRange))") }
    }

    func testCSVEmptyCell() {
        assertThrows(.missingValue(path: "d.csv", line: 2, column: 2, columnName: "b", reason: "empty cell")) { try csv("a,b,c\n1,,3\n", header: true) }
        assertThrows(.missingValue(path: "d.csv", line: 1, column: 3, columnName: nil, reason: "empty cell")) { try csv("1,2,\n") }
        assertThrows(.missingValue(path: "d.csv", line: 1, column: 1, columnName: nil, reason: "empty cell")) { try csv(" ,2\n") }
        assertThrows(.missingValue(path: "d.csv", line: 1, column: 2, columnName: nil, reason: "empty cell")) { try csv("1,\"\"\n") }
    }

    func testCSVHeaderOnlyAndEmptyFilesRejected() {
        assertThrows(.empty(path: "d.csv", reason: "CSV file has a header but no data rows")) { try csv("a,b\n\n\r\n", header: true) }
        assertThrows(.empty(path: "d.csv", reason: "CSV file has no data rows")) { try csv("\n\n", header: false) }
        assertThrows(.empty(path: "d.csv", reason: "CSV file is empty")) { try csv("", header: true) }
    }

    func testCSVHeaderQuoteErrors() {
        guard case .csv(_, 1, 2, nil, _)? = thrownError({ try csv("a,\"b\n1,2\n", header: true) }) else { return XCTFail("unterminated") }
        guard case .csv(_, 1, 1, nil, _)? = thrownError({ try csv("\"a\"x,b\n1,2\n", header: true) }) else { return XCTFail("after quote") }
    }

    func testCSVIsIntegral() throws {
        XCTAssertTrue(try csv("1,2\n-3,4e3\n0.0,-0\n").matrix.isIntegral)
        XCTAssertFalse(try csv("1,2\n-3,4.5\n").matrix.isIntegral)
    }

    func testCSVReadFromFile() throws {
        let path = try write(Array("p,q\n1,2\n3,4\n".utf8), to: "f.csv")
        let (header, matrix) = try CSVFile.read(path: path, hasHeader: true)
        XCTAssertEqual(header, ["p", "q"])
        XCTAssertEqual(matrix.values, [1, 2, 3, 4])
        let bad = try write(Array("p,q\nx,2\n".utf8), to: "g.csv")
        assertThrows(.csv(path: bad, line: 2, column: 1, columnName: "p", reason: "'x' is not a number")) {
            try CSVFile.read(path: bad, hasHeader: true)
        }
    }

    func testCSVEncodeFormat() throws {
        let matrix = DataMatrix(rows: 2, columns: 3, values: [3, -0.0, 0.1, 1e-5, 16777216, -2.5], isIntegral: false)
        let text = CSVFile.encode(header: ["a", "b,c", " d"], matrix: matrix)
        XCTAssertEqual(text, "a,\"b,c\",\" d\"\n3,-0,0.1\n1e-05,16777216,-2.5\n")
        let (header, decoded) = try CSVFile.decode(Array(text.utf8), name: "e.csv", hasHeader: true)
        XCTAssertEqual(header, ["a", "b,c", " d"])
        XCTAssertEqual(bits(decoded.values), bits(matrix.values))
        XCTAssertEqual(CSVFile.encode(header: nil, matrix: DataMatrix(rows: 2, columns: 1, values: [1, 2], isIntegral: true)), "1\n2\n")
    }

    func testCSVEncodeDecodeRoundTripIsBitExact() throws {
        var generator = SeededGenerator(seed: 7)
        let rows = 500, columns = 8
        var values: [Float] = []
        while values.count < rows * columns {
            let value: Float
            switch values.count % 4 {
            case 0: value = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))  // any finite float
            case 1: value = Float.random(in: -1...1, using: &generator)
            case 2: value = Float(Int.random(in: -1_000_000...1_000_000, using: &generator))
            default: value = Float.random(in: -1e6...1e6, using: &generator) * Float.random(in: 1e-30...1e-20, using: &generator)
            }
            if value.isFinite { values.append(value) }
        }
        values += [.leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, -0.0, 9.2e18, 1e19]
        values += [Float](repeating: 0, count: columns - values.count % columns)
        let matrix = DataMatrix(rows: values.count / columns, columns: columns, values: values, isIntegral: false)
        let text = CSVFile.encode(header: (0..<columns).map { "c\($0)" }, matrix: matrix)
        let decoded = try CSVFile.decode(Array(text.utf8), name: "r.csv", hasHeader: true)
        XCTAssertEqual(decoded.matrix.rows, matrix.rows)
        XCTAssertEqual(decoded.matrix.columns, columns)
        XCTAssertEqual(bits(decoded.matrix.values), bits(values))
    }

    /// The fast decimal path must agree bit for bit with strtof wherever it answers.
    func testCSVFastPathMatchesStrtof() {
        var generator = SeededGenerator(seed: 2024)
        var checked = 0, fast = 0
        func check(_ text: String) {
            let bytes = Array(text.utf8)
            let reference = bytes.withUnsafeBufferPointer { CSVFile.strtofExact($0.baseAddress!, from: 0, to: bytes.count) }
            let result = bytes.withUnsafeBufferPointer { buffer in
                CSVFile.powersOfTen.withUnsafeBufferPointer { CSVFile.parseDecimal(buffer.baseAddress!, from: 0, to: bytes.count, powers: $0) }
            }
            checked += 1
            guard let (value, stop) = result else { return }
            fast += 1
            XCTAssertEqual(stop, bytes.count, text)
            XCTAssertEqual(value.bitPattern, reference?.bitPattern, text)
        }
        for _ in 0..<100_000 {
            // Random digit strings with a random point and exponent.
            let digitCount = Int.random(in: 1...19, using: &generator)
            var digits = (0..<digitCount).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            if Bool.random(using: &generator) {
                digits.insert(".", at: digits.index(digits.startIndex, offsetBy: Int.random(in: 0...digitCount, using: &generator)))
            }
            let sign = ["", "-", "+"][Int.random(in: 0...2, using: &generator)]
            let exponent = Bool.random(using: &generator) ? "e\(Int.random(in: -25...25, using: &generator))" : ""
            check(sign + digits + exponent)
            // Shortest float forms, 17-digit double forms, and 9-digit decimals.
            let float = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))
            if float.isFinite { check(float.description) }
            check(Double.random(in: -100...100, using: &generator).description)
            check(String(format: "%.9f", Double.random(in: 0...1, using: &generator)))
        }
        // Decimals at and next to halfway points between adjacent floats (exact midpoints need strtof).
        for _ in 0..<20_000 {
            let float = Float.random(in: 1...1000, using: &generator)
            let midpoint = (Double(float) + Double(float.nextUp)) / 2
            check(String(format: "%.17g", midpoint))
            check(String(format: "%.17g", midpoint.nextUp))
            check(String(format: "%.17g", midpoint.nextDown))
            check(String(format: "%.12g", midpoint))
        }
        XCTAssertGreaterThan(fast, checked / 2, "the fast path should handle most inputs")
    }

    // MARK: - IDX

    private func idx(magic: [UInt8], dimensions: [UInt32], data: [UInt8]) -> [UInt8] {
        var out = magic
        for dimension in dimensions {
            out += [UInt8(dimension >> 24), UInt8((dimension >> 16) & 0xFF), UInt8((dimension >> 8) & 0xFF), UInt8(dimension & 0xFF)]
        }
        return out + data
    }

    func testIDXImages() throws {
        let pixels: [UInt8] = [0, 255, 128, 1, 2, 3, 10, 20, 30, 40, 50, 60]
        let path = try write(idx(magic: [0, 0, 8, 3], dimensions: [2, 2, 3], data: pixels), to: "images-idx3-ubyte")
        let matrix = try IDXFile.read(path: path)
        XCTAssertEqual(matrix.rows, 2)
        XCTAssertEqual(matrix.columns, 6)
        XCTAssertEqual(matrix.values, pixels.map { Float($0) / 255 })
        XCTAssertEqual(matrix.values[1], 1)
        XCTAssertFalse(matrix.isIntegral)
    }

    func testIDXLabels() throws {
        let path = try write(idx(magic: [0, 0, 8, 1], dimensions: [4], data: [7, 2, 1, 0]), to: "labels-idx1-ubyte")
        XCTAssertEqual(try IDXFile.read(path: path), DataMatrix(rows: 4, columns: 1, values: [7, 2, 1, 0], isIntegral: true))
    }

    func testIDXWrongMagic() {
        for magic: [UInt8] in [[0x12, 0x34, 8, 3], [0, 0, 8, 2], [0, 0, 8, 4]] {
            let error = thrownError { try IDXFile.decode(idx(magic: magic, dimensions: [1, 1], data: [0]), name: "x.idx") }
            guard case .malformed("x.idx", _)? = error else {
                XCTFail("\(magic): got \(String(describing: error))")
                continue
            }
            XCTAssertTrue(error?.description.contains("0x00000803") ?? false)
        }
        let gzip = thrownError { try IDXFile.decode([0x1F, 0x8B, 8, 0, 0, 0], name: "t.gz") }
        XCTAssertTrue(gzip?.description.contains("gzip") ?? false, String(describing: gzip))
    }

    func testIDXWrongElementType() {
        let error = thrownError { try IDXFile.decode(idx(magic: [0, 0, 0x0D, 1], dimensions: [1], data: [0, 0, 0, 0]), name: "f.idx") }
        guard case let .unsupportedDType("f.idx", dtype, _)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertTrue(dtype.hasPrefix("0x0D"), dtype)
    }

    func testIDXTruncatedAndTrailing() {
        let full = idx(magic: [0, 0, 8, 3], dimensions: [2, 2, 2], data: [UInt8](repeating: 9, count: 8))
        assertThrows(.sizeMismatch(path: "i.idx", expectedBytes: 8, actualBytes: 7)) { try IDXFile.decode(Array(full.dropLast()), name: "i.idx") }
        assertThrows(.sizeMismatch(path: "i.idx", expectedBytes: 8, actualBytes: 9)) { try IDXFile.decode(full + [0], name: "i.idx") }
        guard case .malformed? = thrownError({ try IDXFile.decode(Array(full.prefix(9)), name: "i.idx") }) else {
            return XCTFail("truncated header accepted")
        }
        guard case .malformed? = thrownError({ try IDXFile.decode([0, 0], name: "i.idx") }) else { return XCTFail("tiny file accepted") }
        // A header claiming ~2^96 bytes is rejected before allocating.
        let huge = idx(magic: [0, 0, 8, 3], dimensions: [.max, .max, .max], data: [1])
        guard case .unsupportedShape? = thrownError({ try IDXFile.decode(huge, name: "i.idx") }) else { return XCTFail("huge accepted") }
        let large = idx(magic: [0, 0, 8, 1], dimensions: [.max], data: [1])
        assertThrows(.sizeMismatch(path: "i.idx", expectedBytes: Int(UInt32.max), actualBytes: 1)) { try IDXFile.decode(large, name: "i.idx") }
        guard case .empty? = thrownError({ try IDXFile.decode(idx(magic: [0, 0, 8, 1], dimensions: [0], data: []), name: "i.idx") }) else {
            return XCTFail("empty accepted")
        }
    }

    // MARK: - Messages

    func testErrorDescriptionsNameTheFile() {
        let errors: [DataFileError] = [
            .cannotOpen(path: "f.bin", reason: "No such file or directory"),
            .malformed(path: "f.bin", reason: "bad"),
            .unsupportedDType(path: "f.bin", dtype: ">f4", supported: "<f4"),
            .fortranOrder(path: "f.bin"),
            .unsupportedShape(path: "f.bin", shape: "()", reason: "scalar"),
            .sizeMismatch(path: "f.bin", expectedBytes: 8, actualBytes: 4),
            .empty(path: "f.bin", reason: "no rows"),
            .nonFinite(path: "f.bin", row: 1, column: 2, value: "nan"),
            .valueOutOfRange(path: "f.bin", row: 1, column: 2, value: "1e+300"),
            .csv(path: "f.bin", line: 3, column: 4, columnName: "age", reason: "'x' is not a number"),
            .missingValue(path: "f.bin", line: 3, column: 4, columnName: "age", reason: "empty cell"),
        ]
        for error in errors {
            XCTAssertTrue(error.description.contains("f.bin"), error.description)
            XCTAssertFalse(error.description.contains("\n"), error.description)
        }
        XCTAssertEqual(errors.last?.description, "f.bin, line 3, column 4 ('age'): empty cell")
    }
}
