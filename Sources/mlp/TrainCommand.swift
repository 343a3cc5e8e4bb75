import ArgumentParser
import MLPKit
#if canImport(Glibc)
import Glibc
#endif

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a data set and save it as a safetensors checkpoint.",
        discussion: """
            Examples:
              mlp train --data iris.csv --target species --hidden 16,16 --epochs 50 \\
                --out iris.safetensors
              mlp train --x train-images-idx3-ubyte --y train-labels-idx1-ubyte \\
                --validation-split 0.1
            """
    )

    @OptionGroup var data: DataOptions

    @Option(parsing: .unconditional, help: "Hidden layer sizes, comma-separated (input and output sizes come from the data; default 256,128).")
    var hidden: String?

    @Option(help: "mse, cross-entropy or binary-cross-entropy (sigmoid outputs for 0/1 or multi-label targets; default: cross-entropy for one integer target column or integer one-hot rows, else mse).")
    var loss: Loss?

    @Option(parsing: .unconditional, help: "Passes over the training data (default 10).")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "An exact number of steps, instead of --epochs.")
    var steps: Int?

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Rows per step (default 128).")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Adam's learning rate α (default 0.001).")
    var lr: Float?

    @Option(parsing: .unconditional, help: "Adam's β1 (default 0.9).")
    var beta1: Float?

    @Option(parsing: .unconditional, help: "Adam's β2 (default 0.999).")
    var beta2: Float?

    @Option(parsing: .unconditional, help: "Adam's ε (default 1e-8).")
    var eps: Float?

    @Option(parsing: .unconditional, help: "Seeds the initialisation, the shuffling and the validation split (default 0).")
    var seed: UInt64?

    @Flag(name: .customLong("no-shuffle"), help: "Take batches in file order instead of shuffling each epoch.")
    var noShuffle = false

    @Option(help: ArgumentHelp("Start from this checkpoint: its architecture wins, and its Adam state resumes the run.", valueName: "checkpoint"))
    var `init`: String?

    @Option(name: .customLong("validation-split"), parsing: .unconditional, help: "Hold out this fraction of the rows and report its loss and accuracy each epoch.")
    var validationSplit: Double?

    @Option(name: .customLong("validation-data"),
            help: ArgumentHelp("Report the loss and accuracy of this CSV each epoch instead (the columns of --data, in any order; read as the model reads new rows).",
                               valueName: "file"))
    var validationData: String?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Cross-validate first: K models, each trained on all rows but one K-th (fills and standardisation from those rows) and validated on that K-th; their validation loss (and accuracy), mean and sd; then the model to save, trained on every row.",
        valueName: "K"))
    var folds: Int?

    @Option(name: .customLong("validation-x"), help: ArgumentHelp("Beside --x/--y: inputs of rows to report the loss of each epoch (with --validation-y).", valueName: "file"))
    var validationX: String?

    @Option(name: .customLong("validation-y"), help: ArgumentHelp("The targets of --validation-x's rows.", valueName: "file"))
    var validationY: String?

    @Option(help: "auto (a CUDA GPU when one is usable, else the CPU), cpu, opencl or cuda.")
    var device: DeviceChoice = .auto

    @Option(help: ArgumentHelp("Where to save the checkpoint.", valueName: "file"))
    var out: String = "model.safetensors"

    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional,
            help: ArgumentHelp("Also save the checkpoint to --out every N steps, atomically, after checking the model is finite.", valueName: "N"))
    var checkpointEvery: Int?

    @Option(help: ArgumentHelp("Write the loss (and accuracy) per epoch as an SVG chart.", valueName: "file.svg"))
    var plot: String?

    @Option(help: ArgumentHelp("Write each epoch's figures as CSV: epoch, step, training loss (and accuracy), validation loss (and accuracy), learning rate, seconds.",
                               valueName: "file.csv"))
    var history: String?

    @Flag(help: "Print one JSON object with the results at the end (and no progress lines).")
    var json = false

    @OptionGroup(title: "Beyond the seed") var features: TrainingFeatureOptions

    func validate() throws {
        if let folds {
            try require(folds >= 2, "--folds must be at least 2, got \(folds)")
            try require(validationSplit == nil && validationData == nil && validationX == nil,
                        "--folds validates on each fold in turn: leave out --validation-split, --validation-data and --validation-x")
            try require(features.patience == nil, "--patience goes with one validation set, not --folds")
            try require(`init` == nil, "--folds cross-validates a fresh model, not a resumed one (--init)")
        }
        try require(epochs == nil || steps == nil, "use --epochs or --steps, not both")
        try require((steps ?? 1) <= OptimizerState.maximumStep, "--steps must be at most 2^53, got \(steps ?? 0)")
        try require((epochs ?? 1) >= 1, "--epochs must be at least 1, got \(epochs ?? 0)")
        try require((steps ?? 1) >= 1, "--steps must be at least 1, got \(steps ?? 0)")
        try require((batchSize ?? 1) >= 1, "--batch-size must be at least 1, got \(batchSize ?? 0)")
        try require((checkpointEvery ?? 1) >= 1, "--checkpoint-every must be at least 1, got \(checkpointEvery ?? 0)")
        try require(lr.map { $0.isFinite && $0 >= 0 } ?? true, "--lr must be a non-negative number, got \(lr ?? 0)")
        try require(beta1.map { $0 >= 0 && $0 < 1 } ?? true, "--beta1 must lie in [0, 1), got \(beta1 ?? 0)")
        try require(beta2.map { $0 >= 0 && $0 < 1 } ?? true, "--beta2 must lie in [0, 1), got \(beta2 ?? 0)")
        try require(eps.map { $0.isFinite && $0 > 0 } ?? true, "--eps must be positive, got \(eps ?? 0)")
        try require(validationSplit.map { $0 > 0 && $0 < 1 } ?? true,
                    "--validation-split must lie strictly between 0 and 1, got \(validationSplit ?? 0)")
        try require(plot.map { $0.lowercased().hasSuffix(".svg") } ?? true, "--plot writes SVG: give a file ending in .svg")
        try require(!features.standardizeTarget || (loss ?? .meanSquaredError) == .meanSquaredError,
                    "--standardize-target goes with --loss mse (regression), not \(loss?.rawValue ?? "")")
        try DataOptions.requireOneStandardInput([("--x", data.x), ("--y", data.y), ("--data", data.data),
                                                 ("--validation-data", validationData), ("--validation-x", validationX),
                                                 ("--validation-y", validationY), ("--weights", features.weights)])
        try require(validationData == nil || validationSplit == nil,
                    "--validation-data and --validation-split both choose the rows to validate on: give one")
        try require((validationX == nil && validationY == nil) || validationSplit == nil,
                    "--validation-x/--validation-y and --validation-split both choose the rows to validate on: give one")
        try require(validationData == nil || data.data != nil,
                    "--validation-data goes with --data (a CSV of the same columns); beside --x/--y give --validation-x and --validation-y")
        try require((validationX == nil && validationY == nil) || data.data == nil,
                    "--validation-x and --validation-y go with --x and --y; beside --data give --validation-data")
        try require(validationY == nil || validationX != nil, "--validation-y needs --validation-x with the inputs")
        try require(validationX == nil || validationY != nil, "--validation-x needs --validation-y with the targets")
        try require(features.patience == nil || validationSplit != nil || validationData != nil || validationX != nil,
                    "--patience needs --validation-split or --validation-data (--validation-x): early stopping watches the validation loss")
        _ = try hidden.map(parseHiddenSizes)
    }

    func run() throws {
        let startTime = Clock.now
        // where the results go, checked before any work
        let validationFiles = DataOptions.files([("--validation-data", validationData), ("--validation-x", validationX),
                                                 ("--validation-y", validationY), ("--weights", features.weights)])
        let reports = [("--plot", plot), ("--history", history)].compactMap { flag, path in path.map { (flag: flag, path: $0) } }
        try OutputPaths(outputs: [("--out", out)] + reports, inputs: data.files + validationFiles).check()
        for (flag, path) in reports {
            if let source = `init`, OutputPaths.same(path, source) {
                throw ValidationError("\(flag) \(path) would overwrite the --init checkpoint")
            }
        }
        // The model: from --init (its architecture and, for a CSV, its input columns win) or fresh from --hidden.
        let checkpoint = try `init`.map { try Checkpoint.load(from: $0) }
        let recorded = TrainingRecord(checkpoint?.metadata ?? [:])
        let seed = self.seed ?? recorded.seed ?? 0
        // missing values take the means of the rows that train, not of those held out for validation
        let missing: DataLoader.MissingValues = !features.fillMissing ? .refused
            : validationSplit.map { .meanOfTraining(validationFraction: $0, seed: seed) } ?? .mean
        // the rows' weights: a column of --data (left out of the inputs) or a file beside --x/--y
        let weightSource = try features.rowWeightSource(data: data, recorded: recorded, checkpoint: checkpoint)
        let weightColumns: [String] = if case .column(let column)? = weightSource { [column] } else { [] }
        let loaded = try data.load(columnsOf: checkpoint, missing: missing, rawColumns: weightColumns)
        let inputs = loaded.inputs
        if checkpoint == nil, let categories = loaded.categories {
            // a column of a different value in most rows (an id, free text) tells the model nothing about new rows
            for (column, values) in zip(loaded.featureColumns, categories) {
                guard let values, inputs.rows >= 20, values.count * 2 > inputs.rows else { continue }
                let name = data.noHeader ? column : "'\(Excerpt.escape(column))'"
                Terminal.writeError("note: column \(name) holds \(Format.grouped(values.count)) different values in \(Format.grouped(inputs.rows)) rows, "
                    + "each an input: an id or free text tells the model nothing about new rows (--drop \(Excerpt.escape(column)) leaves it out)")
            }
        }
        guard let targets = loaded.targets else { throw CommandError("no targets") }
        // a resumed model's outputs are its targets in the recorded order
        if let recorded = checkpoint?.targetNames, let given = loaded.targetNames, recorded != given, Set(recorded) == Set(given) {
            throw ValidationError("--target \(given.joined(separator: ",")) names the checkpoint's targets in another order than its outputs "
                + "(\(recorded.joined(separator: ",")))")
        }
        // standardised targets are a regression's: mse unless told otherwise
        let chosenLoss = loss ?? checkpoint?.loss ?? (features.standardizeTarget ? .meanSquaredError : DataLoader.defaultLoss(for: targets))
        if let checkpoint, let path = `init` { try checkpoint.checkLossFlag(loss, path: path) }
        // text labels: classes for cross-entropy, as many as the model's outputs
        let classNames = loaded.classNames ?? checkpoint?.classNames
        if let labels = loaded.classNames {
            guard chosenLoss == .crossEntropy else {
                throw ValidationError("\(loaded.targetSource) holds text labels (\(Format.counted(labels.count, "class", plural: "classes"))), "
                    + "which need --loss cross-entropy, not \(chosenLoss.rawValue)")
            }
            if let outputs = checkpoint?.layerSizes.last, labels.count != outputs {
                throw CommandError("the target's text labels name \(Format.counted(labels.count, "class", plural: "classes")) but the checkpoint has \(outputs) outputs")
            }
            if let path = `init`, checkpoint?.classNames == nil {
                Terminal.writeError("note: \(path) records no class names; its outputs 0…\(labels.count - 1) are now "
                    + "\(DataLoader.LoadError.listed(labels, quoted: true)), in that order")
            }
        }
        var (dataset, outputs) = try DataLoader.dataset(inputs: inputs, targets: targets, loss: chosenLoss,
                                                        outputs: checkpoint?.layerSizes.last)
        let rowWeights = try weightSource.map { try TrainingFeatureOptions.rowWeights($0, data: data, loaded: loaded) }
        dataset = try TrainingFeatureOptions.weighted(dataset, by: rowWeights, source: weightSource)
        var model: MLP
        let activation = try features.activationFunction(checkpoint: checkpoint)
        if let checkpoint {
            guard checkpoint.layerSizes[0] == inputs.columns else {
                throw CommandError("the checkpoint takes \(checkpoint.layerSizes[0]) inputs but the data has \(inputs.columns) features")
            }
            let recorded = Array(checkpoint.layerSizes.dropFirst().dropLast())
            if let hidden, try parseHiddenSizes(hidden) != recorded {
                throw ValidationError("--hidden \(hidden) disagrees with the checkpoint's hidden layers "
                    + "\(recorded.isEmpty ? "(none)" : recorded.map(String.init).joined(separator: ",")): a resumed run keeps its architecture")
            }
            model = try checkpoint.model(defaultLoss: chosenLoss)
        } else {
            model = try MLP(layerSizes: [inputs.columns] + (try parseHiddenSizes(hidden ?? "256,128")) + [outputs], activation: activation,
                            loss: chosenLoss, seed: seed)
        }
        let defaults = checkpoint?.hyperparameters ?? AdamHyperparameters()
        let hyperparameters = features.hyperparameters(AdamHyperparameters(
            learningRate: lr ?? defaults.learningRate, beta1: beta1 ?? defaults.beta1,
            beta2: beta2 ?? defaults.beta2, epsilon: eps ?? defaults.epsilon,
            weightDecay: defaults.weightDecay, clipNorm: defaults.clipNorm))
        let batch = batchSize ?? recorded.batchSize ?? 128

        var (training, validation) = try validationSplit.map { try dataset.split(validationFraction: $0, seed: seed) }
            .map { ($0.training, Optional($0.validation)) } ?? (dataset, nil)
        // a separate file, read as eval reads new rows for this model: by the training file's
        // columns, categories, fills and classes
        var heldOut = data
        (heldOut.data, heldOut.x, heldOut.y, heldOut.drop) = (validationData, validationX, validationY, nil)
        if validationData != nil || validationX != nil {
            var columns = Checkpoint(model: model)
            columns.featureNames = loaded.featureNames ?? checkpoint?.featureNames
            columns.targetNames = loaded.targetNames ?? checkpoint?.targetNames
            (columns.classNames, columns.categories) = (classNames, loaded.categories ?? checkpoint?.categories)
            columns.fills = loaded.fills ?? checkpoint?.fills
            let rows = try heldOut.load(columnsOf: columns)
            guard rows.inputs.columns == inputs.columns else {
                throw CommandError("--validation-x \(validationX ?? "") has \(rows.inputs.columns) columns but --x \(data.x ?? "") has \(inputs.columns)")
            }
            guard let targets = rows.targets else { throw CommandError("no validation targets") }
            validation = try DataLoader.dataset(inputs: rows.inputs, targets: targets, loss: chosenLoss, outputs: outputs).dataset
        }
        let configuration = TrainingConfiguration(
            batchSize: batch, length: steps.map { .steps($0) } ?? .epochs(epochs ?? 10), shuffle: !noShuffle, seed: seed)
        if let folds, folds > training.rows {
            throw ValidationError("--folds \(folds) needs a row for each fold; the data has \(Format.counted(training.rows, "row"))")
        }
        let crossValidation = try folds.map {
            try crossValidate(folds: $0, dataset: training, model: model, outputs: outputs, hyperparameters: hyperparameters,
                              configuration: configuration, seed: seed, rawColumns: weightColumns)
        }
        model.standardization = try features.standardization(training: training, checkpoint: checkpoint)
        model.targetStandardization = try features.targetStandardization(training: training, loss: chosenLoss, checkpoint: checkpoint)
        let classWeights = try features.classWeights(training: training, classes: outputs, loss: chosenLoss,
                                                     recorded: recorded.classWeights)
        let positiveWeights = try features.positiveWeights(training: training, outputs: outputs, loss: chosenLoss,
                                                           recorded: recorded.positiveWeights)
        let runSteps = try self.runSteps(trainingRows: training.rows, batch: batch)
        let start = checkpoint?.optimizer?.step ?? 0
        guard runSteps <= OptimizerState.maximumStep - start else {
            throw ValidationError("\(start) steps done and \(runSteps) more make more than \(OptimizerState.maximumStep), the most a run counts")
        }
        let (schedule, scheduleContinued) = try features.learningRateSchedule(
            checkpoint: checkpoint, start: start, runSteps: runSteps)
        var announcement: String?
        if !json {
            let source = loss != nil ? "" : checkpoint?.loss != nil ? " (from the checkpoint)" : " (chosen from the targets; --loss to change)"
            var line = "loss: \(chosenLoss.rawValue)\(source); layers \(model.layerSizes.map(String.init).joined(separator: ","))"
            if model.activation != .relu { line += "; activation \(model.activation)" }
            if schedule != .constant { line += "; schedule \(schedule)\(scheduleContinued ? " (continued)" : "")" }
            if model.standardization != nil { line += "; standardized inputs" }
            // the first eight of a list of weights
            let listed = { (weights: [Float]) in
                weights.prefix(8).map { Format.fixed(Double($0), 4) }.joined(separator: ", ") + (weights.count > 8 ? ", …" : "")
            }
            if let classWeights { line += "; class weights " + listed(classWeights) }
            if let positiveWeights { line += "; positive weights " + listed(positiveWeights) }
            switch weightSource {
            case .column(let column)?: line += "; rows weighted by \(DataOptions.label(column, numbered: data.noHeader))"
            case .file(let path)?: line += "; rows weighted by \(DataLoader.displayName(path))"
            case nil: break
            }
            if model.targetStandardization != nil { line += "; standardized targets (the losses below are of the standardized targets)" }
            if let classNames, loaded.classNames != nil {
                line += "; classes " + DataLoader.LoadError.listed(classNames, quoted: true)
            }
            if let categories = loaded.categories, checkpoint == nil {
                line += "; one-hot " + zip(loaded.featureColumns, categories).compactMap { name, values in
                    values.map { "\(DataOptions.label(name, numbered: data.noHeader)) (\($0.count))" }
                }.joined(separator: ", ")
            }
            var separated: [String] = []
            for origin in [loaded.inputs.origin, loaded.targets?.origin].compactMap({ $0 }) where origin.separator != .comma {
                let told = "\(origin.path) \(origin.separator)-separated"
                if !separated.contains(told) { separated.append(told) }
            }
            if !separated.isEmpty { line += "; read " + separated.joined(separator: ", ") }
            if let file = validationData ?? validationX, let validation {
                line += "; validating on \(DataLoader.displayName(file)) (\(Format.counted(validation.rows, "row")))"
            }
            announcement = line
        }
        var record = TrainingRecord(seed: seed, batchSize: batch, shuffle: !noShuffle, validationSplit: validationSplit)
        record.classWeights = classWeights
        record.positiveWeights = positiveWeights
        switch weightSource {
        case .column(let column)?: record.weightColumn = column
        case .file(let path)?: record.weightsFile = path
        case nil: break
        }
        let metadata = record.metadata
        var task = TrainTask(
            model: model, optimizer: checkpoint?.optimizer, hyperparameters: hyperparameters, training: training,
            validation: validation, configuration: configuration, wantsTrainingAccuracy: plot != nil || history != nil, quiet: json)
        task.schedule = schedule
        task.patience = features.patience
        task.classWeights = classWeights
        task.positiveWeights = positiveWeights
        task.announcement = announcement

        // The CSV's column names (or, from --x/--y, those the --init checkpoint records), so that
        // eval and predict read other CSV files by name.
        let (featureNames, targetNames) = loaded.featureNames != nil
            ? (loaded.featureNames, loaded.targetNames) : (checkpoint?.featureNames, checkpoint?.targetNames)
        let categories = loaded.categories ?? checkpoint?.categories
        let fills = loaded.fills ?? checkpoint?.fills
        let makeCheckpoint = { [metadata] (model: MLP, optimizer: OptimizerState) in
            var file = Checkpoint(model: model, optimizer: optimizer, hyperparameters: hyperparameters, schedule: schedule,
                                  metadata: metadata)
            (file.featureNames, file.targetNames, file.classNames, file.categories) = (featureNames, targetNames, classNames, categories)
            file.fills = fills
            return file
        }
        // The NaN guard: training throws when the loss or the parameters stop being finite, and
        // --checkpoint-every saves only snapshots checked finite, so the file at --out is the last good one.
        var lastSaved: Int?
        if let checkpointEvery {
            let out = out
            task.checkpointEvery = checkpointEvery
            task.onCheckpoint = { snapshot in
                try makeCheckpoint(snapshot.model, snapshot.optimizer).save(to: out)
                lastSaved = snapshot.step
            }
        }
        let result: TrainTask.Output
        do {
            result = try device.run(task)
        } catch ModelError.nonFinite(let reason) {
            let kept = lastSaved.map { "kept the last good checkpoint \(out) (step \($0))" } ?? "did not write \(out)"
            throw CommandError("\(reason); \(kept)")
        }

        // Without --checkpoint-every nothing is written until training has succeeded.
        // With --patience: the best epoch's model and Adam state. The chart and the history go
        // first, so that a failure to write them leaves no new checkpoint (and one to write the
        // checkpoint removes them).
        var written: [String] = []
        do {
            if let plot {
                try FileIO.writeAtomically(Array(TrainingChart.svg(history: result.history.map(\.point), loss: chosenLoss).utf8), to: plot)
                written.append(plot)
            }
            if let history {
                try FileIO.writeAtomically(Array(EpochRecord.csv(result.history).utf8), to: history)
                written.append(history)
            }
            try makeCheckpoint(result.model, result.optimizer).save(to: out)
        } catch {
            for path in written { unlink(path) }
            throw error
        }
        let seconds = Clock.seconds(since: startTime)
        let last = result.history.last?.point
        if json {
            var object: [(String, JSONValue)] = [
                ("steps", .number(Double(result.stepsTaken))),
                ("epochs", .number(Double(result.history.count))),
                ("final_loss", .number(last?.trainingLoss ?? .nan)),
                ("seconds", .number(seconds)),
                ("total_steps", .number(Double(result.optimizer.step))),
                ("loss", .string(chosenLoss.rawValue)),
                ("layers", .array(result.model.layerSizes.map { .number(Double($0)) })),
                ("device", .string(result.deviceSummary)),
                ("out", .string(out)),
            ]
            if let value = last?.validationLoss { object.append(("validation_loss", .number(value))) }
            if let value = last?.validationAccuracy { object.append(("validation_accuracy", .number(value))) }
            if let early = result.earlyStopping {
                object.append(("best_epoch", .number(Double(early.bestEpoch))))
                object.append(("best_validation_loss", .number(early.bestValidationLoss)))
                object.append(("stopped_early_after_epoch", early.stoppedAfterEpoch.map { .number(Double($0)) } ?? .null))
            }
            if let crossValidation { object.append(("cross_validation", crossValidation.json)) }
            object.append(("history", .array(result.history.map { .object($0.fields.map { ($0.name, .number($0.value)) }) })))
            print(JSONValue.object(object).serialized)
        } else {
            if let crossValidation { print(crossValidation.line) }
            var line = "trained \(Format.counted(result.stepsTaken, "step")) in \(Format.fixed(seconds, 2)) s on \(result.deviceSummary)"
            if let last { line += "; final loss \(Format.fixed(last.trainingLoss, 6))" }
            if let accuracy = last?.validationAccuracy { line += ", validation accuracy \(Format.fixed(accuracy, 4))" }
            print(line)
            if let early = result.earlyStopping {
                let stop = early.stoppedAfterEpoch.map {
                    "stopped early after epoch \($0): no lower validation loss for \(features.patience ?? 0) epochs; "
                } ?? ""
                print("\(stop)kept epoch \(early.bestEpoch), validation loss \(Format.fixed(early.bestValidationLoss, 6))")
            }
            print("saved \(out)")
        }
    }
}

