#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The operation-level seam between the training algorithm and the hardware.
///
/// `TrainingSession` states SEED.md's step once, in terms of these operations; every backend
/// (CPU, OpenCL, CUDA) supplies them and none re-states the algorithm. All matrices are
/// row-major Float32. A `BufferSlice` names a buffer and an element offset into it.
///
/// Products come in the three layouts the step needs, never with an explicit transpose copy:
/// - `.nt`: C[m×n] = A[m×k] · B[n×k]ᵀ (forward: Z = A_prev · Wᵀ)
/// - `.tn`: C[m×n] = A[k×m]ᵀ · B[k×n] (weight gradient: dW = dZᵀ · A_prev)
/// - `.nn`: C[m×n] = A[m×k] · B[k×n] (input gradient: dA_prev = dZ · W)
public protocol Backend: AnyObject {
    associatedtype Buffer

    /// A one-line description for `mlp devices` and logs.
    var summary: String { get }

    /// A buffer of `count` Float32 elements, zero-filled.
    func makeBuffer(count: Int) throws -> Buffer
    /// Copies host values into `destination` starting at its offset.
    func upload(_ values: UnsafeBufferPointer<Float>, to destination: BufferSlice<Buffer>) throws
    /// Copies `count` elements starting at `source` into host memory.
    func download(_ source: BufferSlice<Buffer>, count: Int, into values: UnsafeMutableBufferPointer<Float>) throws

