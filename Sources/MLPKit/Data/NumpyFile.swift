/// Reads and writes NumPy `.npy` files.
public enum NumpyFile {
    /// The dtypes ``decode(_:name:)`` accepts, as listed in error messages.
    static let supportedDTypes = "<f4, <f8, <i4, <i8, |u1; convert with e.g. np.save(path, a.astype('<f4'))"
    /// `\x93NUMPY`.
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// The element types the reader understands.
    enum ElementKind {
        case float32, float64, int32, int64, uint8

        init?(descr: String) {
            switch descr {
            case "<f4": self = .float32
            case "<f8": self = .float64
            case "<i4": self = .int32
            case "<i8": self = .int64
            case "|u1", "<u1", "u1": self = .uint8
            default: return nil
            }
        }

        var size: Int {
            switch self {
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            case .uint8: return 1
            }
        }
    }

    /// Reads a .npy file (format versions 1.0, 2.0, 3.0) into a matrix.
    ///
    /// C order only. dtypes `<f4`, `<f8`, `<i4`, `<i8`, `|u1` (also `<u1`, `u1`). Shape `(n,)` gives n×1,
    /// `(n, m)` gives n×m, and `(n, a, b, ...)` gives n × (a·b·...).
    ///
    /// - Parameter path: The file to read.
    /// - Returns: The array as a row-major Float32 matrix.
    /// - Throws: `DataFileError` when the file cannot be read or is not a supported, well-formed .npy
    ///   (see ``decode(_:name:)``).
    public static func read(path: String) throws -> DataMatrix {
        try decode(DataFileIO.readAll(path: path), name: DataFileIO.name(path))
    }

