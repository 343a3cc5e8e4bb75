import ArgumentParser
import FoundationEssentials
import MLPKit
#if canImport(Glibc)
import Glibc
#endif

/// What `eval` and `predict` share besides the data: the loss for a checkpoint that does not
/// record one, the rows per forward pass, and the device.
struct InferenceOptions: ParsableArguments {
    @Option(help: "mse, cross-entropy or binary-cross-entropy, for a checkpoint that does not record its loss.")
    var loss: Loss?

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Rows per forward pass.")
    var batchSize: Int = 1024

    @Option(help: "auto (a CUDA GPU when one is usable, else the CPU), cpu, opencl or cuda.")
    var device: DeviceChoice = .auto

    func validate() throws {
        try require(batchSize >= 1, "--batch-size must be at least 1, got \(batchSize)")
    }

    /// The network of `checkpoint` (read from `path`) with its recorded loss, or `--loss` where it
    /// records none. `--loss` disagreeing with a recorded loss is an error, and so is no loss at
    /// all unless `fallback` is given.
    func network(from checkpoint: Checkpoint, path: String, fallback: Loss? = nil) throws -> MLP {
        try checkpoint.checkLossFlag(loss, path: path)
        guard let chosen = loss ?? checkpoint.loss ?? fallback else {
            throw ValidationError("\(path) records no loss: pass --loss mse, cross-entropy or binary-cross-entropy")
        }
        return try checkpoint.model(defaultLoss: chosen)
    }
}

extension Checkpoint {
    /// A `--loss` naming another loss than the one this checkpoint (read from `path`) records is
    /// an error; a checkpoint that records none takes any.
    func checkLossFlag(_ flag: Loss?, path: String) throws {
        if let recorded = loss, let flag, flag != recorded {
            throw ValidationError("--loss \(flag.rawValue) disagrees with \(path), which records \(recorded.rawValue)")
        }
    }
}

