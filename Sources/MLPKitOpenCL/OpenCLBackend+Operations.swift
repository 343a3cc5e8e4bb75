import MLPKit
import MLPKitKernels

/// The `Backend` operations come from `KernelLaunchingBackend` (planned by `KernelLaunchPlanner`);
/// this backend enqueues each plan as work-items in work-groups.
extension OpenCLBackend: KernelLaunchingBackend {
    /// Work-items per group for the kernels that take any group size.
    private static let elementGroup = 64
    /// The most work-items an element-wise launch uses; the kernels loop past it.
    private static let maxElementItems = 1 << 20

    /// The launch planner for this device's tiles: element-wise kernels in groups of `elementGroup`,
    /// at most `maxElementItems` work-items.
    public var launchPlanner: KernelLaunchPlanner {
        KernelLaunchPlanner(tiles: tiles, elementThreads: Self.elementGroup,
                            maxElementBlocks: Self.maxElementItems / Self.elementGroup,
                            parallelism: productParallelism ?? device.computeUnits)
    }

    public var adamStepCounter: OpenCLBuffer { stepCounter }

    /// Enqueues a planned launch: `blocks × threads` work-items in groups of `threads`.
    public func submit(_ plan: KernelLaunchPlan<OpenCLBuffer>) throws(OpenCLError) {
        let global = plan.dimensions == 2 ? [plan.blocksX * plan.threads, plan.blocksY] : [plan.blocksX * plan.threads]
        let local = plan.dimensions == 2 ? [plan.threads, 1] : [plan.threads]
        try program.launch(plan.kernel, queue: queue, global: global, local: local, plan.arguments.map { argument in
            switch argument {
            case let .buffer(buffer): .buffer(buffer)
            case let .int(value): .int(value)
            case let .float(value): .float(value)
            }
        })
    }

    public static func launchError(_ error: KernelPlanError) -> OpenCLError {
        switch error {
        case let .invalidArgument(reason): .invalidArgument(reason)
        case let .noLossKernel(loss): .invalidArgument("the OpenCL backend has no kernel for the \(loss.rawValue) loss yet")
        }
    }

    /// Makes the device's step counter hold `step`: one `advance_step` launch when it holds the
    /// previous step (no host round trip), else a write.
    public func setDeviceStep(_ step: Int) throws(OpenCLError) {
        if deviceStep == step { return }
        if let current = deviceStep, current + 1 == step {
            try submit(launchPlanner.advanceStep(stepCounter: stepCounter))
        } else {
            var value = try planned { () throws(KernelPlanError) in try KernelLaunchPlanner.int32(step, "Adam step") }
            try cl.check(cl.enqueueWriteBuffer(queue, stepCounter.memory, CL.trueValue, 0, MemoryLayout<Int32>.size,
                                               &value, 0, nil, nil),
                         "clEnqueueWriteBuffer")
        }
        deviceStep = step
    }

    public func makeScratchBuffer(count: Int) throws(OpenCLError) -> OpenCLBuffer {
        try makeBuffer(count: count)
    }
}

extension OpenCLBuffer: KernelPlanBuffer {}
