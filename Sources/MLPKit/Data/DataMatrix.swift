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

    /// One line naming the file (and, for CSV, the line and column) and what is wrong.
    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot read '\(path)': \(reason)"
        case let .malformed(path, reason):
            return "\(path): \(reason)"
        case let .unsupportedDType(path, dtype, supported):
            return "\(path): unsupported element type '\(dtype)' (supported: \(supported))"
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
        case let .csv(path, line, column, columnName, reason):
            let name = columnName.map { " ('\($0)')" } ?? ""
            return "\(path), line \(line), column \(column)\(name): \(reason)"
        }
    }
}

/// Whole-file reading for the data readers, with their error type.
enum DataFileIO {
    /// The bytes of the file at `path`.
    /// - Throws: `DataFileError.cannotOpen` when the file cannot be opened or read, or is a directory.
    static func readAll(path: String) throws -> [UInt8] {
        do {
            return try FileIO.read(path)
        } catch let error as FileError {
            throw DataFileError.cannotOpen(path: path, reason: error.reason)
        }
    }
}
