/// One part of a training step, in the order a step runs them: the batch's rows gathered, each
/// layer's forward product (with its bias and activation), the loss and its gradient, each
/// layer's backward pass from the last (its bias gradient, weight gradient and, but for the first
/// layer, the previous layer's delta), and Adam.
public enum StepPhase: Hashable, Sendable, CustomStringConvertible {
    case batch
    case forward(Int)
    case loss
    case backward(Int)
    case optimizer

    /// Every phase of a step of a network with `layerCount` layers, in the order a step runs them.
    public static func all(layerCount: Int) -> [StepPhase] {
        let count = max(layerCount, 0)
        return [.batch] + (0..<count).map { .forward($0 + 1) } + [.loss]
            + (0..<count).map { .backward(count - $0) } + [.optimizer]
    }

    /// The phase's place in `all(layerCount:)`.
    func index(layerCount: Int) -> Int? {
        switch self {
        case .batch: return 0
        case .forward(let layer): return layer >= 1 && layer <= layerCount ? layer : nil
        case .loss: return layerCount + 1
        case .backward(let layer): return layer >= 1 && layer <= layerCount ? 2 * layerCount + 2 - layer : nil
        case .optimizer: return 2 * layerCount + 2
        }
    }

    /// Floating-point operations of the phase's products for `layout` on `batch` rows: a
    /// layer's forward product 2·B·in·out; its backward pass the weight gradient's 2·B·in·out
    /// and, but for the first layer, the delta's as many again. The other phases count none,
    /// so the phases add up to `LayerLayout.trainingFlops(batch:)`.
    public func flops(layout: LayerLayout, batch: Int) -> Double {
        switch self {
        case .forward(let layer) where layer >= 1 && layer <= layout.layerCount:
            return 2 * Double(batch) * Double(layout.sizes[layer - 1] * layout.sizes[layer])
        case .backward(let layer) where layer >= 1 && layer <= layout.layerCount:
            return (layer > 1 ? 4 : 2) * Double(batch) * Double(layout.sizes[layer - 1] * layout.sizes[layer])
        default:
            return 0
        }
    }

    public var description: String {
        switch self {
        case .batch: "batch"
        case .forward(let layer): "forward \(layer)"
        case .loss: "loss"
        case .backward(let layer): "backward \(layer)"
        case .optimizer: "adam"
        }
    }
}

/// The seconds each phase of a session's training steps took (`TrainingSession.phaseClock`).
/// Each phase ends with the backend synchronised, so on an asynchronous backend (CUDA, OpenCL)
/// a phase's time includes waiting for its queued work, and the steps run slower than unclocked
/// ones; on the CPU a reading costs about a clock call.
public final class StepPhaseClock {
    public let layerCount: Int
    /// Every phase in step order.
    public let phases: [StepPhase]
    /// Each phase's seconds, one per clocked step, in `phases`' order.
    public private(set) var seconds: [[Double]]
    private var last = 0.0
    private var running = false

    /// A clock for steps of a network with `layerCount` layers, with room for `capacity` steps
    /// (past it the arrays grow, and the growth is counted in the phase that follows).
    public init(layerCount: Int, capacity: Int = 0) {
        self.layerCount = max(layerCount, 0)
        phases = StepPhase.all(layerCount: layerCount)
        seconds = phases.map { _ in
            var values: [Double] = []
            values.reserveCapacity(max(capacity, 0))
            return values
        }
    }

    /// Steps clocked so far: those whose every phase was read.
    public var steps: Int { seconds.last?.count ?? 0 }

    /// Each phase's median seconds over the steps clocked, in `phases`' order (NaN before the first).
    public var medians: [Double] { seconds.map { Benchmark.median(Array($0.prefix(steps))) } }

    /// Each clocked step's seconds, its phases added up.
    public var stepSeconds: [Double] {
        (0..<steps).map { step in seconds.reduce(0) { $0 + $1[step] } }
    }

    /// Starts a step's first phase now.
    func start() {
        running = true
        last = Benchmark.now()
    }

    /// Ends a step: the phases read after it are not the step's (an evaluation's forward pass),
    /// and a step that threw part-way leaves no times.
    func finish() {
        running = false
        let complete = steps
        for index in seconds.indices where seconds[index].count > complete {
            seconds[index].removeLast(seconds[index].count - complete)
        }
    }

    /// Ends `phase` now (nothing outside a step, such as an evaluation's forward pass).
    func mark(_ phase: StepPhase) {
        guard running, let index = phase.index(layerCount: layerCount) else { return }
        let now = Benchmark.now()
        seconds[index].append(now - last)
        last = now
    }
}
