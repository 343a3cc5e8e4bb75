import CMLPKitSIMD
import Foundation
import XCTest
@testable import MLPKit

/// The kernels for products with a dimension of a few (`SIMDKernels.skinnyProduct`: a shallow
/// depth, a thin or short TN result, a narrow NT one) give the packed product's bits: each element's chain of fused
/// multiply-adds over each depth block of 512 in order, the blocks added in turn. Checked against
/// the packed product on ragged shapes, depths past one block, NaN and ±∞, through the backend,
/// and over training steps of a network with two inputs and three outputs.
final class SkinnyProductTests: XCTestCase {
    private func requireAVX512() throws {
        guard SIMDKernels.enabled, mlpkit_avx512_level() > 0 else { throw XCTSkip("no AVX-512 here") }
    }

    private func values(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var result = (0..<count).map { _ in Float(generator.nextNormal()) }
        // a few odd values where there are enough
        if count > 40 {
            result[7] = .nan
            result[19] = .infinity
            result[31] = -0.0
            result[37] = 1e30
        }
        return result
    }

    /// C with the packed product's bits (the bits every AVX-512 product of these sizes has had),
    /// element by element (`unpackedProduct`), whatever path the packed product takes.
    private func packed(_ layout: ProductLayout, m: Int, n: Int, k: Int, _ a: [Float], _ b: [Float]) -> [Float] {
        var c = [Float](repeating: .nan, count: m * n)
        SIMDKernels.unpackedProduct(layout, m: m, n: n, k: k, a: a, b: b, c: &c)
        return c
    }

    private func assertSameBits(_ x: [Float], _ y: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        let wrong = (0..<x.count).filter { x[$0].bitPattern != y[$0].bitPattern && !(x[$0].isNaN && y[$0].isNaN) }
        XCTAssertEqual(wrong.count, 0, "\(message): first at \(wrong.prefix(3).map { ($0, x[$0], y[$0]) })", file: file, line: line)
    }

    /// Each epilogue (bias, bias+ReLU, bias+tanh, the ReLU mask, tanh′) through `run` against the
    /// packed product's C and then the backend's pass, on A and B from `seed` with a −0 product, a
    /// bias with NaN, ∞ and an exact cancellation of C's first element, and an activation with
    /// 0, −0, NaN and −1 every 11th element: `run` must apply it, with the pass's bits. Returns the bias.
    @discardableResult
    private func assertEpiloguesHaveThePassesBits(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, seed: UInt64,
        _ run: ([Float], [Float], inout [Float], SIMDKernels.SkinnyEpilogue) -> Bool?,
        file: StaticString = #filePath, line: UInt = #line
    ) -> [Float] {
        var a = values(m * k, seed: seed), b = values(k * n, seed: seed + 1)
        a[1] = 0; b[2] = -0.0  // a −0 product
        var bias = values(n, seed: seed + 2)
        bias[3] = .nan
        let product = packed(layout, m: m, n: n, k: k, a, b)
        // a bias that cancels some elements exactly (to +0 or −0) and one that is ∞
        bias[0] = -product[0]
        bias[min(5, n - 1)] = .infinity
        var activation = values(m * n, seed: seed + 3)
        for e in stride(from: 0, to: activation.count, by: 11) { activation[e] = [0, -0.0, .nan, -1][e % 4] }
        let tanh = ActivationFunction.tanh
        let definitions: [(String, SIMDKernels.SkinnyFunction, Bool, (Float, Int) -> Float)] = [
            ("bias", .identity, true, { x, e in x + bias[e % n] }),
            ("bias+ReLU", .relu, true, { x, e in max(x + bias[e % n], 0) }),
            ("bias+tanh", .tanh, true, { x, e in tanh.apply(x + bias[e % n]) }),
            ("mask", .relu, false, { x, e in activation[e] > 0 ? x : 0 }),
            ("tanh′", .tanh, false, { x, e in x * tanh.derivative(from: activation[e]) }),
        ]
        for (name, function, forward, definition) in definitions {
            let expected = (0..<product.count).map { definition(product[$0], $0) }
            var c = [Float](repeating: 7, count: m * n)
            let applied: Bool? = bias.withUnsafeBufferPointer { biasPointer in
                activation.withUnsafeBufferPointer { activationPointer in
                    let epilogue: SIMDKernels.SkinnyEpilogue = forward
                        ? .bias(biasPointer.baseAddress!, function: function)
                        : .derivative(activationPointer.baseAddress!, function: function)
                    return run(a, b, &c, epilogue)
                }
            }
            XCTAssertEqual(applied, true, "\(name) \(layout) \(m)×\(n)×\(k)", file: file, line: line)
            assertSameBits(c, expected, "\(name) \(layout) \(m)×\(n)×\(k)", file: file, line: line)
        }
        return bias
    }

