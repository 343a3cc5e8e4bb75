import XCTest
@testable import MLPKit

/// A first layer's weight kept in panels (`Backend.firstWeightPanels`): the layout's index, the
/// CPU's panel products against its products in rows (bit for bit, and against Float64 sums),
/// and whole sessions with panels against sessions in rows.
final class WeightPanelTests: XCTestCase {
    /// A backend's buffer holding `values`.
    private func buffer(_ backend: CPUBackend, _ values: [Float]) throws -> CPUBuffer {
        let buffer = try backend.makeBuffer(count: max(values.count, 1))
        try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
        return buffer
    }

    /// The first `count` elements of a buffer.
    private func values(_ buffer: CPUBuffer, _ count: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: buffer.pointer, count: count))
    }

    /// How many elements differ in their bits.
    private func mismatches(_ x: [Float], _ y: [Float]) -> Int {
        x.count != y.count ? max(x.count, y.count) : zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count
    }

    /// W(j, p) at (j / w)·w·columns + p·w + j % w, worked by hand for 64×3 in panels of 32; packing
    /// moves only W's block of a flat array and unpacking undoes it.
    func testPanelLayoutPlacesEachElementAndRoundTrips() {
        let panels = WeightPanels(rows: 64, columns: 3, width: 32)
        XCTAssertEqual(panels.index(row: 0, column: 0), 0)
        XCTAssertEqual(panels.index(row: 1, column: 0), 1)
        XCTAssertEqual(panels.index(row: 0, column: 1), 32)
        XCTAssertEqual(panels.index(row: 31, column: 2), 95)
        XCTAssertEqual(panels.index(row: 32, column: 0), 96)
        XCTAssertEqual(panels.index(row: 33, column: 2), 161)
        let flat = (0..<(64 * 3 + 5)).map { Float($0) }
        let packed = panels.reorder(flat, packs: true)
        // W(33, 2) is element 33·3 + 2 in rows
        XCTAssertEqual(packed[161], Float(33 * 3 + 2))
        XCTAssertEqual(Set(packed[..<192]), Set(flat[..<192]))
        XCTAssertEqual(Array(packed[192...]), Array(flat[192...]))
        XCTAssertNotEqual(packed, flat)
        XCTAssertEqual(panels.reorder(packed, packs: false), flat)
    }

    /// Clipping's Float64 norm over a gradient whose weight is kept in panels is summed in the
    /// rows' order: the bits of the sum over the gradient in rows, on values where the order
    /// shows (W(0, 4) = 10⁸, after which squares of 1 are lost: fifth in rows, 129th in the panels'
    /// order; the sum in storage order differs, which the test checks).
    func testClippingNormIsSummedInTheRowsOrder() {
        let panels = WeightPanels(rows: 64, columns: 5, width: 32)
        var rows = [Float](repeating: 1, count: 64 * 5 + 3)
        rows[4] = 1e8
        let stored = panels.reorder(rows, packs: true)
        rows.withUnsafeBufferPointer { inRows in
            stored.withUnsafeBufferPointer { inPanels in
                let expected = ElementwiseKernels.squaredNorm(inRows.baseAddress!, count: rows.count)
                let got = ElementwiseKernels.squaredNorm(inPanels.baseAddress!, count: rows.count, panels: panels)
                XCTAssertEqual(got.bitPattern, expected.bitPattern)
                XCTAssertNotEqual(ElementwiseKernels.squaredNorm(inPanels.baseAddress!, count: rows.count).bitPattern, expected.bitPattern)
                XCTAssertEqual(ElementwiseKernels.clipScale(inPanels.baseAddress!, count: rows.count, clipNorm: 1, panels: panels),
                               ElementwiseKernels.clipScale(inRows.baseAddress!, count: rows.count, clipNorm: 1))
            }
        }
    }

    /// On the default backend, `panelledProduct` gives `matrixProduct(.nt, …)`'s bits with W in
    /// rows, and `panelledWeightGradient` the packed bits of `matrixProduct(.tn, …)`, over a
    /// NaN-poisoned C, for the batch's rows picked where they lie and as a matrix, every product
    /// epilogue: mnist's first layer (the panel kernels where there is AVX-512, which the test
    /// checks), a ragged batch of 44, a batch taller than the layer (split by rows), three depth
    /// blocks of the forward product, a batch of two depth blocks, and a small one (through rows).
    func testPanelledProductsHaveTheBitsOfTheProductsInRows() throws {
        let backend = CPUBackend()
        XCTAssertEqual(backend.takesPanelledProducts(rows: 256, columns: 784, batch: 128), SIMDKernels.avx512)
        XCTAssertEqual(backend.firstWeightPanels(rows: 256, columns: 784, batch: 128), SIMDKernels.avx512 ? 32 : nil)
        XCTAssertNil(backend.firstWeightPanels(rows: 250, columns: 784, batch: 128), "not a multiple of 32")
        XCTAssertFalse(backend.takesPanelledProducts(rows: 32, columns: 7, batch: 9))
        let shapes: [(m: Int, n: Int, k: Int)] = [(128, 256, 784), (44, 256, 784), (300, 64, 300), (128, 256, 1100), (600, 64, 300),
                                                  (9, 32, 7)]
        for (m, n, k) in shapes {
            let panels = WeightPanels(rows: n, columns: k, width: 32)
            let sourceRows = m + 17
            let source = try buffer(backend, CPUParallelTests.randomValues(sourceRows * k, seed: UInt64(m + k)))
            var generator = SeededGenerator(seed: UInt64(m * 7 + n))
            let indices = (0..<m).map { _ in Float(generator.next() % UInt64(sourceRows)) }
            let indexBuffer = try buffer(backend, indices)
            let gathered = try backend.makeBuffer(count: m * k)
            try backend.gatherRows(BufferSlice(source), width: k, indices: BufferSlice(indexBuffer), count: m, into: BufferSlice(gathered))
            let weights = CPUParallelTests.randomValues(n * k, seed: UInt64(n), scale: 0.1)
            let inRows = try buffer(backend, weights), inPanels = try buffer(backend, panels.reorder(weights, packs: true))
            let bias = try buffer(backend, CPUParallelTests.randomValues(n, seed: 5))
            let delta = try buffer(backend, CPUParallelTests.randomValues(m * n, seed: 6, scale: 0.01))
            let inputs: [(String, BatchInput<CPUBuffer>)] = [
                ("selected", .selected(SelectedRows(source: BufferSlice(source), width: k, indices: BufferSlice(indexBuffer)))),
                ("matrix", .matrix(BufferSlice(gathered))),
            ]
            for (inputName, input) in inputs {
                let epilogues: [(String, ProductEpilogue<CPUBuffer>)] = [
                    ("none", .none), ("bias", .bias(BufferSlice(bias))), ("biasReLU", .biasReLU(BufferSlice(bias))),
                ]
                for (epilogueName, epilogue) in epilogues {
                    let expected = try buffer(backend, [Float](repeating: .nan, count: m * n))
                    let got = try buffer(backend, [Float](repeating: .nan, count: m * n))
                    try backend.matrixProduct(.nt, m: m, n: n, k: k, a: BufferSlice(gathered), b: BufferSlice(inRows),
                                              c: BufferSlice(expected), epilogue: epilogue)
                    try backend.panelledProduct(m: m, n: n, k: k, input: input, panels: BufferSlice(inPanels), c: BufferSlice(got),
                                                epilogue: epilogue)
                    XCTAssertEqual(mismatches(values(got, m * n), values(expected, m * n)), 0,
                                   "forward \(m)×\(n)×\(k) \(inputName) \(epilogueName)")
                }
                let expected = try buffer(backend, [Float](repeating: .nan, count: n * k))
                let got = try buffer(backend, [Float](repeating: .nan, count: n * k))
                try backend.matrixProduct(.tn, m: n, n: k, k: m, a: BufferSlice(delta), b: BufferSlice(gathered), c: BufferSlice(expected),
                                          epilogue: .none)
                try backend.panelledWeightGradient(rows: n, columns: k, batch: m, delta: BufferSlice(delta), input: input,
                                                   into: BufferSlice(got))
                XCTAssertEqual(mismatches(values(got, n * k), panels.reorder(values(expected, n * k), packs: true)), 0,
                               "gradient \(n)×\(k) over \(m) \(inputName)")
            }
        }
    }

    /// The panel kernels' sums against Float64 ones (so that the comparison above is not of two
    /// equal wrongs): Z = A·Wᵀ + b and dW = dZᵀ·A, 128×64×300, within Float32's rounding.
    func testPanelledProductsAgreeWithFloat64Sums() throws {
        let backend = CPUBackend()
        let (m, n, k) = (128, 64, 300)
        let panels = WeightPanels(rows: n, columns: k, width: 32)
        let a = CPUParallelTests.randomValues(m * k, seed: 21), w = CPUParallelTests.randomValues(n * k, seed: 22, scale: 0.1)
        let b = CPUParallelTests.randomValues(n, seed: 23), dz = CPUParallelTests.randomValues(m * n, seed: 24)
        let aBuffer = try buffer(backend, a), bBuffer = try buffer(backend, b), dzBuffer = try buffer(backend, dz)
        let wBuffer = try buffer(backend, panels.reorder(w, packs: true))
        let z = try backend.makeBuffer(count: m * n), dw = try backend.makeBuffer(count: n * k)
        try backend.panelledProduct(m: m, n: n, k: k, input: .matrix(BufferSlice(aBuffer)), panels: BufferSlice(wBuffer),
                                    c: BufferSlice(z), epilogue: .bias(BufferSlice(bBuffer)))
        try backend.panelledWeightGradient(rows: n, columns: k, batch: m, delta: BufferSlice(dzBuffer),
                                           input: .matrix(BufferSlice(aBuffer)), into: BufferSlice(dw))
        let gradient = panels.reorder(values(dw, n * k), packs: false)
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(b[j]), size = abs(Double(b[j]))
                for p in 0..<k {
                    sum += Double(a[i * k + p]) * Double(w[j * k + p])
                    size += abs(Double(a[i * k + p]) * Double(w[j * k + p]))
                }
                worst = max(worst, abs(Double(z.pointer[i * n + j]) - sum) / size)
            }
        }
        for j in 0..<n {
            for p in 0..<k {
                var sum = 0.0, size = 0.0
                for i in 0..<m {
                    sum += Double(dz[i * n + j]) * Double(a[i * k + p])
                    size += abs(Double(dz[i * n + j]) * Double(a[i * k + p]))
                }
                worst = max(worst, abs(Double(gradient[j * k + p]) - sum) / size)
            }
        }
        XCTAssertLessThan(worst, 1e-5)
        XCTAssertGreaterThan(z.pointer[0].magnitude + dw.pointer[0].magnitude, 0)
    }

    /// Sessions on a backend that keeps the first weight in panels (where there is AVX-512, which
    /// the test checks) end with the bits of sessions on one that keeps it in rows: parameters,
    /// gradients, Adam's moments, loss sums, evaluation and predictions, over 128-row batches (the
    /// panel kernels) and a ragged one of 44 (through rows), picked in place and gathered, with
    /// plain Adam and with AdamW and clipping (whose norm is summed in rows' order); a one-layer
    /// model (bias epilogue); and a session resumed from the panelled one's model and state.
    func testSessionsKeepingPanelsTrainAsSessionsInRows() throws {
        let (features, rowCount) = (300, 300)
        let inputs = CPUParallelTests.randomValues(rowCount * features, seed: 31)
        var generator = SeededGenerator(seed: 32)
        let order = (0..<rowCount).map { _ in Int(generator.next() % UInt64(rowCount)) }
        let cases: [(String, [Int], Loss, AdamHyperparameters)] = [
            ("plain", [features, 64, 10], .crossEntropy, AdamHyperparameters(learningRate: 1e-2)),
            ("adamw-clipped", [features, 64, 10], .crossEntropy, AdamHyperparameters(learningRate: 1e-2, weightDecay: 0.1, clipNorm: 0.05)),
            ("one layer", [features, 64], .meanSquaredError, AdamHyperparameters(learningRate: 1e-2)),
        ]
        for (name, sizes, loss, hyperparameters) in cases {
            let targets: [Float] = loss == .crossEntropy
                ? (0..<rowCount).map { Float($0 % 10) } : CPUParallelTests.randomValues(rowCount * sizes.last!, seed: 33)
            let dataset = try Dataset(inputs: inputs, features: features, targets: targets,
                                      encoding: loss == .crossEntropy ? .classIndices : .dense,
                                      targetWidth: loss == .crossEntropy ? 1 : sizes.last!)
            let model = try MLP(layerSizes: sizes, activation: .relu, loss: loss, seed: 3)
            let rowsBackend = CPUBackend()
            rowsBackend.keepsWeightsInPanels = false
            let panelled = try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: hyperparameters, batchCapacity: 128)
            let rows = try TrainingSession(model: model, backend: rowsBackend, hyperparameters: hyperparameters, batchCapacity: 128)
            XCTAssertEqual(panelled.firstWeightPanels, SIMDKernels.avx512 ? WeightPanels(rows: 64, columns: features, width: 32) : nil)
            XCTAssertNil(rows.firstWeightPanels)
            XCTAssertEqual(mismatches(try panelled.model().parameters, model.parameters), 0, "\(name): read back in rows")
            let sessions = [panelled, rows]
            let data = try sessions.map { try $0.upload(dataset) }
            for (session, data) in zip(sessions, data) {
                try session.setRowOrder(order)
                try session.reserveLossSums(4)
                for (slot, positions) in [0..<128, 128..<256, 256..<300].enumerated() {
                    try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot)
                }
                try session.trainStep(on: data, positions: 100..<228, gathered: false, lossSlot: 3)
            }
            XCTAssertEqual(mismatches(try panelled.model().parameters, try rows.model().parameters), 0, "\(name): parameters")
            XCTAssertNotEqual(try panelled.model().parameters, model.parameters, "\(name): trained")
            XCTAssertEqual(mismatches(try panelled.gradientValues(), try rows.gradientValues()), 0, "\(name): gradients")
            let (m1, m2) = (try panelled.optimizerState(), try rows.optimizerState())
            XCTAssertEqual(mismatches(m1.firstMoment, m2.firstMoment), 0, "\(name): m")
            XCTAssertEqual(mismatches(m1.secondMoment, m2.secondMoment), 0, "\(name): v")
            XCTAssertEqual(mismatches(try panelled.lossSums(count: 4), try rows.lossSums(count: 4)), 0, "\(name): losses")
            let (e1, e2) = (try panelled.evaluate(data[0]), try rows.evaluate(data[1]))
            XCTAssertEqual(e1.loss.bitPattern, e2.loss.bitPattern, name)
            let sample = Array(inputs[0..<(130 * features)])
            XCTAssertEqual(mismatches(try panelled.predict(sample), try rows.predict(sample)), 0, "\(name): predictions")
            // resumed from the panelled session's model and state (read back in rows, placed in panels again)
            let resumed = try TrainingSession(model: try panelled.model(), backend: CPUBackend(), hyperparameters: hyperparameters,
                                              optimizerState: m1, batchCapacity: 128)
            let resumedData = try resumed.upload(dataset)
            try resumed.setRowOrder(order)
            try resumed.trainStep(on: resumedData, positions: 0..<128, gathered: true)
            try rows.trainStep(on: data[1], positions: 0..<128, gathered: true)
            XCTAssertEqual(mismatches(try resumed.model().parameters, try rows.model().parameters), 0, "\(name): resumed")
        }
    }
}
