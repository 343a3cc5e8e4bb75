import FuzzSupport
import MLPKit

/// Fuzzes `CSVFile.decode`, with and without a header row: it must throw or return a consistent
/// matrix (a value needs at least one byte and a separator), the header must name every column,
/// and writing the matrix back must read back equal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    for hasHeader in [false, true] {
        guard let (header, matrix) = try? CSVFile.decode(bytes, name: "fuzz.csv", hasHeader: hasHeader) else { continue }
        Fuzz.checkMatrix(matrix, sourceBytes: bytes.count, expansion: 1)
        Fuzz.check(matrix.values.count * 2 <= bytes.count + 1, "more values than cells in \(bytes.count) bytes")
        if hasHeader {
            Fuzz.check(header?.count == matrix.columns, "the header has \(header?.count ?? -1) names for \(matrix.columns) columns")
        } else {
            Fuzz.check(header == nil, "a header without hasHeader")
        }
        let text = CSVFile.encode(header: nil, matrix: matrix)
        guard let (_, again) = try? CSVFile.decode(Array(text.utf8), name: "again.csv", hasHeader: false) else {
            Fuzz.check(false, "an encoded matrix does not decode")
            continue
        }
        Fuzz.check(again.rows == matrix.rows && again.columns == matrix.columns && again.values == matrix.values,
                   "the round trip changed the matrix")
    }
    return 0
}