    /// C = op(A)·op(B), then the epilogue, in one operation.
    func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<Buffer>, b: BufferSlice<Buffer>, c: BufferSlice<Buffer>,
        epilogue: ProductEpilogue<Buffer>
    ) throws

    /// sums[j] = Σ_i matrix[i, j] over a rows×columns matrix (the bias gradient).
    func columnSums(_ matrix: BufferSlice<Buffer>, rows: Int, columns: Int, into sums: BufferSlice<Buffer>) throws

    /// The loss's gradient with respect to the output layer's pre-activation, scaled by 1/rows,
    /// written into `gradient`, and the loss summed over the rows (not yet divided by rows)
    /// written into `lossSum[0]`. With `classWeights` (one per output; not for MSE): for
    /// cross-entropy each row's loss and gradient are scaled by its class's weight (for a dense
    /// row, Σ_j w_j·y_j); for binary cross-entropy output j's positive term is weighed by w_j
    /// (PyTorch's `pos_weight`: −[w_j·y·log σ(z) + (1 − y)·log(1 − σ(z))]). With `rowWeights`
    /// (any loss; one per row), each row's by the row's own weight too. `gradient` may be `output`
    /// itself (the gradient written over the logits in place), with the same results.
    func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<Buffer>, target: BufferSlice<Buffer>,
        rows: Int, columns: Int, gradient: BufferSlice<Buffer>, lossSum: BufferSlice<Buffer>,
        classWeights: BufferSlice<Buffer>?, rowWeights: BufferSlice<Buffer>?
    ) throws

    /// Copies rows `indices[0..<count]` (an index list stored as Float32 integers in `indices`)
    /// of a `width`-column matrix `source` into consecutive rows of `destination`.
    func gatherRows(
        _ source: BufferSlice<Buffer>, width: Int, indices: BufferSlice<Buffer>, count: Int,
        into destination: BufferSlice<Buffer>
    ) throws

    /// One Adam step over a flat parameter buffer (SEED.md §4), with t = `step` (t ≥ 1).
    func adamUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws

    /// Waits until all queued work is done (a no-op on the CPU).
    func synchronize() throws

    // MARK: Beyond the seed (each has a default below, so a backend that implements only the
    // seed's operations keeps compiling and says clearly what it lacks)

    /// Throws `BackendError.unsupported` unless this backend implements `feature`. The default
    /// accepts the seed's features (ReLU, MSE, cross-entropy, plain Adam) and refuses the rest.
    func requireSupport(_ feature: BackendFeature) throws

    /// C = op(A)·op(B), then a hidden activation's epilogue (any `ActivationFunction`), in one
    /// operation. The default handles ReLU through `.biasReLU` and `.reluMask` and throws
    /// `BackendError.unsupported` for the other activations.
    func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<Buffer>, b: BufferSlice<Buffer>, c: BufferSlice<Buffer>,
        activation epilogue: ActivationEpilogue<Buffer>
    ) throws

    /// One step of Adam with AdamW's decoupled weight decay and gradient clipping by global norm
    /// (see `AdamHyperparameters.weightDecay` and `clipNorm`), in this order:
    /// g ← g · min(1, c / (‖g‖ + 1e-6)) over all `count` gradients (torch.nn.utils.clip_grad_norm_);
    /// θ ← θ · (1 − α·λ) (torch.optim.AdamW); then SEED.md §4's update with g.
    /// The default runs `adamUpdate` when λ = 0 without clipping and throws
    /// `BackendError.unsupported` otherwise.
    func adamWUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws

    /// One step of Adam over a network's parameters, laid out by `layout` (its `parameterCount`
    /// of them), as `adamWUpdate` (SEED.md's Adam when λ = 0 without clipping), which is what the
    /// default runs. The layout lets a backend split the update as it splits the layers'
    /// products: the CPU's threads each update the rows of each layer that their products read
    /// and write.
    func adamUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        layout: LayerLayout, hyperparameters: AdamHyperparameters, step: Int
    ) throws

    /// Whether two independent products of `multiplyAdds` each (a layer's weight gradient and
    /// the previous layer's delta) are best run at once, one on each of two threads
    /// (`concurrently`), rather than one after the other, each on every thread. The default: no.
    func runsConcurrently(multiplyAdds: Int) -> Bool

    /// `body(0)` and `body(1)`, at once where the backend can; both run even when one throws,
    /// and body(0)'s error is rethrown before body(1)'s. The default runs them in turn.
    func concurrently(_ body: (Int) throws -> Void) throws

    /// Whether `matrixProduct(_:m:n:k:rows:other:c:epilogue:)` reads the selected rows where they
    /// lie for a product of this layout and size (a training step then skips the batch's gather).
    /// The default: no.
    func readsRowsInPlace(_ layout: ProductLayout, m: Int, n: Int, k: Int) -> Bool

    /// `matrixProduct` with the batch operand given as rows of a larger matrix: for NT and NN
    /// op(A) is m×k and its row i is row `rows.indices[i]` of `rows.source` (width k), `other` is
    /// B; for TN op(B) is k×n and its row p is row `rows.indices[p]` of `rows.source` (width n),
    /// `other` is A. The bits are those of `gatherRows` into a buffer followed by `matrixProduct`.
    /// The default does exactly that, in a buffer it makes for the call.
    func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, rows: SelectedRows<Buffer>, other: BufferSlice<Buffer>,
        c: BufferSlice<Buffer>, epilogue: ProductEpilogue<Buffer>
    ) throws

    /// The width of the panels in which this backend keeps a first layer's weight W (`rows`×`columns`,
    /// read by the forward product A·Wᵀ of batches of up to `batch` rows), or nil, the default:
    /// in rows, as everywhere else. Kept in panels of w, W(j, p) lies at (j / w)·w·columns + w·p +
    /// j % w: each panel holds w rows side by side, depth after depth, the order in which the
    /// forward product packs B, so that it packs nothing. `TrainingSession` then keeps W, its
    /// gradient and its moments so, and gives them back in rows.
    func firstWeightPanels(rows: Int, columns: Int, batch: Int) -> Int?

    /// C = A·Wᵀ (m×n) and the epilogue with W (n×k) kept in the panels `firstWeightPanels` gave:
    /// the bits of `matrixProduct(.nt, …)` with W in rows.
    func panelledProduct(
        m: Int, n: Int, k: Int, input: BatchInput<Buffer>, panels: BufferSlice<Buffer>, c: BufferSlice<Buffer>,
        epilogue: ProductEpilogue<Buffer>
    ) throws

    /// dW = dZᵀ·A (dZ `batch`×`rows`, A `batch`×`columns`) written into W's panels: the bits of
    /// `matrixProduct(.tn, …)` in rows.
    func panelledWeightGradient(
        rows: Int, columns: Int, batch: Int, delta: BufferSlice<Buffer>, input: BatchInput<Buffer>, into panels: BufferSlice<Buffer>
    ) throws

    /// `adamUpdate(…, layout:, …)` with the first layer's weight kept in panels of
    /// `firstWeightPanels` (nil: in rows): element-wise, so the order changes nothing but the
    /// global norm that clipping sums, which a backend keeping panels sums in the rows' order.
    func adamUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        layout: LayerLayout, firstWeightPanels: Int?, hyperparameters: AdamHyperparameters, step: Int
    ) throws
}

