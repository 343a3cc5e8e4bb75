/// Rows of inputs with their targets, in host memory, validated.
public struct Dataset: Sendable, Equatable {
    /// Row-major inputs, `rows × features`.
    public let inputs: [Float]
    /// Row-major targets, `rows × targetWidth`: class indices (one per row) or dense rows.
    public let targets: [Float]
    public let rows: Int
    public let features: Int
    public let targetEncoding: TargetEncoding
    /// Floats per target row: 1 for class indices, else the number of outputs.
    public let targetWidth: Int
    /// One weight per row for the training loss (``weighted(by:)``), or nil: every row weighs 1.
    public private(set) var rowWeights: [Float]?

    /// The most rows a data set may have, 2^24: and so the most a batch, a batch schedule or a
    /// benchmark's random data may have.
    public static let maximumRows = 1 << 24

    /// 2^24, up to which Float32 represents every integer exactly: the bound on class labels.
    public static let exactIntegerLimit: Float = 16_777_216

    /// - Throws: `ModelError.dataShape` when counts disagree, `ModelError.nonFinite` on NaN or
    ///   infinity, and for class indices anything that is not a non-negative integer.
    public init(inputs: [Float], features: Int, targets: [Float], encoding: TargetEncoding, targetWidth: Int) throws {
        guard features >= 1, targetWidth >= 1, encoding == .dense || targetWidth == 1 else {
            throw ModelError.dataShape("a data set needs at least one feature and one target column")
        }
        guard inputs.count % features == 0, !inputs.isEmpty else {
            throw ModelError.dataShape("\(inputs.count) input values do not make rows of \(features) features")
        }
        let rows = inputs.count / features
        guard rows <= Self.maximumRows else {
            throw ModelError.dataShape("\(rows) rows is more than the \(Self.maximumRows) a data set may have")
        }
        // rows ≤ 2^24, but targetWidth is the caller's: the product must not overflow
        let (expectedTargets, overflow) = rows.multipliedReportingOverflow(by: targetWidth)
        guard !overflow else {
            throw ModelError.dataShape("\(rows) rows of \(targetWidth) target columns is more values than can be counted")
        }
        guard targets.count == expectedTargets else {
            throw ModelError.dataShape("\(rows) input rows but \(targets.count / targetWidth) target rows")
        }
        if let bad = inputs.firstIndex(where: { !$0.isFinite }) {
            throw ModelError.nonFinite("input row \(bad / features + 1), column \(bad % features + 1) is \(inputs[bad])")
        }
        if let bad = targets.firstIndex(where: { !$0.isFinite }) {
            throw ModelError.nonFinite("target row \(bad / targetWidth + 1) is \(targets[bad])")
        }
        if encoding == .classIndices, let bad = targets.firstIndex(where: { $0 < 0 || $0.rounded() != $0 || $0 > Self.exactIntegerLimit }) {
            if targets[bad] > Self.exactIntegerLimit {
                throw ModelError.dataShape("target row \(bad + 1): class label \(CSVFile.format(targets[bad])) is too large (Float32 represents integers exactly only up to 16,777,216)")
            }
            throw ModelError.dataShape("target row \(bad + 1): class label \(targets[bad]) is not a non-negative integer")
        }
        self.inputs = inputs
        self.targets = targets
        self.rows = rows
        self.features = features
        self.targetEncoding = encoding
        self.targetWidth = targetWidth
    }

    /// The number of classes the labels imply (largest label + 1), for class indices; nil when
    /// the largest target is not a class label (a non-negative integer up to 16,777,216), as
    /// dense targets may not be.
    public var labelClassCount: Int? {
        let largest = targets.max() ?? 0
        guard largest >= 0, largest <= Self.exactIntegerLimit, let label = Int(exactly: largest) else { return nil }
        return label + 1
    }

