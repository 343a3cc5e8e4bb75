#if canImport(Glibc)
import Glibc
#endif

/// Timed training steps on random data: the numbers behind `mlp bench`.
public enum Benchmark {
    /// One benchmark configuration: a network (its sizes and hidden activation), a batch size and a loss.
    public struct Configuration: Sendable, Equatable {
        public var name: String
        public var layers: [Int]
        public var batch: Int
        public var loss: Loss
        /// The hidden layers' activation (ReLU, the seed's, in the standard configurations).
        public var activation: ActivationFunction

        public init(name: String, layers: [Int], batch: Int, loss: Loss, activation: ActivationFunction = .relu) {
            self.name = name
            self.layers = layers
            self.batch = batch
            self.loss = loss
            self.activation = activation
        }

        /// Floating-point operations of one training step: 2·B·(3·Σ in·out − h1·h2).
        public var flopsPerStep: Double {
            (try? LayerLayout(sizes: layers).trainingFlops(batch: batch)) ?? 0
        }

        public static let tiny = Configuration(name: "tiny", layers: [32, 64, 64, 1], batch: 64, loss: .meanSquaredError)
        public static let mnist = Configuration(name: "mnist", layers: [784, 256, 128, 10], batch: 128, loss: .crossEntropy)
        public static let wide = Configuration(name: "wide", layers: [1024, 2048, 2048, 1024], batch: 512, loss: .meanSquaredError)
        public static let large = Configuration(name: "large", layers: [4096, 4096, 4096, 4096], batch: 4096, loss: .meanSquaredError)
        /// The CPU configurations, in order.
        public static let standard = [tiny, mnist, wide]
    }

    /// Step times of one configuration.
    public struct Result: Sendable, Equatable {
        public var configuration: Configuration
        public var stepSeconds: [Double]
        /// The ceiling's rate (GFLOP/s) sampled between this configuration's steps, when asked for.
        public var ceilingGflops: Double?

        public init(configuration: Configuration, stepSeconds: [Double], ceilingGflops: Double? = nil) {
            self.configuration = configuration
            self.stepSeconds = stepSeconds
            self.ceilingGflops = ceilingGflops
        }

        public var median: Double { Benchmark.median(stepSeconds) }
        public var minimum: Double { stepSeconds.min() ?? .nan }
        public var maximum: Double { stepSeconds.max() ?? .nan }
        /// GFLOP/s at the median step time.
        public var gflops: Double { configuration.flopsPerStep / median / 1e9 }
    }

