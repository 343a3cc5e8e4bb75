#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the learning rate α_t of step t (Adam's t, from 1) follows from the base rate α.
///
/// A schedule counts its own steps τ = t − `start` (τ = 1 at the first step after `start`), so a
/// schedule begun on a resumed checkpoint at step t₀ starts from its beginning there; a fresh
/// model has start 0 and τ = t. Rates are computed in Float64 and rounded once to Float32, and
/// depend on t only, so a run resumed with the same schedule takes exactly the rates of an
/// uninterrupted one.
public enum LearningRateSchedule: Sendable, Equatable, CustomStringConvertible {
    /// α_t = α.
    case constant
    /// Step decay: α_t = α · γ^floor((τ − 1) / N) for step size N ≥ 1 (PyTorch's StepLR).
    case step(stepSize: Int, gamma: Float, start: Int = 0)
    /// Linear warm-up for W steps, then half a cosine down to 0 at τ = T:
    /// α_t = α · τ / W for τ ≤ W, α · 0.5 · (1 + cos(π · (τ − W) / (T − W))) for W < τ < T, and 0
    /// from τ = T on. T is the schedule's total number of steps (for the command line: the steps
    /// of the run that started it, which resumed runs continue).
    case cosine(warmupSteps: Int, totalSteps: Int, start: Int = 0)

    /// Throws unless the parameters make sense: N ≥ 1, γ finite and > 0, 0 ≤ W < T, start ≥ 0.
    public func validate() throws {
        switch self {
        case .constant:
            break
        case let .step(stepSize, gamma, start):
            guard stepSize >= 1 else { throw ModelError.invalidHyperparameter("the step size must be at least 1, got \(stepSize)") }
            guard gamma.isFinite, gamma > 0 else { throw ModelError.invalidHyperparameter("gamma must be a positive number, got \(gamma)") }
            guard start >= 0 else { throw ModelError.invalidHyperparameter("the schedule's start step must be at least 0, got \(start)") }
        case let .cosine(warmupSteps, totalSteps, start):
            guard warmupSteps >= 0 else { throw ModelError.invalidHyperparameter("warm-up steps must be at least 0, got \(warmupSteps)") }
            guard totalSteps >= 1 else { throw ModelError.invalidHyperparameter("the schedule's total steps must be at least 1, got \(totalSteps)") }
            guard warmupSteps < totalSteps else {
                throw ModelError.invalidHyperparameter("the warm-up (\(warmupSteps) steps) must be shorter than the schedule (\(totalSteps) steps)")
            }
            guard start >= 0 else { throw ModelError.invalidHyperparameter("the schedule's start step must be at least 0, got \(start)") }
        }
    }

    /// Whether `validate()` accepts the schedule (its messages are built only when it throws).
    var isValid: Bool { (try? validate()) != nil }

    /// α_t for Adam's step t ≥ 1 and base rate α.
    ///
    /// Never traps: a schedule that `validate()` refuses gives 0 (training validates the schedule
    /// and throws before using it), and a step t at or before the schedule's start counts as its
    /// first step τ = 1, however far before it is.
    public func rate(base: Float, step t: Int) -> Float {
        guard isValid else { return 0 }
        // τ = t − start, at least 1; start ≥ 0 here, so only a t far below 0 can overflow
        func tau(_ start: Int) -> Int {
            let (difference, overflow) = t.subtractingReportingOverflow(start)
            return overflow ? 1 : max(difference, 1)
        }
        switch self {
        case .constant:
            return base
        case let .step(stepSize, gamma, start):
            let tau = tau(start)
            return Float(Double(base) * pow(Double(gamma), Double((tau - 1) / stepSize)))
        case let .cosine(warmupSteps, totalSteps, start):
            let tau = tau(start)
            if tau <= warmupSteps { return Float(Double(base) * Double(tau) / Double(warmupSteps)) }
            if tau >= totalSteps { return 0 }
            let progress = Double(tau - warmupSteps) / Double(totalSteps - warmupSteps)
            return Float(Double(base) * 0.5 * (1 + cos(Double.pi * progress)))
        }
    }

    /// "constant", "step", "cosine".
    public var name: String {
        switch self {
        case .constant: return "constant"
        case .step: return "step"
        case .cosine: return "cosine"
        }
    }

    public var description: String {
        switch self {
        case .constant:
            return "constant"
        case let .step(stepSize, gamma, start):
            return "step (×\(gamma) every \(stepSize) steps\(start > 0 ? " from step \(start)" : ""))"
        case let .cosine(warmupSteps, totalSteps, start):
            return "cosine (\(warmupSteps) warm-up steps, \(totalSteps) steps\(start > 0 ? " from step \(start)" : ""))"
        }
    }

    // MARK: - Checkpoint metadata

