/// A model (and optionally Adam's state) as a safetensors file.
///
/// Tensors `W1, b1, …, WL, bL` are F32 in the seed's shapes ([out × in] and [out]), so a
/// PyTorch state dict maps onto them by renaming keys. Adam's moments are `adam.m.W1`,
/// `adam.v.W1`, …; the step count and the hyperparameters go in the header's metadata with the
/// layer sizes, activation and loss. A file with only W/b tensors loads too: the architecture
/// comes from the shapes.
public struct Checkpoint: Sendable, Equatable {
    public var layerSizes: [Int]
    /// The hidden activation (metadata `activation`, and `activation.slope` for leaky ReLU).
    public var activation: ActivationFunction
    /// The loss the model was trained with, when the file records it.
    public var loss: Loss?
    /// W1, b1, W2, b2, … flat.
    public var parameters: [Float]
    /// Adam's state, when the file has it.
    public var optimizer: OptimizerState?
    public var hyperparameters: AdamHyperparameters?
    /// The learning-rate schedule the run followed, when the file records one (metadata
    /// `schedule`, `schedule.*`), so a resumed run continues it.
    public var schedule: LearningRateSchedule?
    /// The input standardisation, when the model has one (tensors `standardize.mean` and
    /// `standardize.std`, F32, shape [inputs]).
    public var standardization: Standardization?
    /// The target standardisation, when the model has one (tensors `standardize.target.mean`
    /// and `standardize.target.std`, F32, shape [outputs]; MSE only).
    public var targetStandardization: Standardization?
    /// The model's input columns by name, in order, when it was trained from a CSV with a header
    /// row (metadata `data.features`, a JSON array of strings), so that other CSV files are read by
    /// these names (``DataLoader/readTable(path:target:targetRequired:features:classes:textFeatures:dropping:missing:hasHeader:rawColumns:)``).
    /// A column of categories is one name and as many inputs as it has categories.
    public var featureNames: [String]?
    /// When input columns hold categories (one-hot), one entry per input column in order: its
    /// categories, one input each, or nil for a numeric column (metadata `data.categories`, a JSON
    /// array of arrays of strings and nulls). Parallel to `featureNames` when the model records
    /// names, else to a CSV's feature columns by position.
    public var categories: [[String]?]?
    /// When the model was trained with missing values filled, one entry per input column in
    /// order: the value a numeric column's missing values take, or nil for a column of categories
    /// (whose missing values have no category) (metadata `data.fill`, a JSON array of numbers
    /// and nulls). Parallel to `categories` and `featureNames`.
    public var fills: [Float?]?
    /// The CSV columns the model was trained to predict, in the order of its outputs (metadata
    /// `data.target` for one column, `data.targets`, a JSON array of names, for several).
    public var targetNames: [String]?
    /// The one CSV column the model was trained to predict (nil for none or several): ``targetNames`` of one.
    public var targetName: String? {
        get { targetNames.flatMap { $0.count == 1 ? $0[0] : nil } }
        set { targetNames = newValue.map { [$0] } }
    }
    /// For a classifier trained on text labels, the class names: output i is class `classNames[i]`
    /// (metadata `data.classes`, a JSON array of strings).
    public var classNames: [String]?
    /// Other metadata, as strings (for example how the data was shuffled).
    public var metadata: [String: String]

    public init(model: MLP, optimizer: OptimizerState? = nil, hyperparameters: AdamHyperparameters? = nil,
                schedule: LearningRateSchedule? = nil, metadata: [String: String] = [:]) {
        layerSizes = model.layerSizes
        activation = model.activation
        loss = model.loss
        parameters = model.parameters
        standardization = model.standardization
        targetStandardization = model.targetStandardization
        self.optimizer = optimizer
        self.hyperparameters = hyperparameters
        self.schedule = schedule
        self.metadata = metadata
    }

    /// The model, with `loss` used when the file records none.
    /// - Throws: `CheckpointError.missingLoss` when neither gives a loss.
    public func model(defaultLoss: Loss? = nil) throws -> MLP {
        guard let chosen = loss ?? defaultLoss else { throw CheckpointError.missingLoss }
        var model = try MLP(layerSizes: layerSizes, activation: activation, loss: chosen, parameters: parameters,
                            standardization: standardization)
        if targetStandardization != nil, chosen != .meanSquaredError {
            throw ModelError.dataShape("standardised targets go with the mse loss, not \(chosen.rawValue)")
        }
        model.targetStandardization = targetStandardization
        return model
    }

