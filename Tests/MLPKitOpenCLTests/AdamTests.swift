import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// The Adam kernel over several steps, with t read from device memory, against the CPU backend.
final class AdamTests: XCTestCase {
    /// 1...4 advance t on the device; 9 is a jump (a resumed run), written from the host.
    func testAdamSteps() throws {
        let backend = try OpenCLBackend(tiles: SharedBackends.backend().tiles)
        try OperationChecks.checkAdamSteps(backend, count: 1031, steps: [1, 2, 3, 4, 9, 10], deviceStep: {
            let counter = try backend.read(BufferSlice(backend.stepCounter), 1)[0].bitPattern
            return Int(Int32(bitPattern: counter))
        }, group: "adam")
        ErrorLog.printWorst(prefix: "adam")
    }

    /// Plain Adam follows the CPU's order and roundings (no multiply-add contraction, the bias
    /// corrections rounded once from Float64), so θ, m and v are the CPU's bits. The first case
    /// is one parameter whose first moment cancels to −7.3e-4 over five steps: contracted, as the
    /// kernel once was, m differed from the CPU's by 1.06e-5 of itself (`mlp check --seed 18`).
    func testAdamMatchesCPUBitForBit() throws {
        let backend = try SharedBackends.backend()
        var random = SeededGenerator(seed: 31)
        let count = 1031
        let cases: [(θ: [Float], m: [Float], v: [Float], gradients: [[Float]], steps: [Int])] = [
            ([-0.24984428], [0.07568475], [0.002486062], [[0.400672], [0.451353], [-0.4459746], [0.06051227], [-0.7393362]],
             [1, 2, 3, 4, 5]),
            (random.values(count), random.values(count).map { $0 * 0.1 }, random.values(count).map { abs($0) * 0.01 },
             (0..<7).map { _ in random.values(count) }, [1, 2, 3, 4, 5, 9, 10_000]),
        ]
        func run<B: Backend>(_ b: B, _ c: (θ: [Float], m: [Float], v: [Float], gradients: [[Float]], steps: [Int])) throws -> [[Float]] {
            let (θ, m, v) = (try b.buffer(c.θ, offset: 3), try b.buffer(c.m, offset: 3), try b.buffer(c.v, offset: 3))
            for (step, gradient) in zip(c.steps, c.gradients) {
                try b.adamUpdate(parameters: θ, gradients: b.buffer(gradient, offset: 3), firstMoment: m, secondMoment: v,
                                 count: c.θ.count, hyperparameters: AdamHyperparameters(), step: step)
            }
            return [try b.read(θ, c.θ.count), try b.read(m, c.θ.count), try b.read(v, c.θ.count)]
        }
        for (index, c) in cases.enumerated() {
            let actual = try run(backend, c), expected = try run(CPUBackend(), c)
            for (name, (x, y)) in zip(["θ", "m", "v"], zip(actual, expected)) {
                let differing = x.indices.filter { x[$0].bitPattern != y[$0].bitPattern }
                XCTAssertEqual(differing.count, 0, "case \(index): \(name) differs in \(differing.count) of \(x.count) elements"
                               + (differing.first.map { ", first at \($0): \(x[$0]) against the CPU's \(y[$0])" } ?? ""))
            }
        }
    }

    func testStepZeroIsRefused() throws {
        let backend = try SharedBackends.backend()
        let buffer = try backend.buffer([1])
        XCTAssertThrowsError(try backend.adamUpdate(parameters: buffer, gradients: buffer, firstMoment: buffer,
                                                    secondMoment: buffer, count: 1, hyperparameters: .init(), step: 0))
    }
}
