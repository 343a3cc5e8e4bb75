import MLPKit

/// A device buffer the launch planner can range-check: its length in Float32 elements.
public protocol KernelPlanBuffer {
    var count: Int { get }
}

/// Why a launch cannot be planned; each backend turns it into its own typed error.
public enum KernelPlanError: Error, Equatable, Sendable {
    /// An argument out of range (the message is the backend's `invalidArgument` reason).
    case invalidArgument(String)
    /// A loss without a portable kernel yet.
    case noLossKernel(Loss)
}

/// One kernel launch, backend-neutral: `blocksX`×`blocksY` blocks (work-groups) of `threads`
/// threads (work-items) along x, over `dimensions` (1, or 2 for the products) dimensions.
/// OpenCL enqueues `blocks × threads` work-items in groups of `threads`; CUDA launches a grid
/// of `blocks` with blocks of `threads`.
public struct KernelLaunchPlan<Buffer> {
    /// One kernel argument, as the kernels declare them.
    public enum Argument {
        case buffer(Buffer?)
        case int(Int32)
        case float(Float)
    }

    public var kernel: KernelName
    public var blocksX: Int
    public var blocksY: Int
    public var dimensions: Int
    public var threads: Int
    public var arguments: [Argument]

    public init(_ kernel: KernelName, blocksX: Int, blocksY: Int = 1, dimensions: Int = 1, threads: Int,
                _ arguments: [Argument]) {
        self.kernel = kernel
        self.blocksX = blocksX
        self.blocksY = blocksY
        self.dimensions = dimensions
        self.threads = threads
        self.arguments = arguments
    }
}

/// The launches of a loss gradient, planned once the arguments are checked: the per-row loss
/// kernel (when there are rows) and `sum_reduce`, both writing through a per-row scratch buffer
/// of at least `rows` floats that the backend provides.
public struct LossGradientPlan<Buffer> {
    public let rows: Int
    let rows32: Int32
    let lossKernel: KernelName
    let lossArguments: [KernelLaunchPlan<Buffer>.Argument]
    let lossBlocks: Int
    let lossThreads: Int
    let reduceThreads: Int
    let lossSum: Buffer
    let sumOffset: Int32

    /// The launches in order, with `rowLosses` as the per-row scratch buffer.
    public func launches(rowLosses: Buffer) -> [KernelLaunchPlan<Buffer>] {
        var plans: [KernelLaunchPlan<Buffer>] = []
        if rows > 0 {
            // one thread per row, or a block per row (loss_wide), grid-stride
            plans.append(KernelLaunchPlan(lossKernel, blocksX: lossBlocks, threads: lossThreads,
                                          lossArguments + [.buffer(rowLosses)]))
        }
        // the rows' losses totalled in a fixed order by exactly one block
        plans.append(KernelLaunchPlan(.sumReduce, blocksX: 1, threads: reduceThreads, [
            .int(rows32), .buffer(rowLosses), .buffer(lossSum), .int(sumOffset),
        ]))
        return plans
    }
}

/// A product's launches, planned once the arguments are checked: one product kernel, or with k
/// split, the product into a workspace of `workspaceCount` floats that the backend provides and
/// `gemm_splitk_sum`.
public struct ProductPlan<Buffer> {
    /// Floats of workspace the launches need (0: none; `launches` then ignores its argument).
    public let workspaceCount: Int
    let make: (Buffer?) -> [KernelLaunchPlan<Buffer>]

    /// The launches in order, with `workspace` (at least `workspaceCount` floats) when needed.
    public func launches(workspace: Buffer?) -> [KernelLaunchPlan<Buffer>] { make(workspace) }
}

/// Plans every `Backend` operation's launches (checks, kernel choice, geometry, arguments) for
/// both GPU backends, with the geometry of `NOTES.md`.
public struct KernelLaunchPlanner: Sendable {
    /// The compiled tile sizes.
    public var tiles: KernelTiles
    /// Threads per block of the grid-stride element-wise kernels.
    public var elementThreads: Int
    /// The most blocks an element-wise launch uses; the kernels loop past it.
    public var maxElementBlocks: Int
    /// Product blocks that keep the device busy (its multiprocessors): a product with fewer main
    /// tiles runs with the compact tile, and splits k if still short (`productGeometry`); 0
    /// always uses the main tile.
    public var parallelism: Int

    public init(tiles: KernelTiles, elementThreads: Int, maxElementBlocks: Int, parallelism: Int = 0) {
        self.tiles = tiles
        self.elementThreads = elementThreads
        self.maxElementBlocks = maxElementBlocks
        self.parallelism = parallelism
    }

