/// Adam's state: the step count t and the moments m and v, in the parameters' flat layout.
public struct OptimizerState: Sendable, Equatable {
    /// Steps taken so far (the last t used; the next step uses t + 1).
    public var step: Int
    public var firstMoment: [Float]
    public var secondMoment: [Float]

    public init(step: Int, firstMoment: [Float], secondMoment: [Float]) {
        self.step = step
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
    }

    /// The most steps Adam counts: 2^53. Bias correction raises β1 and β2 to the power t in
    /// Float64, where every integer up to 2^53 is exact, and the step count must be far from
    /// `Int.max` so that t + 1 never overflows. Checkpoints with a larger `adam.step` are refused
    /// when loaded, and a session refuses to go past it.
    public static let maximumStep = 1 << 53

    /// A fresh state for `count` parameters: t = 0, m = v = 0 (empty moments for a count ≤ 0).
    public static func zero(count: Int) -> OptimizerState {
        let count = max(count, 0)
        return OptimizerState(step: 0, firstMoment: [Float](repeating: 0, count: count), secondMoment: [Float](repeating: 0, count: count))
    }
}

/// A data set resident on a backend.
public struct DeviceDataset<B: Backend> {
    public let inputs: B.Buffer
    public let targets: B.Buffer
    public let rows: Int
    public let features: Int
    public let targetEncoding: TargetEncoding
    public let targetWidth: Int
    /// For class indices, the number of classes the labels imply (checked against the model of
    /// the session that uses the data, which need not be the one that uploaded it).
    let labelClassCount: Int?
    /// The rows' weights (``Dataset/rowWeights``), which training steps apply; nil: none.
    public let rowWeights: B.Buffer?
}

/// A model, its gradients and Adam's state on a backend, with a workspace for batches of up to
/// `batchCapacity` rows: SEED.md's training step, written once for every backend.
public final class TrainingSession<B: Backend> {
    public let backend: B
    public let layout: LayerLayout
    public let activation: ActivationFunction
    public let loss: Loss
    /// Applied to every input row the session uploads or predicts from (the model's).
    public let standardization: Standardization?
    /// The model's target standardisation: targets are standardised on upload and predictions
    /// read back in the targets' units.
    public let targetStandardization: Standardization?
    /// Adam's constants; `learningRate` is the base rate α that `schedule` scales.
    public var hyperparameters: AdamHyperparameters
    /// How the learning rate follows from `hyperparameters.learningRate` step by step.
    public var schedule: LearningRateSchedule = .constant
    /// Adam's t: the number of steps taken.
    public private(set) var step: Int
    public let batchCapacity: Int
    /// Whether `train` replays each step as one recorded graph on backends that can
    /// (`StepGraphCapable`, i.e. CUDA). Results are the same either way.
    public var usesStepGraphs = true
    /// Times each phase of the training steps that follow (nil, the default: none), synchronising
    /// the backend at the end of each phase; `mlp bench --breakdown`. Its layer count must be
    /// the model's (else `trainStep` throws). Steps are not replayed as graphs while it is set.
    public var phaseClock: StepPhaseClock?
    /// Cross-entropy class weights (one per class) that training steps scale each row's loss and
    /// gradient by (``setClassWeights(_:)``); nil, the default, is the seed's loss. Evaluation is
    /// never weighted.
    public var classWeights: [Float]? { loss == .crossEntropy ? outputWeights : nil }
    /// Binary cross-entropy's positive weights (one per output, ``setPositiveWeights(_:)``); nil,
    /// the default, is the plain loss. Evaluation is never weighted.
    public var positiveWeights: [Float]? { loss == .binaryCrossEntropy ? outputWeights : nil }
    /// The class or positive weights (which, the loss tells), and on the backend (the loss
    /// gradient's `classWeights`).
    private var outputWeights: [Float]?
    private var classWeightBuffer: B.Buffer?

