/// Host arrays in and out of a backend, with NaN around what is written, so that a kernel that
/// reads outside its slice, or leaves an output element unwritten, shows in the results. Used
/// by `BackendCheck` and the backends' tests.
extension Backend {
    /// A new buffer holding `values` at `offset`, with NaN in the `offset` elements before them
    /// and the `trailing` elements after.
    public func buffer(_ values: [Float], offset: Int = 0, trailing: Int = 3) throws -> BufferSlice<Buffer> {
        let total = try hostArrayTotal(offset, values.count, trailing, "buffer")
        let buffer = try makeBuffer(count: total)
        try poison(buffer, count: total)
        let slice = BufferSlice(buffer, offset: offset)
        try values.withUnsafeBufferPointer { try upload($0, to: slice) }
        return slice
    }

    /// `count` NaNs at `offset`: an operation writing there must overwrite every one.
    public func poisoned(_ count: Int, offset: Int = 0) throws -> BufferSlice<Buffer> {
        guard count >= 0 else {
            throw BackendError.invalidArgument(operation: "poisoned", reason: "negative count \(count)")
        }
        // the buffer first, so that a count too large for it throws before a host array of it is made
        let total = try hostArrayTotal(offset, count, 3, "poisoned")
        let buffer = try makeBuffer(count: total)
        try poison(buffer, count: total)
        return BufferSlice(buffer, offset: offset)
    }

    /// `count` elements read back from `slice`.
    public func read(_ slice: BufferSlice<Buffer>, _ count: Int) throws -> [Float] {
        guard count >= 0 else {
            throw BackendError.invalidArgument(operation: "read", reason: "negative count \(count)")
        }
        guard count <= Self.maximumBufferCount else {
            throw BackendError.invalidArgument(operation: "read", reason: "\(count) elements do not fit in host memory")
        }
        // a million elements at a time, so that a count past the buffer's end fails at the first
        // piece it does not hold instead of asking the host for the whole count first
        let piece = 1 << 20
        var values = [Float]()
        values.reserveCapacity(min(count, piece))
        var done = 0
        repeat {
            let length = min(piece, count - done)
            values.append(contentsOf: repeatElement(0, count: length))
            try values.withUnsafeMutableBufferPointer { all in
                try download(slice.advanced(by: done), count: length, into: UnsafeMutableBufferPointer(rebasing: all[done...]))
            }
            done += length
        } while done < count
        return values
    }