    /// Blocks for `items` grid-stride work-items: enough to cover them, at most `maxElementBlocks`.
    public func elementBlocks(_ items: Int) -> Int {
        max(1, min((items + elementThreads - 1) / elementThreads, maxElementBlocks))
    }

    /// How a product of C[m×n] over k is cut into blocks: the block tile, and how many slices of
    /// k (each `kSplit` deep, a multiple of the tile's BK) are computed by separate blocks and
    /// then added by `gemm_splitk_sum`.
    public struct ProductGeometry: Equatable, Sendable, CustomStringConvertible {
        /// Whether the `_compact` kernels (the compact tile) run.
        public var compact: Bool
        public var tiles: KernelTiles
        /// Slices of k (1: no split).
        public var splits: Int
        /// Depth of each slice (k itself without a split).
        public var kSplit: Int
        /// Product blocks launched.
        public var blocks: Int

        public init(compact: Bool, tiles: KernelTiles, splits: Int, kSplit: Int, blocks: Int) {
            self.compact = compact
            self.tiles = tiles
            self.splits = splits
            self.kSplit = kSplit
            self.blocks = blocks
        }

        public var description: String {
            "\(tiles.bm)x\(tiles.bn)\(compact ? " (compact)" : "")" + (splits > 1 ? ", k in \(splits) slices of \(kSplit)" : "")
        }
    }

    /// Output columns from which a loss runs as `loss_wide` (a block per row).
    public static let wideLossColumns = 64

    /// Slices of k at most, and the least depth of a slice in stages of BK.
    static let maxSplits = 16
    static let minStagesPerSplit = 4

    /// The block tile and the slices of k for a product, from measurements on an H200
    /// (NOTES.md): a main-tile block is about 1.4× faster per multiply-add than compact ones, so
    /// - the main tile alone when its blocks fill at least ¾ of `parallelism` (the SMs);
    /// - else the main tile with k split into enough slices to fill ¾ of them, when k is deep
    ///   enough (at least `minStagesPerSplit` stages per slice): a layer of a few hundred rows;
    /// - else the compact tile, with k split until about 2·`parallelism` blocks run (a narrow
    ///   layer's forward pass or a weight gradient over a small batch).
    public func productGeometry(m: Int, n: Int, k: Int) -> ProductGeometry {
        func blocks(_ t: KernelTiles) -> Int { ((m + t.bm - 1) / t.bm) * ((n + t.bn - 1) / t.bn) }
        let main = blocks(tiles)
        let unsplit = ProductGeometry(compact: false, tiles: tiles, splits: 1, kSplit: k, blocks: main)
        guard parallelism > 0, 4 * main < 3 * parallelism else { return unsplit }
        let fill = (3 * parallelism + 4 * main - 1) / (4 * main)
        if fill <= Self.maxSplits, let split = Self.split(k: k, into: fill, tiles: tiles, blocks: main) {
            return split
        }
        // the compact kernels, unless the compact tile is the main one (then it only splits k)
        let compactTiles = tiles.compact
        let few = blocks(compactTiles)
        let compact = ProductGeometry(compact: compactTiles != tiles, tiles: compactTiles, splits: 1, kSplit: k,
                                      blocks: few)
        guard few < parallelism else { return compact }
        let wanted = min((2 * parallelism + few - 1) / few, Self.maxSplits)
        return Self.split(k: k, into: wanted, tiles: compactTiles, blocks: few, compact: compactTiles != tiles)
            ?? compact
    }

    /// k in about `wanted` slices of whole stages, each at least `minStagesPerSplit` stages deep;
    /// nil when that leaves fewer than two.
    static func split(k: Int, into wanted: Int, tiles: KernelTiles, blocks: Int,
                      compact: Bool = false) -> ProductGeometry? {
        let slices = min(wanted, k / (minStagesPerSplit * tiles.bk))
        guard slices > 1 else { return nil }
        let kSplit = ((k + slices - 1) / slices + tiles.bk - 1) / tiles.bk * tiles.bk
        let splits = (k + kSplit - 1) / kSplit
        guard splits > 1 else { return nil }
        return ProductGeometry(compact: compact, tiles: tiles, splits: splits, kSplit: kSplit, blocks: blocks * splits)
    }

