#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads and writes numeric CSV files.
public enum CSVFile {
    /// Reads a numeric CSV file.
    ///
    /// See ``decode(_:name:hasHeader:)`` for the accepted format.
    ///
    /// - Parameters:
    ///   - path: The file to read.
    ///   - hasHeader: Whether the first non-empty line holds column names.
    /// - Returns: The header's column names (nil without a header) and the rows as a matrix.
    /// - Throws: `DataFileError.cannotOpen` when the file cannot be read, otherwise as ``decode(_:name:hasHeader:)``.
    public static func read(path: String, hasHeader: Bool) throws -> (header: [String]?, matrix: DataMatrix) {
        try decode(DataFileIO.readAll(path: path), name: DataFileIO.name(path), hasHeader: hasHeader)
    }

    /// Parses the bytes of a numeric CSV file.
    ///
    /// Cells are separated by commas; spaces and tabs around a cell are ignored. A file separated
    /// otherwise (semicolons, tabs, vertical bars, or runs of spaces as `numpy.savetxt` writes) is
    /// read as if it had commas: ``CSVSeparator/detect(_:)`` says how it is told. Lines end in `\n` or `\r\n` (or, in
    /// a file with no `\n` at all, in `\r`: old Mac line endings); empty (or blank) lines are skipped wherever they
    /// appear, and the last line needs no newline. A UTF-8 byte-order mark is skipped. Every row must have as many
    /// cells as the first row (or the header). Cells are decimal numbers as `strtof` reads them (`-1.5`, `2e-3`,
    /// `.5`); a number may be wrapped in double quotes. Header names may be quoted (`"a","b"`, with `""` for a quote)
    /// and must differ from each other. A file with a NUL byte in its first 4 KiB, or one that starts like a
    /// gzip, .npy, zip or IDX file, is refused as not being text. Text from the file that a message quotes has its
    /// control characters escaped and is cut after 40 characters.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - name: The file's name, used in error messages.
    ///   - hasHeader: Whether the first non-empty line holds column names.
    /// - Returns: The header's column names (nil when `hasHeader` is false) and the rows as a matrix; `isIntegral`
    ///   is true when every value is integral.
    /// - Throws: `DataFileError.csv` naming the 1-based line and column (and the header's name for the column) for a
    ///   short or long row, an empty or non-numeric cell, NaN, infinity, a number beyond Float32's range, or a header
    ///   name used twice; `DataFileError.empty` for a file with no data rows (including a header-only file);
    ///   `DataFileError.malformed` for a file that is not text.
    public static func decode(_ bytes: [UInt8], name: String, hasHeader: Bool) throws -> (header: [String]?, matrix: DataMatrix) {
        let (header, matrix, _) = try decode(bytes, name: name, hasHeader: hasHeader, textColumns: nil)
        return (header, matrix)
    }

    /// How a column's cells are read: as numbers, as text, as text only when the column's cell
    /// on the first data row is text rather than a number, or not at all (`skip`: any text, empty
    /// cells included, and nothing kept; a column left out), or as it is written (`raw`: any text,
    /// empty cells included, kept; a column copied through).
    enum TextMode: Sendable { case number, text, detect, skip, raw }

    /// ``decode(_:name:hasHeader:)``, where columns may hold text (class names, categories):
    /// `textColumns` is asked once, with the number of columns and the header (nil without one),
    /// how each column is read (one mode per column, the first column's first; a column beyond
    /// them is numeric). A column of text has every cell read as text (unquoted as header names
    /// are; an empty one is an error), returned in `texts` under its 1-based number, one per row,
    /// with 0 in its place in the matrix (a skipped column has 0 there and no entry in `texts`).
    /// Without `textColumns` every column is numeric.
    ///
    /// With `missing`, a missing value (an empty cell, `NA`, `N/A`, `NaN`, `null` or `?`, in any
    /// case, quoted or not) is NaN in a numeric column and "" in a column of text, and a column to
    /// be detected whose first cells are missing is told by its first cell that is not.
    static func decode(_ bytes: [UInt8], name: String, hasHeader: Bool,
                       textColumns: ((_ columns: Int, _ header: [String]?) -> [TextMode])?, missing: Bool = false)
        throws -> (header: [String]?, matrix: DataMatrix, texts: [Int: [String]])
    {
        let (commas, separator) = CSVSeparator.commaSeparated(bytes)
        var result = try (commas ?? bytes).withUnsafeBufferPointer { buffer in
            try powersOfTen.withUnsafeBufferPointer { powers in
                try parse(buffer, powers: powers, name: name, hasHeader: hasHeader, textColumns: textColumns, missing: missing)
            }
        }
        result.matrix.origin?.separator = separator
        return result
    }

