import CMLPKitSIMD
import Foundation
import XCTest
@testable import MLPKit

/// The AVX2 paths (`SIMDKernels`, C in `Sources/CMLPKitSIMD`): Adam bit for bit the Swift loops,
/// the small product against a Float64 reference. Skipped where the processor has no AVX2.
final class SIMDKernelTests: XCTestCase {
    private func requireSIMD() throws {
        guard !SIMDKernels.enabled else { return }
        #if arch(x86_64)
        // CI runs on x86-64 with AVX2: there these paths must be tested, not skipped
        if ProcessInfo.processInfo.environment["CI"] != nil, ProcessInfo.processInfo.environment["MLPKIT_SIMD"] != "0" {
            XCTFail("CI is set and this x86-64 processor reports no AVX2 and FMA: the AVX2 paths went untested")
        }
        #endif
        throw XCTSkip("no AVX2 and FMA here (or MLPKIT_SIMD=0)")
    }

    /// Every option combination (both, one or no bias-correction divisions; clipping; decay;
    /// both), at counts with ragged tails, from a non-zero start, two steps: the AVX2 loop (and
    /// the AVX-512 loop where the processor has it) and the Swift loop leave the same bits in θ,
    /// m and v.
    func testAdamMatchesSwiftLoopsBitForBit() throws {
        try requireSIMD()
        for avx512 in mlpkit_avx512_level() > 0 ? [false, true] : [false] {
            try checkAdamAgainstSwiftLoops(avx512: avx512)
        }
    }

