/// Reads MNIST's IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, ...).
public enum IDXFile {
    /// Reads an IDX file: images (magic 0x00000803) or labels (magic 0x00000801), element type unsigned byte.
    ///
    /// - Parameter path: The file to read (uncompressed; gunzip `.gz` downloads first).
    /// - Returns: Images `(n, rows, cols)` as n × (rows·cols) with pixels scaled to 0...1 (`isIntegral` false);
    ///   labels `(n)` as n × 1 (`isIntegral` true).
    /// - Throws: `DataFileError` when the file cannot be read or is not a supported IDX file (see ``decode(_:name:)``).
    public static func read(path: String) throws -> DataMatrix {
        try decode(DataFileIO.readAll(path: path), name: DataFileIO.name(path))
    }

    /// Decodes the bytes of an IDX file.
    ///
    /// The header's dimensions must account for the file's size exactly; this is checked before value storage is
    /// allocated.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - name: The file's name, used in error messages.
    /// - Returns: Images as n × (rows·cols) with values `pixel / 255` (`isIntegral` false); labels as n × 1 (`isIntegral` true).
    /// - Throws: `DataFileError.malformed` (wrong magic, gzip-compressed, truncated header),
    ///   `.unsupportedDType` (element type other than 0x08), `.unsupportedShape` (dimensions too large),
    ///   `.sizeMismatch` (truncated data or trailing bytes) or `.empty` (no elements).
    public static func decode(_ bytes: [UInt8], name: String) throws -> DataMatrix {
        guard bytes.count >= 4 else {
            throw DataFileError.malformed(path: name, reason: "file too short for an IDX header (\(bytes.count) bytes)")
        }
        if FileSniffer.kind(bytes) == .gzip { throw FileSniffer.gzipError(name) }
        let magic = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        let hexMagic = hex(magic, digits: 8)
        guard bytes[0] == 0, bytes[1] == 0, isTypeCode(bytes[2]) else {
            throw DataFileError.malformed(
                path: name, reason: "not an IDX file: magic \(hexMagic), expected 0x00000803 (images) or 0x00000801 (labels)")
        }
        guard bytes[2] == 0x08 else {
            throw DataFileError.unsupportedDType(
                path: name, dtype: "\(hex(UInt32(bytes[2]), digits: 2)) (\(typeName(bytes[2])))",
                supported: "0x08 (unsigned byte)")
        }
        let dimensionCount = Int(bytes[3])
        guard dimensionCount == 1 || dimensionCount == 3 else {
            throw DataFileError.malformed(
                path: name,
                reason: "magic \(hexMagic) means \(dimensionCount) dimensions; expected 0x00000803 (images) or 0x00000801 (labels)")
        }
        let dataStart = 4 + 4 * dimensionCount
        guard bytes.count >= dataStart else {
            throw DataFileError.malformed(path: name, reason: "file ends inside the IDX header (\(bytes.count) bytes); file truncated?")
        }
        var dimensions: [Int] = []
        for d in 0..<dimensionCount {
            let at = 4 + 4 * d
            dimensions.append(Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]))
        }
        let shapeText = "(" + dimensions.map(String.init).joined(separator: ", ") + ")"
        if dimensions.contains(0) {
            throw DataFileError.empty(path: name, reason: "IDX dimensions \(shapeText) hold no elements")
        }
        var count = 1
        for dimension in dimensions {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw DataFileError.unsupportedShape(path: name, shape: shapeText, reason: "the array is too large to address")
            }
            count = product
        }
        let present = bytes.count - dataStart
        guard present == count else {
            throw DataFileError.sizeMismatch(path: name, expectedBytes: count, actualBytes: present)
        }

        let rows = dimensions[0]
        let isImages = dimensionCount == 3
        let scale: [Float] = (0..<256).map { isImages ? Float($0) / 255 : Float($0) }
        let values = bytes.withUnsafeBufferPointer { source in
            scale.withUnsafeBufferPointer { table in
                [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    for k in 0..<count {
                        out[k] = table[Int(source[dataStart &+ k])]
                    }
                    initialized = count
                }
            }
        }
        var matrix = DataMatrix(rows: rows, columns: count / rows, values: values, isIntegral: !isImages)
        matrix.origin = DataMatrix.Origin(path: name)
        return matrix
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// Whether `code` is one of IDX's element types (the magic number's third byte).
    static func isTypeCode(_ code: UInt8) -> Bool {
        [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E].contains(code)
    }

    private static func typeName(_ code: UInt8) -> String {
        switch code {
        case 0x09: return "signed byte"
        case 0x0B: return "short"
        case 0x0C: return "int"
        case 0x0D: return "float"
        case 0x0E: return "double"
        default: return "unknown type"
        }
    }
}