    /// Each kernel called directly over its whole range and in two pieces (a thread's share).
    func testKernelsHaveThePackedProductsBits() throws {
        try requireAVX512()
        // shallow: C = A·B̃ (NN's B as it is)
        for (m, n, k) in [(1, 1, 1), (37, 70, 1), (53, 33, 2), (300, 256, 3), (64, 17, 8), (5, 129, 5), (70, 256, 13), (9, 100, 16)] {
            let a = values(m * k, seed: 1), b = values(k * n, seed: 2)
            let expected = packed(.nn, m: m, n: n, k: k, a, b)
            for cut in Set([0, m / 3, m]) {
                var c = [Float](repeating: 7, count: m * n)
                mlpkit_shallow_product_avx512(n, k, a, b, &c, 0, cut, nil, 0, nil)
                mlpkit_shallow_product_avx512(n, k, a, b, &c, cut, m, nil, 0, nil)
                assertSameBits(c, expected, "shallow \(m)×\(n)×\(k) cut at \(cut)")
            }
        }
        // narrow: C = A·Bᵀ for n ≤ 12 (A's 16×16 tiles transposed in registers): ragged rows and
        // depths, depths past one and two blocks of 512, cut anywhere (not only at whole tiles)
        for (m, n, k) in [(1, 1, 1), (16, 1, 16), (37, 3, 300), (4096, 3, 256), (100, 8, 1100), (17, 5, 17), (33, 7, 513),
                          (50, 4, 1024), (300, 2, 31), (64, 6, 1040), (4096, 10, 128), (77, 9, 600), (45, 11, 1030), (130, 12, 33)] {
            let a = values(m * k, seed: 5), b = values(n * k, seed: 6)
            let expected = packed(.nt, m: m, n: n, k: k, a, b)
            for cut in Set([0, m / 3, m]) {
                var c = [Float](repeating: 7, count: m * n)
                mlpkit_narrow_nt_product_avx512(n, k, a, b, &c, 0, cut)
                mlpkit_narrow_nt_product_avx512(n, k, a, b, &c, cut, m)
                assertSameBits(c, expected, "narrow \(m)×\(n)×\(k) cut at \(cut)")
            }
        }
        // thin (C m×n, n ≤ 16, cut by rows) and short (m ≤ 16, cut by columns): C = Aᵀ·B, depths
        // past one and two blocks of 512; tiles of 64 lanes for up to 4 sums, 32 for up to 8, 16 for
        // up to 16, and ragged ends of 1 to 4 vectors (37, 77 and 90 long, 100 and 600 with 3 sums)
        typealias Kernel = (Int, Int, Int, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int) -> Void
        let kernels: [(String, Kernel, [(Int, Int, Int)], Bool)] = [
            ("thin", mlpkit_thin_tn_product_avx512, [(1, 1, 1), (16, 2, 700), (37, 3, 513), (1030, 4, 1100), (256, 2, 4096), (17, 1, 64),
                                                      (300, 13, 1100), (531, 16, 600), (5000, 1, 3), (77, 6, 700), (90, 8, 530),
                                                      (41, 10, 513), (250, 5, 1030), (100, 3, 520)], true),
            ("short", mlpkit_short_tn_product_avx512, [(1, 1, 1), (2, 37, 700), (3, 600, 513), (4, 1030, 1100), (3, 256, 4096), (1, 17, 64),
                                                       (13, 300, 1100), (16, 531, 600), (1, 5000, 3), (6, 77, 700), (8, 90, 530),
                                                       (10, 41, 513), (5, 250, 1030), (3, 100, 520)], false),
        ]
        for (name, kernel, shapes, byRows) in kernels {
            for (m, n, k) in shapes {
                let a = values(k * m, seed: 3), b = values(k * n, seed: 4)
                let expected = packed(.tn, m: m, n: n, k: k, a, b)
                let extent = byRows ? m : n
                for cut in Set([0, extent / 32 * 16, extent]) {
                    var c = [Float](repeating: 7, count: m * n)
                    kernel(m, n, k, a, b, &c, 0, cut)
                    kernel(m, n, k, a, b, &c, cut, extent)
                    assertSameBits(c, expected, "\(name) \(m)×\(n)×\(k) cut at \(cut)")
                }
            }
        }
    }

