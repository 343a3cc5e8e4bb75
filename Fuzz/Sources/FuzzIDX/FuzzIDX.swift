import FuzzSupport
import MLPKit

/// Fuzzes `IDXFile.decode`: it must throw or return a consistent matrix with exactly one value
/// per data byte, pixels in 0…1 for images and integers 0…255 for labels.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    guard let matrix = try? IDXFile.decode(bytes, name: "fuzz-idx") else { return 0 }
    Fuzz.checkMatrix(matrix, sourceBytes: bytes.count, expansion: 1)
    let header = bytes[3] == 3 ? 16 : 8
    Fuzz.check(matrix.values.count == bytes.count - header, "\(matrix.values.count) values from \(bytes.count - header) data bytes")
    if matrix.isIntegral {
        Fuzz.check(matrix.columns == 1 && matrix.values.allSatisfy { $0 >= 0 && $0 <= 255 }, "labels out of range")
    } else {
        Fuzz.check(matrix.values.allSatisfy { $0 >= 0 && $0 <= 1 }, "pixels out of range")
    }
    return 0
}