    /// Decodes the bytes of a .npy file into a matrix.
    ///
    /// The header's data size is checked against the bytes present before any value storage is allocated,
    /// and every product of shape dimensions is checked for overflow.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - name: The file's name, used in error messages.
    /// - Returns: The array as a row-major Float32 matrix; `isIntegral` is true for integer dtypes and for
    ///   float dtypes whose values are all integral.
    /// - Throws: `DataFileError.malformed` (bad magic, version or header), `.unsupportedDType` (big-endian or other
    ///   dtypes), `.fortranOrder`, `.unsupportedShape` (shape `()` or too large), `.sizeMismatch` (truncated data
    ///   or trailing bytes), `.empty` (a zero-sized array), `.nonFinite` (NaN or infinity) or `.valueOutOfRange`
    ///   (a float64 beyond Float32's range).
    public static func decode(_ bytes: [UInt8], name: String) throws -> DataMatrix {
        guard bytes.count >= 10, bytes[0..<6].elementsEqual(magic) else {
            if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4B, bytes[2] == 0x03, bytes[3] == 0x04 {
                throw DataFileError.malformed(
                    path: name,
                    reason: "this is a .npz (zip) archive, not a .npy file; save one array with np.save(path, np.load(npz)['name'])")
            }
            if FileSniffer.kind(bytes) == .gzip { throw FileSniffer.gzipError(name) }
            if !bytes.isEmpty, zip(bytes, magic).allSatisfy({ $0 == $1 }) {
                throw DataFileError.malformed(
                    path: name, reason: "file ends inside the .npy preamble (\(bytes.count) bytes); file truncated?")
            }
            throw DataFileError.malformed(path: name, reason: "not a .npy file (missing the \\x93NUMPY magic string)")
        }
        let major = bytes[6], minor = bytes[7]
        let headerStart: Int
        let headerLength: Int
        switch (major, minor) {
        case (1, 0):
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case (2, 0), (3, 0):
            guard bytes.count >= 12 else {
                throw DataFileError.malformed(path: name, reason: "file ends inside the .npy preamble")
            }
            headerStart = 12
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        default:
            throw DataFileError.malformed(
                path: name, reason: "unsupported .npy format version \(major).\(minor) (supported: 1.0, 2.0, 3.0)")
        }
        let dataStart = headerStart + headerLength
        guard dataStart <= bytes.count else {
            throw DataFileError.malformed(
                path: name,
                reason: "header length \(headerLength) runs past the end of the file (\(bytes.count) bytes); file truncated?")
        }

        var parser = PythonLiteralParser(bytes: bytes, start: headerStart, end: dataStart, name: name)
        let header = try parser.parseHeader()

        guard let kind = ElementKind(descr: header.descr) else {
            throw DataFileError.unsupportedDType(path: name, dtype: header.descr, supported: supportedDTypes)
        }
        if header.fortranOrder {
            throw DataFileError.fortranOrder(path: name)
        }
        let shapeText = describeShape(header.shape)
        guard let rows = header.shape.first else {
            throw DataFileError.unsupportedShape(
                path: name, shape: shapeText, reason: "a 0-d scalar is not a matrix; save an array of shape (n,) or (n, m)")
        }
        if header.shape.contains(0) {
            throw DataFileError.empty(path: name, reason: "array of shape \(shapeText) has no elements")
        }
        var columns = 1
        for dimension in header.shape.dropFirst() {
            let (product, overflow) = columns.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw tooLarge(name, shapeText) }
            columns = product
        }
        let (count, countOverflow) = rows.multipliedReportingOverflow(by: columns)
        let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: kind.size)
        guard !countOverflow, !byteOverflow else { throw tooLarge(name, shapeText) }
        let present = bytes.count - dataStart
        guard present == byteCount else {
            throw DataFileError.sizeMismatch(path: name, expectedBytes: byteCount, actualBytes: present)
        }

        var badIndex = -1
        var badText = ""
        var outOfRange = false
        var integral = true
        let values = bytes.withUnsafeBytes { raw -> [Float] in
            let data = UnsafeRawBufferPointer(rebasing: raw[dataStart...])
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                switch kind {
                case .float32:
                    for k in 0..<count {
                        let value = Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 4 &* k, as: UInt32.self)))
                        out[k] = value
                        if !value.isFinite {
                            badIndex = k
                            badText = "\(value)"
                            break
                        }
                        if integral && value.rounded(.towardZero) != value { integral = false }
                    }
                case .float64:
                    for k in 0..<count {
                        let wide = Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: 8 &* k, as: UInt64.self)))
                        let value = Float(wide)
                        out[k] = value
                        if !value.isFinite {
                            badIndex = k
                            badText = "\(wide)"
                            outOfRange = wide.isFinite
                            break
                        }
                        if integral && value.rounded(.towardZero) != value { integral = false }
                    }
                case .int32:
                    for k in 0..<count {
                        out[k] = Float(Int32(littleEndian: data.loadUnaligned(fromByteOffset: 4 &* k, as: Int32.self)))
                    }
                case .int64:
                    for k in 0..<count {
                        out[k] = Float(Int64(littleEndian: data.loadUnaligned(fromByteOffset: 8 &* k, as: Int64.self)))
                    }
                case .uint8:
                    for k in 0..<count {
                        out[k] = Float(data[k])
                    }
                }
                // Float is trivial, so claiming every slot is safe even after an early break.
                for k in (badIndex < 0 ? count : badIndex + 1)..<count { out[k] = 0 }
                initialized = count
            }
        }
        if badIndex >= 0 {
            let row = badIndex / columns, column = badIndex % columns
            if outOfRange {
                throw DataFileError.valueOutOfRange(path: name, row: row, column: column, value: badText)
            }
            throw DataFileError.nonFinite(path: name, row: row, column: column, value: badText)
        }
        switch kind {
        case .float32, .float64:
            break
        case .int32, .int64, .uint8:
            integral = true
        }
        var matrix = DataMatrix(rows: rows, columns: columns, values: values, isIntegral: integral)
        matrix.origin = DataMatrix.Origin(path: name)
        return matrix
    }

    /// Encodes a matrix as a version-1.0 .npy of dtype `<f4` and shape `(rows, columns)` (or `(rows,)` when `flat` is true).
    ///
    /// The output is byte-identical to `np.save` of the same array (64-byte aligned header).
    ///
    /// - Parameters:
    ///   - matrix: The matrix to encode; `values.count` should equal `rows * columns`.
    ///   - flat: Write a 1-d array of shape `(values.count,)`, i.e. `(rows,)` for a one-column matrix.
    /// - Returns: The file's bytes.
    public static func encode(_ matrix: DataMatrix, flat: Bool = false) -> [UInt8] {
        let shape = flat ? [matrix.values.count] : [matrix.rows, matrix.columns]
        var out = header(descr: "<f4", shape: shape)
        out.reserveCapacity(out.count + matrix.values.count * 4)
        #if _endian(little)
        matrix.values.withUnsafeBytes { out.append(contentsOf: $0) }
        #else
        for value in matrix.values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
        #endif
        return out
    }

    /// Encodes integers as a version-1.0 .npy of dtype `<i8` and shape `(rows, columns)` (or `(rows,)` when `flat` is
    /// true), for integer outputs such as predicted classes.
    ///
    /// - Parameters:
    ///   - values: `rows * columns` integers, row-major.
    ///   - rows: The number of rows.
    ///   - columns: The number of columns.
    ///   - flat: Write a 1-d array of shape `(values.count,)`, i.e. `(rows,)` for one column.
    /// - Returns: The file's bytes.
    public static func encodeInt64(_ values: [Int64], rows: Int, columns: Int, flat: Bool = false) -> [UInt8] {
        let shape = flat ? [values.count] : [rows, columns]
        var out = header(descr: "<i8", shape: shape)
        out.reserveCapacity(out.count + values.count * 8)
        #if _endian(little)
        values.withUnsafeBytes { out.append(contentsOf: $0) }
        #else
        for value in values {
            withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        }
        #endif
        return out
    }

    /// The magic, version 1.0 and a header padded (with spaces and a final newline) to a multiple of 64 bytes.
    static func header(descr: String, shape: [Int]) -> [UInt8] {
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(describeShape(shape)), }"
        let unpadded = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = dict.utf8.count
        var out = magic
        out += [1, 0, UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8)]
        out += Array(dict.utf8)
        return out
    }

    /// A shape the way Python prints a tuple: `()`, `(3,)`, `(2, 3)`.
    static func describeShape(_ shape: [Int]) -> String {
        if shape.count == 1 { return "(\(shape[0]),)" }
        return "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    private static func tooLarge(_ name: String, _ shape: String) -> DataFileError {
        .unsupportedShape(path: name, shape: shape, reason: "the array is too large to address")
    }
}

