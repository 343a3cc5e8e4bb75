/// The portable GPU kernel sources: one text that compiles as CUDA C++ (NVRTC) and as OpenCL C.
///
/// A program is `KernelTiles.defines` + `prelude` + the kernel texts; `program(tiles:)` assembles
/// it. The prelude maps the few words that differ between the dialects so that every kernel reads
/// as ordinary CUDA C. All matrices are row-major Float32; every pointer argument is followed by
/// an element offset (the OpenCL backend cannot offset a `cl_mem` on the host; CUDA passes 0).
public enum KernelSource {
    /// Every kernel's text, without tile definitions or prelude.
    public static let kernels: String = [gemm, columnSums, loss, gather, adam].joined(separator: "\n")

    /// The prelude followed by every kernel, without tile definitions.
    public static let all: String = prelude + "\n" + kernels

    /// A complete program for one device: tile definitions, prelude, kernels.
    public static func program(tiles: KernelTiles) -> String {
        tiles.defines + "\n" + all
    }
}

/// The name of every kernel entry point in `KernelSource.all`, as the runtime looks it up.
public enum KernelName: String, CaseIterable, Sendable {
    /// C[m×n] = A[m×k]·B[n×k]ᵀ with a fused epilogue.
    case gemmNT = "gemm_nt"
    /// C[m×n] = A[k×m]ᵀ·B[k×n] with a fused epilogue.
    case gemmTN = "gemm_tn"
    /// C[m×n] = A[m×k]·B[k×n] with a fused epilogue.
    case gemmNN = "gemm_nn"
    /// sums[j] = Σ_i M[i, j].
    case columnSums = "column_sums"
    /// Mean-squared-error gradient and per-row loss.
    case lossMSE = "loss_mse"
    /// Softmax cross-entropy gradient and per-row loss.
    case lossCrossEntropy = "loss_softmax_cross_entropy"
    /// out[0] = Σ partial[i], in a fixed order.
    case sumReduce = "sum_reduce"
    /// dst[i, :] = src[indices[i], :].
    case gatherRows = "gather_rows"
    /// One Adam step over a flat buffer, t read from device memory.
    case adam = "adam_update"
    /// step[0] += 1 on the device.
    case advanceStep = "advance_step"
}

/// The epilogue codes the product kernels take as their `epilogue` argument.
public enum KernelEpilogue: Int32, Sendable {
    /// C as computed.
    case none = 0
    /// C[i, j] += bias[j]
    case bias = 1
    /// C[i, j] = max(0, C[i, j] + bias[j])
    case biasReLU = 2
    /// C[i, j] = act[i, j] > 0 ? C[i, j] : 0
    case reluMask = 3
}

/// The target-encoding codes the loss kernels take as their `targetKind` argument.
public enum KernelTargetKind: Int32, Sendable {
    /// One float per row holding an integer class index.
    case classIndices = 0
    /// One value per output column.
    case dense = 1
}
