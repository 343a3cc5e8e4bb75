#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns data files into matrices and matrices into a `Dataset` a model can train on.
public enum DataLoader {
    /// Why data could not be used.
    public enum LoadError: Error, CustomStringConvertible, Equatable {
        case unknownColumn(path: String, column: String, available: [String])
        case mismatch(String)
        /// A column the model takes as input `input` of `inputs` (by the name its checkpoint
        /// records) is not in the file.
        case missingFeature(path: String, column: String, input: Int, inputs: Int, available: [String])

        /// The first eight names, escaped (and in single quotes when `quoted`), then "…" when there are more.
        public static func listed(_ names: [String], quoted: Bool = false) -> String {
            names.prefix(8).map { quoted ? "'\(Excerpt.escape($0))'" : Excerpt.escape($0) }.joined(separator: ", ")
                + (names.count > 8 ? ", … (\(names.count))" : "")
        }

        /// One line; names from the file are quoted with control characters escaped and long ones cut.
        public var description: String {
            switch self {
            case let .unknownColumn(path, column, available):
                return Excerpt.escapeControls("\(path) has no column named '\(Excerpt.escape(column))' (columns: \(Self.listed(available)))")
            case .mismatch(let reason):
                return Excerpt.escapeControls(reason)
            case let .missingFeature(path, column, input, inputs, available):
                return Excerpt.escapeControls("\(path) has no column named '\(Excerpt.escape(column))', the model's input \(input) of \(inputs) "
                    + "(columns: \(Self.listed(available)))")
            }
        }
    }

    /// Reads a matrix from `.npy`, a `.csv` without a header, or an MNIST IDX file, any of them
    /// gzip-compressed or inside a zip archive (such as a NumPy `.npz`).
    ///
    /// The content decides, whatever the name: gzip is decompressed first; in a zip archive the
    /// file is its only one, or the one `path` names after a colon when no file has the whole
    /// name (`data.npz:x_train`; an array's name with or without `.npy`); `\x93NUMPY` is a .npy
    /// file and a file starting with two zero bytes (IDX's magic number) an IDX file. Otherwise a
    /// name ending in `.npy` goes to the .npy reader and anything else to the CSV reader (which
    /// refuses binary data).
    /// - Throws: `DataFileError` (`.cannotOpen` when the file cannot be read).
    public static func readMatrix(path: String) throws -> DataMatrix {
        let (file, member) = fileAndMember(path)
        return try decodeMatrix(DataFileIO.readAll(path: file), name: DataFileIO.name(file), member: member)
    }

    /// ``readMatrix(path:)`` on bytes already read; `name` is the file's name (for messages, and
    /// a `.npy` name sends bytes of no known kind to the .npy reader) and `member` the file to
    /// take from a zip archive (nil: its only one).
    public static func decodeMatrix(_ bytes: [UInt8], name: String, member: String? = nil) throws -> DataMatrix {
        let (bytes, name) = try unpack(bytes, name: name, member: member)
        return try decodeBinary(bytes, name: name) ?? CSVFile.decode(bytes, name: name, hasHeader: false).matrix
    }

    /// An unpacked file that is .npy (by its content, or by a `.npy` or `.npz` name) or IDX (two
    /// zero bytes first), decoded; nil for anything else, which the callers read as CSV.
    static func decodeBinary(_ bytes: [UInt8], name: String) throws -> DataMatrix? {
        let lowercased = name.lowercased()
        let isNumpyName = lowercased.hasSuffix(".npy") || lowercased.hasSuffix(".npz")
        if isNumpyName || FileSniffer.kind(bytes) == .numpy { return try NumpyFile.decode(bytes, name: name) }
        if bytes.count >= 2, bytes[0] == 0, bytes[1] == 0 { return try IDXFile.decode(bytes, name: name) }
        return nil
    }

    /// How messages name the data file at `path`: "stdin" for `-` (standard input), else `path`.
    public static func displayName(_ path: String) -> String { DataFileIO.name(path) }

    /// `path` as a file and the member of a zip archive it names: the whole of `path` when a file
    /// has that name (or when nothing does before its last colon either), else the part before
    /// its last colon and the member after it (`data.npz:x_train` is `data.npz` and `x_train`).
    public static func fileAndMember(_ path: String) -> (file: String, member: String?) {
        func exists(_ path: String) -> Bool {
            var status = stat()
            return stat(path, &status) == 0
        }
        guard !exists(path), let colon = path.lastIndex(of: ":"), colon != path.startIndex else { return (path, nil) }
        let file = String(path[..<colon])
        guard exists(file) else { return (path, nil) }
        return (file, String(path[path.index(after: colon)...]))
    }

