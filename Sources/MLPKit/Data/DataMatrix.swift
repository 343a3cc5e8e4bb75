import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A row-major Float32 matrix read from a data file.
///
/// `values.count == rows * columns`; element (r, c) is `values[r * columns + c]`.
public struct DataMatrix: Sendable, Equatable {
    /// The number of rows (samples).
    public var rows: Int
    /// The number of columns (features per sample).
    public var columns: Int
    /// The `rows * columns` elements, row-major.
    public var values: [Float]
    /// True when every value is an integer: the source had an integer dtype (npy int32/int64/uint8, IDX labels) or,
    /// for float sources (npy float32/float64, CSV), every value is integral.
    public var isIntegral: Bool

    /// Creates a matrix from row-major values.
    ///
    /// - Parameters:
    ///   - rows: The number of rows.
    ///   - columns: The number of columns.
    ///   - values: `rows * columns` elements, row-major.
    ///   - isIntegral: Whether every value is an integer (see ``isIntegral``).
    public init(rows: Int, columns: Int, values: [Float], isIntegral: Bool) {
        self.rows = rows
        self.columns = columns
        self.values = values
        self.isIntegral = isIntegral
    }

    /// Whether the shape holds together: no negative dimension and `rows × columns` values (a
    /// matrix made in code may not; the readers only make consistent ones).
    public var isConsistent: Bool {
        let (count, overflow) = rows.multipliedReportingOverflow(by: columns)
        return rows >= 0 && columns >= 0 && !overflow && values.count == count
    }

    /// Where the rows came from, for messages about a row (the readers set it; nil for a matrix made in code).
    /// Not part of equality: two matrices with the same shape, values and `isIntegral` are equal.
    public var origin: Origin?

    /// Equal when the shapes, values and `isIntegral` agree; ``origin`` is ignored.
    public static func == (lhs: DataMatrix, rhs: DataMatrix) -> Bool {
        lhs.rows == rhs.rows && lhs.columns == rhs.columns && lhs.isIntegral == rhs.isIntegral && lhs.values == rhs.values
    }

    /// The file a matrix was read from, and for a CSV the line each row was on.
    public struct Origin: Sendable {
        /// The file's path (or the name given to a `decode` function).
        public var path: String
        /// For one column split off a CSV table (``DataLoader/readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)``), its header name.
        public var columnName: String?
        /// The 1-based line of row 0 in a text file; nil for binary files (rows are then named by index).
        var firstLine: Int?
        /// Where the line numbers jump over skipped (blank) lines: from row `row` on, row r is on line
        /// `firstLine + r + offset`. Sorted by row; empty when the rows are on consecutive lines.
        var lineOffsets: [(row: Int, offset: Int)] = []
        /// What separated a text file's cells (``CSVSeparator/comma`` for binary files too).
        public var separator: CSVSeparator = .comma

        init(path: String, columnName: String? = nil, firstLine: Int? = nil, lineOffsets: [(row: Int, offset: Int)] = []) {
            self.path = path
            self.columnName = columnName
            self.firstLine = firstLine
            self.lineOffsets = lineOffsets
        }

        /// The 1-based line of 0-based `row` in a text file, or nil for a binary file.
        public func line(ofRow row: Int) -> Int? {
            guard let firstLine else { return nil }
            var low = 0, high = lineOffsets.count  // the first entry with .row > row
            while low < high {
                let middle = (low + high) / 2
                if lineOffsets[middle].row <= row { low = middle + 1 } else { high = middle }
            }
            // nil rather than an overflow for a row no file has
            let (line, overflow) = firstLine.addingReportingOverflow(row)
            let (shifted, shiftOverflow) = line.addingReportingOverflow(low == 0 ? 0 : lineOffsets[low - 1].offset)
            return overflow || shiftOverflow ? nil : shifted
        }

        /// Where 0-based `row` is, for a message: `line 7` in a text file, `row 6` (1-based) in a binary one,
        /// followed by the column's name when there is one (`line 7, column 'price'`).
        public func location(ofRow row: Int) -> String {
            let place = line(ofRow: row).map { "line \($0)" } ?? (row < Int.max ? "row \(row + 1)" : "row \(row) (0-based)")
            return place + (columnName.map { ", column '\(Excerpt.escape($0))'" } ?? "")
        }
    }
}

