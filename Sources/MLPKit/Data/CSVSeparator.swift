#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What separates the cells of a delimited text file. The readers take commas; a file separated
/// otherwise (semicolons, as spreadsheets write CSV where the comma is the decimal mark; tabs;
/// vertical bars; or runs of spaces, as `numpy.savetxt` writes) is rewritten with commas first,
/// cell for cell and line for line, so that every message still names the file's own lines and
/// columns.
public enum CSVSeparator: Sendable, Equatable, CustomStringConvertible {
    case comma, semicolon, tab, bar
    /// Runs of spaces and tabs, none before the first cell or after the last.
    case whitespace

    /// The byte that separates cells (nil for runs of spaces and tabs).
    var byte: UInt8? {
        switch self {
        case .comma: return UInt8(ascii: ",")
        case .semicolon: return UInt8(ascii: ";")
        case .tab: return 0x09
        case .bar: return UInt8(ascii: "|")
        case .whitespace: return nil
        }
    }

    public var description: String {
        switch self {
        case .comma: return "comma"
        case .semicolon: return "semicolon"
        case .tab: return "tab"
        case .bar: return "vertical bar"
        case .whitespace: return "whitespace"
        }
    }

    /// The separator every text file read in the current task is taken to have instead of the
    /// one ``detect(_:)`` would tell (nil, the default: detect it), for a file whose first line
    /// misleads detection (a header with more semicolons in its names than commas between them).
    /// Set it around the reading: `try CSVSeparator.$chosen.withValue(.semicolon) { try DataLoader.readTable(…) }`.
    /// `mlp`'s `--separator` sets it for the whole command.
    @TaskLocal public static var chosen: CSVSeparator?

    /// The separator a name stands for: `comma` or `,`; `semicolon` or `;`; `tab` or `\t` (or a
    /// tab); `bar` or `|`; `space` or `whitespace` (runs of spaces and tabs). Nil for anything else.
    public init?(name: String) {
        switch name.lowercased() {
        case "comma", ",": self = .comma
        case "semicolon", ";": self = .semicolon
        case "tab", "\\t", "\t": self = .tab
        case "bar", "|", "pipe": self = .bar
        case "space", "spaces", "whitespace", " ": self = .whitespace
        default: return nil
        }
    }