    /// The data file inside `bytes`: gzip decompressed, and from a zip archive its only file or
    /// `member`; with the name messages give it (`data.npz:x` for an archive's array).
    static func unpack(_ bytes: [UInt8], name: String, member: String?) throws -> (bytes: [UInt8], name: String) {
        let bytes = FileSniffer.kind(bytes) == .gzip ? try Archive.gunzip(bytes, name: name) : bytes
        guard FileSniffer.kind(bytes) == .zip else {  // a local header first, or an empty archive's end record
            if let member {
                throw DataFileError.malformed(
                    path: name, reason: "'\(Excerpt.escape(member))' after the colon picks a file from a zip archive (.npz), but this is not one")
            }
            return (bytes, name)
        }
        let entries = try Archive.zipEntries(bytes, name: name)
        guard let first = entries.first else { throw DataFileError.malformed(path: name, reason: "the archive is empty") }
        let listed = entries.prefix(8).map { Excerpt.escape($0.displayName) }.joined(separator: ", ") + (entries.count > 8 ? ", …" : "")
        let chosen: Archive.Entry
        if let member {
            guard let entry = entries.first(where: { $0.name == member }) ?? entries.first(where: { $0.displayName == member }) else {
                throw DataFileError.malformed(
                    path: name, reason: "the archive has nothing named '\(Excerpt.escape(member))' (it holds \(listed))")
            }
            chosen = entry
        } else {
            guard entries.count == 1 else {
                throw DataFileError.malformed(
                    path: name, reason: "the archive holds \(entries.count) files (\(listed)); pick one as \(name):NAME")
            }
            chosen = first
        }
        let inner = try Archive.extract(chosen, from: bytes, name: name)
        return (inner, member.map { "\(name):\($0)" } ?? "\(name):\(chosen.displayName)")
    }

    /// How ``readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)`` reads
    /// a feature column of text (categories such as `red`, `green`).
    public enum TextFeatures: Sendable, Equatable {
        /// A feature column whose cell on the first data row is text holds categories: one input
        /// per distinct value, in sorted order, 1 for the row's value and 0 for the others (one-hot).
        case detected
        /// Feature columns hold numbers only (a model that records no categories).
        case refused
        /// The categories a checkpoint records, one entry per feature column in the model's order
        /// (nil for a numeric column); a value not among its column's categories is an error.
        case recorded([[String]?])
    }

    /// A CSV table split into features and target (``readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)``).
    public struct Table: Sendable {
        /// The model's inputs: the feature columns, in the model's order when names were given, else
        /// in file order, a column of categories expanded to one input per category (one-hot).
        public var features: DataMatrix
        /// The target column (nil when there is none, or it was not required); for text labels, the class indices 0…C−1.
        public var target: DataMatrix?
        /// The feature columns' names, in the matrix's order (a column of categories once).
        public var featureNames: [String]
        /// Columns that are neither a named feature nor the target (only when `features` names them).
        public var ignoredColumns: [String]
        /// For a target of text labels, the class names: class i is `classNames[i]`. Nil for a numeric target.
        public var classNames: [String]?
        /// When a feature column holds categories, one entry per feature column (parallel to
        /// `featureNames`): its categories in the order of its inputs, or nil for a numeric column.
        /// Nil when every feature column is numeric.
        public var categories: [[String]?]?
        /// With missing values allowed, one entry per feature column (parallel to `featureNames`):
        /// the value a numeric column's missing values became (for every numeric column, whether
        /// it had any), or nil for a column of categories. Nil when missing values are refused.
        public var fills: [Float?]?
        /// With missing values allowed, how many each feature column had (parallel to `featureNames`).
        public var missingCounts: [Int]?
        /// The columns `rawColumns` named, left out of the features, each one's cells as written
        /// (unquoted; empty cells included), one per row, by the name it was asked by.
        public var rawColumns: [String: [String]] = [:]
    }

    /// What ``readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)``
    /// does with a missing value in a feature column: an empty cell, `NA`, `N/A`, `NaN`, `null` or
    /// `?` (in any case, quoted or not).
    public enum MissingValues: Sendable, Equatable {
        /// A missing value is an error naming its cell.
        case refused
        /// A numeric column's missing values become the mean of its values in the file; a column
        /// of categories' have no category (all its one-hot inputs 0).
        case mean
        /// As `mean`, the mean taken over the rows that a validation split of this fraction and
        /// seed leaves for training (``Dataset/splitRows(_:validationFraction:seed:)``), so that
        /// nothing of the validation rows goes into the training inputs.
        case meanOfTraining(validationFraction: Double, seed: UInt64)
        /// As `mean`, the mean taken over these rows (0-based, those that train: a fold's others).
        case meanOfRows([Int])
        /// The values a checkpoint records, one per feature column in the model's order (nil for a
        /// column of categories, whose missing values have no category).
        case recorded([Float?])
    }

    /// Most categories a feature column may have when they come from the data (each is an input).
    public static let categoriesAllowed = 1024