    // θ, dL/dθ, m and v, each one flat buffer in the layout W1, b1, W2, b2, …, W1 kept in
    // `firstWeightPanels` where the backend keeps it so (in all four)
    let parameters: B.Buffer
    let gradients: B.Buffer
    let firstMoment: B.Buffer
    let secondMoment: B.Buffer
    // The workspace: A_0 (the gathered input batch), A_1 … A_L (A_L holds Z_L), two buffers for
    // dZ, the gathered targets, a row-order list and one loss sum per step of an epoch.
    let activations: [B.Buffer]
    /// Z_1 … Z_{L−1} (index i − 1), kept only when the activation's derivative needs Z (GELU).
    let preActivations: [B.Buffer]
    let deltas: (B.Buffer, B.Buffer)
    let targetBatch: B.Buffer
    /// A batch's row weights, gathered like its targets (made for the first weighted data set).
    private var weightBatch: B.Buffer?
    private var rowOrder: B.Buffer
    private var rowOrderCapacity: Int
    private var lossSums: B.Buffer
    private var lossSumCapacity: Int
    private var lastStep: (slot: Int, rows: Int)?
    /// How the backend keeps W1 (`Backend.firstWeightPanels`; nil: in rows): in panels, the
    /// session's products and Adam say so, and every upload and read-back reorders W1's block.
    let firstWeightPanels: WeightPanels?

    /// Places `model` (and Adam's state, when resuming) on `backend`.
    /// - Throws: `ModelError` when the state does not fit the model, or the backend's errors.
    public init(
        model: MLP, backend: B, hyperparameters: AdamHyperparameters = AdamHyperparameters(),
        optimizerState: OptimizerState? = nil, batchCapacity: Int
    ) throws {
        guard batchCapacity >= 1 else {
            throw ModelError.invalidHyperparameter("batch size must be at least 1, got \(batchCapacity)")
        }
        // a batch never holds more rows than a data set may have
        guard batchCapacity <= Self.maximumBatchCapacity else {
            throw ModelError.invalidHyperparameter("batch size must be at most \(Self.maximumBatchCapacity), got \(batchCapacity)")
        }
        // each workspace buffer holds batchCapacity rows of one layer's width
        for width in model.layout.sizes {
            let (values, overflow) = batchCapacity.multipliedReportingOverflow(by: width)
            guard !overflow, values <= Int(Int32.max) else {
                throw ModelError.invalidHyperparameter(
                    "a batch of \(batchCapacity) rows of \(width) values is more than the \(Int32.max) values a workspace buffer may hold")
            }
        }
        // `parameters` is public and mutable: a model whose count no longer fits its layout is refused
        guard model.parameters.count == model.layout.parameterCount else {
            throw ModelError.parameterCount(expected: model.layout.parameterCount, got: model.parameters.count)
        }
        try Self.validate(hyperparameters)
        try model.activation.validate()
        // a backend without one of the features this run needs says so now, before any work
        for feature in BackendFeature.used(activation: model.activation, loss: model.loss, hyperparameters: hyperparameters) {
            try backend.requireSupport(feature)
        }
        let count = model.layout.parameterCount
        let state = optimizerState ?? .zero(count: count)
        guard state.firstMoment.count == count, state.secondMoment.count == count, state.step >= 0 else {
            throw ModelError.parameterCount(expected: count, got: state.firstMoment.count)
        }
        guard state.step <= OptimizerState.maximumStep else {
            throw ModelError.invalidHyperparameter("Adam's step count \(state.step) is past the limit of \(OptimizerState.maximumStep) (2^53) steps")
        }
        self.backend = backend
        layout = model.layout
        activation = model.activation
        loss = model.loss
        standardization = model.standardization
        targetStandardization = model.targetStandardization
        if let targetStandardization {
            guard model.loss == .meanSquaredError, targetStandardization.features == model.layout.outputs else {
                throw ModelError.dataShape("a target standardisation needs the mse loss and one mean and deviation per output "
                    + "(\(targetStandardization.features) for \(model.layout.outputs) outputs, loss \(model.loss.rawValue))")
            }
        }
        self.hyperparameters = hyperparameters
        step = state.step
        self.batchCapacity = batchCapacity
        parameters = try backend.makeBuffer(count: count)
        gradients = try backend.makeBuffer(count: count)
        firstMoment = try backend.makeBuffer(count: count)
        secondMoment = try backend.makeBuffer(count: count)
        activations = try layout.sizes.map { try backend.makeBuffer(count: batchCapacity * $0) }
        preActivations = model.activation.derivativeNeedsPreActivation
            ? try layout.sizes.dropFirst().dropLast().map { try backend.makeBuffer(count: batchCapacity * $0) }
            : []
        let widest = layout.sizes.dropFirst().max() ?? 1
        deltas = (try backend.makeBuffer(count: batchCapacity * widest), try backend.makeBuffer(count: batchCapacity * widest))
        targetBatch = try backend.makeBuffer(count: batchCapacity * layout.outputs)
        rowOrder = try backend.makeBuffer(count: batchCapacity)
        rowOrderCapacity = batchCapacity
        lossSums = try backend.makeBuffer(count: 1)
        lossSumCapacity = 1
        // W1 in panels where the first layer's products are the backend's panel products: a
        // product epilogue (ReLU, or a one-layer model's bias), as for reading the batch in place
        let (inputs, first) = (layout.sizes[0], layout.sizes[1])
        firstWeightPanels = (model.activation == .relu || layout.layerCount == 1)
            ? backend.firstWeightPanels(rows: first, columns: inputs, batch: batchCapacity)
                .map { WeightPanels(rows: first, columns: inputs, width: $0) }
            : nil
        try uploadParameters(model.parameters, to: parameters)
        try uploadParameters(state.firstMoment, to: firstMoment)
        try uploadParameters(state.secondMoment, to: secondMoment)
    }