/// Where the data comes from: `--x FILE --y FILE`, or `--data FILE.csv --target COLUMN`.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Inputs: .npy, .csv without a header (commas, semicolons, tabs or spaces), or an MNIST IDX images file; gzip-compressed or not; from a .npz (zip) archive as FILE.npz:NAME; - reads standard input.",
        valueName: "file"))
    var x: String?

    @Option(help: ArgumentHelp(
        "Targets: .npy, .csv without a header (numbers, or one column of class names), or an MNIST IDX labels file; gzip-compressed or not; from a .npz (zip) archive as FILE.npz:NAME; - reads standard input.",
        valueName: "file"))
    var y: String?

    @Option(help: ArgumentHelp("A CSV with a header row (commas, semicolons, tabs or spaces; gzip-compressed or not; - reads standard input); every column but --target (and --drop) is a feature, a column of text one-hot categories.", valueName: "file"))
    var data: String?

    @Option(help: ArgumentHelp("The target column of --data, by name (default with a checkpoint that records one: eval, predict, a resumed train).", valueName: "column"))
    var target: String?

    @Option(help: ArgumentHelp("Columns of --data to leave out, comma-separated (by number with --no-header): an id, free text.",
                               valueName: "columns"))
    var drop: String?

    @Flag(name: .customLong("no-header"), help: "--data has no header row: its columns are numbered from 1, --target is a number, and columns are read by position.")
    var noHeader = false

    @Option(help: ArgumentHelp("What separates the cells of every CSV this command reads: auto (told by the first line), comma, semicolon, tab, bar, or space (runs of spaces and tabs).",
                               valueName: "separator"))
    var separator: String = "auto"

    func validate() throws {
        try Self.requireOneStandardInput([("--x", x), ("--y", y), ("--data", data)])
        try require(separator.lowercased() == "auto" || CSVSeparator(name: separator) != nil,
                    "--separator must be auto, comma, semicolon, tab, bar or space, got '\(Excerpt.escape(separator))'")
    }

    /// The separator `--separator` names (nil for auto: each file's first line tells it).
    var chosenSeparator: CSVSeparator? { CSVSeparator(name: separator) }

    /// `error` about a column that is not in `file`, with a hint when the file's first line may
    /// have been split at the wrong separator (`--separator auto`, and a column's name holding
    /// another one: `a;b;c,d` read as semicolon-separated); other errors as they are.
    func separatorHint(for error: DataLoader.LoadError, file: String) -> Error {
        let available: [String]
        switch error {
        case .unknownColumn(_, _, let names), .missingFeature(_, _, _, _, let names): available = names
        case .mismatch: return error
        }
        guard chosenSeparator == nil, let read = DataLoader.separator(path: file),
              available.contains(where: { $0.contains(where: { ",;|\t".contains($0) }) }) else { return error }
        return CommandError("\(error); its first line read as \(read)-separated (--separator chooses another)")
    }

    /// Standard input (`-`) can be read by one flag only.
    static func requireOneStandardInput(_ flags: [(String, String?)]) throws {
        let reading = flags.filter { $0.1 == "-" }.map(\.0)
        try require(reading.count <= 1, "\(reading.joined(separator: " and ")) both read standard input (-); give one of them a file")
    }

    /// Inputs and targets, read and checked, and for `--data` the CSV's column names (and class
    /// names, for a target of text labels). With a `checkpoint` that records its columns
    /// (`data.features`, `data.target`; a model trained from a CSV), `--data` is read by those
    /// names: the features are those columns in the model's order wherever they stand, other
    /// columns are left out (with a note on stderr), and the recorded target is the target when
    /// `--target` is not given; text labels (there, or in a `--y` CSV of one column) are its
    /// recorded classes (`data.classes`).
    ///
    /// Missing values in feature columns take the fills the checkpoint records (`data.fill`), or
    /// without them, as `missing` says (`train --fill-missing`: each numeric column's mean).
    /// `rawColumns` leaves out more columns of `--data` than `--drop` names, their cells kept as
    /// written in `LoadedData.rawColumns` (train's weight column).
    func load(requireTargets: Bool = true, columnsOf checkpoint: Checkpoint? = nil,
              missing: DataLoader.MissingValues = .refused, notes: Bool = true, rawColumns: [String] = []) throws -> LoadedData {
        if let data {
            guard x == nil, y == nil else { throw ValidationError("use either --data/--target or --x/--y, not both") }
            // without a header: columns by number and by position (no names to record or to match)
            let targets = try targetColumns(in: data) ?? (noHeader ? nil : checkpoint?.targetNames)
            if requireTargets, targets == nil {
                throw ValidationError("--data needs --target COLUMN naming the target column" + (noHeader ? " (by its number, with --no-header)" : ""))
            }
            // a fresh model takes a column of text as categories; a checkpoint's model, those it records
            let textFeatures = checkpoint.map { $0.categories.map { .recorded($0) } ?? .refused } ?? DataLoader.TextFeatures.detected
            let table: DataLoader.Table
            do {
                table = try DataLoader.readTable(path: data, targets: targets ?? [], targetRequired: requireTargets,
                                                 features: noHeader ? nil : checkpoint?.featureNames, classes: checkpoint?.classNames,
                                                 textFeatures: textFeatures, dropping: try dropped(),
                                                 missing: checkpoint?.fills.map { .recorded($0) } ?? missing,
                                                 hasHeader: !noHeader, rawColumns: rawColumns)
            } catch DataFileError.missingValue(let path, let line, let column, let name, let reason)
                where checkpoint == nil && missing == .refused && !(targets ?? []).contains(noHeader ? "\(column)" : name ?? "") {
                // a fresh model could have filled it (a feature's, not the target's: that one is never filled)
                throw DataFileError.missingValue(path: path, line: line, column: column, columnName: name,
                                                 reason: reason + " (--fill-missing fills missing values)")
            } catch let error as DataLoader.LoadError {
                throw separatorHint(for: error, file: data)
            }
            var said: [String] = []
            if !table.ignoredColumns.isEmpty {
                said.append("note: \(DataLoader.displayName(data)): left out \(table.ignoredColumns.count == 1 ? "column" : "columns") "
                    + "\(DataLoader.LoadError.listed(table.ignoredColumns, quoted: true)), not among the model's inputs")
            }
            if let counts = table.missingCounts, let fills = table.fills, counts.contains(where: { $0 > 0 }) {
                let recorded = checkpoint?.fills != nil
                let filled = table.featureNames.indices.filter { counts[$0] > 0 }.map { column in
                    return "\(Self.label(table.featureNames[column], numbered: noHeader)) \(Format.grouped(counts[column])) "
                        + (fills[column].map { "(\(recorded ? "the model's" : "mean") \($0))" } ?? "(no category)")
                }
                said.append("note: \(DataLoader.displayName(data)): filled missing values: " + filled.prefix(8).joined(separator: ", ")
                    + (filled.count > 8 ? ", … (\(filled.count) columns)" : ""))
            }
            if notes { said.forEach(Terminal.writeError) }
            let source = (targets ?? []).count == 1 ? "the target '\(targets![0])'"
                : "the targets \(DataLoader.LoadError.listed(targets ?? [], quoted: true))"
            var loaded = LoadedData(inputs: table.features, targets: table.target, classNames: table.classNames,
                                    categories: table.categories, fills: table.fills, featureColumns: table.featureNames,
                                    targetSource: source, rawColumns: table.rawColumns, notes: said)
            if !noHeader { (loaded.featureNames, loaded.targetNames) = (table.featureNames, table.target == nil ? nil : targets) }
            return loaded
        }
        if noHeader { throw ValidationError("--no-header goes with --data (a --x or --y CSV never has a header)") }
        if drop != nil { throw ValidationError("--drop goes with --data (it names CSV columns)") }
        if missing != .refused { throw ValidationError("--fill-missing goes with --data (missing values in CSV columns)") }
        guard let x else { throw ValidationError("no data: pass --x FILE --y FILE, or --data FILE.csv --target COLUMN") }
        if target != nil { throw ValidationError("--target goes with --data, not with --x") }
        let inputs = try DataLoader.readMatrix(path: x)
        guard let y else {
            if requireTargets { throw ValidationError("--x needs --y FILE with the targets") }
            return LoadedData(inputs: inputs)
        }
        let (targets, classNames) = try DataLoader.readTargets(path: y, classes: checkpoint?.classNames)
        guard targets.rows == inputs.rows else {
            throw CommandError("\(x) has \(inputs.rows) rows but \(y) has \(targets.rows)")
        }
        return LoadedData(inputs: inputs, targets: targets, classNames: classNames, targetSource: "--y \(y)")
    }
}

extension DataOptions {
    /// A CSV column as messages name it: 'price', or "column 3" by its number without a header.
    static func label(_ column: String, numbered: Bool) -> String {
        numbered ? "column \(column)" : "'\(Excerpt.escape(column))'"
    }

    /// The columns `--target` names in `file`: split at commas, each trimmed (by number with
    /// --no-header), unless the whole of it is one of the file's columns (a name with a comma).
    func targetColumns(in file: String) throws -> [String]? {
        guard let target else { return nil }
        let whole = Self.trimmingSpaces(target[...])
        if noHeader, !target.contains(","), (Int(whole) ?? 0) < 1 {
            throw ValidationError("with --no-header, --target is a column number from 1, got '\(target)'")
        }
        if !noHeader, target.contains(","), DataLoader.columnNames(path: file, hasHeader: true)?.contains(whole) ?? false { return [whole] }
        let columns = try Self.columnList(target, flag: "--target", byNumber: noHeader)
        if let twice = columns.indices.first(where: { columns[..<$0].contains(columns[$0]) }) {
            throw ValidationError("--target names the column '\(Excerpt.escape(columns[twice]))' twice")
        }
        return columns
    }

    /// The columns `--drop` names: split at commas, each trimmed; by number with --no-header.
    func dropped() throws -> [String] {
        try drop.map { try Self.columnList($0, flag: "--drop", byNumber: noHeader) } ?? []
    }

    /// `text` without the spaces and tabs (not line breaks) at either end.
    static func trimmingSpaces(_ text: Substring) -> String {
        let isSpace = { (character: Character) in character.isWhitespace && !character.isNewline }
        return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }

    /// Column names (or numbers from 1, `byNumber`) separated by commas, each trimmed, as `flag` gives them.
    static func columnList(_ list: String, flag: String, byNumber: Bool) throws -> [String] {
        let names = list.split(separator: ",", omittingEmptySubsequences: false).map(Self.trimmingSpaces)
        if let bad = names.first(where: { $0.isEmpty || (byNumber && (Int($0) ?? 0) < 1) }) {
            throw ValidationError("\(flag) takes column \(byNumber ? "numbers from 1" : "names") separated by commas, got '\(bad)' in '\(list)'")
        }
        return names
    }
}

/// What `DataOptions.load` read: the inputs, the targets (when asked for or present), and for a
/// CSV with a header the features' and the target's column names, the class names of a
/// target of text labels (the targets are then their indices), and the categories of feature
/// columns of text (one-hot in `inputs`).
struct LoadedData {
    var inputs: DataMatrix
    var targets: DataMatrix?
    var featureNames: [String]?
    /// The target columns' names (one, or one per output), from a CSV with a header.
    var targetNames: [String]?
    var classNames: [String]?
    var categories: [[String]?]?
    /// The values missing values took, per feature column (nil for categories), when filled.
    var fills: [Float?]?
    /// The feature columns as the file names them (their numbers without a header), for messages.
    var featureColumns: [String] = []
    /// Where the targets come from, for messages: "the target 'species'" or "--y labels.txt".
    var targetSource = ""
    /// The cells of the columns `load(rawColumns:)` named, as written, by name.
    var rawColumns: [String: [String]] = [:]
    /// The notes reading the data gave (columns left out, missing values filled), written to
    /// stderr as it read them unless `load(notes: false)`.
    var notes: [String] = []
}

/// `--device auto|cpu|opencl|cuda`.
enum DeviceChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, cpu, opencl, cuda
}