/// Why a data file (.npy, .csv, IDX) could not be read.
///
/// Every case carries the file's path (or the `name` given to a `decode` function), and ``description``
/// is one line a user can act on.
public enum DataFileError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or read (missing, unreadable, a directory, ...); `reason` is the system's message.
    case cannotOpen(path: String, reason: String)
    /// The file's structure is invalid: bad magic number, unparsable header, unsupported format version, ...
    case malformed(path: String, reason: String)
    /// The element type is not one the reader supports; `supported` lists the ones it does.
    case unsupportedDType(path: String, dtype: String, supported: String)
    /// A .npy array stored in Fortran (column-major) order.
    case fortranOrder(path: String)
    /// The array's shape cannot be used as a matrix (a 0-d scalar, or a shape too large to address).
    case unsupportedShape(path: String, shape: String, reason: String)
    /// The header describes `expectedBytes` bytes of element data but `actualBytes` are present.
    case sizeMismatch(path: String, expectedBytes: Int, actualBytes: Int)
    /// The file holds no values (a zero-sized array, an empty CSV, or a CSV header with no data rows).
    case empty(path: String, reason: String)
    /// A NaN or infinite element in a binary file, at 0-based `row` and `column`; `value` is how it prints.
    case nonFinite(path: String, row: Int, column: Int, value: String)
    /// A finite float64 element too large for Float32, at 0-based `row` and `column`.
    case valueOutOfRange(path: String, row: Int, column: Int, value: String)
    /// A problem in a CSV file at 1-based `line` and `column`; `columnName` is the header's name for that column, if any.
    case csv(path: String, line: Int, column: Int, columnName: String?, reason: String)
    /// A missing value (an empty cell, `NA`, `N/A`, `NaN`, `null` or `?`) where the reader was not asked to
    /// allow them; otherwise as ``csv(path:line:column:columnName:reason:)``, and described the same way.
    case missingValue(path: String, line: Int, column: Int, columnName: String?, reason: String)

    /// Whether this is about one cell of a CSV file (``csv(path:line:column:columnName:reason:)`` or
    /// ``missingValue(path:line:column:columnName:reason:)``).
    public var isCSVCell: Bool {
        switch self {
        case .csv, .missingValue: return true
        default: return false
        }
    }

    /// One line naming the file (and, for CSV, the line and column) and what is wrong. Control characters
    /// (from the file's content or its name) are escaped, so the text is always a single printable line.
    public var description: String { Excerpt.escapeControls(unescapedDescription) }

    private var unescapedDescription: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot read '\(path)': \(reason)"
        case let .malformed(path, reason):
            return "\(path): \(reason)"
        case let .unsupportedDType(path, dtype, supported):
            return "\(path): unsupported element type '\(Excerpt.escape(dtype))' (supported: \(supported))"
        case let .fortranOrder(path):
            return "\(path): array is stored in Fortran (column-major) order; save a C-ordered copy, e.g. np.save(path, np.ascontiguousarray(a))"
        case let .unsupportedShape(path, shape, reason):
            return "\(path): unsupported shape \(shape): \(reason)"
        case let .sizeMismatch(path, expected, actual):
            if actual < expected {
                return "\(path): header describes \(expected) data bytes but only \(actual) are present (file truncated?)"
            }
            return "\(path): header describes \(expected) data bytes but \(actual) are present (\(actual - expected) trailing bytes; file corrupt?)"
        case let .empty(path, reason):
            return "\(path): \(reason)"
        case let .nonFinite(path, row, column, value):
            return "\(path): element [\(row), \(column)] (0-based) is \(value); NaN and infinity are not allowed"
        case let .valueOutOfRange(path, row, column, value):
            return "\(path): element [\(row), \(column)] (0-based) is \(value), outside the Float32 range"
        case let .csv(path, line, column, columnName, reason), let .missingValue(path, line, column, columnName, reason):
            let name = columnName.map { " ('\(Excerpt.escape($0))')" } ?? ""
            return "\(path), line \(line), column \(column)\(name): \(reason)"
        }
    }
}

