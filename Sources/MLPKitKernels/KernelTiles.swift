/// Compile-time tile sizes for one device, emitted as `#define`s ahead of the prelude.
///
/// The product kernels use BM×BN block tiles, BK-deep shared-memory stages and TM×TN outputs per
/// thread, so a block has (BM/TM)·(BN/TN) threads. The reductions use `reduceThreads` threads
/// per block, `columnSumColumns` columns per block for the column sums.
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
    /// Padding of a shared tile's row stride (against bank conflicts on stores).
    public var pad: Int
    /// Threads per block of the column sums and the loss sum (a power of two).
    public var reduceThreads: Int
    /// Columns per block of the column sums (a power of two dividing `reduceThreads`).
    public var columnSumColumns: Int

    /// Tile sizes; call `validate()` before compiling with them.
    public init(bm: Int, bn: Int, bk: Int, tm: Int, tn: Int, pad: Int = 1,
                reduceThreads: Int = 256, columnSumColumns: Int = 32) {
        self.bm = bm
        self.bn = bn
        self.bk = bk
        self.tm = tm
        self.tn = tn
        self.pad = pad
        self.reduceThreads = reduceThreads
        self.columnSumColumns = columnSumColumns
    }

    /// 128×128 block tiles, BK 16, 8×8 per thread, 256 threads: large GPUs (sm_90).
    public static let large = KernelTiles(bm: 128, bn: 128, bk: 16, tm: 8, tn: 8)
    /// 64×64 block tiles, BK 16, 4×4 per thread, 256 threads: small GPUs and CPUs.
    public static let medium = KernelTiles(bm: 64, bn: 64, bk: 16, tm: 4, tn: 4)
    /// 32×32 block tiles, BK 8, 4×4 per thread, 64 threads: devices with small work-groups.
    public static let small = KernelTiles(bm: 32, bn: 32, bk: 8, tm: 4, tn: 4, reduceThreads: 64, columnSumColumns: 16)

    /// Every preset, for compile checks.
    public static let presets: [KernelTiles] = [.large, .medium, .small]

    /// Threads per block of the product kernels.
    public var gemmThreads: Int { (bm / tm) * (bn / tn) }

    /// Bytes of shared memory one product block uses (two BK×(tile + pad) float tiles).
    public var gemmSharedBytes: Int { bk * (bm + pad + bn + pad) * MemoryLayout<Float>.size }

    /// The largest number of threads any kernel block needs.
    public var maxThreads: Int { max(gemmThreads, reduceThreads) }

    /// The `#define` lines that precede the prelude.
    public var defines: String {
        """
        #define BM \(bm)
        #define BN \(bn)
        #define BK \(bk)
        #define TM \(tm)
        #define TN \(tn)
        #define TILE_PAD \(pad)
        #define REDUCE_THREADS \(reduceThreads)
        #define COLSUM_COLUMNS \(columnSumColumns)

        """
    }

    /// "128x128x16 / 8x8 (256 threads)".
    public var description: String {
        "\(bm)x\(bn)x\(bk) / \(tm)x\(tn) (\(gemmThreads) threads)"
    }

    /// Throws when the sizes do not fit the kernels' assumptions.
    public func validate() throws(KernelTilesError) {
        func isPowerOfTwo(_ x: Int) -> Bool { x > 0 && x & (x - 1) == 0 }
        guard bm > 0, bn > 0, bk > 0, tm > 0, tn > 0, pad >= 0 else {
            throw .invalid(self, "every size must be positive")
        }
        guard bm % tm == 0, bn % tn == 0 else {
            throw .invalid(self, "TM must divide BM and TN must divide BN")
        }
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