    /// The metadata keys a schedule is stored under.
    public static let metadataKeys = ["schedule", "schedule.step_size", "schedule.gamma", "schedule.warmup_steps",
                                      "schedule.total_steps", "schedule.start_step"]

    /// The schedule as checkpoint metadata: `schedule` (its name) and its parameters.
    public var metadata: [String: String] {
        switch self {
        case .constant:
            return ["schedule": "constant"]
        case let .step(stepSize, gamma, start):
            return ["schedule": "step", "schedule.step_size": String(stepSize), "schedule.gamma": "\(gamma)",
                    "schedule.start_step": String(start)]
        case let .cosine(warmupSteps, totalSteps, start):
            return ["schedule": "cosine", "schedule.warmup_steps": String(warmupSteps),
                    "schedule.total_steps": String(totalSteps), "schedule.start_step": String(start)]
        }
    }

    /// The schedule recorded in `metadata`, nil when there is none.
    /// - Throws: `ModelError.invalidHyperparameter` naming a missing or malformed entry, with its value.
    public init?(metadata: [String: String]) throws {
        guard let name = metadata["schedule"] else {
            // a schedule's settings without the schedule they belong to are a damaged file, not "no schedule"
            if let orphan = metadata.keys.filter({ $0.hasPrefix("schedule.") }).min() {
                throw ModelError.invalidHyperparameter("\(Checkpoint.shown(orphan)) is recorded without the schedule key it belongs to")
            }
            return nil
        }
        func integer(_ key: String, atLeast lower: Int, atMost upper: Int = Int.max) throws -> Int {
            guard let text = metadata[key] else { throw ModelError.invalidHyperparameter("the \(name) schedule has no \(key)") }
            guard let value = Int(text), value >= lower, value <= upper else {
                throw ModelError.invalidHyperparameter("\(key) \(Checkpoint.shown(text)) is not an integer from \(lower) to \(upper)")
            }
            return value
        }
        // the start is an Adam step t, bounded as Adam's own count is
        func start() throws -> Int { try integer("schedule.start_step", atLeast: 0, atMost: OptimizerState.maximumStep) }
        switch name {
        case "constant":
            self = .constant
        case "step":
            guard let text = metadata["schedule.gamma"] else {
                throw ModelError.invalidHyperparameter("the step schedule has no schedule.gamma")
            }
            guard let gamma = Float(text), gamma.isFinite, gamma > 0 else {
                throw ModelError.invalidHyperparameter("schedule.gamma \(Checkpoint.shown(text)) is not a positive number")
            }
            self = .step(stepSize: try integer("schedule.step_size", atLeast: 1), gamma: gamma, start: try start())
        case "cosine":
            let warmup = try integer("schedule.warmup_steps", atLeast: 0), total = try integer("schedule.total_steps", atLeast: 1)
            guard warmup < total else {
                throw ModelError.invalidHyperparameter(
                    "schedule.warmup_steps \(warmup) is not less than schedule.total_steps \(total): the warm-up must be shorter than the schedule")
            }
            self = .cosine(warmupSteps: warmup, totalSteps: total, start: try start())
        default:
            throw ModelError.invalidHyperparameter("schedule \(Checkpoint.shown(name)) is not constant, step or cosine")
        }
        try validate()
    }
}

/// Early stopping on the validation loss: after each epoch, `record` says whether the loss
/// improved on the best so far (strictly lower) and whether `patience` epochs in a row have now
/// passed without improvement, so the run should stop (and keep the best epoch's model).
public struct EarlyStopping: Sendable, Equatable {
    /// Epochs without improvement that end the run (≥ 1).
    public let patience: Int
    /// The epoch with the lowest validation loss so far, and that loss.
    public private(set) var best: (epoch: Int, loss: Double)?
    /// Epochs since the best one.
    public private(set) var epochsWithoutImprovement = 0

    public enum Decision: Sendable, Equatable {
        /// A new best: keep this epoch's model.
        case improved
        /// No improvement, but fewer than `patience` epochs in a row.
        case wait
        /// `patience` epochs in a row without improvement: stop.
        case stop
    }

    public init(patience: Int) throws {
        guard patience >= 1 else { throw ModelError.invalidHyperparameter("patience must be at least 1, got \(patience)") }
        self.patience = patience
    }

    /// Records `epoch`'s validation loss. A NaN loss never improves.
    public mutating func record(epoch: Int, validationLoss loss: Double) -> Decision {
        if loss < (best?.loss ?? .infinity) {
            best = (epoch, loss)
            epochsWithoutImprovement = 0
            return .improved
        }
        epochsWithoutImprovement += 1
        return epochsWithoutImprovement >= patience ? .stop : .wait
    }

    public static func == (a: EarlyStopping, b: EarlyStopping) -> Bool {
        a.patience == b.patience && a.best?.epoch == b.best?.epoch && a.best?.loss == b.best?.loss
            && a.epochsWithoutImprovement == b.epochsWithoutImprovement
    }
}