    /// Reads a CSV with a header row and splits off the column named `target` (when given). Unless
    /// `targetRequired`, the target is not wanted (predictions): its column, when present, is left
    /// out, read past whatever it holds, and `Table.target` is nil. The features are every other column in file order,
    /// or, when `features` names them (a checkpoint's recorded input columns), exactly those
    /// columns in that order wherever they stand in the file; any other column is then left out
    /// and listed in `ignoredColumns` (whether it holds numbers or text). The columns `dropping`
    /// names are left out too (not listed), read past whatever they hold; those `rawColumns` names
    /// are left out as well, their cells handed back as written in `Table.rawColumns` (a weight
    /// column, read in the same pass as the features).
    ///
    /// The target column may hold text labels (class names such as `setosa`), told by its first
    /// row: they become class indices, by their place in `classes` (a checkpoint's recorded class
    /// names; a label not among them is an error naming its line) or, without `classes`, in the
    /// sorted order of the distinct labels. A feature column may hold categories as `textFeatures`
    /// says (one input each, one-hot). A missing value in a feature column is refused, or filled,
    /// as `missing` says; in the target it is always an error. Like ``readMatrix(path:)``, the CSV
    /// may be gzip-compressed or in a zip archive.
    /// - Throws: `DataFileError` for the file, a label or a category, `LoadError.unknownColumn` for
    ///   a missing target, `LoadError.missingFeature` for a missing named feature,
    ///   `LoadError.mismatch` for a column of more than ``categoriesAllowed`` detected categories,
    ///   for dropping the target or a named feature, or for a column whose every value is missing
    ///   (nothing to take a mean of); `LoadError.unknownColumn` for dropping a column that is not there.
    ///
    /// Without a header row (`hasHeader` false) the columns are numbered from 1, `target` is such a
    /// number ("5"), and `featureNames` are the numbers of the feature columns.
    public static func readTable(path: String, target: String?, targetRequired: Bool = true, features: [String]? = nil,
                                 classes: [String]? = nil, textFeatures: TextFeatures = .detected, dropping: [String] = [],
                                 missing: MissingValues = .refused, hasHeader: Bool = true, rawColumns: [String] = []) throws -> Table {
        try readTable(path: path, targets: target.map { [$0] } ?? [], targetRequired: targetRequired, features: features,
                      classes: classes, textFeatures: textFeatures, dropping: dropping, missing: missing, hasHeader: hasHeader,
                      rawColumns: rawColumns)
    }

    /// ``readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)``
    /// with any number of target columns (none: no target). Several targets make `Table.target` one
    /// column per target, in the order given, and hold numbers only (text labels need one target).
    public static func readTable(path: String, targets: [String], targetRequired: Bool = true, features: [String]? = nil,
                                 classes: [String]? = nil, textFeatures: TextFeatures = .detected, dropping: [String] = [],
                                 missing: MissingValues = .refused, hasHeader: Bool = true, rawColumns: [String] = []) throws -> Table {
        let (file, member) = fileAndMember(path)
        let (bytes, name) = try unpack(DataFileIO.readAll(path: file), name: DataFileIO.name(file), member: member)
        return try decodeTable(bytes, name: name, targets: targets, targetRequired: targetRequired, features: features,
                               classes: classes, textFeatures: textFeatures, dropping: dropping, missing: missing, hasHeader: hasHeader,
                               rawColumns: rawColumns)
    }

    /// A CSV's column names by its first line (the header, or the numbers of the first row's cells
    /// without one), or nil when it cannot be read or that line split.
    public static func columnNames(path: String, hasHeader: Bool) -> [String]? {
        textBytes(path: path).flatMap { firstLineNames($0, hasHeader: hasHeader) }
    }

    /// The separator a text file at `path` is read with (``CSVSeparator/chosen``, or the one its
    /// first line tells), or nil when it cannot be read or is not text.
    public static func separator(path: String) -> CSVSeparator? {
        textBytes(path: path).map { bytes in CSVSeparator.chosen ?? bytes.withUnsafeBufferPointer { CSVSeparator.detect($0) } }
    }

    /// The text file at `path` (unpacked from gzip or a zip archive, as the readers unpack it),
    /// or nil when it cannot be read or is not text.
    private static func textBytes(path: String) -> [UInt8]? {
        let (file, member) = fileAndMember(path)
        guard let (bytes, _) = try? unpack(DataFileIO.readAll(path: file), name: DataFileIO.name(file), member: member),
              FileSniffer.kind(bytes) == nil else { return nil }
        return bytes
    }

    /// ``readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)`` on a CSV's bytes already read
    /// (and unpacked); `name` is the file's name, for messages.
    public static func decodeTable(_ bytes: [UInt8], name path: String, target: String?, targetRequired: Bool = true,
                                   features: [String]? = nil, classes: [String]? = nil, textFeatures: TextFeatures = .detected,
                                   dropping: [String] = [], missing: MissingValues = .refused, hasHeader: Bool = true,
                                   rawColumns: [String] = []) throws -> Table {
        try decodeTable(bytes, name: path, targets: target.map { [$0] } ?? [], targetRequired: targetRequired, features: features,
                        classes: classes, textFeatures: textFeatures, dropping: dropping, missing: missing, hasHeader: hasHeader,
                        rawColumns: rawColumns)
    }

