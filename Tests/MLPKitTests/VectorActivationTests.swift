import CMLPKitSIMD
import Foundation
import XCTest
@testable import MLPKit

/// MLPKit's tanh is within 1.5 ulp of the exact tanh, and the CPU backend's activation passes
/// with AVX-512 (tanh sixteen at a time with the scalar `mlpkit_tanh`'s bits, σ eight at a time
/// with glibc's expf, GELU's tanh the same way) give the bits of the scalar
/// functions (`ActivationFunction.apply` and `derivative(from:)`), special values included, in
/// the forward pass (with and without the kept pre-activations) and the backward pass, on one
/// thread and split over the threads.
final class VectorActivationTests: XCTestCase {
    private func requireAVX512() throws {
        guard SIMDKernels.enabled, mlpkit_avx512_level() > 0 else { throw XCTSkip("no AVX-512 here") }
    }

    private func differs(_ x: Float, _ y: Float) -> Bool { x.bitPattern != y.bitPattern && !(x.isNaN && y.isNaN) }

    /// Every 1021st float, and three floats around each edge of tanhf's and expm1f's cases.
    private func sampledFloats(edges: [Float]) -> [Float] {
        stride(from: UInt64(0), to: 1 << 32, by: 1021).map { Float(bitPattern: UInt32($0)) }
            + edges.flatMap { [$0.nextDown, $0, $0.nextUp, -$0.nextDown, -$0, -$0.nextUp] }
    }

    private let specials: [Float] = [0, 1, 22, 0x1p-55, 0x1p-25, 0.5, 0.34657359, 0.51986039, 1.0397208, 9, 44, 88, 89, 100,
                                     .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, .infinity, .nan]

    /// `mlpkit_tanh_avx512` against the scalar `mlpkit_tanh` (`Scripts/check-avx512-functions.sh
    /// tanh` checks all 2³² floats), around the edges of its cases (0.9, 10) too, in place and with
    /// every ragged count up to 33 (lanes past the end neither read nor written).
    func testAVX512TanhHasTheScalarBits() throws {
        try requireAVX512()
        let inputs = sampledFloats(edges: specials + [0.9, 10, 0x1p-63, 0x1p-12])
        var outputs = [Float](repeating: 0, count: inputs.count)
        mlpkit_tanh_avx512(inputs, &outputs, inputs.count)
        let wrong = zip(inputs, outputs).filter { differs($1, mlpkit_tanh($0)) }
        XCTAssertEqual(wrong.count, 0, "first: \(wrong.prefix(5).map { "tanh(\($0.0)) = \($0.1), scalar \(mlpkit_tanh($0.0))" })")
        XCTAssertTrue(SIMDKernels.vectorTanh && SIMDKernels.vectorExp, "the vector paths run")
        for count in 1...33 {
            var values = (0..<40).map { Float($0) * -0.37 + 7 }
            let expected = values.prefix(count).map { mlpkit_tanh($0) } + values.dropFirst(count)
            values.withUnsafeMutableBufferPointer { mlpkit_tanh_avx512($0.baseAddress!, $0.baseAddress!, count) }
            XCTAssertEqual(values.map(\.bitPattern), expected.map(\.bitPattern), "count \(count)")
        }
    }

