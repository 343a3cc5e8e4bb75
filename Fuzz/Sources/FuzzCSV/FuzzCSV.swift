import FuzzSupport
import MLPKit

/// Fuzzes `CSVFile.decode`, with and without a header row: it must throw or return a consistent
/// matrix (a value needs at least one byte and a separator), the header must name every column,
/// and writing the matrix back must read back equal. Then `DataLoader.decodeTable` (`checkTable`)
/// and `DataLoader.decodeTargets` (`checkTargets`).
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
    checkTable(bytes)
    checkTargets(bytes)
    return 0
}

/// `DataLoader.decodeTargets` (no header; one column that may hold text labels): labels become
/// one column of class indices below the class count, every class used.
func checkTargets(_ bytes: [UInt8]) {
    // gzip and zip input is FuzzArchive's (its output may rightly pass this target's 1 MiB allocation limit)
    if bytes.starts(with: [0x1F, 0x8B]) || bytes.starts(with: [0x50, 0x4B]) { return }
    guard let (targets, classes) = try? DataLoader.decodeTargets(bytes, name: "fuzz.csv") else { return }
    Fuzz.checkMatrix(targets, sourceBytes: bytes.count, expansion: 1)
    guard let classes else { return }
    Fuzz.check(targets.columns == 1 && !classes.isEmpty && classes.count <= targets.rows, "\(classes.count) classes for \(targets.rows) rows")
    Fuzz.check(targets.values.allSatisfy { $0 >= 0 && Int($0) < classes.count } && Set(targets.values).count == classes.count,
               "a class index outside 0..<\(classes.count), or a class without a row")
}

/// `DataLoader.decodeTable` with the last column as the target, which may hold text labels: the
/// target has a row per feature row, and text labels become class indices below the class count.
/// Without a header, column 1 as the target: a row per feature row.
func checkTable(_ bytes: [UInt8]) {
    if let table = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: "1", targetRequired: false, hasHeader: false),
       let column = table.target {
        Fuzz.check(column.rows == table.features.rows && column.columns == 1, "the headerless target's shape does not fit the features")
        Fuzz.check(table.classNames.map { $0.count <= column.rows } ?? true, "more classes than rows")
    }
    guard let (header, _) = try? CSVFile.decode(bytes, name: "fuzz.csv", hasHeader: true), let target = header?.last,
          let table = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: target, targetRequired: false) else { return }
    Fuzz.checkMatrix(table.features, sourceBytes: bytes.count, expansion: 1)
    guard let column = table.target else { return Fuzz.check(table.classNames == nil, "class names without a target") }
    Fuzz.check(column.rows == table.features.rows && column.columns == 1, "the target's shape does not fit the features")
    Fuzz.check(table.featureNames.count + 1 == header?.count, "the features and target do not account for the header")
    if let classes = table.classNames {
        Fuzz.check(!classes.isEmpty && classes.count <= column.rows && Set(classes).count == classes.count,
                   "\(classes.count) class names for \(column.rows) rows, or a name twice")
        Fuzz.check(column.values.allSatisfy { $0 >= 0 && Int($0) < classes.count && $0.rounded() == $0 },
                   "a class index outside 0..<\(classes.count)")
        Fuzz.check(Set(column.values).count == classes.count, "a class without a row")
    }
}
