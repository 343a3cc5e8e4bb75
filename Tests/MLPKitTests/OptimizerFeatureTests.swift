import Foundation
import XCTest
@testable import MLPKit

/// AdamW's decoupled weight decay and clipping by global norm against hand-computed steps, and
/// plain Adam left bit for bit as it was.
final class OptimizerFeatureTests: XCTestCase {
    /// The CPU backend's `adamUpdate` on host arrays; returns (θ, m, v) after the step.
    func cpuStep(_ theta: [Float], _ g: [Float], _ m: [Float], _ v: [Float], _ h: AdamHyperparameters, step: Int,
                 viaAdamW: Bool = false) throws -> (theta: [Float], m: [Float], v: [Float]) {
        let backend = CPUBackend()
        func buffer(_ values: [Float]) throws -> CPUBuffer {
            let buffer = try backend.makeBuffer(count: values.count)
            try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
            return buffer
        }
        func read(_ buffer: CPUBuffer) throws -> [Float] {
            var values = [Float](repeating: .nan, count: buffer.count)
            try values.withUnsafeMutableBufferPointer { try backend.download(BufferSlice(buffer), count: buffer.count, into: $0) }
            return values
        }
        let (tb, gb, mb, vb) = (try buffer(theta), try buffer(g), try buffer(m), try buffer(v))
        if viaAdamW {
            try backend.adamWUpdate(parameters: BufferSlice(tb), gradients: BufferSlice(gb), firstMoment: BufferSlice(mb),
                                    secondMoment: BufferSlice(vb), count: theta.count, hyperparameters: h, step: step)
        } else {
            try backend.adamUpdate(parameters: BufferSlice(tb), gradients: BufferSlice(gb), firstMoment: BufferSlice(mb),
                                   secondMoment: BufferSlice(vb), count: theta.count, hyperparameters: h, step: step)
        }
        return (try read(tb), try read(mb), try read(vb))
    }

    /// AdamW with clipping in Float64, written from the definitions, element by element:
    /// g ← g·min(1, c/(‖g‖ + 1e-6)); θ ← θ − α·λ·θ; m, v, m̂, v̂ as SEED.md §4; θ ← θ − α·m̂/(√v̂ + ε).
    struct DoubleAdamW {
        var theta: [Double], m: [Double], v: [Double]
        let h: AdamHyperparameters

        init(theta: [Float], _ h: AdamHyperparameters) {
            self.theta = theta.map(Double.init)
            m = Array(repeating: 0, count: theta.count)
            v = Array(repeating: 0, count: theta.count)
            self.h = h
        }

        mutating func step(_ t: Int, _ gradients: [Float]) {
            var g = gradients.map(Double.init)
            if let c = h.clipNorm {
                let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let scale = min(1, Double(c) / (norm + 1e-6))
                g = g.map { $0 * scale }
            }
            let (alpha, lambda) = (Double(h.learningRate), Double(h.weightDecay))
            let (beta1, beta2, epsilon) = (Double(h.beta1), Double(h.beta2), Double(h.epsilon))
            for i in theta.indices {
                theta[i] -= alpha * lambda * theta[i]
                m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
                let mHat = m[i] / (1 - pow(beta1, Double(t)))
                let vHat = v[i] / (1 - pow(beta2, Double(t)))
                theta[i] -= alpha * mHat / (vHat.squareRoot() + epsilon)
            }
        }
    }

