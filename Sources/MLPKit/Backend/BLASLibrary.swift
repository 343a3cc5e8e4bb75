import CMLPKitSIMD
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
        // OpenBLAS's idle threads spin (yielding) for 2^28 cycles, about 0.1 s, after each
        // threaded product, so they kept taking the second core from the element-wise passes
        // between the wide step's products: its Adam took 12 ms instead of 6. With 2^4 they
        // sleep at once (a wake-up is some microseconds against a threaded product's ≥ 1.7 ms).
        // Read once, when the library loads; a value the user set is kept.
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
        var requested: String?
        if getenv("OPENBLAS_CORETYPE") == nil, let core = openBLASCoreType {
            setenv("OPENBLAS_CORETYPE", core, 0)
            requested = core
        }
        let names = (override.map { [$0] } ?? []) + candidateNames
        for name in names {
            if let library = BLASLibrary(name: name, requestedCore: requested) { return library }
        }
        return nil
    }()

    /// The OpenBLAS kernels to ask for on a processor with AVX-512 (`OPENBLAS_CORETYPE`, unless the
    /// user set it): SkylakeX's, or Cooperlake's where AVX512_BF16 is there too (the same
    /// single-precision kernels; OpenBLAS's own choice on such a processor). OpenBLAS 0.3.21
    /// (Debian 12's) does not know the Xeons after Ice Lake and falls back to Prescott's SSE3
    /// kernels: on a 2-core Xeon with AVX-512 and AMX (CPUID family 6, model 207) its 2048³
    /// product ran at 52 GFLOP/s, and at 250–290 with these. Nil elsewhere: OpenBLAS chooses.
    static let openBLASCoreType: String? = switch mlpkit_avx512_level() {
    case 2: "Cooperlake"
    case 1: "SkylakeX"
    default: nil
    }

    /// The name of the kernels OpenBLAS runs (`openblas_get_corename`: Haswell, SkylakeX, Zen, …),
    /// or nil for another library.
    public var coreName: String? {
        guard let symbol = dlsym(handle, "openblas_get_corename") else { return nil }
        typealias CoreNameFunction = @convention(c) () -> UnsafePointer<CChar>?
        return unsafeBitCast(symbol, to: CoreNameFunction.self)().map { String(cString: $0) }
    }

    /// OpenBLAS's build configuration (`openblas_get_config`: version, `DYNAMIC_ARCH`, …), or nil
    /// for another library. Only a `DYNAMIC_ARCH` build reads `OPENBLAS_CORETYPE`.
    var configuration: String? {
        guard let symbol = dlsym(handle, "openblas_get_config") else { return nil }
        typealias ConfigFunction = @convention(c) () -> UnsafePointer<CChar>?
        return unsafeBitCast(symbol, to: ConfigFunction.self)().map { String(cString: $0) }
    }

    /// The OpenBLAS kernels MLPKit asked for (``openBLASCoreType``), or nil where it asked for
    /// none (no AVX-512, or `OPENBLAS_CORETYPE` set by the user).
    public let requestedCore: String?

    private init?(name: String, requestedCore: String?) {
        guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { return nil }
        guard let symbol = dlsym(handle, "cblas_sgemm") else {
            dlclose(handle)
            return nil
        }
        self.handle = handle
        self.name = name
        self.requestedCore = requestedCore
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
    /// library's setting only when it differs; returns the thread count the product runs with
    /// (1 when the library cannot be told).
    @discardableResult
    func chooseThreads(multiplyAdds work: Int) -> Int {
        guard setThreads != nil, maximumThreads > 1 else { return 1 }
        let wanted = work < Self.singleThreadBelow ? 1 : maximumThreads
        if currentThreads != wanted { setThreadCount(wanted) }
        return wanted
    }

    /// One thread for the products that follow, set now: before two threads call products at
    /// once (`CPUBackend.concurrently`, whose products all have fewer multiply-adds than
    /// `singleThreadBelow`), so that neither then changes, or first reads, the setting.
    func useOneThread() {
        chooseThreads(multiplyAdds: 0)
    }

    /// m·n·k, saturating at Int.max.
    static func multiplyAdds(m: Int, n: Int, k: Int) -> Int {
        let (product, overflow) = m.multipliedReportingOverflow(by: n)
        let (work, overflow2) = product.multipliedReportingOverflow(by: k)
        return overflow || overflow2 ? Int.max : work
    }

    /// Products that run on one BLAS thread but have at least this many multiply-adds (the
    /// mnist configuration's five largest, from 4.2e6; none of tiny's) are split into blocks of
    /// C that the calling thread and `ParallelChunks`'s helpers take (`productInChunks`). On the
    /// 2-core machine, quiet, the mnist step went from 1.92–2.08 to 1.39–1.59 ms; with another
    /// process holding one core it was 1.87–2.10 against 1.93–2.34 ms, so turn it off there.
    public static let splitFrom = 1 << 21
    /// Whether products from `singleThreadBelow` up to `largeSplitBelow` multiply-adds are split
    /// the same way (two blocks, one OpenBLAS thread each) instead of running on OpenBLAS's own
    /// threads: where the pool has two threads, as on the 2-core machine this was measured on.
    /// There OpenBLAS 0.3.21's threaded product (Cooperlake kernels, the caches flushed between
    /// products as a step's passes do) ran 4096×256×256 NT, NN and 256×256×4096 TN (a 256-wide
    /// layer at batch 4096) at 212, 240 and 211 GFLOP/s, the halves at 301, 298 and 271; with its
    /// threads just used (warm), 281, 272 and 236 against 308, 319 and 273, and 2048×512×512 NT
    /// 298 against 326. Its threads, spinning after a product, also no longer take a core from the
    /// pool's helper during the passes between products: [2,256,256,256,3] at batch 4096, the step
    /// 15.46/15.59 → 14.73/14.97 ms.
    static let splitsLargeProducts = ParallelChunks.threads == 2
    /// Products of this many multiply-adds or more keep OpenBLAS's threads: warm, wide's
    /// 512×2048×2048 NT ran at 305 GFLOP/s on them against 292 in halves, 2048³ level (313 against
    /// 310), and wide's step in halves took 90.2–90.9 against 88.3–88.9 ms.
    static let largeSplitBelow = 1 << 30

    /// A large TN product whose depth is at least this many times C's larger side (a weight
    /// gradient over a large batch: 256×256×4096) is split along the depth instead
    /// (`productInDepthHalves`). In a C harness (one OpenBLAS thread a half, 32 MiB written
    /// between products), GFLOP/s in depth halves against row halves: 256×256×4096 301 / 278,
    /// 128×256×4096 267 / 236, 256×784×4096 305 / 277, 128×128×8192 274 / 234, 512×512×4096
    /// 303 / 287; level from a ratio of 4 down (512×512×2048 303 / 304, 1024×1024×2048 291 / 292).
    static let depthSplitRatio = 4

    /// Whether a product goes by `productInDepthHalves`: a TN product from `singleThreadBelow`
    /// multiply-adds whose depth is at least `depthSplitRatio` times C's larger side, where the
    /// pool has two threads, however large (from 2³⁰ too, where other products keep OpenBLAS's
    /// threads: [8,512,512,8] at batch 4096, its 512×512×4096 weight gradient with its delta,
    /// 14.45–15.40 → 14.24–14.67 ms, lower in five alternating pairs of five).
    static func takesDepthHalves(_ layout: ProductLayout, m: Int, n: Int, k: Int) -> Bool {
        layout == .tn && splitsLargeProducts && multiplyAdds(m: m, n: n, k: k) >= singleThreadBelow
            && k >= depthSplitRatio * max(m, n)
    }

    /// Whether such products are split (`MLPKIT_SPLIT_PRODUCTS=0` turns it off).
    let splitsProducts: Bool = getenv("MLPKIT_SPLIT_PRODUCTS").map { String(cString: $0) != "0" } ?? true

    private struct ProductJob {
        var sgemm: SgemmFunction
        var layout: ProductLayout
        var transposeA, transposeB: Int32
        var m, n, k, lda, ldb: Int
        var a: UnsafePointer<Float>
        var b: UnsafePointer<Float>
        var c: UnsafeMutablePointer<Float>
        var splitsColumns: Bool
        // the epilogue each block applies after its `sgemm` (AVX-512's `mlpkit_epilogue_block_avx512`)
        var bias: UnsafePointer<Float>? = nil
        var function: Int32 = 0
        var source: UnsafePointer<Float>? = nil
    }

    /// The product as two independent products of blocks of C, each zeroing its block and
    /// calling `sgemm` with the full product's leading dimensions and depth, taken by the calling
    /// thread and `ParallelChunks`'s helpers. The blocks are C's rows (contiguous in memory, so
    /// the two threads share no cache line of C) in multiples of 16, or its columns when C has
    /// fewer than 32 rows, or in NT and NN when C is wider than tall: each thread then packs half
    /// of B (the weights) where in row halves each packed all of it. On the 2-core Xeon, two
    /// alternating rounds: [512,2048,2048,10] at batch 128 20.1 → 17.4–17.6 ms a step,
    /// [784,1024,1024,10] at batch 256 10.7 → 10.1 ms (its 256×1024×784 NT product 1.69 → 1.55
    /// ms), and mnist without AVX-512 (`MLPKIT_AVX512=0`, its mid-size products here) 851–856 →
    /// 764–769 µs. TN products keep row halves (in columns mnist's weight gradients were 8–12%
    /// slower). On the 2-core machine, against four blocks of C's columns (or rows,
    /// for a tall C) in multiples of 48 (three rounds of the mnist step's five split products,
    /// alternating): 880–974 µs against 1034–1158 µs, every product faster. The blocks depend
    /// on the shape alone, so the result does not depend on which thread takes which block or
    /// on the number of cores; it is not always the same bits as one call, though: OpenBLAS's
    /// kernel rounds the last columns of a call differently (checked to agree to rounding in
    /// `CPUParallelTests`). `MLPKIT_SPLIT_PRODUCTS=0` turns the split off.
    ///
    /// With AVX-512, each block then applies the product's epilogue (`epilogue`) to itself, on the
    /// thread that wrote it, while it is in that core's cache, instead of a pass over all of C
    /// afterwards, split over both cores (each half reading the rows the other core had just
    /// written): the same element-wise operations, so the same bits. Returns whether it did.
    @discardableResult
    private func productInChunks(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, lda: Int, ldb: Int, transposeA: Int32, transposeB: Int32,
        epilogue: SIMDKernels.SkinnyEpilogue = .none
    ) -> Bool {
        let tile = 16  // blocks a multiple of the kernel's 16-wide tiles
        let splitsColumns = m < 2 * tile || (layout != .tn && n > m)
        let extent = splitsColumns ? n : m
        let pieces = 2  // fixed, so that the blocks (and so the bits) depend on the shape alone
        let width = ParallelChunks.blockWidth(extent, pieces: pieces, multiple: tile)
        var job = ProductJob(sgemm: sgemm, layout: layout, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                             lda: lda, ldb: ldb, a: a, b: b, c: c, splitsColumns: splitsColumns)
        let applies = SIMDKernels.avx512 && !epilogue.isNone
        if applies {
            let (bias, function, source) = epilogue.arguments
            (job.bias, job.function, job.source) = (bias, function.rawValue, source)
        }
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: extent, chunk: width, parallel: true, staysAwake: true, context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: ProductJob.self).pointee
                let (m, n, k) = (job.m, job.n, job.k)
                var (a, b, c) = (job.a, job.b, job.c)
                var (rows, columns) = (m, n)
                if job.splitsColumns {
                    columns = end - start
                    b += job.layout == .nt ? start * k : start
                    c += start
                    for i in 0..<m { (c + i * n).update(repeating: 0, count: columns) }
                } else {
                    rows = end - start
                    a += job.layout == .tn ? start : start * k
                    c += start * n
                    c.update(repeating: 0, count: rows * n)
                }
                job.sgemm(
                    BLASLibrary.rowMajor, job.transposeA, job.transposeB, Int32(rows), Int32(columns), Int32(k), 1,
                    a, Int32(max(job.lda, 1)), b, Int32(max(job.ldb, 1)), 1, c, Int32(max(n, 1)))
                if job.bias != nil || job.source != nil {
                    // the block's epilogue: its first column's bias, its first element's source
                    let column = job.splitsColumns ? start : 0, row = job.splitsColumns ? 0 : start
                    mlpkit_epilogue_block_avx512(c, n, rows, columns, job.bias.map { $0 + column }, job.function,
                                                 job.source.map { $0 + row * n + column })
                }
            }
        }
        return applies
    }

    private struct DepthJob {
        var sgemm: SgemmFunction
        var m, n, k, half: Int
        var a, b: UnsafePointer<Float>
        var c, other: UnsafeMutablePointer<Float>
    }

    /// C = Aᵀ·B (A k×m, B k×n) as the sum of two products over the depth's halves, one a thread,
    /// each one-thread `sgemm` into its own C (the second into a scratch C), then added: C =
    /// P₀ + P₁, each element's two sums added once (the halves fixed by the shape, so the same bits
    /// on any number of cores). Each thread reads only its half of the batch's rows, where row
    /// halves of C both read all of them: 256×256×4096 at 296–307 GFLOP/s against 276–280 in row
    /// halves and 211–236 on OpenBLAS's threads (a C harness, Cooperlake kernels);
    /// [2,256,256,256,3] at batch 4096, its two 256-wide layers' backward phases 4.48–4.55 →
    /// 4.13–4.18 ms each and the step 15.25/14.94 → 14.09/14.08 ms.
    private func productInDepthHalves(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                      c: UnsafeMutablePointer<Float>) {
        let half = ParallelChunks.blockWidth(k, pieces: 2, multiple: 16)
        guard let scratch = malloc(m * n * MemoryLayout<Float>.stride)?.bindMemory(to: Float.self, capacity: m * n) else {
            // no memory for the second half's sums: the row halves, whose bits differ only by rounding
            productInChunks(.tn, m: m, n: n, k: k, a: a, b: b, c: c, lda: m, ldb: n, transposeA: Self.transpose,
                            transposeB: Self.noTranspose)
            return
        }
        defer { free(scratch) }
        var job = DepthJob(sgemm: sgemm, m: m, n: n, k: k, half: half, a: a, b: b, c: c, other: scratch)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: 2, chunk: 1, parallel: true, staysAwake: true, context: context) { context, start, _ in
                let job = context.assumingMemoryBound(to: DepthJob.self).pointee
                let (from, to) = start == 0 ? (0, job.half) : (job.half, job.k)
                let target = start == 0 ? job.c : job.other
                target.update(repeating: 0, count: job.m * job.n)
                job.sgemm(BLASLibrary.rowMajor, BLASLibrary.transpose, BLASLibrary.noTranspose, Int32(job.m), Int32(job.n),
                          Int32(to - from), 1, job.a + from * job.m, Int32(max(job.m, 1)), job.b + from * job.n,
                          Int32(max(job.n, 1)), 1, target, Int32(max(job.n, 1)))
            }
        }
        for i in 0..<(m * n) { c[i] += scratch[i] }
    }

    private static let rowMajor: Int32 = 101
    private static let noTranspose: Int32 = 111
    private static let transpose: Int32 = 112

    /// C[m×n] = op(A)·op(B), row-major, in the given layout (see `ProductLayout`); true when it
    /// applied `epilogue` too (`productInChunks` with AVX-512), else the caller applies it.
    @discardableResult
    func product(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, allowsSplit: Bool = true,
        epilogue: SIMDKernels.SkinnyEpilogue = .none
    ) -> Bool {
        let (transposeA, transposeB, lda, ldb): (Int32, Int32, Int, Int)
        switch layout {
        case .nt: (transposeA, transposeB, lda, ldb) = (Self.noTranspose, Self.transpose, k, k)
        case .tn: (transposeA, transposeB, lda, ldb) = (Self.transpose, Self.noTranspose, m, n)
        case .nn: (transposeA, transposeB, lda, ldb) = (Self.noTranspose, Self.noTranspose, k, n)
        }
        let work = Self.multiplyAdds(m: m, n: n, k: k)
        // the mid-size ones chosen by the shape alone (not by the cores there are), so the bits
        // are the same everywhere; the large ones where the pool has two threads (OpenBLAS's
        // threaded product's bits depend on its threads anyway)
        let inDepthHalves = Self.takesDepthHalves(layout, m: m, n: n, k: k)
        if allowsSplit, splitsProducts, work >= Self.splitFrom,
           work < Self.singleThreadBelow || (Self.splitsLargeProducts && work < Self.largeSplitBelow) || inDepthHalves {
            useOneThread()
            if inDepthHalves {
                productInDepthHalves(m: m, n: n, k: k, a: a, b: b, c: c)
                return false
            }
            return productInChunks(layout, m: m, n: n, k: k, a: a, b: b, c: c, lda: lda, ldb: ldb,
                                   transposeA: transposeA, transposeB: transposeB, epilogue: epilogue)
        }
        let threads = chooseThreads(multiplyAdds: work)
        // C zeroed here in one contiguous pass and accumulated into (β = 1): with β = 0 OpenBLAS
        // zeroes C itself one row at a time (`sgemm_beta`, a memset call per row: 15% of the
        // tiny step's instructions; for a threaded product its column-at-a-time zeroing is
        // slower than memset on both cores). The sums are the same: 0 + x is exact.
        if threads > 1 {
            ElementwiseKernels.zeroSplit(c, count: m * n)
        } else {
            c.update(repeating: 0, count: m * n)
        }
        let beta: Float = 1
        sgemm(
            Self.rowMajor, transposeA, transposeB, Int32(m), Int32(n), Int32(k), 1,
            a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)), beta, c, Int32(max(n, 1)))
        return false
    }
}
