import XCTest
@testable import MLPKit

/// `CPUBackend.adamUpdate` against SEED.md §4 written out step by step in Float64.
final class AdamTests: XCTestCase {
    /// SEED.md §4 for one step, in Double, element by element.
    struct DoubleAdam {
        var theta: [Double]
        var m: [Double]
        var v: [Double]
        let alpha: Double, beta1: Double, beta2: Double, epsilon: Double

        init(theta: [Float], hyperparameters h: AdamHyperparameters) {
            self.theta = theta.map(Double.init)
            m = [Double](repeating: 0, count: theta.count)
            v = [Double](repeating: 0, count: theta.count)
            alpha = Double(h.learningRate)
            beta1 = Double(h.beta1)
            beta2 = Double(h.beta2)
            epsilon = Double(h.epsilon)
        }

        mutating func step(_ t: Int, gradients g: [Float]) {
            for i in theta.indices {
                let gradient = Double(g[i])
                // 1. m_t = β1 · m_{t-1} + (1 − β1) · g
                m[i] = beta1 * m[i] + (1 - beta1) * gradient
                // 2. v_t = β2 · v_{t-1} + (1 − β2) · g²
                v[i] = beta2 * v[i] + (1 - beta2) * gradient * gradient
                // 3. m̂_t = m_t / (1 − β1^t)
                var beta1Power = 1.0, beta2Power = 1.0
                for _ in 0..<t {
                    beta1Power *= beta1
                    beta2Power *= beta2
                }
                let mHat = m[i] / (1 - beta1Power)
                // 4. v̂_t = v_t / (1 − β2^t)
                let vHat = v[i] / (1 - beta2Power)
                // 5. θ_t = θ_{t-1} − α · m̂_t / (√v̂_t + ε)
                theta[i] -= alpha * mHat / (vHat.squareRoot() + epsilon)
            }
        }
    }

    /// A CPU buffer holding `values`.
    func buffer(_ backend: CPUBackend, _ values: [Float]) throws -> CPUBuffer {
        let buffer = try backend.makeBuffer(count: values.count)
        try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
        return buffer
    }

