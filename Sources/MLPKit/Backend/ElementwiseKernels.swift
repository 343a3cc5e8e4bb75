import CMLPKitSIMD
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CPU backend's fused element-wise passes: each reads and writes its data once.
enum ElementwiseKernels {
    /// C[i, j] += bias[j], then max(0, ·) when `relu`.
    @inline(__always)
    static func addBias(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>, relu: Bool) {
        for i in 0..<rows {
            let row = c + i * columns
            if relu {
                for j in 0..<columns { row[j] = max(row[j] + bias[j], 0) }
            } else {
                for j in 0..<columns { row[j] += bias[j] }
            }
        }
    }

    private struct BiasJob {
        var c: UnsafeMutablePointer<Float>
        var bias: UnsafePointer<Float>
        var columns: Int
        var relu: Bool
    }

    /// `addBias`, split across threads by rows for a large C (the same bits: element-wise).
    static func addBiasSplit(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>, relu: Bool) {
        var job = BiasJob(c: c, bias: bias, columns: columns, relu: relu)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.rows(rows, columns: columns, context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: BiasJob.self).pointee
                ElementwiseKernels.addBias(job.c + start * job.columns, rows: end - start, columns: job.columns,
                                           bias: job.bias, relu: job.relu)
            }
        }
    }

    private struct MaskJob {
        var c: UnsafeMutablePointer<Float>
        var activation: UnsafePointer<Float>
    }

    /// `reluMask`, split across threads for a large C (the same bits: element-wise).
    static func reluMaskSplit(_ c: UnsafeMutablePointer<Float>, activation: UnsafePointer<Float>, count: Int) {
        var job = MaskJob(c: c, activation: activation)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.elementwise(count: count, context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: MaskJob.self).pointee
                ElementwiseKernels.reluMask(job.c + start, activation: job.activation + start, count: end - start)
            }
        }
    }

    private struct SumsJob {
        var matrix: UnsafePointer<Float>
        var rows: Int
        var columns: Int
        var sums: UnsafeMutablePointer<Float>
        var firstBlock: Int
        var avx512: Bool
    }

    /// The rows of a block of the column sums: each column's sum over a block runs from zero in
    /// row order, and the blocks' sums are added in order, so that the blocks can be summed at
    /// once and each where it lies. A matrix of at most this many rows is summed row by row.
    static let columnSumBlock = 256

    /// sums[j] = Σ_i matrix[i, j]: over each block of `columnSumBlock` rows from zero in row
    /// order, the blocks' sums then added in order (block 0 + block 1 + …), whatever the split.
    /// One block: split across threads by columns. More: by blocks, each block's sums into a
    /// scratch row. [2,256,256,256,3] at batch 4096: its three 4096×256 sums took 247 µs each
    /// split by columns (each core reading the rows the other had just written, and with the sums
    /// on the stack, four lanes at a time), 113 µs in blocks with AVX-512; its step 16.4 → 16.1 ms.
    static func columnSumsSplit(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>,
                                avx512: Bool = SIMDKernels.avx512) {
        let parallel = rows * columns >= ParallelChunks.elementwiseThreshold
        let blocks = (rows + columnSumBlock - 1) / columnSumBlock
        guard blocks > 1 else {
            var job = SumsJob(matrix: matrix, rows: rows, columns: columns, sums: sums, firstBlock: 0, avx512: avx512)
            withUnsafePointer(to: &job) { context in
                ParallelChunks.forEach(count: columns, chunk: min(256, ParallelChunks.blockWidth(columns, pieces: ParallelChunks.threads, multiple: 8)),
                                       parallel: parallel, context: context) { context, start, end in
                    let job = context.assumingMemoryBound(to: SumsJob.self).pointee
                    ElementwiseKernels.columnSums(job.matrix + start, stride: job.columns, columns: end - start, rows: 0..<job.rows,
                                                  into: job.sums + start, avx512: job.avx512)
                }
            }
            return
        }
        // the blocks a group (their sums in the scratch rows at once): about 64K floats of sums
        let group = min(blocks, max(2 * ParallelChunks.threads, (1 << 16) / max(columns, 1)))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: group * columns) { scratch in
            let partial = scratch.baseAddress!
            for first in stride(from: 0, to: blocks, by: group) {
                let count = min(group, blocks - first)
                var job = SumsJob(matrix: matrix, rows: rows, columns: columns, sums: partial, firstBlock: first, avx512: avx512)
                withUnsafePointer(to: &job) { context in
                    ParallelChunks.forEach(count: count, chunk: 1, parallel: parallel, staysAwake: true, context: context) { context, start, end in
                        let job = context.assumingMemoryBound(to: SumsJob.self).pointee
                        for block in start..<end {
                            let row = (job.firstBlock + block) * ElementwiseKernels.columnSumBlock
                            ElementwiseKernels.columnSums(job.matrix, stride: job.columns, columns: job.columns,
                                                          rows: row..<min(row + ElementwiseKernels.columnSumBlock, job.rows),
                                                          into: job.sums + block * job.columns, avx512: job.avx512)
                        }
                    }
                }
                // in block order: the first block's sums, then each next one's added
                for block in 0..<count {
                    let source = partial + block * columns
                    if first == 0, block == 0 {
                        sums.update(from: source, count: columns)
                    } else {
                        for j in 0..<columns { sums[j] += source[j] }
                    }
                }
            }
        }
    }

    /// sums[j] = Σ_{i in rows} matrix[i·stride + j] for j < columns, from zero in row order: with
    /// AVX-512 sixteen registers of sums at a time (`mlpkit_column_sums_avx512`); else up to 256
    /// columns at a time, each row's part read once, in order, the sums in eight-lane vectors on
    /// the stack (the one-column loop, whose stores the compiler could not keep apart from the
    /// matrix's loads, ran one element per cycle; 32 columns at a time in registers read each row
    /// in strided passes). Each column's additions, and so its bits, are the same either way.
    @inline(__always)
    static func columnSums(_ matrix: UnsafePointer<Float>, stride: Int, columns width: Int, rows: Range<Int>,
                           into out: UnsafeMutablePointer<Float>, avx512: Bool) {
        if avx512 {
            mlpkit_column_sums_avx512(matrix, stride, width, rows.lowerBound, rows.upperBound, out)
            return
        }
        typealias Lanes = SIMD8<Float>
        let rowBytes = stride * MemoryLayout<Float>.stride
        let group = 32  // vectors a pass: 256 columns
        var j = 0
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: group) { block in
            let partial = block.baseAddress!
            while j + 8 <= width {
                let vectors = min(group, (width - j) / 8)
                for v in 0..<vectors { partial[v] = Lanes() }
                var row = UnsafeRawPointer(matrix + rows.lowerBound * stride + j)
                for _ in rows {
                    for v in 0..<vectors { partial[v] += row.loadUnaligned(fromByteOffset: 32 * v, as: Lanes.self) }
                    row += rowBytes
                }
                let target = UnsafeMutableRawPointer(out + j)
                for v in 0..<vectors { target.storeBytes(of: partial[v], toByteOffset: 32 * v, as: Lanes.self) }
                j += 8 * vectors
            }
        }
        while j < width {
            var sum: Float = 0
            var row = matrix + rows.lowerBound * stride + j
            for _ in rows {
                sum += row.pointee
                row += stride
            }
            out[j] = sum
            j += 1
        }
    }

    private struct GatherJob {
        var source: UnsafePointer<Float>
        var width: Int
        var indices: UnsafePointer<Float>
        var destination: UnsafeMutablePointer<Float>
    }

    /// Gathers of at least this many elements in all (256 KiB) are split across threads.
    static let gatherSplitFrom = 1 << 16

    /// destination row r = source row indices[r] (indices already checked), split across the
    /// threads by blocks of rows for a large batch. The rows lie scattered over the data set, so
    /// the copies wait on memory: the mnist step's 128 rows of 784 from its 1024-row set took
    /// 42–107 µs on one thread and 26–58 µs split over two (three alternating rounds, one process).
    /// A copy is a copy, so the result does not depend on the split.
    static func gatherRows(_ source: UnsafePointer<Float>, width: Int, indices: UnsafePointer<Float>, count: Int,
                           into destination: UnsafeMutablePointer<Float>) {
        var job = GatherJob(source: source, width: width, indices: indices, destination: destination)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: count, chunk: ParallelChunks.blockWidth(count, pieces: ParallelChunks.threads),
                                   parallel: count * width >= gatherSplitFrom,
                                   staysAwake: true, context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: GatherJob.self).pointee
                if job.width == 1 {
                    // one value a row (targets, row weights): no copy call per row
                    for row in start..<end { job.destination[row] = job.source[Int(job.indices[row])] }
                } else if job.width <= 64 {
                    // narrow rows (tiny's 32 inputs) copied in place of a memmove call each: tiny's step
                    // 1.1–1.3% faster (switched every 20 steps, `mlp bench --config tiny --steps 20000`)
                    for row in start..<end {
                        let from = job.source + Int(job.indices[row]) * job.width, to = job.destination + row * job.width
                        for j in 0..<job.width { to[j] = from[j] }
                    }
                } else {
                    for row in start..<end {
                        (job.destination + row * job.width).update(from: job.source + Int(job.indices[row]) * job.width,
                                                                   count: job.width)
                    }
                }
            }
        }
    }

    private struct ZeroJob {
        var c: UnsafeMutablePointer<Float>
    }

    /// Zeroes `count` elements, split across threads when large.
    static func zeroSplit(_ c: UnsafeMutablePointer<Float>, count: Int) {
        var job = ZeroJob(c: c)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.elementwise(count: count, context: context) { context, start, end in
                context.assumingMemoryBound(to: ZeroJob.self).pointee.c.advanced(by: start).update(repeating: 0, count: end - start)
            }
        }
    }

    /// C[i] = activation[i] > 0 ? C[i] : 0 (the ReLU derivative, as (Z > 0) = (A > 0)).
    @inline(__always)
    static func reluMask(_ c: UnsafeMutablePointer<Float>, activation: UnsafePointer<Float>, count: Int) {
        var i = 0
        #if arch(x86_64)
        // branch-free, four lanes at a time: keep C where A > 0 (false for NaN), else +0, as
        // the scalar loop below; its branch was mispredicted half the time on ReLU's signs
        let zero = _mm_setzero_ps()
        while i + 8 <= count {
            let a0 = _mm_loadu_ps(activation + i), a1 = _mm_loadu_ps(activation + i + 4)
            let c0 = _mm_loadu_ps(c + i), c1 = _mm_loadu_ps(c + i + 4)
            _mm_storeu_ps(c + i, _mm_and_ps(_mm_cmpgt_ps(a0, zero), c0))
            _mm_storeu_ps(c + i + 4, _mm_and_ps(_mm_cmpgt_ps(a1, zero), c1))
            i += 8
        }
        #endif
        while i < count {
            if !(activation[i] > 0) { c[i] = 0 }
            i += 1
        }
    }

    /// Z[i, j] = C[i, j] + bias[j] (also stored in `preActivation` when given), C[i, j] = f(Z):
    /// split across threads by rows for a large C, tanh, σ and GELU sixteen or eight at a time
    /// where there is AVX-512 (`applyActivation`). Element-wise, so the same bits either way.
    static func biasActivation(
        _ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>,
        function: ActivationFunction, preActivation: UnsafeMutablePointer<Float>?,
        vector: Bool = SIMDKernels.avx512
    ) {
        var job = ActivationJob(c: c, source: nil, bias: bias, preActivation: preActivation, columns: columns,
                                function: function, vector: vector)
        let (threshold, chunk) = split(function, derivative: false)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: rows, chunk: max(1, chunk / max(columns, 1)), parallel: rows * columns >= threshold,
                                   staysAwake: true, context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: ActivationJob.self).pointee
                guard let bias = job.bias else { return }
                for i in start..<end {
                    let row = job.c + i * job.columns
                    for j in 0..<job.columns { row[j] = row[j] + bias[j] }
                    job.preActivation.map { $0.advanced(by: i * job.columns).update(from: row, count: job.columns) }
                    ElementwiseKernels.applyActivation(row, count: job.columns, function: job.function, vector: job.vector)
                }
            }
        }
    }

    /// A split activation pass's operands (`source` for the derivative, `bias` for the forward pass).
    private struct ActivationJob {
        var c: UnsafeMutablePointer<Float>
        var source: UnsafePointer<Float>?
        var bias: UnsafePointer<Float>?
        var preActivation: UnsafeMutablePointer<Float>?
        var columns: Int
        var function: ActivationFunction
        var vector: Bool
    }

    /// Activation passes of tanh, σ or GELU (0.3–0.8 ns a value with AVX-512, 3–60 without) over
    /// at least this many values (or four times as many) are split across threads, in chunks of
    /// about `transcendentalChunk` values; the others (memory's speed) from `elementwiseThreshold`.
    static let transcendentalThreshold = 1 << 12
    static let transcendentalChunk = 1 << 11

    /// From how many values a pass of f (or of f′ when `derivative`) is split across threads, and
    /// its chunk: GELU's passes (a tanh and a dozen operations a value) from
    /// `transcendentalThreshold`, tanh's and σ's from four times that (split at 4,096 values,
    /// [13,64,64,64,1]'s σ step went from 99.4 to 105.1 µs; its tanh step 99.7–101.0 against
    /// 96.8–99.2 µs, two pairs), the others (a compare or a multiply or two a value) as any
    /// memory-bound pass.
    static func split(_ function: ActivationFunction, derivative: Bool) -> (threshold: Int, chunk: Int) {
        switch function {
        case .gelu: return (transcendentalThreshold, transcendentalChunk)
        case .tanh where !derivative, .sigmoid where !derivative: return (4 * transcendentalThreshold, transcendentalChunk)
        default: return (ParallelChunks.elementwiseThreshold, ParallelChunks.elementwiseChunk)
        }
    }

    /// Values GELU's tanh is taken of at a time (on the stack).
    static let geluBlock = 256

    /// x[i] = f(x[i]) with `ActivationFunction.apply`'s bits: tanh (and GELU's) by
    /// `mlpkit_tanh_avx512` when `vector` and there is AVX-512 (`SIMDKernels.vectorTanh`; MLPKit's
    /// own tanh, `tanh.c`, the same bits as the scalar `mlpkit_tanh`), σ by `mlpkit_sigmoid_avx512`
    /// (its e^x glibc's expf) when it agrees with this process's C library (`vectorExp`); the
    /// scalar functions otherwise. Per element, not per call, so any split of x into calls gives
    /// the same bits.
    static func applyActivation(_ x: UnsafeMutablePointer<Float>, count: Int, function: ActivationFunction, vector: Bool) {
        switch function {
        case .relu:
            for i in 0..<count { x[i] = max(x[i], 0) }
        case .leakyReLU(let slope):
            for i in 0..<count { x[i] = x[i] > 0 ? x[i] : slope * x[i] }
        case .tanh:
            if vector && SIMDKernels.vectorTanh {
                mlpkit_tanh_avx512(x, x, count)
            } else {
                for i in 0..<count { x[i] = mlpkit_tanh(x[i]) }
            }
        case .sigmoid:
            if vector && SIMDKernels.vectorExp {
                mlpkit_sigmoid_avx512(x, x, count)
            } else {
                for i in 0..<count { x[i] = ActivationFunction.sigmoid(x[i]) }
            }
        case .gelu:
            guard vector && SIMDKernels.vectorTanh else {
                for i in 0..<count { x[i] = ActivationFunction.gelu.apply(x[i]) }
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: geluBlock) { block in
                let t = block.baseAddress!
                var start = 0
                while start < count {
                    let z = x + start, n = min(geluBlock, count - start)
                    for i in 0..<n { t[i] = ActivationFunction.geluArgument(z[i]) }
                    mlpkit_tanh_avx512(t, t, n)
                    for i in 0..<n { z[i] = ActivationFunction.gelu(z[i], tanh: t[i]) }
                    start += n
                }
            }
        }
    }

    /// C[i] = C[i] · f'(source[i]): source is A = f(Z), or Z for GELU (whose tanh is taken
    /// sixteen at a time where there is AVX-512). Split across threads for a large C; element-wise,
    /// so the same bits either way.
    static func activationDerivative(_ c: UnsafeMutablePointer<Float>, source: UnsafePointer<Float>, count: Int,
                                     function: ActivationFunction, vector: Bool = SIMDKernels.avx512) {
        if case .relu = function {
            reluMaskSplit(c, activation: source, count: count)
            return
        }
        var job = ActivationJob(c: c, source: source, bias: nil, preActivation: nil, columns: 0, function: function, vector: vector)
        let (threshold, chunk) = split(function, derivative: true)
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: count, chunk: chunk, parallel: count >= threshold, staysAwake: true,
                                   context: context) { context, start, end in
                let job = context.assumingMemoryBound(to: ActivationJob.self).pointee
                ElementwiseKernels.multiplyByDerivative(job.c + start, source: job.source! + start, count: end - start,
                                                        function: job.function, vector: job.vector)
            }
        }
    }

    /// `activationDerivative` over one range, on the calling thread.
    static func multiplyByDerivative(_ c: UnsafeMutablePointer<Float>, source: UnsafePointer<Float>, count: Int,
                                     function: ActivationFunction, vector: Bool) {
        switch function {
        case .relu:
            reluMask(c, activation: source, count: count)
        case .leakyReLU(let slope):
            for i in 0..<count { c[i] = source[i] > 0 ? c[i] : c[i] * slope }
        case .tanh:
            for i in 0..<count { c[i] *= 1 - source[i] * source[i] }
        case .sigmoid:
            for i in 0..<count { c[i] *= source[i] * (1 - source[i]) }
        case .gelu:
            guard vector && SIMDKernels.vectorTanh else {
                for i in 0..<count { c[i] *= ActivationFunction.gelu.derivative(from: source[i]) }
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: geluBlock) { block in
                let t = block.baseAddress!
                var start = 0
                while start < count {
                    let z = source + start, d = c + start, n = min(geluBlock, count - start)
                    for i in 0..<n { t[i] = ActivationFunction.geluArgument(z[i]) }
                    mlpkit_tanh_avx512(t, t, n)
                    for i in 0..<n { d[i] *= ActivationFunction.geluDerivative(z[i], tanh: t[i]) }
                    start += n
                }
            }
        }
    }

    /// One Adam step (SEED.md §4) over `count` parameters, eight lanes at a time. Every lane
    /// does the same IEEE operations in the same order as the scalar tail, so the result does
    /// not depend on where a parameter falls.
    static func adam(
        parameters theta: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
        hyperparameters: AdamHyperparameters, step: Int, layout: LayerLayout? = nil, panels: WeightPanels? = nil
    ) {
        let beta1 = hyperparameters.beta1, beta2 = hyperparameters.beta2
        let alpha = hyperparameters.learningRate, epsilon = hyperparameters.epsilon
        let (correction1, correction2) = hyperparameters.biasCorrections(step: step)
        // Beyond the seed, both skipped entirely when off (so plain Adam is bit for bit the seed's):
        // clipping by global norm, g ← g·min(1, c/(‖g‖ + 1e-6)) with ‖g‖ accumulated in Float64,
        // and AdamW's decoupled decay θ ← θ·(1 − α·λ) before the update.
        var gradientScale: Float = 1
        if let clipNorm = hyperparameters.clipNorm {
            gradientScale = clipScale(g, count: count, clipNorm: clipNorm, panels: panels)
        }
        let decay = Float(1 - Double(alpha) * Double(hyperparameters.weightDecay))
        var job = AdamJob(theta: theta, g: g, m: m, v: v, beta1: beta1, beta2: beta2, alpha: alpha, epsilon: epsilon,
                          correction1: correction1, correction2: correction2, gradientScale: gradientScale, decay: decay,
                          clips: gradientScale != 1, decays: hyperparameters.weightDecay != 0)
        // Element-wise, so a large update is split across threads (`ParallelChunks`) with the
        // same bits as one pass: each parameter's arithmetic does not depend on its chunk.
        if let layout, splitsAdamByOwnedRows(count: count, layout: layout) {
            // each thread the rows of every layer's W and b that its products read and write
            // (`SIMDKernels.ownedBlockWidth`, block t of each layer in chunk t), where they are
            // still in its core's caches: mnist's Adam 77 → 67 µs (with its first layer's weight
            // gradient cut by the same rows, 210 → 195 µs; `--breakdown`, 3,000 steps)
            var owned = OwnedAdamJob(job: job, layout: layout)
            withUnsafePointer(to: &owned) { context in
                ParallelChunks.forEach(count: ParallelChunks.threads, chunk: 1, parallel: true, staysAwake: true, owned: true,
                                       context: UnsafeRawPointer(context)) { context, block, _ in
                    let owned = context.assumingMemoryBound(to: OwnedAdamJob.self).pointee
                    let sizes = owned.layout.sizes
                    for layer in 1..<sizes.count {
                        let (rows, columns) = (sizes[layer], sizes[layer - 1])
                        let width = SIMDKernels.ownedBlockWidth(rows)
                        let first = block * width, last = min(first + width, rows)
                        guard first < last else { continue }
                        let weights = owned.layout.weightOffsets[layer - 1], biases = owned.layout.biasOffsets[layer - 1]
                        ElementwiseKernels.adamRange(owned.job, start: weights + first * columns, end: weights + last * columns)
                        ElementwiseKernels.adamRange(owned.job, start: biases + first, end: biases + last)
                    }
                }
            }
            return
        }
        withUnsafePointer(to: &job) { context in
            ParallelChunks.forEach(count: count, chunk: adamChunk, parallel: count >= adamParallelThreshold,
                                   staysAwake: true, context: UnsafeRawPointer(context)) { context, start, end in
                let job = context.assumingMemoryBound(to: AdamJob.self).pointee
                ElementwiseKernels.adamRange(job, start: start, end: end)
            }
        }
    }

    /// Whether `adam` over `count` parameters laid out by `layout` gives each thread its rows of
    /// each layer (`SIMDKernels.ownedBlockWidth`) instead of claimed chunks: where the products
    /// are cut by those rows too (AVX-512), and up to `ownedAdamLimit` parameters.
    static func splitsAdamByOwnedRows(count: Int, layout: LayerLayout, owns: Bool = SIMDKernels.ownsBlocks,
                                      avx512: Bool = SIMDKernels.avx512) -> Bool {
        owns && avx512 && ParallelChunks.threads > 1 && count >= adamParallelThreshold && count <= ownedAdamLimit
            && count == layout.parameterCount
    }

    /// Adam's operands with the layout whose rows `adam` gives each thread.
    private struct OwnedAdamJob {
        var job: AdamJob
        var layout: LayerLayout
    }

    /// The most parameters whose Adam gives each thread its layers' owned rows: 8 MiB of θ, g, m
    /// and v, about what the two cores' caches hold. Past it (wide's 8.4M) Adam streams from
    /// memory wherever its rows lie, and claimed chunks let the faster core take more.
    static let ownedAdamLimit = 1 << 19

    /// Parameters per chunk of a split Adam update (256 KiB of each array).
    static let adamChunk = 1 << 16
    /// Adam updates of at least this many parameters are split across threads (the mnist
    /// configuration's 235K in four chunks). The helpers then stay awake into the next step,
    /// whose first products they share: split with the helper left to sleep after Adam, the
    /// mnist median was bimodal (1.27–1.94 ms over four alternating rounds of `mlp bench
    /// --config mnist --steps 1000`); kept awake, 1.29–1.37 ms, against 1.34–1.52 ms unsplit.
    static let adamParallelThreshold = 1 << 17

    /// Adam's operands and constants for `adamRange`: the C struct that the AVX2 loop takes too
    /// (its `clips` and `decays` are 0 or 1; `clipsGradient` and `decaysParameters` read them).
    typealias AdamJob = MLPKitAdamJob

    /// Adam over parameters start..<end: the AVX2 or AVX-512 loop where `SIMDKernels` runs (the
    /// same bits), else the Swift loops below.
    static func adamRange(_ job: AdamJob, start: Int, end: Int, simd: Bool = SIMDKernels.enabled,
                          avx512: Bool = SIMDKernels.avx512) {
        let count = end - start
        guard count > 0 else { return }
        if simd {
            SIMDKernels.adam(job, start: start, end: end, avx512: avx512)
            return
        }
        let (theta, g, m, v) = (job.theta + start, job.g + start, job.m + start, job.v + start)
        // A bias correction that has reached exactly 1 (1 − β1ᵗ rounds to 1 in Float32 after
        // about 160 steps at β1 = 0.9) divides nothing: x / 1 is x, so its division is skipped
        // with the same bits. The divisions and the square root are most of Adam's time.
        let divides1 = job.correction1 != 1, divides2 = job.correction2 != 1
        @inline(__always)
        func plain(_ divides1: Bool, _ divides2: Bool) {
            adamLoops(theta, g, m, v, count: count, beta1: job.beta1, beta2: job.beta2, alpha: job.alpha,
                      epsilon: job.epsilon, corrections: (job.correction1, job.correction2), divides: (divides1, divides2),
                      clips: false, gradientScale: 1, decays: false, decay: 1)
        }
        // the plain case is its own copy of the loops, with no test for any option inside
        if !job.clipsGradient, !job.decaysParameters {
            switch (divides1, divides2) {
            case (true, true): plain(true, true)
            case (false, true): plain(false, true)
            case (true, false): plain(true, false)
            case (false, false): plain(false, false)
            }
        } else {
            adamLoops(theta, g, m, v, count: count, beta1: job.beta1, beta2: job.beta2, alpha: job.alpha,
                      epsilon: job.epsilon, corrections: (job.correction1, job.correction2), divides: (divides1, divides2),
                      clips: job.clipsGradient, gradientScale: job.gradientScale, decays: job.decaysParameters, decay: job.decay)
        }
    }

    @inline(__always)
    private static func adamLoops(
        _ theta: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
        _ v: UnsafeMutablePointer<Float>, count: Int, beta1: Float, beta2: Float, alpha: Float, epsilon: Float,
        corrections: (Float, Float), divides: (Bool, Bool), clips: Bool, gradientScale: Float, decays: Bool, decay: Float
    ) {
        let (correction1, correction2) = corrections
        let (divides1, divides2) = divides
        typealias Lanes = SIMD8<Float>
        let lanes = Lanes.scalarCount
        var i = 0
        while i + lanes <= count {
            var gradient = UnsafeRawPointer(g + i).loadUnaligned(as: Lanes.self)
            if clips { gradient *= gradientScale }
            let mOld = UnsafeRawPointer(m + i).loadUnaligned(as: Lanes.self)
            let vOld = UnsafeRawPointer(v + i).loadUnaligned(as: Lanes.self)
            var thetaOld = UnsafeRawPointer(theta + i).loadUnaligned(as: Lanes.self)
            if decays { thetaOld *= decay }
            // update the biased first moment (momentum) and second moment (RMSprop)
            let mt = beta1 * mOld + (1 - beta1) * gradient
            let vt = beta2 * vOld + (1 - beta2) * gradient * gradient
            // bias-corrected moments, then the parameter update
            let mHat = divides1 ? mt / correction1 : mt
            let vHat = divides2 ? vt / correction2 : vt
            let thetaNew = thetaOld - alpha * mHat / (squareRoot(vHat) + epsilon)
            UnsafeMutableRawPointer(m + i).storeBytes(of: mt, as: Lanes.self)
            UnsafeMutableRawPointer(v + i).storeBytes(of: vt, as: Lanes.self)
            UnsafeMutableRawPointer(theta + i).storeBytes(of: thetaNew, as: Lanes.self)
            i += lanes
        }
        while i < count {
            var gradient = g[i]
            if clips { gradient *= gradientScale }
            let mt = beta1 * m[i] + (1 - beta1) * gradient
            let vt = beta2 * v[i] + (1 - beta2) * gradient * gradient
            m[i] = mt
            v[i] = vt
            let mHat = divides1 ? mt / correction1 : mt
            let vHat = divides2 ? vt / correction2 : vt
            var thetaOld = theta[i]
            if decays { thetaOld *= decay }
            theta[i] = thetaOld - alpha * mHat / (vHat.squareRoot() + epsilon)
            i += 1
        }
    }

    /// min(1, c / (‖g‖ + 1e-6)) for the `count` gradients at `g`, ‖g‖ accumulated in Float64
    /// (torch.nn.utils.clip_grad_norm_'s rule). 1 when the norm is within c; NaN when it is not finite.
    /// With `panels`, the first elements are a weight kept so (`WeightPanels`), summed in its rows' order.
    static func clipScale(_ g: UnsafePointer<Float>, count: Int, clipNorm: Float, panels: WeightPanels? = nil) -> Float {
        let sum = squaredNorm(g, count: count, panels: panels)
        let scale = Double(clipNorm) / (sum.squareRoot() + 1e-6)
        return scale < 1 ? Float(scale) : scale.isNaN ? .nan : 1
    }

    /// Σ g² in Float64 over the `count` gradients in their order, or, with `panels`, over the
    /// weight kept so (its first elements) in its rows' order and then the rest: the same sum,
    /// bit for bit, as over the gradients in rows (Float64 addition is not associative).
    static func squaredNorm(_ g: UnsafePointer<Float>, count: Int, panels: WeightPanels? = nil) -> Double {
        var sum = 0.0
        var first = 0
        if let panels, panels.rows * panels.columns <= count {
            for j in 0..<panels.rows {
                for p in 0..<panels.columns {
                    let x = Double(g[panels.index(row: j, column: p)])
                    sum += x * x
                }
            }
            first = panels.rows * panels.columns
        }
        for i in first..<count { sum += Double(g[i]) * Double(g[i]) }
        return sum
    }
}

