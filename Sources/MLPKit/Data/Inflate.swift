/// DEFLATE decompression (RFC 1951), for gzip files (RFC 1952) and the entries of zip archives
/// such as NumPy's `.npz` (`Archive.swift`).
///
/// Every malformed stream is a thrown `Inflate.Failure` naming the problem: a bad block type, an
/// over-subscribed or empty code, a code the block's tables do not define, a distance reaching
/// before the start of the stream, a stored block whose length check fails, or data ending
/// inside a block. The output grows only as the data decodes, up to `limit` bytes.
enum Inflate {
    /// Why a stream could not be decompressed (a sentence fragment for an error message).
    struct Failure: Error, Equatable {
        let reason: String
    }

    /// The most bytes one file may decompress to (16 GiB): a few bytes of crafted input can
    /// claim gigabytes, and MLPKit holds the decompressed file in memory.
    static let defaultLimit = 1 << 34

    /// The most bytes one byte of DEFLATE data can stand for: a 258-byte match from two bits (a
    /// 1-bit length code and a 1-bit distance code), four to a byte.
    static let maximumExpansion = 1032

    /// Decompresses the raw DEFLATE stream that starts at `start` in `input`, appending to
    /// `output`; returns the offset of the first byte after the stream (its last block's end,
    /// rounded up to a whole byte). Back-references may not reach before the stream's own
    /// output (each stream is independent). `expectedSize`, the size a container records, sizes
    /// the first allocation (no more than the rest of the input can expand to, nor `limit`).
    static func decompress(_ input: UnsafeBufferPointer<UInt8>, from start: Int, into output: inout [UInt8],
                           expectedSize: Int = 0, limit: Int = defaultLimit) throws -> Int {
        var stream = Stream(input: input, position: start, limit: limit)
        let possible = (input.count - stream.position) * maximumExpansion + 1024
        var window = Window(capacity: min(max(min(expectedSize, possible), 1 << 16), limit))
        defer { window.base.deallocate() }
        try stream.run(&window)
        output.append(contentsOf: UnsafeBufferPointer(start: window.base, count: window.count))
        return stream.byteOffset
    }

    /// One stream's decoded bytes, grown by doubling: plain memory, so that a match copies from
    /// earlier output with a pointer and no check per byte.
    struct Window {
        var base: UnsafeMutablePointer<UInt8>
        var count = 0
        var capacity: Int

        init(capacity: Int) {
            self.capacity = max(capacity, 1)
            base = .allocate(capacity: self.capacity)
        }

        /// Room for `extra` more bytes (the caller has checked the total against the limit).
        @inline(__always)
        mutating func reserve(_ extra: Int) {
            guard count + extra > capacity else { return }
            let grown = max(capacity * 2, count + extra)
            let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
            larger.update(from: base, count: count)
            base.deallocate()
            base = larger
            capacity = grown
        }
    }

    /// [UInt8] convenience: the whole of `bytes` from `start`.
    static func decompress(_ bytes: [UInt8], from start: Int = 0, limit: Int = defaultLimit) throws -> (output: [UInt8], end: Int) {
        var output: [UInt8] = []
        let end = try bytes.withUnsafeBufferPointer { try decompress($0, from: start, into: &output, limit: limit) }
        return (output, end)
    }

