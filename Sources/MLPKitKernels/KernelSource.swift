/// The portable GPU kernel sources: one text that compiles as CUDA C++ (NVRTC) and as OpenCL C.
///
/// A program is `KernelTiles.defines` + `prelude` + the kernel texts; `program(tiles:)` assembles
/// it. The prelude maps the few words that differ between the dialects so that every kernel reads
/// as ordinary CUDA C. All matrices are row-major Float32; every pointer argument is followed by
/// an element offset (the OpenCL backend cannot offset a `cl_mem` on the host; CUDA passes 0).
public enum KernelSource {
    /// Every kernel's text, without tile definitions or prelude.
    public static let kernels: String = [gemm, columnSums, activation, loss, wideLoss, gather, adam, adamW].joined(separator: "\n")

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
    /// The three products with the compact block tile (`KernelTiles.compact`).
    case gemmNTCompact = "gemm_nt_compact"
    case gemmTNCompact = "gemm_tn_compact"
    case gemmNNCompact = "gemm_nn_compact"
    /// C = epilogue(Σ_z partial_z): the slices of a split-k product added in order.
    case gemmSplitKSum = "gemm_splitk_sum"
    /// Any loss's gradient and per-row loss with a block per row (wide output layers).
    case lossWide = "loss_wide"
    /// sums[j] = Σ_i M[i, j].
    case columnSums = "column_sums"
    /// Mean-squared-error gradient and per-row loss.
    case lossMSE = "loss_mse"
    /// Softmax cross-entropy gradient and per-row loss.
    case lossCrossEntropy = "loss_softmax_cross_entropy"
    /// Binary cross-entropy (from the logits) gradient and per-row loss.
    case lossBinaryCrossEntropy = "loss_binary_cross_entropy"
    /// C = f(C) in place for a hidden activation, keeping Z when asked.
    case activationForward = "activation_forward"
    /// C = C · f'(source) in place for a hidden activation.
    case activationDerivative = "activation_derivative"
    /// out[0] = Σ partial[i], in a fixed order.
    case sumReduce = "sum_reduce"
    /// dst[i, :] = src[indices[i], :].
    case gatherRows = "gather_rows"
    /// One Adam step over a flat buffer, t read from device memory.
    case adam = "adam_update"
    /// step[0] += 1 on the device.
    case advanceStep = "advance_step"
    /// Per-block sums of g² (the gradient's global norm, first pass).
    case gradientNormPartials = "gradient_norm_partials"
    /// The clipping scale min(1, c/(‖g‖ + 1e-6)) from the partial sums, in one block.
    case clipScale = "clip_scale"
    /// One AdamW step (decoupled weight decay, clipped gradient), t read from device memory.
    case adamW = "adamw_update"
}

extension KernelName {
    /// The block size the kernel is compiled for with `tiles` (1 where any size works).
    public func requiredThreads(_ tiles: KernelTiles) -> Int {
        switch self {
        case .gemmNT, .gemmTN, .gemmNN: tiles.gemmThreads
        case .gemmNTCompact, .gemmTNCompact, .gemmNNCompact: tiles.compact.gemmThreads
        case .columnSums, .sumReduce, .gradientNormPartials, .clipScale, .lossWide: tiles.reduceThreads
        case .lossBinaryCrossEntropy, .activationForward, .activationDerivative, .adamW: 1
        case .lossMSE, .lossCrossEntropy, .gatherRows, .adam, .advanceStep, .gemmSplitKSum: 1
        }
    }
}

extension KernelName {
    /// Bytes of dynamic shared memory the kernel is launched with for `tiles` (CUDA: product tiles
    /// whose stages exceed the static limit; 0 for every other kernel).
    public func dynamicSharedBytes(_ tiles: KernelTiles) -> Int {
        switch self {
        case .gemmNT, .gemmTN, .gemmNN: tiles.dynamicGemmSharedBytes
        case .gemmNTCompact, .gemmTNCompact, .gemmNNCompact: tiles.compact.dynamicGemmSharedBytes
        default: 0
        }
    }
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

/// The loss codes `loss_wide` takes as its `loss` argument.
public enum KernelLossKind: Int32, Sendable {
    case meanSquaredError = 0
    case crossEntropy = 1
    case binaryCrossEntropy = 2
}

/// The target-encoding codes the loss kernels take as their `targetKind` argument.
public enum KernelTargetKind: Int32, Sendable {
    /// One float per row holding an integer class index.
    case classIndices = 0
    /// One value per output column.
    case dense = 1
}