    private func checkAdamAgainstSwiftLoops(avx512: Bool) throws {
        // (step, gradient scale, decay): step 200 has 1 − β1ᵗ = 1 in Float32, step 30000 both
        let cases: [(Int, Float, Float)] = [(1, 1, 1), (200, 1, 1), (30000, 1, 1), (3, 0.37, 1), (3, 1, 0.999), (200, 0.5, 0.99)]
        let h = AdamHyperparameters(learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        for count in [1, 7, 8, 9, 23, 1029] {
            for (index, (step, scale, decay)) in cases.enumerated() {
                let seed = UInt64(1000 * count + index)
                let initialTheta = CPUParallelTests.randomValues(count, seed: seed)
                let initialM = CPUParallelTests.randomValues(count, seed: seed + 1, scale: 0.01)
                let initialV = CPUParallelTests.randomValues(count, seed: seed + 2, scale: 0.001).map { $0 * $0 }
                let (c1, c2) = h.biasCorrections(step: step)
                var results: [[[Float]]] = []
                for simd in [true, false] {
                    var theta = initialTheta, m = initialM, v = initialV
                    for t in 0..<2 {
                        var g = CPUParallelTests.randomValues(count, seed: seed + 10 + UInt64(t), scale: 0.1)
                        CPUParallelTests.withAdamJob(&theta, &g, &m, &v, h, corrections: (c1, c2), gradientScale: scale,
                                                     decay: decay, decays: decay != 1) { job in
                            // a ragged start as well: the first three on their own
                            ElementwiseKernels.adamRange(job, start: 0, end: min(3, count), simd: simd, avx512: avx512)
                            ElementwiseKernels.adamRange(job, start: min(3, count), end: count, simd: simd, avx512: avx512)
                        }
                    }
                    results.append([theta, m, v])
                }
                for (name, position) in [("θ", 0), ("m", 1), ("v", 2)] {
                    let avx = results[0][position], swift = results[1][position]
                    let mismatches = (0..<count).filter { avx[$0].bitPattern != swift[$0].bitPattern }
                    XCTAssertEqual(mismatches.count, 0, "AVX-512 \(avx512) count \(count) case \(index) \(name): first at \(mismatches.first ?? -1)")
                    XCTAssertNotEqual(avx, position == 0 ? initialTheta : position == 1 ? initialM : initialV,
                                      "the update must move \(name)")
                }
            }
        }
    }

    /// The AVX-512 loop's corner lanes, mixed into vectors of ordinary ones: m and g of ±0 (x / c
    /// keeps the sign of zero), v = g = 0 (√0), second moments tiny, subnormal and at the edges of
    /// the fast range (2⁻⁶⁰ and 2¹⁰⁰, just inside and just outside), gradients whose square
    /// overflows, infinities and NaNs, and negative second moments (a corrupted state, whose √ is
    /// NaN) (those vectors take the divider's operations): the same bits as the Swift loop, at
    /// step 1 (both corrections divide), 200 (only v̂'s) and 30000 (none).
    func testAVX512AdamCornerLanesMatchSwiftLoops() throws {
        try requireSIMD()
        guard mlpkit_avx512_level() > 0 else { throw XCTSkip("no AVX-512 here") }
        let h = AdamHyperparameters(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        let count = 16 * 40 + 5
        let edges: [Float] = [Float(bitPattern: 0x2180_0000), Float(bitPattern: 0x217F_FFFF), Float(bitPattern: 0x7180_0000),
                              Float(bitPattern: 0x7180_0001), 1e-30, Float(bitPattern: 0x0001_16C2), Float.leastNonzeroMagnitude, 1e30]
        var generator = SeededGenerator(seed: 77)
        var theta = CPUParallelTests.randomValues(count, seed: 5), m = CPUParallelTests.randomValues(count, seed: 6, scale: 0.01)
        var v = CPUParallelTests.randomValues(count, seed: 7, scale: 0.01).map { $0 * $0 }
        var g = CPUParallelTests.randomValues(count, seed: 8, scale: 0.1)
        // the first ten vectors ordinary, the rest with corner lanes (about one in five)
        for i in 160..<count where generator.next() % 5 == 0 {
            switch generator.next() % 9 {
            case 0: (m[i], g[i]) = (-0.0, -0.0)
            case 1: (m[i], g[i]) = (0, 0)
            case 2: (v[i], g[i]) = (0, 0)
            case 3: (v[i], g[i]) = (edges[Int(generator.next() % UInt64(edges.count))], 0)
            case 4: (m[i], g[i]) = (edges[Int(generator.next() % UInt64(edges.count))] * (i % 2 == 0 ? 1 : -1), 0)
            case 5: g[i] = 1e25
            case 6: g[i] = i % 2 == 0 ? .infinity : -.infinity
            case 7: v[i] = -v[i] - 1e-3
            default: theta[i] = .nan
            }
        }
        for step in [1, 200, 30000] {
            let (c1, c2) = h.biasCorrections(step: step)
            var results: [[Float]] = []
            for avx512 in [true, false] {
                var (t, gg, mm, vv) = (theta, g, m, v)
                CPUParallelTests.withAdamJob(&t, &gg, &mm, &vv, h, corrections: (c1, c2), gradientScale: 1, decay: 1,
                                             decays: false) { job in
                    // the AVX-512 loop even under MLPKIT_AVX512=0, or the Swift loop
                    ElementwiseKernels.adamRange(job, start: 0, end: count, simd: avx512, avx512: true)
                }
                results.append(t + mm + vv)
            }
            let mismatches = (0..<results[0].count).filter { results[0][$0].bitPattern != results[1][$0].bitPattern }
            XCTAssertEqual(mismatches.count, 0, "step \(step): first at \(mismatches.first ?? -1) of θ, m, v")
        }
    }

    /// The AVX-512 Adam's square root equals the correctly rounded one at 0 and on every input of
    /// six whole binades across its range ({0} ∪ [2⁻¹⁰⁰, FLT_MAX]: both exponent parities at each
    /// end and at 1), and its division by the bias correction c equals x / c on every x of four
    /// binades (the fast range's ends, [1, 4)), for c of early steps at β = 0.9 and 0.999, the
    /// extremes 2⁻²⁴ and 1 − 2⁻²⁴, and c = 1/3. Below 2⁻¹⁰⁰ the square root does differ (which is
    /// why such lanes take the divider): the check can fail. `Scripts/check-adam-avx512.sh` runs
    /// the same checks over every input of both ranges (too slow for a debug build's test).
    func testAVX512SquareRootAndDivisionAreCorrectlyRounded() throws {
        try requireSIMD()
        guard mlpkit_avx512_level() > 0 else { throw XCTSkip("no AVX-512 here") }
        func binade(_ exponent: Int) -> (UInt32, UInt32) {
            let low = Float(sign: .plus, exponent: exponent, significand: 1).bitPattern
            return (low, low + 0x7F_FFFF)
        }
        XCTAssertEqual(mlpkit_check_sqrt_avx512(0, 0), 0)
        for exponent in [-100, -99, -1, 0, 126, 127] {
            let (low, high) = binade(exponent)
            XCTAssertEqual(mlpkit_check_sqrt_avx512(low, high), 0, "√x for x in [2^\(exponent), 2^\(exponent + 1))")
        }
        XCTAssertGreaterThan(mlpkit_check_sqrt_avx512(binade(-126).0, binade(-120).1), 0,
                             "the check must see errors where there are some")
        let h = AdamHyperparameters(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        let corrections = [1, 2, 7, 60].map { h.biasCorrections(step: $0).first }
            + [1, 3, 100, 2500].map { h.biasCorrections(step: $0).second } + [0x1p-24, 1 - 0x1p-24, 1 / 3]
        for c in corrections {
            for exponent in [-60, 0, 1, 100] {
                let (low, high) = binade(exponent)
                XCTAssertEqual(mlpkit_check_divide_avx512(c, low, high), 0, "x / \(c) for x in [2^\(exponent), 2^\(exponent + 1))")
            }
        }
    }

    /// The small product in every layout, on shapes with ragged rows (1 to 5 past a multiple of
    /// the kernel's six) and columns (1 to 15 past a multiple of 16), depth 1, and tiny's and
    /// mnist's shapes, over a NaN-poisoned C: every element written, each bit for bit one chain
    /// of fused multiply-adds over p in order from zero (whichever block computed it), and
    /// within Float32 rounding of the Float64 product.
    /// With AVX-512 where the processor has it (six rows by 32 columns, the ragged last 1 to 31
    /// columns under a lane mask), the same bits.
    func testSmallProductAgainstFusedChainAndFloat64() throws {
        try requireSIMD()
        let shapes = [(64, 64, 32), (64, 64, 64), (64, 1, 64), (1, 64, 64), (64, 64, 1), (64, 32, 64), (5, 13, 7),
                      (3, 17, 9), (4, 16, 1), (7, 8, 33), (9, 25, 40), (128, 10, 128), (10, 128, 128), (128, 128, 10),
                      (11, 15, 9), (13, 31, 5), (6, 16, 3), (12, 9, 20), (7, 1, 17), (1, 33, 2), (5, 47, 6), (7, 48, 3),
                      (8, 65, 4), (3, 96, 2)]
        for avx512 in mlpkit_avx512_level() > 0 ? [false, true] : [false] {
            for (m, n, k) in shapes {
                for layout in ProductLayout.allCases {
                    checkProduct(layout, m: m, n: n, k: k, depthBlock: max(k, 1), seeds: (UInt64(m * 31 + k), UInt64(n * 17 + k))) {
                        SIMDKernels.smallProduct(layout, m: m, n: n, k: k, a: $0, b: $1, c: $2, avx512: avx512)
                    }
                }
            }
        }
        if mlpkit_avx512_level() == 0 { XCTAssertFalse(SIMDKernels.avx512) }
    }

    /// `product` (which must take it) over a NaN-poisoned C from random A and B: every element
    /// written, each bit for bit the in-order sum of fused multiply-add chains over p from zero,
    /// one chain per `depthBlock` along p, and within Float32 rounding of the Float64 product.
    private func checkProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, depthBlock: Int, seeds: (UInt64, UInt64),
        _ product: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Bool
    ) {
        let a = CPUParallelTests.randomValues(m * k, seed: seeds.0), b = CPUParallelTests.randomValues(k * n, seed: seeds.1)
        var c = [Float](repeating: .nan, count: m * n)
        let taken = a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { product(ap.baseAddress!, bp.baseAddress!, $0.baseAddress!) }
            }
        }
        XCTAssertTrue(taken, "\(layout) \(m)×\(n)×\(k)")
        var notChains = 0
        for i in 0..<m {
            for j in 0..<n {
                var total: Float = 0
                var exact = 0.0, magnitude = 0.0
                for blockStart in stride(from: 0, to: k, by: depthBlock) {
                    var chain: Float = 0
                    for p in blockStart..<min(blockStart + depthBlock, k) {
                        let x = layout == .tn ? a[p * m + i] : a[i * k + p]
                        let y = layout == .nt ? b[j * k + p] : b[p * n + j]
                        chain.addProduct(x, y)
                        exact += Double(x) * Double(y)
                        magnitude += abs(Double(x) * Double(y))
                    }
                    total = blockStart == 0 ? chain : total + chain
                }
                if c[i * n + j].bitPattern != total.bitPattern { notChains += 1 }
                XCTAssertEqual(Double(c[i * n + j]), exact, accuracy: 4e-7 * Double(k) * magnitude + 1e-30,
                               "\(layout) \(m)×\(n)×\(k) at (\(i), \(j))")
            }
        }
        XCTAssertEqual(notChains, 0, "\(layout) \(m)×\(n)×\(k): elements not the fused chains' bits")
    }