    // RFC 1951 3.2.5: lengths 3…258 for symbols 257…285, and distances 1…32768 for codes 0…29
    static let lengthBase: [UInt16] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
                                       115, 131, 163, 195, 227, 258]
    static let lengthExtra: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [UInt16] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
                                         1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [UInt8] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                                         13, 13]
    /// The order in which a dynamic block lists its code-length code's lengths (RFC 1951 3.2.7).
    static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    /// The fixed codes of block type 1: literal/length lengths 8, 9, 7, 8 over 0…143, 144…255,
    /// 256…279, 280…287, and thirty 5-bit distance codes (with two unused, as RFC 1951 lists).
    static let fixedTables: (literals: Huffman, distances: Huffman) = {
        var lengths = [UInt8](repeating: 8, count: 288)
        for symbol in 144...255 { lengths[symbol] = 9 }
        for symbol in 256...279 { lengths[symbol] = 7 }
        // swiftlint:disable:next force_try
        return (try! Huffman(lengths: lengths), try! Huffman(lengths: [UInt8](repeating: 5, count: 32)))
    }()

    /// A canonical Huffman code as one lookup table indexed by the next `bits` input bits
    /// (least significant first, as DEFLATE packs them): each entry is symbol << 4 | length, and 0
    /// where no code of the set starts with those bits (an incomplete set).
    struct Huffman {
        let table: [UInt32]
        let bits: Int

        init(lengths: [UInt8]) throws {
            var counts = [Int](repeating: 0, count: 16)
            for length in lengths { counts[Int(length)] += 1 }
            counts[0] = 0
            guard let longest = (1...15).last(where: { counts[$0] > 0 }) else {
                throw Failure(reason: "a Huffman code with no symbols")
            }
            // every code length's codes must fit: an over-subscribed set is not a prefix code
            var left = 1
            for length in 1...15 {
                left = left * 2 - counts[length]
                guard left >= 0 else { throw Failure(reason: "an over-subscribed Huffman code") }
            }
            var next = [Int](repeating: 0, count: 16)
            var code = 0
            for length in 1...15 {
                code = (code + counts[length - 1]) << 1
                next[length] = code
            }
            var table = [UInt32](repeating: 0, count: 1 << longest)
            for (symbol, length) in lengths.enumerated() where length > 0 {
                let length = Int(length)
                let code = next[length]
                next[length] += 1
                var reversed = 0
                for bit in 0..<length where code & (1 << bit) != 0 { reversed |= 1 << (length - 1 - bit) }
                let entry = UInt32(symbol) << 4 | UInt32(length)
                var index = reversed
                while index < table.count {
                    table[index] = entry
                    index += 1 << length
                }
            }
            self.table = table
            self.bits = longest
        }
    }

    /// The decoder's state: input position and bit buffer.
    struct Stream {
        let input: UnsafeBufferPointer<UInt8>
        var position: Int
        let limit: Int
        var buffer: UInt64 = 0
        var count = 0

        init(input: UnsafeBufferPointer<UInt8>, position: Int, limit: Int) {
            self.input = input
            self.position = min(max(position, 0), input.count)
            self.limit = limit
        }

        /// The first whole byte not consumed.
        var byteOffset: Int { position - count / 8 }

        @inline(__always)
        mutating func refill() {
            while count <= 56, position < input.count {
                buffer |= UInt64(input[position]) << UInt64(count)
                position += 1
                count += 8
            }
        }

        @inline(__always)
        mutating func take(_ n: Int) throws -> Int {
            if count < n {
                refill()
                guard count >= n else { throw Failure(reason: "the compressed data ends inside a block (truncated?)") }
            }
            let value = Int(buffer & ((1 << UInt64(n)) - 1))
            buffer >>= UInt64(n)
            count -= n
            return value
        }

        @inline(__always)
        mutating func decode(_ code: Huffman) throws -> Int {
            if count < code.bits { refill() }
            let entry = code.table[Int(buffer & ((1 << UInt64(code.bits)) - 1))]
            let length = Int(entry & 15)
            guard length > 0 else { throw Failure(reason: "a code the block's Huffman tables do not define") }
            guard length <= count else { throw Failure(reason: "the compressed data ends inside a block (truncated?)") }
            buffer >>= UInt64(length)
            count -= length
            return Int(entry >> 4)
        }

        mutating func run(_ output: inout Window) throws {
            var final = false
            while !final {
                final = try take(1) == 1
                switch try take(2) {
                case 0: try stored(&output)
                case 1: try codes(Inflate.fixedTables.literals, Inflate.fixedTables.distances, &output)
                case 2:
                    let (literals, distances) = try dynamicTables()
                    try codes(literals, distances, &output)
                default: throw Failure(reason: "a block of the reserved type 3")
                }
            }
        }

        mutating func stored(_ output: inout Window) throws {
            _ = try take(count % 8)  // to the byte boundary
            let length = try take(16)
            let complement = try take(16)
            guard length ^ 0xFFFF == complement else {
                throw Failure(reason: "a stored block's length \(length) does not match its check value")
            }
            // whole bytes still in the bit buffer come first
            guard output.count + length <= limit else { throw limitFailure() }
            output.reserve(length)
            var remaining = length
            while remaining > 0, count >= 8 {
                output.base[output.count] = UInt8(try take(8))
                output.count += 1
                remaining -= 1
            }
            guard input.count - position >= remaining else {
                throw Failure(reason: "the compressed data ends inside a stored block (truncated?)")
            }
            if remaining > 0 { (output.base + output.count).update(from: input.baseAddress! + position, count: remaining) }
            output.count += remaining
            position += remaining
        }

        func limitFailure() -> Failure {
            Failure(reason: "it decompresses to more than " + (limit >= 1 << 30 ? "\(limit >> 30) GiB" : "\(limit) bytes"))
        }

        mutating func dynamicTables() throws -> (Huffman, Huffman) {
            let literalCount = try take(5) + 257
            let distanceCount = try take(5) + 1
            let lengthCodeCount = try take(4) + 4
            guard literalCount <= 286, distanceCount <= 30 else {
                throw Failure(reason: "a dynamic block with \(literalCount) literal/length and \(distanceCount) distance codes (at most 286 and 30)")
            }
            var lengthLengths = [UInt8](repeating: 0, count: 19)
            for index in 0..<lengthCodeCount { lengthLengths[Inflate.codeLengthOrder[index]] = UInt8(try take(3)) }
            let lengthCode = try Huffman(lengths: lengthLengths)
            var lengths: [UInt8] = []
            lengths.reserveCapacity(literalCount + distanceCount)
            while lengths.count < literalCount + distanceCount {
                let symbol = try decode(lengthCode)
                let (value, repeats): (UInt8, Int)
                switch symbol {
                case 0...15: (value, repeats) = (UInt8(symbol), 1)
                case 16:
                    guard let previous = lengths.last else { throw Failure(reason: "a repeated code length with none before it") }
                    (value, repeats) = (previous, 3 + (try take(2)))
                case 17: (value, repeats) = (0, 3 + (try take(3)))
                default: (value, repeats) = (0, 11 + (try take(7)))
                }
                guard lengths.count + repeats <= literalCount + distanceCount else {
                    throw Failure(reason: "code lengths that run past the block's \(literalCount + distanceCount) codes")
                }
                lengths.append(contentsOf: repeatElement(value, count: repeats))
            }
            guard lengths[256] > 0 else { throw Failure(reason: "a dynamic block without an end-of-block code") }
            let literals = try Huffman(lengths: Array(lengths[0..<literalCount]))
            // a block of literals alone may give no distance code at all: decoding one then fails
            let distanceLengths = Array(lengths[literalCount...])
            let distances = distanceLengths.allSatisfy { $0 == 0 }
                ? Huffman.empty : try Huffman(lengths: distanceLengths)
            return (literals, distances)
        }

        mutating func codes(_ literals: Huffman, _ distances: Huffman, _ output: inout Window) throws {
            while true {
                let symbol = try decode(literals)
                if symbol < 256 {
                    guard output.count < limit else { throw limitFailure() }
                    output.reserve(1)
                    output.base[output.count] = UInt8(symbol)
                    output.count += 1
                    continue
                }
                if symbol == 256 { return }
                let lengthIndex = symbol - 257
                guard lengthIndex < 29 else { throw Failure(reason: "the invalid length symbol \(symbol)") }
                let length = Int(Inflate.lengthBase[lengthIndex]) + (try take(Int(Inflate.lengthExtra[lengthIndex])))
                let distanceSymbol = try decode(distances)
                guard distanceSymbol < 30 else { throw Failure(reason: "the invalid distance symbol \(distanceSymbol)") }
                let distance = Int(Inflate.distanceBase[distanceSymbol]) + (try take(Int(Inflate.distanceExtra[distanceSymbol])))
                guard distance <= output.count else {
                    throw Failure(reason: "a distance of \(distance) bytes, before the start of the data")
                }
                guard output.count + length <= limit else { throw limitFailure() }
                // forwards byte by byte: an overlapping copy repeats the last `distance` bytes, as
                // DEFLATE means it to
                output.reserve(length)
                let target = output.base + output.count
                for index in 0..<length { target[index] = target[index - distance] }
                output.count += length
            }
        }
    }
}

