#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `mlp eval` reports beside the seed's loss: for regression the root mean squared error,
/// the mean absolute error and the coefficient of determination; for classification the
/// confusion matrix and each class's precision, recall and F1. Sums in Float64.
///
/// With `weights` (one number ≥ 0 per row, `eval --weight-column`) every figure counts a row
/// `w` times, as scikit-learn's `sample_weight` does: means are Σ w·x / Σ w, counts are sums of
/// weights, and whole-number weights give the figures of the data with each row repeated that
/// many times.
public enum Metrics {
    /// Regression figures over every row and output.
    public struct Regression: Sendable, Equatable {
        /// √(mean of (ŷ − y)² over every row and output; weighted by the rows' weights).
        public var rmse: Double
        /// Mean of |ŷ − y| over every row and output.
        public var mae: Double
        /// R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² per output, averaged over the outputs whose targets
        /// vary (as scikit-learn's `r2_score` averages them); nil when none does. With weights,
        /// each sum's terms and ȳ are weighted.
        public var r2: Double?
        /// Each output's R² (nil for an output whose targets are all the same).
        public var r2PerOutput: [Double?]
    }

    /// One class's figures; precision is nil when the model predicts the class for no row,
    /// recall when no row is of the class, F1 when either is nil or both are 0.
    public struct ClassFigures: Sendable, Equatable {
        public var precision: Double?
        public var recall: Double?
        public var f1: Double?
        /// Rows of this class (the sum of their weights, with weights).
        public var rows: Double
    }

    /// Classification figures.
    public struct Classification: Sendable, Equatable {
        /// `confusion[actual][predicted]`: rows of class `actual` the model put in class `predicted`
        /// (whole numbers; the sum of those rows' weights, with weights).
        public var confusion: [[Double]]
        public var classes: [ClassFigures]
        /// The mean of the F1 of the classes that have rows or predictions (a class with both
        /// but no hit counts 0); nil when there is none.
        public var macroF1: Double?
    }

