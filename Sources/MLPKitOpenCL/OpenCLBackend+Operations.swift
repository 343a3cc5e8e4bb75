import MLPKit
import MLPKitKernels

extension OpenCLBackend {
    /// Work-items per group for the kernels that take any group size.
    private static let elementGroup = 64
    /// The most work-items an element-wise launch uses; the kernels loop past it.
    private static let maxElementItems = 1 << 20

    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<OpenCLBuffer>, b: BufferSlice<OpenCLBuffer>, c: BufferSlice<OpenCLBuffer>,
        epilogue: ProductEpilogue<OpenCLBuffer>
    ) throws(OpenCLError) {
        let (m32, n32, k32) = (try int32(m, "m"), try int32(n, "n"), try int32(k, "k"))
        guard m > 0, n > 0 else { return }
        try requireIndexable(m * k, "m·k")
        try requireIndexable(n * k, "n·k")
        try requireIndexable(m * n, "m·n")
        let aOffset = try checkRange(a, m * k, "product operand A")
        let bOffset = try checkRange(b, n * k, "product operand B")
        let cOffset = try checkRange(c, m * n, "product result C")

        let code: KernelEpilogue
        let auxiliary: BufferSlice<OpenCLBuffer>?
        switch epilogue {
        case .none: (code, auxiliary) = (.none, nil)
        case let .bias(bias): (code, auxiliary) = (.bias, bias)
        case let .biasReLU(bias): (code, auxiliary) = (.biasReLU, bias)
        case let .reluMask(activation): (code, auxiliary) = (.reluMask, activation)
        }
        var auxiliaryOffset: Int32 = 0
        if let auxiliary {
            auxiliaryOffset = try checkRange(auxiliary, code == .reluMask ? m * n : n, "product epilogue operand")
        }

        let kernel: KernelName = switch layout {
        case .nt: .gemmNT
        case .tn: .gemmTN
        case .nn: .gemmNN
        }
        let threads = tiles.gemmThreads
        let blocksX = (n + tiles.bn - 1) / tiles.bn
        let blocksY = (m + tiles.bm - 1) / tiles.bm
        try program.launch(kernel, queue: queue, global: [blocksX * threads, blocksY], local: [threads, 1], [
            .int(m32), .int(n32), .int(k32),
            .buffer(a.buffer), .int(aOffset), .buffer(b.buffer), .int(bOffset), .buffer(c.buffer), .int(cOffset),
            .int(code.rawValue), .buffer(auxiliary?.buffer), .int(auxiliaryOffset),
        ])
    }

    public func columnSums(_ matrix: BufferSlice<OpenCLBuffer>, rows: Int, columns: Int,
                           into sums: BufferSlice<OpenCLBuffer>) throws(OpenCLError) {
        let (rows32, columns32) = (try int32(rows, "rows"), try int32(columns, "columns"))
        guard columns > 0 else { return }
        try requireIndexable(rows * columns, "rows·columns")
        let matrixOffset = try checkRange(matrix, rows * columns, "column-sum matrix")
        let sumsOffset = try checkRange(sums, columns, "column sums")
        let blocks = (columns + tiles.columnSumColumns - 1) / tiles.columnSumColumns
        try program.launch(.columnSums, queue: queue, global: [blocks * tiles.reduceThreads], local: [tiles.reduceThreads], [
            .int(rows32), .int(columns32), .buffer(matrix.buffer), .int(matrixOffset),
            .buffer(sums.buffer), .int(sumsOffset),
        ])
    }

    public func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<OpenCLBuffer>, target: BufferSlice<OpenCLBuffer>,
        rows: Int, columns: Int, gradient: BufferSlice<OpenCLBuffer>, lossSum: BufferSlice<OpenCLBuffer>
    ) throws(OpenCLError) {
        let (rows32, columns32) = (try int32(rows, "rows"), try int32(columns, "columns"))
        guard columns > 0 else { throw .invalidArgument("a loss over 0 columns") }
        try requireIndexable(rows * columns, "rows·columns")
        let outputOffset = try checkRange(output, rows * columns, "loss output")
        let targetOffset = try checkRange(target, rows * targets.width(outputs: columns), "loss targets")
        let gradientOffset = try checkRange(gradient, rows * columns, "loss gradient")
        let sumOffset = try checkRange(lossSum, 1, "loss sum")
        let partial = try rowLossBuffer(rows: rows)

        if rows > 0 {
            let kernel: KernelName = loss == .meanSquaredError ? .lossMSE : .lossCrossEntropy
            let kind: KernelTargetKind = targets == .classIndices ? .classIndices : .dense
            try program.launch(kernel, queue: queue, global: [elementItems(rows)], local: [Self.elementGroup], [
                .int(rows32), .int(columns32), .int(kind.rawValue),
                .buffer(output.buffer), .int(outputOffset), .buffer(target.buffer), .int(targetOffset),
                .buffer(gradient.buffer), .int(gradientOffset), .buffer(partial),
            ])
        }
        try program.launch(.sumReduce, queue: queue, global: [tiles.reduceThreads], local: [tiles.reduceThreads], [
            .int(rows32), .buffer(partial), .buffer(lossSum.buffer), .int(sumOffset),
        ])
    }

    public func gatherRows(
        _ source: BufferSlice<OpenCLBuffer>, width: Int, indices: BufferSlice<OpenCLBuffer>, count: Int,
        into destination: BufferSlice<OpenCLBuffer>
    ) throws(OpenCLError) {
        let (width32, count32) = (try int32(width, "width"), try int32(count, "count"))
        guard width > 0, count > 0 else { return }
        try requireIndexable(count * width, "count·width")
        let sourceOffset = try checkRange(source, 0, "gather source")
        let sourceRows = try int32((source.buffer.count - source.offset) / width, "source rows")
        let indicesOffset = try checkRange(indices, count, "gather indices")
        let destinationOffset = try checkRange(destination, count * width, "gather destination")
        try program.launch(.gatherRows, queue: queue, global: [elementItems(count * width)], local: [Self.elementGroup], [
            .int(count32), .int(width32), .int(sourceRows),
            .buffer(source.buffer), .int(sourceOffset), .buffer(indices.buffer), .int(indicesOffset),
            .buffer(destination.buffer), .int(destinationOffset),
        ])
    }

    public func adamUpdate(
        parameters: BufferSlice<OpenCLBuffer>, gradients: BufferSlice<OpenCLBuffer>,
        firstMoment: BufferSlice<OpenCLBuffer>, secondMoment: BufferSlice<OpenCLBuffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws(OpenCLError) {
        let count32 = try int32(count, "count")
        guard step >= 1 else { throw .invalidArgument("Adam step \(step) (t starts at 1)") }
        guard count > 0 else { return }
        let offsets = (
            try checkRange(parameters, count, "Adam parameters"), try checkRange(gradients, count, "Adam gradients"),
            try checkRange(firstMoment, count, "Adam first moment"), try checkRange(secondMoment, count, "Adam second moment"))
        try setDeviceStep(step)
        let h = hyperparameters
        try program.launch(.adam, queue: queue, global: [elementItems(count)], local: [Self.elementGroup], [
            .int(count32),
            .buffer(parameters.buffer), .int(offsets.0), .buffer(gradients.buffer), .int(offsets.1),
            .buffer(firstMoment.buffer), .int(offsets.2), .buffer(secondMoment.buffer), .int(offsets.3),
            .float(h.learningRate), .float(h.beta1), .float(h.beta2), .float(h.epsilon),
            .buffer(stepCounter),
        ])
    }

    /// Makes the device's step counter hold `step`: one `advance_step` launch when it holds the
    /// previous step (no host round trip), else a write.
    func setDeviceStep(_ step: Int) throws(OpenCLError) {
        if deviceStep == step { return }
        if let current = deviceStep, current + 1 == step {
            try program.launch(.advanceStep, queue: queue, global: [1], local: [1], [.buffer(stepCounter)])
        } else {
            var value = try int32(step, "Adam step")
            try cl.check(cl.enqueueWriteBuffer(queue, stepCounter.memory, CL.trueValue, 0, MemoryLayout<Int32>.size,
                                               &value, 0, nil, nil),
                         "clEnqueueWriteBuffer")
        }
        deviceStep = step
    }

    /// The per-row loss buffer, at least `rows` long.
    private func rowLossBuffer(rows: Int) throws(OpenCLError) -> OpenCLBuffer {
        if let buffer = rowLosses, buffer.count >= rows { return buffer }
        let buffer = try makeBuffer(count: max(rows, 256))
        rowLosses = buffer
        return buffer
    }

    /// A global size for `items` element-wise work-items: a multiple of the group, capped.
    private func elementItems(_ items: Int) -> Int {
        let group = Self.elementGroup
        return min((items + group - 1) / group * group, Self.maxElementItems)
    }

    /// Throws unless the kernels' 32-bit element indices reach `elements`.
    private func requireIndexable(_ elements: Int, _ what: String) throws(OpenCLError) {
        _ = try int32(elements, what)
    }

    private func int32(_ value: Int, _ what: String) throws(OpenCLError) -> Int32 {
        guard value >= 0, let result = Int32(exactly: value) else {
            throw .invalidArgument("\(what) = \(value) is outside 0...\(Int32.max)")
        }
        return result
    }
}
