#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A CBLAS library found at run time with `dlopen`, so the package builds with the Swift
/// toolchain alone and uses OpenBLAS (or another BLAS) wherever one is installed.
///
/// The search order is `$MLPKIT_BLAS` (a file name or path) first, then `libopenblas.so.0`,
/// `libopenblas.so`, `libopenblasp.so.0`, `libblis.so.4`, `libmkl_rt.so`, `libcblas.so.3`,
/// `libblas.so.3`: the first library that exports `cblas_sgemm` wins.
public final class BLASLibrary: @unchecked Sendable {
    typealias SgemmFunction = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float,
        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
        UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    typealias SetThreadsFunction = @convention(c) (Int32) -> Void
    typealias GetThreadsFunction = @convention(c) () -> Int32

    /// The library names tried, in order, after `$MLPKIT_BLAS`.
    public static let candidateNames = [
        "libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libblis.so.4",
        "libmkl_rt.so", "libcblas.so.3", "libblas.so.3",
    ]

    /// The file name the library was opened by.
    public let name: String
    let sgemm: SgemmFunction
    private let setThreads: SetThreadsFunction?
    private let getThreads: GetThreadsFunction?
    private let handle: UnsafeMutableRawPointer

    /// The BLAS this process uses, or nil when none was found (the Swift product is used).
    /// Set `MLPKIT_BLAS=none` to force the Swift product.
    public static let shared: BLASLibrary? = {
        let override = getenv("MLPKIT_BLAS").map { String(cString: $0) }
        if override == "none" { return nil }
        let names = (override.map { [$0] } ?? []) + candidateNames
        for name in names {
            if let library = BLASLibrary(name: name) { return library }
        }
        return nil
    }()

    private init?(name: String) {
        guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { return nil }
        guard let symbol = dlsym(handle, "cblas_sgemm") else {
            dlclose(handle)
            return nil
        }
        self.handle = handle
        self.name = name
        self.sgemm = unsafeBitCast(symbol, to: SgemmFunction.self)
        self.setThreads = dlsym(handle, "openblas_set_num_threads").map { unsafeBitCast($0, to: SetThreadsFunction.self) }
        self.getThreads = dlsym(handle, "openblas_get_num_threads").map { unsafeBitCast($0, to: GetThreadsFunction.self) }
    }

    /// The number of threads the library uses, when it tells (OpenBLAS does).
    public var threads: Int? {
        getThreads.map { Int($0()) }
    }

    /// Sets the library's thread count, where the library allows it (OpenBLAS does).
    public func setThreadCount(_ count: Int) {
        setThreads?(Int32(clamping: count))
        currentThreads = count
    }

    /// The threads the library had when loaded: the most a product may use.
    public private(set) lazy var maximumThreads: Int = threads ?? 1
    private var currentThreads: Int?

    /// Products with fewer multiply-adds than this run on one thread: measured on a 2-core
    /// machine, OpenBLAS's second thread slows the mnist configuration's products (at most
    /// 128·256·784 ≈ 2.6e7 multiply-adds) by about 25%, and speeds up the wide one's (≥ 5e8).
    public static let singleThreadBelow = 1 << 27

    /// Uses one thread for a small product and all of them for a large one, changing the
    /// library's setting only when it differs.
    func chooseThreads(m: Int, n: Int, k: Int) {
        guard setThreads != nil, maximumThreads > 1 else { return }
        let (product, overflow) = m.multipliedReportingOverflow(by: n)
        let work = overflow ? Int.max : product.multipliedReportingOverflow(by: k).overflow ? Int.max : product * k
        let wanted = work < Self.singleThreadBelow ? 1 : maximumThreads
        if currentThreads != wanted { setThreadCount(wanted) }
    }

    private static let rowMajor: Int32 = 101
    private static let noTranspose: Int32 = 111
    private static let transpose: Int32 = 112

    /// C[m×n] = op(A)·op(B), row-major, in the given layout (see `ProductLayout`).
    func product(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
    ) {
        let (transposeA, transposeB, lda, ldb): (Int32, Int32, Int, Int)
        switch layout {
        case .nt: (transposeA, transposeB, lda, ldb) = (Self.noTranspose, Self.transpose, k, k)
        case .tn: (transposeA, transposeB, lda, ldb) = (Self.transpose, Self.noTranspose, m, n)
        case .nn: (transposeA, transposeB, lda, ldb) = (Self.noTranspose, Self.noTranspose, k, n)
        }
        chooseThreads(m: m, n: n, k: k)
        // C zeroed here in one contiguous pass and accumulated into (β = 1): with β = 0 OpenBLAS
        // zeroes C itself one row at a time (`sgemm_beta`, a memset call per row: 15% of the
        // tiny step's instructions). The sums are the same: 0 + x is exact.
        c.update(repeating: 0, count: m * n)
        sgemm(
            Self.rowMajor, transposeA, transposeB, Int32(m), Int32(n), Int32(k), 1,
            a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)), 1, c, Int32(max(n, 1)))
    }
}
