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

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit {
        pointer.deallocate()
    }
}

/// The CPU backend: products through BLAS when one is installed (else `SwiftMatrixProduct`),
/// small ones through `SIMDKernels`' AVX2 kernel where the processor has it, and every
/// element-wise operation as one fused pass.
public final class CPUBackend: Backend {
    public typealias Buffer = CPUBuffer

    /// Which matrix product this backend uses.
    public enum ProductEngine: Equatable, Sendable {
        case blas(String)
        case swift
    }

    /// The BLAS library used, or nil for the Swift product.
    public let blas: BLASLibrary?

    /// - Parameter useBLAS: false forces the Swift product even when a BLAS library is found.
    public init(useBLAS: Bool = true) {
        blas = useBLAS ? BLASLibrary.shared : nil
    }

    public var productEngine: ProductEngine {
        blas.map { .blas($0.name) } ?? .swift
    }

    public var summary: String {
        if let blas {
            // the most a product uses (a small one runs on one of them)
            let threads = blas.threads == nil ? "" : ", \(blas.maximumThreads) thread\(blas.maximumThreads == 1 ? "" : "s")"
            return "CPU (BLAS: \(blas.name)\(threads))"
        }
        return "CPU (Swift matrix product; install OpenBLAS for speed)"
    }

    public func makeBuffer(count: Int) throws -> CPUBuffer {
        guard count >= 0 else {
            throw BackendError.invalidArgument(operation: "makeBuffer", reason: "negative count \(count)")
        }
        return CPUBuffer(count: count)
    }

    /// The pointer to `count` elements at `slice`, after checking they lie inside the buffer.
    @inline(__always)
    func pointer(_ slice: BufferSlice<CPUBuffer>, count: Int, _ operation: @autoclosure () -> String) throws -> UnsafeMutablePointer<Float> {
        guard slice.offset >= 0, count >= 0, slice.offset + count <= slice.buffer.count else {
            throw BackendError.outOfBounds(operation: operation(), needed: slice.offset + count, available: slice.buffer.count)
        }
        return slice.buffer.pointer + slice.offset
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
        guard m >= 0, n >= 0, k >= 0 else {
            throw BackendError.invalidArgument(operation: "matrixProduct", reason: "negative size \(m)×\(n)×\(k)")
        }
        let aPointer = try pointer(a, count: m * k, "matrixProduct A")
        let bPointer = try pointer(b, count: k * n, "matrixProduct B")
        let cPointer = try pointer(c, count: m * n, "matrixProduct C")
        if m == 0 || n == 0 { return }
        if let blas, k > 0 {
            if !SIMDKernels.smallProduct(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer) {
                blas.product(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer)
            }
        } else {
            SwiftMatrixProduct.multiply(layout, m: m, n: n, k: k, a: aPointer, b: bPointer, c: cPointer)
        }
        switch epilogue {
        case .none:
            break
        case .bias(let bias):
            let biasPointer = try pointer(bias, count: n, "matrixProduct bias")
            ElementwiseKernels.addBiasSplit(cPointer, rows: m, columns: n, bias: biasPointer, relu: false)
        case .biasReLU(let bias):
            let biasPointer = try pointer(bias, count: n, "matrixProduct bias")
            ElementwiseKernels.addBiasSplit(cPointer, rows: m, columns: n, bias: biasPointer, relu: true)
        case .reluMask(let activation):
            let activationPointer = try pointer(activation, count: m * n, "matrixProduct relu mask")
            ElementwiseKernels.reluMaskSplit(cPointer, activation: activationPointer, count: m * n)
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
        switch epilogue {
        case let .biasActivation(bias, function, preActivation):
            let biasPointer = try pointer(bias, count: n, "matrixProduct bias")
            let prePointer = try preActivation.map { try pointer($0, count: m * n, "matrixProduct pre-activation") }
            try matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: .none)
            if m == 0 || n == 0 { return }
            let cPointer = c.buffer.pointer + c.offset
            ElementwiseKernels.biasActivation(cPointer, rows: m, columns: n, bias: biasPointer, function: function,
                                              preActivation: prePointer)
        case let .activationDerivative(source, function):
            let sourcePointer = try pointer(source, count: m * n, "matrixProduct activation derivative")
            try matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: .none)
            if m == 0 || n == 0 { return }
            let cPointer = c.buffer.pointer + c.offset
            ElementwiseKernels.activationDerivative(cPointer, source: sourcePointer, count: m * n, function: function)
        }
    }

    public func columnSums(_ matrix: BufferSlice<CPUBuffer>, rows: Int, columns: Int, into sums: BufferSlice<CPUBuffer>) throws {
        let matrixPointer = try pointer(matrix, count: rows * columns, "columnSums")
        let sumsPointer = try pointer(sums, count: columns, "columnSums output")
        ElementwiseKernels.columnSumsSplit(matrixPointer, rows: rows, columns: columns, into: sumsPointer)
    }

    public func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<CPUBuffer>, target: BufferSlice<CPUBuffer>,
        rows: Int, columns: Int, gradient: BufferSlice<CPUBuffer>, lossSum: BufferSlice<CPUBuffer>
    ) throws {
        let outputPointer = try pointer(output, count: rows * columns, "lossGradient output")
        let targetPointer = try pointer(target, count: rows * targets.width(outputs: columns), "lossGradient target")
        let gradientPointer = try pointer(gradient, count: rows * columns, "lossGradient gradient")
        let sumPointer = try pointer(lossSum, count: 1, "lossGradient loss")
        sumPointer.pointee = LossKernels.gradient(
            loss, targets: targets, output: outputPointer, target: targetPointer,
            rows: rows, columns: columns, gradient: gradientPointer)
    }

    public func gatherRows(
        _ source: BufferSlice<CPUBuffer>, width: Int, indices: BufferSlice<CPUBuffer>, count: Int,
        into destination: BufferSlice<CPUBuffer>
    ) throws {
        let indexPointer = try pointer(indices, count: count, "gatherRows indices")
        let destinationPointer = try pointer(destination, count: count * width, "gatherRows output")
        let available = source.buffer.count - source.offset
        let sourceRows = width > 0 ? available / width : 0
        // every index checked before any row is copied
        for row in 0..<count {
            guard let index = Int(exactly: indexPointer[row]), index >= 0, index < sourceRows else {
                let index = indexPointer[row]
                let needed = index.isFinite && abs(index) < 1e15 ? (Int(index) + 1) * width : Int.max
                throw BackendError.outOfBounds(operation: "gatherRows", needed: needed, available: available)
            }
        }
        ElementwiseKernels.gatherRows(source.buffer.pointer + source.offset, width: width, indices: indexPointer, count: count,
                                      into: destinationPointer)
    }

    public func adamUpdate(
        parameters: BufferSlice<CPUBuffer>, gradients: BufferSlice<CPUBuffer>,
        firstMoment: BufferSlice<CPUBuffer>, secondMoment: BufferSlice<CPUBuffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        guard step >= 1 else {
            throw BackendError.invalidArgument(operation: "adamUpdate", reason: "step \(step) must be at least 1")
        }
        let theta = try pointer(parameters, count: count, "adamUpdate parameters")
        let g = try pointer(gradients, count: count, "adamUpdate gradients")
        let m = try pointer(firstMoment, count: count, "adamUpdate first moment")
        let v = try pointer(secondMoment, count: count, "adamUpdate second moment")
        ElementwiseKernels.adam(parameters: theta, gradients: g, m: m, v: v, count: count,
                                hyperparameters: hyperparameters, step: step)
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
}