    public func matrixProduct<Buffer: KernelPlanBuffer>(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<Buffer>, b: BufferSlice<Buffer>, c: BufferSlice<Buffer>, epilogue: ProductEpilogue<Buffer>
    ) throws(KernelPlanError) -> ProductPlan<Buffer>? {
        let (m32, n32, k32) = (try Self.int32(m, "m"), try Self.int32(n, "n"), try Self.int32(k, "k"))
        guard m > 0, n > 0 else { return nil }
        try Self.requireIndexable(try Self.product(m, k, "m·k"), "m·k")
        try Self.requireIndexable(try Self.product(n, k, "n·k"), "n·k")
        try Self.requireIndexable(try Self.product(m, n, "m·n"), "m·n")
        let aOffset = try Self.checkRange(a, m * k, "product operand A")
        let bOffset = try Self.checkRange(b, n * k, "product operand B")
        let cOffset = try Self.checkRange(c, m * n, "product result C")

        let code: KernelEpilogue
        let auxiliary: BufferSlice<Buffer>?
        switch epilogue {
        case .none: (code, auxiliary) = (.none, nil)
        case let .bias(bias): (code, auxiliary) = (.bias, bias)
        case let .biasReLU(bias): (code, auxiliary) = (.biasReLU, bias)
        case let .reluMask(activation): (code, auxiliary) = (.reluMask, activation)
        }
        var auxiliaryOffset: Int32 = 0
        if let auxiliary {
            auxiliaryOffset = try Self.checkRange(auxiliary, code == .reluMask ? m * n : n, "product epilogue operand")
        }

        let geometry = productGeometry(m: m, n: n, k: k)
        let kernel: KernelName = switch (layout, geometry.compact) {
        case (.nt, false): .gemmNT
        case (.tn, false): .gemmTN
        case (.nn, false): .gemmNN
        case (.nt, true): .gemmNTCompact
        case (.tn, true): .gemmTNCompact
        case (.nn, true): .gemmNNCompact
        }
        let t = geometry.tiles
        let columnBlocks = (n + t.bn - 1) / t.bn
        let rowBlocks = (m + t.bm - 1) / t.bm
        // one block per BM×BN tile of C (and slice of k): x over columns, y over rows (and slices)
        func product(into result: Buffer?, offset: Int32, code: KernelEpilogue, auxiliary: Buffer?,
                     auxiliaryOffset: Int32) -> KernelLaunchPlan<Buffer> {
            KernelLaunchPlan(kernel, blocksX: columnBlocks, blocksY: rowBlocks * geometry.splits, dimensions: 2,
                             threads: t.gemmThreads, [
                .int(m32), .int(n32), .int(k32),
                .buffer(a.buffer), .int(aOffset), .buffer(b.buffer), .int(bOffset), .buffer(result), .int(offset),
                .int(code.rawValue), .buffer(auxiliary), .int(auxiliaryOffset), .int(Int32(geometry.kSplit)),
            ])
        }
        guard geometry.splits > 1 else {
            let plan = product(into: c.buffer, offset: cOffset, code: code, auxiliary: auxiliary?.buffer,
                               auxiliaryOffset: auxiliaryOffset)
            return ProductPlan(workspaceCount: 0) { _ in [plan] }
        }
        let splits = geometry.splits
        try Self.requireIndexable(rowBlocks * splits, "product grid rows")
        let sumBlocks = elementBlocks(m * n)
        let sumThreads = elementThreads
        return ProductPlan(workspaceCount: splits * m * n) { workspace in [
            product(into: workspace, offset: 0, code: .none, auxiliary: nil, auxiliaryOffset: 0),
            KernelLaunchPlan(.gemmSplitKSum, blocksX: sumBlocks, threads: sumThreads, [
                .int(m32), .int(n32), .int(Int32(splits)), .buffer(workspace), .int(0),
                .buffer(c.buffer), .int(cOffset), .int(code.rawValue), .buffer(auxiliary?.buffer),
                .int(auxiliaryOffset),
            ]),
        ] }
    }

    public func columnSums<Buffer: KernelPlanBuffer>(
        _ matrix: BufferSlice<Buffer>, rows: Int, columns: Int, into sums: BufferSlice<Buffer>
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        let (rows32, columns32) = (try Self.int32(rows, "rows"), try Self.int32(columns, "columns"))
        guard columns > 0 else { return nil }
        try Self.requireIndexable(try Self.product(rows, columns, "rows·columns"), "rows·columns")
        let matrixOffset = try Self.checkRange(matrix, rows * columns, "column-sum matrix")
        let sumsOffset = try Self.checkRange(sums, columns, "column sums")
        // one block per COLSUM_COLUMNS columns
        let blocks = (columns + tiles.columnSumColumns - 1) / tiles.columnSumColumns
        return KernelLaunchPlan(.columnSums, blocksX: blocks, threads: tiles.reduceThreads, [
            .int(rows32), .int(columns32), .buffer(matrix.buffer), .int(matrixOffset),
            .buffer(sums.buffer), .int(sumsOffset),
        ])
    }