/// The parsed `.npy` header dictionary.
struct NumpyHeader {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]
}

/// A parser for the Python literal in a `.npy` header: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
struct PythonLiteralParser {
    enum Value {
        case string(String)
        case bool(Bool)
        case none
        /// nil when the integer overflows `Int`.
        case int(Int?)
        case tuple([Value])
        case list([Value])
        case dict([(key: String, value: Value)])
    }

    let bytes: [UInt8]
    var index: Int
    let end: Int
    let name: String

    init(bytes: [UInt8], start: Int, end: Int, name: String) {
        self.bytes = bytes
        self.index = start
        self.end = end
        self.name = name
    }

    /// Parses the whole header: one dict followed only by whitespace, with the three required keys.
    mutating func parseHeader() throws -> NumpyHeader {
        let top = try value(depth: 0)
        skipSpace()
        guard index == end else { throw failure("unexpected text after the header dictionary") }
        guard case let .dict(entries) = top else { throw failure("the header is not a dictionary") }
        func lookup(_ key: String) -> Value? { entries.first { $0.key == key }?.value }

        guard let descrValue = lookup("descr") else { throw failure("the header has no 'descr' key") }
        let descr: String
        switch descrValue {
        case let .string(text): descr = text
        case .list: descr = "structured dtype"
        default: throw failure("'descr' is not a string")
        }
        guard let fortranValue = lookup("fortran_order") else { throw failure("the header has no 'fortran_order' key") }
        guard case let .bool(fortranOrder) = fortranValue else { throw failure("'fortran_order' is not True or False") }
        guard let shapeValue = lookup("shape") else { throw failure("the header has no 'shape' key") }
        guard case let .tuple(items) = shapeValue else { throw failure("'shape' is not a tuple") }
        var shape: [Int] = []
        for item in items {
            guard case let .int(dimension) = item else { throw failure("'shape' holds a non-integer") }
            guard let dimension else {
                throw DataFileError.unsupportedShape(path: name, shape: "(...)", reason: "a dimension is too large")
            }
            guard dimension >= 0 else { throw failure("'shape' holds a negative dimension") }
            shape.append(dimension)
        }
        return NumpyHeader(descr: descr, fortranOrder: fortranOrder, shape: shape)
    }

