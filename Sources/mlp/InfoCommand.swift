import ArgumentParser
import MLPKit

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "What a checkpoint holds: its layers, loss and activation, the input columns, target and classes it "
            + "was trained on, Adam's state, and how the data was batched.")

    @Option(help: ArgumentHelp("The checkpoint to describe.", valueName: "checkpoint"))
    var model: String

    @Flag(help: "Print one JSON object (every name in full).")
    var json = false

    func run() throws {
        let checkpoint = try Checkpoint.load(from: model)
        let parameters = try LayerLayout(sizes: checkpoint.layerSizes).parameterCount
        let h = checkpoint.hyperparameters
        let training = TrainingRecord(checkpoint.metadata)
        if json {
            func names(_ list: [String]?) -> JSONValue { list.map { .array($0.map { .string($0) }) } ?? .null }
            // Float values as they print (0.001), not their binary expansion
            func number(_ value: Float) -> JSONValue { .number(Double("\(value)") ?? Double(value)) }
            var object: [(String, JSONValue)] = [
                ("layers", .array(checkpoint.layerSizes.map { .number(Double($0)) })),
                ("parameters", .number(Double(parameters))),
                ("activation", .string(checkpoint.activation.kind.rawValue)),
            ]
            if let slope = checkpoint.activation.leakySlope { object.append(("activation_slope", number(slope))) }
            object += [
                ("loss", checkpoint.loss.map { .string($0.rawValue) } ?? .null),
                ("inputs", names(checkpoint.featureNames)),
                ("categories", checkpoint.categories.map { .array($0.map(names)) } ?? .null),
                ("fills", checkpoint.fills.map { .array($0.map { $0.map(number) ?? .null }) } ?? .null),
                ("standardized", .bool(checkpoint.standardization != nil)),
                ("standardized_targets", .bool(checkpoint.targetStandardization != nil)),
                ("target", checkpoint.targetName.map { .string($0) } ?? .null),
                ("targets", names(checkpoint.targetNames)),
                ("classes", names(checkpoint.classNames)),
                ("adam_step", checkpoint.optimizer.map { .number(Double($0.step)) } ?? .null),
                ("hyperparameters", h.map { h in
                    .object([("learning_rate", number(h.learningRate)), ("beta1", number(h.beta1)), ("beta2", number(h.beta2)),
                             ("epsilon", number(h.epsilon)), ("weight_decay", number(h.weightDecay)),
                             ("clip_norm", h.clipNorm.map(number) ?? .null)])
                } ?? .null),
                ("schedule", checkpoint.schedule.map { .string($0.description) } ?? .null),
                ("training", .object([
                    ("seed", training.seed.map { .number(Double($0)) } ?? .null),
                    ("batch_size", training.batchSize.map { .number(Double($0)) } ?? .null),
                    ("shuffle", training.shuffle.map { .bool($0) } ?? .null),
                    ("validation_split", training.validationSplit.map { .number($0) } ?? .null),
                    ("class_weights", training.classWeights.map { .array($0.map(number)) } ?? .null),
                    ("pos_weights", training.positiveWeights.map { .array($0.map(number)) } ?? .null),
                    ("weight_column", training.weightColumn.map { .string($0) } ?? .null),
                    ("weights_file", training.weightsFile.map { .string($0) } ?? .null),
                ])),
            ]
            print(JSONValue.object(object).serialized)
            return
        }
        print("layers: \(checkpoint.layerSizes.map(String.init).joined(separator: ",")) (\(Format.grouped(parameters)) parameters)")
        print("activation: \(checkpoint.activation)")
        print("loss: \(checkpoint.loss?.rawValue ?? "not recorded (give eval and predict a --loss)")")
        var inputs = checkpoint.featureNames.map { Self.listed($0) } ?? "\(checkpoint.layerSizes[0]), by position (no column names recorded)"
        if let categories = checkpoint.categories {
            if checkpoint.featureNames == nil { inputs = "\(checkpoint.layerSizes[0]) from \(categories.count) columns, by position" }
            let columns = checkpoint.featureNames ?? categories.indices.map { "feature column \($0 + 1)" }
            for (column, values) in zip(columns, categories) {
                if let values { inputs += "; \(checkpoint.featureNames == nil ? column : Self.listed([column])) one-hot: \(Self.listed(values))" }
            }
        }
        print("inputs: \(inputs)\(checkpoint.standardization != nil ? "; standardized" : "")")
        if let fills = checkpoint.fills {
            let columns = checkpoint.featureNames.map { $0.map { Self.listed([$0]) } } ?? fills.indices.map { "feature column \($0 + 1)" }
            let shown = zip(columns, fills).map { column, fill in "\(column) \(fill.map { "\($0)" } ?? "no category")" }
            print("missing values: " + shown.prefix(16).joined(separator: ", ") + (shown.count > 16 ? ", … (--json lists every one)" : ""))
        }
        if let target = checkpoint.targetName { print("target: \(Excerpt.escape(target))") }
        if let targets = checkpoint.targetNames, targets.count > 1 { print("targets: \(Self.listed(targets))") }
        if let scaling = checkpoint.targetStandardization {
            print("targets standardized: outputs × \(scaling.deviation.map { "\($0)" }.prefix(4).joined(separator: ", "))"
                + " + \(scaling.mean.map { "\($0)" }.prefix(4).joined(separator: ", "))\(scaling.features > 4 ? ", …" : "")")
        }
        if let classes = checkpoint.classNames { print("classes: \(Self.listed(classes))") }
        if let optimizer = checkpoint.optimizer {
            var line = "adam: step \(optimizer.step)"
            if let h {
                line += "; lr \(h.learningRate), beta1 \(h.beta1), beta2 \(h.beta2), eps \(h.epsilon)"
                if h.weightDecay != 0 { line += ", weight decay \(h.weightDecay)" }
                if let clip = h.clipNorm { line += ", clip norm \(clip)" }
            }
            print(line)
        } else {
            print("adam: no state (the model alone; train --init starts Adam afresh)")
        }
        if let schedule = checkpoint.schedule { print("schedule: \(schedule)") }
        var parts: [String] = []
        if let seed = training.seed { parts.append("seed \(seed)") }
        if let batch = training.batchSize { parts.append("batch size \(batch)") }
        if let shuffle = training.shuffle { parts.append(shuffle ? "shuffled" : "in file order") }
        if let split = training.validationSplit { parts.append("validation split \(split)") }
        if let weights = training.classWeights { parts.append("class weights " + weights.map { "\($0)" }.joined(separator: ", ")) }
        if let weights = training.positiveWeights { parts.append("positive weights " + weights.map { "\($0)" }.joined(separator: ", ")) }
        if let column = training.weightColumn { parts.append("rows weighted by column '\(Excerpt.escape(column))'") }
        if let file = training.weightsFile { parts.append("rows weighted by --weights \(Excerpt.escape(file))") }
        if !parts.isEmpty { print("training: " + parts.joined(separator: ", ")) }
    }

    /// Names quoted where they would be ambiguous, the first 16 and the count beyond that.
    static func listed(_ names: [String]) -> String {
        let shown = names.prefix(16).map { name in
            name.isEmpty || name.contains(",") || name.contains("'") || name.first == " " || name.last == " "
                ? "'\(Excerpt.escape(name))'" : Excerpt.escape(name)
        }
        return shown.joined(separator: ", ") + (names.count > 16 ? ", … (\(names.count) in all; --json lists every one)" : "")
    }
}
