#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CPU backend's fused element-wise passes: each reads and writes its data once.
enum ElementwiseKernels {
    /// C[i, j] += bias[j], then max(0, ·) when `relu`.
    @inline(__always)
    static func addBias(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>, relu: Bool) {
        for i in 0..<rows {
            let row = c + i * columns
            if relu {
                for j in 0..<columns { row[j] = max(row[j] + bias[j], 0) }
            } else {
                for j in 0..<columns { row[j] += bias[j] }
            }
        }
    }

    /// C[i] = activation[i] > 0 ? C[i] : 0 (the ReLU derivative, as (Z > 0) = (A > 0)).
    @inline(__always)
    static func reluMask(_ c: UnsafeMutablePointer<Float>, activation: UnsafePointer<Float>, count: Int) {
        for i in 0..<count where !(activation[i] > 0) { c[i] = 0 }
    }

    /// sums[j] = Σ_i matrix[i, j], row by row so that the reads are sequential.
    @inline(__always)
    static func columnSums(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
        sums.update(repeating: 0, count: columns)
        for i in 0..<rows {
            let row = matrix + i * columns
            for j in 0..<columns { sums[j] += row[j] }
        }
    }

    /// One Adam step (SEED.md §4) over `count` parameters, eight lanes at a time. Every lane
    /// does the same IEEE operations in the same order as the scalar tail, so the result does
    /// not depend on where a parameter falls.
    static func adam(
        parameters theta: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
        hyperparameters: AdamHyperparameters, step: Int
    ) {
        let beta1 = hyperparameters.beta1, beta2 = hyperparameters.beta2
        let alpha = hyperparameters.learningRate, epsilon = hyperparameters.epsilon
        let (correction1, correction2) = hyperparameters.biasCorrections(step: step)
        typealias Lanes = SIMD8<Float>
        let lanes = Lanes.scalarCount
        var i = 0
        while i + lanes <= count {
            let gradient = UnsafeRawPointer(g + i).loadUnaligned(as: Lanes.self)
            let mOld = UnsafeRawPointer(m + i).loadUnaligned(as: Lanes.self)
            let vOld = UnsafeRawPointer(v + i).loadUnaligned(as: Lanes.self)
            let thetaOld = UnsafeRawPointer(theta + i).loadUnaligned(as: Lanes.self)
            // update the biased first moment (momentum) and second moment (RMSprop)
            let mt = beta1 * mOld + (1 - beta1) * gradient
            let vt = beta2 * vOld + (1 - beta2) * gradient * gradient
            // bias-corrected moments, then the parameter update
            let mHat = mt / correction1
            let vHat = vt / correction2
            let thetaNew = thetaOld - alpha * mHat / (vHat.squareRoot() + epsilon)
            UnsafeMutableRawPointer(m + i).storeBytes(of: mt, as: Lanes.self)
            UnsafeMutableRawPointer(v + i).storeBytes(of: vt, as: Lanes.self)
            UnsafeMutableRawPointer(theta + i).storeBytes(of: thetaNew, as: Lanes.self)
            i += lanes
        }
        while i < count {
            let gradient = g[i]
            let mt = beta1 * m[i] + (1 - beta1) * gradient
            let vt = beta2 * v[i] + (1 - beta2) * gradient * gradient
            m[i] = mt
            v[i] = vt
            let mHat = mt / correction1
            let vHat = vt / correction2
            theta[i] = theta[i] - alpha * mHat / (vHat.squareRoot() + epsilon)
            i += 1
        }
    }
}

/// The fused loss gradient and loss sum on the CPU.
enum LossKernels {
    /// Writes dL/dZ (already divided by `rows`) into `gradient` and returns the loss summed over
    /// rows (the caller divides by the number of rows).
    static func gradient(
        _ loss: Loss, targets: TargetEncoding, output: UnsafePointer<Float>, target: UnsafePointer<Float>,
        rows: Int, columns: Int, gradient: UnsafeMutablePointer<Float>
    ) -> Float {
        guard rows > 0 else { return 0 }
        let scale = 1 / Float(rows)
        var total = 0.0
        switch loss {
        case .meanSquaredError:
            for i in 0..<rows {
                let z = output + i * columns, d = gradient + i * columns
                var rowSum: Float = 0
                for j in 0..<columns {
                    let y: Float
                    switch targets {
                    case .dense: y = target[i * columns + j]
                    case .classIndices: y = Int(target[i]) == j ? 1 : 0
                    }
                    let difference = z[j] - y
                    d[j] = difference * scale
                    rowSum += difference * difference
                }
                total += 0.5 * Double(rowSum)
            }
        case .crossEntropy:
            for i in 0..<rows {
                let z = output + i * columns, d = gradient + i * columns
                // log-sum-exp: lse = max + log Σ exp(z − max)
                var largest = -Float.infinity
                for j in 0..<columns { largest = max(largest, z[j]) }
                var exponentialSum: Float = 0
                for j in 0..<columns {
                    let e = expf(z[j] - largest)
                    d[j] = e
                    exponentialSum += e
                }
                let logSumExp = largest + logf(exponentialSum)
                let inverseSum = 1 / exponentialSum
                switch targets {
                case .classIndices:
                    let label = Int(target[i])
                    guard label >= 0, label < columns else {
                        total = .nan  // a label outside the classes: poison the loss, read nothing
                        continue
                    }
                    for j in 0..<columns {
                        d[j] = (d[j] * inverseSum - (j == label ? 1 : 0)) * scale
                    }
                    total += Double(logSumExp - z[label])
                case .dense:
                    // −Σ y·log softmax = Σ y·(lse − z); gradient Σy·softmax − y (= softmax − y
                    // for rows of probabilities)
                    let y = target + i * columns
                    var targetSum: Float = 0
                    var rowLoss = 0.0
                    for j in 0..<columns {
                        targetSum += y[j]
                        if y[j] != 0 { rowLoss += Double(y[j]) * Double(logSumExp - z[j]) }
                    }
                    for j in 0..<columns {
                        d[j] = (targetSum * d[j] * inverseSum - y[j]) * scale
                    }
                    total += rowLoss
                }
            }
        }
        return Float(total)
    }
}
