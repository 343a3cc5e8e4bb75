#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Float32 buffer in host memory.
public final class CPUBuffer {
    /// The first element.
    public let pointer: UnsafeMutablePointer<Float>
    /// The number of elements.
    public let count: Int

    /// What `calloc` returned (`pointer` is the first cache-line boundary in it).
    private let allocation: UnsafeMutableRawPointer

    /// Cache lines are 64 bytes.
    static let alignment = 64

    /// Zero-filled memory for `count` elements starting on a cache-line boundary, or nil when the
    /// allocation fails. calloc, so that large buffers take fresh zero pages instead of being
    /// written, with 60 bytes of slack; its own pointers are 16 bytes past a boundary (a page's
    /// start for the large ones), so that every 64-byte vector of a buffer straddled two cache
    /// lines, and two threads writing the two halves of a matrix's rows shared a line in every row.
    init?(count: Int) {
        guard count >= 0, count <= CPUBackend.maximumBufferCount else { return nil }
        // at most Int.max / 4 + 15 floats: no overflow
        let floats = max(count, 1) + (Self.alignment - 4) / MemoryLayout<Float>.stride
        guard let raw = calloc(floats, MemoryLayout<Float>.stride) else { return nil }
        self.count = count
        allocation = raw
        let offset = (Self.alignment - Int(bitPattern: raw) % Self.alignment) % Self.alignment
        pointer = (raw + offset).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit {
        free(allocation)
    }
}

/// The CPU backend: products through BLAS when one is installed (else the packed AVX2 product,
/// or `SwiftMatrixProduct` where the processor lacks AVX2), small ones through `SIMDKernels`'
/// AVX2 kernel where the processor has it, and every element-wise operation as one fused pass.
public final class CPUBackend: Backend {
    public typealias Buffer = CPUBuffer

    /// Which matrix product this backend uses.
    public enum ProductEngine: Equatable, Sendable {
        /// A BLAS library's `cblas_sgemm` (and the small-product kernel).
        case blas(String)
        /// No BLAS: `SIMDKernels`' packed AVX2 product on every core (and the small-product kernel).
        case packed
        /// `SwiftMatrixProduct` alone, on one thread: the reference the tests compare with.
        case swift
    }

    /// The BLAS library used, or nil for the built-in products.
    public let blas: BLASLibrary?
    /// Whether `runsConcurrently` may say yes (false: every product in turn, split over the
    /// threads; the same bits either way, which the tests check).
    public var concurrentTasks = true
    /// The product used.
    public let productEngine: ProductEngine
    /// Whether `firstWeightPanels` may keep a first layer's weight in panels (false, or
    /// `MLPKIT_PANELS=0`: always in rows; the same bits either way, which the tests check).
    public var keepsWeightsInPanels = getenv("MLPKIT_PANELS").map { String(cString: $0) != "0" } ?? true
    /// A weight in rows, or its gradient, for the panelled products' fallback (made at its first use).
    var panelScratch: CPUBuffer?

    /// - Parameter useBLAS: false forces the Swift product even when a BLAS library is found.
    ///   Otherwise the BLAS library when there is one, else the packed AVX2 product where the
    ///   processor has AVX2 (and `MLPKIT_SIMD` is not 0), else the Swift product.
    public init(useBLAS: Bool = true) {
        blas = useBLAS ? BLASLibrary.shared : nil
        if let blas {
            productEngine = .blas(blas.name)
        } else {
            productEngine = useBLAS && SIMDKernels.enabled ? .packed : .swift
        }
    }

    /// The packed AVX2 product (where the processor has AVX2) even when a BLAS library is found:
    /// for the tests.
    init(packedProduct: Void) {
        blas = nil
        productEngine = SIMDKernels.enabled ? .packed : .swift
    }