    /// C = op(A)·op(B) with `epilogue` (its operand `auxiliary`: the bias, or the m×n activation of
    /// a ReLU mask) from host arrays: the operands at `offsets` in NaN-padded buffers, C poisoned
    /// and read back.
    public func product(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float],
                        epilogue: ProductEpilogueKind, auxiliary: [Float], offsets: ProductOffsets = .none) throws -> [Float] {
        let aSlice = try buffer(a, offset: offsets.a)
        let bSlice = try buffer(b, offset: offsets.b)
        let cSlice = try poisoned(m * n, offset: offsets.c)
        let auxiliarySlice = try buffer(auxiliary, offset: offsets.auxiliary)
        try matrixProduct(layout, m: m, n: n, k: k, a: aSlice, b: bSlice, c: cSlice, epilogue: epilogue.with(auxiliarySlice))
        return try read(cSlice, m * n)
    }

    /// A product with a hidden activation's epilogue from host arrays, as `product`: C =
    /// f(op(A)·op(B) + bias) with `auxiliary` the bias, keeping Z = op(A)·op(B) + bias at
    /// `preActivationOffset` when `keepsPreActivation`; or, when `derivative`, C =
    /// (op(A)·op(B)) ⊙ f′ of the m×n `auxiliary`. Returns C, then Z when kept.
    public func activationProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float], function: ActivationFunction,
        derivative: Bool, auxiliary: [Float], keepsPreActivation: Bool = false, offsets: ProductOffsets = .none,
        preActivationOffset: Int = 0
    ) throws -> [Float] {
        let aSlice = try buffer(a, offset: offsets.a)
        let bSlice = try buffer(b, offset: offsets.b)
        let cSlice = try poisoned(m * n, offset: offsets.c)
        let auxiliarySlice = try buffer(auxiliary, offset: offsets.auxiliary)
        if derivative {
            try matrixProduct(layout, m: m, n: n, k: k, a: aSlice, b: bSlice, c: cSlice,
                              activation: .activationDerivative(auxiliarySlice, function))
            return try read(cSlice, m * n)
        }
        let kept = keepsPreActivation ? try poisoned(m * n, offset: preActivationOffset) : nil
        try matrixProduct(layout, m: m, n: n, k: k, a: aSlice, b: bSlice, c: cSlice,
                          activation: .biasActivation(auxiliarySlice, function, preActivation: kept))
        return try read(cSlice, m * n) + (try kept.map { try read($0, m * n) } ?? [])
    }

    /// The column sums of a rows×columns host matrix, the matrix and the sums each at `offset`.
    public func columnSums(_ matrix: [Float], rows: Int, columns: Int, offset: Int = 0) throws -> [Float] {
        let sums = try poisoned(columns, offset: offset)
        try columnSums(try buffer(matrix, offset: offset), rows: rows, columns: columns, into: sums)
        return try read(sums, columns)
    }

    /// The loss gradient and loss sum of host arrays, every operand at `offset` (with
    /// `classWeights`, cross-entropy's rows weighted by class; with `rowWeights`, every loss's rows
    /// weighted one by one). With `inPlace`, the gradient is written over the output's buffer.
    public func lossGradient(_ loss: Loss, _ encoding: TargetEncoding, output: [Float], targets: [Float], rows: Int,
                             columns: Int, offset: Int = 0, classWeights: [Float]? = nil, rowWeights: [Float]? = nil,
                             inPlace: Bool = false) throws
        -> (gradient: [Float], sum: Float)
    {
        let outputSlice = try buffer(output, offset: offset)
        let gradient = inPlace ? outputSlice : try poisoned(rows * columns, offset: offset)
        let sum = try poisoned(1, offset: offset)
        try lossGradient(loss, targets: encoding, output: outputSlice,
                         target: try buffer(targets, offset: offset), rows: rows, columns: columns,
                         gradient: gradient, lossSum: sum, classWeights: try classWeights.map { try buffer($0, offset: offset) },
                         rowWeights: try rowWeights.map { try buffer($0, offset: offset) })
        return (try read(gradient, rows * columns), try read(sum, 1)[0])
    }

    /// The rows `indices` of a host matrix `width` wide, every operand at `offset` (the source
    /// with nothing after it, so that its last row ends the buffer).
    public func gatherRows(_ source: [Float], width: Int, indices: [Float], offset: Int = 0) throws -> [Float] {
        let destination = try poisoned(indices.count * width, offset: offset)
        try gatherRows(try buffer(source, offset: offset, trailing: 0), width: width,
                       indices: try buffer(indices, offset: offset), count: indices.count, into: destination)
        return try read(destination, indices.count * width)
    }

    /// offset + count + trailing elements, or an error for a negative part or a total that overflows.
    private func hostArrayTotal(_ offset: Int, _ count: Int, _ trailing: Int, _ operation: String) throws -> Int {
        guard offset >= 0, trailing >= 0 else {
            throw BackendError.invalidArgument(operation: operation, reason: "negative offset \(offset) or trailing \(trailing)")
        }
        let (head, overflow1) = offset.addingReportingOverflow(count)
        let (total, overflow2) = head.addingReportingOverflow(trailing)
        guard !overflow1, !overflow2 else {
            throw BackendError.invalidArgument(
                operation: operation, reason: "offset \(offset) + \(count) elements + \(trailing) trailing overflows")
        }
        return total
    }

    /// Fills `buffer`'s `count` elements with NaN.
    private func poison(_ buffer: Buffer, count: Int) throws {
        let poison = [Float](repeating: .nan, count: count)
        try poison.withUnsafeBufferPointer { try upload($0, to: BufferSlice(buffer)) }
    }
}

/// `ProductEpilogue`'s cases without their operand, for host-array products and their checks.
public enum ProductEpilogueKind: String, CaseIterable, Sendable {
    case none, bias, biasReLU, reluMask

    /// The epilogue with `operand` (unused by `.none`).
    public func with<Buffer>(_ operand: BufferSlice<Buffer>) -> ProductEpilogue<Buffer> {
        switch self {
        case .none: .none
        case .bias: .bias(operand)
        case .biasReLU: .biasReLU(operand)
        case .reluMask: .reluMask(operand)
        }
    }
}

/// Where a host-array product's operands start inside their buffers (elements).
public struct ProductOffsets: Sendable {
    public var a, b, c, auxiliary: Int

    public init(a: Int, b: Int, c: Int, auxiliary: Int) {
        (self.a, self.b, self.c, self.auxiliary) = (a, b, c, auxiliary)
    }

    /// Every operand at the start of its buffer.
    public static let none = ProductOffsets(a: 0, b: 0, c: 0, auxiliary: 0)
    /// Odd offsets, none a multiple of 4 (the kernels' element loads and stores).
    public static let odd = ProductOffsets(a: 7, b: 3, c: 5, auxiliary: 2)

    /// A, B, C and the epilogue's operand at `step`, 2·`step`, 3·`step` and `step`.
    public static func multiples(of step: Int) -> ProductOffsets {
        ProductOffsets(a: step, b: 2 * step, c: 3 * step, auxiliary: step)
    }
}