    /// Seconds on a monotonic clock.
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Throws `ModelError.invalidHyperparameter` unless there is at least one timed step (and
    /// one step per chunk) and no negative warm-up.
    public static func checkCounts(steps: Int, warmup: Int, chunk: Int = 1) throws {
        guard steps >= 1 else { throw ModelError.invalidHyperparameter("a benchmark needs at least 1 timed step, got \(steps)") }
        guard warmup >= 0 else { throw ModelError.invalidHyperparameter("warm-up steps cannot be negative, got \(warmup)") }
        guard chunk >= 1 else { throw ModelError.invalidHyperparameter("a chunk needs at least 1 step, got \(chunk)") }
    }

    /// How many times the ceiling is timed during `steps` steps: one per ten steps, from 9 to
    /// 31. With 9 samples, their median moved by up to 10% between runs of the wide
    /// configuration on the shared 2-core machine (the same step median gave 91% and 101% of
    /// it), since the machine's rate changes within a minute; more samples of the same stretch
    /// of time make that median steadier, at about 0.1 s each.
    public static func ceilingSamples(steps: Int) -> Int {
        min(31, max(9, steps / 10 + 1))
    }

    /// The rows of `randomSession`'s data for `configuration` (`batches` batches), after checking,
    /// before any data is made, that the network can be built and that the data fits: at most
    /// `Dataset.maximumRows` rows and `maximumRandomElements` values of inputs and targets.
    /// - Throws: `ModelError` naming what does not fit.
    public static func randomDataRows(_ configuration: Configuration, batches: Int = 8) throws -> Int {
        _ = try LayerLayout(sizes: configuration.layers)
        let (rows, overflow) = configuration.batch.multipliedReportingOverflow(by: batches)
        guard configuration.batch >= 1, batches >= 1, !overflow, rows <= Dataset.maximumRows else {
            throw ModelError.dataShape(
                "a benchmark needs a batch and a batch count of at least 1 and at most \(Dataset.maximumRows) rows in all, got \(configuration.batch) × \(batches)")
        }
        let features = configuration.layers[0], outputs = configuration.layers[configuration.layers.count - 1]
        // the random data made on the host (sizes are at most 2^24 and rows 2^24: no overflow)
        let elements = rows * (features + outputs)
        guard elements <= maximumRandomElements else {
            throw ModelError.dataShape(
                "a benchmark's random data would be \(rows) rows of \(features) inputs and \(outputs) targets (\(elements) values); at most \(maximumRandomElements) (1 GiB) are made")
        }
        return rows
    }

    /// A training session of `configuration` on `batches` batches of random data (inputs from a
    /// normal distribution; targets class indices, normal values or 0/1 labels by the loss),
    /// uploaded, with the first epoch's row order set: what each benchmark's steps run on.
    public static func randomSession<B: Backend>(
        _ configuration: Configuration, on backend: B, batches: Int = 8
    ) throws -> (session: TrainingSession<B>, data: DeviceDataset<B>, schedule: BatchSchedule) {
        let rows = try randomDataRows(configuration, batches: batches)
        let features = configuration.layers[0], outputs = configuration.layers[configuration.layers.count - 1]
        var generator = SeededGenerator(seed: 42)
        let inputs = (0..<(rows * features)).map { _ in Float(generator.nextNormal()) }
        let dataset: Dataset
        switch configuration.loss {
        case .crossEntropy:
            let labels = (0..<rows).map { _ in Float(generator.next() % UInt64(outputs)) }
            dataset = try Dataset(inputs: inputs, features: features, targets: labels, encoding: .classIndices, targetWidth: 1)
        case .meanSquaredError:
            let targets = (0..<(rows * outputs)).map { _ in Float(generator.nextNormal()) }
            dataset = try Dataset(inputs: inputs, features: features, targets: targets, encoding: .dense, targetWidth: outputs)
        case .binaryCrossEntropy:
            let targets = (0..<(rows * outputs)).map { _ in Float(generator.next() % 2) }
            dataset = try Dataset(inputs: inputs, features: features, targets: targets, encoding: .dense, targetWidth: outputs)
        }
        let model = try MLP(layerSizes: configuration.layers, activation: configuration.activation, loss: configuration.loss, seed: 1)
        let session = try TrainingSession(model: model, backend: backend, batchCapacity: configuration.batch)
        let data = try session.upload(dataset)
        let schedule = try BatchSchedule(rows: rows, batchSize: configuration.batch, shuffle: true, seed: 3)
        try session.setRowOrder(schedule.order(epoch: 0))
        try session.reserveLossSums(schedule.stepsPerEpoch)
        return (session, data, schedule)
    }

    /// The most values (inputs and targets) `randomSession` makes: 1 GiB of Float32.
    public static let maximumRandomElements = 1 << 28

    /// How long untimed steps run after each ceiling sample. On the 2-core Xeon, after the 2048³
    /// product the next 13 tiny steps took 32–34 µs against 27 µs later (about 0.45 ms), and mnist's
    /// second and third steps after it 740–757 µs against 690 (about 2 ms in all): with one
    /// untimed step, the ceiling's samples every ten steps (`--steps 300`) slowed tiny's median
    /// from 26–27 to 33.6–33.8 µs.
    public static let ceilingSettleSeconds = 0.002

    /// Full training steps (gather, forward, loss, backward, Adam) on random data, each timed
    /// after `warmup` untimed steps. The data set holds 8 batches so steps see changing rows.
    ///
    /// With `ceiling`, its product is timed `ceilingSamples` times (by default
    /// `ceilingSamples(steps:)`) spread over the timed steps
    /// (before the first, then evenly, the last after the last step), each followed by untimed
    /// steps for `ceilingSettleSeconds` (at least one) so that no timed step runs while the
    /// processor is still recovering from the product; `Result.ceilingGflops` is their median
    /// rate. The step and the ceiling are so measured over the same stretch of time: on a
    /// shared machine either rate drifts by tens of percent within a minute.
    public static func run<B: Backend>(
        _ configuration: Configuration, on backend: B, steps: Int, warmup: Int = 10,
        ceiling: ProductCeiling<B>? = nil, ceilingSamples: Int? = nil
    ) throws -> Result {
        let (times, ceilingGflops) = try timedSteps(configuration, on: backend, steps: steps, warmup: warmup, ceiling: ceiling,
                                                    ceilingSamples: ceilingSamples, clock: nil)
        return Result(configuration: configuration, stepSeconds: times, ceilingGflops: ceilingGflops)
    }

    /// `run`'s steps: each step's seconds and the ceiling's median rate over its samples (when
    /// asked for); with `clock`, the timed steps (not the warm-up or settling ones) run with it.
    private static func timedSteps<B: Backend>(
        _ configuration: Configuration, on backend: B, steps: Int, warmup: Int,
        ceiling: ProductCeiling<B>?, ceilingSamples: Int?, clock: StepPhaseClock?
    ) throws -> (times: [Double], ceilingGflops: Double?) {
        try checkCounts(steps: steps, warmup: warmup)
        if let ceilingSamples, ceilingSamples < 1 {
            throw ModelError.invalidHyperparameter("a benchmark needs at least 1 ceiling sample, got \(ceilingSamples)")
        }
        let ceilingSamples = ceilingSamples ?? Self.ceilingSamples(steps: steps)
        let (session, data, schedule) = try randomSession(configuration, on: backend)
        var times: [Double] = []
        times.reserveCapacity(steps)
        var ceilingTimes: [Double] = []
        // timed steps before which the ceiling is sampled (one more sample follows the last)
        let interval = max(1, steps / max(ceilingSamples - 1, 1))
        var index = 0
        func step(timed: Bool) throws {
            let (_, positions) = schedule.batch(step: index)
            session.phaseClock = timed ? clock : nil
            let start = now()
            try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: index % schedule.stepsPerEpoch)
            try backend.synchronize()
            if timed { times.append(now() - start) }
            index += 1
        }
        for _ in 0..<warmup { try step(timed: false) }
        for timedIndex in 0..<steps {
            if let ceiling, ceilingSamples > 0, timedIndex % interval == 0, ceilingTimes.count < ceilingSamples - 1 {
                ceilingTimes.append(try ceiling.sample())
                let sampled = now()
                repeat { try step(timed: false) } while now() - sampled < ceilingSettleSeconds
            }
            try step(timed: true)
        }
        session.phaseClock = nil
        if let ceiling, ceilingSamples > 0 { ceilingTimes.append(try ceiling.sample()) }
        guard let loss = try session.lastLoss(), loss.isFinite else {
            throw ModelError.nonFinite("the benchmark's loss is not finite")
        }
        return (times, ceiling.flatMap { ceilingTimes.isEmpty ? nil : $0.gflops(seconds: median(ceilingTimes)) })
    }