/// The fused loss gradient and loss sum on the CPU.
enum LossKernels {
    /// Writes dL/dZ (already divided by `rows`) into `gradient` and returns the loss summed over
    /// rows (the caller divides by the number of rows).
    /// With `classWeights` (cross-entropy), a row's loss and gradient are scaled by its class's
    /// weight w (Σ_j w_j·y_j for a dense row): the gradient by 1/rows·w, as the kernels scale it;
    /// for binary cross-entropy they are each output's positive weight (pos_weight).
    /// With `rowWeights` (any loss), by the row's own weight r too: w·r, or r alone.
    /// `avx512` (with `simd`): cross-entropy's and binary cross-entropy's exponentials eight at a
    /// time (`mlpkit_expf_avx512`, the bits of glibc's expf, so the same results).
    static func gradient(
        _ loss: Loss, targets: TargetEncoding, output: UnsafePointer<Float>, target: UnsafePointer<Float>,
        rows: Int, columns: Int, gradient: UnsafeMutablePointer<Float>, classWeights: UnsafePointer<Float>? = nil,
        rowWeights: UnsafePointer<Float>? = nil, simd: Bool = SIMDKernels.enabled, avx512: Bool = SIMDKernels.avx512
    ) -> Float {
        guard rows > 0 else { return 0 }
        if let sum = gradientOnCopies(loss, targets: targets, output: output, target: target, rows: rows, columns: columns,
                                      gradient: gradient, classWeights: classWeights, rowWeights: rowWeights, simd: simd,
                                      avx512: avx512) {
            return sum
        }
        let scale = 1 / Float(rows)
        let weighted = classWeights != nil || rowWeights != nil
        let count = rows * columns
        var total = 0.0
        switch loss {
        case .meanSquaredError:
            if case .dense = targets, simd, rowWeights == nil {
                return meanSquaredErrorRows(output: output, target: target, rows: rows, columns: columns,
                                            gradient: gradient, scale: scale)
            }
            var i = 0
            if case .dense = targets, rowWeights == nil {
                // four rows at once: four independent running sums (each row's own additions in
                // its own order, so the same bits) instead of one dependent chain
                while i + 4 <= rows {
                    let z = output + i * columns, y = target + i * columns, d = gradient + i * columns
                    var sums: (Float, Float, Float, Float) = (0, 0, 0, 0)
                    for j in 0..<columns {
                        let d0 = z[j] - y[j], d1 = z[columns + j] - y[columns + j]
                        let d2 = z[2 * columns + j] - y[2 * columns + j], d3 = z[3 * columns + j] - y[3 * columns + j]
                        d[j] = d0 * scale
                        d[columns + j] = d1 * scale
                        d[2 * columns + j] = d2 * scale
                        d[3 * columns + j] = d3 * scale
                        sums.0 += d0 * d0
                        sums.1 += d1 * d1
                        sums.2 += d2 * d2
                        sums.3 += d3 * d3
                    }
                    total += 0.5 * Double(sums.0)
                    total += 0.5 * Double(sums.1)
                    total += 0.5 * Double(sums.2)
                    total += 0.5 * Double(sums.3)
                    i += 4
                }
            }
            for i in i..<rows {
                let z = output + i * columns, d = gradient + i * columns
                let label = targets == .classIndices ? classLabel(target[i], classes: columns) : -1
                if targets == .classIndices, label < 0 { total = .nan }  // no class: poison the loss
                let rowScale = rowWeights.map { scale * $0[i] } ?? scale
                var rowSum: Float = 0
                for j in 0..<columns {
                    let y: Float
                    switch targets {
                    case .dense: y = target[i * columns + j]
                    case .classIndices: y = label == j ? 1 : 0
                    }
                    let difference = z[j] - y
                    d[j] = difference * rowScale
                    rowSum += difference * difference
                }
                total += rowWeights.map { Double($0[i]) * (0.5 * Double(rowSum)) } ?? 0.5 * Double(rowSum)
            }
        case .binaryCrossEntropy:
            // per output: max(z, 0) − z·y + log1p(exp(−|z|)) = −[y·log σ(z) + (1 − y)·log(1 − σ(z))],
            // without overflow for any z; gradient (σ(z) − y)/B. With AVX-512, e^−|z| for the whole
            // batch at once into the gradient first (`mlpkit_expf_avx512`, expf's bits), which σ(z)
            // takes too: 1/(1 + e) for z ≥ 0, e/(1 + e) below, as `ActivationFunction.sigmoid`
            let sharedExponentials = simd && avx512 && SIMDKernels.vectorExp
            if sharedExponentials {
                for k in 0..<count { gradient[k] = -abs(output[k]) }
                mlpkit_expf_avx512(gradient, gradient, count)
            }
            // and log1p(e) sixteen at a time too, a row's block of up to 256 at once on the stack
            let vectorLogarithms = sharedExponentials && SIMDKernels.vectorLog1p
            @inline(__always) func exponentialAndSigmoid(_ logit: Float, at k: Int) -> (Float, Float) {
                guard sharedExponentials, !logit.isNaN else { return (expf(-abs(logit)), ActivationFunction.sigmoid(logit)) }
                let e = gradient[k]
                return (e, logit >= 0 ? 1 / (1 + e) : e / (1 + e))
            }
            let block = 256
            withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { logarithms in
                let logarithms = logarithms.baseAddress!
                for i in 0..<rows {
                    let z = output + i * columns, d = gradient + i * columns
                    let label = targets == .classIndices ? classLabel(target[i], classes: columns) : -1
                    if targets == .classIndices, label < 0 { total = .nan }  // no class: poison the loss
                    let rowScale = rowWeights.map { scale * $0[i] } ?? scale
                    var rowLoss = 0.0
                    for j in 0..<columns {
                        if vectorLogarithms, j % block == 0 {
                            // log1p of this row's next block of e^−|z| (the gradient's, not yet overwritten)
                            mlpkit_log1pf_avx512(d + j, logarithms, min(block, columns - j))
                        }
                        let y: Float
                        switch targets {
                        case .dense: y = target[i * columns + j]
                        case .classIndices: y = label == j ? 1 : 0
                        }
                        let logit = z[j]
                        let (e, sigmoid) = exponentialAndSigmoid(logit, at: i * columns + j)
                        // a NaN logit's e is expf's of it, not the shared one: its log1p the scalar's
                        let softplus = vectorLogarithms && !logit.isNaN ? logarithms[j % block] : log1pf(e)
                        if let classWeights {
                            // pos_weight p: (1 − y)·z + l·(log1p(e^−|z|) + max(−z, 0)), l = 1 + (p − 1)·y;
                            // gradient σ(z)·l − p·y
                            let p = classWeights[j]
                            let l = 1 + (p - 1) * y
                            d[j] = (sigmoid * l - p * y) * rowScale
                            rowLoss += Double((1 - y) * logit + l * (softplus + max(-logit, 0)))
                        } else {
                            d[j] = (sigmoid - y) * rowScale
                            rowLoss += Double(max(logit, 0) - logit * y + softplus)
                        }
                    }
                    total += rowWeights.map { Double($0[i]) * rowLoss } ?? rowLoss
                }
            }
        case .crossEntropy:
            // the exponentials of every row at once, eight at a time, where there is AVX-512:
            // z − max into the gradient's rows first (glibc's expf alone took most of mnist's loss)
            let vectorExponentials = simd && avx512 && SIMDKernels.vectorExp
            if vectorExponentials, targets == .classIndices, !weighted,
               let sum = softmaxRows(output: output, labels: target, rows: rows, columns: columns, gradient: gradient, scale: scale) {
                return sum
            }
            if vectorExponentials {
                for i in 0..<rows {
                    let z = output + i * columns, d = gradient + i * columns
                    var largest = -Float.infinity
                    for j in 0..<columns { largest = max(largest, z[j]) }
                    for j in 0..<columns { d[j] = z[j] - largest }
                }
                mlpkit_expf_avx512(gradient, gradient, rows * columns)
            }
            for i in 0..<rows {
                let z = output + i * columns, d = gradient + i * columns
                // log-sum-exp: lse = max + log Σ exp(z − max)
                var largest = -Float.infinity
                for j in 0..<columns { largest = max(largest, z[j]) }
                var exponentialSum: Float = 0
                for j in 0..<columns {
                    let e = vectorExponentials ? d[j] : expf(z[j] - largest)
                    d[j] = e
                    exponentialSum += e
                }
                let logSumExp = largest + logf(exponentialSum)
                let inverseSum = 1 / exponentialSum
                switch targets {
                case .classIndices:
                    let label = classLabel(target[i], classes: columns)
                    guard label >= 0 else {
                        total = .nan  // a label outside the classes: poison the loss, read nothing
                        continue
                    }
                    let w = (classWeights?[label] ?? 1) * (rowWeights?[i] ?? 1)
                    let rowScale = weighted ? scale * w : scale
                    for j in 0..<columns {
                        d[j] = (d[j] * inverseSum - (j == label ? 1 : 0)) * rowScale
                    }
                    total += weighted ? Double(w * (logSumExp - z[label])) : Double(logSumExp - z[label])
                case .dense:
                    // −Σ y·log softmax = Σ y·(lse − z); gradient Σy·softmax − y (= softmax − y
                    // for rows of probabilities)
                    let y = target + i * columns
                    var targetSum: Float = 0
                    var rowLoss = 0.0
                    var w: Float = 0
                    for j in 0..<columns {
                        targetSum += y[j]
                        if y[j] != 0 { rowLoss += Double(y[j]) * Double(logSumExp - z[j]) }
                        if let classWeights { w += classWeights[j] * y[j] }
                    }
                    w = (classWeights == nil ? 1 : w) * (rowWeights?[i] ?? 1)
                    let rowScale = weighted ? scale * w : scale
                    for j in 0..<columns {
                        d[j] = (targetSum * d[j] * inverseSum - y[j]) * rowScale
                    }
                    total += weighted ? Double(w) * rowLoss : rowLoss
                }
            }
        }
        return Float(total)
    }