    /// The rows at `indices`, in that order.
    /// - Throws: `ModelError.dataShape` for an index outside 0..<rows, or when there are no
    ///   indices or more than the 16777216 rows a data set may have.
    public func subset(_ indices: some Collection<Int>) throws -> Dataset {
        guard !indices.isEmpty else {
            throw ModelError.dataShape("a subset needs at least one row")
        }
        guard indices.count <= Self.maximumRows else {
            throw ModelError.dataShape("\(indices.count) rows is more than the \(Self.maximumRows) a data set may have")
        }
        if let bad = indices.first(where: { $0 < 0 || $0 >= rows }) {
            throw ModelError.dataShape("row index \(bad) is outside the data set's rows 0..<\(rows)")
        }
        var newInputs: [Float] = [], newTargets: [Float] = []
        newInputs.reserveCapacity(indices.count * features)
        newTargets.reserveCapacity(indices.count * targetWidth)
        for row in indices {
            newInputs.append(contentsOf: inputs[(row * features)..<((row + 1) * features)])
            newTargets.append(contentsOf: targets[(row * targetWidth)..<((row + 1) * targetWidth)])
        }
        var part = Dataset(validatedInputs: newInputs, features: features, targets: newTargets,
                           encoding: targetEncoding, targetWidth: targetWidth)
        part.rowWeights = rowWeights.map { weights in indices.map { weights[$0] } }
        return part
    }

    /// These rows with a weight each (nil: none), by which training scales each row's loss and
    /// gradient: L = 1/B·Σ_i w_i·ℓ_i over a batch of B rows (Keras' and scikit-learn's
    /// `sample_weight`), so that a whole-number weight counts a row as that many copies of it.
    /// A subset or split keeps its rows' weights.
    /// - Throws: `ModelError.dataShape` unless there is one weight per row, `ModelError.nonFinite`
    ///   for NaN or infinity, and `ModelError.invalidHyperparameter` for a negative weight or
    ///   weights that are all 0.
    public func weighted(by weights: [Float]?) throws -> Dataset {
        var weighted = self
        if let weights {
            guard weights.count == rows else {
                throw ModelError.dataShape("\(weights.count) row weights for \(rows) rows")
            }
            if let bad = weights.firstIndex(where: { !$0.isFinite }) {
                throw ModelError.nonFinite("row \(bad + 1)'s weight is \(weights[bad])")
            }
            if let bad = weights.firstIndex(where: { $0 < 0 }) {
                throw ModelError.invalidHyperparameter("row \(bad + 1)'s weight is \(CSVFile.format(weights[bad])); weights must not be negative")
            }
            guard weights.contains(where: { $0 > 0 }) else {
                throw ModelError.invalidHyperparameter("every row's weight is 0")
            }
        }
        weighted.rowWeights = weights
        return weighted
    }

    /// Rows already known to be valid (taken from a valid data set).
    private init(validatedInputs: [Float], features: Int, targets: [Float], encoding: TargetEncoding, targetWidth: Int) {
        inputs = validatedInputs
        self.targets = targets
        rows = validatedInputs.count / features
        self.features = features
        targetEncoding = encoding
        self.targetWidth = targetWidth
    }

    /// Checks that this data fits a model with `layout` trained with `loss`.
    /// - Throws: `ModelError.dataShape` naming the mismatch.
    public func validate(for layout: LayerLayout, loss: Loss) throws {
        // class indices are checked non-negative integers up to 2^24 when made, so the count exists
        try layout.checkFits(features: features, encoding: targetEncoding, targetWidth: targetWidth,
                             labelClassCount: targetEncoding == .classIndices ? labelClassCount : nil,
                             unknownLabel: "\(targets.max() ?? 0)")
        _ = loss
    }
}