    /// ``readTable(path:targets:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)`` on a
    /// CSV's bytes already read (and unpacked).
    public static func decodeTable(_ bytes: [UInt8], name path: String, targets: [String], targetRequired: Bool = true,
                                   features: [String]? = nil, classes: [String]? = nil, textFeatures: TextFeatures = .detected,
                                   dropping leftOut: [String] = [], missing: MissingValues = .refused, hasHeader: Bool = true,
                                   rawColumns: [String] = []) throws -> Table {
        // a raw column is left out of the features as a dropped one is, its cells kept as written
        let dropping = leftOut + rawColumns.filter { !leftOut.contains($0) }
        let raw = Set(rawColumns)
        if let twice = targets.indices.first(where: { targets[..<$0].contains(targets[$0]) }) {
            throw LoadError.mismatch("\(path): the target column '\(Excerpt.escape(targets[twice]))' is named twice")
        }
        let targetSet = Set(targets)
        func missingTarget(_ target: String, names: [String]) throws -> Never {
            if !hasHeader {
                throw LoadError.mismatch("\(path) has \(names.count) columns without a header, numbered 1 to \(names.count); "
                    + "there is no column '\(Excerpt.escape(target))'")
            }
            throw LoadError.unknownColumn(path: path, column: target, available: names)
        }
        // which columns may hold text: the target (labels), and feature columns as textFeatures
        // says; columns left out are read past
        let textModes = { (columns: Int, header: [String]?) -> [CSVFile.TextMode] in
            let names = columnNames(header, count: columns)
            let dropped = Set(dropping)
            let modelPlace = Dictionary((features ?? []).enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
            // by position, a file of another count of feature columns is the error to report, not a cell
            var recorded: [[String]?]?
            if case .recorded(let categories) = textFeatures,
               features != nil || names.filter({ !targetSet.contains($0) && !dropped.contains($0) }).count == categories.count {
                recorded = categories
            }
            var position = 0  // the place among the feature columns, by position
            return names.map { name in
                // text labels in one target; several targets hold numbers
                if targetSet.contains(name) { return targetRequired ? (targets.count == 1 ? .detect : .number) : .skip }
                if raw.contains(name) { return .raw }
                if dropped.contains(name) { return .skip }
                var place = position
                if features != nil {
                    guard let index = modelPlace[name] else { return .skip }
                    place = index
                }
                position += 1
                switch textFeatures {
                case .detected: return .detect
                case .refused: return .number
                case .recorded:
                    guard let recorded, place < recorded.count else { return .detect }
                    return recorded[place] != nil ? .text : .number
                }
            }
        }
        // what --drop names is checked before the cells, which a column it does not name would fail
        if !dropping.isEmpty, let names = firstLineNames(bytes, hasHeader: hasHeader) {
            try checkDropped(dropping, names: names, targets: targets, features: features, path: path)
        }
        let decoded: (header: [String]?, matrix: DataMatrix, texts: [Int: [String]])
        do {
            decoded = try CSVFile.decode(bytes, name: path, hasHeader: hasHeader, textColumns: textModes, missing: missing != .refused)
        } catch let error as DataFileError {
            // a target that is not there is the error to report, not a cell of the column it would have been
            if error.isCSVCell, targetRequired, let names = firstLineNames(bytes, hasHeader: hasHeader),
               let absent = targets.first(where: { !names.contains($0) }) {
                try missingTarget(absent, names: names)
            }
            throw error
        }
        let (headerOrNil, matrix, texts) = decoded
        let header = columnNames(headerOrNil, count: matrix.columns)
        if targetRequired, let absent = targets.first(where: { !header.contains($0) }) { try missingTarget(absent, names: header) }
        let targetIndices = targets.compactMap { header.firstIndex(of: $0) }
        try checkDropped(dropping, names: header, targets: targets, features: features, path: path)
        let featureIndices: [Int]
        if let features {
            featureIndices = try features.enumerated().map { position, column in
                guard let index = header.firstIndex(of: column) else {
                    throw LoadError.missingFeature(path: path, column: column, input: position + 1, inputs: features.count,
                                                   available: header)
                }
                if targetIndices.contains(index) {
                    throw LoadError.mismatch("\(path): the target '\(Excerpt.escape(column))' is one of the model's input columns")
                }
                return index
            }
        } else {
            featureIndices = header.indices.filter { !targetIndices.contains($0) && !dropping.contains(header[$0]) }
        }
        if !targetIndices.isEmpty || !dropping.isEmpty, featureIndices.isEmpty {
            throw LoadError.mismatch(dropping.isEmpty
                ? (targets.count == 1 ? "\(path): the target '\(Excerpt.escape(targets[0]))' is the only column; there are no features"
                    : "\(path): the targets \(LoadError.listed(targets, quoted: true)) are the only columns; there are no features")
                : "\(path): no feature columns are left once \(LoadError.listed(dropping, quoted: true)) are left out")
        }
        if case .recorded(let categories) = textFeatures, categories.count != featureIndices.count {
            throw LoadError.mismatch("\(path) has \(featureIndices.count) feature \(featureIndices.count == 1 ? "column" : "columns") "
                + "but the model takes \(categories.count), by position\(targets.isEmpty ? " (is the target among them?)" : "")")
        }
        if case .recorded(let fills) = missing, fills.count != featureIndices.count {
            throw LoadError.mismatch("\(path) has \(featureIndices.count) feature \(featureIndices.count == 1 ? "column" : "columns") "
                + "but the model records missing values' fills for \(fills.count)")
        }
        let used = Set(featureIndices + targetIndices)
        let ignored = header.indices.filter { !used.contains($0) && !dropping.contains(header[$0]) }.map { header[$0] }
        if features == nil, targetIndices.isEmpty, texts.isEmpty, dropping.isEmpty, missing == .refused {
            return Table(features: matrix, target: nil, featureNames: header, ignoredColumns: [])
        }

        let oneHot = try categoryColumns(texts, featureIndices: featureIndices, header: hasHeader ? header : nil,
                                         textFeatures: textFeatures, path: path, origin: matrix.origin)
        // the feature columns as runs of numeric neighbours (one run when they stand side by side,
        // two around a target in the middle), each row copied a run at a time, and columns of
        // categories as their one-hot inputs
        var runs: [(columns: Range<Int>, categories: Int?)] = []
        for index in featureIndices {
            if let coded = oneHot[index] {
                runs.append((index..<(index + 1), coded.names.count))
            } else if let last = runs.last, last.categories == nil, last.columns.upperBound == index {
                runs[runs.count - 1].columns = last.columns.lowerBound..<(index + 1)
            } else {
                runs.append((index..<(index + 1), nil))
            }
        }
        let width = runs.reduce(0) { $0 + ($1.categories ?? $1.columns.count) }
        var featureValues: [Float] = []
        featureValues.reserveCapacity(matrix.rows * width)
        for row in 0..<matrix.rows {
            let start = row * matrix.columns
            for run in runs {
                if let count = run.categories, let coded = oneHot[run.columns.lowerBound] {
                    let hot = Int(coded.indices[row])
                    for category in 0..<count { featureValues.append(category == hot ? 1 : 0) }
                } else {
                    featureValues.append(contentsOf: matrix.values[(start + run.columns.lowerBound)..<(start + run.columns.upperBound)])
                }
            }
        }
        // missing values: each numeric column's mean (or recorded fill) in their place
        var fills: [Float?] = [], missingCounts: [Int] = []
        if missing != .refused {
            (fills, missingCounts) = try fillMissing(&featureValues, width: width, from: matrix, featureIndices: featureIndices,
                                                     oneHot: oneHot, missing: missing, header: hasHeader ? header : nil, path: path)
        }
        var featureMatrix = DataMatrix(rows: matrix.rows, columns: width, values: featureValues,
                                       isIntegral: featureValues.allSatisfy { $0.rounded() == $0 })
        featureMatrix.origin = matrix.origin
        var table = Table(features: featureMatrix, target: nil, featureNames: featureIndices.map { header[$0] }, ignoredColumns: ignored)
        if !oneHot.isEmpty { table.categories = featureIndices.map { oneHot[$0]?.names } }
        for column in rawColumns {
            if let index = header.firstIndex(of: column), let cells = texts[index + 1] { table.rawColumns[column] = cells }
        }
        if missing != .refused { (table.fills, table.missingCounts) = (fills, missingCounts) }
        if !targetIndices.isEmpty, targetRequired {
            var values = [Float]()
            values.reserveCapacity(matrix.rows * targetIndices.count)
            for row in 0..<matrix.rows {
                for index in targetIndices { values.append(matrix.values[row * matrix.columns + index]) }
            }
            if targets.count == 1, let labels = texts[targetIndices[0] + 1] {
                let classified = try classIndices(labels, classes: classes, path: path, origin: matrix.origin, column: targetIndices[0] + 1,
                                                  columnName: targets[0])
                values = classified.indices
                table.classNames = classified.names
            } else if let place = values.firstIndex(where: \.isNaN) {
                let (row, index) = (place / targetIndices.count, targetIndices[place % targetIndices.count])
                throw DataFileError.missingValue(path: path, line: matrix.origin?.line(ofRow: row) ?? row + 1, column: index + 1,
                                                 columnName: hasHeader ? header[index] : nil, reason: "the target is missing")
            }
            var columns = DataMatrix(rows: matrix.rows, columns: targetIndices.count, values: values,
                                     isIntegral: values.allSatisfy { $0.rounded() == $0 })
            columns.origin = matrix.origin
            columns.origin?.columnName = targets.count == 1 ? targets[0] : nil
            table.target = columns
        }
        return table
    }

    /// For each feature column of text (by its 0-based index in the file), every row's category
    /// index (−1 for a missing value) and the categories: those `textFeatures` records for it, or
    /// the distinct values in sorted order, at most ``categoriesAllowed``.
    private static func categoryColumns(_ texts: [Int: [String]], featureIndices: [Int], header: [String]?,
                                        textFeatures: TextFeatures, path: String, origin: DataMatrix.Origin?) throws
        -> [Int: (indices: [Float], names: [String])]
    {
        var oneHot: [Int: (indices: [Float], names: [String])] = [:]
        for (position, index) in featureIndices.enumerated() {
            guard let cells = texts[index + 1] else { continue }
            var known: [String]?
            if case .recorded(let categories) = textFeatures { known = categories[position] }
            let coded = try classIndices(cells, classes: known, path: path, origin: origin, column: index + 1,
                                         columnName: header?[index], kind: .category)
            if known == nil, coded.names.count > categoriesAllowed {
                throw LoadError.mismatch("\(path): column \(header.map { "'\(Excerpt.escape($0[index]))'" } ?? String(index + 1)) holds "
                    + "\(grouped(coded.names.count)) different text values, too many to one-hot (at most \(grouped(categoriesAllowed))); "
                    + "an id or free text is no input: leave the column out of the file")
            }
            oneHot[index] = coded
        }
        return oneHot
    }

    /// Puts each numeric feature column's fill in place of its missing values (NaN) in `values`, the
    /// inputs (rows of `width`) made from `matrix`: the fill `missing` records for it, or the mean of
    /// its values (in the training rows, for `meanOfTraining`). Returns the fills (nil for a column of categories, `oneHot`) and the count of
    /// missing values, per feature column.
    private static func fillMissing(_ values: inout [Float], width: Int, from matrix: DataMatrix, featureIndices: [Int],
                                    oneHot: [Int: (indices: [Float], names: [String])], missing: MissingValues,
                                    header: [String]?, path: String) throws -> (fills: [Float?], counts: [Int]) {
        var fills: [Float?] = [], counts: [Int] = []
        var offset = 0  // the column's first input
        // the rows whose values the means are taken over
        var meanRows = Array(0..<matrix.rows)
        if case let .meanOfTraining(fraction, seed) = missing {
            meanRows = try Dataset.splitRows(matrix.rows, validationFraction: fraction, seed: seed).training
        }
        if case .meanOfRows(let rows) = missing {
            guard rows.allSatisfy({ (0..<matrix.rows).contains($0) }) else {
                throw LoadError.mismatch("\(path): the rows to take means over run past its \(matrix.rows) rows")
            }
            meanRows = rows
        }
        for (position, index) in featureIndices.enumerated() {
            defer { offset += oneHot[index]?.names.count ?? 1 }
            if let coded = oneHot[index] {
                fills.append(nil)
                counts.append(coded.indices.filter { $0 < 0 }.count)
                continue
            }
            let column = { (row: Int) in matrix.values[row * matrix.columns + index] }
            let name = header.map { "'\(Excerpt.escape($0[index]))'" } ?? String(index + 1)
            var fill: Float?
            var recorded = false
            if case .recorded(let fills) = missing {
                (fill, recorded) = (fills[position], true)
            } else {
                let present = meanRows.lazy.map(column).filter { !$0.isNaN }
                if !present.isEmpty { fill = Float(present.reduce(0.0) { $0 + Double($1) } / Double(present.count)) }
            }
            let missingCount = (0..<matrix.rows).lazy.filter { column($0).isNaN }.count
            counts.append(missingCount)
            fills.append(fill)
            guard missingCount > 0 else { continue }
            guard let fill else {
                throw LoadError.mismatch(recorded
                    ? "\(path): the model records no fill for the missing values of column \(name)"
                    : "\(path): column \(name) has no values\(meanRows.count < matrix.rows ? " in the training rows" : ""), every cell is missing: "
                        + "leave it out of the file")
            }
            for row in 0..<matrix.rows where values[row * width + offset].isNaN { values[row * width + offset] = fill }
        }
        return (fills, counts)
    }

    /// The cells of the CSV columns `columns` names (by header name, or by number from 1 without
    /// a header), as text as written (unquoted; empty cells included), one array per column, in
    /// `columns`' order: ids to copy into predictions beside each row.
    /// - Throws: as ``readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)``
    ///   for the file, and `LoadError.unknownColumn` for a column that is not there.
    public static func readTextColumns(path: String, columns: [String], hasHeader: Bool = true) throws -> [[String]] {
        let (file, member) = fileAndMember(path)
        let (bytes, name) = try unpack(DataFileIO.readAll(path: file), name: DataFileIO.name(file), member: member)
        return try decodeTextColumns(bytes, name: name, columns: columns, hasHeader: hasHeader)
    }

    /// ``readTextColumns(path:columns:hasHeader:)`` on a CSV's bytes already read (and unpacked).
    public static func decodeTextColumns(_ bytes: [UInt8], name path: String, columns: [String], hasHeader: Bool = true) throws
        -> [[String]]
    {
        if let names = firstLineNames(bytes, hasHeader: hasHeader), let absent = columns.first(where: { !names.contains($0) }) {
            throw LoadError.unknownColumn(path: path, column: absent, available: names)
        }
        let wanted = Set(columns)
        let (header, matrix, texts) = try CSVFile.decode(bytes, name: path, hasHeader: hasHeader, textColumns: { count, header in
            columnNames(header, count: count).map { wanted.contains($0) ? .raw : .skip }
        })
        let names = columnNames(header, count: matrix.columns)
        return try columns.map { column in
            guard let index = names.firstIndex(of: column), let cells = texts[index + 1] else {
                throw LoadError.unknownColumn(path: path, column: column, available: names)
            }
            return cells
        }
    }

    /// A CSV's column names: its header, or without one the numbers 1…`count`.
    static func columnNames(_ header: [String]?, count: Int) -> [String] {
        header ?? (0..<count).map { String($0 + 1) }
    }

    /// The column names by the file's first line alone (before its cells are read): the header, or
    /// without one the numbers of the first row's cells. Nil when that line cannot be split.
    static func firstLineNames(_ bytes: [UInt8], hasHeader: Bool) -> [String]? {
        CSVFile.firstLineCells(bytes).map { columnNames(hasHeader ? $0 : nil, count: $0.count) }
    }

    /// Refuses to leave out a column that is not among `names`, a target or one of `features`.
    static func checkDropped(_ dropping: [String], names: [String], targets: [String], features: [String]?, path: String) throws {
        for column in dropping {
            guard names.contains(column) else { throw LoadError.unknownColumn(path: path, column: column, available: names) }
            if targets.contains(column) {
                throw LoadError.mismatch("\(path): '\(Excerpt.escape(column))' is \(targets.count == 1 ? "the target" : "a target"); it cannot be left out")
            }
            if features?.contains(column) ?? false {
                throw LoadError.mismatch("\(path): '\(Excerpt.escape(column))' is one of the model's input columns; it cannot be left out")
            }
        }
    }

    /// What a column of text holds: class labels (the target) or a feature's categories.
    enum TextKind { case label, category }

    /// Text labels as class indices: by their place in `classes`, or without it in the sorted order
    /// of the distinct labels (returned as `names`). A column of mostly numbers whose first cell
    /// was text (a missing value such as N/A) is refused at its first text cell, and so is a label
    /// not in `classes`, each naming its line (from `origin`) and `column`. A feature's categories
    /// (`kind`) are read the same way, except that a missing one ("") has the index −1 (no
    /// category); a missing label is an error.
    static func classIndices(_ labels: [String], classes: [String]?, path: String, origin: DataMatrix.Origin?, column: Int,
                             columnName: String?, kind: TextKind = .label) throws -> (indices: [Float], names: [String]) {
        func fail(_ row: Int, _ reason: String) -> DataFileError {
            let line = origin?.line(ofRow: row) ?? row + 1
            return CSVFile.isMissing(labels[row])
                ? .missingValue(path: path, line: line, column: column, columnName: columnName, reason: reason)
                : .csv(path: path, line: line, column: column, columnName: columnName, reason: reason)
        }
        // "" is a missing value (read only where missing values are allowed): no category, or for a label an error
        let numbers = labels.filter { Float($0) != nil }.count
        let present = labels.filter { !$0.isEmpty }.count
        if numbers * 2 > present, let row = labels.firstIndex(where: { !$0.isEmpty && Float($0) == nil }) {
            throw fail(row, "'\(Excerpt.escape(labels[row]))' is not a number (the column's other cells are mostly numbers)")
        }
        let names = classes ?? Array(Set(labels).subtracting([""])).sorted()
        let lookup = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        var indices = [Float](repeating: 0, count: labels.count)
        for (row, label) in labels.enumerated() {
            if label.isEmpty {
                guard kind == .category else { throw fail(row, "the target is missing") }
                indices[row] = -1
                continue
            }
            guard let index = lookup[label] else {
                let known = kind == .label ? "the model's classes" : "the categories the model knows for this column"
                throw fail(row, "'\(Excerpt.escape(label))' is not one of \(known) (\(LoadError.listed(names, quoted: true)))")
            }
            indices[row] = Float(index)
        }
        return (indices, names)
    }

    /// Reads targets like ``readMatrix(path:)``, except that a CSV without a header whose one
    /// column holds text (class names such as `setosa`, one a line) is read as labels: class
    /// indices by their place in `classes` (a checkpoint's recorded class names) or, without it, in
    /// the sorted order of the distinct labels, returned as `classNames` (nil for numeric targets).
    /// - Throws: as ``readMatrix(path:)``; `DataFileError` for a label not in `classes`, or for text
    ///   labels beside other columns.
    public static func readTargets(path: String, classes: [String]? = nil) throws -> (targets: DataMatrix, classNames: [String]?) {
        let (file, member) = fileAndMember(path)
        return try decodeTargets(DataFileIO.readAll(path: file), name: DataFileIO.name(file), member: member, classes: classes)
    }

    /// ``readTargets(path:classes:)`` on bytes already read; `name` and `member` as for ``decodeMatrix(_:name:member:)``.
    public static func decodeTargets(_ bytes: [UInt8], name: String, member: String? = nil, classes: [String]? = nil) throws
        -> (targets: DataMatrix, classNames: [String]?)
    {
        let (unpacked, innerName) = try unpack(bytes, name: name, member: member)
        if let matrix = try decodeBinary(unpacked, name: innerName) { return (matrix, nil) }
        let (_, matrix, texts) = try CSVFile.decode(unpacked, name: innerName, hasHeader: false,
                                                    textColumns: { _, _ in [.detect] })
        guard let labels = texts[1] else { return (matrix, nil) }
        guard matrix.columns == 1 else {
            throw DataFileError.malformed(path: innerName, reason: "text labels must be the file's only column; it has \(matrix.columns)")
        }
        let classified = try classIndices(labels, classes: classes, path: innerName, origin: matrix.origin, column: 1, columnName: nil)
        var targets = DataMatrix(rows: matrix.rows, columns: 1, values: classified.indices, isIntegral: true)
        targets.origin = matrix.origin
        return (targets, classified.names)
    }

    /// The loss a target suggests: cross-entropy for one integer-valued column or integer
    /// one-hot rows, else MSE.
    public static func defaultLoss(for target: DataMatrix) -> Loss {
        // an inconsistent matrix made in code: ``dataset(inputs:targets:loss:outputs:)`` refuses it
        guard target.isConsistent else { return .meanSquaredError }
        if target.columns == 1 { return target.isIntegral && target.values.allSatisfy { $0 >= 0 } ? .crossEntropy : .meanSquaredError }
        return target.isIntegral && isOneHot(target) ? .crossEntropy : .meanSquaredError
    }

    /// Class counts inferred from the labels up to this many are accepted whatever the row count.
    static let classesAlwaysAllowed = 1024

    /// `n` with thousands separated by commas: 16,777,216.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func isOneHot(_ target: DataMatrix) -> Bool {
        for row in 0..<target.rows {
            let values = target.values[(row * target.columns)..<((row + 1) * target.columns)]
            guard values.allSatisfy({ $0 == 0 || $0 == 1 }), values.reduce(0, +) == 1 else { return false }
        }
        return true
    }