    /// `gradient` on copies of the loss's operands, made when the gradient overlaps any of them
    /// (in place over the logits, say): every pass above reads the logits, targets and weights after
    /// it has begun writing the gradient (cross-entropy's exponentials go into the gradient before
    /// the row's loss reads z[label]; MSE's four-row and AVX-512 passes read rows ahead of their
    /// stores). Nil when the gradient lies apart from all of them, the step's case.
    private static func gradientOnCopies(
        _ loss: Loss, targets: TargetEncoding, output: UnsafePointer<Float>, target: UnsafePointer<Float>,
        rows: Int, columns: Int, gradient: UnsafeMutablePointer<Float>, classWeights: UnsafePointer<Float>?,
        rowWeights: UnsafePointer<Float>?, simd: Bool, avx512: Bool
    ) -> Float? {
        let count = rows * columns, targetCount = rows * targets.width(outputs: columns)
        let start = UnsafePointer(gradient), end = start + count
        func overlaps(_ operand: UnsafePointer<Float>?, _ length: Int) -> Bool {
            guard let operand, length > 0 else { return false }
            return operand < end && start < operand + length
        }
        // nothing written when there are no columns
        guard count > 0, overlaps(output, count) || overlaps(target, targetCount) || overlaps(classWeights, columns)
            || overlaps(rowWeights, rows) else { return nil }
        // the operands one after another in one array: the logits, the targets, then the weights given
        let operands: [(UnsafePointer<Float>?, Int)] = [(output, count), (target, targetCount), (classWeights, columns),
                                                         (rowWeights, rows)]
        var copies: [Float] = []
        for case let (operand?, length) in operands {
            copies.append(contentsOf: UnsafeBufferPointer(start: operand, count: length))
        }
        return copies.withUnsafeBufferPointer { copies in
            let output = copies.baseAddress!, target = output + count, weights = target + targetCount
            return Self.gradient(loss, targets: targets, output: output, target: target, rows: rows, columns: columns,
                                 gradient: gradient, classWeights: classWeights.map { _ in weights },
                                 rowWeights: rowWeights.map { _ in weights + (classWeights == nil ? 0 : columns) },
                                 simd: simd, avx512: avx512)
        }
    }

