import MLPKit

/// A GPU backend that runs the portable kernels: it submits `KernelLaunchPlan`s its own way and
/// maps `KernelPlanError` onto its own typed error; the `Backend` operations themselves (checks,
/// kernel choice, geometry, arguments) come from `KernelLaunchPlanner` through this extension.
public protocol KernelLaunchingBackend: Backend where Buffer: KernelPlanBuffer {
    associatedtype LaunchError: Error

    /// The planner for the compiled tiles and the backend's element-wise geometry.
    var launchPlanner: KernelLaunchPlanner { get }
    /// The device's Adam step counter (one int32), read by `adam_update`.
    var adamStepCounter: Buffer { get }
    /// Queues (or records) one planned launch.
    func submit(_ plan: KernelLaunchPlan<Buffer>) throws(LaunchError)
    /// A planning error as the backend's error.
    static func launchError(_ error: KernelPlanError) -> LaunchError
    /// The scratch buffers the kernels use, by purpose (`scratchBuffer(_:count:)` fills it).
    var scratchBuffers: [KernelScratch: Buffer] { get set }
    /// A new zero-filled device buffer of `count` floats (`makeBuffer`, with the typed error).
    func makeScratchBuffer(count: Int) throws(LaunchError) -> Buffer
    /// Makes the device's step counter hold `step` (queued).
    func setDeviceStep(_ step: Int) throws(LaunchError)
    /// The loss whose kernel runs for `loss` (default: `loss` itself).
    func kernelLoss(_ loss: Loss) -> Loss
}

/// What a backend's scratch buffer is for. Work runs in order on one queue or stream (and a CUDA
/// graph keeps the buffers its nodes name), so one buffer per purpose serves every launch.
public enum KernelScratch: Hashable, Sendable {
    /// Per-row losses before `sum_reduce` totals them.
    case rowLosses
    /// The slices of split-k products before `gemm_splitk_sum` adds them.
    case productWorkspace
    /// Gradient clipping's partial sums of squares and the scale `adamw_update` reads.
    case clip
}

extension KernelLaunchingBackend {
    public func kernelLoss(_ loss: Loss) -> Loss { loss }

    /// The scratch buffer for `purpose`, at least `count` floats: kept, and replaced by a larger
    /// one when a launch needs more.
    public func scratchBuffer(_ purpose: KernelScratch, count: Int) throws(LaunchError) -> Buffer {
        if let buffer = scratchBuffers[purpose], buffer.count >= count { return buffer }
        let buffer = try makeScratchBuffer(count: max(count, 256))
        scratchBuffers[purpose] = buffer
        return buffer
    }

    /// Runs a planning step, its `KernelPlanError` as the backend's error.
    public func planned<T>(_ body: () throws(KernelPlanError) -> T) throws(LaunchError) -> T {
        do {
            return try body()
        } catch {
            throw Self.launchError(error)
        }
    }

    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<Buffer>, b: BufferSlice<Buffer>, c: BufferSlice<Buffer>,
        epilogue: ProductEpilogue<Buffer>
    ) throws(LaunchError) {
        let plan = try planned { () throws(KernelPlanError) in
            try launchPlanner.matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: epilogue)
        }
        guard let plan else { return }
        let workspace = plan.workspaceCount > 0 ? try scratchBuffer(.productWorkspace, count: plan.workspaceCount) : nil
        for launch in plan.launches(workspace: workspace) {
            try submit(launch)
        }
    }

    public func columnSums(_ matrix: BufferSlice<Buffer>, rows: Int, columns: Int,
                           into sums: BufferSlice<Buffer>) throws(LaunchError) {
        let plan = try planned { () throws(KernelPlanError) in
            try launchPlanner.columnSums(matrix, rows: rows, columns: columns, into: sums)
        }
        if let plan { try submit(plan) }
    }

    public func lossGradient(
        _ loss: Loss, targets: TargetEncoding, output: BufferSlice<Buffer>, target: BufferSlice<Buffer>,
        rows: Int, columns: Int, gradient: BufferSlice<Buffer>, lossSum: BufferSlice<Buffer>,
        classWeights: BufferSlice<Buffer>?, rowWeights: BufferSlice<Buffer>?
    ) throws(LaunchError) {
        let kernelLoss = kernelLoss(loss)
        let plan = try planned { () throws(KernelPlanError) in
            try launchPlanner.lossGradient(kernelLoss, targets: targets, output: output, target: target,
                                           rows: rows, columns: columns, gradient: gradient, lossSum: lossSum,
                                           classWeights: classWeights, rowWeights: rowWeights)
        }
        for launch in plan.launches(rowLosses: try scratchBuffer(.rowLosses, count: rows)) {
            try submit(launch)
        }
    }

    public func gatherRows(
        _ source: BufferSlice<Buffer>, width: Int, indices: BufferSlice<Buffer>, count: Int,
        into destination: BufferSlice<Buffer>
    ) throws(LaunchError) {
        let plan = try planned { () throws(KernelPlanError) in
            try launchPlanner.gatherRows(source, width: width, indices: indices, count: count, into: destination)
        }
        if let plan { try submit(plan) }
    }

    public func adamUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws(LaunchError) {
        // weight decay or clipping asked for: AdamW (as the CPU backend's adamUpdate honours them)
        if !hyperparameters.isPlainAdam {
            return try queueAdamW(parameters: parameters, gradients: gradients, firstMoment: firstMoment,
                                  secondMoment: secondMoment, count: count, hyperparameters: hyperparameters, step: step)
        }
        let plan = try planned { () throws(KernelPlanError) in
            try launchPlanner.adamUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment,
                                         secondMoment: secondMoment, count: count, hyperparameters: hyperparameters,
                                         step: step, stepCounter: adamStepCounter)
        }
        guard let plan else { return }
        try setDeviceStep(step)
        try submit(plan)
    }
}