extension LayerLayout {
    /// Checks that data with `features` inputs and its targets (class indices implying
    /// `labelClassCount` classes, or dense rows `targetWidth` wide) fit a model of this layout:
    /// for a `Dataset` and for data already on a backend alike.
    /// - Throws: `ModelError.dataShape` naming the mismatch (`unknownLabel` stands for the label
    ///   when there is no class count).
    func checkFits(features: Int, encoding: TargetEncoding, targetWidth: Int, labelClassCount: Int?,
                   unknownLabel: @autoclosure () -> String) throws {
        guard features == inputs else {
            throw ModelError.dataShape("the data has \(features) features but the model takes \(inputs) inputs")
        }
        switch encoding {
        case .classIndices:
            guard targetWidth == 1 else {
                throw ModelError.dataShape("class-index data has \(targetWidth) target columns instead of 1")
            }
            guard let classes = labelClassCount, classes <= outputs else {
                let label = labelClassCount.map { "\($0 - 1)" } ?? unknownLabel()
                throw ModelError.dataShape("class label \(label) is outside the model's \(outputs) classes (0…\(outputs - 1))")
            }
        case .dense:
            guard targetWidth == outputs else {
                throw ModelError.dataShape("the data has \(targetWidth) target columns but the model has \(outputs) outputs")
            }
        }
    }
}

extension Dataset {
    /// Splits off a seeded random `fraction` of the rows for validation.
    /// - Returns: (training rows, validation rows), each in the original row order.
    /// - Throws: `ModelError.invalidHyperparameter` unless 0 < fraction < 1 and both parts get a row.
    public func split(validationFraction fraction: Double, seed: UInt64) throws -> (training: Dataset, validation: Dataset) {
        let (trainingRows, validationRows) = try Self.splitRows(rows, validationFraction: fraction, seed: seed)
        return (try subset(trainingRows), try subset(validationRows))
    }

    /// The rows of each of `folds` parts of a data set of `rows` rows, for cross-validation: a
    /// seeded random permutation of the rows (``SeededGenerator/permutation(_:)`` from
    /// `SeededGenerator(seed: seed ^ 0xF01D_F01D_F01D_F01D)`) cut into `folds` runs as equal as can
    /// be (the first `rows % folds` one row longer), each in increasing order.
    /// - Throws: `ModelError.invalidHyperparameter` unless 2 ≤ folds ≤ rows.
    public static func foldRows(_ rows: Int, folds: Int, seed: UInt64) throws -> [[Int]] {
        guard folds >= 2, folds <= rows else {
            throw ModelError.invalidHyperparameter("\(folds) folds need at least 2 folds and a row for each; the data has \(rows) rows")
        }
        var generator = SeededGenerator(seed: seed ^ 0xF01D_F01D_F01D_F01D)
        let order = generator.permutation(rows)
        var parts: [[Int]] = []
        var start = 0
        for fold in 0..<folds {
            let count = rows / folds + (fold < rows % folds ? 1 : 0)
            parts.append(order[start..<(start + count)].sorted())
            start += count
        }
        return parts
    }

    /// The rows ``split(validationFraction:seed:)`` gives each part of a data set of `rows` rows,
    /// each part in increasing order.
    /// - Throws: as ``split(validationFraction:seed:)``.
    public static func splitRows(_ rows: Int, validationFraction fraction: Double, seed: UInt64) throws
        -> (training: [Int], validation: [Int])
    {
        guard fraction > 0, fraction < 1 else {
            throw ModelError.invalidHyperparameter("the validation split must lie strictly between 0 and 1, got \(fraction)")
        }
        let count = Int((Double(rows) * fraction).rounded())
        guard count >= 1, count < rows else {
            throw ModelError.invalidHyperparameter("a validation split of \(fraction) of \(rows) rows leaves no rows for one part")
        }
        var generator = SeededGenerator(seed: seed ^ 0x5EED_5EED_5EED_5EED)
        let held = Set(generator.permutation(rows).prefix(count))
        return ((0..<rows).filter { !held.contains($0) }, (0..<rows).filter { held.contains($0) })
    }
}