    public var summary: String {
        switch productEngine {
        case .blas(let name):
            // the most a product uses (a small one runs on one of them)
            let threads = blas.map { $0.threads == nil ? "" : ", " + Self.threadCount($0.maximumThreads) } ?? ""
            // OpenBLAS's kernels by name (SkylakeX, Haswell, Zen, …): which ones it chose is what sets its speed
            let kernels = blas?.coreName.map { " (\($0) kernels)" } ?? ""
            return "CPU (BLAS: \(name)\(kernels)\(threads))"
        case .packed:
            return "CPU (built-in AVX2 product, \(Self.threadCount(Self.packedThreads)); install OpenBLAS for speed)"
        case .swift:
            return "CPU (Swift matrix product; install OpenBLAS for speed)"
        }
    }

    /// The threads the packed product runs on: the calling thread and the helpers.
    public static var packedThreads: Int { ParallelChunks.threads }

    /// "1 thread", "2 threads": how `summary` and `mlp devices` say a thread count.
    public static func threadCount(_ count: Int) -> String {
        "\(count) thread\(count == 1 ? "" : "s")"
    }

    public func makeBuffer(count: Int) throws -> CPUBuffer {
        guard count >= 0 else {
            throw BackendError.invalidArgument(operation: "makeBuffer", reason: "negative count \(count)")
        }
        guard count <= Self.maximumBufferCount else {
            throw BackendError.invalidArgument(
                operation: "makeBuffer", reason: "\(count) elements is more than the \(Self.maximumBufferCount) a buffer can hold")
        }
        guard let buffer = CPUBuffer(count: count) else {
            throw BackendError.invalidArgument(
                operation: "makeBuffer",
                reason: "could not allocate \(count) elements (\(count * MemoryLayout<Float>.stride) bytes) of host memory")
        }
        return buffer
    }

    /// The pointer to `count` elements at `slice`, after checking they lie inside the buffer
    /// (without overflow for any offset and count).
    @inline(__always)
    func pointer(_ slice: BufferSlice<CPUBuffer>, count: Int, _ operation: @autoclosure () -> String) throws -> UnsafeMutablePointer<Float> {
        guard slice.holds(count, of: slice.buffer.count) else {
            let (end, overflow) = slice.offset.addingReportingOverflow(count)
            throw BackendError.outOfBounds(operation: operation(), needed: overflow ? (count < 0 ? Int.min : Int.max) : end,
                                           available: slice.buffer.count)
        }
        return slice.buffer.pointer + slice.offset
    }

    /// a·b for an operand's element count, or an error when it overflows (sizes already checked ≥ 0).
    @inline(__always)
    func elements(_ a: Int, _ b: Int, _ operation: @autoclosure () -> String) throws -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else {
            throw BackendError.invalidArgument(operation: operation(), reason: "\(a)×\(b) elements overflows")
        }
        return product
    }

    /// Throws unless `rows` and `columns` are both at least 0.
    @inline(__always)
    func requireSizes(_ rows: Int, _ columns: Int, _ operation: @autoclosure () -> String) throws {
        guard rows >= 0, columns >= 0 else {
            throw BackendError.invalidArgument(operation: operation(), reason: "negative size \(rows)×\(columns)")
        }
    }

    public func upload(_ values: UnsafeBufferPointer<Float>, to destination: BufferSlice<CPUBuffer>) throws {
        let target = try pointer(destination, count: values.count, "upload")
        if let base = values.baseAddress { target.update(from: base, count: values.count) }
    }