    /// Products it does not take leave C alone and go to BLAS: too many multiply-adds, an NT
    /// product whose B is too large to transpose on the side, or the kernel switched off.
    func testProductsItDoesNotTake() throws {
        try requireSIMD()
        let a = CPUParallelTests.randomValues(300 * 300, seed: 1), b = CPUParallelTests.randomValues(300 * 300, seed: 2)
        var c = [Float](repeating: .nan, count: 300 * 300)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    let (ap, bp, cp) = (ap.baseAddress!, bp.baseAddress!, cp.baseAddress!)
                    XCTAssertFalse(SIMDKernels.smallProduct(.nn, m: 100, n: 100, k: 100, a: ap, b: bp, c: cp), "10⁶ multiply-adds")
                    XCTAssertFalse(SIMDKernels.smallProduct(.nt, m: 1, n: 200, k: 100, a: ap, b: bp, c: cp), "B of 20,000 to transpose")
                    XCTAssertTrue(SIMDKernels.smallProduct(.tn, m: 1, n: 200, k: 100, a: ap, b: bp, c: cp), "TN transposes nothing")
                    cp[0] = .nan
                    XCTAssertFalse(SIMDKernels.smallProduct(.nn, m: 8, n: 8, k: 8, a: ap, b: bp, c: cp, enabled: false))
                }
            }
        }
        XCTAssertTrue(c[0].isNaN)
        XCTAssertTrue(c[200 * 1 + 1 ..< c.count].allSatisfy(\.isNaN), "nothing written past the one product it took")
    }

    /// The packed product (the CPU backend's where no BLAS is installed) in every layout, with
    /// AVX2 and (where the processor has it) AVX-512, on shapes ragged against its 6×16 and 8×32 tiles, more than one block of rows (72), of columns (1024)
    /// and of depth (512), depth 0, and shapes large enough to be split over the threads (by rows
    /// and by columns), over a NaN-poisoned C: every element written, each bit for bit the
    /// in-order sum of one fused chain from zero per 512-deep block (so a block of C has the whole
    /// product's bits), and within Float32 rounding of the Float64 product; its element-by-element
    /// fallback (no memory for the packing buffers) the same.
    func testPackedProductAgainstBlockedChainAndFloat64() throws {
        try requireSIMD()
        let shapes = [(1, 1, 1), (7, 17, 5), (6, 16, 512), (13, 33, 513), (73, 20, 1100), (100, 1030, 20),
                      (200, 40, 300), (40, 300, 200), (31, 7, 600), (5, 3, 0), (130, 129, 130)]
        for (m, n, k) in shapes + [(6, 32, 7), (7, 47, 513), (12, 65, 3), (70, 96, 40)] {
            for layout in ProductLayout.allCases {
                // with AVX-512 too where the processor has it (8×32 tiles): the same bits
                for avx512 in mlpkit_avx512_level() > 0 ? [false, true] : [false] {
                    checkProduct(layout, m: m, n: n, k: k, depthBlock: 512, seeds: (UInt64(m * 37 + k), UInt64(n * 19 + k))) {
                        SIMDKernels.packedProduct(layout, m: m, n: n, k: k, a: $0, b: $1, c: $2, avx512: avx512)
                    }
                }
                // its fallback where the packing buffers cannot be allocated: the same sums
                checkProduct(layout, m: m, n: n, k: k, depthBlock: 512, seeds: (UInt64(m * 37 + k), UInt64(n * 19 + k))) {
                    SIMDKernels.unpackedProduct(layout, m: m, n: n, k: k, a: $0, b: $1, c: $2)
                    return true
                }
            }
        }
        var untouched: [Float] = [.nan]
        let taken = untouched.withUnsafeMutableBufferPointer {
            SIMDKernels.packedProduct(.nn, m: 1, n: 1, k: 1, a: [1], b: [1], c: $0.baseAddress!, enabled: false)
        }
        XCTAssertFalse(taken, "switched off, the caller does the product")
        XCTAssertTrue(untouched[0].isNaN)
    }

    /// The claimed product (`mlpkit_claimed_product_*`, the split products' chunks that threads
    /// claim as they go) in every layout, by columns and by rows, with every chunk size it takes,
    /// on ragged shapes over a NaN-poisoned C (chunks above the packing buffers' size taken as that
    /// size): every element written, bit for bit the packed
    /// product's one-call result, whether one thread takes every chunk or two threads share them;
    /// a taker that finds the counter spent writes nothing; depth 0 writes zeros.
    func testClaimedProductHasThePackedProductsBits() throws {
        try requireSIMD()
        let shapes = [(1, 1, 1), (7, 17, 5), (13, 33, 513), (73, 200, 130), (130, 129, 130), (128, 256, 784), (150, 100, 600), (5, 3, 0)]
        for (m, n, k) in shapes {
            for layout in ProductLayout.allCases {
                let (aRow, aDepth, bDepth, bColumn) = layout.operandStrides(m: m, n: n, k: k)
                var random = SeededGenerator(seed: UInt64(m * 131 + n * 7 + k))
                let a = (0..<max(m * k, 1)).map { _ in Float.random(in: -1...1, using: &random) }
                let b = (0..<max(k * n, 1)).map { _ in Float.random(in: -1...1, using: &random) }
                for avx512 in mlpkit_avx512_level() > 0 ? [false, true] : [false] {
                    var expected = [Float](repeating: .nan, count: m * n)
                    avx512 ? mlpkit_packed_product_avx512(m, n, k, a, aRow, aDepth, b, bDepth, bColumn, &expected, n)
                        : mlpkit_packed_product_avx2(m, n, k, a, aRow, aDepth, b, bDepth, bColumn, &expected, n)
                    for (splitsColumns, chunks) in [(Int32(1), [32, 64, 1024, 5000]), (Int32(0), [6, 8, 32, 36, 72, 500])] {
                        for chunk in chunks {
                            for takers in [1, 2] {
                                var c = [Float](repeating: .nan, count: m * n)
                                var next = 0
                                c.withUnsafeMutableBufferPointer { c in
                                    withUnsafeMutablePointer(to: &next) { next in
                                        let job = ClaimedTestJob(m: m, n: n, k: k, a: a, b: b, aRow: aRow, aDepth: aDepth, bDepth: bDepth,
                                                                 bColumn: bColumn, c: c.baseAddress!, chunk: chunk, next: next,
                                                                 splitsColumns: splitsColumns, avx512: avx512)
                                        if takers == 1 {
                                            job.take()
                                        } else {
                                            DispatchQueue.concurrentPerform(iterations: 2) { _ in job.take() }
                                        }
                                        job.take()  // the counter is spent: nothing left to write
                                    }
                                }
                                let context = "\(layout) \(m)×\(n)×\(k) avx512 \(avx512) columns \(splitsColumns) chunk \(chunk) takers \(takers)"
                                XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), context)
                                if k == 0 { XCTAssertTrue(c.allSatisfy { $0 == 0 }, context) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The claimed product reading the batch operand's rows by index (op(A)'s rows in NT and NN,
    /// op(B)'s depths in TN: a batch's rows where they lie in the data, repeated and out of
    /// order) gives bit for bit the packed product of the gathered copy, by columns and by rows,
    /// one taker or two, with AVX2 (whose packed A takes the element-by-element path) and AVX-512;
    /// so does the element-by-element fallback. Picking the rows in the wrong order fails it.
    func testClaimedProductReadsSelectedRowsWithTheGatheredBits() throws {
        try requireSIMD()
        let shapes = [(7, 17, 5), (13, 33, 513), (73, 200, 130), (130, 129, 130), (128, 256, 784), (150, 100, 600)]
        for (m, n, k) in shapes {
            for layout in ProductLayout.allCases {
                let (aRow, aDepth, bDepth, bColumn) = layout.operandStrides(m: m, n: n, k: k)
                var random = SeededGenerator(seed: UInt64(m * 31 + n * 5 + k))
                var a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &random) }
                var b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &random) }
                // the selected operand: `count` rows of `width` picked from a source of count + 37 rows
                let (count, width) = layout == .tn ? (k, n) : (m, k)
                let source = (0..<((count + 37) * width)).map { _ in Float.random(in: -1...1, using: &random) }
                let indices = (0..<count).map { _ in Int.random(in: 0..<(count + 37), using: &random) }
                let gathered = indices.flatMap { source[($0 * width)..<(($0 + 1) * width)] }
                if layout == .tn { b = gathered } else { a = gathered }
                for avx512 in mlpkit_avx512_level() > 0 ? [false, true] : [false] {
                    var expected = [Float](repeating: .nan, count: m * n)
                    avx512 ? mlpkit_packed_product_avx512(m, n, k, a, aRow, aDepth, b, bDepth, bColumn, &expected, n)
                        : mlpkit_packed_product_avx2(m, n, k, a, aRow, aDepth, b, bDepth, bColumn, &expected, n)
                    for (splitsColumns, chunk) in [(Int32(1), 64), (Int32(0), avx512 ? 32 : 36)] {
                        for takers in [1, 2] {
                            for shuffled in [false, true] {
                                var c = [Float](repeating: .nan, count: m * n)
                                var next = 0
                                // shuffled: the right rows in another order, which must not give the same bits
                                let picked = shuffled ? Array(indices.reversed()) : indices
                                c.withUnsafeMutableBufferPointer { c in
                                    withUnsafeMutablePointer(to: &next) { next in
                                        var job = ClaimedTestJob(m: m, n: n, k: k, a: layout == .tn ? a : source, b: layout == .tn ? source : b,
                                                                 aRow: aRow, aDepth: aDepth, bDepth: bDepth, bColumn: bColumn,
                                                                 c: c.baseAddress!, chunk: chunk, next: next, splitsColumns: splitsColumns,
                                                                 avx512: avx512)
                                        if layout == .tn { job.bDepths = picked } else { job.aRows = picked }
                                        if takers == 1 {
                                            job.take()
                                        } else {
                                            DispatchQueue.concurrentPerform(iterations: 2) { _ in job.take() }
                                        }
                                    }
                                }
                                let context = "\(layout) \(m)×\(n)×\(k) avx512 \(avx512) columns \(splitsColumns) takers \(takers)"
                                if shuffled {
                                    if Set(indices).count > 1 {
                                        XCTAssertNotEqual(c.map(\.bitPattern), expected.map(\.bitPattern), context)
                                    }
                                } else {
                                    XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), context)
                                }
                            }
                        }
                    }
                    // the element-by-element fallback with the same indices
                    var unpacked = [Float](repeating: .nan, count: m * n)
                    withOptionalPointer(layout == .tn ? nil : indices) { aRows in
                        withOptionalPointer(layout == .tn ? indices : nil) { bDepths in
                            mlpkit_unpacked_product_avx2(m, n, k, layout == .tn ? a : source, aRow, aDepth, aRows,
                                                         layout == .tn ? source : b, bDepth, bColumn, bDepths, &unpacked, n)
                        }
                    }
                    XCTAssertEqual(unpacked.map(\.bitPattern), expected.map(\.bitPattern), "unpacked \(layout) \(m)×\(n)×\(k)")
                }
            }
        }
    }

    /// The AVX-512 e^x (`mlpkit_expf_avx512`) gives this machine's expf bits: on every 1021st
    /// float, on the edges of its fast range (±88, overflow at 0x1.62e42ep6, underflow below
    /// −0x1.9fe368p6), zeros, subnormals, ±∞ and NaN, on the two inputs where rounding x·32/ln 2
    /// before subtracting k changes the result, in place, and with every ragged count up to 17.
    /// (`Scripts/check-avx512-functions.sh expf` checks all 2³² floats.)
    func testAVX512ExponentialsHaveExpfsBits() throws {
        try requireSIMD()
        guard mlpkit_avx512_level() > 0 else { throw XCTSkip("no AVX-512 here") }
        var inputs = stride(from: UInt64(0), to: 1 << 32, by: 1021).map { Float(bitPattern: UInt32($0)) }
        let edges: [Float] = [0, -0, 88, -88, 0x1.62e42ep6, 0x1.62e430p6, -0x1.9fe368p6, -0x1.9fe36ap6, -104, 87.99, -87.99,
                              .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, 1e-30, -1e-30,
                              .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                              0x1.04845ep+5, -0x1.f8cbb2p+5, 1, -1, 0.5, -0.5]
        inputs += edges.flatMap { [$0.nextDown, $0, $0.nextUp] }
        var outputs = [Float](repeating: 0, count: inputs.count)
        mlpkit_expf_avx512(inputs, &outputs, inputs.count)
        func differs(_ x: Float, _ y: Float) -> Bool { x.bitPattern != y.bitPattern && !(x.isNaN && y.isNaN) }
        let wrong = zip(inputs, outputs).filter { differs($1, expf($0)) }
        XCTAssertEqual(wrong.count, 0, "first: \(wrong.prefix(5).map { "e^\($0.0) = \($0.1), expf \(expf($0.0))" })")
        // in place (lanes of |x| ≥ 88 among them), and ragged ends (the lanes past the end
        // neither read nor written)
        for count in 1...17 {
            var values = (0..<24).map { Float($0) * -17.3 + 100 }
            let expected = values.prefix(count).map { expf($0) } + values.dropFirst(count)
            values.withUnsafeMutableBufferPointer { mlpkit_expf_avx512($0.baseAddress!, $0.baseAddress!, count) }
            XCTAssertEqual(values.map(\.bitPattern), expected.map(\.bitPattern), "count \(count)")
        }
    }

    /// The cross-entropy and binary cross-entropy losses' gradients and loss sums with the AVX-512
    /// exponentials equal the scalar expf loops' bit for bit: class indices and dense targets, class
    /// (positive) and row weights, rows whose logits spread far enough to underflow, and a row
    /// holding −∞ and one holding NaN, or neither (with them every loss sum is NaN, so the sums are
    /// compared without them too).
    func testLossesWithAVX512ExponentialsMatchTheScalarLoops() throws {
        try requireSIMD()
        guard mlpkit_avx512_level() > 0 else { throw XCTSkip("no AVX-512 here") }
        for special in [true, false] {
            try lossesMatchTheScalarLoops(special: special)
        }
    }

    private func lossesMatchTheScalarLoops(special: Bool) throws {
        let (rows, columns) = (67, 10)
        var random = SeededGenerator(seed: 77)
        var logits = (0..<(rows * columns)).map { _ in Float.random(in: -8...8, using: &random) }
        for j in 0..<columns { logits[3 * columns + j] = Float(j) * 30 - 150 }  // e^(z − max) underflows
        if special {
            logits[5 * columns + 2] = -.infinity
            logits[6 * columns + 7] = .nan
        }
        for j in 0..<columns { logits[8 * columns + j] = Float(j) * 20 - 100 }  // e^−|z| tiny and 1 − 2⁻²⁴…1
        let labels = (0..<rows).map { _ in Float(Int.random(in: 0..<columns, using: &random)) }
        let dense = (0..<(rows * columns)).map { _ in Float.random(in: 0...1, using: &random) }
        let classWeights = (0..<columns).map { _ in Float.random(in: 0.5...2, using: &random) }
        let rowWeights = (0..<rows).map { _ in Float.random(in: 0...3, using: &random) }
        for loss in [Loss.crossEntropy, .binaryCrossEntropy] {
        for (targets, target) in [(TargetEncoding.classIndices, labels), (.dense, dense)] {
            for (useClass, useRow) in [(false, false), (true, false), (false, true), (true, true)] {
                var results: [(Float, [Float])] = []
                for avx512 in [false, true] {
                    var gradient = [Float](repeating: .nan, count: rows * columns)
                    let sum = gradient.withUnsafeMutableBufferPointer { d in
                        classWeights.withUnsafeBufferPointer { w in
                            rowWeights.withUnsafeBufferPointer { r in
                                LossKernels.gradient(loss, targets: targets, output: logits, target: target, rows: rows,
                                                     columns: columns, gradient: d.baseAddress!, classWeights: useClass ? w.baseAddress : nil,
                                                     rowWeights: useRow ? r.baseAddress : nil, simd: true, avx512: avx512)
                            }
                        }
                    }
                    results.append((sum, gradient))
                }
                let context = "\(loss) \(targets) class weights \(useClass) row weights \(useRow) −∞ and NaN \(special)"
                XCTAssertEqual(results[0].0.bitPattern, results[1].0.bitPattern, context)
                XCTAssertEqual(results[1].0.isNaN, special, context)
                let differing = (0..<(rows * columns)).filter { results[0].1[$0].bitPattern != results[1].1[$0].bitPattern }
                XCTAssertEqual(differing.count, 0, "\(context): \(differing.prefix(8).map { "\($0): \(results[0].1[$0]) \(results[1].1[$0])" })")
                if loss == .crossEntropy, targets == .classIndices {
                    // a class other than the row's whose exponential underflowed has a gradient of 0
                    XCTAssertTrue(results[1].1[(3 * columns)..<(4 * columns)].contains(0), "an exponential underflowed: \(context)")
                }
            }
        }
        }
    }

    /// Cross-entropy over class labels without weights, sixteen rows at a time
    /// (`mlpkit_softmax_cross_entropy_avx512`), equals the scalar loop bit for bit, gradient and
    /// loss sum, at every row count around its blocks of 16 and `softmaxBlock`'s 256 and column
    /// counts up to its limit and past it; the sum is within 1e-5 of a Float64 log-sum-exp; a
    /// label outside the classes still poisons the loss and leaves the loop's gradient.
    func testSoftmaxRowsMatchTheScalarLoop() throws {
        try requireSIMD()
        guard mlpkit_avx512_level() > 0 else { throw XCTSkip("no AVX-512 here") }
        var random = SeededGenerator(seed: 78)
        for columns in [1, 2, 10, 17, 64, 65] {
            for rows in [1, 15, 16, 17, 67, 256, 300] {
                var logits = (0..<(rows * columns)).map { _ in Float.random(in: -12...12, using: &random) }
                if rows > 3, columns > 1 { logits[2 * columns] = -.infinity }  // e^−∞ = 0 beside finite logits
                let labels = (0..<rows).map { _ in Float(Int.random(in: 0..<columns, using: &random)) }
                var results: [(Float, [Float])] = []
                for avx512 in [false, true] {
                    var gradient = [Float](repeating: .nan, count: rows * columns)
                    let sum = gradient.withUnsafeMutableBufferPointer { d in
                        LossKernels.gradient(.crossEntropy, targets: .classIndices, output: logits, target: labels, rows: rows,
                                             columns: columns, gradient: d.baseAddress!, simd: true, avx512: avx512)
                    }
                    results.append((sum, gradient))
                }
                let context = "\(rows)×\(columns)"
                XCTAssertEqual(results[0].0.bitPattern, results[1].0.bitPattern, context)
                XCTAssertEqual(results[0].1.map(\.bitPattern), results[1].1.map(\.bitPattern), context)
                var reference = 0.0
                for i in 0..<rows {
                    let row = logits[(i * columns)..<((i + 1) * columns)].map(Double.init)
                    let largest = row.max()!
                    reference += largest + log(row.map { exp($0 - largest) }.reduce(0, +)) - row[Int(labels[i])]
                }
                XCTAssertEqual(Double(results[1].0), reference, accuracy: 1e-5 * max(1, abs(reference)), context)
            }
        }
        // a label that is no class, in the first block or in a later one (whose first block the
        // kernel has written): NaN, and the scalar loop's gradient, as the loop makes them
        for (rows, bad) in [(4, 2), (300, 280)] {
            let logits = (0..<(rows * 10)).map { Float($0 % 7) - 3 }
            var labels = (0..<rows).map { Float($0 % 10) }
            labels[bad] = 10
            var results: [(Float, [Float])] = []
            for avx512 in [false, true] {
                var gradient = [Float](repeating: 0, count: rows * 10)
                let sum = gradient.withUnsafeMutableBufferPointer { d in
                    LossKernels.gradient(.crossEntropy, targets: .classIndices, output: logits, target: labels, rows: rows, columns: 10,
                                         gradient: d.baseAddress!, simd: true, avx512: avx512)
                }
                results.append((sum, gradient))
            }
            XCTAssertTrue(results[1].0.isNaN, "\(rows) rows")
            XCTAssertEqual(results[0].1.map(\.bitPattern), results[1].1.map(\.bitPattern), "\(rows) rows")
        }
    }

    /// A CPU backend with the packed product (as where no BLAS is installed) passes every row of
    /// the backend check against the Swift product, its split 257×130×200 products and 100-step
    /// training runs included.
    func testPackedBackendPassesTheBackendCheck() throws {
        try requireSIMD()
        let backend = CPUBackend(packedProduct: ())
        XCTAssertEqual(backend.productEngine, .packed)
        XCTAssertTrue(backend.summary.contains("built-in AVX2 product"), backend.summary)
        let results = try BackendCheck(candidate: backend, reference: CPUBackend(useBLAS: false)).run()
        XCTAssertGreaterThan(results.count, 200)
        let failed = results.filter { !$0.passed }
        XCTAssertTrue(failed.isEmpty, "failed: \(failed.map { "\($0.name) \($0.sizes) \($0.relativeError)" })")
    }
}