    /// Whether a cell's text (unquoted) stands for a missing value: empty, `NA`, `N/A`, `NaN`,
    /// `null` or `?`, in any case, spaces around it aside.
    public static func isMissing(_ text: String) -> Bool {
        let bytes = trimmed(text)
        guard bytes.count <= 4 else { return false }
        return ["", "na", "n/a", "nan", "null", "?"].contains(String(decoding: bytes, as: UTF8.self).lowercased())
    }

    /// Encodes rows as CSV with an optional header line.
    ///
    /// Numbers are printed so they read back exactly: integral values without a fraction (`3`, `-0`), others in
    /// Float's shortest round-trip form (`0.1`, `1e-05`). Header names and labels containing a comma, quote, line
    /// break or surrounding spaces are quoted. Every line, the last included, ends in `\n`.
    ///
    /// - Parameters:
    ///   - header: Column names, or nil for no header line.
    ///   - matrix: The rows to write; `values.count` should equal `rows * columns`.
    ///   - text: Columns of text written before the matrix's (ids, class names), each one cell per row.
    /// - Returns: The CSV text.
    public static func encode(header: [String]?, matrix: DataMatrix, text: [[String]] = []) -> String {
        var out = ""
        out.reserveCapacity(matrix.values.count * 12 + 64)
        if let header {
            out += header.map(quoteIfNeeded).joined(separator: ",")
            out += "\n"
        }
        let columns = max(matrix.columns, 1)
        for (index, value) in matrix.values.enumerated() {
            if index % columns == 0 {
                for cells in text where index / columns < cells.count { out += quoteIfNeeded(cells[index / columns]) + "," }
            }
            out += format(value)
            out += (index % columns == columns - 1 || index == matrix.values.count - 1) ? "\n" : ","
        }
        return out
    }

    // MARK: - Number formatting

    /// The text for one value: an integer when integral (below 2^63), else Float's shortest round-trip description.
    static func format(_ value: Float) -> String {
        if value.isFinite, value.rounded(.towardZero) == value, value.magnitude < 9.2e18 {
            if value == 0 { return value.sign == .minus ? "-0" : "0" }
            return String(Int64(value))
        }
        return value.description
    }

    private static func quoteIfNeeded(_ name: String) -> String {
        let special = name.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
        let padded = name.first == " " || name.last == " " || name.first == "\t" || name.last == "\t"
        guard special || padded else { return name }
        var quoted = "\""
        for character in name {
            if character == "\"" { quoted += "\"\"" } else { quoted.append(character) }
        }
        return quoted + "\""
    }

    // MARK: - Parsing

    /// 10^0 ... 10^22, each exactly representable as a Double.
    static let powersOfTen: [Double] = {
        var powers: [Double] = [1]
        for _ in 1...22 { powers.append(powers[powers.count - 1] * 10) }
        return powers
    }()

    /// A space or a tab: what is trimmed around a cell.
    @inline(__always)
    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// Where the text starts: past a UTF-8 byte-order mark, if there is one.
    static func textStart(_ base: UnsafePointer<UInt8>, count: Int) -> Int {
        count >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF ? 3 : 0
    }

