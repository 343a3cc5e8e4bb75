import ArgumentParser
import MLPKit

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "The seed's loss over every row of a data set, and for regression RMSE, MAE and R², for classification the accuracy, each class's precision, recall and F1 and the confusion matrix.")

    @Option(help: ArgumentHelp("The checkpoint to evaluate.", valueName: "checkpoint"))
    var model: String

    @OptionGroup var data: DataOptions

    @OptionGroup var inference: InferenceOptions

    @Flag(help: "Print one JSON object: loss, accuracy, rows, and rmse, mae, r2 (regression) or macro_f1, classes, confusion (classification).")
    var json = false

    @Flag(help: "Also print the confusion matrix (rows: the actual class; columns: the predicted one).")
    var confusion = false

    @Flag(help: "Also measure each input column's permutation importance: how much the loss grows (and the accuracy falls) when the column's values are shuffled across the rows.")
    var importance = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Shuffles per column for --importance.", valueName: "N"))
    var repeats: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("The seed of --importance's shuffles.", valueName: "S"))
    var seed: UInt64?

    @Option(help: ArgumentHelp("Weigh each row by this column of --data (numbers ≥ 0, left out of the inputs): the loss, the accuracy and every figure count a row w times, as scikit-learn's sample_weight does (by number with --no-header).", valueName: "column"))
    var weightColumn: String?

    @Option(help: ArgumentHelp("Beside --x/--y: one weight per row from a file of one column (.npy or .csv), as --weight-column.", valueName: "file"))
    var weights: String?

    func validate() throws {
        try require(repeats == nil || importance, "--repeats goes with --importance")
        try require(seed == nil || importance, "--seed goes with --importance")
        try require((repeats ?? 1) >= 1, "--repeats must be at least 1, got \(repeats ?? 0)")
    }

    func run() throws {
        let checkpoint = try Checkpoint.load(from: model)
        let network = try inference.network(from: checkpoint, path: model)
        let weightSource = try TrainingFeatureOptions.rowWeightSource(weightColumn: weightColumn, weights: weights, data: data,
                                                                      checkpoint: checkpoint)
        let weightColumns: [String] = if case .column(let column)? = weightSource { [column] } else { [] }
        // the reading's notes after the weights are checked, so that a bad weight is the one line
        let loaded = try data.load(columnsOf: checkpoint, notes: false, rawColumns: weightColumns)
        let inputs = loaded.inputs
        let rowWeights = try weightSource.map { try TrainingFeatureOptions.rowWeights($0, data: data, loaded: loaded) }
        let weightSum = rowWeights.map { $0.reduce(0.0) { $0 + Double($1) } }
        if let weightSum, !(weightSum > 0) {
            throw CommandError("\(weightColumn.map { "--weight-column \($0)" } ?? "--weights \(weights ?? "")"): the weights sum to 0; "
                + "at least one row needs a weight above 0")
        }
        loaded.notes.forEach(Terminal.writeError)
        guard let targets = loaded.targets else { throw CommandError("no targets") }
        // text labels need the model's own class names: sorting them would only guess its classes' order
        if loaded.classNames != nil, checkpoint.classNames == nil {
            throw CommandError("\(loaded.targetSource) holds text labels, but \(model) records no class names (it was trained on numbered "
                + "classes): give the labels as their numbers 0…\(network.layout.outputs - 1)")
        }
        try checkInputs(inputs, fit: network)
        let (dataset, _) = try DataLoader.dataset(inputs: inputs, targets: targets, loss: network.loss,
                                                  outputs: network.layout.outputs)
        var task = EvalTask(model: network, dataset: dataset, batchSize: inference.batchSize, weights: rowWeights)
        if importance {
            task.importance = (try PermutationImportance.columns(categories: loaded.categories, inputs: inputs.columns), repeats ?? 5, seed ?? 0)
        }
        let result = try inference.device.run(task)
        guard result.loss.isFinite else {
            throw CommandError("the loss is \(describeNonFinite(result.loss)): the outputs or their errors overflow Float32 "
                + "(inputs or targets too large for this model?)")
        }
        let columns = network.layout.outputs
        let regression = network.loss == .meanSquaredError
            ? Metrics.regression(outputs: result.outputs, targets: dataset.targets, columns: columns, weights: rowWeights) : nil
        let classification = network.loss == .crossEntropy
            ? Metrics.classification(outputs: result.outputs, actual: Metrics.actualClasses(dataset), classes: columns, weights: rowWeights)
            : nil
        let multiLabel = network.loss == .binaryCrossEntropy
            ? Metrics.labels(outputs: result.outputs, targets: Metrics.denseTargets(dataset, outputs: columns), labels: columns,
                             weights: rowWeights) : nil
        let names = checkpoint.classNames ?? (0..<columns).map(String.init)
        // a multi-label model's labels: its targets' names, or their numbers
        let labelNames = checkpoint.targetNames.flatMap { $0.count == columns ? $0 : nil } ?? (0..<columns).map(String.init)
        if json {
            var object: [(String, JSONValue)] = [("loss", .number(result.loss))]
            object.append(("accuracy", result.accuracy.map { .number($0) } ?? .null))
            object.append(("rows", .number(Double(dataset.rows))))
            if let weightSum { object.append(("weight_sum", .number(weightSum))) }
            let optional = { (value: Double?) in value.map { JSONValue.number($0) } ?? .null }
            if let regression {
                object += [("rmse", .number(regression.rmse)), ("mae", .number(regression.mae)), ("r2", optional(regression.r2))]
                if columns > 1 { object.append(("r2_per_output", .array(regression.r2PerOutput.map(optional)))) }
            }
            if let classification {
                object.append(("macro_f1", optional(classification.macroF1)))
                object.append(("classes", .array(zip(names, classification.classes).map { name, figures in
                    .object([("class", .string(name)), ("precision", optional(figures.precision)), ("recall", optional(figures.recall)),
                             ("f1", optional(figures.f1)), ("rows", .number(figures.rows))])
                })))
                object.append(("confusion", .array(classification.confusion.map { .array($0.map { .number($0) }) })))
            }
            if let multiLabel {
                object.append(("macro_f1", optional(multiLabel.macroF1)))
                object.append(("labels", .array(zip(labelNames, multiLabel.labels).map { name, figures in
                    .object([("label", .string(name)), ("precision", optional(figures.precision)), ("recall", optional(figures.recall)),
                             ("f1", optional(figures.f1)), ("positives", .number(figures.rows))])
                })))
            }
            if let figures = result.importance {
                object.append(("importance", .array(zip(columnNames(loaded, count: figures.count), figures).map { name, column in
                    var entry: [(String, JSONValue)] = [("column", .string(name)), ("loss_increase", .number(column.meanIncrease)),
                                                        ("sd", .number(column.deviation))]
                    if let decrease = column.meanAccuracyDecrease { entry.append(("accuracy_decrease", .number(decrease))) }
                    return .object(entry)
                })))
            }
            print(JSONValue.object(object).serialized)
        } else {
            print("loss: \(Format.fixed(result.loss, 6))")
            if let accuracy = result.accuracy { print("accuracy: \(Format.fixed(accuracy, 4))") }
            if let regression {
                print("rmse: \(Format.fixed(regression.rmse, 6))")
                print("mae: \(Format.fixed(regression.mae, 6))")
                print("r2: \(regression.r2.map { Format.fixed($0, 4) } ?? "n/a (the targets do not vary)")")
            }
            if let macroF1 = classification.map(\.macroF1) ?? multiLabel.map(\.macroF1) {
                print("macro f1: \(macroF1.map { Format.fixed($0, 4) } ?? "n/a")")
            }
            print("rows: \(dataset.rows)" + (weightSum.map { ", weighted: Σ w = \(Self.count($0))" } ?? ""))
            if let classification {
                Self.printFigures(classification.classes, names: names, heading: ("class", "rows"))
                if confusion { Self.printConfusion(classification.confusion, names: names) }
            }
            if let multiLabel { Self.printFigures(multiLabel.labels, names: labelNames, heading: ("label", "positives")) }
            if let figures = result.importance {
                Self.printImportance(figures, names: columnNames(loaded, count: figures.count), repeats: repeats ?? 5)
            }
        }
    }

    /// The input columns' names for the importance table: as the file names them, or
    /// `input 1`, `input 2`, … for arrays.
    func columnNames(_ loaded: LoadedData, count: Int) -> [String] {
        loaded.featureColumns.count == count
            ? loaded.featureColumns.map { data.noHeader ? "column \($0)" : $0 } : (1...count).map { "input \($0)" }
    }

    /// The columns by decreasing importance, the first 30 (`--json` has them all, in column order).
    static func printImportance(_ figures: [PermutationImportance.Column], names: [String], repeats: Int) {
        let order = figures.indices.sorted { figures[$0].meanIncrease > figures[$1].meanIncrease }
        let shown = order.prefix(30)
        let labels = names.map { Excerpt.escape($0) }
        let width = max(6, shown.map { labels[$0].count }.max() ?? 0)
        let accuracy = figures.first?.accuracyDecreases != nil
        print("importance (the loss's increase with the column shuffled, mean and sd of \(Format.counted(repeats, "shuffle"))):")
        print(Format.pad("column", width) + "  " + Format.pad("loss +", 12) + "  " + (accuracy ? Format.pad("sd", 12) + "  accuracy −" : "sd"))
        for index in shown {
            let column = figures[index]
            var line = Format.pad(labels[index], width) + "  " + Format.pad(Format.fixed(column.meanIncrease, 6), 12) + "  " + Format.fixed(column.deviation, 6)
            if let decrease = column.meanAccuracyDecrease { line = Format.pad(line, width + 28) + "  " + Format.fixed(decrease, 4) }
            print(line)
        }
        if order.count > shown.count { print("… \(order.count - shown.count) more columns (--json lists them all)") }
    }

    /// Each class's (or label's) precision, recall, F1 and rows (or positive rows), the first 30
    /// (`--json` has them all).
    static func printFigures(_ figures: [Metrics.ClassFigures], names: [String], heading: (name: String, rows: String)) {
        let shown = min(names.count, 30)
        let labels = names.prefix(shown).map { Excerpt.escape($0) }
        let width = max(5, labels.map(\.count).max() ?? 0)
        let cell = { (value: Double?) in Format.pad(value.map { Format.fixed($0, 4) } ?? "n/a", 9) }
        print(Format.pad(heading.name, width) + "  precision  recall     f1         \(heading.rows)")
        for (label, row) in zip(labels, figures) {
            print(Format.pad(label, width) + "  " + cell(row.precision) + "  " + cell(row.recall) + "  " + cell(row.f1) + "  " + count(row.rows))
        }
        if names.count > shown { print("… \(names.count - shown) more \(heading.name == "class" ? "classes" : "labels") (--json lists them all)") }
    }

    /// A count of rows, or of their weights: whole numbers as such, else to three decimals.
    static func count(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : Format.fixed(value, 3)
    }

    /// The confusion matrix of the first 30 classes.
    static func printConfusion(_ confusion: [[Double]], names: [String]) {
        let shown = min(names.count, 30)
        let labels = names.prefix(shown).map { Excerpt.escape($0) }
        let width = max(5, labels.map(\.count).max() ?? 0)
        print("confusion (rows: actual, columns: predicted)")
        let counts = confusion.prefix(shown).map { $0.prefix(shown).map(count) }
        let column = max(labels.map(\.count).max() ?? 0, counts.joined().map(\.count).max() ?? 0)
        let right = { (text: String) in Format.padLeft(text, column) }
        print(Format.pad("", width) + "  " + labels.map(right).joined(separator: "  "))
        for (label, row) in zip(labels, counts) {
            print(Format.pad(label, width) + "  " + row.map(right).joined(separator: "  "))
        }
    }
}

