import MLPKit
import MLPKitKernels

/// Timed training steps and products on a CUDA device with CUDA events: the numbers behind
/// `mlp bench --device cuda`.
///
/// Steps run back to back in chunks; a pair of events brackets each chunk, so a chunk's time is
/// the device timeline from its first kernel to its last, gaps from slow launching included,
/// with no host synchronisation inside it. The result is the median over chunks of the time per step.
public enum CUDABenchmark {
    /// The CPU benchmark's configurations plus the large one ([4096,4096,4096,4096], batch 4096).
    public static let configurations = Benchmark.Configuration.standard + [.large]

    /// Step times of one configuration.
    public struct Result: Sendable {
        public var configuration: Benchmark.Configuration
        /// Whether each step ran as one CUDA graph launch (`CUDABackend.graphed`) or as separate launches.
        public var graphed: Bool
        /// Seconds per step, one value per timed chunk.
        public var stepSeconds: [Double]

        public var median: Double { CUDABenchmark.median(stepSeconds) }
        public var minimum: Double { stepSeconds.min() ?? .nan }
        public var maximum: Double { stepSeconds.max() ?? .nan }
        /// TFLOP/s at the median, counting 2·B·(3·Σ in·out − h1·h2) per step.
        public var tflops: Double { configuration.flopsPerStep / median / 1e12 }
    }

    /// One product layout's rate.
    public struct ProductResult: Sendable {
        public var layout: ProductLayout
        public var size: Int
        /// Seconds per product, one per repetition.
        public var seconds: [Double]
        public var median: Double { CUDABenchmark.median(seconds) }
        public var tflops: Double { 2 * Double(size) * Double(size) * Double(size) / median / 1e12 }
    }

    /// Full training steps (gather, forward, loss, backward, Adam) through `TrainingSession` on
    /// random data, after `warmup` untimed steps, in chunks of `chunk` steps.
    /// - Throws: `ModelError.invalidHyperparameter` for fewer than one step or chunk, or a negative
    ///   warm-up; `ModelError.nonFinite` when the loss is not finite at the end; the backend's errors.
    public static func run(_ configuration: Benchmark.Configuration, on backend: CUDABackend, steps: Int = 200,
                           warmup: Int = 20, chunk: Int = 10, graphed: Bool = true) throws -> Result {
        try Benchmark.checkCounts(steps: steps, warmup: warmup, chunk: chunk)
        let (session, data, schedule) = try Benchmark.randomSession(configuration, on: backend,
                                                                    batches: configuration.batch >= 4096 ? 2 : 8)
        var index = 0
        func step() throws {
            let (_, positions) = schedule.batch(step: index)
            let slot = index % schedule.stepsPerEpoch
            if graphed {
                try backend.graphed { try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot) }
            } else {
                try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot)
            }
            index += 1
        }
        for _ in 0..<warmup { try step() }
        try backend.synchronize()
        var times: [Double] = []
        var remaining = steps
        while remaining > 0 {
            let count = min(chunk, remaining)
            let seconds = try backend.timeQueuedWork { for _ in 0..<count { try step() } }
            times.append(seconds / Double(count))
            remaining -= count
        }
        guard let loss = try session.lastLoss(), loss.isFinite else {
            throw ModelError.nonFinite("the benchmark's loss is not finite")
        }
        return Result(configuration: configuration, graphed: graphed, stepSeconds: times)
    }

    /// The backend's product at `size`³ in each layout (median of `repetitions`, each timed with
    /// events, inputs rotated between two sets so that the L2 cache does not hold them).
    public static func products(on backend: CUDABackend, size: Int = 4096, repetitions: Int = 20,
                                layouts: [ProductLayout] = ProductLayout.allCases) throws -> [ProductResult] {
        var generator = SeededGenerator(seed: 9)
        let elements = size * size
        var operands: [(CUDABuffer, CUDABuffer)] = []
        for _ in 0..<2 {
            let a = try backend.makeBuffer(count: elements), b = try backend.makeBuffer(count: elements)
            for buffer in [a, b] {
                let values = (0..<elements).map { _ in Float(generator.nextNormal()) }
                try values.withUnsafeBufferPointer { try backend.upload($0, to: BufferSlice(buffer)) }
            }
            operands.append((a, b))
        }
        let c = try backend.makeBuffer(count: elements)
        return try layouts.map { layout in
            var seconds: [Double] = []
            for repetition in 0..<(repetitions + 3) {
                let (a, b) = operands[repetition % 2]
                let time = try backend.timeQueuedWork {
                    try backend.matrixProduct(layout, m: size, n: size, k: size, a: BufferSlice(a), b: BufferSlice(b),
                                              c: BufferSlice(c), epilogue: .none)
                }
                if repetition >= 3 { seconds.append(time) }
            }
            return ProductResult(layout: layout, size: size, seconds: seconds)
        }
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

extension CUDABackend {
    /// Seconds between an event recorded before the work `body` queues and one after it, on the
    /// device's timeline; waits for the second event.
    public func timeQueuedWork(_ body: () throws -> Void) throws -> Double {
        try refuseWhileRecording("timing")
        try context.makeCurrent()
        var start: CUHandle?, end: CUHandle?
        try cu.check(cu.eventCreate(&start, CU.eventDefault), "cuEventCreate")
        defer { _ = cu.eventDestroy(start) }
        try cu.check(cu.eventCreate(&end, CU.eventDefault), "cuEventCreate")
        defer { _ = cu.eventDestroy(end) }
        try cu.check(cu.eventRecord(start, stream), "cuEventRecord")
        try body()
        try context.makeCurrent()
        try cu.check(cu.eventRecord(end, stream), "cuEventRecord")
        try cu.check(cu.eventSynchronize(end), "cuEventSynchronize")
        var milliseconds: Float = 0
        try cu.check(cu.eventElapsedTime(&milliseconds, start, end), "cuEventElapsedTime")
        return Double(milliseconds) / 1e3
    }
}