    /// Where a configuration's step time goes: each phase's median seconds over clocked steps.
    public struct Breakdown: Sendable, Equatable {
        public struct Phase: Sendable, Equatable {
            public var phase: StepPhase
            /// Median seconds over the clocked steps.
            public var seconds: Double
            /// Floating-point operations of the phase's products (`StepPhase.flops`).
            public var flops: Double
            /// GFLOP/s of the phase's products at its median (0 for a phase without products).
            public var gflops: Double { flops > 0 ? flops / seconds / 1e9 : 0 }
        }

        public var configuration: Configuration
        /// Phases in step order.
        public var phases: [Phase]
        /// The clocked steps' median, their phases added up.
        public var stepSeconds: Double
        /// How many steps were clocked.
        public var steps: Int
        /// The ceiling's rate (GFLOP/s) sampled between the clocked steps, when asked for.
        public var ceilingGflops: Double?

        /// The phases' medians added up.
        public var phaseSeconds: Double { phases.reduce(0) { $0 + $1.seconds } }
        /// The forward and backward phases: the products with the passes they carry.
        public var productPhases: [Phase] { phases.filter { $0.flops > 0 } }
    }

    /// `run`'s steps with a `StepPhaseClock`, on a session of their own: each phase's median
    /// over the `steps` clocked steps, and with `ceiling` its rate sampled between them as `run`
    /// samples it. The clock synchronises the backend after every phase, so on an asynchronous
    /// backend the clocked steps are slower than `run`'s: they say where the time goes, `run`
    /// how long a step takes.
    public static func breakdown<B: Backend>(
        _ configuration: Configuration, on backend: B, steps: Int, warmup: Int = 10,
        ceiling: ProductCeiling<B>? = nil, ceilingSamples: Int? = nil
    ) throws -> Breakdown {
        let layout = try LayerLayout(sizes: configuration.layers)
        let clock = StepPhaseClock(layerCount: layout.layerCount, capacity: steps)
        let (_, ceilingGflops) = try timedSteps(configuration, on: backend, steps: steps, warmup: warmup, ceiling: ceiling,
                                                ceilingSamples: ceilingSamples, clock: clock)
        let phases = zip(clock.phases, clock.medians).map { phase, seconds in
            Breakdown.Phase(phase: phase, seconds: seconds, flops: phase.flops(layout: layout, batch: configuration.batch))
        }
        return Breakdown(configuration: configuration, phases: phases, stepSeconds: median(clock.stepSeconds), steps: clock.steps,
                         ceilingGflops: ceilingGflops)
    }