    /// The separator of a text file, from its first two lines that are not blank.
    ///
    /// The first such line decides: of commas, tabs, semicolons and vertical bars outside double
    /// quotes and between its first and last cells, the one it holds most of (commas on a tie,
    /// then in that order). A line with none of
    /// them is one cell, unless it and the next line both split at spaces and tabs into the same
    /// number of cells, two or more, and the second line's cells are all numbers (a header of
    /// names over numbers), or the first line's are (numbers alone): then the file is
    /// whitespace-separated. So a column of class names with spaces in them ("Iris setosa")
    /// stays one column.
    public static func detect(_ bytes: UnsafeBufferPointer<UInt8>) -> CSVSeparator {
        let lines = CSVLines(bytes)
        guard let first = lines.next(after: lines.start) else { return .comma }
        var counts: [(CSVSeparator, Int)] = [(.comma, 0), (.tab, 0), (.semicolon, 0), (.bar, 0)]
        var quoted = false
        // tabs (and spaces) before the first cell or after the last separate nothing
        var (start, end) = (first.start, first.end)
        while start < end, CSVFile.isSpace(bytes[start]) { start += 1 }
        while end > start, CSVFile.isSpace(bytes[end - 1]) { end -= 1 }
        for index in start..<end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { quoted.toggle() }
            if quoted { continue }
            for slot in counts.indices where counts[slot].0.byte == byte { counts[slot].1 += 1 }
        }
        let most = counts.max { $0.1 < $1.1 }!  // the first of the largest: commas on a tie
        if most.1 > 0 { return most.0 }
        let firstCells = CSVLines.whitespaceCells(bytes, first.start, first.end)
        guard firstCells.count >= 2 else { return .comma }
        func numbers(_ cells: [Range<Int>]) -> Bool {
            cells.allSatisfy { CSVFile.strtofExact(bytes.baseAddress!, from: $0.lowerBound, to: $0.upperBound) != nil }
        }
        if numbers(firstCells) { return .whitespace }
        guard let second = lines.next(after: first.next) else { return .comma }
        let secondCells = CSVLines.whitespaceCells(bytes, second.start, second.end)
        return secondCells.count == firstCells.count && numbers(secondCells) ? .whitespace : .comma
    }

    /// `bytes` with their cells separated by commas instead, and the separator they had (nil
    /// bytes when they already are, or are not text): each line's cells, as the separator splits
    /// them, joined by commas; a cell that holds a comma and is not in double quotes is put in
    /// them (its quotes doubled), one in quotes is copied as it is. In a semicolon-separated
    /// file, where the comma is the decimal mark, a number written with one (`-1,5`, `2,5e-3`,
    /// `1.234,5` with points between thousands) takes a point instead (`1234.5`). Line breaks, blank lines and a byte-order mark are kept. With
    /// `firstLine`, only up to the end of the first line that is not blank.
    static func commaSeparated(_ bytes: [UInt8], firstLine: Bool = false) -> (bytes: [UInt8]?, separator: CSVSeparator) {
        bytes.withUnsafeBufferPointer { buffer -> ([UInt8]?, CSVSeparator) in
            guard FileSniffer.kind(buffer) == nil else { return (nil, .comma) }
            let separator = chosen ?? detect(buffer)
            guard separator != .comma else { return (nil, .comma) }
            return (rewrite(buffer, separator: separator, firstLine: firstLine), separator)
        }
    }

    /// Where the decimal comma of `first..<stop` is, when it is a number written with one:
    /// `[+-]digits,digits` with an optional exponent `(e|E)[+-]digits`, the whole part grouped in
    /// thousands by points or not (`1.234.567,5`); nil for anything else.
    private static func decimalComma(_ bytes: UnsafeBufferPointer<UInt8>, _ first: Int, _ stop: Int) -> Int? {
        var index = first
        func digits() -> Int {
            let start = index
            while index < stop, bytes[index] &- UInt8(ascii: "0") < 10 { index += 1 }
            return index - start
        }
        if index < stop, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
        let leading = digits()
        guard leading > 0 else { return nil }
        if index < stop, bytes[index] == UInt8(ascii: ".") {
            guard leading <= 3 else { return nil }
            while index < stop, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard digits() == 3 else { return nil }
            }
        }
        guard index < stop, bytes[index] == UInt8(ascii: ",") else { return nil }
        let comma = index
        index += 1
        guard digits() > 0 else { return nil }
        if index < stop, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < stop, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
            guard digits() > 0 else { return nil }
        }
        return index == stop ? comma : nil
    }

    private static func rewrite(_ bytes: UnsafeBufferPointer<UInt8>, separator: CSVSeparator, firstLine: Bool) -> [UInt8] {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 16 + 16)
        let lines = CSVLines(bytes)
        out.append(contentsOf: bytes[0..<lines.start])  // a byte-order mark
        var position = lines.start
        while position < bytes.count {
            let line = lines.line(at: position)
            var cells: [Range<Int>]
            if separator == .whitespace {
                cells = CSVLines.whitespaceCells(bytes, line.start, line.end)
            } else {
                cells = CSVLines.cells(bytes, line.start, line.end, separator: separator.byte!)
            }
            if cells.count == 1, cells[0].isEmpty { cells = [] }  // a blank line stays blank
            for (number, cell) in cells.enumerated() {
                if number > 0 { out.append(comma) }
                var first = cell.lowerBound, stop = cell.upperBound
                while first < stop, CSVFile.isSpace(bytes[first]) { first += 1 }
                while stop > first, CSVFile.isSpace(bytes[stop - 1]) { stop -= 1 }
                let needsQuotes = first < stop && bytes[first] != quote && bytes[first..<stop].contains(comma)
                if needsQuotes, separator == .semicolon, let mark = decimalComma(bytes, first, stop) {
                    // the number with a point for its comma and without its thousands points
                    out.append(contentsOf: bytes[cell.lowerBound..<mark].filter { $0 != UInt8(ascii: ".") })
                    out.append(UInt8(ascii: "."))
                    out.append(contentsOf: bytes[(mark + 1)..<cell.upperBound])
                    continue
                }
                guard needsQuotes else {
                    out.append(contentsOf: bytes[cell])
                    continue
                }
                out.append(quote)
                for byte in bytes[first..<stop] {
                    if byte == quote { out.append(quote) }
                    out.append(byte)
                }
                out.append(quote)
            }
            out.append(contentsOf: bytes[line.end..<line.next])  // the line break as it was
            position = line.next
            if firstLine, !cells.isEmpty { break }
        }
        return out
    }
}

