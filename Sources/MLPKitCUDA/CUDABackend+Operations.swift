import MLPKit
import MLPKitKernels

/// The `Backend` operations: the portable kernels launched with the geometry of
/// `MLPKitKernels/NOTES.md`, asynchronously, on the backend's stream.
extension CUDABackend {
    /// Blocks per multiprocessor for the grid-stride element-wise kernels (8 × 256 threads fill an SM).
    private static let elementBlocksPerMultiprocessor = 8

    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<CUDABuffer>, b: BufferSlice<CUDABuffer>, c: BufferSlice<CUDABuffer>,
        epilogue: ProductEpilogue<CUDABuffer>
    ) throws(CUDAError) {
        let (m32, n32, k32) = (try int32(m, "m"), try int32(n, "n"), try int32(k, "k"))
        guard m > 0, n > 0 else { return }
        try requireIndexable(m * k, "m·k")
        try requireIndexable(n * k, "n·k")
        try requireIndexable(m * n, "m·n")
        let aOffset = try checkRange(a, m * k, "product operand A")
        let bOffset = try checkRange(b, n * k, "product operand B")
        let cOffset = try checkRange(c, m * n, "product result C")

        let code: KernelEpilogue
        let auxiliary: BufferSlice<CUDABuffer>?
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
        // one block per BM×BN tile of C: x over columns, y over rows
        let grid = Dim3(x: UInt32((n + tiles.bn - 1) / tiles.bn), y: UInt32((m + tiles.bm - 1) / tiles.bm))
        try launch(kernel, grid: grid, block: Dim3(x: UInt32(tiles.gemmThreads)), [
            .int(m32), .int(n32), .int(k32),
            .buffer(a.buffer), .int(aOffset), .buffer(b.buffer), .int(bOffset), .buffer(c.buffer), .int(cOffset),
            .int(code.rawValue), .buffer(auxiliary?.buffer), .int(auxiliaryOffset),
        ])
    }

    public func columnSums(_ matrix: BufferSlice<CUDABuffer>, rows: Int, columns: Int,
                           into sums: BufferSlice<CUDABuffer>) throws(CUDAError) {
        let (rows32, columns32) = (try int32(rows, "rows"), try int32(columns, "columns"))
        guard columns > 0 else { return }
        try requireIndexable(rows * columns, "rows·columns")
        let matrixOffset = try checkRange(matrix, rows * columns, "column-sum matrix")
        let sumsOffset = try checkRange(sums, columns, "column sums")
        // one block per COLSUM_COLUMNS columns
        let blocks = (columns + tiles.columnSumColumns - 1) / tiles.columnSumColumns
        try launch(.columnSums, grid: Dim3(x: UInt32(blocks)), block: Dim3(x: UInt32(tiles.reduceThreads)), [
            .int(rows32), .int(columns32), .buffer(matrix.buffer), .int(matrixOffset),
            .buffer(sums.buffer), .int(sumsOffset),
        ])
    }

    public func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<CUDABuffer>, target: BufferSlice<CUDABuffer>,
        rows: Int, columns: Int, gradient: BufferSlice<CUDABuffer>, lossSum: BufferSlice<CUDABuffer>
    ) throws(CUDAError) {
        let (rows32, columns32) = (try int32(rows, "rows"), try int32(columns, "columns"))
        guard columns > 0 else { throw .invalidArgument("a loss over 0 columns") }
        try requireIndexable(rows * columns, "rows·columns")
        let outputOffset = try checkRange(output, rows * columns, "loss output")
        let targetOffset = try checkRange(target, rows * targets.width(outputs: columns), "loss targets")
        let gradientOffset = try checkRange(gradient, rows * columns, "loss gradient")
        let sumOffset = try checkRange(lossSum, 1, "loss sum")
        // the losses the portable kernels implement (a loss added to MLPKit needs its kernel first)
        let kernel: KernelName
        if loss == .meanSquaredError {
            kernel = .lossMSE
        } else if loss == .crossEntropy {
            kernel = .lossCrossEntropy
        } else {
            throw .invalidArgument("the CUDA backend has no kernel for the \(loss.rawValue) loss yet")
        }
        let partial = try rowLossBuffer(rows: rows)

        if rows > 0 {
            // one thread per row, grid-stride
            let kind: KernelTargetKind = targets == .classIndices ? .classIndices : .dense
            try launch(kernel, grid: elementGrid(rows), block: elementBlock, [
                .int(rows32), .int(columns32), .int(kind.rawValue),
                .buffer(output.buffer), .int(outputOffset), .buffer(target.buffer), .int(targetOffset),
                .buffer(gradient.buffer), .int(gradientOffset), .buffer(partial),
            ])
        }
        // the rows' losses totalled in a fixed order by exactly one block
        try launch(.sumReduce, grid: Dim3(x: 1), block: Dim3(x: UInt32(tiles.reduceThreads)), [
            .int(rows32), .buffer(partial), .buffer(lossSum.buffer), .int(sumOffset),
        ])
    }

    public func gatherRows(
        _ source: BufferSlice<CUDABuffer>, width: Int, indices: BufferSlice<CUDABuffer>, count: Int,
        into destination: BufferSlice<CUDABuffer>
    ) throws(CUDAError) {
        let (width32, count32) = (try int32(width, "width"), try int32(count, "count"))
        guard width > 0, count > 0 else { return }
        try requireIndexable(count * width, "count·width")
        let sourceOffset = try checkRange(source, 0, "gather source")
        let sourceRows = try int32((source.buffer.count - source.offset) / width, "source rows")
        let indicesOffset = try checkRange(indices, count, "gather indices")
        let destinationOffset = try checkRange(destination, count * width, "gather destination")
        try launch(.gatherRows, grid: elementGrid(count * width), block: elementBlock, [
            .int(count32), .int(width32), .int(sourceRows),
            .buffer(source.buffer), .int(sourceOffset), .buffer(indices.buffer), .int(indicesOffset),
            .buffer(destination.buffer), .int(destinationOffset),
        ])
    }

    public func adamUpdate(
        parameters: BufferSlice<CUDABuffer>, gradients: BufferSlice<CUDABuffer>,
        firstMoment: BufferSlice<CUDABuffer>, secondMoment: BufferSlice<CUDABuffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws(CUDAError) {
        let count32 = try int32(count, "count")
        guard step >= 1 else { throw .invalidArgument("Adam step \(step) (t starts at 1)") }
        guard count > 0 else { return }
        let offsets = (
            try checkRange(parameters, count, "Adam parameters"), try checkRange(gradients, count, "Adam gradients"),
            try checkRange(firstMoment, count, "Adam first moment"), try checkRange(secondMoment, count, "Adam second moment"))
        try setDeviceStep(step)
        let h = hyperparameters
        try launch(.adam, grid: elementGrid(count), block: elementBlock, [
            .int(count32),
            .buffer(parameters.buffer), .int(offsets.0), .buffer(gradients.buffer), .int(offsets.1),
            .buffer(firstMoment.buffer), .int(offsets.2), .buffer(secondMoment.buffer), .int(offsets.3),
            .float(h.learningRate), .float(h.beta1), .float(h.beta2), .float(h.epsilon),
            .buffer(stepCounter),
        ])
    }

    /// Makes the device's step counter hold `step`: one `advance_step` launch when it holds the
    /// previous step (inside a graph too, so a replayed step needs no host write), else a
    /// stream-ordered 32-bit memset (queued, never waited for).
    func setDeviceStep(_ step: Int) throws(CUDAError) {
        if deviceStep == step { return }
        if let current = deviceStep, current + 1 == step {
            try launch(.advanceStep, grid: Dim3(x: 1), block: Dim3(x: 1), [.buffer(stepCounter)])
        } else {
            let value = try int32(step, "Adam step")
            try context.makeCurrent()
            try cu.check(cu.memorySet32Async(stepCounter.address, UInt32(bitPattern: value), 1, stream),
                         "cuMemsetD32Async (Adam's step)")
        }
        deviceStep = step
    }

    /// Adam's t as the device's counter holds it (waits for queued work).
    public func deviceStepCounter() throws(CUDAError) -> Int {
        var value: Float = 0
        try withUnsafeMutablePointer(to: &value) { (pointer) throws(CUDAError) in
            try download(BufferSlice(stepCounter), count: 1, into: UnsafeMutableBufferPointer(start: pointer, count: 1))
        }
        return Int(Int32(bitPattern: value.bitPattern))
    }

    /// The per-row loss buffer, at least `rows` long.
    private func rowLossBuffer(rows: Int) throws(CUDAError) -> CUDABuffer {
        if let buffer = rowLosses, buffer.count >= rows { return buffer }
        let buffer = try makeBuffer(count: max(rows, 256))
        rowLosses = buffer
        return buffer
    }

    /// The block of the element-wise kernels (any size works; 256 or the kernels' limit).
    private var elementBlock: Dim3 { Dim3(x: UInt32(program.elementThreads)) }

    /// A grid for `items` grid-stride work-items: enough blocks to cover them, at most
    /// `elementBlocksPerMultiprocessor` per SM (the kernels loop past it).
    private func elementGrid(_ items: Int) -> Dim3 {
        let threads = program.elementThreads
        let cap = max(1, device.multiprocessors * Self.elementBlocksPerMultiprocessor)
        return Dim3(x: UInt32(max(1, min((items + threads - 1) / threads, cap))))
    }

    /// Throws unless the kernels' 32-bit element indices reach `elements`.
    private func requireIndexable(_ elements: Int, _ what: String) throws(CUDAError) {
        _ = try int32(elements, what)
    }

    private func int32(_ value: Int, _ what: String) throws(CUDAError) -> Int32 {
        guard value >= 0, let result = Int32(exactly: value) else {
            throw .invalidArgument("\(what) = \(value) is outside 0...\(Int32.max)")
        }
        return result
    }
}