extension TrainCommand {
    /// The steps of a run on `trainingRows` rows: `--steps`, or `--epochs` (10) times the steps of an epoch.
    func runSteps(trainingRows: Int, batch: Int) throws -> Int {
        if let steps { return steps }
        let perEpoch = try BatchSchedule(rows: trainingRows, batchSize: batch, shuffle: false, seed: 0).stepsPerEpoch
        let (total, overflow) = (epochs ?? 10).multipliedReportingOverflow(by: perEpoch)
        guard !overflow, total <= OptimizerState.maximumStep else {
            throw ValidationError("--epochs \(epochs ?? 10) makes more than \(OptimizerState.maximumStep) steps (\(perEpoch) per epoch)")
        }
        return total
    }

    /// What `--folds` found: each fold's validation loss (and accuracy) after its last epoch.
    struct CrossValidation {
        var losses: [Double]
        var accuracies: [Double]?

        static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
        /// The sample standard deviation (n − 1), as the spread of an estimate from K folds.
        static func deviation(_ values: [Double]) -> Double {
            let mean = mean(values)
            return (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        }

        var json: JSONValue {
            var object: [(String, JSONValue)] = [
                ("folds", .number(Double(losses.count))),
                ("validation_loss", .array(losses.map { .number($0) })),
                ("mean_validation_loss", .number(Self.mean(losses))),
                ("sd_validation_loss", .number(Self.deviation(losses))),
            ]
            if let accuracies {
                object += [("validation_accuracy", .array(accuracies.map { .number($0) })),
                           ("mean_validation_accuracy", .number(Self.mean(accuracies))),
                           ("sd_validation_accuracy", .number(Self.deviation(accuracies)))]
            }
            return .object(object)
        }

        var line: String {
            var line = "cross-validation, \(losses.count) folds: validation loss \(Format.fixed(Self.mean(losses), 6)) "
                + "(sd \(Format.fixed(Self.deviation(losses), 6)))"
            if let accuracies {
                line += ", validation accuracy \(Format.fixed(Self.mean(accuracies), 4)) (sd \(Format.fixed(Self.deviation(accuracies), 4)))"
            }
            return line
        }
    }