/// Lines and cells of a text file as `CSVFile`'s parser splits them: lines at `\n` (a `\r`
/// before it belongs to the break), or at `\r` in a file with no `\n`; a cell whose first byte
/// past spaces is a double quote runs to its closing quote (`""` inside is a quote), then to
/// the next separator.
struct CSVLines {
    let bytes: UnsafeBufferPointer<UInt8>
    let lineBreak: UInt8
    /// Past the byte-order mark.
    let start: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        if let base = bytes.baseAddress {
            (lineBreak, start) = (CSVFile.lineBreakByte(base, count: bytes.count), CSVFile.textStart(base, count: bytes.count))
        } else {
            (lineBreak, start) = (0x0A, 0)
        }
    }

    /// The line from `position`: its text (`start..<end`, without the break) and where the next begins.
    func line(at position: Int) -> (start: Int, end: Int, next: Int) {
        var end = position
        while end < bytes.count, bytes[end] != lineBreak { end += 1 }
        let next = min(end + 1, bytes.count)
        if end > position, lineBreak == 0x0A, bytes[end - 1] == 0x0D { end -= 1 }
        return (position, end, next)
    }

    /// The first line from `position` on that is not blank.
    func next(after position: Int) -> (start: Int, end: Int, next: Int)? {
        var position = position
        while position < bytes.count {
            let line = line(at: position)
            if (line.start..<line.end).contains(where: { !CSVFile.isSpace(bytes[$0]) }) { return line }
            position = line.next
        }
        return nil
    }

    /// The cells of `start..<end` split at `separator` (each with the spaces around it).
    static func cells(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, separator: UInt8) -> [Range<Int>] {
        var cells: [Range<Int>] = []
        var cellStart = start
        var index = start
        while true {
            var visible = index
            while visible < end, CSVFile.isSpace(bytes[visible]), bytes[visible] != separator { visible += 1 }
            index = visible < end && bytes[visible] == UInt8(ascii: "\"") ? CSVFile.pastQuote(bytes.baseAddress!, from: visible, to: end) : visible
            while index < end, bytes[index] != separator { index += 1 }
            cells.append(cellStart..<index)
            if index >= end { return cells }
            index += 1
            cellStart = index
        }
    }

    /// The cells of `start..<end` split at runs of spaces and tabs (none before the first or after the last).
    static func whitespaceCells(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> [Range<Int>] {
        var cells: [Range<Int>] = []
        var index = start
        while true {
            while index < end, CSVFile.isSpace(bytes[index]) { index += 1 }
            if index >= end { return cells }
            let cellStart = index
            if bytes[index] == UInt8(ascii: "\"") { index = CSVFile.pastQuote(bytes.baseAddress!, from: index, to: end) }
            while index < end, !CSVFile.isSpace(bytes[index]) { index += 1 }
            cells.append(cellStart..<index)
        }
    }
}