    /// The shallow kernel's epilogues (+ bias, then ReLU or tanh; the ReLU mask; tanh's derivative),
    /// applied to each row in its registers, give the bits of the product followed by the CPU
    /// backend's passes: NaN, ±∞, −0 and values that the bias takes to −0 or below zero included
    /// (ReLU keeps NaN and turns −0 into +0; the mask keeps C only where the activation is above 0,
    /// not for NaN), on rows of 64-column blocks and a ragged last vector, directly and through the
    /// backend (the activation epilogues too).
    func testShallowEpiloguesHaveThePassesBits() throws {
        try requireAVX512()
        // above the small product's 2¹⁸ multiply-adds, where the skinny kernels take over
        for (m, n, k) in [(400, 256, 3), (1700, 83, 2), (16500, 16, 1), (129, 200, 16)] {
            XCTAssertGreaterThan(m * n * k, SIMDKernels.smallProductLimit)
            assertEpiloguesHaveThePassesBits(.nn, m: m, n: n, k: k, seed: 12) { a, b, c, epilogue in
                SIMDKernels.skinnyProduct(.nn, m: m, n: n, k: k, a: a, b: b, c: &c, epilogue: epilogue, avx512: true)
            }
        }
        // through the backend: the first layer's product with bias and ReLU, a delta's mask
        let backend = CPUBackend()
        let (m, n, k) = (2048, 256, 2)
        let a = values(m * k, seed: 16), w = values(n * k, seed: 17), bias = values(n, seed: 18), activation = values(m * n, seed: 19)
        XCTAssertEqual(SIMDKernels.skinnyKernel(.nt, m: m, n: n, k: k), .shallow)
        let product = packed(.nt, m: m, n: n, k: k, a, w)
        let c = try backend.makeBuffer(count: m * n)
        try backend.matrixProduct(.nt, m: m, n: n, k: k, a: try backend.buffer(a), b: try backend.buffer(w),
                                  c: BufferSlice(c), epilogue: .biasReLU(try backend.buffer(bias)))
        assertSameBits(Array(UnsafeBufferPointer(start: c.pointer, count: m * n)), (0..<(m * n)).map { max(product[$0] + bias[$0 % n], 0) },
                       "backend bias+ReLU")
        let delta = values(m * k, seed: 20)
        let masked = packed(.nn, m: m, n: n, k: k, delta, w)
        try backend.matrixProduct(.nn, m: m, n: n, k: k, a: try backend.buffer(delta), b: try backend.buffer(w),
                                  c: BufferSlice(c), epilogue: .reluMask(try backend.buffer(activation)))
        assertSameBits(Array(UnsafeBufferPointer(start: c.pointer, count: m * n)), (0..<(m * n)).map { activation[$0] > 0 ? masked[$0] : 0 },
                       "backend mask")
        // the activation epilogues: tanh in the kernel, GELU (which keeps Z) in the passes after it
        for function in [ActivationFunction.tanh, .gelu] {
            let kept = try backend.makeBuffer(count: m * n)
            try backend.matrixProduct(.nt, m: m, n: n, k: k, a: try backend.buffer(a), b: try backend.buffer(w), c: BufferSlice(c),
                                      activation: .biasActivation(try backend.buffer(bias), function,
                                                                  preActivation: function == .gelu ? BufferSlice(kept) : nil))
            assertSameBits(Array(UnsafeBufferPointer(start: c.pointer, count: m * n)),
                           (0..<(m * n)).map { function.apply(product[$0] + bias[$0 % n]) }, "backend bias+\(function)")
            try backend.matrixProduct(.nn, m: m, n: n, k: k, a: try backend.buffer(delta), b: try backend.buffer(w), c: BufferSlice(c),
                                      activation: .activationDerivative(try backend.buffer(activation), function))
            assertSameBits(Array(UnsafeBufferPointer(start: c.pointer, count: m * n)),
                           (0..<(m * n)).map { masked[$0] * function.derivative(from: activation[$0]) }, "backend \(function)′")
        }
    }