    /// Cross-entropy over class labels without weights, sixteen rows at a time
    /// (`mlpkit_softmax_cross_entropy_avx512`: the scalar loop's operations for each row, so its
    /// bits), in blocks of `softmaxBlock` rows whose labels and losses stay on the stack; the loss
    /// sum in row order in Float64, as the loop adds it. For a gradient apart from the logits. Nil
    /// where the output has more columns than the kernel takes, or a label is not a class: then the
    /// loop writes every row's gradient again (the rows of the blocks before it too) and poisons the
    /// loss.
    /// mnist's 128×10 output, a hot loop: 4.7–5.1 → 2.5–2.7 µs a call.
    private static func softmaxRows(
        output: UnsafePointer<Float>, labels target: UnsafePointer<Float>, rows: Int, columns: Int,
        gradient: UnsafeMutablePointer<Float>, scale: Float
    ) -> Float? {
        guard columns <= Int(MLPKIT_SOFTMAX_COLUMNS) else { return nil }
        var total = 0.0
        let classified = withUnsafeTemporaryAllocation(of: Int32.self, capacity: softmaxBlock) { labels in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: softmaxBlock) { losses in
                for first in stride(from: 0, to: rows, by: softmaxBlock) {
                    let block = min(softmaxBlock, rows - first)
                    for i in 0..<block {
                        let label = classLabel(target[first + i], classes: columns)
                        guard label >= 0 else { return false }
                        labels[i] = Int32(label)
                    }
                    mlpkit_softmax_cross_entropy_avx512(output + first * columns, labels.baseAddress!, block, columns, scale,
                                                        gradient + first * columns, losses.baseAddress!)
                    for i in 0..<block { total += Double(losses[i]) }
                }
                return true
            }
        }
        return classified ? Float(total) : nil
    }

    /// Rows a block of `softmaxRows` (its labels and losses 1 KiB each).
    static let softmaxBlock = 256

    /// A class-index target read as its class, as the GPU kernels' `class_label` reads it: a whole
    /// number in 0..<classes, or −1 for anything else (a fraction, a negative, NaN, ±∞, a class the
    /// output does not have), which makes the loss NaN whatever the loss.
    @inline(__always)
    static func classLabel(_ value: Float, classes: Int) -> Int {
        guard value >= 0, value < 2_147_483_648, value == value.rounded(.down) else { return -1 }
        let label = Int(value)
        return label < classes ? label : -1
    }
}

