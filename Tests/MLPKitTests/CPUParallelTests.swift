import Foundation
import XCTest
@testable import MLPKit

/// The CPU backend's split and branch-free passes give the same bits as their one-thread,
/// one-element-at-a-time definitions.
final class CPUParallelTests: XCTestCase {
    static func randomValues(_ count: Int, seed: UInt64, scale: Double = 1) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float(generator.nextNormal() * scale) }
    }

    /// `body` with an Adam job over host arrays θ, g, m and v (clipping when `gradientScale` ≠ 1).
    static func withAdamJob(
        _ theta: inout [Float], _ g: inout [Float], _ m: inout [Float], _ v: inout [Float], _ h: AdamHyperparameters,
        corrections: (Float, Float), gradientScale: Float, decay: Float, decays: Bool,
        _ body: (ElementwiseKernels.AdamJob) -> Void
    ) {
        theta.withUnsafeMutableBufferPointer { tp in
            g.withUnsafeMutableBufferPointer { gp in
                m.withUnsafeMutableBufferPointer { mp in
                    v.withUnsafeMutableBufferPointer { vp in
                        body(ElementwiseKernels.AdamJob(
                            theta: tp.baseAddress!, g: gp.baseAddress!, m: mp.baseAddress!, v: vp.baseAddress!,
                            beta1: h.beta1, beta2: h.beta2, alpha: h.learningRate, epsilon: h.epsilon,
                            correction1: corrections.0, correction2: corrections.1, gradientScale: gradientScale,
                            decay: decay, clips: gradientScale != 1, decays: decays))
                    }
                }
            }
        }
    }

    /// Adam over more parameters than the split threshold (with a ragged last chunk), through
    /// the backend, against the same update run on one thread in one range, for plain Adam,
    /// AdamW and clipping, over two steps.
    func testSplitAdamMatchesOneThreadBitForBit() throws {
        let count = ElementwiseKernels.adamParallelThreshold + 3 * ElementwiseKernels.adamChunk + 13
        let variants = [
            AdamHyperparameters(),
            AdamHyperparameters(learningRate: 3e-3, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.01),
            AdamHyperparameters(weightDecay: 0.1, clipNorm: 0.5),
        ]
        let backend = CPUBackend()
        for (index, h) in variants.enumerated() {
            let initial = Self.randomValues(count, seed: UInt64(10 + index))
            let theta = try backend.makeBuffer(count: count), m = try backend.makeBuffer(count: count)
            let v = try backend.makeBuffer(count: count), g = try backend.makeBuffer(count: count)
            var oneTheta = initial
            var oneM = [Float](repeating: 0, count: count), oneV = [Float](repeating: 0, count: count)
            try initial.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(theta)) }
            for t in 1...2 {
                var gradients = Self.randomValues(count, seed: UInt64(100 * index + t), scale: 0.1)
                try gradients.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(g)) }
                try backend.adamWUpdate(parameters: BufferSlice(theta), gradients: BufferSlice(g), firstMoment: BufferSlice(m),
                                        secondMoment: BufferSlice(v), count: count, hyperparameters: h, step: t)
                // the same job on this thread, in one range
                let (c1, c2) = h.biasCorrections(step: t)
                var scale: Float = 1
                if let clipNorm = h.clipNorm {
                    scale = gradients.withUnsafeBufferPointer { ElementwiseKernels.clipScale($0.baseAddress!, count: count, clipNorm: clipNorm) }
                    XCTAssertNotEqual(scale, 1, "the clipping variant must clip")
                }
                Self.withAdamJob(&oneTheta, &gradients, &oneM, &oneV, h, corrections: (c1, c2), gradientScale: scale,
                                 decay: Float(1 - Double(h.learningRate) * Double(h.weightDecay)),
                                 decays: h.weightDecay != 0) { job in
                    ElementwiseKernels.adamRange(job, start: 0, end: count)
                }
                for (name, buffer, expected) in [("θ", theta, oneTheta), ("m", m, oneM), ("v", v, oneV)] {
                    let got = UnsafeBufferPointer(start: buffer.pointer, count: count)
                    let mismatches = (0..<count).filter { got[$0].bitPattern != expected[$0].bitPattern }
                    XCTAssertEqual(mismatches.count, 0, "variant \(index) step \(t) \(name): first at \(mismatches.first ?? -1)")
                }
            }
        }
    }

    /// Split Adam at several sizes around the chunk size and threshold (the ragged ends), against
    /// the scalar definition of one element.
    func testSplitAdamEdgesAgainstScalar() throws {
        let backend = CPUBackend()
        let chunk = ElementwiseKernels.adamChunk, threshold = ElementwiseKernels.adamParallelThreshold
        for count in [threshold - 1, threshold, threshold + 1, threshold + chunk - 1, 2 * threshold + 7] {
            let initial = Self.randomValues(count, seed: UInt64(count))
            let gradients = Self.randomValues(count, seed: UInt64(count + 1), scale: 0.01)
            let theta = try backend.makeBuffer(count: count), g = try backend.makeBuffer(count: count)
            let m = try backend.makeBuffer(count: count), v = try backend.makeBuffer(count: count)
            try initial.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(theta)) }
            try gradients.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(g)) }
            let h = AdamHyperparameters()
            try backend.adamUpdate(parameters: BufferSlice(theta), gradients: BufferSlice(g), firstMoment: BufferSlice(m),
                                   secondMoment: BufferSlice(v), count: count, hyperparameters: h, step: 1)
            let (c1, c2) = h.biasCorrections(step: 1)
            var wrong = 0
            for i in 0..<count {
                let gradient = gradients[i]
                let mt = h.beta1 * 0 + (1 - h.beta1) * gradient
                let vt = h.beta2 * 0 + (1 - h.beta2) * gradient * gradient
                let expected = initial[i] - h.learningRate * (mt / c1) / ((vt / c2).squareRoot() + h.epsilon)
                if theta.pointer[i].bitPattern != expected.bitPattern || m.pointer[i] != mt || v.pointer[i] != vt { wrong += 1 }
            }
            XCTAssertEqual(wrong, 0, "count \(count)")
        }
    }

    /// A gather large enough to be split across threads (and one just below the split, and an
    /// odd row count) copies every requested row, repeats included, into a NaN-poisoned output;
    /// so do narrow ones (one value a row, and 32 and 64 wide, copied without a memmove each).
    func testGatherRowsCopiesEveryRowWhenSplit() throws {
        let backend = CPUBackend()
        for (rows, width, count) in [(1000, 300, 301), (1000, 128, 511), (50, 1000, 67), (500, 1, 300), (100, 32, 64), (70, 64, 99),
                                     (3000, 64, 1100)] {
            XCTAssertEqual(count * width >= ElementwiseKernels.gatherSplitFrom, [301, 67, 1100].contains(count))
            let source = Self.randomValues(rows * width, seed: UInt64(rows + width))
            var generator = SeededGenerator(seed: UInt64(count))
            let indices = (0..<count).map { _ in Float(generator.next() % UInt64(rows)) }
            let sourceBuffer = try backend.makeBuffer(count: rows * width), indexBuffer = try backend.makeBuffer(count: count)
            let output = try backend.makeBuffer(count: count * width)
            try source.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(sourceBuffer)) }
            try indices.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(indexBuffer)) }
            output.pointer.update(repeating: .nan, count: count * width)
            try backend.gatherRows(BufferSlice(sourceBuffer), width: width, indices: BufferSlice(indexBuffer), count: count,
                                   into: BufferSlice(output))
            var wrong = 0
            for r in 0..<count {
                let row = Int(indices[r])
                for j in 0..<width where output.pointer[r * width + j].bitPattern != source[row * width + j].bitPattern {
                    wrong += 1
                }
            }
            XCTAssertEqual(wrong, 0, "\(count) rows of \(width)")
        }
    }

    /// The branch-free ReLU mask against `activation > 0 ? c : 0`, with NaN, ±0, ±∞ and
    /// subnormal activations and a ragged tail.
    func testReLUMaskMatchesScalarDefinition() {
        let specials: [Float] = [0, -0.0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude,
                                 -.leastNonzeroMagnitude, 1, -1]
        for count in [0, 1, 7, 8, 9, 37, 1000] {
            var activation = Self.randomValues(count, seed: UInt64(count + 5))
            for i in 0..<count where i % 3 == 0 { activation[i] = specials[(i / 3) % specials.count] }
            var c = Self.randomValues(count, seed: UInt64(count + 6))
            for i in 0..<count where i % 5 == 0 { c[i] = specials[(i / 5) % specials.count] }
            let expected = zip(activation, c).map { $0 > 0 ? $1 : Float(0) }
            activation.withUnsafeBufferPointer { a in
                c.withUnsafeMutableBufferPointer { cp in
                    if count > 0 { ElementwiseKernels.reluMask(cp.baseAddress!, activation: a.baseAddress!, count: count) }
                }
            }
            XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), "count \(count)")
        }
    }

    /// A product large enough for BLAS's threads (or, with a pool of two threads, for MLPKit's two
    /// blocks of one BLAS thread each: `BLASLibrary.splitsLargeProducts`, in row halves, and in
    /// column halves for an NT or NN product wider than tall) overwrites a NaN-poisoned C, and
    /// agrees with Float64 like the small ones.
    func testThreadedBLASProductOverwritesPoisonedC() throws {
        let blas = try requireBLAS()
        for (m, n, k) in [(520, 513, 504), (260, 1030, 520)] {
        XCTAssertGreaterThanOrEqual(m * n * k, BLASLibrary.singleThreadBelow)
        for layout in ProductLayout.allCases {
            let a = Self.randomValues(m * k, seed: 1), b = Self.randomValues(k * n, seed: 2)
            let c = MatrixProductTests.blasProduct(blas, layout, m: m, n: n, k: k, a: a, b: b)
            XCTAssertFalse(c.contains { $0.isNaN }, "\(layout) \(m)×\(n)×\(k)")
            // every 17th row against Float64 (the whole product is slow in a debug build)
            var difference = 0.0, norm = 0.0
            for i in stride(from: 0, to: m, by: 17) {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        switch layout {
                        case .nt: sum += Double(a[i * k + p]) * Double(b[j * k + p])
                        case .tn: sum += Double(a[p * m + i]) * Double(b[p * n + j])
                        case .nn: sum += Double(a[i * k + p]) * Double(b[p * n + j])
                        }
                    }
                    difference += (Double(c[i * n + j]) - sum) * (Double(c[i * n + j]) - sum)
                    norm += sum * sum
                }
            }
            XCTAssertLessThan((difference / norm).squareRoot(), 1e-6, "\(layout) \(m)×\(n)×\(k)")
        }
        }
    }

    /// A large product split into two blocks of C (`BLASLibrary.splitsLargeProducts`), in rows and
    /// in columns, with AVX-512 applies the product's epilogue to each block after its `sgemm`:
    /// the bits of the product and then the backend's pass (bias+ReLU, bias+tanh, the ReLU mask),
    /// NaN and −0 in the activation included.
    func testSplitLargeProductsApplyTheEpilogueWithThePassesBits() throws {
        let blas = try requireBLAS()
        guard BLASLibrary.splitsLargeProducts, blas.splitsProducts, SIMDKernels.avx512 else {
            throw XCTSkip("no split large products with AVX-512 here")
        }
        let tanh = ActivationFunction.tanh
        for (layout, m, n, k) in [(ProductLayout.nt, 4096, 256, 160), (.nt, 256, 1030, 520), (.nn, 2048, 512, 160)] {
            XCTAssertGreaterThanOrEqual(m * n * k, BLASLibrary.singleThreadBelow)
            let a = Self.randomValues(m * k, seed: 41), b = Self.randomValues(k * n, seed: 42)
            var bias = Self.randomValues(n, seed: 43)
            bias[1] = .nan
            var activation = Self.randomValues(m * n, seed: 44)
            for e in stride(from: 0, to: activation.count, by: 13) { activation[e] = [0, -0.0, .nan, -1][e % 4] }
            let product = MatrixProductTests.blasProduct(blas, layout, m: m, n: n, k: k, a: a, b: b)
            let cases: [(String, Bool, SIMDKernels.SkinnyFunction, (Float, Int) -> Float)] = [
                ("bias+ReLU", true, .relu, { x, e in max(x + bias[e % n], 0) }),
                ("bias+tanh", true, .tanh, { x, e in tanh.apply(x + bias[e % n]) }),
                ("mask", false, .relu, { x, e in activation[e] > 0 ? x : 0 }),
            ]
            for (name, forward, function, definition) in cases {
                var c = [Float](repeating: .nan, count: m * n)
                let applied = a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        bias.withUnsafeBufferPointer { biasPointer in
                            activation.withUnsafeBufferPointer { activationPointer in
                                c.withUnsafeMutableBufferPointer { cp in
                                    blas.product(layout, m: m, n: n, k: k, a: ap.baseAddress!, b: bp.baseAddress!, c: cp.baseAddress!,
                                                 epilogue: forward ? .bias(biasPointer.baseAddress!, function: function)
                                                     : .derivative(activationPointer.baseAddress!, function: function))
                                }
                            }
                        }
                    }
                }
                XCTAssertTrue(applied, "\(name) \(layout) \(m)×\(n)×\(k)")
                let wrong = (0..<(m * n)).filter {
                    let expected = definition(product[$0], $0)
                    return c[$0].bitPattern != expected.bitPattern && !(c[$0].isNaN && expected.isNaN)
                }
                XCTAssertEqual(wrong.count, 0, "\(name) \(layout) \(m)×\(n)×\(k): first at \(wrong.first ?? -1)")
            }
        }
    }

    /// A large TN product whose depth is many times its C (a weight gradient over a large batch)
    /// is, with a pool of two threads, the sum of the products over the depth's two halves: bit
    /// for bit the two one-thread products added here, C overwritten (NaN-poisoned before), and
    /// within rounding of Float64; from 2³⁰ multiply-adds too.
    func testDeepTNProductIsTheSumOfItsDepthHalves() throws {
        let blas = try requireBLAS()
        guard BLASLibrary.splitsLargeProducts, blas.splitsProducts else { throw XCTSkip("large products keep the BLAS's threads here") }
        let (m, n, k) = (256, 136, 4096)
        XCTAssertGreaterThanOrEqual(m * n * k, BLASLibrary.singleThreadBelow)
        XCTAssertGreaterThanOrEqual(k, BLASLibrary.depthSplitRatio * max(m, n))
        let a = Self.randomValues(k * m, seed: 31), b = Self.randomValues(k * n, seed: 32)
        let c = MatrixProductTests.blasProduct(blas, .tn, m: m, n: n, k: k, a: a, b: b)
        // the halves (the depth cut at a multiple of 16 nearest the middle), each one product of
        // its own, then added
        let half = ParallelChunks.blockWidth(k, pieces: 2, multiple: 16)
        func part(_ depths: Range<Int>) -> [Float] {
            let aPart = Array(a[(depths.lowerBound * m)..<(depths.upperBound * m)])
            let bPart = Array(b[(depths.lowerBound * n)..<(depths.upperBound * n)])
            var result = [Float](repeating: .nan, count: m * n)
            aPart.withUnsafeBufferPointer { ap in
                bPart.withUnsafeBufferPointer { bp in
                    result.withUnsafeMutableBufferPointer { cp in
                        blas.product(.tn, m: m, n: n, k: depths.count, a: ap.baseAddress!, b: bp.baseAddress!, c: cp.baseAddress!,
                                     allowsSplit: false)
                    }
                }
            }
            return result
        }
        let (first, second) = (part(0..<half), part(half..<k))
        let expected = (0..<(m * n)).map { first[$0] + second[$0] }
        XCTAssertEqual((0..<(m * n)).filter { c[$0].bitPattern != expected[$0].bitPattern }.count, 0)
        XCTAssertLessThan(Self.tnError(c, a, b, m: m, n: n, k: k, everyRow: 37), 1e-6)
        XCTAssertTrue(BLASLibrary.takesDepthHalves(.tn, m: m, n: n, k: k))
        // from 2³⁰ multiply-adds too (where other products keep OpenBLAS's threads): C overwritten
        // and within rounding of Float64; not a TN product shallower than 4 times C's larger side
        let (bm, bn, bk) = (512, 520, 4096)
        XCTAssertGreaterThanOrEqual(bm * bn * bk, BLASLibrary.largeSplitBelow)
        XCTAssertTrue(BLASLibrary.takesDepthHalves(.tn, m: bm, n: bn, k: bk))
        XCTAssertFalse(BLASLibrary.takesDepthHalves(.tn, m: 2048, n: 2048, k: 512))
        XCTAssertFalse(BLASLibrary.takesDepthHalves(.nt, m: bm, n: bn, k: bk))
        let (ba, bb) = (Self.randomValues(bk * bm, seed: 33), Self.randomValues(bk * bn, seed: 34))
        let large = MatrixProductTests.blasProduct(blas, .tn, m: bm, n: bn, k: bk, a: ba, b: bb)
        XCTAssertFalse(large.contains { $0.isNaN })
        XCTAssertLessThan(Self.tnError(large, ba, bb, m: bm, n: bn, k: bk, everyRow: 101), 1e-6)
    }

    /// ‖C − Aᵀ·B‖ / ‖Aᵀ·B‖ over every `everyRow`th row of C (A k×m, B k×n), Aᵀ·B in Float64.
    static func tnError(_ c: [Float], _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, everyRow: Int) -> Double {
        var difference = 0.0, norm = 0.0
        for i in stride(from: 0, to: m, by: everyRow) {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += Double(a[p * m + i]) * Double(b[p * n + j]) }
                difference += (Double(c[i * n + j]) - sum) * (Double(c[i * n + j]) - sum)
                norm += sum * sum
            }
        }
        return (difference / norm).squareRoot()
    }

    /// Adam told the network's layout (`Backend.adamUpdate(…, layout:…)`), which on the CPU gives
    /// each thread its rows of every layer's W and b: every parameter updated once, with the bits
    /// of the update in claimed chunks (plain Adam, AdamW, clipping, two steps) and, for plain
    /// Adam, of SEED.md §4's formula element by element; on layouts whose rows split evenly and
    /// raggedly (450 rows: blocks of 256 and 194), a last layer of one block, and a layout too
    /// large for owned rows.
    func testAdamByOwnedRowsHasTheClaimedChunksBits() throws {
        let layouts = try [[784, 256, 128, 10], [300, 450, 100, 3], [20, 1000, 600, 1]].map { try LayerLayout(sizes: $0) }
        let variants = [AdamHyperparameters(), AdamHyperparameters(weightDecay: 0.01), AdamHyperparameters(weightDecay: 0.1, clipNorm: 0.5)]
        let backend = CPUBackend()
        for (which, layout) in layouts.enumerated() {
            let count = layout.parameterCount
            let owned = ElementwiseKernels.splitsAdamByOwnedRows(count: count, layout: layout, owns: true, avx512: true)
            XCTAssertEqual(owned, ParallelChunks.threads > 1 && which < 2, "\(layout.sizes)")
            for (index, h) in variants.enumerated() {
                let initial = Self.randomValues(count, seed: UInt64(50 + index))
                let buffers = try (0..<2).map { _ in try (0..<4).map { _ in try backend.makeBuffer(count: count) } }
                for set in buffers { try initial.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(set[0])) } }
                for t in 1...2 {
                    let gradients = Self.randomValues(count, seed: UInt64(500 + 10 * index + t), scale: 0.1)
                    let (m0, v0, theta0) = (Array(UnsafeBufferPointer(start: buffers[0][2].pointer, count: count)),
                                            Array(UnsafeBufferPointer(start: buffers[0][3].pointer, count: count)),
                                            Array(UnsafeBufferPointer(start: buffers[0][0].pointer, count: count)))
                    for set in buffers { try gradients.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(set[1])) } }
                    let (byLayout, inChunks) = (buffers[0], buffers[1])
                    try backend.adamUpdate(parameters: BufferSlice(byLayout[0]), gradients: BufferSlice(byLayout[1]),
                                           firstMoment: BufferSlice(byLayout[2]), secondMoment: BufferSlice(byLayout[3]),
                                           layout: layout, hyperparameters: h, step: t)
                    try backend.adamWUpdate(parameters: BufferSlice(inChunks[0]), gradients: BufferSlice(inChunks[1]),
                                            firstMoment: BufferSlice(inChunks[2]), secondMoment: BufferSlice(inChunks[3]),
                                            count: count, hyperparameters: h, step: t)
                    var wrong = 0
                    for array in 0..<4 where array != 1 {
                        for i in 0..<count where byLayout[array].pointer[i].bitPattern != inChunks[array].pointer[i].bitPattern { wrong += 1 }
                    }
                    XCTAssertEqual(wrong, 0, "\(layout.sizes) variant \(index) step \(t): against claimed chunks")
                    guard h.isPlainAdam else { continue }
                    let (c1, c2) = h.biasCorrections(step: t)
                    var unlike = 0
                    for i in 0..<count {
                        let mt = h.beta1 * m0[i] + (1 - h.beta1) * gradients[i]
                        let vt = h.beta2 * v0[i] + (1 - h.beta2) * gradients[i] * gradients[i]
                        let expected = theta0[i] - h.learningRate * (mt / c1) / ((vt / c2).squareRoot() + h.epsilon)
                        if byLayout[0].pointer[i].bitPattern != expected.bitPattern || byLayout[2].pointer[i] != mt
                            || byLayout[3].pointer[i] != vt { unlike += 1 }
                    }
                    XCTAssertEqual(unlike, 0, "\(layout.sizes) step \(t): against SEED.md's formula")
                }
            }
        }
    }

    private struct OwnedPassRecord {
        var runs: UnsafeMutablePointer<Int>
        var threads: UnsafeMutablePointer<pthread_t>
    }

    /// Passes whose chunk i goes first to thread i (`ParallelChunks.forEach(…, owned: true)`):
    /// every element's chunk runs once, with fewer chunks than threads, as many, or more (the rest
    /// taken by whichever thread is free), a ragged last chunk, many passes in a row; from 32
    /// chunks on the calling thread runs them all itself.
    func testOwnedPassesRunEveryChunkOnce() {
        for (count, chunk) in [(1, 1), (2, 1), (ParallelChunks.threads, 1), (100, 7), (31, 1), (64, 2), (40, 1)] {
            let runs = UnsafeMutablePointer<Int>.allocate(capacity: count)
            let threads = UnsafeMutablePointer<pthread_t>.allocate(capacity: count)
            defer { runs.deallocate(); threads.deallocate() }
            for pass in 0..<50 {
                runs.initialize(repeating: 0, count: count)
                var record = OwnedPassRecord(runs: runs, threads: threads)
                withUnsafePointer(to: &record) { context in
                    ParallelChunks.forEach(count: count, chunk: chunk, parallel: true, staysAwake: true, owned: true,
                                           context: context) { context, start, end in
                        let record = context.assumingMemoryBound(to: OwnedPassRecord.self).pointee
                        for i in start..<end {
                            record.runs[i] += 1
                            record.threads[i] = pthread_self()
                        }
                    }
                }
                let wrong = (0..<count).filter { runs[$0] != 1 }
                XCTAssertEqual(wrong.count, 0, "\(count) in chunks of \(chunk), pass \(pass): \(wrong.prefix(3).map { ($0, runs[$0]) })")
                if (count + chunk - 1) / chunk >= 32 {
                    XCTAssertTrue((0..<count).allSatisfy { pthread_equal(threads[$0], pthread_self()) != 0 },
                                  "\(count) in chunks of \(chunk): the calling thread alone")
                }
            }
        }
    }

    /// Every CPU buffer starts on a cache line (calloc's pointers are 16 bytes past one, which cost
    /// mnist's step about 20 µs: split vector loads and stores, and a cache line shared by the two
    /// threads in every row of a product cut by columns) and is zero, small ones from the heap and
    /// large ones (past glibc's 128 KiB mmap threshold) alike, its last element writable.
    func testBuffersStartOnCacheLinesZeroFilled() throws {
        let backend = CPUBackend()
        var kept: [CPUBuffer] = []
        for count in [0, 1, 3, 5, 16, 17, 1000, 32_767, 32_768, 40_001, 300_000] {
            for _ in 0..<3 {
                let buffer = try backend.makeBuffer(count: count)
                XCTAssertEqual(Int(bitPattern: buffer.pointer) % 64, 0, "\(count) elements")
                XCTAssertTrue((0..<count).allSatisfy { buffer.pointer[$0] == 0 }, "\(count) elements not zero")
                if count > 0 {
                    buffer.pointer[count - 1] = 1.5
                    XCTAssertEqual(buffer.pointer[count - 1], 1.5)
                }
                kept.append(buffer)
            }
        }
        XCTAssertEqual(kept.count, 33)
    }

    /// Once a bias correction rounds to exactly 1 its division is skipped; the bits must be those
    /// of dividing by 1 (steps 200: 1 − β1ᵗ = 1; 30000: both are 1), split and not.
    func testAdamOnceBiasCorrectionsReachOne() throws {
        let backend = CPUBackend()
        let h = AdamHyperparameters()
        for (t, count) in [(200, 1001), (200, ElementwiseKernels.adamParallelThreshold + 5), (30000, 1001), (3, 1001)] {
            let (c1, c2) = h.biasCorrections(step: t)
            if t >= 200 { XCTAssertEqual(c1, 1) }
            if t == 30000 { XCTAssertEqual(c2, 1) }
            let initial = Self.randomValues(count, seed: UInt64(t + count))
            let gradients = Self.randomValues(count, seed: UInt64(t + count + 1), scale: 0.01)
            let m0 = Self.randomValues(count, seed: UInt64(t + count + 2), scale: 0.001)
            let v0 = Self.randomValues(count, seed: UInt64(t + count + 3), scale: 0.001).map { $0 * $0 }
            let theta = try backend.makeBuffer(count: count), g = try backend.makeBuffer(count: count)
            let m = try backend.makeBuffer(count: count), v = try backend.makeBuffer(count: count)
            for (values, buffer) in [(initial, theta), (gradients, g), (m0, m), (v0, v)] {
                try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
            }
            try backend.adamUpdate(parameters: BufferSlice(theta), gradients: BufferSlice(g), firstMoment: BufferSlice(m),
                                   secondMoment: BufferSlice(v), count: count, hyperparameters: h, step: t)
            var wrong = 0
            for i in 0..<count {
                let mt = h.beta1 * m0[i] + (1 - h.beta1) * gradients[i]
                let vt = h.beta2 * v0[i] + (1 - h.beta2) * gradients[i] * gradients[i]
                let expected = initial[i] - h.learningRate * (mt / c1) / ((vt / c2).squareRoot() + h.epsilon)
                if theta.pointer[i].bitPattern != expected.bitPattern || m.pointer[i] != mt || v.pointer[i] != vt { wrong += 1 }
            }
            XCTAssertEqual(wrong, 0, "step \(t), \(count) parameters")
        }
    }

    /// The column sums' definition, one element at a time: each block of `columnSumBlock` rows
    /// summed from zero in row order, the blocks' sums added in order.
    static func blockColumnSums(_ matrix: [Float], rows: Int, columns: Int) -> [Float] {
        let block = ElementwiseKernels.columnSumBlock
        var sums = [Float](repeating: 0, count: columns)
        for j in 0..<columns {
            var total: Float = 0
            for first in stride(from: 0, to: rows, by: block) {
                var sum: Float = 0
                for i in first..<min(first + block, rows) { sum += matrix[i * columns + j] }
                total = first == 0 ? sum : total + sum
            }
            sums[j] = total
        }
        return sums
    }

    /// The column sums in blocks of rows, with AVX-512 (where this processor has it) and without,
    /// split across threads or not, on shapes with one block, a ragged last block, many blocks
    /// and more columns than a group's scratch rows hold, against the definition bit for bit: a
    /// kernel that sums the rows in another order, drops a block or a ragged column, fails.
    func testColumnSumsInBlocksOfRowsMatchTheirDefinition() throws {
        let block = ElementwiseKernels.columnSumBlock
        XCTAssertEqual(block, 256)
        let shapes = [(1, 1), (256, 300), (257, 17), (700, 37), (1030, 270), (4096, 3), (2 * block + 5, 5000), (9 * block, 256)]
        for (index, (rows, columns)) in shapes.enumerated() {
            // a wide range of magnitudes, so that another order of additions rounds differently
            var matrix = Self.randomValues(rows * columns, seed: UInt64(500 + index))
            for i in stride(from: 0, to: matrix.count, by: 7) { matrix[i] *= 4096 }
            let expected = Self.blockColumnSums(matrix, rows: rows, columns: columns)
            for avx512 in SIMDKernels.avx512 ? [true, false] : [false] {
                var sums = [Float](repeating: .nan, count: columns + 1)
                matrix.withUnsafeBufferPointer { m in
                    sums.withUnsafeMutableBufferPointer { s in
                        ElementwiseKernels.columnSumsSplit(m.baseAddress!, rows: rows, columns: columns, into: s.baseAddress!,
                                                           avx512: avx512)
                    }
                }
                let differing = (0..<columns).filter { sums[$0].bitPattern != expected[$0].bitPattern }
                XCTAssertEqual(differing.count, 0, "\(rows)×\(columns), AVX-512 \(avx512): columns \(differing.prefix(5)) differ")
                XCTAssertTrue(sums[columns].isNaN, "\(rows)×\(columns): wrote past the sums")
            }
        }
        // against Float64 too: the definition is a sum
        let (rows, columns) = (1030, 270)
        let matrix = Self.randomValues(rows * columns, seed: 600)
        let sums = Self.blockColumnSums(matrix, rows: rows, columns: columns)
        for j in 0..<columns {
            let exact = (0..<rows).reduce(0.0) { $0 + Double(matrix[$1 * columns + j]) }
            XCTAssertEqual(Double(sums[j]), exact, accuracy: 1e-4, "column \(j)")
        }
    }

    /// Column sums, bias (+ReLU) and the ReLU mask over matrices large enough to be split
    /// across threads, against loops in the test, bit for bit.
    func testSplitElementwisePassesMatchLoops() throws {
        let backend = CPUBackend()
        let (rows, columns) = (301, 1003)
        XCTAssertGreaterThanOrEqual(rows * columns, ParallelChunks.elementwiseThreshold)
        let matrix = Self.randomValues(rows * columns, seed: 77)
        let bias = Self.randomValues(columns, seed: 78)
        let matrixBuffer = try backend.makeBuffer(count: rows * columns), sums = try backend.makeBuffer(count: columns + 2)
        try matrix.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(matrixBuffer)) }
        try backend.columnSums(BufferSlice(matrixBuffer), rows: rows, columns: columns, into: BufferSlice(sums, offset: 1))
        let expectedSums = Self.blockColumnSums(matrix, rows: rows, columns: columns)
        XCTAssertEqual((0..<columns).map { sums.pointer[1 + $0].bitPattern }, expectedSums.map(\.bitPattern))
        XCTAssertEqual(sums.pointer[0], 0)
        XCTAssertEqual(sums.pointer[columns + 1], 0)

        // C = a ⊗ b (k = 1: one exact product per element), then each epilogue
        let a = Self.randomValues(rows, seed: 79), b = Self.randomValues(columns, seed: 80)
        let aBuffer = try backend.makeBuffer(count: rows), bBuffer = try backend.makeBuffer(count: columns)
        let biasBuffer = try backend.makeBuffer(count: columns), c = try backend.makeBuffer(count: rows * columns)
        try a.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(aBuffer)) }
        try b.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(bBuffer)) }
        try bias.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(biasBuffer)) }
        let epilogues: [(String, ProductEpilogue<CPUBuffer>, (Float, Int, Int) -> Float)] = [
            ("bias", .bias(BufferSlice(biasBuffer)), { x, _, j in x + bias[j] }),
            ("biasReLU", .biasReLU(BufferSlice(biasBuffer)), { x, _, j in max(x + bias[j], 0) }),
            ("reluMask", .reluMask(BufferSlice(matrixBuffer)), { x, i, j in matrix[i * columns + j] > 0 ? x : 0 }),
        ]
        for (name, epilogue, expected) in epilogues {
            c.pointer.update(repeating: .nan, count: rows * columns)
            try backend.matrixProduct(.nn, m: rows, n: columns, k: 1, a: BufferSlice(aBuffer), b: BufferSlice(bBuffer),
                                      c: BufferSlice(c), epilogue: epilogue)
            var wrong = 0
            for i in 0..<rows {
                for j in 0..<columns where c.pointer[i * columns + j].bitPattern != expected(a[i] * b[j], i, j).bitPattern {
                    wrong += 1
                }
            }
            XCTAssertEqual(wrong, 0, name)
        }
    }

    /// The MSE loss (the AVX2 kernel's eight rows at a time, in 64-column tiles, split across
    /// threads for the 512×1024 output; and the Swift loop's four rows at a time, used without AVX2)
    /// against the one-row loop of its definition, bit for bit: gradient (z − y)/B, and the loss
    /// sum Σ_rows 0.5·(Σ_j (z − y)² summed in order) in Float64, on row counts with and without
    /// a remainder of four or eight and column counts with and without a remainder of 8 or 64.
    func testMeanSquaredErrorMatchesRowLoopBitForBit() throws {
        for (rows, columns) in [(1, 5), (4, 1), (7, 13), (64, 1), (9, 1024), (8, 64), (17, 77), (23, 200), (512, 1024)] {
            let z = Self.randomValues(rows * columns, seed: UInt64(rows * 7 + columns))
            let y = Self.randomValues(rows * columns, seed: UInt64(rows * 11 + columns))
            func run(simd: Bool) -> ([Float], Float) {
                var gradient = [Float](repeating: .nan, count: rows * columns)
                let total = z.withUnsafeBufferPointer { zp in
                    y.withUnsafeBufferPointer { yp in
                        gradient.withUnsafeMutableBufferPointer {
                            LossKernels.gradient(.meanSquaredError, targets: .dense, output: zp.baseAddress!, target: yp.baseAddress!,
                                                 rows: rows, columns: columns, gradient: $0.baseAddress!, simd: simd)
                        }
                    }
                }
                return (gradient, total)
            }
            var expectedTotal = 0.0
            var expectedGradient = [Float](repeating: 0, count: rows * columns)
            let scale = 1 / Float(rows)
            for i in 0..<rows {
                var rowSum: Float = 0
                for j in 0..<columns {
                    let difference = z[i * columns + j] - y[i * columns + j]
                    expectedGradient[i * columns + j] = difference * scale
                    rowSum += difference * difference
                }
                expectedTotal += 0.5 * Double(rowSum)
            }
            for simd in SIMDKernels.enabled ? [true, false] : [false] {
                let (gradient, total) = run(simd: simd)
                XCTAssertEqual(gradient.map(\.bitPattern), expectedGradient.map(\.bitPattern), "\(rows)×\(columns) simd \(simd)")
                XCTAssertEqual(total.bitPattern, Float(expectedTotal).bitPattern, "\(rows)×\(columns) simd \(simd)")
            }
        }
    }

    /// Products split into blocks of C across threads (from `BLASLibrary.splitFrom` multiply-adds,
    /// below BLAS's own threading), for the mnist configuration's shapes and ragged ones, in
    /// every layout, over a NaN-poisoned C: the same bits on every run (the blocks depend on the
    /// shape alone), and one BLAS call's result to rounding (OpenBLAS rounds a call's last
    /// columns differently, so not always its bits).
    func testSplitProductsAreDeterministicAndAgreeWithOneCall() throws {
        let blas = try requireBLAS()
        let shapes = [(128, 256, 784), (128, 128, 256), (128, 256, 128), (256, 784, 128), (100, 333, 70), (333, 100, 70),
                      (17, 1000, 130)]
        for (m, n, k) in shapes {
            XCTAssertGreaterThanOrEqual(m * n * k, BLASLibrary.splitFrom)
            XCTAssertLessThan(m * n * k, BLASLibrary.singleThreadBelow)
            for layout in ProductLayout.allCases {
                let a = Self.randomValues(m * k, seed: UInt64(m + k)), b = Self.randomValues(k * n, seed: UInt64(n + k))
                var split = [Float](repeating: .nan, count: m * n), again = split, whole = split
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        for (index, allowsSplit) in [true, true, false].enumerated() {
                            func run(_ c: inout [Float]) {
                                c.withUnsafeMutableBufferPointer {
                                    blas.product(layout, m: m, n: n, k: k, a: ap.baseAddress!, b: bp.baseAddress!,
                                                 c: $0.baseAddress!, allowsSplit: allowsSplit)
                                }
                            }
                            switch index {
                            case 0: run(&split)
                            case 1: run(&again)
                            default: run(&whole)
                            }
                        }
                    }
                }
                XCTAssertEqual(split.map(\.bitPattern), again.map(\.bitPattern), "\(layout) \(m)×\(n)×\(k)")
                XCTAssertFalse(split.contains { $0.isNaN }, "\(layout) \(m)×\(n)×\(k)")
                // ‖split − whole‖ / ‖whole‖, as MatrixProductTests measure BLAS against Float64 (1e-5)
                var difference = 0.0, norm = 0.0
                for i in 0..<(m * n) {
                    difference += Double(split[i] - whole[i]) * Double(split[i] - whole[i])
                    norm += Double(whole[i]) * Double(whole[i])
                }
                XCTAssertLessThan((difference / norm).squareRoot(), 1e-6, "\(layout) \(m)×\(n)×\(k)")
            }
        }
    }

    /// A step whose second layer's weight gradient and first layer's delta run at once, one a
    /// thread (`CPUBackend.concurrently`), gives the bits of the same steps with every product
    /// in turn: ReLU and GELU (whose delta reads the kept pre-activations), through the packed
    /// product and through BLAS, over three steps, parameters, gradients and Adam's moments.
    func testConcurrentBackwardMatchesProductsInTurnBitForBit() throws {
        let layers = [300, 256, 128, 10], rows = 128
        let together = CPUBackend()
        guard together.runsConcurrently(multiplyAdds: rows * 256 * 128) else {
            throw XCTSkip("one thread: nothing runs at once")
        }
        XCTAssertFalse(together.runsConcurrently(multiplyAdds: rows * 128 * 10), "small products stay in turn")
        XCTAssertFalse(together.runsConcurrently(multiplyAdds: BLASLibrary.singleThreadBelow), "large ones keep every thread")
        var data = TestData(seed: 41)
        let inputs = data.normal(rows * layers[0]), targets = data.labels(rows, classes: 10)
        let dataset = try Dataset(inputs: inputs, features: layers[0], targets: targets, encoding: .classIndices, targetWidth: 1)
        for activation in [ActivationFunction.relu, .gelu] {
            for packed in [true, false] {
                var results: [[[UInt32]]] = []
                for concurrent in [true, false] {
                    let backend = packed ? CPUBackend(packedProduct: ()) : CPUBackend()
                    backend.concurrentTasks = concurrent
                    XCTAssertEqual(backend.runsConcurrently(multiplyAdds: rows * 256 * 128), concurrent)
                    let model = try MLP(layerSizes: layers, activation: activation, loss: .crossEntropy, seed: 5)
                    let session = try TrainingSession(model: model, backend: backend, batchCapacity: rows)
                    let device = try session.upload(dataset)
                    for _ in 0..<3 { try session.trainStep(on: device, positions: 0..<rows, gathered: false) }
                    let state = try session.optimizerState()
                    results.append([try session.model().parameters, try session.gradientValues(), state.firstMoment,
                                    state.secondMoment].map { $0.map(\.bitPattern) })
                }
                XCTAssertEqual(results[0], results[1], "\(activation) packed \(packed)")
                let gradients = results[0][1].map { Float(bitPattern: $0) }
                XCTAssertFalse(gradients.contains { $0.isNaN }, "\(activation) packed \(packed)")
                XCTAssertGreaterThan(gradients.filter { $0 != 0 }.count, gradients.count * 9 / 10, "every layer's gradients made")
            }
        }
    }

    /// `concurrently` runs both tasks (on two threads where it can), even when one throws, and
    /// rethrows task 0's error before task 1's; the protocol's default runs them in turn.
    func testConcurrentlyRunsBothTasksAndRethrowsTheFirstError() throws {
        struct Failure: Error, Equatable { let task: Int }
        // one flag a task (two threads never write one array)
        final class Flags: @unchecked Sendable {
            var first = false, second = false
            var ran: [Bool] { [first, second] }
        }
        for backend in [CPUBackend() as AnyObject, SeedOnlyBackend() as AnyObject] {
            func run(failing: Set<Int>) -> (ran: [Bool], error: Failure?) {
                let flags = Flags()
                let body: (Int) throws -> Void = { task in
                    if task == 0 { flags.first = true } else { flags.second = true }
                    if failing.contains(task) { throw Failure(task: task) }
                }
                let outcome = Result<Void, Error> {
                    if let cpu = backend as? CPUBackend {
                        try cpu.concurrently(body)
                    } else if let seedOnly = backend as? SeedOnlyBackend {
                        try seedOnly.concurrently(body)
                    }
                }
                if case .failure(let error) = outcome { return (flags.ran, error as? Failure) }
                return (flags.ran, nil)
            }
            for failing in [Set<Int>(), [0], [1], [0, 1]] {
                let (ran, error) = run(failing: failing)
                XCTAssertEqual(ran, [true, true], "\(type(of: backend)) failing \(failing)")
                XCTAssertEqual(error, failing.min().map { Failure(task: $0) }, "\(type(of: backend)) failing \(failing)")
            }
        }
        XCTAssertFalse(SeedOnlyBackend().runsConcurrently(multiplyAdds: 1 << 22))
    }
}