    /// θ, m or v in the flat layout, W1 reordered where the backend keeps it in panels.
    private func uploadParameters(_ values: [Float], to buffer: B.Buffer) throws {
        try upload(firstWeightPanels?.reorder(values, packs: true) ?? values, to: buffer)
    }

    /// The most rows a batch (and so `batchCapacity`) may have: 2^24, a data set's own limit.
    public static var maximumBatchCapacity: Int { Dataset.maximumRows }

    /// The most per-step loss sums `reserveLossSums` makes room for: 2^24, the most steps an
    /// epoch can have.
    public static var maximumLossSums: Int { Dataset.maximumRows }

    private func upload(_ values: [Float], to buffer: B.Buffer) throws {
        try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
    }

    static func validate(_ hyperparameters: AdamHyperparameters) throws {
        let h = hyperparameters
        guard h.learningRate.isFinite, h.learningRate >= 0 else {
            throw ModelError.invalidHyperparameter("learning rate must be a non-negative number, got \(h.learningRate)")
        }
        guard h.beta1 >= 0, h.beta1 < 1, h.beta2 >= 0, h.beta2 < 1 else {
            throw ModelError.invalidHyperparameter("beta1 and beta2 must lie in [0, 1), got \(h.beta1) and \(h.beta2)")
        }
        guard h.epsilon.isFinite, h.epsilon > 0 else {
            throw ModelError.invalidHyperparameter("epsilon must be positive, got \(h.epsilon)")
        }
        guard h.weightDecay.isFinite, h.weightDecay >= 0 else {
            throw ModelError.invalidHyperparameter("weight decay must be a non-negative number, got \(h.weightDecay)")
        }
        if let clipNorm = h.clipNorm, !(clipNorm.isFinite && clipNorm > 0) {
            throw ModelError.invalidHyperparameter("the clipping norm must be a positive number, got \(clipNorm)")
        }
    }

    // MARK: - Data on the device

    /// Copies `dataset` to the backend.
    /// - Throws: `ModelError.dataShape` when it does not fit the model.
    public func upload(_ dataset: Dataset) throws -> DeviceDataset<B> {
        try dataset.validate(for: layout, loss: loss)
        let inputs = try backend.makeBuffer(count: dataset.inputs.count)
        let targets = try backend.makeBuffer(count: dataset.targets.count)
        try upload(try standardization?.apply(dataset.inputs) ?? dataset.inputs, to: inputs)
        try upload(try targetStandardization?.apply(dataset.targets) ?? dataset.targets, to: targets)
        let weights = try dataset.rowWeights.map { weights in
            let buffer = try backend.makeBuffer(count: weights.count)
            try upload(weights, to: buffer)
            return buffer
        }
        return DeviceDataset(inputs: inputs, targets: targets, rows: dataset.rows, features: dataset.features,
                             targetEncoding: dataset.targetEncoding, targetWidth: dataset.targetWidth,
                             labelClassCount: dataset.targetEncoding == .classIndices ? dataset.labelClassCount : nil,
                             rowWeights: weights)
    }

    /// Checks that `data` (perhaps uploaded by another session) fits this session's model.
    /// - Throws: `ModelError.dataShape` naming the mismatch.
    func checkFits(_ data: DeviceDataset<B>) throws {
        try layout.checkFits(features: data.features, encoding: data.targetEncoding, targetWidth: data.targetWidth,
                             labelClassCount: data.labelClassCount, unknownLabel: "?")
    }