    /// Regression figures of `outputs` (Z_L, `columns` per row) against `targets` (as many),
    /// each row counted by its weight when `weights` (one per row) are given.
    public static func regression(outputs: [Float], targets: [Float], columns: Int, weights: [Float]? = nil) -> Regression {
        precondition(outputs.count == targets.count && columns > 0 && outputs.count % columns == 0, "outputs and targets differ in shape")
        let rows = outputs.count / columns
        precondition(weights == nil || weights?.count == rows, "one weight per row")
        let weight = { (row: Int) in weights.map { Double($0[row]) } ?? 1 }
        var squared = 0.0, absolute = 0.0, totalWeight = 0.0
        var means = [Double](repeating: 0, count: columns)
        for row in 0..<rows {
            let w = weight(row)
            totalWeight += w
            for j in 0..<columns {
                let error = Double(outputs[row * columns + j]) - Double(targets[row * columns + j])
                squared += w * error * error
                absolute += w * abs(error)
                means[j] += w * Double(targets[row * columns + j])
            }
        }
        let count = totalWeight > 0 ? totalWeight * Double(columns) : 1
        for j in 0..<columns { means[j] /= totalWeight > 0 ? totalWeight : 1 }
        var residual = [Double](repeating: 0, count: columns), total = [Double](repeating: 0, count: columns)
        for row in 0..<rows {
            let w = weight(row)
            for j in 0..<columns {
                let y = Double(targets[row * columns + j])
                let error = Double(outputs[row * columns + j]) - y
                residual[j] += w * error * error
                total[j] += w * (y - means[j]) * (y - means[j])
            }
        }
        let perOutput: [Double?] = (0..<columns).map { total[$0] > 0 ? 1 - residual[$0] / total[$0] : nil }
        let defined = perOutput.compactMap { $0 }
        return Regression(rmse: (squared / count).squareRoot(), mae: absolute / count,
                          r2: defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count), r2PerOutput: perOutput)
    }

    /// Classification figures: each row's predicted class is the largest output (the first on a
    /// tie), its actual class `actual[row]`; each row counted by its weight when `weights` are given.
    public static func classification(outputs: [Float], actual: [Int], classes: Int, weights: [Float]? = nil) -> Classification {
        precondition(classes > 0 && outputs.count == actual.count * classes, "outputs and classes differ in shape")
        precondition(weights == nil || weights?.count == actual.count, "one weight per row")
        var confusion = [[Double]](repeating: [Double](repeating: 0, count: classes), count: classes)
        for (row, truth) in actual.enumerated() {
            confusion[truth][argmax(outputs[(row * classes)..<((row + 1) * classes)])] += weights.map { Double($0[row]) } ?? 1
        }
        let counts = (0..<classes).map { c in
            (hits: confusion[c][c], rows: confusion[c].reduce(0, +), predicted: confusion.reduce(0) { $0 + $1[c] })
        }
        let (figures, macroF1) = Self.figures(counts)
        return Classification(confusion: confusion, classes: figures, macroF1: macroF1)
    }

    /// Each class's (or label's) precision, recall and F1 from its hits, rows and predictions,
    /// and the macro F1 over those with rows or predictions.
    static func figures(_ counts: [(hits: Double, rows: Double, predicted: Double)]) -> ([ClassFigures], Double?) {
        var figures: [ClassFigures] = []
        var f1s: [Double] = []
        for (hits, rows, predicted) in counts {
            let precision = predicted > 0 ? hits / predicted : nil
            let recall = rows > 0 ? hits / rows : nil
            var f1: Double? = nil
            if let precision, let recall, precision + recall > 0 { f1 = 2 * precision * recall / (precision + recall) }
            if rows > 0 || predicted > 0 { f1s.append(f1 ?? 0) }
            figures.append(ClassFigures(precision: precision, recall: recall, f1: f1, rows: rows))
        }
        return (figures, f1s.isEmpty ? nil : f1s.reduce(0, +) / Double(f1s.count))
    }

    /// Binary cross-entropy's reading of one label: predicted positive when its output (a logit)
    /// is above 0 (σ above 0.5), positive when its target is at least 0.5. The one rule behind
    /// the training accuracy, `labels` and `weightedLoss`.
    @inline(__always)
    static func labelSides(output: Float, target: Float) -> (predicted: Bool, actual: Bool) {
        (output > 0, target >= 0.5)
    }

    /// Whether one label's output is on its target's side (`labelSides`).
    @inline(__always)
    static func labelIsRight(output: Float, target: Float) -> Bool {
        let (predicted, actual) = labelSides(output: output, target: target)
        return predicted == actual
    }

    /// Multi-label figures (binary cross-entropy): per label (output), a row is predicted
    /// positive when its output is above 0 (σ above 0.5, as the accuracy counts it) and is
    /// positive when its target is at least 0.5; `rows` in each label's figures counts its
    /// positive rows. `targets` holds `labels` values per row; each row counted by its weight
    /// when `weights` are given.
    public static func labels(outputs: [Float], targets: [Float], labels: Int, weights: [Float]? = nil)
        -> (labels: [ClassFigures], macroF1: Double?)
    {
        precondition(labels > 0 && outputs.count == targets.count && outputs.count % labels == 0, "outputs and targets differ in shape")
        precondition(weights == nil || weights?.count == outputs.count / labels, "one weight per row")
        var counts = [(hits: Double, rows: Double, predicted: Double)](repeating: (0, 0, 0), count: labels)
        for index in outputs.indices {
            let (predicted, actual) = labelSides(output: outputs[index], target: targets[index])
            let j = index % labels
            let w = weights.map { Double($0[index / labels]) } ?? 1
            if predicted { counts[j].predicted += w }
            if actual { counts[j].rows += w }
            if predicted, actual { counts[j].hits += w }
        }
        return figures(counts)
    }

    /// The seed's loss and the accuracy of `outputs` (Z_L for every row of `dataset`, `columns`
    /// per row) with each row counted by its weight: Σ w·ℓ / Σ w, where ℓ is a row's own term of
    /// the loss (½Σ(ŷ − y)², −Σ y·log softmax, or binary cross-entropy summed over the outputs,
    /// each in Float64), and the accuracy as `TrainingSession.evaluate` counts it (the largest
    /// output against the class; for binary cross-entropy each label on the right side of 0),
    /// weighted the same way. With every weight 1 these are the unweighted figures. Nil accuracy
    /// for MSE; nil altogether when the weights sum to 0.
    public static func weightedLoss(outputs: [Float], dataset: Dataset, loss: Loss, columns: Int, weights: [Float])
        -> (loss: Double, accuracy: Double?)?
    {
        precondition(outputs.count == dataset.rows * columns && weights.count == dataset.rows, "outputs, rows and weights differ in shape")
        let targets = denseTargets(dataset, outputs: columns)
        let actual = loss == .crossEntropy ? actualClasses(dataset) : []
        var total = 0.0, weightSum = 0.0, right = 0.0
        for row in 0..<dataset.rows {
            let w = Double(weights[row])
            let start = row * columns
            let z = { (j: Int) in Double(outputs[start + j]) }, y = { (j: Int) in Double(targets[start + j]) }
            var term = 0.0
            switch loss {
            case .meanSquaredError:
                for j in 0..<columns { term += 0.5 * (z(j) - y(j)) * (z(j) - y(j)) }
            case .crossEntropy:
                let scores = outputs[start..<(start + columns)]
                let largest = Double(scores.max() ?? 0)
                let logSumExp = largest + log(scores.reduce(0.0) { $0 + exp(Double($1) - largest) })
                for j in 0..<columns where y(j) != 0 { term += y(j) * (logSumExp - z(j)) }
                if argmax(scores) == actual[row] { right += w }
            case .binaryCrossEntropy:
                for j in 0..<columns {
                    term += max(z(j), 0) - z(j) * y(j) + log1p(exp(-abs(z(j))))
                    if labelIsRight(output: outputs[start + j], target: targets[start + j]) { right += w / Double(columns) }
                }
            }
            total += w * term
            weightSum += w
        }
        guard weightSum > 0 else { return nil }
        return (total / weightSum, loss == .meanSquaredError ? nil : right / weightSum)
    }

    /// A data set's targets as one value per output and row: dense targets as they are, class
    /// indices as one-hot rows of `outputs`.
    public static func denseTargets(_ dataset: Dataset, outputs: Int) -> [Float] {
        guard dataset.targetEncoding == .classIndices else { return dataset.targets }
        var dense = [Float](repeating: 0, count: dataset.rows * outputs)
        for row in 0..<dataset.rows where Int(dataset.targets[row]) < outputs { dense[row * outputs + Int(dataset.targets[row])] = 1 }
        return dense
    }

    /// Each row's actual class from a data set's targets: the index itself, or the largest
    /// entry of a one-hot or probability row.
    public static func actualClasses(_ dataset: Dataset) -> [Int] {
        (0..<dataset.rows).map { row in
            if dataset.targetEncoding == .classIndices { return Int(dataset.targets[row]) }
            let width = dataset.targetWidth
            return argmax(dataset.targets[(row * width)..<((row + 1) * width)])
        }
    }

    /// The place of the largest value (the first on a tie): a row's class, here and in the
    /// accuracy `TrainingSession.evaluate` reports, so the two always agree.
    static func argmax(_ values: ArraySlice<Float>) -> Int {
        var best = values.startIndex
        for index in values.indices where values[index] > values[best] { best = index }
        return best - values.startIndex
    }
}