    /// Checks a loss gradient's arguments; the backend then provides the per-row loss buffer.
    /// `classWeights`: for cross-entropy one weight per class, each row's loss and gradient
    /// scaled by its class's; for binary cross-entropy each label's positive weight (pos_weight);
    /// not for MSE. `rowWeights` (any loss): one weight per row, each row's scaled by
    /// its own (and by its class's too, with both).
    public func lossGradient<Buffer: KernelPlanBuffer>(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<Buffer>, target: BufferSlice<Buffer>,
        rows: Int, columns: Int, gradient: BufferSlice<Buffer>, lossSum: BufferSlice<Buffer>,
        classWeights: BufferSlice<Buffer>? = nil, rowWeights: BufferSlice<Buffer>? = nil
    ) throws(KernelPlanError) -> LossGradientPlan<Buffer> {
        let (rows32, columns32) = (try Self.int32(rows, "rows"), try Self.int32(columns, "columns"))
        guard columns > 0 else { throw .invalidArgument("a loss over 0 columns") }
        try Self.requireIndexable(try Self.product(rows, columns, "rows·columns"), "rows·columns")
        let outputOffset = try Self.checkRange(output, rows * columns, "loss output")
        let targetOffset = try Self.checkRange(target, rows * targets.width(outputs: columns), "loss targets")
        let gradientOffset = try Self.checkRange(gradient, rows * columns, "loss gradient")
        let sumOffset = try Self.checkRange(lossSum, 1, "loss sum")
        if classWeights != nil, loss == .meanSquaredError { throw .invalidArgument("class weights for mse") }
        // unweighted: the flag off and the targets' buffer in the weights' place (never read)
        let weightsOffset = try classWeights.map { weights throws(KernelPlanError) in try Self.checkRange(weights, columns, "class weights") } ?? 0
        let rowWeightsOffset = try rowWeights.map { weights throws(KernelPlanError) in try Self.checkRange(weights, rows, "row weights") } ?? 0
        let weightArguments: [KernelLaunchPlan<Buffer>.Argument] = [
            .int(classWeights == nil ? 0 : 1), .buffer(classWeights?.buffer ?? target.buffer), .int(weightsOffset),
            .int(rowWeights == nil ? 0 : 1), .buffer(rowWeights?.buffer ?? target.buffer), .int(rowWeightsOffset),
        ]
        // the losses the portable kernels implement (a loss added to MLPKit needs its kernel first)
        let kernel: KernelName
        if loss == .meanSquaredError {
            kernel = .lossMSE
        } else if loss == .crossEntropy {
            kernel = .lossCrossEntropy
        } else if loss == .binaryCrossEntropy {
            kernel = .lossBinaryCrossEntropy
        } else {
            throw .noLossKernel(loss)
        }
        let kind: KernelTargetKind = targets == .classIndices ? .classIndices : .dense
        let leading: [KernelLaunchPlan<Buffer>.Argument] = [
            .int(rows32), .int(columns32), .int(kind.rawValue),
            .buffer(output.buffer), .int(outputOffset), .buffer(target.buffer), .int(targetOffset),
        ]
        let trailing: [KernelLaunchPlan<Buffer>.Argument] = [.buffer(gradient.buffer), .int(gradientOffset)]
        // every loss kernel takes the class and row weights between the targets and the gradient
        var arguments = leading + weightArguments + trailing
        // wide rows: a block per row (coalesced, the row's sum as a tree) instead of a thread
        guard columns >= Self.wideLossColumns else {
            return LossGradientPlan(
                rows: rows, rows32: rows32, lossKernel: kernel, lossArguments: arguments,
                lossBlocks: elementBlocks(rows), lossThreads: elementThreads, reduceThreads: tiles.reduceThreads,
                lossSum: lossSum.buffer, sumOffset: sumOffset)
        }
        let code: KernelLossKind = switch kernel {
        case .lossMSE: .meanSquaredError
        case .lossCrossEntropy: .crossEntropy
        default: .binaryCrossEntropy
        }
        arguments.insert(.int(code.rawValue), at: 0)
        return LossGradientPlan(
            rows: rows, rows32: rows32, lossKernel: .lossWide, lossArguments: arguments,
            lossBlocks: max(1, min(rows, maxElementBlocks)), lossThreads: tiles.reduceThreads,
            reduceThreads: tiles.reduceThreads, lossSum: lossSum.buffer, sumOffset: sumOffset)
    }