    /// `--folds K`: for each of the K folds of `dataset`'s rows (``Dataset/foldRows(_:folds:seed:)``),
    /// `model` (fresh, unstandardised) trained as the run would train it on the other rows, with
    /// missing values filled and inputs (and targets) standardised from those rows, and validated
    /// on the fold's rows after its last epoch.
    func crossValidate(folds: Int, dataset: Dataset, model: MLP, outputs: Int, hyperparameters: AdamHyperparameters,
                       configuration: TrainingConfiguration, seed: UInt64, rawColumns: [String]) throws -> CrossValidation {
        let parts = try Dataset.foldRows(dataset.rows, folds: folds, seed: seed)
        var losses: [Double] = [], accuracies: [Double] = []
        for (fold, validationRows) in parts.enumerated() {
            let held = Set(validationRows)
            let trainingRows = (0..<dataset.rows).filter { !held.contains($0) }
            var rows = dataset
            if features.fillMissing {
                // the means of the rows that train this fold
                let reloaded = try data.load(missing: .meanOfRows(trainingRows), notes: false, rawColumns: rawColumns)
                guard let targets = reloaded.targets else { throw CommandError("no targets") }
                rows = try DataLoader.dataset(inputs: reloaded.inputs, targets: targets, loss: model.loss, outputs: outputs).dataset
                    .weighted(by: dataset.rowWeights)
            }
            let (training, validation) = (try rows.subset(trainingRows), try rows.subset(validationRows))
            var foldModel = model
            foldModel.standardization = try features.standardization(training: training, checkpoint: nil)
            foldModel.targetStandardization = try features.targetStandardization(training: training, loss: model.loss, checkpoint: nil)
            let (schedule, _) = try features.learningRateSchedule(
                checkpoint: nil, start: 0, runSteps: try runSteps(trainingRows: training.rows, batch: configuration.batchSize))
            var task = TrainTask(model: foldModel, optimizer: nil, hyperparameters: hyperparameters, training: training,
                                 validation: validation, configuration: configuration, wantsTrainingAccuracy: false, quiet: true)
            task.schedule = schedule
            task.classWeights = try features.classWeights(training: training, classes: outputs, loss: model.loss, recorded: nil)
            task.positiveWeights = try features.positiveWeights(training: training, outputs: outputs, loss: model.loss, recorded: nil)
            let result = try device.run(task)
            guard let last = result.history.last?.point, let loss = last.validationLoss else { throw CommandError("fold \(fold + 1) ran no epoch") }
            losses.append(loss)
            if let accuracy = last.validationAccuracy { accuracies.append(accuracy) }
            if !json {
                Terminal.writeError("fold \(fold + 1)/\(folds): \(Format.counted(training.rows, "row")) trained, \(Format.counted(validation.rows, "row")) "
                    + "validated: loss \(Format.fixed(loss, 6))" + (last.validationAccuracy.map { ", accuracy \(Format.fixed($0, 4))" } ?? ""))
            }
        }
        return CrossValidation(losses: losses, accuracies: model.loss.isClassification ? accuracies : nil)
    }
}

/// One epoch's figures, for the chart, `--history` and `--json`: the chart's point, Adam's t
/// after the epoch, the learning rate of its last step, and the seconds since training began
/// (evaluations included).
struct EpochRecord {
    var point: TrainingChart.Point
    var step: Int
    var learningRate: Float
    var seconds: Double