/// A batch's input rows for a first layer's product: a matrix of consecutive rows, or rows picked
/// where they lie.
public enum BatchInput<Buffer> {
    case matrix(BufferSlice<Buffer>)
    case selected(SelectedRows<Buffer>)
}

/// Rows picked from a matrix by index (a batch of a dataset's rows, in the batch's order): row i
/// is row `indices[i]` (an integral Float, as `gatherRows` takes) of `source`, `width` floats wide.
public struct SelectedRows<Buffer> {
    public var source: BufferSlice<Buffer>
    public var width: Int
    public var indices: BufferSlice<Buffer>

    public init(source: BufferSlice<Buffer>, width: Int, indices: BufferSlice<Buffer>) {
        self.source = source
        self.width = width
        self.indices = indices
    }
}

extension Backend {
    public func runsConcurrently(multiplyAdds: Int) -> Bool { false }

    public func firstWeightPanels(rows: Int, columns: Int, batch: Int) -> Int? { nil }

    public func panelledProduct(
        m: Int, n: Int, k: Int, input: BatchInput<Buffer>, panels: BufferSlice<Buffer>, c: BufferSlice<Buffer>,
        epilogue: ProductEpilogue<Buffer>
    ) throws {
        throw BackendError.invalidArgument(operation: "panelledProduct", reason: "this backend keeps weights in rows")
    }

    public func panelledWeightGradient(
        rows: Int, columns: Int, batch: Int, delta: BufferSlice<Buffer>, input: BatchInput<Buffer>, into panels: BufferSlice<Buffer>
    ) throws {
        throw BackendError.invalidArgument(operation: "panelledWeightGradient", reason: "this backend keeps weights in rows")
    }

    public func adamUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        layout: LayerLayout, firstWeightPanels: Int?, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        guard firstWeightPanels == nil else {
            throw BackendError.invalidArgument(operation: "adamUpdate", reason: "this backend keeps weights in rows")
        }
        try adamUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                       layout: layout, hyperparameters: hyperparameters, step: step)
    }

    public func readsRowsInPlace(_ layout: ProductLayout, m: Int, n: Int, k: Int) -> Bool { false }

    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, rows: SelectedRows<Buffer>, other: BufferSlice<Buffer>,
        c: BufferSlice<Buffer>, epilogue: ProductEpilogue<Buffer>
    ) throws {
        try gatheringProduct(layout, m: m, n: n, k: k, rows: rows, other: other, c: c, epilogue: epilogue)
    }

    /// The selected rows gathered into a buffer made for the call, then `matrixProduct`.
    func gatheringProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, rows: SelectedRows<Buffer>, other: BufferSlice<Buffer>,
        c: BufferSlice<Buffer>, epilogue: ProductEpilogue<Buffer>
    ) throws {
        let (count, width) = try SelectedRows<Buffer>.shape(layout, m: m, n: n, k: k, width: rows.width)
        let (elements, overflow) = count.multipliedReportingOverflow(by: width)
        guard !overflow else {
            throw BackendError.invalidArgument(operation: "matrixProduct rows", reason: "\(count)×\(width) elements overflows")
        }
        let gathered = BufferSlice(try makeBuffer(count: elements))
        try gatherRows(rows.source, width: width, indices: rows.indices, count: count, into: gathered)
        if layout == .tn {
            try matrixProduct(layout, m: m, n: n, k: k, a: other, b: gathered, c: c, epilogue: epilogue)
        } else {
            try matrixProduct(layout, m: m, n: n, k: k, a: gathered, b: other, c: c, epilogue: epilogue)
        }
    }
}