    /// A large square product (n×n times n×n, in the NN layout) through a backend, timed one at a
    /// time: the machine's ceiling that training steps are compared with.
    public final class ProductCeiling<B: Backend> {
        public let size: Int
        let backend: B
        let a: B.Buffer, b: B.Buffer, c: B.Buffer
        /// Seconds of every product timed so far.
        public private(set) var samples: [Double] = []

        /// Allocates and fills the operands and runs one untimed product.
        /// - Throws: `ModelError.dataShape` unless 1 ≤ `size` ≤ 16384 (three 1 GiB operands).
        public init(on backend: B, size: Int = 2048) throws {
            guard size >= 1, size <= 16384 else {
                throw ModelError.dataShape("the ceiling's product needs a size from 1 to 16384, got \(size)")
            }
            self.backend = backend
            self.size = size
            var generator = SeededGenerator(seed: 9)
            let values = (0..<(size * size)).map { _ in Float(generator.nextNormal()) }
            a = try backend.makeBuffer(count: size * size)
            b = try backend.makeBuffer(count: size * size)
            c = try backend.makeBuffer(count: size * size)
            try values.withUnsafeBufferPointer {
                try backend.upload($0, to: BufferSlice(a))
                try backend.upload($0, to: BufferSlice(b))
            }
            try product()
        }

        private func product() throws {
            try backend.matrixProduct(.nn, m: size, n: size, k: size, a: BufferSlice(a), b: BufferSlice(b), c: BufferSlice(c),
                                      epilogue: .none)
            try backend.synchronize()
        }

        /// Times one product and returns its seconds (also kept in `samples`).
        @discardableResult
        public func sample() throws -> Double {
            let start = Benchmark.now()
            try product()
            let seconds = Benchmark.now() - start
            samples.append(seconds)
            return seconds
        }

        /// GFLOP/s of a product that took `seconds`.
        public func gflops(seconds: Double) -> Double {
            2 * Double(size) * Double(size) * Double(size) / seconds / 1e9
        }

        /// GFLOP/s at the median of every sample so far (NaN before the first).
        public var gflops: Double { gflops(seconds: Benchmark.median(samples)) }
    }
}