    private static func parse(
        _ buffer: UnsafeBufferPointer<UInt8>, powers: UnsafeBufferPointer<Double>, name: String, hasHeader: Bool,
        textColumns textMode: ((Int, [String]?) -> [TextMode])?, missing: Bool
    ) throws -> (header: [String]?, matrix: DataMatrix, texts: [Int: [String]]) {
        let count = buffer.count
        var header: [String]? = nil
        // the 1-based columns of text (fixed by the first data row) and their cells, one array each
        var textColumns: [Int] = []
        var texts: [[String]] = []
        var skipped: [Bool] = []  // per text column: read past, not kept
        var raw: [Bool] = []  // per text column: any text, kept as written
        // with missing values, the columns to be detected whose cells have all been missing so far
        var undecided: Set<Int> = []
        var values: [Float] = []
        var columns = 0  // 0 until the header or first row fixes it.
        var rows = 0
        var integral = true
        var lineNumber = 0
        guard let base = buffer.baseAddress, count > 0 else {
            throw DataFileError.empty(path: name, reason: "CSV file is empty")
        }
        if let kind = FileSniffer.kind(buffer) { throw FileSniffer.notCSVError(kind, path: name) }
        let comma = UInt8(ascii: ",")
        var position = 0
        position = textStart(base, count: count)
        // Lines end in \n (a \r before it is dropped below); a file without any \n but with a \r uses old Mac
        // line endings, \r alone. (Only then: elsewhere a lone \r is part of a cell, and its message shows it.)
        let lineBreak = Int32(lineBreakByte(base, count: count))
        // Where each row is, for messages about a row later on (see DataMatrix.Origin).
        var firstDataLine: Int? = nil
        var headerLine = 0
        var lineOffsets: [(row: Int, offset: Int)] = []

        while position < count {
            lineNumber += 1
            let lineStart = position
            var lineEnd: Int
            if let newline = memchr(base + position, lineBreak, count - position) {
                lineEnd = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(newline))
                position = lineEnd + 1
            } else {
                lineEnd = count
                position = count
            }
            if lineEnd > lineStart, base[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            var firstVisible = lineStart
            while firstVisible < lineEnd, isSpace(base[firstVisible]) { firstVisible += 1 }
            if firstVisible == lineEnd { continue }  // empty or blank line

            if hasHeader, header == nil {
                let names = try parseHeader(base, from: lineStart, to: lineEnd, line: lineNumber, name: name)
                header = names
                headerLine = lineNumber
                columns = names.count
                continue
            }
            if rows == 0, let textMode {
                (textColumns, skipped, raw, undecided) = firstRowTextColumns(base, from: lineStart, to: lineEnd, columns: columns,
                                                                             header: header, mode: textMode, missing: missing)
                texts = textColumns.map { _ in [] }
            }
            if columns > 0 && values.capacity == 0 {
                // Reserve for a guess at the row count from this line's length, so large files rarely reallocate.
                // Never more than the rest of the file can hold (a cell takes a byte and a separator), so
                // a wide header over a short first row cannot make this reserve more than the file justifies.
                let estimate = (count - lineStart) / max(lineEnd - lineStart + 1, 1) + 1
                let (guess, overflow) = estimate.multipliedReportingOverflow(by: columns)
                values.reserveCapacity(min(overflow ? 0 : guess, (count - lineStart) / 2 + 1))
            }

            var column = 0
            var cursor = lineStart
            // the next column of text in this row (Int.max: none), and its place in textColumns
            var textSlot = 0
            var nextText = textColumns.first ?? .max
            while true {
                column += 1
                if columns > 0 && column > columns {
                    throw DataFileError.csv(
                        path: name, line: lineNumber, column: column, columnName: nil,
                        reason: "row has more than \(columns) cells (expected \(columns)\(hasHeader ? ", as in the header" : ", as in the first row"))")
                }
                while cursor < lineEnd, isSpace(base[cursor]) { cursor += 1 }
                if column == nextText {
                    let stop = try textCellOfColumn(base, from: cursor, to: lineEnd, line: lineNumber, column: column, header: header,
                                                    name: name, keep: !skipped[textSlot], raw: raw[textSlot], missing: missing,
                                                    into: &texts[textSlot])
                    textSlot += 1
                    nextText = textSlot < textColumns.count ? textColumns[textSlot] : .max
                    values.append(0)
                    if stop >= lineEnd { break }
                    cursor = stop + 1  // past the comma
                    continue
                }
                var value: Float
                var cellEnd: Int
                if let (fast, stop) = parseDecimal(base, from: cursor, to: lineEnd, powers: powers),
                   stop == lineEnd || base[stop] == comma || isSpace(base[stop]) {
                    value = fast
                    cellEnd = stop
                    while cellEnd < lineEnd, isSpace(base[cellEnd]) { cellEnd += 1 }
                    if cellEnd < lineEnd && base[cellEnd] != comma {
                        // Something after the number and spaces: let the slow path report it.
                        while cellEnd < lineEnd, base[cellEnd] != comma { cellEnd += 1 }
                        value = try slowCell(base, from: cursor, to: cellEnd, line: lineNumber, column: column, header: header, name: name,
                                             missing: missing)
                    }
                } else {
                    if !undecided.isEmpty, undecided.contains(column), isText(base, from: cursor, to: lineEnd, missing: true) {
                        undecided.remove(column)
                        // text in a column whose cells were all missing until now: a column of text after
                        // all, its earlier rows missing (""); this cell is read again, as the text it is
                        if (0..<rows).allSatisfy({ values[$0 * columns + column - 1].isNaN }) {
                            (textSlot, nextText) = (textColumns.firstIndex { $0 > column } ?? textColumns.count, column)
                            textColumns.insert(column, at: textSlot)
                            skipped.insert(false, at: textSlot)
                            raw.insert(false, at: textSlot)
                            texts.insert([String](repeating: "", count: rows), at: textSlot)
                            column -= 1
                            continue
                        }
                    }
                    // a quoted cell runs to its closing quote (commas inside it included), then to the comma
                    cellEnd = cursor < lineEnd && base[cursor] == UInt8(ascii: "\"") ? pastQuote(base, from: cursor, to: lineEnd) : cursor
                    while cellEnd < lineEnd, base[cellEnd] != comma { cellEnd += 1 }
                    value = try slowCell(base, from: cursor, to: cellEnd, line: lineNumber, column: column, header: header, name: name,
                                         missing: missing)
                }
                if !value.isFinite, !value.isNaN || !missing {
                    var textEnd = cellEnd
                    while textEnd < lineEnd, base[textEnd] != comma { textEnd += 1 }
                    throw DataFileError.csv(
                        path: name, line: lineNumber, column: column, columnName: columnName(header, column),
                        reason: "\(quoted(base, cursor, textEnd)) is beyond the Float32 range (about ±3.4e38)")
                }
                if integral && value.rounded(.towardZero) != value { integral = false }
                values.append(value)
                if cellEnd >= lineEnd { break }
                cursor = cellEnd + 1  // past the comma
            }
            if columns == 0 {
                columns = column
            } else if column < columns {
                throw DataFileError.csv(
                    path: name, line: lineNumber, column: column + 1, columnName: columnName(header, column + 1),
                    reason: "row has \(column) cells but \(columns) are expected\(hasHeader ? " (as in the header)" : " (as in the first row)")")
            }
            if let first = firstDataLine {
                let offset = lineNumber - first - rows
                if offset != (lineOffsets.last?.offset ?? 0) { lineOffsets.append((row: rows, offset: offset)) }
            } else {
                firstDataLine = lineNumber
            }
            rows += 1
        }
        // Checked once the rows are read, so a bad row is reported first (and a wide header's rows still go
        // through the row checks above, as the fuzzing regression Fuzz/Regressions/csv expects).
        if let header { try checkUniqueNames(header, line: headerLine, name: name) }
        if rows == 0 {
            throw DataFileError.empty(
                path: name, reason: header == nil ? "CSV file has no data rows" : "CSV file has a header but no data rows")
        }
        var matrix = DataMatrix(rows: rows, columns: columns, values: values, isIntegral: integral)
        matrix.origin = DataMatrix.Origin(path: name, firstLine: firstDataLine, lineOffsets: lineOffsets)
        let kept = textColumns.indices.filter { !skipped[$0] }
        return (header, matrix, Dictionary(uniqueKeysWithValues: kept.map { (textColumns[$0], texts[$0]) }))
    }