extension SelectedRows {
    /// The rows and width the selected operand of this product has (m×k for NT and NN, k×n for
    /// TN), after checking that `width` is that width and no size is negative.
    static func shape(_ layout: ProductLayout, m: Int, n: Int, k: Int, width: Int) throws -> (rows: Int, width: Int) {
        guard m >= 0, n >= 0, k >= 0 else {
            throw BackendError.invalidArgument(operation: "matrixProduct", reason: "negative size \(m)×\(n)×\(k)")
        }
        let shape = layout == .tn ? (rows: k, width: n) : (rows: m, width: k)
        guard width == shape.width else {
            throw BackendError.invalidArgument(
                operation: "matrixProduct rows", reason: "rows \(width) wide for an operand \(shape.width) wide")
        }
        return shape
    }
}

extension Backend {
    public func concurrently(_ body: (Int) throws -> Void) throws {
        var first: Error?
        do { try body(0) } catch { first = error }
        do { try body(1) } catch { first = first ?? error }
        if let first { throw first }
    }

    /// ``lossGradient(_:targets:output:target:rows:columns:gradient:lossSum:classWeights:rowWeights:)`` without weights.
    public func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<Buffer>, target: BufferSlice<Buffer>,
        rows: Int, columns: Int, gradient: BufferSlice<Buffer>, lossSum: BufferSlice<Buffer>
    ) throws {
        try lossGradient(loss, targets: targets, output: output, target: target, rows: rows, columns: columns,
                         gradient: gradient, lossSum: lossSum, classWeights: nil, rowWeights: nil)
    }

    /// ``lossGradient(_:targets:output:target:rows:columns:gradient:lossSum:classWeights:rowWeights:)`` without row weights.
    public func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<Buffer>, target: BufferSlice<Buffer>,
        rows: Int, columns: Int, gradient: BufferSlice<Buffer>, lossSum: BufferSlice<Buffer>,
        classWeights: BufferSlice<Buffer>?
    ) throws {
        try lossGradient(loss, targets: targets, output: output, target: target, rows: rows, columns: columns,
                         gradient: gradient, lossSum: lossSum, classWeights: classWeights, rowWeights: nil)
    }

    /// The most elements a buffer may hold on any backend: its size in bytes must be an `Int`.
    public static var maximumBufferCount: Int { Int.max / MemoryLayout<Float>.stride }

    /// "CPU", "OpenCL", "CUDA": the type's name without "Backend", for messages.
    public var backendName: String {
        let name = String(describing: Self.self)
        return name.hasSuffix("Backend") && name.count > 7 ? String(name.dropLast(7)) : name
    }

    public func requireSupport(_ feature: BackendFeature) throws {
        guard feature.isSeedFeature else {
            throw BackendError.unsupported(backend: backendName, feature: feature.description)
        }
    }

    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<Buffer>, b: BufferSlice<Buffer>, c: BufferSlice<Buffer>,
        activation epilogue: ActivationEpilogue<Buffer>
    ) throws {
        if let fused = epilogue.fusedReLU {
            return try matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: fused)
        }
        switch epilogue {
        case .biasActivation(_, let function, _), .activationDerivative(_, let function):
            throw BackendError.unsupported(backend: backendName, feature: BackendFeature.activation(function).description)
        }
    }

    public func adamUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        layout: LayerLayout, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        try adamWUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                        count: layout.parameterCount, hyperparameters: hyperparameters, step: step)
    }

    public func adamWUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        if hyperparameters.weightDecay != 0 {
            throw BackendError.unsupported(backend: backendName, feature: BackendFeature.weightDecay.description)
        }
        if hyperparameters.clipNorm != nil {
            throw BackendError.unsupported(backend: backendName, feature: BackendFeature.gradientClipping.description)
        }
        try adamUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                       count: count, hyperparameters: hyperparameters, step: step)
    }
}

