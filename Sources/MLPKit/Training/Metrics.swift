#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `mlp eval` reports beside the seed's loss: for regression the root mean squared error,
/// the mean absolute error and the coefficient of determination; for classification the
/// confusion matrix and each class's precision, recall and F1. Sums in Float64.
public enum Metrics {
    /// Regression figures over every row and output.
    public struct Regression: Sendable, Equatable {
        /// √(mean of (ŷ − y)² over every row and output).
        public var rmse: Double
        /// Mean of |ŷ − y| over every row and output.
        public var mae: Double
        /// R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² per output, averaged over the outputs whose targets
        /// vary (as scikit-learn's `r2_score` averages them); nil when none does.
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
        /// Rows of this class.
        public var rows: Int
    }

    /// Classification figures.
    public struct Classification: Sendable, Equatable {
        /// `confusion[actual][predicted]`: rows of class `actual` the model put in class `predicted`.
        public var confusion: [[Int]]
        public var classes: [ClassFigures]
        /// The mean of the F1 of the classes that have rows or predictions (a class with both
        /// but no hit counts 0); nil when there is none.
        public var macroF1: Double?
    }

    /// Regression figures of `outputs` (Z_L, `columns` per row) against `targets` (as many).
    public static func regression(outputs: [Float], targets: [Float], columns: Int) -> Regression {
        precondition(outputs.count == targets.count && columns > 0 && outputs.count % columns == 0, "outputs and targets differ in shape")
        let rows = outputs.count / columns
        var squared = 0.0, absolute = 0.0
        var means = [Double](repeating: 0, count: columns)
        for row in 0..<rows {
            for j in 0..<columns {
                let error = Double(outputs[row * columns + j]) - Double(targets[row * columns + j])
                squared += error * error
                absolute += abs(error)
                means[j] += Double(targets[row * columns + j])
            }
        }
        let count = Double(max(outputs.count, 1))
        for j in 0..<columns { means[j] /= Double(max(rows, 1)) }
        var residual = [Double](repeating: 0, count: columns), total = [Double](repeating: 0, count: columns)
        for row in 0..<rows {
            for j in 0..<columns {
                let y = Double(targets[row * columns + j])
                let error = Double(outputs[row * columns + j]) - y
                residual[j] += error * error
                total[j] += (y - means[j]) * (y - means[j])
            }
        }
        let perOutput: [Double?] = (0..<columns).map { total[$0] > 0 ? 1 - residual[$0] / total[$0] : nil }
        let defined = perOutput.compactMap { $0 }
        return Regression(rmse: (squared / count).squareRoot(), mae: absolute / count,
                          r2: defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count), r2PerOutput: perOutput)
    }

    /// Classification figures: each row's predicted class is the largest output (the first on a
    /// tie), its actual class `actual[row]`.
    public static func classification(outputs: [Float], actual: [Int], classes: Int) -> Classification {
        precondition(classes > 0 && outputs.count == actual.count * classes, "outputs and classes differ in shape")
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (row, truth) in actual.enumerated() {
            confusion[truth][argmax(outputs[(row * classes)..<((row + 1) * classes)])] += 1
        }
        let counts = (0..<classes).map { c in
            (hits: confusion[c][c], rows: confusion[c].reduce(0, +), predicted: confusion.reduce(0) { $0 + $1[c] })
        }
        let (figures, macroF1) = Self.figures(counts)
        return Classification(confusion: confusion, classes: figures, macroF1: macroF1)
    }

    /// Each class's (or label's) precision, recall and F1 from its hits, rows and predictions,
    /// and the macro F1 over those with rows or predictions.
    static func figures(_ counts: [(hits: Int, rows: Int, predicted: Int)]) -> ([ClassFigures], Double?) {
        var figures: [ClassFigures] = []
        var f1s: [Double] = []
        for (hits, rows, predicted) in counts {
            let precision = predicted > 0 ? Double(hits) / Double(predicted) : nil
            let recall = rows > 0 ? Double(hits) / Double(rows) : nil
            var f1: Double? = nil
            if let precision, let recall, precision + recall > 0 { f1 = 2 * precision * recall / (precision + recall) }
            if rows > 0 || predicted > 0 { f1s.append(f1 ?? 0) }
            figures.append(ClassFigures(precision: precision, recall: recall, f1: f1, rows: rows))
        }
        return (figures, f1s.isEmpty ? nil : f1s.reduce(0, +) / Double(f1s.count))
    }

    /// Multi-label figures (binary cross-entropy): per label (output), a row is predicted
    /// positive when its output is above 0 (σ above 0.5, as the accuracy counts it) and is
    /// positive when its target is at least 0.5; `rows` in each label's figures counts its
    /// positive rows. `targets` holds `labels` values per row.
    public static func labels(outputs: [Float], targets: [Float], labels: Int) -> (labels: [ClassFigures], macroF1: Double?) {
        precondition(labels > 0 && outputs.count == targets.count && outputs.count % labels == 0, "outputs and targets differ in shape")
        var counts = [(hits: Int, rows: Int, predicted: Int)](repeating: (0, 0, 0), count: labels)
        for index in outputs.indices {
            let (predicted, actual) = (outputs[index] > 0, targets[index] >= 0.5)
            let j = index % labels
            if predicted { counts[j].predicted += 1 }
            if actual { counts[j].rows += 1 }
            if predicted, actual { counts[j].hits += 1 }
        }
        return figures(counts)
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