    public func gatherRows<Buffer: KernelPlanBuffer>(
        _ source: BufferSlice<Buffer>, width: Int, indices: BufferSlice<Buffer>, count: Int,
        into destination: BufferSlice<Buffer>
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        let (width32, count32) = (try Self.int32(width, "width"), try Self.int32(count, "count"))
        guard width > 0, count > 0 else { return nil }
        try Self.requireIndexable(try Self.product(count, width, "count·width"), "count·width")
        let sourceOffset = try Self.checkRange(source, 0, "gather source")
        let sourceRows = try Self.int32((source.buffer.count - source.offset) / width, "source rows")
        let indicesOffset = try Self.checkRange(indices, count, "gather indices")
        let destinationOffset = try Self.checkRange(destination, count * width, "gather destination")
        return KernelLaunchPlan(.gatherRows, blocksX: elementBlocks(count * width), threads: elementThreads, [
            .int(count32), .int(width32), .int(sourceRows),
            .buffer(source.buffer), .int(sourceOffset), .buffer(indices.buffer), .int(indicesOffset),
            .buffer(destination.buffer), .int(destinationOffset),
        ])
    }

    /// Adam's update with t read from `stepCounter`; the backend brings the counter to `step`
    /// (see `advanceStep`) between planning and launching.
    public func adamUpdate<Buffer: KernelPlanBuffer>(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int, stepCounter: Buffer
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        let count32 = try Self.int32(count, "count")
        guard step >= 1 else { throw .invalidArgument("Adam step \(step) (t starts at 1)") }
        guard count > 0 else { return nil }
        let offsets = (
            try Self.checkRange(parameters, count, "Adam parameters"),
            try Self.checkRange(gradients, count, "Adam gradients"),
            try Self.checkRange(firstMoment, count, "Adam first moment"),
            try Self.checkRange(secondMoment, count, "Adam second moment"))
        let h = hyperparameters
        return KernelLaunchPlan(.adam, blocksX: elementBlocks(count), threads: elementThreads, [
            .int(count32),
            .buffer(parameters.buffer), .int(offsets.0), .buffer(gradients.buffer), .int(offsets.1),
            .buffer(firstMoment.buffer), .int(offsets.2), .buffer(secondMoment.buffer), .int(offsets.3),
            .float(h.learningRate), .float(h.beta1), .float(h.beta2), .float(h.epsilon),
            .buffer(stepCounter),
        ])
    }

    /// `advance_step`: one thread adds 1 to the device's step counter.
    public func advanceStep<Buffer>(stepCounter: Buffer) -> KernelLaunchPlan<Buffer> {
        KernelLaunchPlan(.advanceStep, blocksX: 1, threads: 1, [.buffer(stepCounter)])
    }

    /// Throws unless the kernels' 32-bit element indices reach `elements`.
    public static func requireIndexable(_ elements: Int, _ what: String) throws(KernelPlanError) {
        _ = try int32(elements, what)
    }

    /// a·b (sizes already checked), or an error where it overflows `Int`, so that the product is
    /// never computed unchecked ahead of the 32-bit checks.
    public static func product(_ a: Int, _ b: Int, _ what: String) throws(KernelPlanError) -> Int {
        let (result, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw .invalidArgument("\(what) = \(a)·\(b) overflows") }
        return result
    }

    /// `value` as an Int32 kernel argument, or why not.
    public static func int32(_ value: Int, _ what: String) throws(KernelPlanError) -> Int32 {
        guard value >= 0, let result = Int32(exactly: value) else {
            throw .invalidArgument("\(what) = \(value) is outside 0...\(Int32.max)")
        }
        return result
    }

    /// Throws unless `count` elements from `slice` lie inside its buffer; returns the offset as Int32.
    @discardableResult
    public static func checkRange<Buffer: KernelPlanBuffer>(
        _ slice: BufferSlice<Buffer>, _ count: Int, _ what: String
    ) throws(KernelPlanError) -> Int32 {
        guard slice.holds(count, of: slice.buffer.count),
              let offset = Int32(exactly: slice.offset) else {
            throw .invalidArgument("\(what): \(count) elements at offset \(slice.offset) of a \(slice.buffer.count)-element buffer")
        }
        return offset
    }
}