/// One claimed product's arguments, for `testClaimedProductHasThePackedProductsBits`'s takers.
private struct ClaimedTestJob: @unchecked Sendable {
    let m, n, k: Int
    let a, b: [Float]
    let aRow, aDepth, bDepth, bColumn: Int
    let c: UnsafeMutablePointer<Float>
    let chunk: Int
    let next: UnsafeMutablePointer<Int>
    let splitsColumns: Int32
    let avx512: Bool
    var aRows: [Int]? = nil
    var bDepths: [Int]? = nil

    func take() {
        withOptionalPointer(aRows) { aRows in
            withOptionalPointer(bDepths) { bDepths in
                if avx512 {
                    mlpkit_claimed_product_avx512(m, n, k, a, aRow, aDepth, aRows, b, bDepth, bColumn, bDepths, c, n, chunk, next,
                                                  splitsColumns, nil, 0, nil)
                } else {
                    mlpkit_claimed_product_avx2(m, n, k, a, aRow, aDepth, aRows, b, bDepth, bColumn, bDepths, c, n, chunk, next,
                                                splitsColumns)
                }
            }
        }
    }
}

/// `body` with the array's elements, or nil.
private func withOptionalPointer<R>(_ array: [Int]?, _ body: (UnsafePointer<Int>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