    /// MLPKit's tanh against Float64's on the sample and densely around its cases' edges: within
    /// 1.5 ulp of the result's binade (1.08 at most over all floats, the script finds); odd
    /// (tanh(−x) = −tanh(x), −0 kept); ±1 from 10 on and at ±∞; NaN for NaN; hand-checked values.
    func testTanhIsWithinOneAndAHalfUlpOfTheExactTanh() {
        var inputs = sampledFloats(edges: specials + [0.9, 10, 0x1p-12, 0.5493061])
        for edge: Float in [0.9, 0.5, 2, 5, 9] {
            var x = edge
            for _ in 0..<2000 { inputs += [x, -x]; x = x.nextUp }
        }
        var worst = 0.0, worstInput: Float = 0
        for x in inputs where !x.isNaN {
            let y = mlpkit_tanh(x), exact = Foundation.tanh(Double(x))
            let ulp = abs(exact) < 0x1p-126 ? 0x1p-149 : Double(sign: .plus, exponent: exact.exponent - 23, significand: 1)
            let error = abs(Double(y) - exact) / ulp
            if error > worst { (worst, worstInput) = (error, x) }
            XCTAssertEqual(mlpkit_tanh(-x).bitPattern, (-y).bitPattern, "tanh(−\(x))")
        }
        XCTAssertLessThan(worst, 1.5, "at x = \(worstInput)")
        XCTAssertEqual(mlpkit_tanh(0).bitPattern, Float(0).bitPattern)
        XCTAssertEqual(mlpkit_tanh(-0.0).bitPattern, Float(-0.0).bitPattern)
        XCTAssertEqual(mlpkit_tanh(.infinity), 1)
        XCTAssertEqual(mlpkit_tanh(-.infinity), -1)
        XCTAssertEqual(mlpkit_tanh(10), 1)
        XCTAssertEqual(mlpkit_tanh(1e30), 1)
        XCTAssertTrue(mlpkit_tanh(.nan).isNaN)
        XCTAssertEqual(mlpkit_tanh(0x1p-100), 0x1p-100)
        // tanh(0.5) = 0.46211715726…, tanh(1) = 0.76159415595…, tanh(3) = 0.99505475368…: the nearest floats
        XCTAssertEqual(mlpkit_tanh(0.5), 0.46211716)
        XCTAssertEqual(mlpkit_tanh(1), 0.7615942)
        XCTAssertEqual(mlpkit_tanh(3), 0.9950548)
    }

    /// `mlpkit_log1pf_avx512` (binary cross-entropy's log(1 + e^−|z|)) against this machine's
    /// log1pf (`Scripts/check-avx512-functions.sh log1pf` checks all 2³² floats): on the sample,
    /// around its cases' edges (√2/2 − 1, √2 − 1, 2⁻²⁹, 2⁻⁵⁴, 1 − 2⁻²⁴, −1) and in place.
    func testAVX512Log1pHasLog1pfsBits() throws {
        try requireAVX512()
        let inputs = sampledFloats(edges: specials + [-0.29289323, 0.41421357, 0x1p-29, 0x1p-54, 1 - 0x1p-24, 2, 0x1p53])
        var outputs = [Float](repeating: 0, count: inputs.count)
        mlpkit_log1pf_avx512(inputs, &outputs, inputs.count)
        let wrong = zip(inputs, outputs).filter { differs($1, log1pf($0)) }
        XCTAssertEqual(wrong.count, 0, "first: \(wrong.prefix(5).map { "log1p(\($0.0)) = \($0.1), log1pf \(log1pf($0.0))" })")
        XCTAssertTrue(SIMDKernels.vectorLog1p, "the C library's log1pf agrees, so the vector path runs")
        for count in 1...33 {
            var values = (0..<40).map { Float($0) * 0.031 }
            let expected = values.prefix(count).map { log1pf($0) } + values.dropFirst(count)
            values.withUnsafeMutableBufferPointer { mlpkit_log1pf_avx512($0.baseAddress!, $0.baseAddress!, count) }
            XCTAssertEqual(values.map(\.bitPattern), expected.map(\.bitPattern), "count \(count)")
        }
    }

    /// `mlpkit_sigmoid_avx512` against `ActivationFunction.sigmoid`, the same way.
    func testAVX512SigmoidHasTheScalarBits() throws {
        try requireAVX512()
        let inputs = sampledFloats(edges: specials + [87.99, 103.97, 104])
        var outputs = [Float](repeating: 0, count: inputs.count)
        mlpkit_sigmoid_avx512(inputs, &outputs, inputs.count)
        let wrong = zip(inputs, outputs).filter { differs($1, ActivationFunction.sigmoid($0)) }
        XCTAssertEqual(wrong.count, 0, "first: \(wrong.prefix(5).map { "σ(\($0.0)) = \($0.1), scalar \(ActivationFunction.sigmoid($0.0))" })")
        for count in 1...17 {
            var values = (0..<24).map { Float($0) * -1.3 + 12 }
            let expected = values.prefix(count).map { ActivationFunction.sigmoid($0) } + values.dropFirst(count)
            values.withUnsafeMutableBufferPointer { mlpkit_sigmoid_avx512($0.baseAddress!, $0.baseAddress!, count) }
            XCTAssertEqual(values.map(\.bitPattern), expected.map(\.bitPattern), "count \(count)")
        }
    }