    /// Sets the row order used by `trainStep(on:positions:)` (an epoch's permutation).
    public func setRowOrder(_ order: [Int]) throws {
        if order.count > rowOrderCapacity {
            rowOrder = try backend.makeBuffer(count: order.count)
            rowOrderCapacity = order.count
        }
        try upload(order.map { Float($0) }, to: rowOrder)
    }

    /// Makes room for `count` per-step loss sums (one epoch's worth).
    /// - Throws: `ModelError.invalidHyperparameter` for a negative count or one over
    ///   `maximumLossSums`, and the backend's errors.
    public func reserveLossSums(_ count: Int) throws {
        guard count >= 0, count <= Self.maximumLossSums else {
            throw ModelError.invalidHyperparameter("room for \(count) loss sums was asked for; it must be from 0 to \(Self.maximumLossSums)")
        }
        if count > lossSumCapacity {
            lossSums = try backend.makeBuffer(count: count)
            lossSumCapacity = count
        }
    }

    // MARK: - The training step (SEED.md §5)

    /// One training step on the rows at `positions` of the current row order: forward pass,
    /// loss, backward pass, Adam. The batch's loss sum stays on the backend in slot `lossSlot`
    /// until `lossSums(count:)` reads it.
    // A copy specialised for the CPU backend, chosen at run time: callers in other modules (the
    // `mlp` tool, the benchmark's generic `run`) otherwise run the generic step, whose generic
    // metadata look-ups and value-witness copies cost about 5% of the tiny configuration's step.
    @_specialize(where B == CPUBackend)
    public func trainStep(on data: DeviceDataset<B>, positions: Range<Int>, gathered: Bool, lossSlot: Int = 0) throws {
        try checkFits(data)
        let rows = positions.count
        guard rows >= 1, rows <= batchCapacity, positions.lowerBound >= 0, positions.upperBound <= data.rows else {
            throw ModelError.dataShape("batch \(positions) does not fit \(data.rows) rows with capacity \(batchCapacity)")
        }
        guard lossSlot >= 0, lossSlot < lossSumCapacity else {
            throw ModelError.dataShape("loss slot \(lossSlot) outside 0..<\(lossSumCapacity)")
        }
        // t + 1 below must neither overflow nor pass the step count Adam keeps exact
        guard step < OptimizerState.maximumStep else {
            throw ModelError.invalidHyperparameter("Adam's step count is at its limit of \(OptimizerState.maximumStep) (2^53) steps; no further step can be taken")
        }
        if let phaseClock {
            guard phaseClock.layerCount == layout.layerCount else {
                throw ModelError.invalidHyperparameter(
                    "a phase clock for \(phaseClock.layerCount) layers cannot time a model with \(layout.layerCount)")
            }
            try backend.synchronize()
            phaseClock.start()
        }
        defer { phaseClock?.finish() }
        // X, Y (and the rows' weights): gathered by the row order, or read in place when the rows are consecutive
        let X: BufferSlice<B.Buffer>, Y: BufferSlice<B.Buffer>
        var W: BufferSlice<B.Buffer>?
        var selected: SelectedRows<B.Buffer>?
        if gathered {
            let indices = BufferSlice(rowOrder, offset: positions.lowerBound)
            if readsInputsInPlace(rows: rows) {
                // the first layer's two products read the batch's rows where they lie: no copy
                selected = SelectedRows(source: BufferSlice(data.inputs), width: data.features, indices: indices)
            } else {
                try backend.gatherRows(BufferSlice(data.inputs), width: data.features, indices: indices, count: rows,
                                       into: BufferSlice(activations[0]))
            }
            try backend.gatherRows(BufferSlice(data.targets), width: data.targetWidth, indices: indices, count: rows,
                                   into: BufferSlice(targetBatch))
            if let weights = data.rowWeights {
                let batch = try weightBatch ?? backend.makeBuffer(count: batchCapacity)
                weightBatch = batch
                try backend.gatherRows(BufferSlice(weights), width: 1, indices: indices, count: rows, into: BufferSlice(batch))
                W = BufferSlice(batch)
            }
            X = BufferSlice(activations[0])
            Y = BufferSlice(targetBatch)
        } else {
            X = BufferSlice(data.inputs, offset: positions.lowerBound * data.features)
            Y = BufferSlice(data.targets, offset: positions.lowerBound * data.targetWidth)
            W = data.rowWeights.map { BufferSlice($0, offset: positions.lowerBound) }
        }
        lastStep = (lossSlot, rows)
        try endPhase(.batch)
        let ZL = try forward(X, rows: rows, selected: selected)
        // dZ_L = dL/dZ_L (already divided by B), and the batch's loss sum
        var dZ = BufferSlice(deltas.0)
        try backend.lossGradient(loss, targets: data.targetEncoding, output: ZL, target: Y, rows: rows,
                                 columns: layout.outputs, gradient: dZ, lossSum: BufferSlice(lossSums, offset: lossSlot),
                                 classWeights: classWeightBuffer.map { BufferSlice($0) }, rowWeights: W)
        try endPhase(.loss)
        try backward(X, rows: rows, selected: selected, dZL: &dZ)
        // Adam over every parameter at once, t = t + 1, at the schedule's rate for t
        try schedule.validate()
        step += 1
        var h = hyperparameters
        h.learningRate = schedule.rate(base: h.learningRate, step: step)
        // plain Adam, or AdamW's decay and clipping by global norm (SEED.md's Adam when both are
        // off), told the layout so that a backend may split it as it splits the layers' products,
        // and how it keeps W1 (the default, for W1 in rows, runs `adamUpdate(…, layout:, …)`)
        try backend.adamUpdate(parameters: BufferSlice(parameters), gradients: BufferSlice(gradients),
                               firstMoment: BufferSlice(firstMoment), secondMoment: BufferSlice(secondMoment),
                               layout: layout, firstWeightPanels: firstWeightPanels?.width, hyperparameters: h, step: step)
        try endPhase(.optimizer)
    }

