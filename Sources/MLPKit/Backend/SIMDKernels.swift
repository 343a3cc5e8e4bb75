import CMLPKitSIMD
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CPU backend's AVX2 paths (`Sources/CMLPKitSIMD`): Adam eight parameters at a time with
/// the Swift loop's exact operations, and a register-blocked product for small matrices, where
/// a BLAS call's fixed cost is most of the time. The package is compiled for baseline x86-64,
/// so these run only where the processor has AVX2 and FMA; `MLPKIT_SIMD=0` turns them off.
enum SIMDKernels {
    /// Whether the AVX2 paths run in this process.
    static let enabled: Bool = {
        if let value = getenv("MLPKIT_SIMD"), String(cString: value) == "0" { return false }
        return mlpkit_simd_available() != 0
    }()

    /// Whether the small product and the packed product run with AVX-512 registers (the same bits
    /// as with AVX2, faster where the processor has AVX-512); `MLPKIT_AVX512=0` keeps them on AVX2.
    static let avx512: Bool = {
        if let value = getenv("MLPKIT_AVX512"), String(cString: value) == "0" { return false }
        return enabled && mlpkit_avx512_level() > 0
    }()

    /// Whether e^x (cross-entropy's, σ's) is taken by `mlpkit_expf_avx512`: where there is AVX-512
    /// and it gives this process's expf bits on a sample. It follows glibc's expf (2.28 and later);
    /// another C library's may round differently, and the scalar loops then serve, so that the
    /// bits never depend on whether the processor has AVX-512.
    static let vectorExp: Bool = avx512 && agreesOnASample(mlpkit_expf_avx512, expf, within: 0x1.5p6)

    /// Whether tanh (the activation's, GELU's) is taken by `mlpkit_tanh_avx512`: wherever there is
    /// AVX-512. It is MLPKit's own tanh (`tanh.c`), which the scalar `mlpkit_tanh` computes with the
    /// same operations, so the bits do not depend on the processor or the C library.
    static let vectorTanh: Bool = avx512

    /// Whether log(1 + x) (binary cross-entropy's, of e^−|z| in [0, 1]) is taken by
    /// `mlpkit_log1pf_avx512`: where there is AVX-512 and it gives this process's log1pf bits on a
    /// sample (it follows glibc 2.36's log1pf, fdlibm's).
    static let vectorLog1p: Bool = avx512 && agreesOnASample(mlpkit_log1pf_avx512, log1pf, within: 1)

    /// Whether `vector` gives `scalar`'s bits on about 8,000 floats: ± every one whose bits are a
    /// multiple of a stride from 2⁻³⁰ to `limit`, and the edges. About 0.1 ms, once.
    static func agreesOnASample(_ vector: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void,
                                _ scalar: (Float) -> Float, within limit: Float) -> Bool {
        let tiny = Float(bitPattern: 0x3080_0000)
        var inputs: [Float] = [0, -0, limit, -limit, .infinity, -.infinity, .nan]
        let step = max(1, Int(limit.bitPattern - tiny.bitPattern) / 4000)
        for bits in stride(from: tiny.bitPattern, through: limit.bitPattern, by: step) {
            inputs += [Float(bitPattern: bits), -Float(bitPattern: bits)]
        }
        var outputs = [Float](repeating: 0, count: inputs.count)
        vector(inputs, &outputs, inputs.count)
        return zip(inputs, outputs).allSatisfy { x, y in
            let expected = scalar(x)
            return y.bitPattern == expected.bitPattern || (y.isNaN && expected.isNaN)
        }
    }

    /// Whether a product goes to the packed product even where a BLAS is installed: with AVX-512,
    /// the mid-size ones (`BLASLibrary.splitFrom` up to `BLASLibrary.singleThreadBelow`
    /// multiply-adds, the mnist step's five largest), which the BLAS would run as one-thread
    /// halves. On the 2-core Xeon with AVX-512, OpenBLAS 0.3.21's SkylakeX kernels ran those
    /// halves at well under half the processor's peak, and the packed product split over both
    /// cores took mnist's step from 0.91–0.97 to 0.78–0.83 ms (`mlp bench --steps 100`, two
    /// alternating rounds). The larger products stay with the BLAS's own threads (wide: 87–92 ms
    /// with OpenBLAS against 99–102 with the packed product). `MLPKIT_AVX512=0` turns it off.
    static func prefersPackedProduct(m: Int, n: Int, k: Int) -> Bool {
        guard avx512 else { return false }
        let work = BLASLibrary.multiplyAdds(m: m, n: n, k: k)
        return work >= BLASLibrary.splitFrom && work < BLASLibrary.singleThreadBelow
    }