extension LossKernels {
    private struct SquaredErrorJob {
        var output: UnsafePointer<Float>
        var target: UnsafePointer<Float>
        var gradient: UnsafeMutablePointer<Float>
        var rowSums: UnsafeMutablePointer<Float>
        var columns: Int
        var scale: Float
    }

    /// The dense mean squared error with the AVX2 rows kernel, split across threads by blocks of
    /// rows for a large output (the wide configuration's 512×1024: 1.1 ms in the four-row Swift
    /// loop on the 2-core machine). Each row's sum is the row loop's, bit for bit, and the
    /// Float64 total adds them in row order here, so the result does not depend on the split.
    static func meanSquaredErrorRows(
        output: UnsafePointer<Float>, target: UnsafePointer<Float>, rows: Int, columns: Int,
        gradient: UnsafeMutablePointer<Float>, scale: Float
    ) -> Float {
        // the rows' sums in a temporary buffer (on the stack when small), not a heap allocation per step
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows) { rowSums in
            let rowSums = rowSums.baseAddress!
            var job = SquaredErrorJob(output: output, target: target, gradient: gradient, rowSums: rowSums, columns: columns,
                                      scale: scale)
            withUnsafePointer(to: &job) { context in
                // blocks of rows a multiple of the kernel's eight
                ParallelChunks.rows(rows, columns: columns, multiple: 8, context: context) { context, start, end in
                    let job = context.assumingMemoryBound(to: SquaredErrorJob.self).pointee
                    mlpkit_mse_rows_avx2(job.output, job.target, job.gradient, start, end, job.columns, job.scale, job.rowSums)
                }
            }
            var total = 0.0
            for i in 0..<rows { total += 0.5 * Double(rowSums[i]) }
            return Float(total)
        }
    }
}

