#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The environment variables that tune the CPU backend, and what is wrong with any that is set
/// to a value it cannot take (such a value is ignored, so the tool says so rather than run
/// silently with the default).
public enum EnvironmentSettings {
    /// One sentence per variable set to a value that is ignored; empty when all are fine.
    public static func problems() -> [String] {
        var problems: [String] = []
        func value(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        if let blas = value("MLPKIT_BLAS"), blas != "none", BLASLibrary.shared?.name != blas {
            let using = BLASLibrary.shared.map { "using \($0.name)" } ?? "using the Swift product"
            problems.append("MLPKIT_BLAS=\(blas) could not be loaded as a BLAS (not found, or no cblas_sgemm in it); \(using)")
        }
        if let helpers = value("MLPKIT_HELPER_THREADS"), Int(helpers).map({ $0 < 0 }) ?? true {
            problems.append("MLPKIT_HELPER_THREADS=\(helpers) is not a non-negative whole number; ignored")
        }
        for name in ["MLPKIT_SIMD", "MLPKIT_AVX512", "MLPKIT_SPLIT_PRODUCTS", "MLPKIT_CLAIMED", "MLPKIT_OWNED", "MLPKIT_PANELS"] {
            if let setting = value(name), setting != "0", setting != "1" {
                problems.append("\(name)=\(setting) is neither 0 nor 1; taken as 1")
            }
        }
        return problems
    }
}