    /// (name, value) of each figure this epoch has, in `--history`'s column order.
    var fields: [(name: String, value: Double)] {
        var fields: [(name: String, value: Double)] = [("epoch", Double(point.epoch)), ("step", Double(step)),
                                                        ("training_loss", point.trainingLoss)]
        if let value = point.trainingAccuracy { fields.append(("training_accuracy", value)) }
        if let value = point.validationLoss { fields.append(("validation_loss", value)) }
        if let value = point.validationAccuracy { fields.append(("validation_accuracy", value)) }
        // the rate as the Float it is (0.001), not its binary expansion
        fields += [("learning_rate", Double("\(learningRate)") ?? Double(learningRate)), ("seconds", seconds)]
        return fields
    }

    /// The records as CSV: a header of the first record's names, then a line per epoch; integers
    /// without a fraction, other values in their shortest round-trip form, seconds to the
    /// millisecond.
    static func csv(_ records: [EpochRecord]) -> String {
        guard let first = records.first else { return "epoch,step,training_loss,learning_rate,seconds\n" }
        var text = first.fields.map(\.name).joined(separator: ",") + "\n"
        for record in records {
            text += record.fields.map { field in
                switch field.name {
                case "epoch", "step": return String(Int(field.value))
                case "seconds": return Format.fixed(field.value, 3)
                default: return "\(field.value)"
                }
            }.joined(separator: ",") + "\n"
        }
        return text
    }
}

/// The training run itself, generic over the backend.
struct TrainTask: BackendTask {
    let model: MLP
    let optimizer: OptimizerState?
    let hyperparameters: AdamHyperparameters
    let training: Dataset
    let validation: Dataset?
    let configuration: TrainingConfiguration
    let wantsTrainingAccuracy: Bool
    let quiet: Bool
    /// A line for stderr once the backend is open and the session built (the loss and layers).
    var announcement: String?
    /// Snapshots every this many steps (0: none), each checked finite, go to `onCheckpoint`.
    var checkpointEvery = 0
    var onCheckpoint: (TrainingSnapshot) throws -> Void = { _ in }
    var schedule = LearningRateSchedule.constant
    /// Early stopping on the validation loss after this many epochs without improvement.
    var patience: Int?
    /// Cross-entropy class weights for the training steps (nil: none).
    var classWeights: [Float]?
    /// Binary cross-entropy positive weights for the training steps (nil: none).
    var positiveWeights: [Float]?

