import MLPKit

/// Helpers shared by the fuzz targets: a failed check aborts, which libFuzzer reports as a crash
/// and saves the input that caused it.
public enum Fuzz {
    /// The fuzzer's input as an array.
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// Aborts (a crash libFuzzer records) when `condition` is false.
    public static func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                             file: StaticString = #file, line: UInt = #line) {
        if !condition() { fatalError("fuzz invariant violated: \(message())", file: file, line: line) }
    }

    /// What every successfully decoded data file must satisfy: at least one row and column,
    /// `rows × columns` values, all finite, and `isIntegral` telling the truth.
    public static func checkMatrix(_ matrix: DataMatrix, sourceBytes: Int, expansion: Int) {
        check(matrix.rows >= 1 && matrix.columns >= 1, "empty matrix \(matrix.rows)×\(matrix.columns)")
        check(matrix.values.count == matrix.rows * matrix.columns,
              "\(matrix.values.count) values for \(matrix.rows)×\(matrix.columns)")
        check(matrix.values.count <= sourceBytes * expansion,
              "\(matrix.values.count) values from \(sourceBytes) bytes")
        check(matrix.values.allSatisfy(\.isFinite), "a decoded value is not finite")
        if matrix.isIntegral {
            check(matrix.values.allSatisfy { $0.rounded(.towardZero) == $0 }, "isIntegral but a value has a fraction")
        }
    }
}

import CFuzzDriver

extension Fuzz {
    /// Runs libFuzzer with the process's arguments on `target` and exits with its status.
    /// (SwiftPM gives each executable its own `main`, so libFuzzer's is not used.)
    public static func main(_ target: @escaping @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv, target)
        exit(status)
    }
}

#if canImport(Glibc)
import Glibc
#endif