    /// Pairs inputs with targets for `loss`: one integer column becomes class indices for
    /// cross-entropy, anything else dense rows (for binary cross-entropy, one 0/1 column or rows
    /// of 0/1 labels, one output each).
    /// - Parameters:
    ///   - outputs: the model's output count when known (from a checkpoint); else it comes
    ///     from the data (the largest label + 1, or the target's columns).
    /// - Returns: the data set and the number of outputs the model needs.
    /// - Throws: `LoadError.mismatch` for a matrix whose shape does not hold together
    ///   (``DataMatrix/isConsistent``, or no columns), rows that disagree, labels that are not 0, 1, 2, …, a label of 2^24 or
    ///   more (Float32 holds integers exactly only up to 2^24), a label outside the model's classes, or, when the
    ///   class count comes from the data, a largest label implying more than max(rows, 1024) classes (most likely
    ///   a wrong column; the message names the label and where it is).
    public static func dataset(inputs: DataMatrix, targets: DataMatrix, loss: Loss, outputs: Int? = nil)
        throws -> (dataset: Dataset, outputs: Int)
    {
        for (name, matrix) in [("inputs", inputs), ("targets", targets)] {
            guard matrix.isConsistent, matrix.columns >= 1 else {
                throw LoadError.mismatch("the \(name) are a \(matrix.rows)×\(matrix.columns) matrix holding \(matrix.values.count) values")
            }
        }
        guard inputs.rows == targets.rows else {
            throw LoadError.mismatch("the inputs have \(inputs.rows) rows but the targets have \(targets.rows)")
        }
        if loss == .crossEntropy, targets.columns == 1 {
            guard targets.values.allSatisfy({ $0 >= 0 && $0.isFinite && $0.rounded() == $0 }) else {
                throw LoadError.mismatch("cross-entropy needs class labels 0, 1, 2, … in the target column")
            }
            var largestIndex = 0
            for index in targets.values.indices where targets.values[index] > targets.values[largestIndex] {
                largestIndex = index
            }
            let largest = targets.values.isEmpty ? 0 : targets.values[largestIndex]
            func labelAndPlace() -> String {
                let place = targets.origin?.location(ofRow: largestIndex) ?? "target row \(largestIndex + 1)"
                return (targets.origin.map { "\($0.path): " } ?? "") + "label \(CSVFile.format(largest)) (\(place))"
            }
            if largest >= Dataset.exactIntegerLimit {
                throw LoadError.mismatch(
                    "\(labelAndPlace()) is too large for a class label: Float32 represents integers exactly only up to \(grouped(Int(Dataset.exactIntegerLimit)))")
            }
            let classes = Int(largest) + 1
            if let outputs, classes > outputs {
                throw LoadError.mismatch("class label \(classes - 1) is outside the model's \(outputs) classes (0…\(outputs - 1))")
            }
            if outputs == nil, classes > max(targets.rows, Self.classesAlwaysAllowed) {
                let column = targets.origin?.columnName == nil ? "label" : "target"
                throw LoadError.mismatch(
                    "\(labelAndPlace()) would make \(grouped(classes)) classes, more than the \(grouped(targets.rows)) rows; is the \(column) column right?")
            }
            let count = outputs ?? max(classes, 2)
            let dataset = try Dataset(inputs: inputs.values, features: inputs.columns, targets: targets.values,
                                      encoding: .classIndices, targetWidth: 1)
            return (dataset, count)
        }
        if let outputs, targets.columns != outputs {
            throw LoadError.mismatch("the targets have \(targets.columns) columns but the model has \(outputs) outputs")
        }
        if loss == .crossEntropy {
            for row in 0..<targets.rows {
                let values = targets.values[(row * targets.columns)..<((row + 1) * targets.columns)]
                let sum = values.reduce(0, +)
                guard values.allSatisfy({ $0 >= 0 }), abs(sum - 1) < 1e-3 else {
                    throw LoadError.mismatch("target row \(row + 1) is not one-hot or a row of probabilities (it sums to \(sum))")
                }
            }
        }
        if loss == .binaryCrossEntropy, let bad = targets.values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw LoadError.mismatch("binary cross-entropy needs targets of 0 and 1 (or probabilities in [0, 1]); target row \(bad / targets.columns + 1), column \(bad % targets.columns + 1) is \(targets.values[bad])")
        }
        let dataset = try Dataset(inputs: inputs.values, features: inputs.columns, targets: targets.values,
                                  encoding: .dense, targetWidth: targets.columns)
        return (dataset, targets.columns)
    }
}