    /// Ends `phase` on the phase clock, if any, once the backend has done its work.
    @inline(__always)
    private func endPhase(_ phase: StepPhase) throws {
        guard let phaseClock else { return }
        try backend.synchronize()
        phaseClock.mark(phase)
    }

    /// Sets the class weights training steps use (nil: none). Each row's loss and gradient are
    /// scaled by its class's weight (a dense target row's by Σ_j w_j·y_j), so the training loss
    /// is 1/B·Σ w·CE, the weighted sum over the batch divided by its rows (Keras' `class_weight`).
    /// - Throws: `ModelError.invalidHyperparameter` unless the loss is cross-entropy and there
    ///   is one finite, non-negative weight per output.
    public func setClassWeights(_ weights: [Float]?) throws {
        try setOutputWeights(weights, loss: .crossEntropy, what: "class weights", per: "classes")
    }

    /// Sets binary cross-entropy's positive weights (nil: none), one per output: output j's loss
    /// is −[p_j·y·log σ(z) + (1 − y)·log(1 − σ(z))] in training steps (PyTorch's
    /// `BCEWithLogitsLoss(pos_weight=…)`), so that p_j = (negatives)/(positives) makes a rare
    /// label's positives count as much as its negatives.
    /// - Throws: `ModelError.invalidHyperparameter` unless the loss is binary cross-entropy and
    ///   there is one finite, non-negative weight per output.
    public func setPositiveWeights(_ weights: [Float]?) throws {
        try setOutputWeights(weights, loss: .binaryCrossEntropy, what: "positive weights", per: "outputs")
    }

