import Foundation
import XCTest
@testable import MLPKit

/// gzip files and zip archives (.npz) against fixtures that Python's zlib, gzip and NumPy wrote
/// (Fixtures/compressed/make_compressed_fixtures.py), and damaged streams built bit by bit.
final class CompressedDataTests: FileTestCase {
    private func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/compressed/\(name)").path
    }

    private func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name))))
    }

    /// The fixture script's `lines()`: 200 CSV rows as text.
    private func lines() -> [UInt8] {
        // Python's repr and Swift's description agree on these eighths and quarters (4.625, -2.5, 12.0); -i / 4 is +0.0 for i = 0 in both
        Array((0..<200).map { i in "\(i),\(Double((i * 37) % 101) / 8),\(Double(-i) / 4)\n" }.joined().utf8)
    }

    /// The fixture script's `window()`.
    private func window() -> [UInt8] {
        var state: UInt64 = 7
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(state >> 56)
        }
        let head = (0..<1200).map { _ in next() }
        let pattern = (0..<31000).map { UInt8(($0 * 7) % 97) }
        let tail = (0..<500).map { _ in next() }
        return head + pattern + head + [UInt8](repeating: 0x2A, count: 3000) + tail
    }

    private func message(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> String {
        let text = thrownMessage(body)
        if text == "no error" { XCTFail("nothing was thrown", file: file, line: line) }
        return text
    }

    // MARK: gzip

    func testGzipFixturesDecompressToTheOriginal() throws {
        let text = lines()
        XCTAssertEqual(text.count, 3039, "the rows the fixture script wrote")
        // level 9 (dynamic codes), level 0 (stored blocks), fixed codes, two members, and a header
        // with every optional field (extra, name, comment, header CRC)
        for name in ["lines.csv.gz", "lines-stored.csv.gz", "lines-fixed.csv.gz", "lines-members.csv.gz", "lines-header.csv.gz"] {
            XCTAssertEqual(try Archive.gunzip(try bytes(name), name: name), text, name)
        }
        // distances near 32 KiB, 258-byte matches and overlapping copies
        XCTAssertEqual(try Archive.gunzip(try bytes("window.bin.gz"), name: "window.bin.gz"), window())
    }

    func testGzipCSVReadsLikeThePlainText() throws {
        let plain = try write(lines(), to: "lines.csv")
        let expected = try DataLoader.readMatrix(path: plain)
        XCTAssertEqual(expected.rows, 200)
        for name in ["lines.csv.gz", "lines-stored.csv.gz", "lines-members.csv.gz"] {
            XCTAssertEqual(try DataLoader.readMatrix(path: fixture(name)), expected, name)
        }
        // with a header row, through readTable
        let header = Array("a,b,c\n".utf8) + lines()
        let compressed = gzipHeader + storedDeflate(header) + crcAndSize(header)
        let table = try DataLoader.readTable(path: try write(compressed, to: "table.csv.gz"), target: "b")
        XCTAssertEqual(table.featureNames, ["a", "c"])
        XCTAssertEqual(table.target?.values.prefix(3), [0, 4.625, 9.25])
    }

    func testGzippedNumpyAndIDXFilesRead() throws {
        let matrix = DataMatrix(rows: 3, columns: 2, values: [1, -2, 3.5, 4, 5, 6.25], isIntegral: false)
        let npy = NumpyFile.encode(matrix)
        XCTAssertEqual(try DataLoader.readMatrix(path: try write(gzipHeader + storedDeflate(npy) + crcAndSize(npy), to: "x.npy.gz")), matrix)
        let idx: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 4, 3, 1, 4, 1]
        let labels = try DataLoader.readMatrix(path: try write(gzipHeader + storedDeflate(idx) + crcAndSize(idx), to: "labels-idx1-ubyte.gz"))
        XCTAssertEqual(labels.values, [3, 1, 4, 1])
    }

    func testDamagedGzipIsOneLineNamingTheProblem() throws {
        let good = try bytes("lines.csv.gz")
        func failure(_ damaged: [UInt8]) -> String { message { try Archive.gunzip(damaged, name: "f.gz") } }
        var crc = good
        crc[crc.count - 8] ^= 1
        XCTAssertEqual(failure(crc), "f.gz: gzip: the data does not match its CRC-32 (file corrupt?)")
        var size = good
        size[size.count - 4] ^= 1
        XCTAssertEqual(failure(size), "f.gz: gzip: the data is 3039 bytes but the trailer records 3038 (mod 2^32; file corrupt?)")
        XCTAssertEqual(failure(Array(good.prefix(good.count / 2))), "f.gz: gzip: the compressed data ends inside a block (truncated?)")
        XCTAssertEqual(failure(Array(good.dropLast(3))), "f.gz: gzip: the file ends before a member's CRC and size (truncated?)")
        XCTAssertEqual(failure(good + [1, 2, 3]), "f.gz: gzip: 3 bytes after the end of the compressed data that are not another gzip member")
        XCTAssertEqual(try Archive.gunzip(good + [0, 0, 0, 0], name: "f.gz"), lines(), "zero padding after the last member")
        var method = good
        method[2] = 7
        XCTAssertEqual(failure(method), "f.gz: gzip: compression method 7; gzip defines only deflate (8)")
        var headerCRC = try bytes("lines-header.csv.gz")
        headerCRC[12] ^= 0x40  // inside the extra field, which the header CRC covers
        XCTAssertEqual(failure(headerCRC), "f.gz: gzip: the header's check value is wrong (file corrupt?)")
        // a bit flipped anywhere in the compressed data (but its last byte, whose high bits may
        // be padding) is caught, whatever it breaks
        for index in 10..<(good.count - 9) {
            var flipped = good
            flipped[index] ^= UInt8(1) << UInt8(index % 8)
            let text = failure(flipped)
            XCTAssertTrue(text.hasPrefix("f.gz: gzip: "), "byte \(index): \(text)")
            XCTAssertFalse(text.contains("\n"))
        }
    }

    // MARK: DEFLATE streams built bit by bit

    func testMalformedDeflateStreams() throws {
        func failure(_ stream: [UInt8], limit: Int = Inflate.defaultLimit) -> String {
            do {
                _ = try Inflate.decompress(stream, limit: limit)
                return "no error"
            } catch let error as Inflate.Failure {
                return error.reason
            } catch {
                return "\(error)"
            }
        }
        var bits = BitWriter()
        bits.put(1, 1); bits.put(3, 2)  // final block of type 3
        XCTAssertEqual(failure(bits.bytes), "a block of the reserved type 3")

        XCTAssertEqual(failure([0x01, 5, 0, 0, 0, 65]), "a stored block's length 5 does not match its check value")
        XCTAssertEqual(failure([0x01, 5, 0, 0xFA, 0xFF, 65]), "the compressed data ends inside a stored block (truncated?)")
        XCTAssertEqual(failure([]), "the compressed data ends inside a block (truncated?)")

        // fixed codes: the literal 'a', then a match of length 3 at distance 5 (only 1 byte before it)
        bits = BitWriter()
        bits.put(1, 1); bits.put(1, 2)
        bits.putCode(0x30 + 0x61, 8)  // 'a'
        bits.putCode(1, 7)  // length symbol 257: 3
        bits.putCode(4, 5); bits.put(0, 1)  // distance code 4: 5 + 0
        bits.putCode(0, 7)  // end of block
        XCTAssertEqual(failure(bits.bytes), "a distance of 5 bytes, before the start of the data")

        // the same with distance code 0 (1 byte back): "aaaa"
        bits = BitWriter()
        bits.put(1, 1); bits.put(1, 2)
        bits.putCode(0x30 + 0x61, 8)
        bits.putCode(1, 7)
        bits.putCode(0, 5)
        bits.putCode(0, 7)
        XCTAssertEqual(try Inflate.decompress(bits.bytes).output, Array("aaaa".utf8))
        XCTAssertEqual(failure(bits.bytes, limit: 3), "it decompresses to more than 3 bytes")

        // fixed codes: the unused distance symbol 30
        bits = BitWriter()
        bits.put(1, 1); bits.put(1, 2)
        bits.putCode(0x30 + 0x61, 8)
        bits.putCode(1, 7)
        bits.putCode(30, 5)
        XCTAssertEqual(failure(bits.bytes), "the invalid distance symbol 30")

        // a dynamic block whose code-length code gives 19 symbols a 1-bit code
        bits = BitWriter()
        bits.put(1, 1); bits.put(2, 2)
        bits.put(0, 5); bits.put(0, 5); bits.put(15, 4)
        for _ in 0..<19 { bits.put(1, 3) }
        XCTAssertEqual(failure(bits.bytes), "an over-subscribed Huffman code")

        // a dynamic block that starts its lengths with "repeat the previous one" (symbol 16)
        bits = BitWriter()
        bits.put(1, 1); bits.put(2, 2)
        bits.put(0, 5); bits.put(0, 5); bits.put(0, 4)  // 4 code-length codes: 16, 17, 18, 0
        for length in [1, 0, 0, 1] { bits.put(length, 3) }  // canonical, by symbol: 0 → "0", 16 → "1"
        bits.putCode(1, 1); bits.put(0, 2)
        XCTAssertEqual(failure(bits.bytes), "a repeated code length with none before it")

        // an incomplete code (one 2-bit symbol) meets bits that no code starts with
        bits = BitWriter()
        bits.put(1, 1); bits.put(2, 2)
        bits.put(0, 5); bits.put(0, 5); bits.put(0, 4)
        for length in [0, 0, 0, 2] { bits.put(length, 3) }  // only symbol 0, as "00"
        bits.putCode(3, 2)
        XCTAssertEqual(failure(bits.bytes), "a code the block's Huffman tables do not define")
    }

    // MARK: zip and .npz

    func testNpzArraysByName() throws {
        let x = DataMatrix(rows: 4, columns: 3, values: (0..<12).map { Float($0) / 8 }, isIntegral: false)
        for archive in ["arrays.npz", "arrays-compressed.npz"] {
            let read = try DataLoader.readMatrix(path: fixture(archive) + ":x")
            XCTAssertEqual(read.values, x.values, archive)
            XCTAssertEqual(read.columns, 3, archive)
            let y = try DataLoader.readMatrix(path: fixture(archive) + ":y.npy")
            XCTAssertEqual(y.values, [0, 1, 2, 1], archive)
            XCTAssertTrue(y.isIntegral)
        }
        // one array (np.savez(file, x) calls it arr_0) needs no name; a ZIP64 directory reads too
        XCTAssertEqual(try DataLoader.readMatrix(path: fixture("single.npz")).values, x.values)
        XCTAssertEqual(try DataLoader.readMatrix(path: fixture("single.npz") + ":arr_0").values, x.values)
        XCTAssertEqual(try DataLoader.readMatrix(path: fixture("zip64.npz")).values, x.values)
        let entries = try Archive.zipEntries(try bytes("zip64.npz"), name: "zip64.npz")
        XCTAssertEqual(entries.map(\.name), ["x.npy"])
        XCTAssertEqual(entries.first?.size, 176)
    }

    func testNpzNamesAreCheckedAndListed() throws {
        let arrays = fixture("arrays.npz")
        XCTAssertEqual(message { try DataLoader.readMatrix(path: arrays) },
                       "\(arrays): the archive holds 2 files (x, y); pick one as \(arrays):NAME")
        XCTAssertEqual(message { try DataLoader.readMatrix(path: arrays + ":z") },
                       "\(arrays): the archive has nothing named 'z' (it holds x, y)")
        let plain = try write(lines(), to: "lines.csv")
        XCTAssertEqual(message { try DataLoader.readMatrix(path: plain + ":x") },
                       "\(plain): 'x' after the colon picks a file from a zip archive (.npz), but this is not one")
        // a file whose own name has the colon wins over an archive's member
        let colon = try write(lines(), to: "odd:name.csv")
        XCTAssertEqual(DataLoader.fileAndMember(colon).file, colon)
        XCTAssertNil(DataLoader.fileAndMember(colon).member)
        XCTAssertEqual(DataLoader.fileAndMember(arrays + ":x").file, arrays)
        XCTAssertEqual(DataLoader.fileAndMember("/no/such:x").file, "/no/such:x", "nothing there: the whole path, for its error")
    }

    func testDamagedZipIsOneLineNamingTheProblem() throws {
        let good = try bytes("arrays-compressed.npz")
        let entries = try Archive.zipEntries(good, name: "a.npz")
        XCTAssertEqual(entries.map(\.name), ["x.npy", "y.npy"])
        XCTAssertEqual(entries.map(\.method), [8, 8])
        // a bit flipped in x's compressed data (but its last byte): CRC, a bad code or a wrong
        // size, one line each
        let at = entries[0].headerOffset
        let start = at + 30 + Int(good[at + 26]) + Int(good[at + 27]) << 8 + Int(good[at + 28]) + Int(good[at + 29]) << 8
        var flips = 0
        for index in start..<(start + entries[0].compressedSize - 1) {
            var damaged = good
            damaged[index] ^= UInt8(1) << UInt8(index % 8)
            let text = message { try DataLoader.readMatrix(path: try self.write(damaged, to: "d.npz") + ":x") }
            XCTAssertTrue(text.contains("d.npz: zip entry 'x.npy': "), "byte \(index): \(text)")
            XCTAssertFalse(text.contains("\n"))
            flips += 1
        }
        XCTAssertGreaterThan(flips, 50)
        var crc = good
        let central = try XCTUnwrap((0..<(crc.count - 4)).first { crc[$0..<($0 + 4)].elementsEqual([0x50, 0x4B, 0x01, 0x02]) })
        crc[central + 16] ^= 1
        XCTAssertEqual(message { try DataLoader.readMatrix(path: try self.write(crc, to: "c.npz") + ":x") },
                       "\(directory.appendingPathComponent("c.npz").path): zip entry 'x.npy': the data does not match its CRC-32 (file corrupt?)")
        var method = good
        method[central + 10] = 12
        XCTAssertTrue(message { try DataLoader.readMatrix(path: try self.write(method, to: "m.npz") + ":x") }
            .hasSuffix("zip entry 'x.npy': compression method 12; MLPKit reads stored (0) and deflate (8) entries"))
        XCTAssertTrue(message { try DataLoader.readMatrix(path: try self.write(Array(good.dropLast(5)), to: "t.npz") + ":x") }
            .hasSuffix("zip: no end-of-central-directory record (not a zip archive, or truncated?)"))
    }

    // MARK: helpers

    /// A gzip member's header without optional fields.
    private let gzipHeader: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3]

    /// `data` as one final stored DEFLATE block.
    private func storedDeflate(_ data: [UInt8]) -> [UInt8] {
        precondition(data.count < 65536)
        let length = UInt16(data.count)
        return [1, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)] + data
    }

    /// gzip's trailer for `data`: its CRC-32 (zlib's, checked on "123456789") and its size.
    private func crcAndSize(_ data: [UInt8]) -> [UInt8] {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)[...]), 0xCBF4_3926)
        let crc = CRC32.checksum(data[...]), size = UInt32(data.count)
        return [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: crc >> $0) } + [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: size >> $0) }
    }
}

/// Writes DEFLATE's bit stream: values least significant bit first, Huffman codes most
/// significant bit first.
private struct BitWriter {
    var bytes: [UInt8] = []
    var used = 8

    mutating func put(_ value: Int, _ count: Int) {
        for bit in 0..<count { append((value >> bit) & 1) }
    }

    mutating func putCode(_ code: Int, _ length: Int) {
        for bit in stride(from: length - 1, through: 0, by: -1) { append((code >> bit) & 1) }
    }

    private mutating func append(_ bit: Int) {
        if used == 8 {
            bytes.append(0)
            used = 0
        }
        bytes[bytes.count - 1] |= UInt8(bit) << UInt8(used)
        used += 1
    }
}
