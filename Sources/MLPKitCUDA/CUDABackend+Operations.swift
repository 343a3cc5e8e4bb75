import MLPKit
import MLPKitKernels

/// The `Backend` operations come from `KernelLaunchingBackend`: the portable kernels planned by
/// `KernelLaunchPlanner` (the geometry of `MLPKitKernels/NOTES.md`), launched asynchronously on
/// the backend's stream.
extension CUDABackend: KernelLaunchingBackend {
    /// Blocks per multiprocessor for the grid-stride element-wise kernels: 32 × 256 threads, so
    /// that a long pass (Adam over millions of parameters) keeps enough loads in flight (8 per SM
    /// ran Adam over the wide config's 8.4M parameters at 2.7 TB/s on an H200).
    private static let elementBlocksPerMultiprocessor = 32

    /// Makes the device's step counter hold `step`: one `advance_step` launch when it holds the
    /// previous step (inside a graph too, so a replayed step needs no host write), else a
    /// stream-ordered 32-bit memset (queued, never waited for).
    public func setDeviceStep(_ step: Int) throws(CUDAError) {
        if deviceStep == step { return }
        if let current = deviceStep, current + 1 == step {
            try submit(launchPlanner.advanceStep(stepCounter: stepCounter))
        } else {
            let value = try planned { () throws(KernelPlanError) in try KernelLaunchPlanner.int32(step, "Adam step") }
            try context.makeCurrent()
            try cu.check(cu.memorySet32Async(stepCounter.address, UInt32(bitPattern: value), 1, stream),
                         "cuMemsetD32Async (Adam's step)")
        }
        deviceStep = step
    }

    /// Adam's t as the device's counter holds it (waits for queued work).
    public func deviceStepCounter() throws(CUDAError) -> Int {
        var value: Float = 0
        try withUnsafeMutablePointer(to: &value) { (pointer) throws(CUDAError) in
            try download(BufferSlice(stepCounter), count: 1, into: UnsafeMutableBufferPointer(start: pointer, count: 1))
        }
        return Int(Int32(bitPattern: value.bitPattern))
    }

    public func makeScratchBuffer(count: Int) throws(CUDAError) -> CUDABuffer {
        try makeBuffer(count: count)
    }

    /// The launch planner for this program's tiles: element-wise kernels in blocks of the
    /// program's `elementThreads` (256 or the kernels' limit), at most
    /// `elementBlocksPerMultiprocessor` blocks per SM (the kernels loop past it).
    public var launchPlanner: KernelLaunchPlanner {
        KernelLaunchPlanner(tiles: tiles, elementThreads: program.elementThreads,
                            maxElementBlocks: max(1, device.multiprocessors * Self.elementBlocksPerMultiprocessor),
                            parallelism: productParallelism ?? device.multiprocessors)
    }

    /// Launches (or records) a planned launch: a grid of `blocks`, blocks of `threads`.
    public func submit(_ plan: KernelLaunchPlan<CUDABuffer>) throws(CUDAError) {
        try launch(plan.kernel, grid: Dim3(x: UInt32(plan.blocksX), y: UInt32(plan.blocksY)),
                   block: Dim3(x: UInt32(plan.threads)),
                   sharedBytes: UInt32(plan.kernel.dynamicSharedBytes(tiles)), plan.arguments.map { argument in
            switch argument {
            case let .buffer(buffer): .buffer(buffer)
            case let .int(value): .int(value)
            case let .float(value): .float(value)
            }
        })
    }

    public static func launchError(_ error: KernelPlanError) -> CUDAError {
        switch error {
        case let .invalidArgument(reason): .invalidArgument(reason)
        case let .noLossKernel(loss): .invalidArgument("the CUDA backend has no kernel for the \(loss.rawValue) loss yet")
        }
    }

    public var adamStepCounter: CUDABuffer { stepCounter }
}

extension CUDABuffer: KernelPlanBuffer {}