    /// `skinnyProduct` takes exactly the shapes it names (above the small product's size), NT
    /// through its transposed B, split over the threads, with the packed product's bits.
    func testDispatchTakesTheSkinnyShapes() throws {
        try requireAVX512()
        let cases: [(ProductLayout, Int, Int, Int, SIMDKernels.SkinnyKernel?)] = [
            (.nt, 4096, 256, 2, .shallow), (.nn, 4096, 256, 3, .shallow), (.nt, 2000, 300, 8, .shallow),
            (.tn, 256, 2, 4096, .thin), (.tn, 3, 256, 4096, .short), (.tn, 4, 4, 20000, .thin),
            (.nt, 4096, 256, 13, .shallow), (.tn, 256, 13, 4096, .thin), (.tn, 16, 512, 4096, .short),
            (.nt, 4096, 3, 256, .narrow), (.nt, 4096, 1, 256, .narrow), (.nt, 2000, 8, 1100, .narrow), (.nt, 4096, 10, 128, .narrow),
            (.nt, 4096, 12, 256, .narrow), (.nt, 4096, 13, 256, nil),
            (.nt, 4096, 256, 17, nil), (.nt, 100, 5000, 8, nil), (.tn, 17, 256, 4096, nil), (.nn, 4096, 3, 256, nil),
            (.nt, 32, 64, 2, nil),  // small: the small product's
            // within the small product's size but with an operand of 2^12 elements or more (a
            // 64-wide layer at batch 4096, split over the threads; mnist's last layer and tiny's,
            // on one): skinny; under it, small
            (.nn, 4096, 64, 1, .shallow), (.nt, 4096, 1, 64, .narrow), (.tn, 64, 1, 4096, .thin), (.nt, 1000, 1, 64, .narrow),
            (.tn, 10, 128, 128, .short), (.nn, 128, 128, 10, .shallow), (.nt, 64, 1, 64, .narrow), (.nt, 60, 1, 64, nil),
        ]
        for (layout, m, n, k, kernel) in cases {
            XCTAssertEqual(SIMDKernels.skinnyKernel(layout, m: m, n: n, k: k, avx512: true), kernel, "\(layout) \(m)×\(n)×\(k)")
            guard kernel != nil else { continue }
            let (aCount, bCount) = layout == .tn ? (k * m, k * n) : (m * k, layout == .nt ? n * k : k * n)
            let a = values(aCount, seed: 8), b = values(bCount, seed: 9)
            var c = [Float](repeating: 7, count: m * n)
            XCTAssertTrue(SIMDKernels.skinnyProduct(layout, m: m, n: n, k: k, a: a, b: b, c: &c, avx512: true))
            assertSameBits(c, packed(layout, m: m, n: n, k: k, a, b), "\(layout) \(m)×\(n)×\(k)")
        }
        var c = [Float](repeating: 0, count: 1 << 20)
        XCTAssertFalse(SIMDKernels.skinnyProduct(.nt, m: 4096, n: 256, k: 2, a: [Float](repeating: 1, count: 8192),
                                                 b: [Float](repeating: 1, count: 512), c: &c, avx512: false))
    }