    struct Output {
        /// The final model and Adam state, or with `patience` the best epoch's.
        var model: MLP
        var optimizer: OptimizerState
        var history: [EpochRecord]
        var stepsTaken: Int
        var deviceSummary: String
        var earlyStopping: EarlyStoppingResult?
    }

    func run<B: Backend>(on backend: B) throws -> Output {
        let capacity = min(configuration.batchSize, training.rows)
        let session = try TrainingSession(model: model, backend: backend, hyperparameters: hyperparameters,
                                          optimizerState: optimizer, batchCapacity: max(capacity, min(validation?.rows ?? 0, 4096)))
        session.schedule = schedule
        try session.setClassWeights(classWeights)
        try session.setPositiveWeights(positiveWeights)
        if let announcement { Terminal.writeError(announcement) }
        let trainingData = try session.upload(training)
        let validationData = try validation.map { try session.upload($0) }
        let progress = Progress(quiet: quiet, rowsPerEpoch: training.rows)
        var history: [EpochRecord] = []
        let started = Clock.now
        var stepsTaken = 0
        var stopping = try patience.map { try EarlyStopping(patience: $0) }
        var best: (model: MLP, optimizer: OptimizerState)?
        var stoppedAfter: Int?
        defer { progress.finish() }
        try session.train(on: trainingData, configuration: configuration, checkpointEvery: checkpointEvery, onStep: { report in
            stepsTaken = report.stepsDone
            progress.step(report, session: session)
        }, onEpoch: { report in
            var point = TrainingChart.Point(epoch: report.epoch, trainingLoss: report.trainingLoss)
            if wantsTrainingAccuracy, model.loss.isClassification {
                point.trainingAccuracy = try session.evaluate(trainingData).accuracy
            }
            if let validationData {
                let result = try session.evaluate(validationData)
                point.validationLoss = result.loss
                point.validationAccuracy = result.accuracy
            }
            history.append(EpochRecord(point: point, step: report.step, learningRate: try session.learningRate(step: report.step),
                                       seconds: Clock.seconds(since: started)))
            progress.epoch(point, stepsTotal: report.step)
            if stopping != nil, let loss = point.validationLoss {
                switch stopping!.record(epoch: report.epoch, validationLoss: loss) {
                case .improved: best = (try session.model(), try session.optimizerState())
                case .wait: break
                case .stop:
                    stoppedAfter = report.epoch
                    return false
                }
            }
            return true
        }, onCheckpoint: onCheckpoint)
        let earlyStopping = stopping?.best.map {
            EarlyStoppingResult(bestEpoch: $0.epoch, bestValidationLoss: $0.loss, stoppedAfterEpoch: stoppedAfter)
        }
        return Output(model: try best?.model ?? session.model(), optimizer: try best?.optimizer ?? session.optimizerState(),
                      history: history, stepsTaken: stepsTaken, deviceSummary: backend.summary, earlyStopping: earlyStopping)
    }
}

/// How `mlp train` batched the data: a checkpoint's `training.*` metadata (checked when the
/// checkpoint loads), read back by a resumed run and `mlp info`.
struct TrainingRecord {
    var seed: UInt64?
    var batchSize: Int?
    var shuffle: Bool?
    var validationSplit: Double?
    /// Cross-entropy class weights (`training.class_weights`, comma-separated).
    var classWeights: [Float]?
    /// Binary cross-entropy positive weights (`training.pos_weights`, comma-separated).
    var positiveWeights: [Float]?
    /// The rows' weights: a column of the CSV (`training.weight_column`), or a file beside --x/--y
    /// (`training.weights_file`).
    var weightColumn: String?
    var weightsFile: String?