    /// The sample that decides whether a vector function serves (`SIMDKernels.vectorExp`) tells a
    /// copy of the scalar function from one that is one ulp off on a narrow range (a hundredth), or on NaN.
    func testTheSampleCatchesAnyDifference() {
        func exact(_ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?, _ n: Int) { for i in 0..<n { y![i] = tanhf(x![i]) } }
        XCTAssertTrue(SIMDKernels.agreesOnASample(exact, tanhf, within: 12))
        XCTAssertFalse(SIMDKernels.agreesOnASample({ x, y, n in
            exact(x, y, n)
            for i in 0..<n where x![i] > -0.26 && x![i] < -0.25 { y![i] = y![i].nextUp }
        }, tanhf, within: 12))
        XCTAssertFalse(SIMDKernels.agreesOnASample({ x, y, n in
            exact(x, y, n)
            for i in 0..<n where x![i].isNaN { y![i] = 0 }
        }, tanhf, within: 12))
    }

    private let functions: [ActivationFunction] = [.relu, .leakyReLU(slope: 0.1), .tanh, .sigmoid, .gelu]

    /// A rows×columns matrix of normal values times 3, with NaN, ±∞, ±0, a subnormal and large
    /// values sprinkled in.
    private func matrix(rows: Int, columns: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var values = (0..<(rows * columns)).map { _ in Float(generator.nextNormal() * 3) }
        let odd: [Float] = [.nan, .infinity, -.infinity, 0, -0, .leastNonzeroMagnitude, 50, -50, 1e-20, -30]
        for (index, value) in odd.enumerated() { values[(index * 7919) % values.count] = value }
        return values
    }

    /// The forward pass (C + bias, kept or not, then f) and the backward pass (C · f′) equal
    /// `apply` and `derivative(from:)` element by element, with the vector paths and without; a
    /// matrix past the split threshold too, so the threads take its rows.
    func testActivationPassesHaveTheScalarFunctionsBits() throws {
        let vectors = SIMDKernels.avx512 ? [false, true] : [false]
        for (rows, columns) in [(37, 45), (3, 1), (1, 300), (600, 500)] {
            let c = matrix(rows: rows, columns: columns, seed: UInt64(rows * columns))
            let bias = matrix(rows: 1, columns: columns, seed: 5).map { $0 / 4 }
            let z = (0..<c.count).map { c[$0] + bias[$0 % columns] }
            let source = matrix(rows: rows, columns: columns, seed: 9)
            for function in functions where rows * columns < 1 << 18 || function == .gelu || function == .tanh {
                let forward = z.map { function.apply($0) }
                // ReLU's is a mask (C where A > 0, else +0, as the ReLU product epilogue), not a product
                let backward = (0..<c.count).map { function == .relu ? (source[$0] > 0 ? c[$0] : 0) : c[$0] * function.derivative(from: source[$0]) }
                for vector in vectors {
                    for keeps in [false, true] {
                        var out = c, kept = [Float](repeating: 7, count: c.count)
                        out.withUnsafeMutableBufferPointer { o in
                            kept.withUnsafeMutableBufferPointer { k in
                                ElementwiseKernels.biasActivation(o.baseAddress!, rows: rows, columns: columns, bias: bias, function: function,
                                                                  preActivation: keeps ? k.baseAddress! : nil, vector: vector)
                            }
                        }
                        let wrong = (0..<c.count).filter { differs(out[$0], forward[$0]) }
                        XCTAssertEqual(wrong.count, 0, "\(function) \(rows)×\(columns) vector \(vector): first at \(wrong.prefix(3).map { (z[$0], out[$0], forward[$0]) })")
                        if keeps { XCTAssertFalse((0..<c.count).contains { differs(kept[$0], z[$0]) }, "\(function): the kept Z") }
                    }
                    var d = c
                    d.withUnsafeMutableBufferPointer {
                        ElementwiseKernels.activationDerivative($0.baseAddress!, source: source, count: c.count, function: function, vector: vector)
                    }
                    let wrong = (0..<c.count).filter { differs(d[$0], backward[$0]) }
                    XCTAssertEqual(wrong.count, 0, "\(function)′ \(rows)×\(columns) vector \(vector): first at \(wrong.prefix(3).map { (source[$0], d[$0], backward[$0]) })")
                }
            }
        }
    }
}