    func assertClose(_ got: [Float], _ want: [Double], _ label: String, tolerance: Double = 2e-6,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, file: file, line: line)
        for (i, (a, b)) in zip(got, want).enumerated() {
            XCTAssertEqual(Double(a), b, accuracy: tolerance * max(1, abs(b)), "\(label)[\(i)]", file: file, line: line)
        }
    }

    /// One step worked by hand: θ = 1, g = 0.5, α = 0.1, λ = 0.01, t = 1. Decay: θ = 1·(1 − 0.001)
    /// = 0.999; m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25; θ = 0.999 − 0.1·0.5/(0.5 + 1e-8) = 0.899.
    func testOneAdamWStepByHand() throws {
        let h = AdamHyperparameters(learningRate: 0.1, weightDecay: 0.01)
        let (theta, m, v) = try cpuStep([1], [0.5], [0], [0], h, step: 1, viaAdamW: true)
        XCTAssertEqual(theta[0], 0.899, accuracy: 1e-6)
        // (1 − β1) and (1 − β2) are those of β1 and β2 as Float32 (0.9 and 0.999 are not exact)
        let (oneMinusBeta1, oneMinusBeta2) = (1 - Double(Float(0.9)), 1 - Double(Float(0.999)))
        XCTAssertEqual(Double(m[0]), oneMinusBeta1 * 0.5, accuracy: 1e-9)
        XCTAssertEqual(m[0], 0.05, accuracy: 1e-7)
        XCTAssertEqual(Double(v[0]), oneMinusBeta2 * 0.25, accuracy: 1e-11)
        XCTAssertEqual(v[0], 0.00025, accuracy: 1e-8)
        // a parameter with zero gradient (and moments) only decays: θ·(1 − α·λ) exactly
        let (decayed, _, _) = try cpuStep([2, -4], [0, 0], [0, 0], [0, 0], h, step: 1)
        let decay = Float(1 - Double(Float(0.1)) * Double(Float(0.01)))
        XCTAssertEqual(decayed, [2 * decay, -4 * decay])
    }

    /// Clipping worked by hand: g = (3, 4), ‖g‖ = 5, c = 1: g′ = (3, 4)/(5 + 1e-6), so
    /// m = 0.1·g′ = (0.06, 0.08)·5/(5 + 1e-6) and v = 0.001·g′².
    func testClippingByHand() throws {
        let h = AdamHyperparameters(learningRate: 0.01, clipNorm: 1)
        let (_, m, v) = try cpuStep([0.5, -0.5], [3, 4], [0, 0], [0, 0], h, step: 1)
        let scale = 1 / (5 + 1e-6)
        let (oneMinusBeta1, oneMinusBeta2) = (1 - Double(Float(0.9)), 1 - Double(Float(0.999)))   // ≈ 0.1 and 0.001
        // to Float32's precision (the scale, g′ and m are each rounded once)
        XCTAssertEqual(Double(m[0]), oneMinusBeta1 * 3 * scale, accuracy: 1e-8)
        XCTAssertEqual(Double(m[1]), oneMinusBeta1 * 4 * scale, accuracy: 1e-8)
        XCTAssertEqual(Double(v[0]), oneMinusBeta2 * 9 * scale * scale, accuracy: 1e-10)
        XCTAssertEqual(Double(v[1]), oneMinusBeta2 * 16 * scale * scale, accuracy: 1e-10)
        // unclipped, m would be (0.3, 0.4): the clipping bit
        XCTAssertLessThan(m[1], 0.1)
        XCTAssertEqual(ElementwiseKernels.clipScale([3, 4], count: 2, clipNorm: 1), Float(scale))
        // within the norm: no scaling at all (min(1, ·) = 1)
        XCTAssertEqual(ElementwiseKernels.clipScale([3, 4], count: 2, clipNorm: 5.1), 1)
        XCTAssertEqual(ElementwiseKernels.clipScale([0, 0], count: 2, clipNorm: 1), 1)
        XCTAssertTrue(ElementwiseKernels.clipScale([.nan, 1], count: 2, clipNorm: 1).isNaN)
    }

    /// Four steps of AdamW with clipping, over 37 parameters (eight-lane blocks and a tail),
    /// against the Float64 definition, with each option alone and both together.
    func testSeveralStepsAgainstFloat64() throws {
        var random = TestData(seed: 11)
        let count = 37
        let initial = random.normal(count)
        let gradients = (0..<4).map { step in random.normal(count).map { $0 * Float(step + 1) } }
        for h in [AdamHyperparameters(learningRate: 0.01, weightDecay: 0.1),
                  AdamHyperparameters(learningRate: 0.02, beta1: 0.8, beta2: 0.99, clipNorm: 2),
                  AdamHyperparameters(learningRate: 0.005, weightDecay: 0.5, clipNorm: 0.5)] {
            var reference = DoubleAdamW(theta: initial, h)
            var theta = initial, m = [Float](repeating: 0, count: count), v = m
            for t in 1...4 {
                (theta, m, v) = try cpuStep(theta, gradients[t - 1], m, v, h, step: t, viaAdamW: t % 2 == 0)
                reference.step(t, gradients[t - 1])
                assertClose(theta, reference.theta, "θ \(h) t=\(t)")
                assertClose(m, reference.m, "m \(h) t=\(t)")
                assertClose(v, reference.v, "v \(h) t=\(t)", tolerance: 1e-5)
            }
            // the options change the result: the comparison is not vacuous
            var plain = DoubleAdamW(theta: initial, AdamHyperparameters(learningRate: h.learningRate, beta1: h.beta1, beta2: h.beta2))
            for t in 1...4 { plain.step(t, gradients[t - 1]) }
            XCTAssertGreaterThan(zip(plain.theta, reference.theta).map { abs($0 - $1) }.max() ?? 0, 1e-4)
        }
    }

    /// With λ = 0 and no clipping (or a clipping norm never reached) the update is bit for bit
    /// SEED.md §4 in Float32, in the seed's order of operations.
    func testPlainAdamUnchangedBitForBit() throws {
        var random = TestData(seed: 12)
        let count = 29
        var theta = random.normal(count), m = [Float](repeating: 0, count: count), v = m
        var seedTheta = theta, seedM = m, seedV = v
        let h = AdamHyperparameters(learningRate: 0.003, beta1: 0.85, beta2: 0.995, epsilon: 1e-7)
        for t in 1...5 {
            let g = random.normal(count)
            let options = [h, AdamHyperparameters(learningRate: 0.003, beta1: 0.85, beta2: 0.995, epsilon: 1e-7, weightDecay: 0),
                           AdamHyperparameters(learningRate: 0.003, beta1: 0.85, beta2: 0.995, epsilon: 1e-7, clipNorm: 1e6)]
            var results: [[UInt32]] = []
            var next = (theta, m, v)
            for (index, option) in options.enumerated() {
                let (newTheta, newM, newV) = try cpuStep(theta, g, m, v, option, step: t, viaAdamW: index > 0)
                results.append((newTheta + newM + newV).map(\.bitPattern))
                if index == 0 { next = (newTheta, newM, newV) }
            }
            (theta, m, v) = next
            XCTAssertEqual(results[1], results[0])
            XCTAssertEqual(results[2], results[0])
            // the seed's formula, in Float32
            let (c1, c2) = h.biasCorrections(step: t)
            for i in 0..<count {
                seedM[i] = h.beta1 * seedM[i] + (1 - h.beta1) * g[i]
                seedV[i] = h.beta2 * seedV[i] + (1 - h.beta2) * g[i] * g[i]
                let mHat = seedM[i] / c1, vHat = seedV[i] / c2
                seedTheta[i] = seedTheta[i] - h.learningRate * mHat / (vHat.squareRoot() + h.epsilon)
            }
            XCTAssertEqual(results[0], (seedTheta + seedM + seedV).map(\.bitPattern), "t=\(t)")
        }
    }

    /// In a session the decay reaches every parameter, biases included, and the clipping uses
    /// the norm of all the gradients together: one step against the Float64 definition.
    func testSessionAppliesBothToEveryParameter() throws {
        var random = TestData(seed: 13)
        let inputs = random.normal(10 * 4), labels = random.labels(10, classes: 3)
        let dataset = try Dataset(inputs: inputs, features: 4, targets: labels, encoding: .classIndices, targetWidth: 1)
        let model = try MLP(layerSizes: [4, 6, 3], loss: .crossEntropy, seed: 14)
        let h = AdamHyperparameters(learningRate: 0.05, weightDecay: 0.3, clipNorm: 0.1)
        let session = try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: h, batchCapacity: 10)
        try session.trainStep(on: try session.upload(dataset), positions: 0..<10, gathered: false)
        let g = try session.gradientValues()
        XCTAssertGreaterThan(g.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot(), 0.1, "the clipping must bite")
        var reference = DoubleAdamW(theta: model.parameters, h)
        reference.step(1, g)
        assertClose(try session.model().parameters, reference.theta, "θ")
        assertClose(try session.optimizerState().firstMoment, reference.m, "m")
    }

    /// Both are recorded in the checkpoint's metadata and restored.
    func testCheckpointRecordsWeightDecayAndClipping() throws {
        let model = try MLP(layerSizes: [2, 3, 1], loss: .meanSquaredError, seed: 1)
        for h in [AdamHyperparameters(learningRate: 0.01, weightDecay: 0.05, clipNorm: 2.5), AdamHyperparameters(weightDecay: 1e-4),
                  AdamHyperparameters()] {
            let bytes = try Checkpoint(model: model, optimizer: .zero(count: model.parameters.count), hyperparameters: h).encoded()
            let header = String(decoding: bytes[8..<min(bytes.count, 1500)], as: UTF8.self)
            XCTAssertTrue(header.contains("\"adam.weight_decay\":\"\(h.weightDecay)\""), header)
            XCTAssertEqual(header.contains("adam.clip_norm"), h.clipNorm != nil)
            XCTAssertEqual(try Checkpoint.decode(bytes).hyperparameters, h)
        }
        // invalid values are refused by the session
        XCTAssertThrowsError(try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: AdamHyperparameters(weightDecay: -1),
                                                 batchCapacity: 1))
        XCTAssertThrowsError(try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: AdamHyperparameters(clipNorm: 0),
                                                 batchCapacity: 1))
    }
}