    init(_ metadata: [String: String]) {
        seed = metadata["training.seed"].flatMap { UInt64($0) }
        batchSize = metadata["training.batch_size"].flatMap { Int($0) }
        shuffle = metadata["training.shuffle"].map { $0 == "true" }
        validationSplit = metadata["training.validation_split"].flatMap { Double($0) }
        classWeights = metadata["training.class_weights"].map { $0.split(separator: ",").compactMap { Float($0) } }
        positiveWeights = metadata["training.pos_weights"].map { $0.split(separator: ",").compactMap { Float($0) } }
        weightColumn = metadata["training.weight_column"]
        weightsFile = metadata["training.weights_file"]
    }

    init(seed: UInt64, batchSize: Int, shuffle: Bool, validationSplit: Double?) {
        (self.seed, self.batchSize, self.shuffle, self.validationSplit) = (seed, batchSize, shuffle, validationSplit)
    }

    /// The `training.*` entries for a checkpoint.
    var metadata: [String: String] {
        var entries: [String: String] = [:]
        entries["training.seed"] = seed.map { String($0) }
        entries["training.batch_size"] = batchSize.map { String($0) }
        entries["training.shuffle"] = shuffle.map { String($0) }
        entries["training.validation_split"] = validationSplit.map { "\($0)" }
        entries["training.class_weights"] = classWeights.map { $0.map { "\($0)" }.joined(separator: ",") }
        entries["training.pos_weights"] = positiveWeights.map { $0.map { "\($0)" }.joined(separator: ",") }
        entries["training.weight_column"] = weightColumn
        entries["training.weights_file"] = weightsFile
        return entries
    }
}
