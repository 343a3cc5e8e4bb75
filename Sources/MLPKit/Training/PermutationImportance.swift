/// Permutation importance: how much a model's loss grows when one input column's values are
/// shuffled across the rows, breaking its link with the target while keeping its distribution
/// (Breiman 2001; scikit-learn's `permutation_importance`). A column of categories is shuffled
/// as a whole: its one-hot inputs move together, row by row.
public enum PermutationImportance {
    /// The inputs of each column: one input per numeric column, and one per category for a
    /// column of categories, in order (`categories`: per column, nil or its categories; nil
    /// altogether: every input is a column of its own).
    /// - Throws: `ModelError.dataShape` when the columns do not make `inputs` inputs.
    public static func columns(categories: [[String]?]?, inputs: Int) throws -> [Range<Int>] {
        guard let categories else { return (0..<inputs).map { $0..<($0 + 1) } }
        var ranges: [Range<Int>] = []
        var start = 0
        for column in categories {
            let width = column?.count ?? 1
            ranges.append(start..<(start + width))
            start += width
        }
        guard start == inputs else {
            throw ModelError.dataShape("the columns' categories make \(start) inputs, but the model takes \(inputs)")
        }
        return ranges
    }

    /// The row orders of every shuffle, `[repeat][column]`: drawn from one generator seeded with
    /// `seed`, repeat after repeat, column after column, each a permutation of `0..<rows`
    /// (``SeededGenerator/permutation(_:)``). Row i of a shuffled column takes row `order[i]`'s values.
    public static func orders(rows: Int, columns: Int, repeats: Int, seed: UInt64) -> [[[Int]]] {
        var generator = SeededGenerator(seed: seed)
        return (0..<repeats).map { _ in (0..<columns).map { _ in generator.permutation(rows) } }
    }

    /// `inputs` (rows of `features`) with the inputs `column` moved from row `order[i]` to row i.
    public static func shuffled(_ inputs: [Float], features: Int, column: Range<Int>, order: [Int]) -> [Float] {
        var result = inputs
        for (row, source) in order.enumerated() {
            for input in column { result[row * features + input] = inputs[source * features + input] }
        }
        return result
    }

    /// One column's figures over its shuffles.
    public struct Column: Sendable, Equatable {
        /// The loss with the column shuffled minus the loss without, per shuffle.
        public var increases: [Double]
        /// The accuracy without minus the accuracy with the column shuffled, per shuffle (classification).
        public var accuracyDecreases: [Double]?

        public init(increases: [Double], accuracyDecreases: [Double]?) {
            self.increases = increases
            self.accuracyDecreases = accuracyDecreases
        }

        /// The mean increase of the loss.
        public var meanIncrease: Double { Self.mean(increases) }
        /// The standard deviation of the increases (population; 0 for one shuffle).
        public var deviation: Double { Self.deviation(increases) }
        public var meanAccuracyDecrease: Double? { accuracyDecreases.map(Self.mean) }

        static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
        static func deviation(_ values: [Double]) -> Double {
            let mean = mean(values)
            return (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
        }
    }

    /// Each column's figures: `evaluate` gives the loss (and accuracy) of a set of inputs, and is
    /// called once per shuffle; `base` is its result for `inputs` as they are.
    public static func measure(inputs: [Float], features: Int, columns: [Range<Int>], repeats: Int, seed: UInt64,
                               base: (loss: Double, accuracy: Double?),
                               evaluate: ([Float]) throws -> (loss: Double, accuracy: Double?)) throws -> [Column]
    {
        guard repeats >= 1 else { throw ModelError.invalidHyperparameter("permutation importance needs at least 1 shuffle, got \(repeats)") }
        guard features >= 1, inputs.count % features == 0, !inputs.isEmpty else {
            throw ModelError.dataShape("\(inputs.count) values do not make rows of \(features) inputs")
        }
        let orders = orders(rows: inputs.count / features, columns: columns.count, repeats: repeats, seed: seed)
        var figures = columns.map { _ in Column(increases: [], accuracyDecreases: base.accuracy == nil ? nil : []) }
        for shuffle in orders {
            for (index, column) in columns.enumerated() {
                let result = try evaluate(shuffled(inputs, features: features, column: column, order: shuffle[index]))
                figures[index].increases.append(result.loss - base.loss)
                if let before = base.accuracy, let after = result.accuracy { figures[index].accuracyDecreases?.append(before - after) }
            }
        }
        return figures
    }
}
