import FuzzSupport
import MLPKit

/// Fuzzes `NumpyFile.decode`: it must throw or return a consistent matrix no larger than the
/// file justifies (at most one value per data byte), and encoding that matrix must read back equal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumpy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    guard let matrix = try? NumpyFile.decode(bytes, name: "fuzz.npy") else { return 0 }
    Fuzz.checkMatrix(matrix, sourceBytes: bytes.count, expansion: 1)
    guard let again = try? NumpyFile.decode(NumpyFile.encode(matrix), name: "again.npy") else {
        Fuzz.check(false, "an encoded matrix does not decode")
        return 0
    }
    Fuzz.check(again.rows == matrix.rows && again.columns == matrix.columns && again.values == matrix.values,
               "the round trip changed the matrix")
    return 0
}
