import MLPKit

/// An independent Float64 forward pass and loss, written from SEED.md for the tests.
enum DoubleReference {
    /// f(z) in Float64 for each hidden activation, written from its definition.
    static func activate(_ z: Double, _ function: ActivationFunction) -> Double {
        switch function {
        case .relu: return max(0, z)
        case .leakyReLU(let slope): return z > 0 ? z : Double(slope) * z
        case .tanh: return Foundation.tanh(z)
        case .sigmoid: return 1 / (1 + Foundation.exp(-z))
        case .gelu: return 0.5 * z * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (z + 0.044715 * z * z * z)))
        }
    }

    /// Z_L for every row.
    static func forward(layers: [Int], parameters: [Double], inputs: [Double], rows: Int,
                        activation: ActivationFunction = .relu) -> [Double] {
        var activationValues = inputs
        var offset = 0
        for i in 1..<layers.count {
            let (fanIn, fanOut) = (layers[i - 1], layers[i])
            let weightStart = offset, biasStart = offset + fanIn * fanOut
            offset = biasStart + fanOut
            var next = [Double](repeating: 0, count: rows * fanOut)
            for r in 0..<rows {
                for o in 0..<fanOut {
                    var sum = parameters[biasStart + o]
                    for j in 0..<fanIn { sum += activationValues[r * fanIn + j] * parameters[weightStart + o * fanIn + j] }
                    next[r * fanOut + o] = i < layers.count - 1 ? activate(sum, activation) : sum
                }
            }
            activationValues = next
        }
        return activationValues
    }

    /// The seed's loss (mean over rows): MSE 1/(2B)·ΣΣ(z − y)², −1/B·ΣΣ y·log softmax(z), or
    /// binary cross-entropy −1/B·ΣΣ [y·log σ(z) + (1 − y)·log(1 − σ(z))] written directly.
    static func loss(_ loss: Loss, layers: [Int], parameters: [Double], inputs: [Double], targets: [Double],
                     encoding: TargetEncoding, rows: Int, activation: ActivationFunction = .relu) -> Double {
        let outputs = layers[layers.count - 1]
        let z = forward(layers: layers, parameters: parameters, inputs: inputs, rows: rows, activation: activation)
        var total = 0.0
        for r in 0..<rows {
            let row = Array(z[(r * outputs)..<((r + 1) * outputs)])
            let y: [Double] = encoding == .classIndices
                ? (0..<outputs).map { Int(targets[r]) == $0 ? 1 : 0 }
                : Array(targets[(r * outputs)..<((r + 1) * outputs)])
            switch loss {
            case .meanSquaredError:
                for j in 0..<outputs { total += 0.5 * (row[j] - y[j]) * (row[j] - y[j]) }
            case .crossEntropy:
                let largest = row.max() ?? 0
                let logSumExp = largest + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - largest) })
                for j in 0..<outputs { total -= y[j] * (row[j] - logSumExp) }
            case .binaryCrossEntropy:
                for j in 0..<outputs {
                    let p = 1 / (1 + Foundation.exp(-row[j]))
                    total -= y[j] * Foundation.log(p) + (1 - y[j]) * Foundation.log(1 - p)
                }
            }
        }
        return total / Double(rows)
    }
}

import Foundation

/// Random test data that is never all zeros.
struct TestData {
    var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    mutating func normal(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float(generator.nextNormal()) }
    }

    mutating func labels(_ count: Int, classes: Int) -> [Float] {
        (0..<count).map { _ in Float(generator.next() % UInt64(classes)) }
    }

    /// Labels of 0 and 1.
    mutating func binary(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float(generator.next() % 2) }
    }

    /// Rows of positive probabilities that sum to 1.
    mutating func probabilities(rows: Int, columns: Int) -> [Float] {
        var values: [Float] = []
        for _ in 0..<rows {
            let raw = (0..<columns).map { _ in generator.nextUnitDouble() + 0.05 }
            let sum = raw.reduce(0, +)
            values += raw.map { Float($0 / sum) }
        }
        return values
    }
}