    /// The 1-based columns of text, by the cells of the first data row (from `start` to `end`):
    /// those `mode` says are text, skipped or raw (`skipped` and `raw` say which), and those it leaves to be
    /// detected whose cell is text. `columns` is the header's count (0 without a header: then this
    /// row's). With `missing`, a column to be detected whose cell is missing is `undecided`.
    private static func firstRowTextColumns(
        _ base: UnsafePointer<UInt8>, from start: Int, to end: Int, columns: Int, header: [String]?,
        mode: (Int, [String]?) -> [TextMode], missing: Bool
    ) -> (columns: [Int], skipped: [Bool], raw: [Bool], undecided: Set<Int>) {
        var starts: [Int] = []
        var index = start
        while true {
            starts.append(index)
            // a cell that cannot be split (an unterminated quote) ends the row: the main loop reports it
            guard let (_, stop) = try? textCell(base, from: index, to: end, line: 0, column: 0, columnName: nil, what: "", name: ""),
                  stop < end else { break }
            index = stop + 1
        }
        let count = columns > 0 ? columns : starts.count
        let modes = mode(count, header)
        var text: [Int] = [], skipped: [Bool] = [], raw: [Bool] = [], undecided: Set<Int> = []
        for cell in starts.indices {
            let mode = cell < modes.count ? modes[cell] : .number
            if missing, mode == .detect, let (cellText, _) = try? textCell(base, from: starts[cell], to: end, line: 0, column: 0,
                                                                             columnName: nil, what: "", name: ""),
               isMissing(cellText) {
                undecided.insert(cell + 1)
            } else if mode == .text || mode == .skip || mode == .raw
                        || (mode == .detect && isText(base, from: starts[cell], to: end, missing: missing)) {
                text.append(cell + 1)
                skipped.append(mode == .skip)
                raw.append(mode == .raw)
            }
        }
        return (text, skipped, raw, undecided)
    }

