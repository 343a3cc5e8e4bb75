import FuzzSupport
import MLPKit

/// Fuzzes gzip and zip (.npz) reading through `DataLoader.decodeMatrix`, taking the archive's
/// only file and then the one named `x`: each must throw or return a consistent matrix, no more
/// values than DEFLATE's largest expansion (about 1,032 times) of the input allows.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArchive(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    for member in [nil, "x"] as [String?] {
        guard let matrix = try? DataLoader.decodeMatrix(bytes, name: "fuzz.npz", member: member) else { continue }
        Fuzz.checkMatrix(matrix, sourceBytes: bytes.count, expansion: 1100)
    }
    return 0
}