    private func failure(_ reason: String) -> DataFileError {
        .malformed(path: name, reason: "invalid .npy header: \(reason)")
    }

    private mutating func skipSpace() {
        while index < end, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D {
            index += 1
        }
    }

    private mutating func expectWord(_ word: String) throws {
        for byte in word.utf8 {
            guard index < end, bytes[index] == byte else { throw failure("unexpected text") }
            index += 1
        }
    }

    private mutating func value(depth: Int) throws -> Value {
        guard depth < 16 else { throw failure("nested too deeply") }
        skipSpace()
        guard index < end else { throw failure("it ends too early") }
        switch bytes[index] {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "("):
            index += 1
            return .tuple(try sequence(close: UInt8(ascii: ")"), depth: depth))
        case UInt8(ascii: "["):
            index += 1
            return .list(try sequence(close: UInt8(ascii: "]"), depth: depth))
        case UInt8(ascii: "{"):
            index += 1
            return .dict(try dictionary(depth: depth))
        case UInt8(ascii: "T"):
            try expectWord("True")
            return .bool(true)
        case UInt8(ascii: "F"):
            try expectWord("False")
            return .bool(false)
        case UInt8(ascii: "N"):
            try expectWord("None")
            return .none
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .int(try integer())
        default:
            throw failure("unexpected character '\(Excerpt.escape(String(Character(Unicode.Scalar(bytes[index])))))'")
        }
    }

    private mutating func string() throws -> String {
        let quote = bytes[index]
        index += 1
        var text: [UInt8] = []
        while index < end {
            let byte = bytes[index]
            if byte == quote {
                index += 1
                return String(decoding: text, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\"), index + 1 < end {
                index += 1
            }
            text.append(bytes[index])
            index += 1
        }
        throw failure("unterminated string")
    }

    private mutating func integer() throws -> Int? {
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var result: Int? = 0
        var sawDigit = false
        while index < end, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let digit = Int(bytes[index] - UInt8(ascii: "0"))
            if let current = result {
                let (times, o1) = current.multipliedReportingOverflow(by: 10)
                let (plus, o2) = times.addingReportingOverflow(digit)
                result = (o1 || o2) ? nil : plus
            }
            sawDigit = true
            index += 1
        }
        guard sawDigit else { throw failure("expected a digit") }
        if index < end, bytes[index] == UInt8(ascii: "L") || bytes[index] == UInt8(ascii: "l") {
            index += 1  // Python 2 long suffix, written by old NumPy versions.
        }
        return negative ? result.map { -$0 } : result
    }

    private mutating func sequence(close: UInt8, depth: Int) throws -> [Value] {
        var items: [Value] = []
        while true {
            skipSpace()
            guard index < end else { throw failure("unterminated tuple or list") }
            if bytes[index] == close {
                index += 1
                return items
            }
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard index < end else { throw failure("unterminated tuple or list") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] != close {
                throw failure("expected ',' in a tuple or list")
            }
        }
    }

    private mutating func dictionary(depth: Int) throws -> [(key: String, value: Value)] {
        var entries: [(key: String, value: Value)] = []
        while true {
            skipSpace()
            guard index < end else { throw failure("unterminated dictionary") }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return entries
            }
            guard case let .string(key) = try value(depth: depth + 1) else { throw failure("a key is not a string") }
            skipSpace()
            guard index < end, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':' after a key") }
            index += 1
            entries.append((key: key, value: try value(depth: depth + 1)))
            skipSpace()
            guard index < end else { throw failure("unterminated dictionary") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] != UInt8(ascii: "}") {
                throw failure("expected ',' in the dictionary")
            }
        }
    }
}
