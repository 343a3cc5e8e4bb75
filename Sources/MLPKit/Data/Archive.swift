#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The containers a data file may come in: gzip (`train-images-idx3-ubyte.gz`, `table.csv.gz`)
/// and zip archives (NumPy's `.npz`, from `np.savez` or `np.savez_compressed`). Both are read
/// whole into memory and checked (CRC-32 and sizes) before the data inside is parsed.
enum Archive {
    /// One file in a zip archive, from its central directory.
    struct Entry: Equatable {
        var name: String
        var method: Int
        var flags: Int
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var headerOffset: Int

        /// How a message and `FILE:NAME` name it: a NumPy array's name is its file's without `.npy`.
        var displayName: String {
            name.lowercased().hasSuffix(".npy") ? String(name.dropLast(4)) : name
        }
    }

    // MARK: gzip

    /// The decompressed contents of a gzip file: every member, one after another (as `gunzip`
    /// writes them). Zero bytes after the last member (padding) are ignored.
    static func gunzip(_ bytes: [UInt8], name: String, limit: Int = Inflate.defaultLimit) throws -> [UInt8] {
        func failure(_ reason: String) -> DataFileError { .malformed(path: name, reason: "gzip: \(reason)") }
        let truncatedHeader = failure("the file ends inside a member's header (truncated?)")
        var output: [UInt8] = []
        var offset = 0
        try bytes.withUnsafeBufferPointer { input in
            // the last member's size (mod 2^32) ends the file: for a file of one member, the size
            // to decode into at once instead of growing (and copying) as it decodes
            let lastSize = input.count >= 18 ? Int(littleEndian32(input, input.count - 4)) : 0
            repeat {
                let start = offset
                guard input.count - offset >= 10 else { throw truncatedHeader }
                guard input[offset] == 0x1F, input[offset + 1] == 0x8B else { throw failure("a member does not start with gzip's magic number") }
                guard input[offset + 2] == 8 else { throw failure("compression method \(input[offset + 2]); gzip defines only deflate (8)") }
                let flags = input[offset + 3]
                guard flags & 0xE0 == 0 else { throw failure("reserved header flags are set (0x\(String(flags, radix: 16)))") }
                offset += 10
                if flags & 4 != 0 {  // FEXTRA
                    guard input.count - offset >= 2 else { throw truncatedHeader }
                    let extra = Int(input[offset]) | Int(input[offset + 1]) << 8
                    offset += 2
                    guard input.count - offset >= extra else { throw truncatedHeader }
                    offset += extra
                }
                for flag: UInt8 in [8, 16] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
                    guard let end = (offset..<input.count).first(where: { input[$0] == 0 }) else { throw truncatedHeader }
                    offset = end + 1
                }
                if flags & 2 != 0 {  // FHCRC: the header's CRC-32, low 16 bits
                    guard input.count - offset >= 2 else { throw truncatedHeader }
                    let stored = UInt32(input[offset]) | UInt32(input[offset + 1]) << 8
                    let computed = CRC32.checksum(UnsafeBufferPointer(rebasing: input[start..<offset])) & 0xFFFF
                    guard stored == computed else { throw failure("the header's check value is wrong (file corrupt?)") }
                    offset += 2
                }
                let memberStart = output.count
                do {
                    offset = try Inflate.decompress(input, from: offset, into: &output,
                                                    expectedSize: output.isEmpty ? lastSize : 0, limit: limit)
                } catch let error as Inflate.Failure {
                    throw failure(error.reason)
                }
                guard input.count - offset >= 8 else { throw failure("the file ends before a member's CRC and size (truncated?)") }
                let crc = littleEndian32(input, offset)
                let size = littleEndian32(input, offset + 4)
                offset += 8
                let member = output.withUnsafeBufferPointer { UnsafeBufferPointer(rebasing: $0[memberStart...]) }
                guard CRC32.checksum(member) == crc else { throw failure("the data does not match its CRC-32 (file corrupt?)") }
                guard UInt32(truncatingIfNeeded: member.count) == size else {
                    throw failure("the data is \(member.count) bytes but the trailer records \(size) (mod 2^32; file corrupt?)")
                }
                // another member, padding, or something else
                if (offset..<input.count).allSatisfy({ input[$0] == 0 }) { break }
                guard input.count - offset >= 2, input[offset] == 0x1F, input[offset + 1] == 0x8B else {
                    throw failure("\(input.count - offset) bytes after the end of the compressed data that are not another gzip member")
                }
            } while true
        }
        return output
    }

    // MARK: zip

    /// The files in a zip archive (directories left out), from its central directory; ZIP64
    /// sizes and offsets (which `np.savez` writes) included.
    static func zipEntries(_ bytes: [UInt8], name: String) throws -> [Entry] {
        func failure(_ reason: String) -> DataFileError { .malformed(path: name, reason: "zip: \(reason)") }
        return try bytes.withUnsafeBufferPointer { input in
            // the end-of-central-directory record: 22 bytes and a comment of up to 65,535
            let lowest = max(0, input.count - 22 - 0xFFFF)
            guard input.count >= 22, let end = stride(from: input.count - 22, through: lowest, by: -1).first(where: { at in
                littleEndian32(input, at) == 0x0605_4B50 && at + 22 + littleEndian16(input, at + 20) == input.count
            }) else {
                throw failure("no end-of-central-directory record (not a zip archive, or truncated?)")
            }
            guard littleEndian16(input, end + 4) == 0, littleEndian16(input, end + 6) == 0 else {
                throw failure("a multi-part archive; MLPKit reads single-file archives")
            }
            var count = littleEndian16(input, end + 10)
            var directorySize = Int(littleEndian32(input, end + 12))
            var directoryOffset = Int(littleEndian32(input, end + 16))
            if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
                // ZIP64: a locator just before the record points at the ZIP64 end record
                guard end >= 20, littleEndian32(input, end - 20) == 0x0706_4B50 else {
                    throw failure("a ZIP64 archive without its end-of-central-directory locator")
                }
                let record = try offsetValue(littleEndian64(input, end - 12), within: input.count, failure)
                guard input.count - record >= 56, littleEndian32(input, record) == 0x0606_4B50 else {
                    throw failure("a ZIP64 locator that points at no ZIP64 end record")
                }
                count = try offsetValue(littleEndian64(input, record + 32), within: Int.max, failure)
                directorySize = try offsetValue(littleEndian64(input, record + 40), within: input.count, failure)
                directoryOffset = try offsetValue(littleEndian64(input, record + 48), within: input.count, failure)
            }
            guard directoryOffset <= input.count, directorySize <= input.count - directoryOffset else {
                throw failure("the central directory lies outside the file (truncated?)")
            }
            var entries: [Entry] = []
            var at = directoryOffset
            for _ in 0..<count {
                guard input.count - at >= 46, littleEndian32(input, at) == 0x0201_4B50 else {
                    throw failure("a damaged central directory (entry \(entries.count + 1) of \(count))")
                }
                let nameLength = littleEndian16(input, at + 28)
                let extraLength = littleEndian16(input, at + 30)
                let commentLength = littleEndian16(input, at + 32)
                guard input.count - at - 46 >= nameLength + extraLength + commentLength else {
                    throw failure("a damaged central directory (entry \(entries.count + 1) of \(count))")
                }
                var entry = Entry(
                    name: String(decoding: UnsafeBufferPointer(rebasing: input[(at + 46)..<(at + 46 + nameLength)]), as: UTF8.self),
                    method: littleEndian16(input, at + 10), flags: littleEndian16(input, at + 8), crc: littleEndian32(input, at + 16),
                    compressedSize: Int(littleEndian32(input, at + 20)), size: Int(littleEndian32(input, at + 24)),
                    headerOffset: Int(littleEndian32(input, at + 42)))
                // ZIP64 extra field (ID 1): the 8-byte values of the fields marked 0xFFFFFFFF, in this order
                var extra = at + 46 + nameLength
                let extraEnd = extra + extraLength
                while extraEnd - extra >= 4 {
                    let id = littleEndian16(input, extra), length = littleEndian16(input, extra + 2)
                    guard extraEnd - extra - 4 >= length else { break }
                    if id == 1 {
                        var field = extra + 4
                        for path in [\Entry.size, \Entry.compressedSize, \Entry.headerOffset] where entry[keyPath: path] == 0xFFFF_FFFF {
                            guard extra + 4 + length - field >= 8 else { throw failure("a ZIP64 field too short for its sizes") }
                            entry[keyPath: path] = try offsetValue(littleEndian64(input, field), within: Int.max, failure)
                            field += 8
                        }
                    }
                    extra += 4 + length
                }
                if !entry.name.hasSuffix("/") { entries.append(entry) }
                at += 46 + nameLength + extraLength + commentLength
            }
            return entries
        }
    }

    /// One entry's bytes (stored or deflated), checked against its size and CRC-32.
    static func extract(_ entry: Entry, from bytes: [UInt8], name: String, limit: Int = Inflate.defaultLimit) throws -> [UInt8] {
        func failure(_ reason: String) -> DataFileError {
            .malformed(path: name, reason: "zip entry '\(Excerpt.escape(entry.name))': \(reason)")
        }
        guard entry.flags & 1 == 0 else { throw failure("it is encrypted") }
        return try bytes.withUnsafeBufferPointer { input in
            let at = entry.headerOffset
            guard at <= input.count, input.count - at >= 30, littleEndian32(input, at) == 0x0403_4B50 else {
                throw failure("no local header where the central directory says (file corrupt?)")
            }
            let start = at + 30 + littleEndian16(input, at + 26) + littleEndian16(input, at + 28)
            guard start <= input.count, input.count - start >= entry.compressedSize else {
                throw failure("the data runs past the end of the file (truncated?)")
            }
            let output: [UInt8]
            switch entry.method {
            case 0:
                guard entry.compressedSize == entry.size else { throw failure("a stored entry whose two sizes differ") }
                guard entry.size <= limit else { throw failure("it is larger than \(limit >> 30) GiB") }
                output = Array(input[start..<(start + entry.size)])
            case 8:
                var inflated: [UInt8] = []
                do {
                    let data = UnsafeBufferPointer(rebasing: input[start..<(start + entry.compressedSize)])
                    _ = try Inflate.decompress(data, from: 0, into: &inflated, expectedSize: entry.size, limit: min(limit, entry.size))
                } catch let error as Inflate.Failure {
                    throw failure(error.reason)
                }
                guard inflated.count == entry.size else {
                    throw failure("it decompresses to \(inflated.count) bytes but the archive records \(entry.size)")
                }
                output = inflated
            default:
                throw failure("compression method \(entry.method); MLPKit reads stored (0) and deflate (8) entries")
            }
            guard CRC32.checksum(output[...]) == entry.crc else { throw failure("the data does not match its CRC-32 (file corrupt?)") }
            return output
        }
    }

    // MARK: little-endian fields

    static func littleEndian16(_ input: UnsafeBufferPointer<UInt8>, _ at: Int) -> Int {
        Int(input[at]) | Int(input[at + 1]) << 8
    }

    static func littleEndian32(_ input: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        UInt32(input[at]) | UInt32(input[at + 1]) << 8 | UInt32(input[at + 2]) << 16 | UInt32(input[at + 3]) << 24
    }

    static func littleEndian64(_ input: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt64 {
        UInt64(littleEndian32(input, at)) | UInt64(littleEndian32(input, at + 4)) << 32
    }

    /// A 64-bit size or offset as an Int no larger than `bound`, or the archive is damaged.
    static func offsetValue(_ value: UInt64, within bound: Int, _ failure: (String) -> DataFileError) throws -> Int {
        guard value <= UInt64(bound) else { throw failure("a size or offset of \(value), beyond the file (file corrupt?)") }
        return Int(value)
    }
}