    /// A text column's cell from `start`, appended to `cells` when `keep` (as written when `raw`,
    /// else "" when `missing` and the cell is a missing value, and an empty cell is an error);
    /// returns where the cell ends. Out of line, so that the numeric cells' loop stays as it is
    /// without text.
    @inline(never)
    private static func textCellOfColumn(
        _ base: UnsafePointer<UInt8>, from start: Int, to end: Int, line: Int, column: Int, header: [String]?, name: String,
        keep: Bool, raw: Bool, missing: Bool, into cells: inout [String]
    ) throws -> Int {
        let (text, stop) = try textCell(base, from: start, to: end, line: line, column: column,
                                        columnName: columnName(header, column), what: "a text cell", name: name)
        if !keep { return stop }
        if raw {
            cells.append(text)
            return stop
        }
        if missing, isMissing(text) {
            cells.append("")
            return stop
        }
        if text.isEmpty {
            throw DataFileError.missingValue(path: name, line: line, column: column, columnName: columnName(header, column), reason: "empty cell")
        }
        cells.append(text)
        return stop
    }

    /// Whether the cell from `start` (spaces skipped) is text rather than a number: not empty, and
    /// not something `strtof` reads whole (a number, or NaN or infinity, which the numeric path
    /// refuses by name), quoted or not; with `missing`, not a missing value either.
    private static func isText(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int, missing: Bool) -> Bool {
        guard let (text, _) = try? textCell(base, from: start, to: end, line: 0, column: 0, columnName: nil, what: "", name: "") else {
            return true  // an unterminated quote: the label path reports it
        }
        if missing, isMissing(text) { return false }
        let bytes = trimmed(text)
        guard !bytes.isEmpty else { return false }
        return Array(bytes).withUnsafeBufferPointer { strtofExact($0.baseAddress!, from: 0, to: $0.count) == nil }
    }

