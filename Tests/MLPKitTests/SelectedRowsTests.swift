import XCTest
@testable import MLPKit

/// Products that read a batch's rows where they lie in the data (`SelectedRows`) instead of
/// gathering them first: the same bits as the gather followed by the product, through the
/// backend and through whole training steps, and the same errors for bad rows.
final class SelectedRowsTests: XCTestCase {
    /// A backend's buffer holding `values`.
    private func buffer(_ backend: CPUBackend, _ values: [Float]) throws -> CPUBuffer {
        let buffer = try backend.makeBuffer(count: values.count)
        try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
        return buffer
    }

    /// How many of the first `count` elements differ in their bits.
    private func mismatches(_ x: CPUBuffer, _ y: CPUBuffer, _ count: Int) -> Int {
        (0..<count).filter { x.pointer[$0].bitPattern != y.pointer[$0].bitPattern }.count
    }

    /// On the default backend, the packed-product backend and the Swift product's: the selected
    /// rows' product (NT and NN: A's rows; TN: B's rows) equals `gatherRows` then `matrixProduct`
    /// bit for bit, with every epilogue, over a NaN-poisoned C, for mnist's first-layer shapes
    /// (read in place where there is AVX-512, which the test checks it took), a tall one (split by
    /// rows) and small ones (gathered for the call).
    func testSelectedRowsProductHasTheGatheredProductsBits() throws {
        let shapes: [(ProductLayout, Int, Int, Int)] = [
            (.nt, 128, 256, 784), (.tn, 256, 784, 128), (.nn, 128, 256, 784), (.nt, 44, 256, 784), (.tn, 256, 784, 44),
            (.nt, 9, 5, 7), (.tn, 5, 7, 9), (.nt, 600, 64, 300),
        ]
        let backends = [("default", CPUBackend()), ("packed", CPUBackend(packedProduct: ())), ("swift", CPUBackend(useBLAS: false))]
        for (name, backend) in backends {
            // the Swift product (debug builds run it unoptimised) on the small shapes only
            for (layout, m, n, k) in shapes where name != "swift" || m * n * k < 1 << 20 {
                let (count, width) = layout == .tn ? (k, n) : (m, k)
                let sourceRows = count + 29
                let source = try buffer(backend, CPUParallelTests.randomValues(sourceRows * width, seed: UInt64(m + n + k)))
                var generator = SeededGenerator(seed: UInt64(m * 3 + k))
                let indices = (0..<count).map { _ in Float(generator.next() % UInt64(sourceRows)) }
                let indexBuffer = try buffer(backend, indices)
                let otherCount = layout == .tn ? k * m : k * n
                let other = try buffer(backend, CPUParallelTests.randomValues(otherCount, seed: UInt64(n), scale: 0.1))
                let bias = try buffer(backend, CPUParallelTests.randomValues(n, seed: 5))
                let mask = try buffer(backend, CPUParallelTests.randomValues(m * n, seed: 6))
                let gathered = try backend.makeBuffer(count: count * width)
                try backend.gatherRows(BufferSlice(source), width: width, indices: BufferSlice(indexBuffer), count: count,
                                       into: BufferSlice(gathered))
                let epilogues: [(String, ProductEpilogue<CPUBuffer>)] = [
                    ("none", .none), ("bias", .bias(BufferSlice(bias))), ("biasReLU", .biasReLU(BufferSlice(bias))),
                    ("reluMask", .reluMask(BufferSlice(mask))),
                ]
                for (epilogueName, epilogue) in epilogues {
                    let expected = try backend.makeBuffer(count: m * n), c = try backend.makeBuffer(count: m * n)
                    expected.pointer.update(repeating: .nan, count: m * n)
                    c.pointer.update(repeating: .nan, count: m * n)
                    let (a, b) = layout == .tn ? (BufferSlice(other), BufferSlice(gathered)) : (BufferSlice(gathered), BufferSlice(other))
                    try backend.matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: BufferSlice(expected), epilogue: epilogue)
                    let rows = SelectedRows(source: BufferSlice(source), width: width, indices: BufferSlice(indexBuffer))
                    try backend.matrixProduct(layout, m: m, n: n, k: k, rows: rows, other: BufferSlice(other), c: BufferSlice(c),
                                              epilogue: epilogue)
                    XCTAssertEqual(mismatches(c, expected, m * n), 0, "\(name) \(layout) \(m)×\(n)×\(k) \(epilogueName)")
                }
            }
        }
        // where the processor has AVX-512, mnist's two first-layer products are read in place
        // (the TN one wherever the SIMD paths run), small ones and the Swift product's never
        let backend = CPUBackend()
        XCTAssertEqual(backend.readsRowsInPlace(.nt, m: 128, n: 256, k: 784), SIMDKernels.avx512)
        XCTAssertEqual(backend.readsRowsInPlace(.tn, m: 256, n: 784, k: 128), SIMDKernels.avx512 || (SIMDKernels.enabled && backend.blas == nil))
        XCTAssertFalse(backend.readsRowsInPlace(.nt, m: 9, n: 5, k: 7))
        XCTAssertFalse(CPUBackend(useBLAS: false).readsRowsInPlace(.nt, m: 128, n: 256, k: 784))
    }

    /// Bad rows get the errors `gatherRows` gives, before C is written: an index past the
    /// source's rows, negative, fractional or NaN (out of bounds), and a width that is not the
    /// operand's, a short index buffer or a short other operand.
    func testSelectedRowsProductChecksItsArguments() throws {
        let backend = CPUBackend()
        let (m, n, k) = (128, 256, 784)
        let source = try buffer(backend, CPUParallelTests.randomValues(200 * k, seed: 1))
        let other = try buffer(backend, CPUParallelTests.randomValues(n * k, seed: 2))
        let c = try backend.makeBuffer(count: m * n)
        for bad: Float in [200, -1, 2.5, .nan, 1e14] {
            var indices = (0..<m).map { Float($0) }
            indices[77] = bad
            let rows = SelectedRows(source: BufferSlice(source), width: k, indices: BufferSlice(try buffer(backend, indices)))
            c.pointer.update(repeating: .nan, count: m * n)
            XCTAssertThrowsError(try backend.matrixProduct(.nt, m: m, n: n, k: k, rows: rows, other: BufferSlice(other),
                                                           c: BufferSlice(c), epilogue: .none), "index \(bad)") { error in
                guard case BackendError.outOfBounds = error else { return XCTFail("index \(bad): \(error)") }
            }
            XCTAssertTrue((0..<(m * n)).allSatisfy { c.pointer[$0].isNaN }, "index \(bad): C written")
        }
        let indices = try buffer(backend, (0..<m).map { Float($0) })
        let wide = SelectedRows(source: BufferSlice(source), width: k + 1, indices: BufferSlice(indices))
        XCTAssertThrowsError(try backend.matrixProduct(.nt, m: m, n: n, k: k, rows: wide, other: BufferSlice(other), c: BufferSlice(c),
                                                       epilogue: .none)) { error in
            guard case BackendError.invalidArgument = error else { return XCTFail("\(error)") }
        }
        let rows = SelectedRows(source: BufferSlice(source), width: k, indices: BufferSlice(indices))
        XCTAssertThrowsError(try backend.matrixProduct(.nt, m: m + 1, n: n, k: k, rows: rows, other: BufferSlice(other),
                                                       c: BufferSlice(try backend.makeBuffer(count: (m + 1) * n)), epilogue: .none)) { error in
            guard case BackendError.outOfBounds = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try backend.matrixProduct(.nt, m: m, n: n + 1, k: k, rows: rows, other: BufferSlice(other),
                                                       c: BufferSlice(try backend.makeBuffer(count: m * (n + 1))), epilogue: .none)) { error in
            guard case BackendError.outOfBounds = error else { return XCTFail("\(error)") }
        }
    }

    /// Training steps whose first layer reads the batch's rows in place (on this machine where it
    /// has AVX-512, which the test checks) end with the same parameters, bit for bit, as steps on
    /// the rows already in batch order read as a block (`gathered: false`): mnist's shape,
    /// batches of 128 and a ragged one of 44, and a GELU model, which gathers.
    func testTrainingStepsReadingRowsInPlaceMatchStepsOnGatheredData() throws {
        let (features, rowCount) = (784, 300)
        let inputs = CPUParallelTests.randomValues(rowCount * features, seed: 11)
        let labels = (0..<rowCount).map { Float($0 % 10) }
        var generator = SeededGenerator(seed: 12)
        let order = (0..<rowCount).map { _ in Int(generator.next() % UInt64(rowCount)) }
        let permutedInputs = order.flatMap { inputs[($0 * features)..<(($0 + 1) * features)] }
        let permutedLabels = order.map { labels[$0] }
        for activation in [ActivationFunction.relu, .gelu] {
            let model = try MLP(layerSizes: [features, 256, 32, 10], activation: activation, loss: .crossEntropy, seed: 3)
            let backend = CPUBackend()
            let inPlace = try TrainingSession(model: model, backend: backend, batchCapacity: 128)
            let block = try TrainingSession(model: model, backend: backend, batchCapacity: 128)
            XCTAssertEqual(inPlace.readsInputsInPlace(rows: 128), activation == .relu && SIMDKernels.avx512, "\(activation)")
            let data = try inPlace.upload(try Dataset(inputs: inputs, features: features, targets: labels, encoding: .classIndices,
                                                      targetWidth: 1))
            let permuted = try block.upload(try Dataset(inputs: permutedInputs, features: features, targets: permutedLabels,
                                                        encoding: .classIndices, targetWidth: 1))
            try inPlace.setRowOrder(order)
            for positions in [0..<128, 128..<256, 256..<300, 0..<128] {
                try inPlace.trainStep(on: data, positions: positions, gathered: true)
                try block.trainStep(on: permuted, positions: positions, gathered: false)
            }
            let (got, expected) = (try inPlace.model().parameters, try block.model().parameters)
            XCTAssertEqual(got.count, expected.count)
            XCTAssertEqual(zip(got, expected).filter { $0.bitPattern != $1.bitPattern }.count, 0, "\(activation)")
            XCTAssertNotEqual(got, model.parameters)
        }
    }
}