extension Inflate.Huffman {
    /// A code with no symbols: every lookup fails.
    static let empty = Inflate.Huffman(table: [0, 0], bits: 1)

    private init(table: [UInt32], bits: Int) {
        self.table = table
        self.bits = bits
    }
}

/// CRC-32 (ISO-HDLC, as gzip and zip use), eight bytes a step ("slicing by 8").
enum CRC32 {
    /// Eight tables of 256 one after another: table 0 is the byte-at-a-time one, and table k
    /// advances a byte's contribution by k more bytes.
    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
            tables[index] = value
        }
        for table in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(table - 1) * 256 + index]
                tables[table * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    static func checksum(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        guard let base = bytes.baseAddress else { return 0 }
        tables.withUnsafeBufferPointer { table in
            let t = table.baseAddress!
            var index = 0
            while bytes.count - index >= 8 {
                let low = crc ^ (UInt32(base[index]) | UInt32(base[index + 1]) << 8 | UInt32(base[index + 2]) << 16
                    | UInt32(base[index + 3]) << 24)
                crc = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(base[index + 4])] ^ t[2 * 256 + Int(base[index + 5])]
                    ^ t[256 + Int(base[index + 6])] ^ t[Int(base[index + 7])]
                index += 8
            }
            while index < bytes.count {
                crc = t[Int((crc ^ UInt32(base[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        return ~crc
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { checksum($0) }
    }
}