/// Throws unless the data's feature count matches the model's inputs.
func checkInputs(_ inputs: DataMatrix, fit model: MLP) throws {
    guard inputs.columns == model.layout.inputs else {
        throw CommandError("the model takes \(model.layout.inputs) inputs but the data has \(inputs.columns) features")
    }
}

struct EvalTask: BackendTask {
    let model: MLP
    let dataset: Dataset
    let batchSize: Int
    /// One weight per row (`--weight-column`): the loss and accuracy are then Σ w·ℓ / Σ w and
    /// the weighted accuracy (``Metrics/weightedLoss(outputs:dataset:loss:columns:weights:)``).
    var weights: [Float]?
    /// Permutation importance of these input columns, with this many shuffles each, from this seed.
    var importance: (columns: [Range<Int>], repeats: Int, seed: UInt64)?

    struct Output {
        var loss: Double
        var accuracy: Double?
        /// The model's outputs for every row (for `Metrics`).
        var outputs: [Float]
        var importance: [PermutationImportance.Column]?
    }

    /// The loss and accuracy as training reports them (the loss in the targets' own units where
    /// the model standardises them), the outputs, and the columns' importance when asked for.
    func run<B: Backend>(on backend: B) throws -> Output {
        let session = try TrainingSession(model: model, backend: backend, batchCapacity: min(batchSize, dataset.rows))
        // `outputs`: the rows' outputs are wanted (for `Metrics`); a shuffle needs them only for the loss below
        func evaluate(_ data: Dataset, outputs wanted: Bool) throws -> Output {
            if let weights {
                // every row's output, in the targets' own units, and the weighted figures from them
                let outputs = try session.predict(data.inputs)
                guard let figures = Metrics.weightedLoss(outputs: outputs, dataset: data, loss: model.loss, columns: model.layout.outputs,
                                                         weights: weights) else { throw CommandError("the weights sum to 0") }
                return Output(loss: figures.loss, accuracy: figures.accuracy, outputs: wanted ? outputs : [])
            }
            let (loss, accuracy) = try session.evaluate(try session.upload(data))
            guard wanted || model.targetStandardization != nil else { return Output(loss: loss, accuracy: accuracy, outputs: []) }
            let outputs = try session.predict(data.inputs)
            guard model.targetStandardization != nil else { return Output(loss: loss, accuracy: accuracy, outputs: outputs) }
            // the session's loss is over standardised targets: the seed's loss in the targets' own units instead
            var squares = 0.0
            for (output, target) in zip(outputs, data.targets) {
                squares += (Double(output) - Double(target)) * (Double(output) - Double(target))
            }
            return Output(loss: squares / Double(2 * data.rows), accuracy: accuracy, outputs: outputs)
        }
        var result = try evaluate(dataset, outputs: true)
        if let importance {
            let measured = try PermutationImportance.measure(
                inputs: dataset.inputs, features: dataset.features, columns: importance.columns, repeats: importance.repeats,
                seed: importance.seed, base: (result.loss, result.accuracy)
            ) { inputs in
                let figures = try evaluate(Dataset(inputs: inputs, features: dataset.features, targets: dataset.targets,
                                                   encoding: dataset.targetEncoding, targetWidth: dataset.targetWidth), outputs: false)
                return (figures.loss, figures.accuracy)
            }
            result.importance = measured
        }
        return result
    }
}