/// The lanes' square roots with the vector instruction (`sqrtps`, SSE: every x86-64 has it):
/// the standard library's `SIMD8.squareRoot()` takes them one lane at a time, which was most of
/// Adam's time. IEEE square roots are correctly rounded either way, so the result is the same.
@inline(__always)
func squareRoot(_ x: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(x86_64)
    return SIMD8(lowHalf: _mm_sqrt_ps(x.lowHalf), highHalf: _mm_sqrt_ps(x.highHalf))
    #else
    return x.squareRoot()
    #endif
}

extension MLPKitAdamJob {
    init(theta: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
         v: UnsafeMutablePointer<Float>, beta1: Float, beta2: Float, alpha: Float, epsilon: Float, correction1: Float,
         correction2: Float, gradientScale: Float, decay: Float, clips: Bool, decays: Bool) {
        self.init(theta: theta, g: g, m: m, v: v, beta1: beta1, beta2: beta2, alpha: alpha, epsilon: epsilon,
                  correction1: correction1, correction2: correction2, gradientScale: gradientScale, decay: decay,
                  clips: clips ? 1 : 0, decays: decays ? 1 : 0)
    }

    /// Whether the gradient is scaled by `gradientScale` (clipping by global norm).
    var clipsGradient: Bool { clips != 0 }
    /// Whether θ is decayed by `decay` first (AdamW).
    var decaysParameters: Bool { decays != 0 }
}
