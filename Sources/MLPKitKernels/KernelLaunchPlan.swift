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
    let elementThreads: Int
    let reduceThreads: Int
    let lossSum: Buffer
    let sumOffset: Int32

    /// The launches in order, with `rowLosses` as the per-row scratch buffer.
    public func launches(rowLosses: Buffer) -> [KernelLaunchPlan<Buffer>] {
        var plans: [KernelLaunchPlan<Buffer>] = []
        if rows > 0 {
            // one thread per row, grid-stride
            plans.append(KernelLaunchPlan(lossKernel, blocksX: lossBlocks, threads: elementThreads,
                                          lossArguments + [.buffer(rowLosses)]))
        }
        // the rows' losses totalled in a fixed order by exactly one block
        plans.append(KernelLaunchPlan(.sumReduce, blocksX: 1, threads: reduceThreads, [
            .int(rows32), .buffer(rowLosses), .buffer(lossSum), .int(sumOffset),
        ]))
        return plans
    }
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

    public init(tiles: KernelTiles, elementThreads: Int, maxElementBlocks: Int) {
        self.tiles = tiles
        self.elementThreads = elementThreads
        self.maxElementBlocks = maxElementBlocks
    }

    /// Blocks for `items` grid-stride work-items: enough to cover them, at most `maxElementBlocks`.
    public func elementBlocks(_ items: Int) -> Int {
        max(1, min((items + elementThreads - 1) / elementThreads, maxElementBlocks))
    }

    public func matrixProduct<Buffer: KernelPlanBuffer>(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<Buffer>, b: BufferSlice<Buffer>, c: BufferSlice<Buffer>, epilogue: ProductEpilogue<Buffer>
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        let (m32, n32, k32) = (try Self.int32(m, "m"), try Self.int32(n, "n"), try Self.int32(k, "k"))
        guard m > 0, n > 0 else { return nil }
        try Self.requireIndexable(m * k, "m·k")
        try Self.requireIndexable(n * k, "n·k")
        try Self.requireIndexable(m * n, "m·n")
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

        let kernel: KernelName = switch layout {
        case .nt: .gemmNT
        case .tn: .gemmTN
        case .nn: .gemmNN
        }
        // one block per BM×BN tile of C: x over columns, y over rows
        return KernelLaunchPlan(kernel, blocksX: (n + tiles.bn - 1) / tiles.bn, blocksY: (m + tiles.bm - 1) / tiles.bm,
                                dimensions: 2, threads: tiles.gemmThreads, [
            .int(m32), .int(n32), .int(k32),
            .buffer(a.buffer), .int(aOffset), .buffer(b.buffer), .int(bOffset), .buffer(c.buffer), .int(cOffset),
            .int(code.rawValue), .buffer(auxiliary?.buffer), .int(auxiliaryOffset),
        ])
    }

    public func columnSums<Buffer: KernelPlanBuffer>(
        _ matrix: BufferSlice<Buffer>, rows: Int, columns: Int, into sums: BufferSlice<Buffer>
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        let (rows32, columns32) = (try Self.int32(rows, "rows"), try Self.int32(columns, "columns"))
        guard columns > 0 else { return nil }
        try Self.requireIndexable(rows * columns, "rows·columns")
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
    public func lossGradient<Buffer: KernelPlanBuffer>(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<Buffer>, target: BufferSlice<Buffer>,
        rows: Int, columns: Int, gradient: BufferSlice<Buffer>, lossSum: BufferSlice<Buffer>
    ) throws(KernelPlanError) -> LossGradientPlan<Buffer> {
        let (rows32, columns32) = (try Self.int32(rows, "rows"), try Self.int32(columns, "columns"))
        guard columns > 0 else { throw .invalidArgument("a loss over 0 columns") }
        try Self.requireIndexable(rows * columns, "rows·columns")
        let outputOffset = try Self.checkRange(output, rows * columns, "loss output")
        let targetOffset = try Self.checkRange(target, rows * targets.width(outputs: columns), "loss targets")
        let gradientOffset = try Self.checkRange(gradient, rows * columns, "loss gradient")
        let sumOffset = try Self.checkRange(lossSum, 1, "loss sum")
        // the losses the portable kernels implement (a loss added to MLPKit needs its kernel first)
        let kernel: KernelName
        if loss == .meanSquaredError {
            kernel = .lossMSE
        } else if loss == .crossEntropy {
            kernel = .lossCrossEntropy
        } else {
            throw .noLossKernel(loss)
        }
        let kind: KernelTargetKind = targets == .classIndices ? .classIndices : .dense
        return LossGradientPlan(
            rows: rows, rows32: rows32, lossKernel: kernel,
            lossArguments: [
                .int(rows32), .int(columns32), .int(kind.rawValue),
                .buffer(output.buffer), .int(outputOffset), .buffer(target.buffer), .int(targetOffset),
                .buffer(gradient.buffer), .int(gradientOffset),
            ],
            lossBlocks: elementBlocks(rows), elementThreads: elementThreads, reduceThreads: tiles.reduceThreads,
            lossSum: lossSum.buffer, sumOffset: sumOffset)
    }

    public func gatherRows<Buffer: KernelPlanBuffer>(
        _ source: BufferSlice<Buffer>, width: Int, indices: BufferSlice<Buffer>, count: Int,
        into destination: BufferSlice<Buffer>
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        let (width32, count32) = (try Self.int32(width, "width"), try Self.int32(count, "count"))
        guard width > 0, count > 0 else { return nil }
        try Self.requireIndexable(count * width, "count·width")
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
        guard slice.offset >= 0, count >= 0, slice.offset + count <= slice.buffer.count,
              let offset = Int32(exactly: slice.offset) else {
            throw .invalidArgument("\(what): \(count) elements at offset \(slice.offset) of a \(slice.buffer.count)-element buffer")
        }
        return offset
    }
}