    /// Products with at most this many multiply-adds (tiny's 64³, mnist's three 10-wide ones)
    /// take the small-product kernel: on the 2-core machine it ran tiny's eight products in
    /// 41 µs against OpenBLAS's 48 µs (a 64³ NN product at 72 against 50–54 GFLOP/s).
    static let smallProductLimit = 1 << 18

    /// C = op(A)·op(B) (overwriting C) with the small-product kernel, when the product is small
    /// enough and the kernel takes it; false when the caller must do it.
    @inline(__always)
    static func smallProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, enabled: Bool = enabled, avx512: Bool = avx512
    ) -> Bool {
        guard enabled, m > 0, n > 0, k > 0, BLASLibrary.multiplyAdds(m: m, n: n, k: k) <= smallProductLimit else { return false }
        let code: Int32
        switch layout {
        case .nt: code = 0
        case .tn: code = 1
        case .nn: code = 2
        }
        return avx512 ? mlpkit_small_product_avx512(code, m, n, k, a, b, c) != 0 : mlpkit_small_product_avx2(code, m, n, k, a, b, c) != 0
    }

    /// The depths up to which an NT or NN product takes the shallow kernel, and the most
    /// elements of an NT product's B it transposes for it (on the stack).
    static let shallowDepth = 16
    static let shallowTransposeLimit = 1 << 12
    /// The widths up to which a TN product's C takes the thin kernel (n) or the short one (m)
    /// (the C kernels' FEW_MOST). From 4 to 16 (and the depth from 8 to 16), [13,256,256,1] at
    /// batch 4096, its first layer's backward phase 1.35–1.38 → 0.72–0.75 ms and its step
    /// 9.9–10.1 → 9.3–9.5 ms (`mlp bench --layers … --batch-size 4096 --steps 100 --breakdown`,
    /// two pairs); [8,512,512,8] 2.4 → 1.04 ms and 28.3–28.5 → 27.5–27.6 ms.
    static let thinWidth = 16
    /// The most columns of C (n) for which an NT product deeper than `shallowDepth` takes the
    /// narrow kernel (the C kernel's NARROW_MOST).
    static let narrowWidth = 12
    /// Products within `smallProductLimit` whose largest operand has at least this many elements
    /// take a skinny kernel where one does (the shallow one with the delta's ReLU mask), split
    /// over the threads where they are large enough (a 64-wide layer at batch 4096: the last
    /// layer's forward product 4096×1×64 reads 1 MB, its delta 4096×64×1 writes 1 MB), instead
    /// of the one-thread small product, whose 6×32 tiles are mostly padding there. From 2¹⁶ down
    /// to 2¹² (`--breakdown`, alternating): mnist's last backward phase 14.0–14.2 → 10.2 µs (its
    /// 10×128×128 weight gradient and 128×128×10 delta), tiny 25.9–26.6 → 25.1–26.1 µs (its last
    /// layer's three products), [2,128,128,1] at batch 128 165–167 → 149–150 µs; at 2¹⁰, level.
    static let skinnyOperandFrom = 1 << 12

    /// Which of `skinnyProduct`'s kernels takes this product, if any: with AVX-512, above the
    /// small product's size, an NT or NN product of depth at most `shallowDepth` (a field's
    /// coordinates, a table's dozen columns, a few outputs' deltas), a TN one whose C has at
    /// most `thinWidth` columns or rows (the first layer's and the last layer's weight gradients),
    /// and a deeper NT one whose C has at most `narrowWidth` columns (a regression's last layer).
    enum SkinnyKernel { case shallow, thin, short, narrow }

    static func skinnyKernel(_ layout: ProductLayout, m: Int, n: Int, k: Int, avx512: Bool = avx512) -> SkinnyKernel? {
        guard avx512, m > 0, n > 0, k > 0,
              BLASLibrary.multiplyAdds(m: m, n: n, k: k) > smallProductLimit || max(m * k, k * n, m * n) >= skinnyOperandFrom
        else { return nil }
        switch layout {
        case .nn: return k <= shallowDepth ? .shallow : nil
        case .nt: return k <= shallowDepth ? (n * k <= shallowTransposeLimit ? .shallow : nil) : n <= narrowWidth ? .narrow : nil
        case .tn: return n <= thinWidth ? .thin : m <= thinWidth ? .short : nil
        }
    }

    private struct SkinnyJob {
        var m, n, k: Int
        var a, b: UnsafePointer<Float>
        var c: UnsafeMutablePointer<Float>
        var kernel: SkinnyKernel
        var bias: UnsafePointer<Float>?
        var function: SkinnyFunction
        var source: UnsafePointer<Float>?
    }

    /// The activations the shallow kernel's epilogue computes (the C kernel's codes).
    enum SkinnyFunction: Int32 { case identity = 0, relu = 1, tanh = 2 }

    /// A product epilogue the shallow kernel applies to each row of C while it is in the registers.
    enum SkinnyEpilogue {
        case none
        /// f(C + bias), bias n floats.
        case bias(UnsafePointer<Float>, function: SkinnyFunction)
        /// C·f′(source), source m×n (for ReLU: C where source > 0, else +0).
        case derivative(UnsafePointer<Float>, function: SkinnyFunction)

        /// The C kernels' three epilogue arguments (bias, f, source): nil, identity, nil for none.
        var arguments: (bias: UnsafePointer<Float>?, function: SkinnyFunction, source: UnsafePointer<Float>?) {
            switch self {
            case .none: (nil, .identity, nil)
            case let .bias(bias, function): (bias, function, nil)
            case let .derivative(source, function): (nil, function, source)
            }
        }

        /// Whether there is an epilogue to apply.
        var isNone: Bool {
            if case .none = self { true } else { false }
        }
    }

    /// C = op(A)·op(B) (overwriting C) by the kernel `skinnyKernel` names, with the packed
    /// product's bits (each element's chain of fused multiply-adds over each depth block of 512 in
    /// order, the blocks added in turn), split over the threads by rows of C (shallow, thin,
    /// narrow) or columns (short). The packed product's 8×32 tiles spend most of their work on
    /// padding there: [2,256,256,256,3] at batch 4096, the first layer's product ran at 10 GFLOP/s
    /// and its weight gradient at 3. False when no such kernel takes it.
    static func skinnyProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, avx512: Bool = avx512
    ) -> Bool {
        skinnyProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: .none, avx512: avx512) != nil
    }

    /// `skinnyProduct`, and the epilogue where the kernel takes it (the shallow one: a first
    /// layer's bias and ReLU or tanh, a delta's ReLU mask or tanh derivative, element by element
    /// as the CPU backend's passes, so the same bits, without reading C again). Nil when no kernel
    /// takes the product, else whether the epilogue was applied (the caller applies it if not).
    static func skinnyProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, epilogue: SkinnyEpilogue, avx512: Bool = avx512
    ) -> Bool? {
        guard let kernel = skinnyKernel(layout, m: m, n: n, k: k, avx512: avx512) else { return nil }
        // only the shallow kernel takes an epilogue
        let (bias, function, source) = kernel == .shallow ? epilogue.arguments : SkinnyEpilogue.none.arguments
        let applies = bias != nil || source != nil
        func run(_ b: UnsafePointer<Float>) {
            var job = SkinnyJob(m: m, n: n, k: k, a: a, b: b, c: c, kernel: kernel, bias: bias, function: function, source: source)
            // the shallow kernel in chunks of about 16K values of C, the narrow one of about 64K of
            // A (whole tiles of 16 rows); the TN kernels, which read all of the long operand for
            // their share of C, in one block a thread (whole vectors)
            let (extent, chunk) = switch kernel {
            case .shallow: (m, max(1, (1 << 14) / n))
            case .narrow: (m, max(16, (1 << 16) / k / 16 * 16))
            case .thin: (m, ParallelChunks.blockWidth(m, pieces: ParallelChunks.threads, multiple: 16))
            case .short: (n, ParallelChunks.blockWidth(n, pieces: ParallelChunks.threads, multiple: 16))
            }
            let parallel = BLASLibrary.multiplyAdds(m: m, n: n, k: k) >= BLASLibrary.splitFrom || m * n >= ParallelChunks.elementwiseThreshold
            withUnsafePointer(to: &job) { context in
                ParallelChunks.forEach(count: extent, chunk: chunk, parallel: parallel, staysAwake: true, context: context) { context, start, end in
                    let job = context.assumingMemoryBound(to: SkinnyJob.self).pointee
                    switch job.kernel {
                    case .shallow: mlpkit_shallow_product_avx512(job.n, job.k, job.a, job.b, job.c, start, end, job.bias,
                                                                 job.function.rawValue, job.source)
                    case .thin: mlpkit_thin_tn_product_avx512(job.m, job.n, job.k, job.a, job.b, job.c, start, end)
                    case .short: mlpkit_short_tn_product_avx512(job.m, job.n, job.k, job.a, job.b, job.c, start, end)
                    case .narrow: mlpkit_narrow_nt_product_avx512(job.n, job.k, job.a, job.b, job.c, start, end)
                    }
                }
            }
        }
        if layout == .nt, kernel == .shallow {
            // B (n×k) as B̃ = Bᵀ (k×n), on the stack
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n * k) { transposed in
                let bt = transposed.baseAddress!
                for j in 0..<n {
                    for p in 0..<k { bt[p * n + j] = b[j * k + p] }
                }
                run(UnsafePointer(bt))
            }
        } else {
            run(b)
        }
        return applies
    }

    private struct PackedProductJob {
        var m, n, k, aRow, aDepth, bDepth, bColumn: Int
        var a, b: UnsafePointer<Float>
        var c: UnsafeMutablePointer<Float>
        var splitsColumns: Bool
        var avx512: Bool
        // op(A)'s rows and depths and op(B)'s depths picked from larger matrices (nil: in order)
        var aRows: UnsafePointer<Int>? = nil
        var aDepths: UnsafePointer<Int>? = nil
        var bDepths: UnsafePointer<Int>? = nil
        // B or C kept in panels of 32 (`mlpkit_panel_product_avx512`'s bPanel and cPanel; 0: not)
        var bPanel = 0
        var cPanel = 0
        // C's leading dimension
        var ldc: Int
        // the epilogue the AVX-512 claimed product applies (`take`)
        var bias: UnsafePointer<Float>? = nil
        var function: SkinnyFunction = .identity
        var source: UnsafePointer<Float>? = nil
        // the product's layout, which `ownedBlocksProduct` cuts by
        var layout: ProductLayout = .nn

        /// The job for op(A)·op(B) in `layout` (its operands' strides), split by columns where C is
        /// wider than tall.
        init(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
             c: UnsafeMutablePointer<Float>, avx512: Bool) {
            (self.m, self.n, self.k, self.a, self.b, self.c, self.avx512, self.layout) = (m, n, k, a, b, c, avx512, layout)
            (aRow, aDepth, bDepth, bColumn) = layout.operandStrides(m: m, n: n, k: k)
            splitsColumns = n > m
            ldc = n
        }

        /// Sets the epilogue where the claimed AVX-512 product takes this product; whether it did.
        mutating func take(_ epilogue: SkinnyEpilogue) -> Bool {
            guard avx512, !epilogue.isNone else { return false }
            (bias, function, source) = epilogue.arguments
            return true
        }
    }

    /// Whether `packedProduct` takes this product in claimed chunks (`claimedProduct`).
    static func claimsProduct(m: Int, n: Int, k: Int, enabled: Bool = enabled) -> Bool {
        enabled && claimsChunks && BLASLibrary.multiplyAdds(m: m, n: n, k: k) >= BLASLibrary.splitFrom
            && (n > m ? m : n) * k <= claimedOperandLimit
    }

    /// Whether `selectedRowsProduct` reads the selected rows where they lie at full speed: in the
    /// claimed product, whose packing of B takes B's depths (TN's batch rows) by index, and whose
    /// AVX-512 kernel reads A's rows (NT's and NN's batch rows) through row pointers.
    static func readsSelectedRows(_ layout: ProductLayout, m: Int, n: Int, k: Int, enabled: Bool = enabled,
                                  avx512: Bool = avx512) -> Bool {
        claimsProduct(m: m, n: n, k: k, enabled: enabled) && (layout == .tn || avx512)
    }

    /// C = op(A)·op(B) (overwriting C) through the claimed product with the batch operand's rows
    /// picked by `rows` (op(A)'s rows for NT and NN, op(B)'s depths for TN, each an index into
    /// the operand's rows): the bits of the same product of the gathered rows. False when the
    /// product is not one `readsSelectedRows` takes; the caller must then gather.
    static func selectedRowsProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, rows: UnsafePointer<Int>, enabled: Bool = enabled, avx512: Bool = avx512
    ) -> Bool {
        selectedRowsProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, rows: rows, epilogue: .none, enabled: enabled,
                            avx512: avx512) != nil
    }

    /// `selectedRowsProduct`, and the epilogue where the claimed AVX-512 product takes it: nil
    /// when the product is not taken, else whether the epilogue was applied.
    static func selectedRowsProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, rows: UnsafePointer<Int>, epilogue: SkinnyEpilogue, enabled: Bool = enabled,
        avx512: Bool = avx512
    ) -> Bool? {
        guard readsSelectedRows(layout, m: m, n: n, k: k, enabled: enabled, avx512: avx512) else { return nil }
        if layout == .tn, depthBlocksProduct(m: m, n: n, k: k, a: a, b: b, c: c, bDepths: rows, enabled: enabled, avx512: avx512) {
            return false
        }
        var job = PackedProductJob(layout, m: m, n: n, k: k, a: a, b: b, c: c, avx512: avx512)
        if layout == .tn { job.bDepths = rows } else { job.aRows = rows }
        let applies = job.take(epilogue)
        claimedProduct(job)
        return applies
    }

    /// C = op(A)·op(B) (overwriting C) with the packed product (`mlpkit_packed_product_avx2`),
    /// the CPU backend's product where no BLAS is installed. From `BLASLibrary.splitFrom`
    /// multiply-adds C is split into one block per thread (the calling thread and
    /// `ParallelChunks`'s helpers): blocks of rows when C is at least as tall as it is wide
    /// (each thread then packs all of B), else of columns (each packs all of A), so that the
    /// larger operand is packed once; where that other operand is at most `claimedOperandLimit`
    /// elements (mnist's five mid-size products), in chunks that the threads claim as they go
    /// instead (`claimsChunks`). Each element's sums do not depend on its block, so the bits
    /// are those of one call on any number of cores. False when the caller must do it.
    static func packedProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, enabled: Bool = enabled, avx512: Bool = avx512
    ) -> Bool {
        packedProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: .none, enabled: enabled, avx512: avx512) != nil
    }

    /// `packedProduct`, and the epilogue where its claimed chunks take the product with AVX-512
    /// (each tile's final sums through `epilogue16.h` while in the registers, as the backend's
    /// passes compute it, instead of a pass over C afterwards): nil when the product is not
    /// taken, else whether the epilogue was applied (the caller applies it if not).
    static func packedProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, epilogue: SkinnyEpilogue, enabled: Bool = enabled, avx512: Bool = avx512
    ) -> Bool? {
        guard enabled else { return nil }
        var job = PackedProductJob(layout, m: m, n: n, k: k, a: a, b: b, c: c, avx512: avx512)
        let splitsColumns = job.splitsColumns
        let parallel = BLASLibrary.multiplyAdds(m: m, n: n, k: k) >= BLASLibrary.splitFrom
        if layout == .tn, depthBlocksProduct(m: m, n: n, k: k, a: a, b: b, c: c, enabled: enabled, avx512: avx512) {
            return false
        }
        if claimsProduct(m: m, n: n, k: k, enabled: enabled) {
            let applies = job.take(epilogue)
            claimedProduct(job)
            return applies
        }
        // blocks of whole tiles (six rows, or sixteen columns; eight and 32 with AVX-512)
        let (extent, tile) = splitsColumns ? (n, avx512 ? 32 : 16) : (m, avx512 ? 8 : 6)
        let width = parallel ? ParallelChunks.blockWidth(extent, pieces: ParallelChunks.threads, multiple: tile) : max(extent, 1)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: extent, chunk: width, parallel: parallel, staysAwake: true, context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: PackedProductJob.self).pointee
                let product = job.avx512 ? mlpkit_packed_product_avx512 : mlpkit_packed_product_avx2
                if job.splitsColumns {
                    product(job.m, end - start, job.k, job.a, job.aRow, job.aDepth, job.b + start * job.bColumn, job.bDepth,
                            job.bColumn, job.c + start, job.n)
                } else {
                    product(end - start, job.n, job.k, job.a + start * job.aRow, job.aRow, job.aDepth, job.b, job.bDepth,
                            job.bColumn, job.c + start * job.n, job.n)
                }
            }
        }
        return false
    }

    /// The packed product's depth block (simd.c's PACKED_KC): each element of C is one chain of
    /// fused multiply-adds from zero per block of this many depths, the blocks' sums added in turn.
    static let packedDepthBlock = 512

    /// Whether `depthBlocksProduct` takes a TN product: split ones (`BLASLibrary.splitFrom`
    /// multiply-adds or more) at least two depth blocks deep whose depth is at least
    /// `depthBlockRatio` times C's larger side (a narrow layer's weight gradient over a large
    /// batch), with the blocks' sums for C held in at most `depthBlockScratch` floats.
    static func takesDepthBlocks(m: Int, n: Int, k: Int, enabled: Bool = enabled) -> Bool {
        guard enabled, m > 0, n > 0, k > packedDepthBlock, BLASLibrary.multiplyAdds(m: m, n: n, k: k) >= BLASLibrary.splitFrom,
              k >= depthBlockRatio * max(m, n) else { return false }
        let blocks = (k + packedDepthBlock - 1) / packedDepthBlock
        let (scratch, overflow) = (m * n).multipliedReportingOverflow(by: blocks - 1)
        return !overflow && scratch <= depthBlockScratch
    }

    static let depthBlockRatio = 8
    static let depthBlockScratch = 1 << 20

    private struct DepthBlocksJob {
        var m, n, k: Int
        var a, b: UnsafePointer<Float>
        var bDepths: UnsafePointer<Int>?
        var c, scratch: UnsafeMutablePointer<Float>
        var avx512: Bool
    }

    /// C = Aᵀ·B (A k×m, B k×n, or B's depths picked by `bDepths`) with the packed product's bits,
    /// its depth blocks taken by the threads as they come instead of C's rows: each block's sums
    /// (one chain from zero, as the packed product makes them) into C or a scratch C, then added
    /// to C in the blocks' order, as the packed product adds them. A TN product with a small C
    /// and a deep batch had two chunks of C's rows at most, each thread packing all of B over the
    /// whole depth: [32,64,64,1] at batch 4096, its 64×64×4096 weight gradient took 427 µs a
    /// product (78 GFLOP/s). False when the product is not one `takesDepthBlocks` takes (or
    /// there is no memory for the scratch); the caller must then do it.
    static func depthBlocksProduct(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
        bDepths: UnsafePointer<Int>? = nil, enabled: Bool = enabled, avx512: Bool = avx512
    ) -> Bool {
        guard takesDepthBlocks(m: m, n: n, k: k, enabled: enabled) else { return false }
        let blocks = (k + packedDepthBlock - 1) / packedDepthBlock
        guard let scratch = malloc((blocks - 1) * m * n * MemoryLayout<Float>.stride)?
            .bindMemory(to: Float.self, capacity: (blocks - 1) * m * n) else { return false }
        defer { free(scratch) }
        var job = DepthBlocksJob(m: m, n: n, k: k, a: a, b: b, bDepths: bDepths, c: c, scratch: scratch, avx512: avx512)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: blocks, chunk: 1, parallel: true, staysAwake: true, context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: DepthBlocksJob.self).pointee
                let (m, n) = (job.m, job.n)
                for block in start..<end {
                    let from = block * SIMDKernels.packedDepthBlock, depth = min(SIMDKernels.packedDepthBlock, job.k - from)
                    let target = block == 0 ? job.c : job.scratch + (block - 1) * m * n
                    // one depth block: its chain from zero, as the packed product makes it
                    var next = 0
                    let (a, b, depths) = (job.a + from * m, job.bDepths == nil ? job.b + from * n : job.b, job.bDepths.map { $0 + from })
                    if job.avx512 {
                        mlpkit_claimed_product_avx512(m, n, depth, a, 1, m, nil, b, n, 1, depths, target, n, max(m, 1), &next, 0, nil, 0, nil)
                    } else {
                        mlpkit_claimed_product_avx2(m, n, depth, a, 1, m, nil, b, n, 1, depths, target, n, max(m, 1), &next, 0)
                    }
                }
            }
        }
        // the blocks' sums added in their order
        for block in 1..<blocks {
            let sums = scratch + (block - 1) * m * n
            for i in 0..<(m * n) { c[i] += sums[i] }
        }
        return true
    }

    /// Whether split products up to `claimedOperandLimit` are cut into chunks that the threads
    /// claim as they go (`MLPKIT_CLAIMED=0`: one fixed block per thread). On the 2-core Xeon,
    /// whose cores slow down one at a time from moment to moment, a fixed block waits for the
    /// slower core; with claimed chunks the faster core takes more. The mnist step, switched every
    /// 20 steps in one process (`mlp bench --config mnist --steps 3000`, twelve runs): medians 2%
    /// faster (0.87–1.04 times; by up to 13% where the host was slow), 1% slower in its fastest
    /// minutes (the chunks' own cost).
    static let claimsChunks: Bool = getenv("MLPKIT_CLAIMED").map { String(cString: $0) != "0" } ?? true

    /// The largest operand (elements) that each thread packs whole for a claimed product: 1 MiB.
    static let claimedOperandLimit = 1 << 18

    /// Claimed chunks: 64 columns of C (two AVX-512 tiles, four AVX2 ones), or 36 rows (six of the
    /// AVX2 kernel's six-row tiles; with AVX-512, 32 rows, four eight-row tiles). Chunks of 32
    /// columns or 24 rows, seven runs as above: 3–4% slower than fixed halves in the host's fast
    /// stretches, and no faster than these chunks in its slow ones.
    static let claimedColumns = 64
    /// A weight gradient in panels (`panelWeightGradient`) in chunks of up to 128 of dW's rows
    /// (four panels, 64 KiB of the batch's deltas at mnist's batch): each tile of the batch packed
    /// once a chunk. mnist's 128 rows a thread in one chunk: backward 1 183.5–184.7 → 177.3–179.5
    /// µs, against level in chunks of 64 (each tile packed twice); [784,1024,1024,10] at batch 128
    /// (512 rows a thread) in chunks of 64 to 512: all within the noise (5.53–5.67 ms a step, the
    /// build before 5.55–5.66).
    static let panelGradientColumns = 128
    static let claimedRows = 36
    static let claimedRows512 = 32

    /// A split product whose chunks the threads claim as they go (`mlpkit_claimed_product_avx512`).
    private struct ClaimedProductJob {
        var product: PackedProductJob
        var next: UnsafeMutablePointer<Int>
    }

    /// C = op(A)·op(B) through `mlpkit_claimed_product_*` on the calling thread and
    /// `ParallelChunks`'s helpers: one pass whose every taker claims chunks from one counter until
    /// none is left (a taker that arrives late finds none and returns). The same bits as one call.
    private static func claimedProduct(_ product: PackedProductJob, owning: Bool = true) {
        if owning, splitsByOwnedRows(product.layout, m: product.m, n: product.n, k: product.k, avx512: product.avx512) {
            ownedBlocksProduct(product)
            return
        }
        // the counter on this thread's stack, not the heap (no allocation inside a step); every
        // taker is done with it when `forEach` returns
        var counter = 0
        withUnsafeMutablePointer(to: &counter) { next in
            var job = ClaimedProductJob(product: product, next: next)
            withUnsafePointer(to: &job) { context in
                ParallelChunks.forEach(count: ParallelChunks.threads, chunk: 1, parallel: true, staysAwake: true, context: context) { context, _, _ in
                    let job = context.assumingMemoryBound(to: ClaimedProductJob.self).pointee
                    let p = job.product
                    let chunk = p.splitsColumns ? SIMDKernels.claimedColumns : p.avx512 ? SIMDKernels.claimedRows512 : SIMDKernels.claimedRows
                    if p.avx512 {
                        mlpkit_panel_product_avx512(p.m, p.n, p.k, p.a, p.aRow, p.aDepth, p.aRows, p.aDepths, p.b, p.bDepth, p.bColumn,
                                                    p.bDepths, p.bPanel, p.c, p.ldc, p.cPanel, chunk, job.next, p.splitsColumns ? 1 : 0,
                                                    p.bias, p.function.rawValue, p.source)
                    } else {
                        mlpkit_claimed_product_avx2(p.m, p.n, p.k, p.a, p.aRow, p.aDepth, p.aRows, p.b, p.bDepth, p.bColumn, p.bDepths,
                                                    p.c, p.n, chunk, job.next, p.splitsColumns ? 1 : 0)
                    }
                }
            }
        }
    }

    /// Whether claimed products that `splitsByOwnedRows` takes are cut into one fixed block a
    /// thread (`MLPKIT_OWNED=0`: claimed chunks, as before).
    static let ownsBlocks: Bool = getenv("MLPKIT_OWNED").map { String(cString: $0) != "0" } ?? true

    /// The rows of a weight with `rows` rows in each thread's block: the same cut for a layer's
    /// forward product (C's columns, W's rows), its weight gradient (C's rows) and Adam
    /// (`ElementwiseKernels.adam` with a layout), so that each thread reads and writes the rows of
    /// W, dW, m and v that it wrote the last time, in its own core's caches. Blocks of whole
    /// AVX-512 tiles of C's columns (32).
    static func ownedBlockWidth(_ rows: Int) -> Int {
        ParallelChunks.blockWidth(rows, pieces: ParallelChunks.threads, multiple: 32)
    }

    /// Whether a claimed AVX-512 product is cut into one fixed block a thread by the rows of the
    /// weight it reads or writes (`ownedBlockWidth`): an NT product (a forward product, C = A·Wᵀ)
    /// by C's columns where W has at least as many rows as the batch (n ≥ m), a TN one (a weight
    /// gradient, dW = dZᵀ·A) by C's rows where dW has at least as many rows as the batch (m ≥ k).
    /// Where the batch is the larger operand ([32,64,64,1] at batch 4096), each thread reading all
    /// of it costs more than the weight's rows gain: 6% slower steps there, so claimed chunks stay.
    static func splitsByOwnedRows(_ layout: ProductLayout, m: Int, n: Int, k: Int, avx512: Bool = avx512,
                                  owns: Bool = ownsBlocks) -> Bool {
        guard owns, avx512, ParallelChunks.threads > 1 else { return false }
        switch layout {
        case .nt: return n >= m && ownedBlockWidth(n) < n
        case .tn: return m >= k && ownedBlockWidth(m) < m
        case .nn: return false
        }
    }

    /// `claimedProduct` in one fixed block a thread (`splitsByOwnedRows`): block i goes first to
    /// thread i (an owned `ParallelChunks` pass, as Adam's rows), and within its block a thread
    /// takes the claimed product's chunks in turn. Each element's sums do not depend on its block:
    /// the same bits.
    private static func ownedBlocksProduct(_ p: PackedProductJob, byColumns: Bool? = nil) {
        let byColumns = byColumns ?? (p.layout == .nt)
        let extent = byColumns ? p.n : p.m
        var job = p
        job.splitsColumns = byColumns
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: extent, chunk: ownedBlockWidth(extent), parallel: true, staysAwake: true, owned: true,
                                   context: context) { context, start, end in
                let p = context.assumingMemoryBound(to: PackedProductJob.self).pointee
                var next = 0
                if p.splitsColumns {
                    // the block's first column of B and C (a panel's first, where either is kept in panels: blocks of whole 32s)
                    let b = p.bPanel > 0 ? p.b + start / SIMDKernels.weightPanel * p.bPanel : p.b + start * p.bColumn
                    let c = p.cPanel > 0 ? p.c + start / SIMDKernels.weightPanel * p.cPanel : p.c + start
                    // C in panels (a weight gradient in panels): chunks of up to `panelGradientColumns`,
                    // over whose columns the C kernel packs each tile of A once
                    let chunk = p.cPanel > 0 ? min(end - start, SIMDKernels.panelGradientColumns) : SIMDKernels.claimedColumns
                    mlpkit_panel_product_avx512(p.m, end - start, p.k, p.a, p.aRow, p.aDepth, p.aRows, p.aDepths, b, p.bDepth, p.bColumn,
                                                p.bDepths, p.bPanel, c, p.ldc, p.cPanel, chunk, &next, 1,
                                                p.bias.map { $0 + start }, p.function.rawValue, p.source.map { $0 + start })
                } else {
                    mlpkit_panel_product_avx512(end - start, p.n, p.k, p.aRows == nil ? p.a + start * p.aRow : p.a, p.aRow, p.aDepth,
                                                p.aRows.map { $0 + start }, p.aDepths, p.b, p.bDepth, p.bColumn, p.bDepths, p.bPanel,
                                                p.c + start * p.ldc, p.ldc, p.cPanel, SIMDKernels.claimedRows512, &next, 0, p.bias,
                                                p.function.rawValue, p.source.map { $0 + start * p.ldc })
                }
            }
        }
    }

    /// The panel width of a weight kept in its forward product's packed order (`panelForward`).
    static let weightPanel = 32

    /// Z = A·Wᵀ (m×n) and the epilogue, W (n×k) kept in panels of 32 of its rows, each k×32 with
    /// the rows side by side (W(j, p) at w[(j / 32)·32k + 32p + j % 32]): the order in which the
    /// claimed product packs B, so that it packs nothing. A's rows where they lie (`rows`, or
    /// 0..<m of `a`). For a product that `readsSelectedRows(.nt, …)` takes with n a multiple of
    /// 32; the bits of that product of the weight in rows. Whether it applied the epilogue.
    static func panelForward(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, rows: UnsafePointer<Int>?, panels: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, epilogue: SkinnyEpilogue
    ) -> Bool {
        var job = PackedProductJob(.nt, m: m, n: n, k: k, a: a, b: panels, c: c, avx512: true)
        job.aRows = rows
        job.bPanel = k * weightPanel
        let applies = job.take(epilogue)
        claimedProduct(job)
        return applies
    }

    /// dW = dZᵀ·A (n×k from dZ, rows×n, and A, rows×k) written in `panelForward`'s panels, as
    /// its transpose dWᵀ = Aᵀ·dZ with C kept in panels of 32 columns (each element the same chain
    /// of fused multiply-adds over the batch, a·b for b·a: the bits of the TN product in rows).
    /// A's rows where they lie (`rows`, or 0..<batch of `a`). Cut by dW's rows as the forward
    /// product and Adam cut them (`ownedBlockWidth`), or in claimed chunks of 64 of them. n a
    /// multiple of 32.
    static func panelWeightGradient(
        n: Int, k: Int, batch: Int, delta: UnsafePointer<Float>, a: UnsafePointer<Float>, rows: UnsafePointer<Int>?,
        panels: UnsafeMutablePointer<Float>
    ) {
        var job = PackedProductJob(.tn, m: k, n: n, k: batch, a: a, b: delta, c: panels, avx512: true)
        job.aDepths = rows
        job.cPanel = k * weightPanel
        job.ldc = weightPanel
        job.splitsColumns = true
        if splitsByOwnedRows(.tn, m: n, n: k, k: batch) {
            ownedBlocksProduct(job, byColumns: true)
        } else {
            claimedProduct(job, owning: false)
        }
    }

    /// The packed product's fallback where its packing buffers cannot be allocated (the same
    /// sums, element by element), for the tests.
    static func unpackedProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>
    ) {
        let (aRow, aDepth, bDepth, bColumn) = layout.operandStrides(m: m, n: n, k: k)
        mlpkit_unpacked_product_avx2(m, n, k, a, aRow, aDepth, nil, b, bDepth, bColumn, nil, c, n)
    }

    /// Adam over parameters start..<end of `job` (same bits as `ElementwiseKernels.adamRange`'s
    /// loops), sixteen at a time where there is AVX-512: there the bias corrections' divisions and
    /// the square root are done by fused multiply-adds, correctly rounded, so the divider has one
    /// division a parameter instead of three operations.
    @inline(__always)
    static func adam(_ job: ElementwiseKernels.AdamJob, start: Int, end: Int, avx512: Bool = avx512) {
        withUnsafePointer(to: job) { avx512 ? mlpkit_adam_avx512($0, start, end) : mlpkit_adam_avx2($0, start, end) }
    }
}