    public func download(_ source: BufferSlice<CPUBuffer>, count: Int, into values: UnsafeMutableBufferPointer<Float>) throws {
        let origin = try pointer(source, count: count, "download")
        guard values.count >= count, let base = values.baseAddress else {
            throw BackendError.outOfBounds(operation: "download", needed: count, available: values.count)
        }
        base.update(from: origin, count: count)
    }

    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<CPUBuffer>, b: BufferSlice<CPUBuffer>, c: BufferSlice<CPUBuffer>,
        epilogue: ProductEpilogue<CPUBuffer>
    ) throws {
        _ = try product(layout, m: m, n: n, k: k, a: a, b: b, c: c) { count, columns in
            try pointers(epilogue, count: count, columns: columns)
        }
    }

    /// C = op(A)·op(B) and the epilogue that `epilogue` returns (given C's element count and
    /// columns), every operand checked first (the sizes, A, B, C, then the epilogue's). True when
    /// the product applied the epilogue itself (the shallow kernel); else this applies it, except
    /// the tanh ones, which are left to the caller's activation pass.
    private func product(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<CPUBuffer>, b: BufferSlice<CPUBuffer>, c: BufferSlice<CPUBuffer>,
        epilogue: (Int, Int) throws -> EpiloguePointers
    ) throws -> Bool {
        guard m >= 0, n >= 0, k >= 0 else {
            throw BackendError.invalidArgument(operation: "matrixProduct", reason: "negative size \(m)×\(n)×\(k)")
        }
        // every size product checked before any operand's range
        let (mn, mk, kn) = (try elements(m, n, "matrixProduct C"), try elements(m, k, "matrixProduct A"),
                            try elements(k, n, "matrixProduct B"))
        let aPointer = try pointer(a, count: mk, "matrixProduct A")
        let bPointer = try pointer(b, count: kn, "matrixProduct B")
        let cPointer = try pointer(c, count: mn, "matrixProduct C")
        let epiloguePointers = try epilogue(mn, n)
        if m == 0 || n == 0 { return false }
        if multiply(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer, epilogue: epiloguePointers) { return true }
        applyEpilogue(epiloguePointers, c: cPointer, rows: m, columns: n)
        return false
    }

    /// C = op(A)·op(B) by this backend's product engine (sizes and operands already checked);
    /// true when the product applied the epilogue too (the shallow kernel does, while each row is
    /// in its registers), else the caller applies it.
    private func multiply(_ layout: ProductLayout, m: Int, n: Int, k: Int, a aPointer: UnsafeMutablePointer<Float>,
                          b bPointer: UnsafeMutablePointer<Float>, c cPointer: UnsafeMutablePointer<Float>,
                          epilogue: EpiloguePointers) -> Bool {
        switch productEngine {
        case .swift:
            SwiftMatrixProduct.multiply(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer)
        case .blas, .packed:
            // a skinny kernel first where one takes the product (it would be padding in the small
            // product's tiles), then the small product
            let skinny = epilogue.skinny
            if k > 0, let applied = SIMDKernels.skinnyProduct(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer,
                                                              epilogue: skinny) {
                return applied
            }
            if k > 0, SIMDKernels.smallProduct(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer) {
                break
            }
            if let blas, k > 0, !SIMDKernels.prefersPackedProduct(m: m, n: n, k: k) {
                return blas.product(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer, epilogue: skinny)
            } else if let applied = SIMDKernels.packedProduct(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer,
                                                              epilogue: skinny) {
                return applied
            } else {
                SwiftMatrixProduct.multiply(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer)
            }
        }
        return false
    }

    /// An epilogue's operands, checked (before the product writes C).
    enum EpiloguePointers {
        case none
        case bias(UnsafeMutablePointer<Float>, relu: Bool)
        case reluMask(UnsafeMutablePointer<Float>)
        /// tanh(C + bias) and C·(1 − source²): what the shallow kernel can take of the activation
        /// epilogues (`multiply` says whether it did; the activation passes do them otherwise)
        case biasTanh(UnsafePointer<Float>)
        case tanhDerivative(UnsafePointer<Float>)

        /// The same epilogue for the kernels that apply it as they store C (`SIMDKernels`).
        var skinny: SIMDKernels.SkinnyEpilogue {
            switch self {
            case .none: .none
            case let .bias(bias, relu): .bias(UnsafePointer(bias), function: relu ? .relu : .identity)
            case .reluMask(let activation): .derivative(UnsafePointer(activation), function: .relu)
            case .biasTanh(let bias): .bias(bias, function: .tanh)
            case .tanhDerivative(let source): .derivative(source, function: .tanh)
            }
        }
    }

    func pointers(_ epilogue: ProductEpilogue<CPUBuffer>, count mn: Int, columns n: Int) throws -> EpiloguePointers {
        switch epilogue {
        case .none:
            return .none
        case .bias(let bias):
            return .bias(try pointer(bias, count: n, "matrixProduct bias"), relu: false)
        case .biasReLU(let bias):
            return .bias(try pointer(bias, count: n, "matrixProduct bias"), relu: true)
        case .reluMask(let activation):
            return .reluMask(try pointer(activation, count: mn, "matrixProduct relu mask"))
        }
    }

    func applyEpilogue(_ epilogue: EpiloguePointers, c cPointer: UnsafeMutablePointer<Float>, rows m: Int, columns n: Int) {
        switch epilogue {
        case .none, .biasTanh, .tanhDerivative:
            break
        case let .bias(biasPointer, relu):
            ElementwiseKernels.addBiasSplit(cPointer, rows: m, columns: n, bias: biasPointer, relu: relu)
        case .reluMask(let activationPointer):
            ElementwiseKernels.reluMaskSplit(cPointer, activation: activationPointer, count: m * n)
        }
    }

    /// Reads the selected rows where they lie for the products that the claimed product takes
    /// (`SIMDKernels.readsSelectedRows`: mid-size NT and NN products with AVX-512, and TN ones),
    /// where this backend sends such a product to it (not the small-product kernel, nor a BLAS).
    public func readsRowsInPlace(_ layout: ProductLayout, m: Int, n: Int, k: Int) -> Bool {
        guard productEngine != .swift, m > 0, n > 0, k > 0 else { return false }
        let work = BLASLibrary.multiplyAdds(m: m, n: n, k: k)
        guard work > SIMDKernels.smallProductLimit, blas == nil || SIMDKernels.prefersPackedProduct(m: m, n: n, k: k),
              SIMDKernels.skinnyKernel(layout, m: m, n: n, k: k) == nil else {
            return false
        }
        return SIMDKernels.readsSelectedRows(layout, m: m, n: n, k: k)
    }

    /// Reads the selected rows where they lie where `readsRowsInPlace` says so (the bits of the
    /// gathered product, which the tests check), else gathers them into a buffer for the call.
    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, rows: SelectedRows<CPUBuffer>, other: BufferSlice<CPUBuffer>,
        c: BufferSlice<CPUBuffer>, epilogue: ProductEpilogue<CPUBuffer>
    ) throws {
        let (count, width) = try SelectedRows<CPUBuffer>.shape(layout, m: m, n: n, k: k, width: rows.width)
        guard readsRowsInPlace(layout, m: m, n: n, k: k) else {
            try gatheringProduct(layout, m: m, n: n, k: k, rows: rows, other: other, c: c, epilogue: epilogue)
            return
        }
        let mn = try elements(m, n, "matrixProduct C")
        // the other operand: A (k×m) for TN, B (k×n) for NT and NN
        let otherName = layout == .tn ? "matrixProduct A" : "matrixProduct B"
        let otherPointer = try pointer(other, count: try elements(k, layout == .tn ? m : n, otherName), otherName)
        let cPointer = try pointer(c, count: mn, "matrixProduct C")
        let epiloguePointers = try pointers(epilogue, count: mn, columns: n)
        // every index checked before C is written
        let taken = try withCheckedRows(rows, count: count, width: width, operation: "matrixProduct") { sourcePointer, indices in
            let (a, b) = layout == .tn ? (otherPointer, sourcePointer) : (sourcePointer, otherPointer)
            return SIMDKernels.selectedRowsProduct(layout, m: m, n: n, k: k, a: a, b: b, c: cPointer, rows: indices,
                                                   epilogue: epiloguePointers.skinny)
        }
        // (`readsRowsInPlace` asked the same question as the kernel's wrapper, so it took the product)
        guard let applied = taken else {
            try gatheringProduct(layout, m: m, n: n, k: k, rows: rows, other: other, c: c, epilogue: epilogue)
            return
        }
        if !applied { applyEpilogue(epiloguePointers, c: cPointer, rows: m, columns: n) }
    }

    /// `body` with the selected rows' source and their first `count` indices as Ints, each index
    /// checked (`checkRowIndices`) before `body` runs; the errors name "`operation` row indices"
    /// (a short index buffer) and "`operation` rows" (the source, a bad index).
    func withCheckedRows<R>(
        _ rows: SelectedRows<CPUBuffer>, count: Int, width: Int, operation: String,
        _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Int>) throws -> R
    ) throws -> R {
        let indexPointer = try pointer(rows.indices, count: count, "\(operation) row indices")
        let sourcePointer = try pointer(rows.source, count: 0, "\(operation) rows")
        return try withUnsafeTemporaryAllocation(of: Int.self, capacity: max(count, 1)) { indices in
            try checkRowIndices(indexPointer, count: count, source: rows.source, width: width, operation: "\(operation) rows",
                                into: indices.baseAddress)
            return try body(sourcePointer, UnsafePointer(indices.baseAddress!))
        }
    }

    /// Throws `outOfBounds` unless each of the `count` row indices is a whole number naming a row
    /// of `source` (`width` floats a row, from the slice's offset to its buffer's end); with `into`,
    /// writes them there as Ints. Every index is checked before the caller reads or writes a row.
    func checkRowIndices(_ indices: UnsafePointer<Float>, count: Int, source: BufferSlice<CPUBuffer>, width: Int,
                                 operation: String, into checked: UnsafeMutablePointer<Int>? = nil) throws {
        let available = source.buffer.count - source.offset
        let sourceRows = width > 0 ? available / width : 0
        for row in 0..<count {
            guard let index = Int(exactly: indices[row]), index >= 0, index < sourceRows else {
                // the elements the row would need, saturating at Int.max: an index of 1e14 times a
                // wide row overflows, and NaN and ±∞ have no row
                var needed = Int.max
                if indices[row].isFinite, abs(indices[row]) < 1e15 {
                    let (end, overflow) = (Int(indices[row]) + 1).multipliedReportingOverflow(by: width)
                    if !overflow { needed = end }
                }
                throw BackendError.outOfBounds(operation: operation, needed: needed, available: available)
            }
            checked?[row] = index
        }
    }

    /// The CPU backend implements every feature.
    public func requireSupport(_ feature: BackendFeature) throws {
        if case .activation(let function) = feature { try function.validate() }
    }

    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<CPUBuffer>, b: BufferSlice<CPUBuffer>, c: BufferSlice<CPUBuffer>,
        activation epilogue: ActivationEpilogue<CPUBuffer>
    ) throws {
        // check every operand before the product writes C
        guard m >= 0, n >= 0, k >= 0 else {
            throw BackendError.invalidArgument(operation: "matrixProduct", reason: "negative size \(m)×\(n)×\(k)")
        }
        let mn = try elements(m, n, "matrixProduct C")
        switch epilogue {
        case let .biasActivation(bias, function, preActivation):
            let biasPointer = try pointer(bias, count: n, "matrixProduct bias")
            let prePointer = try preActivation.map { try pointer($0, count: mn, "matrixProduct pre-activation") }
            // tanh (which keeps no Z) in the shallow kernel's epilogue where it takes the product
            let fused: EpiloguePointers = function == .tanh && prePointer == nil && SIMDKernels.vectorTanh
                ? .biasTanh(UnsafePointer(biasPointer)) : .none
            if try product(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: { _, _ in fused }) { return }
            if m == 0 || n == 0 { return }
            let cPointer = c.buffer.pointer + c.offset
            ElementwiseKernels.biasActivation(cPointer, rows: m, columns: n, bias: biasPointer, function: function,
                                              preActivation: prePointer)
        case let .activationDerivative(source, function):
            let sourcePointer = try pointer(source, count: mn, "matrixProduct activation derivative")
            let fused: EpiloguePointers = function == .tanh && SIMDKernels.vectorTanh
                ? .tanhDerivative(UnsafePointer(sourcePointer)) : .none
            if try product(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: { _, _ in fused }) { return }
            if m == 0 || n == 0 { return }
            let cPointer = c.buffer.pointer + c.offset
            ElementwiseKernels.activationDerivative(cPointer, source: sourcePointer, count: mn, function: function)
        }
    }

    public func columnSums(_ matrix: BufferSlice<CPUBuffer>, rows: Int, columns: Int, into sums: BufferSlice<CPUBuffer>) throws {
        try requireSizes(rows, columns, "columnSums")
        let matrixPointer = try pointer(matrix, count: try elements(rows, columns, "columnSums"), "columnSums")
        let sumsPointer = try pointer(sums, count: columns, "columnSums output")
        ElementwiseKernels.columnSumsSplit(matrixPointer, rows: rows, columns: columns, into: sumsPointer)
    }

    public func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<CPUBuffer>, target: BufferSlice<CPUBuffer>,
        rows: Int, columns: Int, gradient: BufferSlice<CPUBuffer>, lossSum: BufferSlice<CPUBuffer>,
        classWeights: BufferSlice<CPUBuffer>?, rowWeights: BufferSlice<CPUBuffer>?
    ) throws {
        if classWeights != nil, loss == .meanSquaredError {
            throw BackendError.invalidArgument(operation: "lossGradient", reason: "class weights for mse")
        }
        let weightsPointer = try classWeights.map { try pointer($0, count: columns, "lossGradient class weights") }
        try requireSizes(rows, columns, "lossGradient")
        let rowWeightsPointer = try rowWeights.map { try pointer($0, count: rows, "lossGradient row weights") }
        let count = try elements(rows, columns, "lossGradient")
        let outputPointer = try pointer(output, count: count, "lossGradient output")
        let targetPointer = try pointer(target, count: try elements(rows, targets.width(outputs: columns), "lossGradient target"),
                                        "lossGradient target")
        let gradientPointer = try pointer(gradient, count: count, "lossGradient gradient")
        let sumPointer = try pointer(lossSum, count: 1, "lossGradient loss")
        sumPointer.pointee = LossKernels.gradient(
            loss, targets: targets, output: outputPointer, target: targetPointer,
            rows: rows, columns: columns, gradient: gradientPointer, classWeights: weightsPointer.map { UnsafePointer($0) },
            rowWeights: rowWeightsPointer.map { UnsafePointer($0) })
    }

    public func gatherRows(
        _ source: BufferSlice<CPUBuffer>, width: Int, indices: BufferSlice<CPUBuffer>, count: Int,
        into destination: BufferSlice<CPUBuffer>
    ) throws {
        try requireSizes(count, width, "gatherRows")
        let destinationCount = try elements(count, width, "gatherRows output")
        let indexPointer = try pointer(indices, count: count, "gatherRows indices")
        let destinationPointer = try pointer(destination, count: destinationCount, "gatherRows output")
        // the source's offset inside its buffer (an offset before it would read outside the buffer)
        let sourcePointer = try pointer(source, count: 0, "gatherRows source")
        // every index checked before any row is copied
        try checkRowIndices(indexPointer, count: count, source: source, width: width, operation: "gatherRows")
        ElementwiseKernels.gatherRows(sourcePointer, width: width, indices: indexPointer, count: count,
                                      into: destinationPointer)
    }

    public func adamUpdate(
        parameters: BufferSlice<CPUBuffer>, gradients: BufferSlice<CPUBuffer>,
        firstMoment: BufferSlice<CPUBuffer>, secondMoment: BufferSlice<CPUBuffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        try adam(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                 count: count, hyperparameters: hyperparameters, step: step, layout: nil)
    }

    /// Plain Adam or AdamW (the CPU's `adamUpdate` honours both), each thread updating the rows
    /// of each layer that its products read and write (`ElementwiseKernels.adam`): the same bits.
    public func adamUpdate(
        parameters: BufferSlice<CPUBuffer>, gradients: BufferSlice<CPUBuffer>,
        firstMoment: BufferSlice<CPUBuffer>, secondMoment: BufferSlice<CPUBuffer>,
        layout: LayerLayout, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        try adam(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                 count: layout.parameterCount, hyperparameters: hyperparameters, step: step, layout: layout)
    }

    func adam(
        parameters: BufferSlice<CPUBuffer>, gradients: BufferSlice<CPUBuffer>,
        firstMoment: BufferSlice<CPUBuffer>, secondMoment: BufferSlice<CPUBuffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int, layout: LayerLayout?, panels: WeightPanels? = nil
    ) throws {
        guard step >= 1 else {
            throw BackendError.invalidArgument(operation: "adamUpdate", reason: "step \(step) must be at least 1")
        }
        let theta = try pointer(parameters, count: count, "adamUpdate parameters")
        let g = try pointer(gradients, count: count, "adamUpdate gradients")
        let m = try pointer(firstMoment, count: count, "adamUpdate first moment")
        let v = try pointer(secondMoment, count: count, "adamUpdate second moment")
        ElementwiseKernels.adam(parameters: theta, gradients: g, m: m, v: v, count: count,
                                hyperparameters: hyperparameters, step: step, layout: layout, panels: panels)
    }

    /// AdamW with clipping, as `adamUpdate` (which on the CPU honours weight decay and clipping too).
    public func adamWUpdate(
        parameters: BufferSlice<CPUBuffer>, gradients: BufferSlice<CPUBuffer>,
        firstMoment: BufferSlice<CPUBuffer>, secondMoment: BufferSlice<CPUBuffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        try adamUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                       count: count, hyperparameters: hyperparameters, step: step)
    }

    public func synchronize() throws {}

    /// Two products at once, one a thread, where each would otherwise be split over the threads
    /// (`BLASLibrary.splitFrom` multiply-adds or more) and is small enough that a BLAS would run
    /// it on one thread anyway (fewer than `BLASLibrary.singleThreadBelow`): the mnist step's
    /// second layer, whose weight gradient and first layer's delta (128×256×128 each) split over
    /// both cores paid the hand-over twice and packed each operand on both threads.
    public func runsConcurrently(multiplyAdds: Int) -> Bool {
        concurrentTasks && ParallelChunks.threads > 1 && multiplyAdds >= BLASLibrary.splitFrom && multiplyAdds < BLASLibrary.singleThreadBelow
    }

    private struct Tasks {
        let body: (Int) throws -> Void
        var errors: (Error?, Error?) = (nil, nil)
    }

    /// body(0) on the calling thread and body(1) on a helper (`ParallelChunks`; the calling
    /// thread takes both when no helper comes in time). Inside, a split product or pass runs on
    /// its caller alone (the pool is taken), with the bits it has split: so the results do not
    /// depend on which thread ran which task.
    public func concurrently(_ body: (Int) throws -> Void) throws {
        // each product inside is below singleThreadBelow: set the BLAS's one thread now, so that
        // neither task changes (or first reads) the setting while the other runs
        blas?.useOneThread()
        try withoutActuallyEscaping(body) { body in
            var tasks = Tasks(body: body)
            withUnsafeMutablePointer(to: &tasks) { context in
                ParallelChunks.forEach(count: 2, chunk: 1, parallel: true, staysAwake: true,
                                       context: UnsafeRawPointer(context)) { context, start, _ in
                    let tasks = UnsafeMutableRawPointer(mutating: context).assumingMemoryBound(to: Tasks.self)
                    do {
                        try tasks.pointee.body(start)
                    } catch {
                        if start == 0 { tasks.pointee.errors.0 = error } else { tasks.pointee.errors.1 = error }
                    }
                }
            }
            if let error = tasks.errors.0 ?? tasks.errors.1 { throw error }
        }
    }
}