    /// A training step of [2,256,256,3] at batch 2048 (the first layer's product and weight
    /// gradient, the last layer's product, weight gradient and delta all skinny) on the backend without a
    /// BLAS gives the gradients of the same step computed here product by product with the packed
    /// product, bit for bit.
    func testTrainingStepHasThePackedProductsBits() throws {
        try requireAVX512()
        let backend = CPUBackend(packedProduct: ())
        let model = try MLP(layerSizes: [2, 256, 256, 3], loss: .meanSquaredError, seed: 4)
        let rows = 2048
        let inputs = values(rows * 2, seed: 10).map { $0.isFinite ? $0 : 0.5 }, targets = values(rows * 3, seed: 11).map { $0.isFinite ? $0 : 1 }
        let session = try TrainingSession(model: model, backend: backend, batchCapacity: rows)
        let data = try session.upload(try Dataset(inputs: inputs, features: 2, targets: targets, encoding: .dense, targetWidth: 3))
        try session.trainStep(on: data, positions: 0..<rows, gathered: false)
        let gradients = try session.gradientValues()
        // the gradients by hand with the packed product for every product, ReLU, MSE (1/(2B)·ΣΣ)
        let layout = try LayerLayout(sizes: [2, 256, 256, 3])
        let p = model.parameters
        func weights(_ i: Int) -> [Float] { Array(p[layout.weightOffsets[i]..<layout.biasOffsets[i]]) }
        func bias(_ i: Int) -> [Float] { Array(p[layout.biasOffsets[i]..<(layout.biasOffsets[i] + layout.sizes[i + 1])]) }
        var activations = [inputs]
        for i in 0..<3 {
            let (n, k) = (layout.sizes[i + 1], layout.sizes[i])
            var z = packed(.nt, m: rows, n: n, k: k, activations[i], weights(i))
            let b = bias(i)
            for r in 0..<rows { for j in 0..<n { z[r * n + j] = i < 2 ? max(z[r * n + j] + b[j], 0) : z[r * n + j] + b[j] } }
            activations.append(z)
        }
        var delta = (0..<(rows * 3)).map { (activations[3][$0] - targets[$0]) * (1 / Float(rows)) }
        for i in stride(from: 2, through: 0, by: -1) {
            let (n, k) = (layout.sizes[i + 1], layout.sizes[i])
            let dW = packed(.tn, m: n, n: k, k: rows, delta, activations[i])
            assertSameBits(Array(gradients[layout.weightOffsets[i]..<layout.biasOffsets[i]]), dW, "dW\(i + 1)")
            if i > 0 {
                var previous = packed(.nn, m: rows, n: k, k: n, delta, weights(i))
                for e in 0..<previous.count where !(activations[i][e] > 0) { previous[e] = 0 }
                delta = previous
            }
        }
    }

    /// A TN product with a small C over a deep batch, its depth blocks of 512 taken by the threads
    /// (`SIMDKernels.depthBlocksProduct`): the packed product's bits (each block's chain from zero,
    /// the blocks added in turn, as the element-by-element `unpackedProduct` makes them), on a
    /// ragged last block, through `packedProduct`, and with B's depths picked from a larger matrix
    /// (a batch's rows read where they lie) as the product of the gathered rows.
    func testDeepTNProductInDepthBlocksHasThePackedProductsBits() throws {
        try requireAVX512()
        for (m, n, k) in [(64, 64, 4096), (40, 24, 3000), (128, 96, 2048), (33, 65, 1100)] {
            XCTAssertTrue(SIMDKernels.takesDepthBlocks(m: m, n: n, k: k, enabled: true), "\(m)×\(n)×\(k)")
            let a = values(k * m, seed: 11), b = values(k * n, seed: 12)
            var expected = [Float](repeating: .nan, count: m * n)
            SIMDKernels.unpackedProduct(.tn, m: m, n: n, k: k, a: a, b: b, c: &expected)
            var blocks = [Float](repeating: .nan, count: m * n)
            XCTAssertTrue(SIMDKernels.depthBlocksProduct(m: m, n: n, k: k, a: a, b: b, c: &blocks, enabled: true, avx512: true))
            assertSameBits(blocks, expected, "depth blocks \(m)×\(n)×\(k)")
            assertSameBits(packed(.tn, m: m, n: n, k: k, a, b), expected, "packedProduct \(m)×\(n)×\(k)")
            // B's depths as rows of a larger matrix, in a shuffled order
            let sourceRows = k + 37
            let source = values(sourceRows * n, seed: 13)
            var generator = SeededGenerator(seed: 14)
            let rows = Array((0..<sourceRows).shuffled(using: &generator).prefix(k))
            let gathered = rows.flatMap { source[($0 * n)..<($0 * n + n)] }
            var picked = [Float](repeating: .nan, count: m * n)
            SIMDKernels.unpackedProduct(.tn, m: m, n: n, k: k, a: a, b: gathered, c: &expected)
            XCTAssertTrue(SIMDKernels.depthBlocksProduct(m: m, n: n, k: k, a: a, b: source, c: &picked, bDepths: rows,
                                                          enabled: true, avx512: true))
            assertSameBits(picked, expected, "depth blocks, rows picked, \(m)×\(n)×\(k)")
        }
        // one block deep, a depth under 8 times C's larger side, or too small a product: not taken
        XCTAssertFalse(SIMDKernels.takesDepthBlocks(m: 64, n: 64, k: 512, enabled: true))
        XCTAssertFalse(SIMDKernels.takesDepthBlocks(m: 256, n: 784, k: 4096, enabled: true))
        XCTAssertFalse(SIMDKernels.takesDepthBlocks(m: 8, n: 8, k: 4096, enabled: true))
        XCTAssertFalse(SIMDKernels.takesDepthBlocks(m: 64, n: 64, k: 4096, enabled: false))
    }