/// What a training run may need beyond the seed's ReLU, MSE, cross-entropy and plain Adam.
public enum BackendFeature: Sendable, Equatable, CustomStringConvertible {
    case activation(ActivationFunction)
    case loss(Loss)
    /// AdamW's decoupled weight decay (λ ≠ 0).
    case weightDecay
    /// Gradient clipping by global norm.
    case gradientClipping

    /// Whether every backend has it: ReLU, MSE and cross-entropy.
    public var isSeedFeature: Bool {
        switch self {
        case .activation(let function): return function == .relu
        case .loss(let loss): return loss == .meanSquaredError || loss == .crossEntropy
        case .weightDecay, .gradientClipping: return false
        }
    }

    /// "the tanh activation", "the binary-cross-entropy loss", …
    public var description: String {
        switch self {
        case .activation(let function): return "the \(function.kind.rawValue) activation"
        case .loss(let loss): return "the \(loss.rawValue) loss"
        case .weightDecay: return "weight decay (AdamW)"
        case .gradientClipping: return "gradient clipping"
        }
    }

    /// The features a run of `activation`, `loss` and `hyperparameters` uses.
    public static func used(activation: ActivationFunction, loss: Loss, hyperparameters: AdamHyperparameters) -> [BackendFeature] {
        var features: [BackendFeature] = [.activation(activation), .loss(loss)]
        if hyperparameters.weightDecay != 0 { features.append(.weightDecay) }
        if hyperparameters.clipNorm != nil { features.append(.gradientClipping) }
        return features
    }
}

/// A buffer and an element offset into it.
public struct BufferSlice<Buffer> {
    public var buffer: Buffer
    public var offset: Int

