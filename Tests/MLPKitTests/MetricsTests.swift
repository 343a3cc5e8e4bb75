import XCTest
@testable import MLPKit

/// `Metrics` against figures worked out by hand.
final class MetricsTests: XCTestCase {
    func testRegressionFiguresByHand() {
        // errors 0, −1, 1, 1: Σe² = 3, Σ|e| = 3; ȳ = 2.5, Σ(y − ȳ)² = 5
        let one = Metrics.regression(outputs: [1, 2, 3, 5], targets: [1, 3, 2, 4], columns: 1)
        XCTAssertEqual(one.rmse, (3.0 / 4).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(one.mae, 0.75, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(one.r2), 1 - 3.0 / 5, accuracy: 1e-15)
        // a second output whose targets never vary has no R²; the average is over the first
        let two = Metrics.regression(outputs: [1, 7, 2, 7, 3, 8, 5, 7], targets: [1, 7, 3, 7, 2, 7, 4, 7], columns: 2)
        XCTAssertEqual(two.r2PerOutput.count, 2)
        XCTAssertEqual(try XCTUnwrap(two.r2PerOutput[0]), 0.4, accuracy: 1e-15)
        XCTAssertNil(two.r2PerOutput[1])
        XCTAssertEqual(try XCTUnwrap(two.r2), 0.4, accuracy: 1e-15)
        XCTAssertEqual(two.rmse, (4.0 / 8).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(two.mae, 4.0 / 8, accuracy: 1e-15)
        // perfect predictions
        let perfect = Metrics.regression(outputs: [0.5, -2], targets: [0.5, -2], columns: 1)
        XCTAssertEqual(perfect.rmse, 0)
        XCTAssertEqual(perfect.r2, 1)
        XCTAssertNil(Metrics.regression(outputs: [1, 2], targets: [3, 3], columns: 1).r2)
    }

    func testClassificationFiguresByHand() {
        // actual 0, 0, 1, 1, 2, 2; predicted 0, 1, 1, 1, 0, 1 (row 3 a tie between 1 and 2: the first)
        let outputs: [Float] = [
            2, 1, 0,
            0, 3, 1,
            -1, 5, 4,
            0, 2, 2,
            9, 1, 1,
            0, 1, 0.5,
        ]
        let figures = Metrics.classification(outputs: outputs, actual: [0, 0, 1, 1, 2, 2], classes: 3)
        XCTAssertEqual(figures.confusion, [[1, 1, 0], [0, 2, 0], [1, 1, 0]])
        // class 0: 1 hit of 2 predicted, of 2 rows; class 1: 2 of 4, of 2; class 2: none predicted, 0 of 2
        XCTAssertEqual(figures.classes[0], Metrics.ClassFigures(precision: 0.5, recall: 0.5, f1: 0.5, rows: 2))
        XCTAssertEqual(figures.classes[1].precision, 0.5)
        XCTAssertEqual(figures.classes[1].recall, 1)
        XCTAssertEqual(try XCTUnwrap(figures.classes[1].f1), 2.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(figures.classes[2], Metrics.ClassFigures(precision: nil, recall: 0, f1: nil, rows: 2))
        XCTAssertEqual(try XCTUnwrap(figures.macroF1), (0.5 + 2.0 / 3 + 0) / 3, accuracy: 1e-15)
        // a class with neither rows nor predictions is left out of the mean
        let absent = Metrics.classification(outputs: [1, 0, 0, 0, 1, 0], actual: [0, 1], classes: 3)
        XCTAssertEqual(absent.classes[2], Metrics.ClassFigures(precision: nil, recall: nil, f1: nil, rows: 0))
        XCTAssertEqual(absent.macroF1, 1)
    }

    func testWeightedFiguresByHand() throws {
        // errors 0, −1, 1, 1 with weights 2, 0, 1, 1: Σw·e² = 2, Σw·|e| = 2, Σw = 4; ȳ = 8/4 = 2,
        // Σw·(y − ȳ)² = 2 + 0 + 0 + 4 = 6
        let regression = Metrics.regression(outputs: [1, 2, 3, 5], targets: [1, 3, 2, 4], columns: 1, weights: [2, 0, 1, 1])
        XCTAssertEqual(regression.rmse, 0.5.squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(regression.mae, 0.5, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(regression.r2), 1 - 2.0 / 6, accuracy: 1e-15)
        // the rows of the classification above with weights 1, 2, 0, 3, 1, 0.5
        let outputs: [Float] = [2, 1, 0, 0, 3, 1, -1, 5, 4, 0, 2, 2, 9, 1, 1, 0, 1, 0.5]
        let classification = Metrics.classification(outputs: outputs, actual: [0, 0, 1, 1, 2, 2], classes: 3, weights: [1, 2, 0, 3, 1, 0.5])
        XCTAssertEqual(classification.confusion, [[1, 2, 0], [0, 3, 0], [1, 0.5, 0]])
        // class 1: 3 hits of 5.5 predicted, 3 rows
        XCTAssertEqual(try XCTUnwrap(classification.classes[1].precision), 3 / 5.5, accuracy: 1e-15)
        XCTAssertEqual(classification.classes[1].recall, 1)
        XCTAssertEqual(classification.classes[0].rows, 3)
        // labels: row weights 2 and 1; label 0 positive in row 0 only, predicted in both
        let labels = Metrics.labels(outputs: [1, -1, 2, 3], targets: [1, 0, 0, 1], labels: 2, weights: [2, 1])
        XCTAssertEqual(labels.labels[0], Metrics.ClassFigures(precision: 2.0 / 3, recall: 1, f1: 0.8, rows: 2))
        XCTAssertEqual(labels.labels[1], Metrics.ClassFigures(precision: 1, recall: 1, f1: 1, rows: 1))
    }

    func testWeightedLossByHand() throws {
        // mse: rows ½(1 + 4) = 2.5 and ½(1 + 1) = 1, weights 3 and 1: 8.5 / 4
        let regression = try Dataset(inputs: [0, 0], features: 1, targets: [0, 0, 1, 1], encoding: .dense, targetWidth: 2)
        let mse = try XCTUnwrap(Metrics.weightedLoss(outputs: [1, 2, 0, 0], dataset: regression, loss: .meanSquaredError, columns: 2,
                                                     weights: [3, 1]))
        XCTAssertEqual(mse.loss, 8.5 / 4, accuracy: 1e-15)
        XCTAssertNil(mse.accuracy)
        // cross-entropy: row 0 outputs 0, 0, 0 (class 2: log 3, a tie read as class 0: wrong), row 1 outputs log 2, 0, 0
        // (class 0: log 4 − log 2 = log 2, right); weights 1 and 3
        let classes = try Dataset(inputs: [0, 0], features: 1, targets: [2, 0], encoding: .classIndices, targetWidth: 1)
        let crossEntropy = try XCTUnwrap(Metrics.weightedLoss(outputs: [0, 0, 0, Float(log(2.0)), 0, 0], dataset: classes,
                                                              loss: .crossEntropy, columns: 3, weights: [1, 3]))
        XCTAssertEqual(crossEntropy.loss, (log(3.0) + 3 * log(2.0)) / 4, accuracy: 1e-7)
        XCTAssertEqual(crossEntropy.accuracy, 0.75)
        // binary cross-entropy: z = 0 against 1 is log 2, z = −1 against 0 log(1 + e^−1), z = 2 against 1 log(1 + e^−2);
        // in each row the first label is wrong (z = 0 is not above 0) and the second right
        let tags = try Dataset(inputs: [0, 0], features: 1, targets: [1, 0, 1, 1], encoding: .dense, targetWidth: 2)
        let binary = try XCTUnwrap(Metrics.weightedLoss(outputs: [0, -1, 0, 2], dataset: tags, loss: .binaryCrossEntropy, columns: 2,
                                                        weights: [1, 1]))
        XCTAssertEqual(binary.loss, (log(2.0) + log(1 + exp(-1.0)) + log(2.0) + log(1 + exp(-2.0))) / 2, accuracy: 1e-7)
        XCTAssertEqual(binary.accuracy, 0.5)
        XCTAssertNil(Metrics.weightedLoss(outputs: [1, 2, 0, 0], dataset: regression, loss: .meanSquaredError, columns: 2, weights: [0, 0]))
    }

    func testActualClassesFromIndicesAndRows() throws {
        let indices = try Dataset(inputs: [0, 1, 2], features: 1, targets: [2, 0, 1], encoding: .classIndices, targetWidth: 1)
        XCTAssertEqual(Metrics.actualClasses(indices), [2, 0, 1])
        let rows = try Dataset(inputs: [0, 1], features: 1, targets: [0.1, 0.2, 0.7, 0, 1, 0], encoding: .dense, targetWidth: 3)
        XCTAssertEqual(Metrics.actualClasses(rows), [2, 1])
    }
}

/// The pieces of permutation importance, by hand.
final class PermutationImportanceTests: XCTestCase {
    func testColumnsGroupACategorysInputs() throws {
        XCTAssertEqual(try PermutationImportance.columns(categories: nil, inputs: 3), [0..<1, 1..<2, 2..<3])
        XCTAssertEqual(try PermutationImportance.columns(categories: [nil, ["a", "b", "c"], nil], inputs: 5), [0..<1, 1..<4, 4..<5])
        XCTAssertThrowsError(try PermutationImportance.columns(categories: [nil, ["a", "b"]], inputs: 4))
    }

    func testShuffledMovesAColumnsInputsTogether() {
        // 3 rows of 4 inputs; the column is inputs 1 and 2; row i takes row order[i]'s
        let inputs: [Float] = [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]
        let shuffled = PermutationImportance.shuffled(inputs, features: 4, column: 1..<3, order: [2, 0, 1])
        XCTAssertEqual(shuffled, [0, 21, 22, 3, 10, 1, 2, 13, 20, 11, 12, 23])
    }

    func testMeasureAndFigures() throws {
        // a loss that is the sum of the first column's values times the row number: shuffling it changes the loss
        let inputs: [Float] = [1, 5, 2, 6, 3, 7]
        let evaluate = { (values: [Float]) -> (loss: Double, accuracy: Double?) in
            (Double(values[0] * 1 + values[2] * 2 + values[4] * 3), 0.5)
        }
        let figures = try PermutationImportance.measure(inputs: inputs, features: 2, columns: [0..<1, 1..<2], repeats: 3, seed: 4,
                                                        base: evaluate(inputs), evaluate: evaluate)
        var generator = SeededGenerator(seed: 4)
        var expected: [Double] = []
        for _ in 0..<3 {
            let order = generator.permutation(3)
            expected.append(Double(zip(order, [1, 2, 3]).map { Float(inputs[$0 * 2]) * Float($1) }.reduce(0, +)) - 14)
            _ = generator.permutation(3)  // the second column's: the loss does not see it
        }
        XCTAssertEqual(figures[0].increases, expected)
        XCTAssertEqual(figures[1].increases, [0, 0, 0])
        XCTAssertEqual(figures[1].accuracyDecreases, [0, 0, 0])
        XCTAssertEqual(figures[0].meanIncrease, expected.reduce(0, +) / 3, accuracy: 1e-12)
        let mean = figures[0].meanIncrease
        XCTAssertEqual(figures[0].deviation, (expected.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertThrowsError(try PermutationImportance.measure(inputs: inputs, features: 2, columns: [0..<1], repeats: 0, seed: 0,
                                                               base: (0, nil), evaluate: evaluate))
    }
}
