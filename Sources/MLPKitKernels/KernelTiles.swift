/// Compile-time tile sizes for one device, emitted as `#define`s ahead of the prelude.
///
/// The product kernels use BM×BN block tiles, BK-deep shared-memory stages (two, double-buffered)
/// and TM×TN outputs per thread, so a block has (BM/TM)·(BN/TN) threads; they are compiled a
/// second time with the `compact` tile (half the rows and columns) for products too small to
/// fill the device with the main one. The reductions use `reduceThreads` threads per block,
/// `columnSumColumns` columns per block for the column sums.
public struct KernelTiles: Sendable, Hashable, CustomStringConvertible {
    /// Rows of C per block.
    public var bm: Int
    /// Columns of C per block.
    public var bn: Int
    /// Depth of one shared-memory stage along k.
    public var bk: Int
    /// Rows of C per thread.
    public var tm: Int
    /// Columns of C per thread.
    public var tn: Int
    /// Blocks per multiprocessor the NT and NN product kernels are compiled to fit (CUDA's
    /// `__launch_bounds__` minimum: registers are capped at 64K / (threads · minBlocks)).
    public var minBlocks: Int
    /// The same for the TN kernel (both operands index-contiguous: it needs more registers).
    public var minBlocksTN: Int
    /// Threads per block of the column sums and the loss sum (a power of two).
    public var reduceThreads: Int
    /// Columns per block of the column sums (a power of two dividing `reduceThreads`).
    public var columnSumColumns: Int

    /// Tile sizes; call `validate()` before compiling with them.
    public init(bm: Int, bn: Int, bk: Int, tm: Int, tn: Int, minBlocks: Int = 1, minBlocksTN: Int? = nil,
                reduceThreads: Int = 256, columnSumColumns: Int = 32) {
        self.bm = bm
        self.bn = bn
        self.bk = bk
        self.tm = tm
        self.tn = tn
        self.minBlocks = minBlocks
        self.minBlocksTN = minBlocksTN ?? minBlocks
        self.reduceThreads = reduceThreads
        self.columnSumColumns = columnSumColumns
    }

    /// 128×256 block tiles, BK 16, 8×16 per thread, 256 threads, one block per SM: GPUs whose blocks
    /// may opt in to 50 KB of shared memory (CUDA, sm_90: 95–96% of cuBLAS at 4096³ on an H200,
    /// against 86–91% for `.large`). Its compact tile is `.large`'s (64×64, 4×4 per thread).
    public static let xlarge = KernelTiles(bm: 128, bn: 256, bk: 16, tm: 8, tn: 16, minBlocks: 1)
    /// 128×128 block tiles, BK 16, 8×8 per thread, 256 threads: large GPUs within 48 KB of shared
    /// memory per block (OpenCL). NT and NN are held to 128 registers for two blocks per SM (+5%
    /// and +2% at 4096³ on an H200); TN would spill there and runs one block per SM.
    public static let large = KernelTiles(bm: 128, bn: 128, bk: 16, tm: 8, tn: 8, minBlocks: 2, minBlocksTN: 1)
    /// 64×64 block tiles, BK 16, 4×4 per thread, 256 threads: small GPUs and CPUs.
    public static let medium = KernelTiles(bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, minBlocks: 4)
    /// 32×32 block tiles, BK 8, 4×4 per thread, 64 threads: devices with small work-groups.
    public static let small = KernelTiles(bm: 32, bn: 32, bk: 8, tm: 4, tn: 4, minBlocks: 4, reduceThreads: 64,
                                          columnSumColumns: 16)

    /// The presets and tuning variants by name, for `MLPKIT_CUDA_TILES` (NOTES.md has the
    /// measurements of these and of earlier variants): `large-16x8` 128 threads of 16×8 outputs over
    /// 128×128 tiles, two blocks per SM; `large-256x128x16` `.xlarge` transposed (256×128 tiles of
    /// 16×8 per thread); `xlarge-bk8` `.xlarge` over 8-deep stages (static shared memory).
    public static let named: [String: KernelTiles] = [
        "xlarge": .xlarge, "large": .large, "medium": .medium, "small": .small,
        "large-16x8": KernelTiles(bm: 128, bn: 128, bk: 16, tm: 16, tn: 8, minBlocks: 2),
        "large-256x128x16": KernelTiles(bm: 256, bn: 128, bk: 16, tm: 16, tn: 8, minBlocks: 1),
        "xlarge-bk8": KernelTiles(bm: 128, bn: 256, bk: 8, tm: 8, tn: 16, minBlocks: 1),
    ]

    /// Every preset, for compile checks.
    public static let presets: [KernelTiles] = [.xlarge, .large, .medium, .small]

    /// Threads per block of the product kernels: 0 for tiles with TM or TN not positive, and
    /// `Int.max` where the count overflows (both only for tiles `validate()` refuses).
    public var gemmThreads: Int {
        guard tm > 0, tn > 0 else { return 0 }
        let (threads, overflow) = (bm / tm).multipliedReportingOverflow(by: bn / tn)
        return overflow ? Int.max : threads
    }

    /// Bytes of shared memory one product block uses: two stages of BK×(BM + 4) and BK×(BN + 4)
    /// floats (rows padded by 4 floats against bank conflicts, keeping 16-byte alignment).
    /// (`Int.max` where that overflows: tiles far beyond any device's shared memory.)
    public var gemmSharedBytes: Int {
        let (rows, overflow1) = bm.addingReportingOverflow(bn)
        let (padded, overflow2) = rows.addingReportingOverflow(8)
        let (stage, overflow3) = padded.multipliedReportingOverflow(by: bk)
        let (bytes, overflow4) = stage.multipliedReportingOverflow(by: 2 * MemoryLayout<Float>.size)
        return overflow1 || overflow2 || overflow3 || overflow4 ? Int.max : bytes
    }