extension Loss: ExpressibleByArgument {}

/// Checks a flag's value, throwing `ValidationError` naming the flag.
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw ValidationError(message()) }
}

/// Parses `--hidden 256,128` (an empty string for no hidden layer).
func parseHiddenSizes(_ text: String) throws -> [Int] {
    if text.trimmed.isEmpty { return [] }
    return try parseSizes(text, flag: "--hidden", example: "256,128")
}

/// Parses positive sizes separated by commas, naming `flag` (and a well-formed `example`) when one is not.
func parseSizes(_ text: String, flag: String, example: String) throws -> [Int] {
    try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
        let trimmed = part.trimmed
        guard let size = Int(trimmed), size >= 1 else {
            throw ValidationError("\(flag) takes positive sizes separated by commas, like \(example); '\(trimmed)' is not one")
        }
        return size
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmed: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// Output paths checked before any work: each one's folder exists and is writable, none is a
/// folder itself, no two outputs are the same file, and no output is one of the inputs (which
/// the run would overwrite).
struct OutputPaths {
    /// (flag, path) for each file the command will write.
    var outputs: [(flag: String, path: String)]
    /// (flag, path) for each file it reads and must not overwrite.
    var inputs: [(flag: String, path: String)]

    func check() throws {
        // standard output and input (-) are streams, not files to check or to overwrite
        let outputs = outputs.filter { $0.path != "-" }, inputs = inputs.filter { $0.path != "-" }
        for (flag, path) in outputs {
            guard !path.isEmpty else { throw ValidationError("\(flag) needs a file name") }
            var status = stat()
            if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
                throw CommandError("\(flag) \(path) is a folder; give a file name")
            }
            let folder = Self.folder(of: path)
            guard stat(folder, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw CommandError("cannot write \(path): the folder \(folder) does not exist")
            }
            guard access(folder, W_OK) == 0 else { throw CommandError("cannot write \(path): the folder \(folder) is not writable") }
        }
        for (index, (flag, path)) in outputs.enumerated() {
            for (otherFlag, other) in outputs[(index + 1)...] where Self.same(path, other) {
                throw ValidationError("\(flag) and \(otherFlag) name the same file, \(path)")
            }
            for (inputFlag, input) in inputs where Self.same(path, input) {
                throw ValidationError("\(flag) \(path) would overwrite the \(inputFlag) file")
            }
        }
    }

    /// The folder a file would be written in.
    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Whether two paths name one file: the same file when both exist (links and `..` included),
    /// else the same path once made absolute.
    static func same(_ a: String, _ b: String) -> Bool {
        var (first, second) = (stat(), stat())
        if stat(a, &first) == 0, stat(b, &second) == 0 {
            return first.st_dev == second.st_dev && first.st_ino == second.st_ino
        }
        return absolute(a) == absolute(b)
    }

    static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var parts: [Substring] = []
        for part in full.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return "/" + parts.joined(separator: "/")
    }
}

extension DataOptions {
    /// The files the data flags name, for `OutputPaths.inputs`.
    var files: [(flag: String, path: String)] {
        Self.files([("--x", x), ("--y", y), ("--data", data)])
    }

    /// The files that `flags` name, those given, for `OutputPaths.inputs`: the archive itself for
    /// data.npz:x_train (the file a run must not overwrite).
    static func files(_ flags: [(flag: String, path: String?)]) -> [(flag: String, path: String)] {
        flags.compactMap { flag, path in path.map { (flag, DataLoader.fileAndMember($0).file) } }
    }
}

/// A non-finite value in words: NaN, infinity or −infinity.
func describeNonFinite(_ value: some BinaryFloatingPoint) -> String {
    value.isNaN ? "NaN" : value.isInfinite ? (value < 0 ? "-infinity" : "infinity") : "\(Double(value))"
}