    /// The packed product's claimed chunks with AVX-512 apply the epilogue as their tiles store the
    /// final sums (`packedProduct(…, epilogue:)`): the bits of the product and then the backend's
    /// pass (bias, bias+ReLU, bias+tanh, the ReLU mask, tanh′), NaN, ±∞, −0 and an exact cancellation
    /// included, on chunks of rows and of columns, ragged tiles, a depth past one block of 512 (the
    /// epilogue on the blocks' sum), and with A's rows picked where they lie.
    func testClaimedProductEpiloguesHaveThePassesBits() throws {
        try requireAVX512()
        for (layout, m, n, k) in [(ProductLayout.nt, 128, 256, 300), (.nn, 4096, 64, 64), (.nt, 300, 70, 700), (.nn, 100, 333, 70)] {
            XCTAssertTrue(SIMDKernels.claimsProduct(m: m, n: n, k: k, enabled: true), "\(layout) \(m)×\(n)×\(k)")
            let bias = assertEpiloguesHaveThePassesBits(layout, m: m, n: n, k: k, seed: 21) { a, b, c, epilogue in
                SIMDKernels.packedProduct(layout, m: m, n: n, k: k, a: a, b: b, c: &c, epilogue: epilogue, enabled: true, avx512: true)
            }
            let b = values(k * n, seed: 22)
            // A's rows picked from a larger matrix, with bias and ReLU
            let sourceRows = m + 9
            let source = values(sourceRows * k, seed: 25)
            var generator = SeededGenerator(seed: 26)
            let rows = Array((0..<sourceRows).shuffled(using: &generator).prefix(m))
            let gathered = rows.flatMap { source[($0 * k)..<($0 * k + k)] }
            let gatheredProduct = packed(layout, m: m, n: n, k: k, gathered, b)
            var c = [Float](repeating: 7, count: m * n)
            let applied: Bool? = bias.withUnsafeBufferPointer { biasPointer in
                SIMDKernels.selectedRowsProduct(layout, m: m, n: n, k: k, a: source, b: b, c: &c, rows: rows,
                                                epilogue: .bias(biasPointer.baseAddress!, function: .relu), enabled: true, avx512: true)
            }
            XCTAssertEqual(applied, true, "rows picked \(layout) \(m)×\(n)×\(k)")
            assertSameBits(c, (0..<(m * n)).map { max(gatheredProduct[$0] + bias[$0 % n], 0) }, "rows picked \(layout) \(m)×\(n)×\(k)")
        }
        // without AVX-512 the chunks leave the epilogue to the caller
        var c = [Float](repeating: 7, count: 128 * 256)
        let bias = values(256, seed: 27)
        let applied: Bool? = bias.withUnsafeBufferPointer { biasPointer in
            SIMDKernels.packedProduct(.nt, m: 128, n: 256, k: 300, a: values(128 * 300, seed: 28), b: values(256 * 300, seed: 29),
                                      c: &c, epilogue: .bias(biasPointer.baseAddress!, function: .relu), enabled: true, avx512: false)
        }
        XCTAssertEqual(applied, false)
    }