    /// One weight per output for the loss gradient's `classWeights`, checked for `required`'s loss.
    private func setOutputWeights(_ weights: [Float]?, loss required: Loss, what: String, per: String) throws {
        guard let weights else {
            // none for this session's loss: nothing to clear (another loss has no such weights)
            if loss == required { (outputWeights, classWeightBuffer) = (nil, nil) }
            return
        }
        guard loss == required else {
            throw ModelError.invalidHyperparameter("\(what) go with \(required.rawValue), not \(loss.rawValue)")
        }
        guard weights.count == layout.outputs else {
            throw ModelError.invalidHyperparameter("\(weights.count) \(what) for a model with \(layout.outputs) \(per)")
        }
        guard weights.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw ModelError.invalidHyperparameter("\(what) must be finite and not negative")
        }
        let buffer = try classWeightBuffer ?? backend.makeBuffer(count: layout.outputs)
        try upload(weights, to: buffer)
        (outputWeights, classWeightBuffer) = (weights, buffer)
    }

    /// The learning rate step t uses: the schedule applied to the base rate.
    /// - Throws: `ModelError.invalidHyperparameter` when the schedule is invalid.
    public func learningRate(step t: Int) throws -> Float {
        try schedule.validate()
        return schedule.rate(base: hyperparameters.learningRate, step: t)
    }

    /// Whether the batch's input rows are read where they lie in the data (`SelectedRows`) by
    /// the first layer's two products instead of gathered first: where the backend reads both
    /// (the forward product, NT, and the weight gradient, TN) in place, and the first layer's
    /// epilogue is a product epilogue (ReLU, or a one-layer model's bias).
    func readsInputsInPlace(rows: Int) -> Bool {
        let (inputs, first) = (layout.sizes[0], layout.sizes[1])
        return (activation == .relu || layout.layerCount == 1)
            && backend.readsRowsInPlace(.nt, m: rows, n: first, k: inputs)
            && backend.readsRowsInPlace(.tn, m: first, n: inputs, k: rows)
    }

    /// Z_i = A_{i−1} · W_iᵀ + b_i and A_i = f(Z_i) for i < L (ReLU by default); returns Z_L.
    /// For ReLU the product's `.biasReLU` epilogue, else the activation epilogue, which also
    /// keeps Z_i when the derivative needs it. With `selected`, the first product reads the
    /// batch's rows there (`X` is then not read).
    func forward(_ X: BufferSlice<B.Buffer>, rows: Int, selected: SelectedRows<B.Buffer>? = nil) throws -> BufferSlice<B.Buffer> {
        var A = X
        for i in 1...layout.layerCount {
            let W = BufferSlice(parameters, offset: layout.weightOffsets[i - 1])
            let b = BufferSlice(parameters, offset: layout.biasOffsets[i - 1])
            let Z = BufferSlice(activations[i])
            let (m, n, k) = (rows, layout.sizes[i], layout.sizes[i - 1])
            if i == 1, firstWeightPanels != nil {
                // W1 in panels: a ReLU network's first layer, or a one-layer model's only one
                let epilogue: ProductEpilogue<B.Buffer> = layout.layerCount == 1 ? .bias(b) : .biasReLU(b)
                try backend.panelledProduct(m: m, n: n, k: k, input: selected.map { .selected($0) } ?? .matrix(A), panels: W, c: Z,
                                            epilogue: epilogue)
            } else if i == 1, let selected {
                let epilogue: ProductEpilogue<B.Buffer> = layout.layerCount == 1 ? .bias(b) : .biasReLU(b)
                try backend.matrixProduct(.nt, m: m, n: n, k: k, rows: selected, other: W, c: Z, epilogue: epilogue)
            } else if i == layout.layerCount {
                try backend.matrixProduct(.nt, m: m, n: n, k: k, a: A, b: W, c: Z, epilogue: .bias(b))
            } else if activation == .relu {
                try backend.matrixProduct(.nt, m: m, n: n, k: k, a: A, b: W, c: Z, epilogue: .biasReLU(b))
            } else {
                let kept = preActivations.isEmpty ? nil : BufferSlice(preActivations[i - 1])
                try backend.matrixProduct(.nt, m: m, n: n, k: k, a: A, b: W, c: Z,
                                          activation: .biasActivation(b, activation, preActivation: kept))
            }
            A = Z
            try endPhase(.forward(i))
        }
        return A
    }

    /// From dZ_L back to dW_1: dW_i = dZ_iᵀ · A_{i−1}, db_i = Σ_rows dZ_i,
    /// dZ_{i−1} = (dZ_i · W_i) ⊙ f'(Z_{i−1}), for ReLU (A_{i−1} > 0). With `selected`, dW_1's
    /// product reads the batch's rows there (`X` is then not read).
    func backward(_ X: BufferSlice<B.Buffer>, rows: Int, selected: SelectedRows<B.Buffer>? = nil,
                  dZL: inout BufferSlice<B.Buffer>) throws {
        var dZ = dZL
        var spare = BufferSlice(deltas.1)
        for i in stride(from: layout.layerCount, through: 1, by: -1) {
            let APrevious = i == 1 ? X : BufferSlice(activations[i - 1])
            let dW = BufferSlice(gradients, offset: layout.weightOffsets[i - 1])
            let db = BufferSlice(gradients, offset: layout.biasOffsets[i - 1])
            // the bias gradient first, while dZ_i (just written by the loss or the product below)
            // is still in the cache: on the 2-core machine wide's 512×2048 sums took 248 against
            // 329 µs after the weight gradient's product, mnist's 4 against 8 µs (whole steps:
            // within their noise)
            func weightGradient() throws {
                try backend.columnSums(dZ, rows: rows, columns: layout.sizes[i], into: db)
                if i == 1, firstWeightPanels != nil {
                    try backend.panelledWeightGradient(rows: layout.sizes[1], columns: layout.sizes[0], batch: rows, delta: dZ,
                                                       input: selected.map { .selected($0) } ?? .matrix(X), into: dW)
                } else if i == 1, let selected {
                    try backend.matrixProduct(.tn, m: layout.sizes[i], n: layout.sizes[i - 1], k: rows, rows: selected, other: dZ,
                                              c: dW, epilogue: .none)
                } else {
                    try backend.matrixProduct(.tn, m: layout.sizes[i], n: layout.sizes[i - 1], k: rows, a: dZ, b: APrevious,
                                              c: dW, epilogue: .none)
                }
            }
            guard i > 1 else {
                try weightGradient()
                try endPhase(.backward(1))
                break
            }
            let W = BufferSlice(parameters, offset: layout.weightOffsets[i - 1])
            let (m, n, k) = (rows, layout.sizes[i - 1], layout.sizes[i])
            func delta() throws {
                if activation == .relu {
                    try backend.matrixProduct(.nn, m: m, n: n, k: k, a: dZ, b: W, c: spare, epilogue: .reluMask(APrevious))
                } else {
                    // f' from A_{i−1}, or from the kept Z_{i−1} (GELU)
                    let source = preActivations.isEmpty ? APrevious : BufferSlice(preActivations[i - 2])
                    try backend.matrixProduct(.nn, m: m, n: n, k: k, a: dZ, b: W, c: spare,
                                              activation: .activationDerivative(source, activation))
                }
            }
            // dW_i and dZ_{i−1} read the same dZ_i and write different buffers: at once where the
            // backend prefers (two mid-size products, one a thread), else one after the other
            if backend.runsConcurrently(multiplyAdds: BLASLibrary.multiplyAdds(m: m, n: n, k: k)) {
                try backend.concurrently { task in
                    if task == 0 { try delta() } else { try weightGradient() }
                }
            } else {
                try weightGradient()
                try delta()
            }
            swap(&dZ, &spare)
            try endPhase(.backward(i))
        }
    }

    // MARK: - Reading results back

    /// The loss sums of slots 0..<count (each the sum over its batch's rows).
    /// - Throws: `ModelError.dataShape` unless 0 ≤ count ≤ the slots reserved.
    public func lossSums(count: Int) throws -> [Float] {
        guard count >= 0, count <= lossSumCapacity else {
            throw ModelError.dataShape("\(count) loss sums were asked for; there are \(lossSumCapacity) slots")
        }
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(lossSums), count: count, into: $0) }
        return values
    }

    /// The mean loss of the last training step's batch (reads it back from the backend).
    public func lastLoss() throws -> Double? {
        guard let lastStep else { return nil }
        return Double(try lossSums(count: lastStep.slot + 1)[lastStep.slot]) / Double(lastStep.rows)
    }

    /// The flat gradient of the last step (W1, b1, …).
    public func gradientValues() throws -> [Float] {
        try downloadParameters(gradients)
    }

    /// The model with its current parameters.
    public func model() throws -> MLP {
        var model = try MLP(layerSizes: layout.sizes, activation: activation, loss: loss, parameters: try downloadParameters(parameters),
                            standardization: standardization)
        model.targetStandardization = targetStandardization
        return model
    }

    /// Adam's current state.
    public func optimizerState() throws -> OptimizerState {
        OptimizerState(step: step, firstMoment: try downloadParameters(firstMoment), secondMoment: try downloadParameters(secondMoment))
    }

    /// θ, dL/dθ, m or v in the flat layout, W1 in rows whichever way the backend keeps it.
    private func downloadParameters(_ buffer: B.Buffer) throws -> [Float] {
        let values = try download(buffer)
        return firstWeightPanels?.reorder(values, packs: false) ?? values
    }

    private func download(_ buffer: B.Buffer) throws -> [Float] {
        var values = [Float](repeating: 0, count: layout.parameterCount)
        try values.withUnsafeMutableBufferPointer {
            try backend.download(BufferSlice(buffer), count: layout.parameterCount, into: $0)
        }
        return values
    }

    // MARK: - Evaluation and inference

    /// The seed's loss over every row of `data` (batches of `batchCapacity`), and for
    /// cross-entropy the fraction of rows whose largest output is the target class; for binary
    /// cross-entropy the fraction of labels predicted right at threshold 0.5 (σ(z) > 0.5, that
    /// is z > 0, against y ≥ 0.5), over rows × outputs labels.
    /// - Throws: `ModelError.dataShape` when `data` has no rows or does not fit the model.
    public func evaluate(_ data: DeviceDataset<B>) throws -> (loss: Double, accuracy: Double?) {
        try checkFits(data)
        guard data.rows >= 1 else { throw ModelError.dataShape("the data to evaluate has no rows") }
        var lossTotal = 0.0, correct = 0
        var outputs = [Float](repeating: 0, count: batchCapacity * layout.outputs)
        var targets = [Float](repeating: 0, count: batchCapacity * data.targetWidth)
        let classification = loss.isClassification
        try reserveLossSums(1)
        var start = 0
        while start < data.rows {
            let rows = min(batchCapacity, data.rows - start)
            let X = BufferSlice(data.inputs, offset: start * data.features)
            let Y = BufferSlice(data.targets, offset: start * data.targetWidth)
            let ZL = try forward(X, rows: rows)
            try backend.lossGradient(loss, targets: data.targetEncoding, output: ZL, target: Y, rows: rows,
                                     columns: layout.outputs, gradient: BufferSlice(deltas.0), lossSum: BufferSlice(lossSums))
            lossTotal += Double(try lossSums(count: 1)[0])
            if classification {
                try outputs.withUnsafeMutableBufferPointer { try backend.download(ZL, count: rows * layout.outputs, into: $0) }
                try targets.withUnsafeMutableBufferPointer { try backend.download(Y, count: rows * data.targetWidth, into: $0) }
                if loss == .binaryCrossEntropy {
                    for row in 0..<rows {
                        for j in 0..<layout.outputs {
                            let y: Float = data.targetEncoding == .classIndices
                                ? (Int(targets[row]) == j ? 1 : 0) : targets[row * data.targetWidth + j]
                            if Metrics.labelIsRight(output: outputs[row * layout.outputs + j], target: y) { correct += 1 }
                        }
                    }
                    start += rows
                    continue
                }
                for row in 0..<rows {
                    let predicted = Metrics.argmax(outputs[(row * layout.outputs)..<((row + 1) * layout.outputs)])
                    let actual = data.targetEncoding == .classIndices
                        ? Int(targets[row])
                        : Metrics.argmax(targets[(row * data.targetWidth)..<((row + 1) * data.targetWidth)])
                    if predicted == actual { correct += 1 }
                }
            }
            start += rows
        }
        let labels = loss == .binaryCrossEntropy ? data.rows * layout.outputs : data.rows
        return (lossTotal / Double(data.rows), classification ? Double(correct) / Double(labels) : nil)
    }

    /// Z_L for every row of `inputs` (row-major, `layout.inputs` per row), in batches.
    /// The model's standardisation, when it has one, is applied first, and with a target
    /// standardisation the outputs come back in the targets' units (Z_L · deviation + mean).
    public func predict(_ rawInputs: [Float]) throws -> [Float] {
        let features = layout.inputs
        guard rawInputs.count % features == 0 else {
            throw ModelError.dataShape("\(rawInputs.count) values do not make rows of \(features) inputs")
        }
        let inputs = try standardization?.apply(rawInputs) ?? rawInputs
        let rows = inputs.count / features
        var outputs = [Float](repeating: 0, count: rows * layout.outputs)
        var start = 0
        while start < rows {
            let count = min(batchCapacity, rows - start)
            try inputs.withUnsafeBufferPointer {
                try backend.upload(UnsafeBufferPointer(rebasing: $0[(start * features)..<((start + count) * features)]),
                                   to: BufferSlice(activations[0]))
            }
            let ZL = try forward(BufferSlice(activations[0]), rows: count)
            try outputs.withUnsafeMutableBufferPointer {
                try backend.download(ZL, count: count * layout.outputs,
                                     into: UnsafeMutableBufferPointer(rebasing: $0[(start * layout.outputs)...]))
            }
            start += count
        }
        return try targetStandardization?.invert(outputs) ?? outputs
    }
}