    /// Shared memory a block may declare statically (CUDA); product tiles above it take theirs as
    /// dynamic shared memory, which the backend opts in to (`dynamicGemmSharedBytes`).
    public static let staticSharedLimit = 48 * 1024

    /// Bytes of dynamic shared memory each product block is launched with: 0 when the stages fit
    /// the static limit (declared in the kernel), else `gemmSharedBytes` (CUDA only).
    public var dynamicGemmSharedBytes: Int { gemmSharedBytes > Self.staticSharedLimit ? gemmSharedBytes : 0 }

    /// The product tile of the `_compact` kernels, for products too small to fill the device with
    /// the main one: the same threads with half the smaller of TM and TN in each direction (64×64
    /// of 4×4 for both `.large` and `.xlarge`), where that stays a multiple of 4, with stages at
    /// least 16 deep (so that a stage still gives every thread a 4-float chunk), four blocks per
    /// SM (two where a thread's outputs or a deeper stage need more than 64 registers); else the
    /// main tile itself.
    public var compact: KernelTiles {
        let side = min(tm, tn) / 2
        guard side % 4 == 0, side > 0 else { return self }
        let (rows, columns) = (bm / tm * side, bn / tn * side)
        // gemmThreads · side² ≤ 4096, without overflow for any sizes
        let blocks = side <= 64 && gemmThreads <= 4096 / (side * side) && bk <= 16 ? 4 : 2
        return KernelTiles(bm: rows, bn: columns, bk: max(bk, 16), tm: side, tn: side, minBlocks: blocks,
                           reduceThreads: reduceThreads, columnSumColumns: columnSumColumns)
    }

    /// The largest number of threads any kernel block needs.
    public var maxThreads: Int { max(gemmThreads, compact.gemmThreads, reduceThreads) }

    /// The `#define` lines that precede the prelude.
    public var defines: String {
        """
        #define BM \(bm)
        #define BN \(bn)
        #define BK \(bk)
        #define TM \(tm)
        #define TN \(tn)
        #define MIN_BLOCKS \(minBlocks)
        #define MIN_BLOCKS_TN \(minBlocksTN)
        #define C_MIN_BLOCKS \(compact.minBlocks)
        #define C_MIN_BLOCKS_TN \(compact.minBlocksTN)
        #define C_BM \(compact.bm)
        #define C_BN \(compact.bn)
        #define C_BK \(compact.bk)
        #define C_TM \(compact.tm)
        #define C_TN \(compact.tn)
        #define DYNAMIC_SHARED \(dynamicGemmSharedBytes > 0 ? 1 : 0)
        #define C_DYNAMIC_SHARED \(compact.dynamicGemmSharedBytes > 0 ? 1 : 0)
        #define REDUCE_THREADS \(reduceThreads)
        #define COLSUM_COLUMNS \(columnSumColumns)

        """
    }

    /// "128x128x16 / 8x8 (256 threads)".
    public var description: String {
        "\(bm)x\(bn)x\(bk) / \(tm)x\(tn) (\(gemmThreads) threads\(blocksNote))"
    }

    private var blocksNote: String {
        if minBlocks == minBlocksTN { return minBlocks > 1 ? ", \(minBlocks) blocks/SM" : "" }
        return ", \(minBlocks) blocks/SM, TN \(minBlocksTN)"
    }

    /// Throws when the sizes do not fit the kernels' assumptions.
    public func validate() throws(KernelTilesError) {
        func isPowerOfTwo(_ x: Int) -> Bool { x > 0 && x & (x - 1) == 0 }
        guard bm > 0, bn > 0, bk > 0, tm > 0, tn > 0, minBlocks > 0, minBlocksTN > 0 else {
            throw .invalid(self, "every size must be positive")
        }
        guard bm % tm == 0, bn % tn == 0 else {
            throw .invalid(self, "TM must divide BM and TN must divide BN")
        }
        // the kernels read and write 4-float chunks: 4×4 quads per thread, stages of whole chunks
        guard tm % 4 == 0, tn % 4 == 0, bk % 4 == 0 else {
            throw .invalid(self, "TM, TN and BK must be multiples of 4")
        }
        // (checked arithmetic: sizes this large are refused, not overflowed)
        let (stageA, overflowA) = bm.multipliedReportingOverflow(by: bk)
        let (stageB, overflowB) = bn.multipliedReportingOverflow(by: bk)
        let (chunks, overflowChunks) = gemmThreads.multipliedReportingOverflow(by: 4)
        guard !overflowA, !overflowB, !overflowChunks, stageA % chunks == 0, stageB % chunks == 0 else {
            throw .invalid(self, "a stage must split into 4-float chunks evenly over the threads")
        }
        if compact != self { try compact.validate() }
        guard isPowerOfTwo(reduceThreads), isPowerOfTwo(columnSumColumns),
              columnSumColumns <= reduceThreads else {
            throw .invalid(self, "reduceThreads and columnSumColumns must be powers of two, columns ≤ threads")
        }
        guard maxThreads <= 1024 else {
            throw .invalid(self, "at most 1024 threads per block")
        }
    }
}

/// Tile sizes the kernels cannot use.
public enum KernelTilesError: Error, CustomStringConvertible {
    /// The tiles and the reason.
    case invalid(KernelTiles, String)

    public var description: String {
        switch self {
        case let .invalid(tiles, reason): "invalid kernel tiles \(tiles): \(reason)"
        }
    }
}