    func read(_ backend: CPUBackend, _ buffer: CPUBuffer) throws -> [Float] {
        var values = [Float](repeating: .nan, count: buffer.count)
        try values.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(buffer), count: buffer.count, into: $0) }
        return values
    }

    /// Three steps with different gradients each time, compared after every step.
    func runThreeSteps(_ hyperparameters: AdamHyperparameters, theta initial: [Float], gradients: [[Float]],
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let backend = CPUBackend()
        let theta = try buffer(backend, initial)
        let m = try backend.makeBuffer(count: initial.count)
        let v = try backend.makeBuffer(count: initial.count)
        var reference = DoubleAdam(theta: initial, hyperparameters: hyperparameters)
        for (index, g) in gradients.enumerated() {
            let t = index + 1
            let gradientBuffer = try buffer(backend, g)
            try backend.adamUpdate(parameters: BufferSlice(theta), gradients: BufferSlice(gradientBuffer),
                                   firstMoment: BufferSlice(m), secondMoment: BufferSlice(v),
                                   count: initial.count, hyperparameters: hyperparameters, step: t)
            reference.step(t, gradients: g)
            let (gotTheta, gotM, gotV) = (try read(backend, theta), try read(backend, m), try read(backend, v))
            for i in initial.indices {
                // rounding in Float32 is relative to the terms added, which may cancel
                let gradientScale = gradients[0...index].map { Double(abs($0[i])) }.reduce(0, +)
                // θ: the step is ~α, so an absolute 1e-6 catches an error of 0.1% of a 1e-3 step.
                XCTAssertEqual(Double(gotTheta[i]), reference.theta[i], accuracy: 1e-6 * max(1, abs(reference.theta[i])),
                               "θ[\(i)] after step \(t)", file: file, line: line)
                XCTAssertEqual(Double(gotM[i]), reference.m[i], accuracy: 1e-6 * abs(reference.m[i]) + 1e-7 * gradientScale,
                               "m[\(i)] after step \(t)", file: file, line: line)
                XCTAssertEqual(Double(gotV[i]), reference.v[i], accuracy: 1e-6 * abs(reference.v[i]) + 1e-7 * gradientScale * gradientScale,
                               "v[\(i)] after step \(t)", file: file, line: line)
                // the parameter really moved from where it started this step
                XCTAssertNotEqual(gotTheta[i], initial[i], "θ[\(i)] did not move", file: file, line: line)
            }
        }
    }

    static let theta: [Float] = [0.73, -1.41, 0.052, 2.3, -0.6]
    // large, negative, tiny (√v̂ ≈ ε matters), a sign change, and one near ε
    static let gradients: [[Float]] = [
        [0.5, -2.25, 1e-6, 0.031, -3e-9],
        [-0.125, -1.5, 4e-6, -0.07, 8e-9],
        [0.9, 0.33, -2e-6, 0.011, -1e-8],
    ]

    func testThreeStepsDefaultHyperparameters() throws {
        try runThreeSteps(AdamHyperparameters(), theta: Self.theta, gradients: Self.gradients)
    }

    func testThreeStepsNonDefaultHyperparameters() throws {
        let h = AdamHyperparameters(learningRate: 0.05, beta1: 0.8, beta2: 0.95, epsilon: 1e-4)
        XCTAssertNotEqual(h, AdamHyperparameters())
        try runThreeSteps(h, theta: Self.theta, gradients: Self.gradients)
    }

    func testRandomBufferThreeSteps() throws {
        var data = TestData(seed: 31)
        let theta = data.normal(37)
        let gradients = (0..<3).map { _ in data.normal(37).map { $0 * 0.1 } }
        try runThreeSteps(AdamHyperparameters(learningRate: 3e-3), theta: theta, gradients: gradients)
    }

    /// On step 1, m̂ = g and v̂ = g², so θ moves by α·g/(|g| + ε) ≈ α·sign(g).
    func testFirstStepMovesByLearningRateTimesSign() throws {
        let backend = CPUBackend()
        let h = AdamHyperparameters(learningRate: 1e-3)
        let initial: [Float] = [0.25, -0.5, 1.75, -2.0]
        let g: [Float] = [3.5, -0.02, -41, 0.6]
        let theta = try buffer(backend, initial), gradients = try buffer(backend, g)
        let m = try backend.makeBuffer(count: 4), v = try backend.makeBuffer(count: 4)
        try backend.adamUpdate(parameters: BufferSlice(theta), gradients: BufferSlice(gradients), firstMoment: BufferSlice(m),
                               secondMoment: BufferSlice(v), count: 4, hyperparameters: h, step: 1)
        let after = try read(backend, theta)
        for i in 0..<4 {
            let moved = Double(after[i]) - Double(initial[i])
            let expected = g[i] > 0 ? -1e-3 : 1e-3
            XCTAssertEqual(moved, expected, accuracy: 1e-3 * 1e-3, "θ[\(i)] moved by \(moved)")
        }
        // m = (1 − β1)·g and v = (1 − β2)·g² after one step from zero
        let mValues = try read(backend, m), vValues = try read(backend, v)
        for i in 0..<4 {
            XCTAssertEqual(Double(mValues[i]), 0.1 * Double(g[i]), accuracy: 1e-6 * abs(Double(g[i])))
            XCTAssertEqual(Double(vValues[i]), 0.001 * Double(g[i]) * Double(g[i]), accuracy: 3e-5 * 0.001 * Double(g[i] * g[i]))
        }
    }

    /// Only `count` elements from the slices' offsets change.
    func testUpdatesOnlyTheSliceItIsGiven() throws {
        let backend = CPUBackend()
        let initial: [Float] = [9, 8, 0.5, -0.25, 7]
        let theta = try buffer(backend, initial)
        let gradients = try buffer(backend, [0.4, -0.3])
        let m = try backend.makeBuffer(count: 2), v = try backend.makeBuffer(count: 2)
        try backend.adamUpdate(parameters: BufferSlice(theta, offset: 2), gradients: BufferSlice(gradients),
                               firstMoment: BufferSlice(m), secondMoment: BufferSlice(v), count: 2,
                               hyperparameters: AdamHyperparameters(learningRate: 0.01), step: 1)
        let after = try read(backend, theta)
        XCTAssertEqual(after[0], 9)
        XCTAssertEqual(after[1], 8)
        XCTAssertEqual(after[4], 7)
        XCTAssertEqual(Double(after[2]), 0.5 - 0.01, accuracy: 1e-6)
        XCTAssertEqual(Double(after[3]), -0.25 + 0.01, accuracy: 1e-6)
    }

    func testStepZeroIsRejected() throws {
        let backend = CPUBackend()
        let theta = try buffer(backend, [1, 2, 3])
        let gradients = try buffer(backend, [0.1, -0.2, 0.3])
        let m = try backend.makeBuffer(count: 3), v = try backend.makeBuffer(count: 3)
        for step in [0, -4] {
            XCTAssertThrowsError(try backend.adamUpdate(
                parameters: BufferSlice(theta), gradients: BufferSlice(gradients), firstMoment: BufferSlice(m),
                secondMoment: BufferSlice(v), count: 3, hyperparameters: AdamHyperparameters(), step: step)
            ) { error in
                XCTAssertEqual(error as? BackendError,
                               .invalidArgument(operation: "adamUpdate", reason: "step \(step) must be at least 1"))
                XCTAssertTrue("\(error)".contains("must be at least 1"), "\(error)")
            }
        }
        // nothing was touched
        XCTAssertEqual(try read(backend, theta), [1, 2, 3])
        XCTAssertEqual(try read(backend, m), [0, 0, 0])
    }

    func testOutOfBoundsSlicesAreRejected() throws {
        let backend = CPUBackend()
        let theta = try buffer(backend, [1, 2, 3])
        let short = try buffer(backend, [0.1, -0.2])
        let m = try backend.makeBuffer(count: 3), v = try backend.makeBuffer(count: 3)
        XCTAssertThrowsError(try backend.adamUpdate(
            parameters: BufferSlice(theta), gradients: BufferSlice(short), firstMoment: BufferSlice(m),
            secondMoment: BufferSlice(v), count: 3, hyperparameters: AdamHyperparameters(), step: 1)
        ) { error in
            XCTAssertEqual(error as? BackendError, .outOfBounds(operation: "adamUpdate gradients", needed: 3, available: 2))
        }
        XCTAssertThrowsError(try backend.adamUpdate(
            parameters: BufferSlice(theta, offset: 1), gradients: BufferSlice(theta), firstMoment: BufferSlice(m),
            secondMoment: BufferSlice(v), count: 3, hyperparameters: AdamHyperparameters(), step: 1)
        ) { error in
            XCTAssertEqual(error as? BackendError, .outOfBounds(operation: "adamUpdate parameters", needed: 4, available: 3))
        }
    }

    /// (1 − β1ᵗ, 1 − β2ᵗ), with β's that are exact binary fractions so the values are exact.
    func testBiasCorrectionsExactValues() {
        let h = AdamHyperparameters(beta1: 0.875, beta2: 0.9921875)  // 7/8 and 127/128
        let one = h.biasCorrections(step: 1)
        XCTAssertEqual(one.first, 0.125)
        XCTAssertEqual(one.second, 0.0078125)
        let two = h.biasCorrections(step: 2)
        XCTAssertEqual(two.first, 0.234375)             // 1 − 49/64 = 15/64
        XCTAssertEqual(two.second, 0.01556396484375)    // 1 − 16129/16384 = 255/16384
        let three = h.biasCorrections(step: 3)
        XCTAssertEqual(three.first, 0.330078125)        // 1 − 343/512 = 169/512
        XCTAssertEqual(three.second, 0.023254871368408203)  // 48769/2097152
    }

    func testBiasCorrectionsDefaultBetas() {
        let h = AdamHyperparameters()
        let cases: [(step: Int, first: Double, second: Double)] = [
            (1, 0.1, 0.001),
            (10, 0.6513215599, 0.0099551198),     // 1 − 0.9¹⁰, 1 − 0.999¹⁰
            (1000, 1, 0.6323045752),              // 0.9¹⁰⁰⁰ ≈ 1.7e-46
            (100_000, 1, 1),
        ]
        for c in cases {
            let (first, second) = h.biasCorrections(step: c.step)
            // 0.9 and 0.999 are not exact in Float32: allow that representation error
            XCTAssertEqual(Double(first), c.first, accuracy: 1e-6, "step \(c.step)")
            XCTAssertEqual(Double(second), c.second, accuracy: 2e-5 * c.second, "step \(c.step)")
        }
    }
}