    @inlinable
    public init(_ buffer: Buffer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    /// Whether `count` elements from this slice's offset lie inside a buffer of `bufferCount`
    /// elements: offset ≤ bufferCount and count ≤ bufferCount − offset, so no offset or count,
    /// however large, overflows. Every backend's range check.
    @inlinable
    public func holds(_ count: Int, of bufferCount: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= bufferCount && count <= bufferCount - offset
    }

    /// The same buffer, `elements` further on. An offset past `Int`'s range saturates at
    /// `Int.max` (or `Int.min`), which every backend's range check then refuses.
    @inlinable
    public func advanced(by elements: Int) -> BufferSlice {
        let (moved, overflow) = offset.addingReportingOverflow(elements)
        return BufferSlice(buffer, offset: overflow ? (elements > 0 ? Int.max : Int.min) : moved)
    }
}

/// Which operands of a matrix product are transposed (see `Backend`).
public enum ProductLayout: String, Sendable, CaseIterable {
    /// C = A · Bᵀ
    case nt
    /// C = Aᵀ · B
    case tn
    /// C = A · B
    case nn
}

/// Element-wise work fused onto a matrix product's output C[m×n].
public enum ProductEpilogue<Buffer> {
    /// C as computed.
    case none
    /// C[i, j] += bias[j]
    case bias(BufferSlice<Buffer>)
    /// C[i, j] = max(0, C[i, j] + bias[j])
    case biasReLU(BufferSlice<Buffer>)
    /// C[i, j] = activation[i, j] > 0 ? C[i, j] : 0, with `activation` an m×n matrix: the ReLU
    /// derivative, using (Z > 0) = (A > 0) for A = ReLU(Z).
    case reluMask(BufferSlice<Buffer>)
}

/// A hidden activation's element-wise work fused onto a product's output C[m×n]: the general
/// form of `ProductEpilogue.biasReLU` and `.reluMask` (see `Backend.matrixProduct(_:m:n:k:a:b:c:activation:)`).
/// It is a separate type, not more `ProductEpilogue` cases, so that backends switching over
/// `ProductEpilogue` keep compiling unchanged.
public enum ActivationEpilogue<Buffer> {
    /// Z[i, j] = C[i, j] + bias[j]; Z is also written to `preActivation` (m×n) when given (for an
    /// activation whose derivative needs Z); then C[i, j] = f(Z[i, j]).
    case biasActivation(BufferSlice<Buffer>, ActivationFunction, preActivation: BufferSlice<Buffer>?)
    /// C[i, j] = C[i, j] · f'(·) read from `source` (m×n): A = f(Z), or Z when
    /// `derivativeNeedsPreActivation` (GELU).
    case activationDerivative(BufferSlice<Buffer>, ActivationFunction)
}

extension ActivationEpilogue {
    /// The product epilogue that does the same in the product itself, for ReLU: bias and ReLU
    /// (forward, when Z is not kept) or the ReLU mask (backward); nil for any other case.
    public var fusedReLU: ProductEpilogue<Buffer>? {
        switch self {
        case .biasActivation(let bias, .relu, preActivation: nil): .biasReLU(bias)
        case .activationDerivative(let source, .relu): .reluMask(source)
        default: nil
        }
    }
}

/// How targets are stored: one class index per row, or one value per output column.
public enum TargetEncoding: String, Sendable {
    /// One Float32 per row holding an integer class index in 0..<columns. A row whose value is
    /// no class (a fraction, a negative, NaN, ±∞, ≥ columns) makes the loss sum NaN on every
    /// backend, whatever the loss.
    case classIndices
    /// `columns` values per row: regression targets, or one-hot / probability rows.
    case dense

    /// Floats per row of targets for a network with `outputs` outputs.
    @inlinable
    public func width(outputs: Int) -> Int {
        self == .classIndices ? 1 : outputs
    }
}

/// Adam's constants (SEED.md §4): α, β1, β2, ε; and AdamW's decoupled weight decay λ and
/// gradient clipping by global norm, both off by default (then the update is exactly the seed's).
public struct AdamHyperparameters: Sendable, Equatable, Codable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    /// AdamW's λ: θ ← θ·(1 − α·λ) before the Adam update, for every parameter (biases
    /// included, as torch.optim.AdamW does by default). 0 is plain Adam.
    public var weightDecay: Float
    /// When set, the gradient is scaled by min(1, c / (‖g‖ + 1e-6)) before the moments, ‖g‖
    /// being the norm of all the gradients together (torch.nn.utils.clip_grad_norm_).
    public var clipNorm: Float?

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, clipNorm: Float? = nil) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
    }

    /// Whether this is the seed's Adam: no weight decay, no clipping.
    public var isPlainAdam: Bool { weightDecay == 0 && clipNorm == nil }

    /// Bias corrections (1 − β1ᵗ, 1 − β2ᵗ) for step t, computed in Float64.
    public func biasCorrections(step: Int) -> (first: Float, second: Float) {
        let t = Double(step)
        return (Float(1 - pow(Double(beta1), t)), Float(1 - pow(Double(beta2), t)))
    }
}

/// A backend that records the operations of a whole training step once and then replays the
/// recording as one launch (CUDA graphs), patching only what changes from step to step.
/// `TrainingSession.train` runs each step through `graphed` when the backend offers it and
/// `usesStepGraphs` is on.
public protocol StepGraphCapable: Backend {
    /// Runs `body`, whose queued operations are recorded and launched as one graph. `body` must
    /// only queue device work: no downloads or waits inside.
    func graphed(_ body: () throws -> Void) throws
}