    /// Forward products (NT, C = A·Wᵀ) and weight gradients (TN, dW = dZᵀ·A) whose weight has at
    /// least the batch's rows are cut into one fixed block of W's rows a thread
    /// (`SIMDKernels.splitsByOwnedRows`): the packed product's bits, with every epilogue, on blocks
    /// ragged against the 32-row cut and the tiles, a depth past one block of 512, and with the
    /// batch's rows picked where they lie (NT's A rows, TN's B depths) as the product of the
    /// gathered rows. Where the batch is the larger operand, claimed chunks stay.
    func testProductsInOwnedBlocksHaveThePackedProductsBits() throws {
        try requireAVX512()
        guard ParallelChunks.threads > 1 else { throw XCTSkip("one thread: nothing to split") }
        let shapes: [(ProductLayout, Int, Int, Int)] = [(.nt, 128, 256, 784), (.nt, 32, 200, 400), (.nt, 77, 333, 600),
                                                         (.nt, 64, 64, 1100), (.tn, 256, 784, 128), (.tn, 200, 100, 150),
                                                         (.tn, 300, 70, 200)]
        for (layout, m, n, k) in shapes {
            let context = "\(layout) \(m)×\(n)×\(k)"
            XCTAssertTrue(SIMDKernels.claimsProduct(m: m, n: n, k: k, enabled: true), context)
            XCTAssertTrue(SIMDKernels.splitsByOwnedRows(layout, m: m, n: n, k: k, avx512: true, owns: true), context)
            let a = values(m * k, seed: 41), b = values(k * n, seed: 42)
            var c = [Float](repeating: .nan, count: m * n)
            XCTAssertEqual(SIMDKernels.packedProduct(layout, m: m, n: n, k: k, a: a, b: b, c: &c, epilogue: .none, enabled: true,
                                                     avx512: true), false, context)
            assertSameBits(c, packed(layout, m: m, n: n, k: k, a, b), context)
            _ = assertEpiloguesHaveThePassesBits(layout, m: m, n: n, k: k, seed: 43) { a, b, c, epilogue in
                SIMDKernels.packedProduct(layout, m: m, n: n, k: k, a: a, b: b, c: &c, epilogue: epilogue, enabled: true, avx512: true)
            }
            // the batch operand's rows picked from a larger matrix, shuffled
            let (count, width) = layout == .tn ? (k, n) : (m, k)
            let source = values((count + 13) * width, seed: 44)
            var generator = SeededGenerator(seed: 45)
            let rows = Array((0..<(count + 13)).shuffled(using: &generator).prefix(count))
            let gathered = rows.flatMap { source[($0 * width)..<(($0 + 1) * width)] }
            let other = layout == .tn ? values(k * m, seed: 46) : b
            let expected = layout == .tn ? packed(layout, m: m, n: n, k: k, other, gathered) : packed(layout, m: m, n: n, k: k, gathered, other)
            var picked = [Float](repeating: .nan, count: m * n)
            XCTAssertTrue(SIMDKernels.selectedRowsProduct(layout, m: m, n: n, k: k, a: layout == .tn ? other : source,
                                                          b: layout == .tn ? source : other, c: &picked, rows: rows,
                                                          enabled: true, avx512: true), context)
            assertSameBits(picked, expected, "rows picked \(context)")
        }
        // the batch the larger operand (or no AVX-512, or switched off): claimed chunks
        XCTAssertFalse(SIMDKernels.splitsByOwnedRows(.nt, m: 300, n: 70, k: 700, avx512: true, owns: true))
        XCTAssertFalse(SIMDKernels.splitsByOwnedRows(.tn, m: 64, n: 64, k: 4096, avx512: true, owns: true))
        XCTAssertFalse(SIMDKernels.splitsByOwnedRows(.nn, m: 128, n: 256, k: 128, avx512: true, owns: true))
        XCTAssertFalse(SIMDKernels.splitsByOwnedRows(.nt, m: 128, n: 256, k: 784, avx512: false, owns: true))
        XCTAssertFalse(SIMDKernels.splitsByOwnedRows(.nt, m: 128, n: 256, k: 784, avx512: true, owns: false))
        XCTAssertFalse(SIMDKernels.splitsByOwnedRows(.nt, m: 16, n: 32, k: 784, avx512: true, owns: true), "one tile: one block")
    }
}
