import ArgumentParser
import MLPKit

/// `mlp train`'s options beyond the seed: the hidden activation, AdamW's weight decay, gradient
/// clipping, the learning-rate schedule, early stopping and input standardisation.
struct TrainingFeatureOptions: ParsableArguments {
    @Option(help: "The hidden activation: relu (default), leaky-relu, tanh, sigmoid or gelu (tanh form).")
    var activation: Activation?

    @Option(name: .customLong("leaky-slope"), parsing: .unconditional, help: "Leaky ReLU's slope for negative inputs (default 0.01).")
    var leakySlope: Float?

    @Option(name: .customLong("weight-decay"), parsing: .unconditional,
            help: ArgumentHelp("AdamW's decoupled weight decay λ: θ ← θ·(1 − α·λ) before each Adam step, on every parameter, biases included (as torch.optim.AdamW does by default). 0 (the default) is plain Adam.", valueName: "λ"))
    var weightDecay: Float?

    @Option(name: .customLong("clip-norm"), parsing: .unconditional,
            help: ArgumentHelp("Clip the gradient by global norm: scale it by min(1, c/(‖g‖ + 1e-6)), ‖g‖ over all parameters together, before Adam's moments (torch.nn.utils.clip_grad_norm_).", valueName: "c"))
    var clipNorm: Float?

    @Option(help: "The learning-rate schedule: constant (default), step (--step-size, --gamma) or cosine (--warmup-steps); a resumed run continues the checkpoint's.")
    var schedule: ScheduleName?

