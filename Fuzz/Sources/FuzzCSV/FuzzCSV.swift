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
    checkMissing(bytes)
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
/// Feature columns of text become one-hot inputs (for inputs up to 1 KiB: rows × categories grows
/// as the square of the input, and larger ones would pass the 1 MiB allocation limit rightly),
/// which read the same through the categories they record, and with the first column dropped the
/// rest reads the same. Without a header, column 1 as the target: a row per feature row; columns 1
/// and 2 as two targets: two numeric target columns.
func checkTable(_ bytes: [UInt8]) {
    let textFeatures: DataLoader.TextFeatures = bytes.count <= 1024 ? .detected : .refused
    if let table = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: "1", textFeatures: textFeatures,
                                               hasHeader: false),
       let column = table.target {
        Fuzz.check(column.rows == table.features.rows && column.columns == 1, "the headerless target's shape does not fit the features")
        Fuzz.check(table.classNames.map { $0.count <= column.rows } ?? true, "more classes than rows")
        checkCategories(table, bytes: bytes, target: "1", hasHeader: false)
    }
    // two targets: numbers only, one column each, a row per feature row
    if let table = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", targets: ["1", "2"], textFeatures: textFeatures,
                                               hasHeader: false),
       let columns = table.target {
        Fuzz.check(columns.rows == table.features.rows && columns.columns == 2, "two targets' shape does not fit the features")
        Fuzz.check(table.classNames == nil && columns.values.allSatisfy(\.isFinite), "two targets hold labels or values that are not finite")
    }
    guard let names = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: nil, targetRequired: false, textFeatures: textFeatures),
          let target = names.featureNames.last,
          let table = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: target, textFeatures: textFeatures) else { return }
    let header = names.featureNames
    Fuzz.checkMatrix(table.features, sourceBytes: bytes.count, expansion: bytes.count)
    guard let column = table.target else { return Fuzz.check(table.classNames == nil, "class names without a target") }
    Fuzz.check(column.rows == table.features.rows && column.columns == 1, "the target's shape does not fit the features")
    Fuzz.check(table.featureNames.count + 1 == header.count, "the features and target do not account for the header")
    if let classes = table.classNames {
        Fuzz.check(!classes.isEmpty && classes.count <= column.rows && Set(classes).count == classes.count,
                   "\(classes.count) class names for \(column.rows) rows, or a name twice")
        Fuzz.check(column.values.allSatisfy { $0 >= 0 && Int($0) < classes.count && $0.rounded() == $0 },
                   "a class index outside 0..<\(classes.count)")
        Fuzz.check(Set(column.values).count == classes.count, "a class without a row")
    }
    checkCategories(table, bytes: bytes, target: target, hasHeader: true)
    // the first column as written (predict --keep): one cell per row
    if let kept = try? DataLoader.decodeTextColumns(bytes, name: "fuzz.csv", columns: [header[0]]) {
        Fuzz.check(kept.count == 1 && kept[0].count == column.rows, "a kept column's cells do not match the rows")
    } else {
        Fuzz.check(false, "a table's first column does not read as text")
    }
    // the first column left out: the others read as before
    if header.count >= 3, let fewer = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: target, textFeatures: textFeatures,
                                                                   dropping: [header[0]]) {
        Fuzz.check(fewer.featureNames == Array(table.featureNames.dropFirst()), "dropping the first column changed the others")
        Fuzz.check(fewer.target?.values == column.values, "dropping the first column changed the target")
        let width = table.categories?[0]?.count ?? 1
        let kept = (0..<table.features.rows).flatMap { row in
            table.features.values[(row * table.features.columns + width)..<((row + 1) * table.features.columns)]
        }
        Fuzz.check(fewer.features.values == kept, "dropping the first column changed the other inputs")
    }
}

/// A table's categories: sorted, distinct, each used, at most one per row; every row's one-hot
/// inputs a single 1 among 0s; and the same file read with those categories recorded (a
/// checkpoint's) gives the same inputs.
func checkCategories(_ table: DataLoader.Table, bytes: [UInt8], target: String, hasHeader: Bool) {
    guard let categories = table.categories else { return }
    let matrix = table.features
    Fuzz.check(categories.count == table.featureNames.count, "\(categories.count) category entries for \(table.featureNames.count) columns")
    Fuzz.check(matrix.columns == categories.reduce(0) { $0 + ($1?.count ?? 1) }, "the inputs do not add up to the categories")
    var start = 0
    for values in categories {
        defer { start += values?.count ?? 1 }
        guard let values else { continue }
        Fuzz.check(!values.isEmpty && values == Array(Set(values)).sorted() && values.count <= matrix.rows
                       && values.count <= DataLoader.categoriesAllowed, "categories not sorted, distinct and at most one a row")
        var used = Set<Int>()
        for row in 0..<matrix.rows {
            let block = matrix.values[(row * matrix.columns + start)..<(row * matrix.columns + start + values.count)]
            Fuzz.check(block.filter { $0 == 1 }.count == 1 && block.allSatisfy { $0 == 0 || $0 == 1 }, "a one-hot block is not one 1 among 0s")
            if let hot = block.firstIndex(of: 1) { used.insert(hot - block.startIndex) }
        }
        Fuzz.check(used.count == values.count, "a category without a row")
    }
    guard let again = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: target, features: hasHeader ? table.featureNames : nil,
                                                  textFeatures: .recorded(categories), hasHeader: hasHeader) else {
        return Fuzz.check(false, "the table does not read through its own categories")
    }
    Fuzz.check(again.features.values == matrix.values && again.features.columns == matrix.columns,
               "the recorded categories give other inputs")
}

/// `DataLoader.decodeTable` with missing values filled (inputs up to 1 KiB, as for categories),
/// the last column the target: every input finite, a fill for each numeric column and none for a
/// column of categories, and the file read again through the fills and categories it recorded
/// (a checkpoint's) gives the same inputs.
func checkMissing(_ bytes: [UInt8]) {
    guard bytes.count <= 1024,
          let names = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: nil, targetRequired: false, missing: .mean),
          let target = names.featureNames.last,
          let table = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: target, missing: .mean) else { return }
    Fuzz.checkMatrix(table.features, sourceBytes: bytes.count, expansion: bytes.count)
    guard let fills = table.fills, let counts = table.missingCounts else { return Fuzz.check(false, "no fills with missing values filled") }
    Fuzz.check(fills.count == table.featureNames.count && counts.count == fills.count, "fills or counts not one per feature column")
    Fuzz.check(fills.indices.allSatisfy { (fills[$0] == nil) == (table.categories?[$0] != nil) }, "a fill for categories, or none for numbers")
    Fuzz.check(fills.allSatisfy { $0?.isFinite ?? true } && counts.allSatisfy { $0 >= 0 && $0 <= table.features.rows },
               "a fill not finite, or a count beyond the rows")
    Fuzz.check(table.target?.values.allSatisfy(\.isFinite) ?? false, "a missing target was let through")
    let categories: DataLoader.TextFeatures = table.categories.map { .recorded($0) } ?? .refused
    guard let again = try? DataLoader.decodeTable(bytes, name: "fuzz.csv", target: target, features: table.featureNames,
                                                  textFeatures: categories, missing: .recorded(fills)) else {
        return Fuzz.check(false, "the table does not read through its own fills")
    }
    Fuzz.check(again.features.values == table.features.values && again.features.columns == table.features.columns,
               "the recorded fills give other inputs")
}