    static let metadataKeys = ["format", "layers", "activation", "activation.slope", "loss", "adam.step",
                               "adam.learning_rate", "adam.beta1", "adam.beta2", "adam.epsilon", "adam.weight_decay",
                               "adam.clip_norm", "data.features", "data.target", "data.classes", "data.categories", "data.fill"] + LearningRateSchedule.metadataKeys

    /// The names of the standardisation's tensors.
    static let standardizationTensors = (mean: "standardize.mean", deviation: "standardize.std")
    /// The names of the target standardisation's tensors.
    static let targetStandardizationTensors = (mean: "standardize.target.mean", deviation: "standardize.target.std")

    // MARK: - Writing

    /// The file's bytes.
    public func encoded() throws -> [UInt8] {
        let layout = try LayerLayout(sizes: layerSizes)
        guard parameters.count == layout.parameterCount else {
            throw ModelError.parameterCount(expected: layout.parameterCount, got: parameters.count)
        }
        var meta: [(String, JSONValue)] = [
            ("format", .string("mlpkit")),
            ("layers", .string(layerSizes.map(String.init).joined(separator: ","))),
            ("activation", .string(activation.kind.rawValue)),
        ]
        if let slope = activation.leakySlope { meta.append(("activation.slope", .string("\(slope)"))) }
        if let loss { meta.append(("loss", .string(loss.rawValue))) }
        if let optimizer { meta.append(("adam.step", .string(String(optimizer.step)))) }
        if let h = hyperparameters {
            meta += [("adam.learning_rate", .string("\(h.learningRate)")), ("adam.beta1", .string("\(h.beta1)")),
                     ("adam.beta2", .string("\(h.beta2)")), ("adam.epsilon", .string("\(h.epsilon)")),
                     ("adam.weight_decay", .string("\(h.weightDecay)"))]
            if let clipNorm = h.clipNorm { meta.append(("adam.clip_norm", .string("\(clipNorm)"))) }
        }
        if let categories {
            let inputs = Self.inputCount(categories)
            guard inputs == layerSizes[0], categories.allSatisfy({ $0.map { !$0.isEmpty } ?? true }) else {
                throw ModelError.dataShape("categories for \(inputs) inputs (columns of none included) for a model that takes \(layerSizes[0])")
            }
            meta.append(("data.categories", .string(JSONValue.array(categories.map { column in
                column.map { .array($0.map { .string($0) }) } ?? .null
            }).serialized)))
        }
        if let fills {
            let columns = categories?.count ?? layerSizes[0]
            guard fills.count == columns, fills.indices.allSatisfy({ (fills[$0] == nil) == (categories?[$0] != nil) }),
                  fills.allSatisfy({ $0?.isFinite ?? true }) else {
                throw ModelError.dataShape("fills for \(fills.count) input columns (finite, none for a column of categories) "
                    + "for a model of \(columns) input columns")
            }
            meta.append(("data.fill", .string(JSONValue.array(fills.map { $0.map { .number(Double($0)) } ?? .null }).serialized)))
        }
        if let featureNames {
            guard featureNames.count == categories?.count ?? layerSizes[0] else {
                throw ModelError.dataShape("\(featureNames.count) feature names for a model that takes "
                    + (categories.map { "\($0.count) input columns" } ?? "\(layerSizes[0]) inputs"))
            }
            meta.append(("data.features", .string(JSONValue.array(featureNames.map { .string($0) }).serialized)))
        }
        if let targetNames {
            guard !targetNames.isEmpty, targetNames.count == 1 || targetNames.count == layerSizes[layerSizes.count - 1],
                  Set(targetNames).count == targetNames.count else {
                throw ModelError.dataShape("\(targetNames.count) target names for a model with \(layerSizes[layerSizes.count - 1]) outputs")
            }
            meta.append(targetNames.count == 1 ? ("data.target", .string(targetNames[0]))
                : ("data.targets", .string(JSONValue.array(targetNames.map { .string($0) }).serialized)))
        }
        if let classNames {
            guard classNames.count == layerSizes[layerSizes.count - 1] else {
                throw ModelError.dataShape("\(classNames.count) class names for a model with \(layerSizes[layerSizes.count - 1]) outputs")
            }
            meta.append(("data.classes", .string(JSONValue.array(classNames.map { .string($0) }).serialized)))
        }
        if let schedule {
            let entries = schedule.metadata
            for key in entries.keys.sorted() { meta.append((key, .string(entries[key] ?? ""))) }
        }
        for key in metadata.keys.sorted() where !Self.metadataKeys.contains(key) {
            meta.append((key, .string(metadata[key] ?? "")))
        }
        var header: [(String, JSONValue)] = [("__metadata__", .object(meta))]
        var data: [Float] = []
        data.reserveCapacity(parameters.count * (optimizer == nil ? 1 : 3))
        func add(_ name: String, _ values: ArraySlice<Float>, shape: [Int]) {
            let start = data.count * 4
            data.append(contentsOf: values)
            header.append((name, .object([
                ("dtype", .string("F32")),
                ("shape", .array(shape.map { .number(Double($0)) })),
                ("data_offsets", .array([.number(Double(start)), .number(Double(data.count * 4))])),
            ])))
        }
        func addAll(_ prefix: String, _ values: [Float]) {
            for i in 1...layout.layerCount {
                let w = layout.weightOffsets[i - 1], b = layout.biasOffsets[i - 1]
                add("\(prefix)W\(i)", values[w..<b], shape: [layerSizes[i], layerSizes[i - 1]])
                add("\(prefix)b\(i)", values[b..<(b + layerSizes[i])], shape: [layerSizes[i]])
            }
        }
        addAll("", parameters)
        if let optimizer {
            guard optimizer.firstMoment.count == parameters.count, optimizer.secondMoment.count == parameters.count else {
                throw ModelError.parameterCount(expected: parameters.count, got: optimizer.firstMoment.count)
            }
            addAll("adam.m.", optimizer.firstMoment)
            addAll("adam.v.", optimizer.secondMoment)
        }
        if let standardization {
            guard standardization.features == layerSizes[0] else {
                throw ModelError.dataShape("the standardisation has \(standardization.features) features but the model takes \(layerSizes[0]) inputs")
            }
            add(Self.standardizationTensors.mean, standardization.mean[...], shape: [layerSizes[0]])
            add(Self.standardizationTensors.deviation, standardization.deviation[...], shape: [layerSizes[0]])
        }
        if let targetStandardization {
            let outputs = layerSizes[layerSizes.count - 1]
            guard targetStandardization.features == outputs else {
                throw ModelError.dataShape("the target standardisation has \(targetStandardization.features) outputs but the model has \(outputs)")
            }
            add(Self.targetStandardizationTensors.mean, targetStandardization.mean[...], shape: [outputs])
            add(Self.targetStandardizationTensors.deviation, targetStandardization.deviation[...], shape: [outputs])
        }
        var headerBytes = Array(JSONValue.object(header).serialized.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + headerBytes.count + data.count * 4)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: headerBytes)
        #if _endian(little)
        data.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        data.withUnsafeBytes { raw in
            for value in raw.bindMemory(to: UInt32.self) {
                withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        #endif
        return bytes
    }

    /// Writes the file atomically (a temporary file in the same folder, then rename).
    /// - Throws: `ModelError.nonFinite` (writing nothing) when a parameter or Adam moment is NaN or
    ///   infinite, so a diverged model never replaces a good checkpoint; `FileError` when writing fails.
    public func save(to path: String) throws {
        guard parameters.allSatisfy({ $0.isFinite }) else {
            throw ModelError.nonFinite("refusing to save \(path): a parameter is NaN or infinite")
        }
        if let optimizer, !(optimizer.firstMoment.allSatisfy({ $0.isFinite }) && optimizer.secondMoment.allSatisfy({ $0.isFinite })) {
            throw ModelError.nonFinite("refusing to save \(path): Adam's state is NaN or infinite")
        }
        try FileIO.writeAtomically(try encoded(), to: path)
    }

    // MARK: - Reading

    /// Reads and validates a checkpoint file.
    /// - Throws: `CheckpointError` naming what is wrong, or `FileError`.
    public static func load(from path: String) throws -> Checkpoint {
        do {
            return try decode(try FileIO.read(path))
        } catch let error as CheckpointError {
            throw CheckpointError.invalid(path: path, reason: error.reason)
        }
    }

    /// A metadata value as an error message shows it, on one line: quoted when empty, cut at 40
    /// characters, control characters escaped (`\n`, `\u{1b}`).
    static func shown(_ text: String) -> String {
        text.isEmpty ? "\"\"" : Excerpt.escape(text)
    }

    /// How `mlp train` batched the data (`training.*`, read back by a resumed run): each key, when
    /// present, must hold a value the run could have written.
    static func validateTrainingMetadata(_ metadata: [String: String], outputs: Int) throws {
        func fail(_ key: String, _ text: String, _ expected: String) -> CheckpointError {
            .invalid(path: "", reason: "\(key) \(shown(text)) is not \(expected)")
        }
        if let text = metadata["training.batch_size"], !(Int(text).map { $0 >= 1 } ?? false) {
            throw fail("training.batch_size", text, "an integer from 1 to \(Int.max)")
        }
        if let text = metadata["training.seed"], UInt64(text) == nil {
            throw fail("training.seed", text, "an integer from 0 to \(UInt64.max)")
        }
        if let text = metadata["training.shuffle"], text != "true", text != "false" {
            throw fail("training.shuffle", text, "true or false")
        }
        if let text = metadata["training.validation_split"], !(Double(text).map { $0 > 0 && $0 < 1 } ?? false) {
            throw fail("training.validation_split", text, "a number strictly between 0 and 1")
        }
        for key in ["training.class_weights", "training.pos_weights"] {
            guard let text = metadata[key] else { continue }
            let weights = text.split(separator: ",", omittingEmptySubsequences: false).map { Float($0) }
            guard weights.count == outputs, weights.allSatisfy({ $0.map { $0.isFinite && $0 >= 0 } ?? false }) else {
                throw fail(key, text, "\(outputs) non-negative numbers separated by commas, one per output")
            }
        }
    }

    /// `data.features`, `data.target`, `data.classes` and `data.categories`, checked: the
    /// categories a JSON array with, for each input column, null or an array of distinct strings,
    /// one input each, together as many inputs as the model has; the features a JSON array of as
    /// many distinct strings as there are input columns (the model's inputs without categories),
    /// the target none of them; the classes as many distinct strings as the model has outputs.
    static func dataColumns(_ metadata: [String: String], inputs: Int, outputs: Int) throws
        -> (features: [String]?, targets: [String]?, classes: [String]?, categories: [[String]?]?)
    {
        func fail(_ reason: String) -> CheckpointError { .invalid(path: "", reason: reason) }
        /// A JSON array of distinct strings, or nil when `value` is not an array of strings.
        func distinctNames(_ value: JSONValue?, key: String, one: String) throws -> [String]? {
            let items = value?.arrayValue
            let names = items?.compactMap(\.stringValue) ?? []
            guard let items, names.count == items.count else { return nil }
            var seen = Set<String>()
            for name in names where !seen.insert(name).inserted {
                throw fail("\(key) names the \(one) \(shown(name)) twice")
            }
            return names
        }
        // `what`: the kind of name, and the model's count it must equal (inputs or outputs)
        func names(_ key: String, count: Int, what: (one: String, many: String, model: String)) throws -> [String]? {
            guard let text = metadata[key] else { return nil }
            guard let names = try distinctNames(try? JSONValue.parse(Array(text.utf8)), key: key, one: what.one) else {
                throw fail("\(key) \(shown(text)) is not a JSON array of \(what.one) names")
            }
            guard names.count == count else {
                throw fail("\(key) names \(names.count) \(names.count == 1 ? what.one : what.many) but the model has \(count) \(what.model)")
            }
            return names
        }
        var categories: [[String]?]?
        if let text = metadata["data.categories"] {
            guard let items = (try? JSONValue.parse(Array(text.utf8)))?.arrayValue else {
                throw fail("data.categories \(shown(text)) is not a JSON array")
            }
            categories = try items.map { item in
                if item == .null { return nil }
                guard let names = try distinctNames(item, key: "data.categories", one: "category"), !names.isEmpty else {
                    throw fail("data.categories \(shown(text)) holds something other than null or a non-empty array of category names")
                }
                return names
            }
            let width = categories.map(inputCount) ?? 0
            guard width == inputs else {
                throw fail("data.categories makes \(width) inputs but the model has \(inputs)")
            }
        }
        // one target column, or one per output
        var targets = metadata["data.target"].map { [$0] }
        if metadata["data.targets"] != nil {
            guard targets == nil else { throw fail("data.target and data.targets both name the targets; a file has one of them") }
            targets = try names("data.targets", count: outputs, what: ("target", "targets", "outputs"))
            guard outputs >= 2 else { throw fail("data.targets is for several targets; one is data.target") }
        }
        let columns = categories?.count ?? inputs
        let features = try names("data.features", count: columns,
                                 what: ("column", "columns", categories == nil ? "inputs" : "input columns"))
        if let target = targets?.first(where: { features?.contains($0) ?? false }) {
            throw fail(targets!.count == 1 ? "data.target \(shown(target)) is also one of data.features"
                : "data.targets names \(shown(target)), also one of data.features")
        }
        return (features, targets, try names("data.classes", count: outputs, what: ("class", "classes", "outputs")), categories)
    }

    /// The model inputs of input columns with these categories: one per category, one per numeric column (nil).
    static func inputCount(_ categories: [[String]?]) -> Int {
        categories.reduce(0) { $0 + ($1?.count ?? 1) }
    }

    /// `data.fill`, checked: a JSON array with one entry per input column (`columns`), a finite
    /// number for a numeric one and null for a column of categories (`categories`).
    static func fills(_ metadata: [String: String], columns: Int, categories: [[String]?]?) throws -> [Float?]? {
        guard let text = metadata["data.fill"] else { return nil }
        func fail(_ reason: String) -> CheckpointError { .invalid(path: "", reason: "data.fill \(shown(text)) \(reason)") }
        guard let items = (try? JSONValue.parse(Array(text.utf8)))?.arrayValue else { throw fail("is not a JSON array") }
        guard items.count == columns else { throw fail("has \(items.count) entries but the model has \(columns) input columns") }
        return try items.enumerated().map { column, item in
            let isCategories = categories?[column] != nil
            if item == .null, isCategories { return nil }
            guard case .number(let value) = item, !isCategories, Float(value).isFinite else {
                throw fail("has \(isCategories ? "a value for" : "no finite number for") input column \(column + 1)"
                    + (isCategories ? ", a column of categories (null: no category)" : ""))
            }
            return Float(value)
        }
    }

    /// The names W1, b1, W2, b2, … for the tensors of a PyTorch `nn.Sequential` of `nn.Linear`
    /// layers saved as its state dict: `0.weight`, `0.bias`, `2.weight`, … (activations between
    /// them hold no tensors), all under one prefix such as `net.` or none, taken in the order of
    /// the layers' indices; a lone `nn.Linear`'s `weight` and `bias` are layer 1. A layer made
    /// with `bias=False` has a weight alone (its W is renamed, and the reader gives it a bias of
    /// zeros). Empty unless every name is such a weight or bias and each index has a weight (a
    /// bias alone, or any other module's tensors, is not an MLP this reads).
    static func sequentialNames(_ names: [String]) -> [String: String] {
        var prefix: Substring?
        var layers: [Int: (weight: String?, bias: String?)] = [:]
        for name in names {
            let isWeight = name.hasSuffix("weight")
            guard isWeight || name.hasSuffix("bias") else { return [:] }
            let stem = name.dropLast(isWeight ? 6 : 4)
            let index: Int, namePrefix: Substring
            if stem.isEmpty {
                (index, namePrefix) = (0, "")
            } else {
                guard stem.hasSuffix(".") else { return [:] }
                let head = stem.dropLast()
                let digits = head.reversed().prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty, digits.count <= 9, let value = Int(String(digits.reversed())) else { return [:] }
                namePrefix = head.dropLast(digits.count)
                guard namePrefix.isEmpty || namePrefix.hasSuffix(".") else { return [:] }
                index = value
            }
            if let prefix, prefix != namePrefix { return [:] }
            prefix = namePrefix
            // one weight and one bias an index ("weight" beside "0.weight", or "0.bias" beside "00.bias", is not)
            var layer = layers[index] ?? (nil, nil)
            guard (isWeight ? layer.weight : layer.bias) == nil else { return [:] }
            if isWeight { layer.weight = name } else { layer.bias = name }
            layers[index] = layer
        }
        var renamed: [String: String] = [:]
        for (position, index) in layers.keys.sorted().enumerated() {
            guard let weight = layers[index]?.weight else { return [:] }
            renamed[weight] = "W\(position + 1)"
            if let bias = layers[index]?.bias { renamed[bias] = "b\(position + 1)" }
        }
        return renamed
    }

    /// Parses and validates a checkpoint's bytes: the safetensors layout (the data section ends
    /// with the last tensor, as in the reference loader), the tensors, and the metadata the
    /// trainer reads back (`adam.step` at most 2^53, Adam's hyperparameters under the trainer's
    /// rules, `schedule.*`, `training.*`).
    /// - Throws: `CheckpointError.invalid` naming what is wrong, a metadata key with its value.
    public static func decode(_ bytes: [UInt8]) throws -> Checkpoint {
        func fail(_ reason: String) -> CheckpointError { .invalid(path: "", reason: reason) }
        guard bytes.count >= 8 else { throw fail("the file is \(bytes.count) bytes, too short for a safetensors header") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength >= 2, headerLength <= UInt64(bytes.count - 8) else {
            throw fail("the header length \(headerLength) does not fit the file's \(bytes.count) bytes")
        }
        let dataStart = 8 + Int(headerLength)
        let header: JSONValue
        do {
            header = try JSONValue.parse(bytes[8..<dataStart])
        } catch let error as JSONValue.ParseError {
            throw fail("the header is not valid JSON (\(error.reason) at byte \(error.offset + 8))")
        }
        guard case .object(let members) = header else { throw fail("the header is not a JSON object") }
        let dataLength = bytes.count - dataStart

        // Every tensor: its dtype, shape and byte range, checked against the data. A PyTorch
        // nn.Sequential's state dict reads under the names W1, b1, … (messages keep its own).
        let renamed = sequentialNames(members.map { $0.0 }.filter { $0 != "__metadata__" })
        var tensors: [String: (shape: [Int], range: Range<Int>)] = [:]
        var metadata: [String: String] = [:]
        var ranges: [Range<Int>] = []
        for (originalName, value) in members {
            let name = renamed[originalName] ?? originalName
            let shownName = shown(originalName)
            if name == "__metadata__" {
                guard case .object(let entries) = value else { throw fail("__metadata__ is not an object") }
                for (key, entry) in entries {
                    guard let text = entry.stringValue else { throw fail("metadata \(shown(key)) is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard tensors[name] == nil else { throw fail("tensor \(shownName) appears twice") }
            guard let dtype = value["dtype"]?.stringValue else { throw fail("tensor \(shownName) has no dtype") }
            guard let shapeValues = value["shape"]?.arrayValue,
                  let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].integerValue, let end = offsets[1].integerValue
            else { throw fail("tensor \(shownName) has no valid shape or data_offsets") }
            var shape: [Int] = []
            var elements = 1
            for dimension in shapeValues {
                guard let size = dimension.integerValue, size >= 0, size <= 1 << 31 else {
                    throw fail("tensor \(shownName) has an invalid shape")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: size)
                guard !overflow, product <= dataLength else { throw fail("tensor \(shownName)'s shape is larger than the file") }
                elements = product
                shape.append(size)
            }
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw fail("tensor \(shownName)'s data_offsets [\(begin), \(end)] lie outside the \(dataLength) data bytes")
            }
            let isModelTensor = name.hasPrefix("W") || name.hasPrefix("b") || name.hasPrefix("adam.")
                || name.hasPrefix("standardize.")
            if isModelTensor {
                guard dtype == "F32" else { throw fail("tensor \(shownName) is \(dtype); MLPKit reads F32 only (from PyTorch, save each tensor as .float())") }
                guard end - begin == elements * 4 else {
                    throw fail("tensor \(shownName) has \(end - begin) bytes but its shape \(shape) needs \(elements * 4)")
                }
            }
            ranges.append(begin..<end)
            tensors[name] = (shape, begin..<end)
        }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        for (first, second) in zip(ranges, ranges.dropFirst()) where second.lowerBound < first.upperBound {
            throw fail("tensors overlap in the data")
        }

        // The architecture, from W1, W2, … and their biases.
        var layerCount = 0
        while tensors["W\(layerCount + 1)"] != nil { layerCount += 1 }
        guard layerCount >= 1 else {
            throw fail("no tensor W1: not an MLPKit checkpoint, a converted PyTorch MLP (W1, b1, …) or an nn.Sequential "
                       + "of nn.Linear layers (0.weight, 0.bias, …)")
        }
        // a renamed tensor is named in messages as the file names it
        let original = Dictionary(renamed.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        func W(_ i: Int) -> String { shown(original["W\(i)"] ?? "W\(i)") }
        func b(_ i: Int) -> String { shown(original["b\(i)"] ?? "b\(i)") }
        var sizes: [Int] = []
        // the layers of an nn.Sequential saved without their bias (nn.Linear(…, bias=False)): zeros
        var zeroBiases: Set<Int> = []
        for i in 1...layerCount {
            guard let weight = tensors["W\(i)"], weight.shape.count == 2 else { throw fail("\(W(i)) is not a matrix") }
            let (outputs, inputs) = (weight.shape[0], weight.shape[1])
            if let bias = tensors["b\(i)"] {
                guard bias.shape == [outputs] else { throw fail("\(b(i)) has shape \(bias.shape) but \(W(i)) has \(outputs) rows") }
            } else if original["W\(i)"] != nil {
                zeroBiases.insert(i)
            } else {
                throw fail("\(W(i)) has no bias b\(i)")
            }
            guard outputs >= 1, inputs >= 1 else { throw fail("\(W(i)) has an empty shape \(weight.shape)") }
            if i == 1 {
                sizes.append(inputs)
            } else if inputs != sizes[i - 1] {
                throw fail("\(W(i)) takes \(inputs) inputs but layer \(i - 1) has \(sizes[i - 1]) outputs")
            }
            sizes.append(outputs)
        }
        if let recorded = metadata["layers"], recorded != sizes.map(String.init).joined(separator: ",") {
            throw fail("the metadata's layers \(recorded) disagree with the tensors' shapes \(sizes)")
        }
        let layout: LayerLayout
        do { layout = try LayerLayout(sizes: sizes) } catch { throw fail("\(error)") }
        // As in the reference loader, the data section ends where the last tensor does. Checked
        // after the architecture, so a file with wrong shapes is told so first ...
        // and the tensors' data follow one another from byte 0 with no gap between them
        var covered = 0
        for range in ranges {
            guard range.lowerBound == covered else {
                throw fail("the data has \(range.lowerBound - covered) bytes at byte \(covered) that no tensor's data_offsets cover")
            }
            covered = range.upperBound
        }
        let dataEnd = covered  // the sorted ranges follow one another, so the last one's end
        guard dataEnd == dataLength else {
            let extra = dataLength - dataEnd
            throw fail("\(extra) \(extra == 1 ? "byte follows" : "bytes follow") the last tensor's data (the tensors end at byte \(dataEnd) of the \(dataLength) data bytes)")
        }

        func floats(_ range: Range<Int>) -> [Float] {
            var values = [Float](repeating: 0, count: range.count / 4)
            for index in 0..<values.count {
                let at = dataStart + range.lowerBound + index * 4
                let bits = UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
                values[index] = Float(bitPattern: bits)
            }
            return values
        }
        func gather(_ prefix: String) throws -> [Float]? {
            var values: [Float] = []
            values.reserveCapacity(layout.parameterCount)
            for i in 1...layerCount {
                if prefix.isEmpty, zeroBiases.contains(i), let weight = tensors["W\(i)"] {
                    values += floats(weight.range)
                    values += [Float](repeating: 0, count: sizes[i])
                    continue
                }
                guard let weight = tensors["\(prefix)W\(i)"], let bias = tensors["\(prefix)b\(i)"] else {
                    if prefix.isEmpty || i == 1 && tensors["\(prefix)W1"] == nil { return nil }
                    throw fail("\(prefix)W\(i) or \(prefix)b\(i) is missing")
                }
                guard weight.shape == [sizes[i], sizes[i - 1]], bias.shape == [sizes[i]] else {
                    throw fail("\(prefix)W\(i) or \(prefix)b\(i) does not match the model's shapes")
                }
                values += floats(weight.range)
                values += floats(bias.range)
            }
            return values
        }
        guard let parameters = try gather("") else { throw fail("the model's tensors are incomplete") }
        guard parameters.allSatisfy(\.isFinite) else { throw fail("a parameter is NaN or infinite") }

        var checkpoint = Checkpoint(
            model: try MLP(layerSizes: sizes, loss: .meanSquaredError, parameters: parameters))
        checkpoint.loss = nil
        if let name = metadata["activation"] {
            guard let kind = Activation(rawValue: name) else { throw fail("unknown activation \(shown(name))") }
            var slope = ActivationFunction.defaultLeakySlope
            if kind == .leakyReLU, let text = metadata["activation.slope"] {
                guard let value = Float(text), value.isFinite, value >= 0 else {
                    throw fail("activation.slope \(shown(text)) is not a non-negative number")
                }
                slope = value
            }
            checkpoint.activation = ActivationFunction(kind, leakySlope: slope)
        }
        /// A standardisation from its two tensors of shape [size] (`what` names the size), or nil without them.
        func standardization(_ names: (mean: String, deviation: String), size: Int, what: String, kind: String)
            throws(CheckpointError) -> Standardization?
        {
            guard let mean = tensors[names.mean], let deviation = tensors[names.deviation] else {
                if tensors[names.mean] != nil || tensors[names.deviation] != nil {
                    throw fail("the \(kind) needs both \(names.mean) and \(names.deviation)")
                }
                return nil
            }
            guard mean.shape == [size], deviation.shape == [size] else {
                throw fail("\(names.mean) and \(names.deviation) must have shape [\(size)], the model's \(what)")
            }
            do {
                return try Standardization(mean: floats(mean.range), deviation: floats(deviation.range))
            } catch {
                throw fail("\(error)")
            }
        }
        checkpoint.standardization = try standardization(Self.standardizationTensors, size: sizes[0], what: "inputs",
                                                         kind: "standardisation")
        checkpoint.targetStandardization = try standardization(Self.targetStandardizationTensors, size: sizes[sizes.count - 1],
                                                               what: "outputs", kind: "target standardisation")
        let targetMeanName = Self.targetStandardizationTensors.mean
        if let name = metadata["loss"] {
            guard let loss = Loss(rawValue: name) else { throw fail("unknown loss \(shown(name))") }
            checkpoint.loss = loss
        }
        if checkpoint.targetStandardization != nil, let loss = checkpoint.loss, loss != .meanSquaredError {
            throw fail("standardised targets (\(targetMeanName)) go with the mse loss, not \(loss.rawValue)")
        }
        let m = try gather("adam.m."), v = try gather("adam.v.")
        if let m, let v {
            guard let text = metadata["adam.step"] else { throw fail("the Adam state has no valid adam.step in the metadata") }
            guard let step = Int(text), step >= 0, step <= OptimizerState.maximumStep else {
                throw fail("the Adam state has no valid adam.step in the metadata: \(shown(text)) is not an integer from 0 to \(OptimizerState.maximumStep) (2^53)")
            }
            // moments that Adam itself could not have made: training from them would be NaN (or,
            // for a negative v, the square root of a negative number) from the first step
            if let bad = m.firstIndex(where: { !$0.isFinite }) {
                throw fail("adam.m holds \(m[bad]) at parameter \(bad): Adam's first moments must be finite")
            }
            if let bad = v.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
                throw fail("adam.v holds \(v[bad]) at parameter \(bad): Adam's second moments must be finite and not negative")
            }
            checkpoint.optimizer = OptimizerState(step: step, firstMoment: m, secondMoment: v)
        } else if m != nil || v != nil {
            throw fail("the Adam state needs both adam.m.* and adam.v.*")
        }
        // Adam's hyperparameters, each checked as the trainer checks it (TrainingSession.validate),
        // so a file that loads also trains: the four constants together, the AdamW ones optional.
        func number(_ key: String, _ expected: String, _ isValid: (Float) -> Bool) throws -> Float? {
            guard let text = metadata[key] else { return nil }
            guard let value = Float(text), isValid(value) else { throw fail("\(key) \(shown(text)) is not \(expected)") }
            return value
        }
        let constants = [
            ("adam.learning_rate", try number("adam.learning_rate", "a non-negative number") { $0.isFinite && $0 >= 0 }),
            ("adam.beta1", try number("adam.beta1", "a number in [0, 1)") { $0 >= 0 && $0 < 1 }),
            ("adam.beta2", try number("adam.beta2", "a number in [0, 1)") { $0 >= 0 && $0 < 1 }),
            ("adam.epsilon", try number("adam.epsilon", "a positive number") { $0.isFinite && $0 > 0 }),
        ]
        let weightDecay = try number("adam.weight_decay", "a non-negative number") { $0.isFinite && $0 >= 0 }
        let clipNorm = try number("adam.clip_norm", "a positive number") { $0.isFinite && $0 > 0 }
        if constants.contains(where: { $0.1 != nil }) || weightDecay != nil || clipNorm != nil {
            if let missing = constants.first(where: { $0.1 == nil }) {
                throw fail("the metadata records Adam's hyperparameters without \(missing.0)")
            }
            let hyperparameters = AdamHyperparameters(
                learningRate: constants[0].1!, beta1: constants[1].1!, beta2: constants[2].1!, epsilon: constants[3].1!,
                weightDecay: weightDecay ?? 0, clipNorm: clipNorm)
            do { try TrainingSession<CPUBackend>.validate(hyperparameters) } catch { throw fail("\(error)") }
            checkpoint.hyperparameters = hyperparameters
        }
        try validateTrainingMetadata(metadata, outputs: sizes[sizes.count - 1])
        (checkpoint.featureNames, checkpoint.targetNames, checkpoint.classNames, checkpoint.categories) = try dataColumns(
            metadata, inputs: sizes[0], outputs: sizes[sizes.count - 1])
        checkpoint.fills = try fills(metadata, columns: checkpoint.categories?.count ?? sizes[0], categories: checkpoint.categories)
        do {
            checkpoint.schedule = try LearningRateSchedule(metadata: metadata)
        } catch {
            throw fail("\(error)")
        }
        checkpoint.metadata = metadata.filter { !metadataKeys.contains($0.key) }
        return checkpoint
    }
}

/// Why a checkpoint could not be read.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case invalid(path: String, reason: String)
    case missingLoss

    var reason: String {
        switch self {
        case .invalid(_, let reason): return reason
        case .missingLoss: return "the checkpoint records no loss: give one (defaultLoss)"
        }
    }

    public var description: String {
        switch self {
        case let .invalid(path, reason):
            return path.isEmpty ? "invalid checkpoint: \(reason)" : "invalid checkpoint \(path): \(reason)"
        case .missingLoss:
            return reason
        }
    }
}