/// Whole-file reading for the data readers, with their error type.
enum DataFileIO {
    /// The path that names standard input, as Unix tools take it.
    static let standardInputPath = "-"

    /// How messages name the file at `path`: "stdin" for standard input.
    static func name(_ path: String) -> String { path == standardInputPath ? "stdin" : path }

    /// Standard input's bytes, read once and kept (so that a second reader of the same data,
    /// `predict --keep`'s, gets them too).
    private static let standardInput = Mutex<[UInt8]?>(nil)

    /// The bytes of the file at `path`; `-` is standard input (read to its end once per process,
    /// and refused when it is a terminal, where reading would wait for typing).
    /// - Throws: `DataFileError.cannotOpen` when the file cannot be opened or read, or is a directory.
    static func readAll(path: String) throws -> [UInt8] {
        if path == standardInputPath {
            return try standardInput.withLock { kept in
                if let kept { return kept }
                guard isatty(0) == 0 else {
                    throw DataFileError.cannotOpen(path: "stdin", reason: "it is a terminal; pipe the data in (… - < data.csv)")
                }
                let bytes = try read("/dev/stdin", name: "stdin")
                kept = bytes
                return bytes
            }
        }
        return try read(path, name: path)
    }

    private static func read(_ path: String, name: String) throws -> [UInt8] {
        do {
            return try FileIO.read(path)
        } catch let error as FileError {
            throw DataFileError.cannotOpen(path: name, reason: error.reason)
        }
    }
}

/// What a data file's first bytes say it is, whatever its name.
enum FileSniffer {
    enum Kind: Equatable {
        case gzip, numpy, zip, idx, utf16, binary

        /// How a message names it: "(it looks like …)".
        var looksLike: String {
            switch self {
            case .gzip: return "it is gzip-compressed"
            case .numpy: return "it looks like a NumPy .npy file"
            case .zip: return "it looks like a zip archive, such as a NumPy .npz file"
            case .idx: return "it looks like an MNIST IDX file"
            case .utf16: return "it is UTF-16 text; save it as UTF-8"
            case .binary: return "binary data"
            }
        }
    }

    /// How many leading bytes are searched for a NUL byte, the sign of a binary file.
    static let textWindow = 4096

    /// The kind of a file that is not plain text, or nil for text (no NUL byte in the first 4 KiB).
    static func kind(_ bytes: UnsafeBufferPointer<UInt8>) -> Kind? {
        func starts(_ prefix: [UInt8]) -> Bool { bytes.count >= prefix.count && zip(bytes, prefix).allSatisfy { $0 == $1 } }
        if starts([0x1F, 0x8B]) { return .gzip }
        if starts(NumpyFile.magic) { return .numpy }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if starts([0xFF, 0xFE]) || starts([0xFE, 0xFF]) { return .utf16 }
        if bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, IDXFile.isTypeCode(bytes[2]), (1...4).contains(bytes[3]) { return .idx }
        if bytes.prefix(textWindow).contains(0) { return .binary }
        return nil
    }

    static func kind(_ bytes: [UInt8]) -> Kind? {
        bytes.withUnsafeBufferPointer { kind($0) }
    }

    /// The error for bytes of `kind` given as a CSV file.
    static func notCSVError(_ kind: Kind, path: String) -> DataFileError {
        switch kind {
        case .gzip: return gzipError(path)
        case .utf16: return .malformed(path: path, reason: "the file is UTF-16 text; save it as UTF-8 to read it as CSV")
        default: return .malformed(path: path, reason: "not a text CSV file (\(kind.looksLike))")
        }
    }

    /// The message for a gzip-compressed file: how to decompress it.
    static func gzipError(_ path: String) -> DataFileError {
        let command = path.lowercased().hasSuffix(".gz") ? "gunzip -k \(path)" : "gunzip -c \(path) > FILE"
        return .malformed(path: path, reason: "the file is gzip-compressed; decompress it first (\(command))")
    }
}