    /// A cell's text as UTF-8 without the spaces and tabs around it.
    private static func trimmed(_ text: String) -> ArraySlice<UInt8> {
        var bytes = Array(text.utf8)[...]
        while let first = bytes.first, isSpace(first) { bytes = bytes.dropFirst() }
        while let last = bytes.last, isSpace(last) { bytes = bytes.dropLast() }
        return bytes
    }

    private static func columnName(_ header: [String]?, _ column: Int) -> String? {
        guard let header, column >= 1, column <= header.count else { return nil }
        return header[column - 1]
    }

    /// A cell's text in quotes for messages: control characters escaped, cut after 40 characters with "…".
    private static func quoted(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String {
        var stop = end
        while stop > start, isSpace(base[stop - 1]) { stop -= 1 }
        return "'" + Excerpt.escape(UnsafeBufferPointer(start: base + start, count: stop - start)) + "'"
    }

    /// Parses a cell the fast path declined: trims, unquotes, and reads it with `strtof`; NaN, infinity, empty and
    /// non-numeric cells throw, except that with `missing` a missing value (``isMissing(_:)``) is NaN. A finite
    /// result may still be infinite when the number overflows Float32.
    private static func slowCell(
        _ base: UnsafePointer<UInt8>, from start: Int, to end: Int, line: Int, column: Int, header: [String]?, name: String,
        missing: Bool
    ) throws -> Float {
        var first = start, stop = end
        while first < stop, isSpace(base[first]) { first += 1 }
        while stop > first, isSpace(base[stop - 1]) { stop -= 1 }
        func error(_ reason: String, missingValue: Bool = false) -> DataFileError {
            missingValue ? .missingValue(path: name, line: line, column: column, columnName: columnName(header, column), reason: reason)
                : .csv(path: name, line: line, column: column, columnName: columnName(header, column), reason: reason)
        }
        if first == stop {
            if missing { return .nan }
            throw error("empty cell", missingValue: true)
        }
        var numberStart = first, numberEnd = stop
        if stop - first >= 2, base[first] == UInt8(ascii: "\""), base[stop - 1] == UInt8(ascii: "\"") {
            numberStart += 1
            numberEnd -= 1
            while numberStart < numberEnd, isSpace(base[numberStart]) { numberStart += 1 }
            while numberEnd > numberStart, isSpace(base[numberEnd - 1]) { numberEnd -= 1 }
            if numberStart == numberEnd {
                if missing { return .nan }
                throw error("empty cell", missingValue: true)
            }
        }
        if missing, numberEnd - numberStart <= 4,
           isMissing(String(decoding: UnsafeBufferPointer(start: base + numberStart, count: numberEnd - numberStart), as: UTF8.self)) {
            return .nan
        }
        guard let value = strtofExact(base, from: numberStart, to: numberEnd) else {
            let text = String(decoding: UnsafeBufferPointer(start: base + numberStart, count: numberEnd - numberStart), as: UTF8.self)
            throw error("\(quoted(base, first, stop)) is not a number", missingValue: isMissing(text))
        }
        if value.isNaN { throw error("NaN is not allowed (\(quoted(base, first, stop)))", missingValue: true) }
        if value.isInfinite {
            let text = String(decoding: UnsafeBufferPointer(start: base + numberStart, count: numberEnd - numberStart), as: UTF8.self)
            if text.lowercased().contains("inf") {
                throw error("infinity is not allowed (\(quoted(base, first, stop)))")
            }
        }
        return value
    }

    /// `strtof` on exactly the bytes `start..<end` (copied to a null-terminated buffer); nil unless it reads them all.
    /// Leading white space is refused: `strtof` would skip a vertical tab or form feed and read `"\u{0b}2"` as 2.
    static func strtofExact(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Float? {
        let length = end - start
        guard length > 0, !(0x09...0x0D).contains(base[start]), base[start] != 0x20 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { text -> Float? in
            guard let textBase = text.baseAddress else { return nil }
            for k in 0..<length { text[k] = CChar(bitPattern: base[start + k]) }
            text[length] = 0
            var stop: UnsafeMutablePointer<CChar>? = nil
            let value = strtof(textBase, &stop)
            guard let stop, textBase.distance(to: stop) == length else { return nil }
            return value
        }
    }

    /// The exact fast path: `[+-]? digits [. digits] [(e|E) [+-] digits]` with at most 19 significant digits and a
    /// decimal exponent within ±22.
    ///
    /// The significand (< 10^19) and the exact power of ten give a Double within 2 ulps of the true value; converting
    /// it to Float is then correctly rounded unless it lies within a few Double ulps of a halfway point between two
    /// Floats, in which case this returns nil and the caller falls back to `strtof`. Returns the value and the index
    /// just past the number, or nil when the text is not of this form.
    @inline(__always)
    static func parseDecimal(
        _ base: UnsafePointer<UInt8>, from start: Int, to end: Int, powers: UnsafeBufferPointer<Double>
    ) -> (Float, Int)? {
        var index = start
        var negative = false
        if index < end {
            let byte = base[index]
            if byte == UInt8(ascii: "-") {
                negative = true
                index += 1
            } else if byte == UInt8(ascii: "+") {
                index += 1
            }
        }
        var significand: UInt64 = 0
        var digits = 0
        var exponent = 0
        guard let whole = appendDigits(base, &index, end, to: &significand, digits: &digits) else { return nil }
        var read = whole
        if index < end, base[index] == UInt8(ascii: ".") {
            index += 1
            guard let fraction = appendDigits(base, &index, end, to: &significand, digits: &digits) else { return nil }
            exponent -= fraction
            read += fraction
        }
        guard read > 0 else { return nil }
        if index < end, base[index] | 0x20 == UInt8(ascii: "e") {
            var next = index + 1
            var negativeExponent = false
            if next < end, base[next] == UInt8(ascii: "-") || base[next] == UInt8(ascii: "+") {
                negativeExponent = base[next] == UInt8(ascii: "-")
                next += 1
            }
            var written = 0
            var sawExponentDigit = false
            while next < end {
                let digit = base[next] &- UInt8(ascii: "0")
                if digit > 9 { break }
                sawExponentDigit = true
                if written < 100_000 { written = written * 10 + Int(digit) }
                next += 1
            }
            guard sawExponentDigit else { return nil }
            exponent += negativeExponent ? -written : written
            index = next
        }
        if significand == 0 { return (negative ? -0.0 : 0.0, index) }
        guard exponent >= -22, exponent <= 22 else { return nil }
        var wide = Double(significand)
        if exponent < 0 { wide /= powers[-exponent] } else { wide *= powers[exponent] }
        // The 29 bits below a Float's 24-bit significand: 0x1000_0000 is exactly halfway between two Floats.
        let below = wide.bitPattern & 0x1FFF_FFFF
        if below &- (0x1000_0000 - 8) <= 16 { return nil }
        let narrow = Float(wide)
        return (negative ? -narrow : narrow, index)
    }

    /// Reads the decimal digits from `index` on into `significand`, leading zeros aside (they
    /// add nothing), counting its significant digits in `digits`. Returns how many digit
    /// characters it read, or nil past 19 significant digits (the caller falls back to `strtof`).
    @inline(__always)
    private static func appendDigits(
        _ base: UnsafePointer<UInt8>, _ index: inout Int, _ end: Int, to significand: inout UInt64, digits: inout Int
    ) -> Int? {
        let start = index
        while index < end {
            let digit = base[index] &- UInt8(ascii: "0")
            if digit > 9 { break }
            if significand != 0 || digit != 0 {
                if digits == 19 { return nil }
                significand = significand &* 10 &+ UInt64(digit)
                digits += 1
            }
            index += 1
        }
        return index - start
    }

    /// Refuses a header that uses a name twice: a target column named twice would leave one copy among the
    /// features. `line` is the header's line.
    private static func checkUniqueNames(_ names: [String], line: Int, name: String) throws {
        var firstColumn: [String: Int] = [:]
        firstColumn.reserveCapacity(names.count)
        for (index, columnName) in names.enumerated() {
            if let earlier = firstColumn.updateValue(index + 1, forKey: columnName) {
                let what = columnName.isEmpty ? "has two columns without a name" : "names '\(Excerpt.escape(columnName))' twice"
                throw DataFileError.csv(
                    path: name, line: line, column: index + 1, columnName: nil,
                    reason: "the header \(what) (columns \(earlier) and \(index + 1)); column names must differ")
            }
        }
    }

    /// The byte that ends lines: `\n` (a `\r` before it is dropped), or in a file with no `\n` at
    /// all but a `\r`, `\r` (old Mac line endings). Elsewhere a lone `\r` is part of a cell.
    static func lineBreakByte(_ base: UnsafePointer<UInt8>, count: Int) -> UInt8 {
        memchr(base, 0x0A, count) == nil && memchr(base, 0x0D, count) != nil ? 0x0D : 0x0A
    }

    /// The cells of the first non-blank line, as text (a header's names, or a first row's cells),
    /// or nil when that line cannot be split (an unterminated quote) or there is none.
    static func firstLineCells(_ bytes: [UInt8]) -> [String]? {
        (CSVSeparator.commaSeparated(bytes, firstLine: true).bytes ?? bytes).withUnsafeBufferPointer { buffer -> [String]? in
            let lines = CSVLines(buffer)
            guard let base = buffer.baseAddress, let line = lines.next(after: lines.start) else { return nil }
            return try? parseHeader(base, from: line.start, to: line.end, line: 1, name: "")
        }
    }

    /// Splits a header line into names: cells trimmed of spaces, double-quoted cells unquoted (`""` is a quote).
    private static func parseHeader(
        _ base: UnsafePointer<UInt8>, from start: Int, to end: Int, line: Int, name: String
    ) throws -> [String] {
        var names: [String] = []
        var index = start
        while true {
            let (text, stop) = try textCell(base, from: index, to: end, line: line, column: names.count + 1, columnName: nil,
                                            what: "the header", name: name)
            names.append(text)
            if stop >= end { return names }
            index = stop + 1  // past the comma
        }
    }

    /// Past the double-quoted text opening at `start` (its closing quote; `end` when it has none).
    static func pastQuote(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Int {
        var index = start + 1
        while index < end {
            if base[index] == UInt8(ascii: "\"") {
                if index + 1 < end, base[index + 1] == UInt8(ascii: "\"") {
                    index += 2
                    continue
                }
                return index + 1
            }
            index += 1
        }
        return end
    }

    /// One text cell from `start` (a header name or a label): trimmed of spaces, and unquoted when
    /// double-quoted (`""` is a quote; a quoted cell may hold commas). Returns the text and where the
    /// cell ends (its comma, or `end`). `what` names the cell's kind in messages ("the header").
    private static func textCell(
        _ base: UnsafePointer<UInt8>, from start: Int, to end: Int, line: Int, column: Int, columnName: String?,
        what: String, name: String
    ) throws -> (text: String, end: Int) {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        var index = start
        while index < end, isSpace(base[index]) { index += 1 }
        guard index < end, base[index] == quote else {
            let cellStart = index
            while index < end, base[index] != comma { index += 1 }
            var stop = index
            while stop > cellStart, isSpace(base[stop - 1]) { stop -= 1 }
            return (String(decoding: UnsafeBufferPointer(start: base + cellStart, count: stop - cellStart), as: UTF8.self), index)
        }
        index += 1
        var text: [UInt8] = []
        var closed = false
        while index < end {
            if base[index] == quote {
                if index + 1 < end, base[index + 1] == quote {
                    text.append(quote)
                    index += 2
                    continue
                }
                index += 1
                closed = true
                break
            }
            text.append(base[index])
            index += 1
        }
        guard closed else {
            throw DataFileError.csv(path: name, line: line, column: column, columnName: columnName, reason: "unterminated quote in \(what)")
        }
        while index < end, isSpace(base[index]) { index += 1 }
        guard index == end || base[index] == comma else {
            throw DataFileError.csv(
                path: name, line: line, column: column, columnName: columnName, reason: "unexpected text after a closing quote in \(what)")
        }
        return (String(decoding: text, as: UTF8.self), index)
    }
}