    @Option(name: .customLong("step-size"), parsing: .unconditional, help: ArgumentHelp("--schedule step: multiply the rate by --gamma every N steps.", valueName: "N"))
    var stepSize: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("--schedule step: the factor (default 0.1).", valueName: "γ"))
    var gamma: Float?

    @Option(name: .customLong("warmup-steps"), parsing: .unconditional,
            help: ArgumentHelp("--schedule cosine: raise the rate linearly over the first W steps, then follow half a cosine down to 0 at the run's last step (default 0).", valueName: "W"))
    var warmupSteps: Int?

    @Option(name: .customLong("schedule-steps"), parsing: .unconditional,
            help: ArgumentHelp("--schedule cosine: the schedule's total steps T, counted from its first step (default: this run's steps, so that resuming with --init continues to the same T).", valueName: "T"))
    var scheduleSteps: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Stop after N epochs in a row without a lower validation loss (needs --validation-split); --out gets the best epoch's model.", valueName: "N"))
    var patience: Int?

    @Option(name: .customLong("class-weight"), help: ArgumentHelp(
        "Cross-entropy: weigh each class's rows in the loss, 'balanced' (n/(C·n_c) from the training rows, as scikit-learn) or one weight per class, comma-separated; a resumed run keeps the checkpoint's.",
        valueName: "balanced|w0,w1,…"))
    var classWeight: String?

    @Option(name: .customLong("pos-weight"), help: ArgumentHelp(
        "Binary cross-entropy: weigh each output's positive term, 'balanced' (negatives/positives per output in the training rows) or one weight per output, comma-separated (torch's pos_weight); a resumed run keeps the checkpoint's.",
        valueName: "balanced|w0,w1,…"))
    var posWeight: String?

    @Option(name: .customLong("weight-column"), help: ArgumentHelp(
        "Weigh each row's loss by this column of --data (numbers ≥ 0, left out of the inputs; by number with --no-header): L = 1/B·Σ w·ℓ over each batch; validation and eval stay unweighted; a resumed run uses the column its checkpoint records.",
        valueName: "column"))
    var weightColumn: String?

    @Option(help: ArgumentHelp("Beside --x/--y: a file of one weight per row (numbers ≥ 0; .npy or .csv, one column), as --weight-column.",
                               valueName: "file"))
    var weights: String?

    @Flag(help: "Standardise each feature with the training rows' mean and standard deviation (stored in the checkpoint; eval and predict apply them).")
    var standardize = false

    @Flag(name: .customLong("standardize-target"), help: "Regression (mse): train on each target column standardised with the training rows' mean and standard deviation; predict and eval give outputs in the targets' units (stored in the checkpoint).")
    var standardizeTarget = false

    @Flag(name: .customLong("fill-missing"), help: ArgumentHelp(
        "--data's missing values (empty, NA, N/A, NaN, null, ?) in a numeric column take its mean, in a column of categories no category (stored in the checkpoint; eval and predict fill the same)."))
    var fillMissing = false

    enum ScheduleName: String, ExpressibleByArgument, CaseIterable {
        case constant, step, cosine
    }

    func validate() throws {
        try require(leakySlope.map { $0.isFinite && $0 >= 0 } ?? true, "--leaky-slope must be a non-negative number, got \(leakySlope ?? 0)")
        try require(leakySlope == nil || activation == nil || activation == .leakyReLU,
                    "--leaky-slope goes with --activation leaky-relu, not \(activation?.rawValue ?? "")")
        try require(weightDecay.map { $0.isFinite && $0 >= 0 } ?? true, "--weight-decay must be a non-negative number, got \(weightDecay ?? 0)")
        try require(clipNorm.map { $0.isFinite && $0 > 0 } ?? true, "--clip-norm must be a positive number, got \(clipNorm ?? 0)")
        try require((stepSize ?? 1) >= 1, "--step-size must be at least 1, got \(stepSize ?? 0)")
        try require(gamma.map { $0.isFinite && $0 > 0 } ?? true, "--gamma must be a positive number, got \(gamma ?? 0)")
        try require((warmupSteps ?? 0) >= 0, "--warmup-steps must be at least 0, got \(warmupSteps ?? 0)")
        try require((stepSize == nil && gamma == nil) || schedule == .step, "--step-size and --gamma go with --schedule step")
        try require((scheduleSteps ?? 1) >= 1, "--schedule-steps must be at least 1, got \(scheduleSteps ?? 0)")
        try require((warmupSteps == nil && scheduleSteps == nil) || schedule == .cosine,
                    "--warmup-steps and --schedule-steps go with --schedule cosine")
        if let scheduleSteps, let warmupSteps {
            try require(warmupSteps < scheduleSteps, "--warmup-steps \(warmupSteps) must be less than --schedule-steps \(scheduleSteps)")
        }
        try require(schedule != .step || stepSize != nil, "--schedule step needs --step-size N")
        try require((patience ?? 1) >= 1, "--patience must be at least 1, got \(patience ?? 0)")
        _ = try givenClassWeights()
        _ = try Self.weightList(posWeight, flag: "--pos-weight")
    }

    /// `--class-weight`'s list of weights (nil for none or for `balanced`).
    func givenClassWeights() throws -> [Float]? {
        try Self.weightList(classWeight, flag: "--class-weight")
    }

    /// A weight flag's list of weights (nil for none or for `balanced`).
    static func weightList(_ text: String?, flag: String) throws -> [Float]? {
        guard let text, text != "balanced" else { return nil }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let weight = Float(part.trimmed), weight.isFinite, weight >= 0 else {
                throw ValidationError("\(flag) takes balanced or non-negative weights separated by commas, got '\(part.trimmed)' in '\(text)'")
            }
            return weight
        }
    }

    /// The positive weights of a binary cross-entropy run on `training` with `outputs` outputs:
    /// --pos-weight's (for `balanced`, each output's Σ(1 − y)/Σy over the training rows, 1 for an
    /// output with no positives), or a resumed checkpoint's recorded ones; nil for none.
    func positiveWeights(training: Dataset, outputs: Int, loss: Loss, recorded: [Float]?) throws -> [Float]? {
        guard let posWeight else { return recorded }
        guard loss == .binaryCrossEntropy else {
            throw ValidationError("--pos-weight goes with --loss binary-cross-entropy (labels), not \(loss.rawValue)")
        }
        if let given = try Self.weightList(posWeight, flag: "--pos-weight") {
            guard given.count == outputs else {
                throw ValidationError("--pos-weight gives \(given.count) weights for \(outputs) outputs")
            }
            return given
        }
        let targets = Metrics.denseTargets(training, outputs: outputs)
        var positives = [Double](repeating: 0, count: outputs), negatives = [Double](repeating: 0, count: outputs)
        for row in 0..<training.rows {
            for j in 0..<outputs {
                let y = Double(targets[row * outputs + j])
                positives[j] += y
                negatives[j] += 1 - y
            }
        }
        return zip(negatives, positives).map { negative, positive in positive > 0 ? Float(negative / positive) : 1 }
    }

    /// The class weights of a run on `training` with `classes` outputs: --class-weight's (for
    /// `balanced`, n/(C·n_c) over the training rows, 1 for a class with none), or a resumed
    /// checkpoint's recorded ones; nil for none.
    func classWeights(training: Dataset, classes: Int, loss: Loss, recorded: [Float]?) throws -> [Float]? {
        guard let classWeight else { return recorded }
        guard loss == .crossEntropy else {
            throw ValidationError("--class-weight goes with --loss cross-entropy (classes), not \(loss.rawValue)")
        }
        if let given = try givenClassWeights() {
            guard given.count == classes else {
                throw ValidationError("--class-weight gives \(given.count) weights for \(classes) classes")
            }
            return given
        }
        precondition(classWeight == "balanced")
        var counts = [Int](repeating: 0, count: classes)
        for actual in Metrics.actualClasses(training) where actual < classes { counts[actual] += 1 }
        return counts.map { $0 > 0 ? Float(Double(training.rows) / Double(classes * $0)) : 1 }
    }

    /// The activation: --activation (and --leaky-slope) for a fresh model; a checkpoint's own,
    /// which these flags must agree with when given.
    func activationFunction(checkpoint: Checkpoint?) throws -> ActivationFunction {
        guard let checkpoint else {
            let kind = activation ?? (leakySlope != nil ? .leakyReLU : .relu)
            return ActivationFunction(kind, leakySlope: leakySlope ?? ActivationFunction.defaultLeakySlope)
        }
        let recorded = checkpoint.activation
        if let activation, activation != recorded.kind {
            throw CommandError("--activation \(activation.rawValue) disagrees with the checkpoint's activation \(recorded.kind.rawValue)")
        }
        if let leakySlope {
            guard let slope = recorded.leakySlope else {
                throw CommandError("--leaky-slope goes with leaky-relu, but the checkpoint's activation is \(recorded.kind.rawValue)")
            }
            guard slope == leakySlope else {
                throw CommandError("--leaky-slope \(leakySlope) disagrees with the checkpoint's slope \(slope)")
            }
        }
        return recorded
    }

    /// `base` with --weight-decay and --clip-norm when given (else the checkpoint's, in `base`).
    func hyperparameters(_ base: AdamHyperparameters) -> AdamHyperparameters {
        var result = base
        if let weightDecay { result.weightDecay = weightDecay }
        if let clipNorm { result.clipNorm = clipNorm }
        return result
    }

    /// The schedule of this run, which takes `runSteps` steps from Adam's step `start`.
    ///
    /// Without --schedule: the checkpoint's schedule, continued, or constant. With it: the
    /// checkpoint's schedule when it is of that kind and every flag given agrees with it (so
    /// repeating the first run's flags continues it); otherwise a new schedule that starts at
    /// `start`, a cosine one spanning T = --schedule-steps or else `runSteps` steps.
    /// - Returns: the schedule, and whether it continues the checkpoint's.
    func learningRateSchedule(checkpoint: Checkpoint?, start: Int, runSteps: Int) throws -> (LearningRateSchedule, continued: Bool) {
        let recorded = checkpoint?.schedule
        guard let schedule else { return (recorded ?? .constant, recorded != nil) }
        switch (schedule, recorded) {
        case (.constant, .constant?):
            return (.constant, true)
        case let (.step, .step(recordedSize, recordedGamma, _)?)
            where (stepSize ?? recordedSize) == recordedSize && (gamma ?? recordedGamma) == recordedGamma:
            return (recorded!, true)
        case let (.cosine, .cosine(recordedWarmup, recordedTotal, _)?)
            where (warmupSteps ?? recordedWarmup) == recordedWarmup && (scheduleSteps ?? recordedTotal) == recordedTotal:
            return (recorded!, true)
        case (.constant, _):
            return (.constant, false)
        case (.step, _):
            return (.step(stepSize: stepSize ?? 1, gamma: gamma ?? 0.1, start: start), false)
        case (.cosine, _):
            let total = scheduleSteps ?? runSteps, warmup = warmupSteps ?? 0
            guard warmup < total else {
                throw CommandError("--warmup-steps \(warmup) must be less than the schedule's \(total) steps")
            }
            return (.cosine(warmupSteps: warmup, totalSteps: total, start: start), false)
        }
    }

    /// The standardisation of a run: a checkpoint's own (its parameters were trained on
    /// standardised inputs), or with --standardize one fitted to the training rows.
    func standardization(training: Dataset, checkpoint: Checkpoint?) throws -> Standardization? {
        if let checkpoint {
            if standardize, checkpoint.standardization == nil {
                throw CommandError("--standardize: the checkpoint was trained on raw inputs; a resumed run cannot start standardising them")
            }
            return checkpoint.standardization
        }
        return standardize ? try Standardization(fitting: training.inputs, features: training.features) : nil
    }

    /// The target standardisation of a run: a checkpoint's own, or with --standardize-target one
    /// fitted to the training rows' targets (regression with mse only).
    func targetStandardization(training: Dataset, loss: Loss, checkpoint: Checkpoint?) throws -> Standardization? {
        if standardizeTarget, loss != .meanSquaredError {
            throw ValidationError("--standardize-target goes with --loss mse (regression), not \(loss.rawValue)")
        }
        if let checkpoint {
            if standardizeTarget, checkpoint.targetStandardization == nil {
                throw CommandError("--standardize-target: the checkpoint was trained on raw targets; a resumed run cannot start standardising them")
            }
            return checkpoint.targetStandardization
        }
        return standardizeTarget ? try Standardization(fitting: training.targets, features: training.targetWidth) : nil
    }
}

extension Activation: ExpressibleByArgument {}

/// The best epoch seen by early stopping, and where the run stopped.
struct EarlyStoppingResult {
    var bestEpoch: Int
    var bestValidationLoss: Double
    /// The epoch after which the run stopped, nil when it ran its full length.
    var stoppedAfterEpoch: Int?
}
