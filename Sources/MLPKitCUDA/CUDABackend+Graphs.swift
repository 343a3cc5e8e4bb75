import MLPKit

/// An instantiated CUDA graph of kernel launches in a chain (each node depends on the one before,
/// as the launches would run on one stream), with the node of every launch so that arguments can
/// be patched in place (`cuGraphExecKernelNodeSetParams_v2`) between replays.
///
/// The graph keeps every buffer its current arguments name alive, so a replay never touches
/// freed memory.
public final class CUDAGraph {
    /// Kernel nodes in launch order.
    public var nodeCount: Int { nodes.count }

    private let context: CUDAContext
    private let graph: CUHandle
    let exec: CUHandle
    private let nodes: [CUHandle]
    /// The launches as the graph will run them next (arguments included).
    private(set) var launches: [KernelLaunch]

    /// Builds and instantiates the chain of `launches` (at least one).
    init(context: CUDAContext, launches: [KernelLaunch]) throws(CUDAError) {
        let cu = context.cu
        try context.makeCurrent()
        var graph: CUHandle?
        try cu.check(cu.graphCreate(&graph, 0), "cuGraphCreate")
        guard let graph else { throw .invalidArgument("cuGraphCreate returned no graph") }
        var nodes: [CUHandle] = []
        nodes.reserveCapacity(launches.count)
        do throws(CUDAError) {
            for launch in launches {
                var node: CUHandle?
                let status: Int32
                if let previous = nodes.last {
                    var dependency: CUHandle? = previous
                    status = KernelNodeParameters.with(launch) { cu.graphAddKernelNode(&node, graph, &dependency, 1, $0) }
                } else {
                    status = KernelNodeParameters.with(launch) { cu.graphAddKernelNode(&node, graph, nil, 0, $0) }
                }
                try cu.check(status, "cuGraphAddKernelNode_v2(\(launch.kernel.rawValue))")
                guard let node else { throw .invalidArgument("cuGraphAddKernelNode_v2 returned no node") }
                nodes.append(node)
            }
            var exec: CUHandle?
            try cu.check(cu.graphInstantiate(&exec, graph, 0), "cuGraphInstantiateWithFlags")
            guard let exec else { throw .invalidArgument("cuGraphInstantiateWithFlags returned no graph") }
            self.exec = exec
        } catch {
            _ = cu.graphDestroy(graph)
            throw error
        }
        self.context = context
        self.graph = graph
        self.nodes = nodes
        self.launches = launches
    }

    deinit {
        if (try? context.makeCurrent()) != nil {
            _ = context.cu.graphExecDestroy(exec)
            _ = context.cu.graphDestroy(graph)
        }
    }

    /// Makes the next replay run `newLaunches` (the same shapes, in the same order): patches the
    /// nodes whose arguments differ. Returns how many were patched. Replays already queued keep
    /// the arguments they were launched with.
    @discardableResult
    func update(to newLaunches: [KernelLaunch]) throws(CUDAError) -> Int {
        guard newLaunches.count == nodes.count else {
            throw .invalidArgument("a graph of \(nodes.count) launches cannot take \(newLaunches.count)")
        }
        let cu = context.cu
        var patched = 0
        for index in nodes.indices where newLaunches[index].arguments != launches[index].arguments {
            guard newLaunches[index].shape == launches[index].shape else {
                throw .invalidArgument("launch \(index) (\(newLaunches[index].kernel.rawValue)) changed shape")
            }
            let status = KernelNodeParameters.with(newLaunches[index]) { parameters in
                cu.graphExecKernelNodeSetParams(exec, nodes[index], parameters)
            }
            try cu.check(status, "cuGraphExecKernelNodeSetParams_v2(\(newLaunches[index].kernel.rawValue))")
            patched += 1
        }
        launches = newLaunches
        return patched
    }
}

extension CUDABackend {
    /// The most graphs `graphed` keeps (a training run needs two or three: the first step, full
    /// batches, and the last, partial batch of an epoch).
    static let graphCacheLimit = 16

    /// Runs the device work that `body` queues as one CUDA graph launch: nothing in it waits for
    /// the host.
    ///
    /// `body` runs on the host as usual (so every bit of host bookkeeping, such as Adam's step
    /// count, advances exactly once), but its kernel launches are recorded instead of queued. The
    /// first time a sequence of launches of this shape (kernels and grids) is seen it becomes a
    /// graph; afterwards the same graph replays, with the arguments that changed (the batch's
    /// offset into the row order, the loss slot, a learning rate) patched into their nodes.
    /// Adam's t lives in device memory and advances by a kernel inside the graph.
    ///
    /// Inside `body`, `download`, `upload` and `synchronize` throw `.notCapturable`;
    /// `makeBuffer` is allowed. Graphed steps do not nest.
    ///
    /// ```swift
    /// try backend.graphed { try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot) }
    /// ```
    /// - Throws: `body`'s errors (nothing is launched then), or `CUDAError`.
    public func graphed(_ body: () throws -> Void) throws {
        let launches = try record(body)
        guard !launches.isEmpty else { return }
        do throws(CUDAError) {
            let shape = launches.map(\.shape)
            let graph: CUDAGraph
            if let cached = graphs[shape] {
                graphStatistics.patchedNodes += try cached.update(to: launches)
                graph = cached
            } else {
                graph = try CUDAGraph(context: context, launches: launches)
                graphStatistics.built += 1
                if graphs.count >= Self.graphCacheLimit, let oldest = graphOrder.first {
                    graphs[oldest] = nil
                    graphOrder.removeFirst()
                }
                graphs[shape] = graph
                graphOrder.append(shape)
            }
            try replay(graph)
        } catch {
            deviceStep = nil
            throw error
        }
    }

    /// Records `body`'s launches into a new graph without running anything; `replay` runs it.
    /// Host bookkeeping in `body` (Adam's t on the host) advances once, at capture, not per replay,
    /// so a training loop uses `graphed(_:)`; this suits repeating identical work (benchmarks).
    public func capture(_ body: () throws -> Void) throws -> CUDAGraph {
        let launches = try record(body)
        guard !launches.isEmpty else { throw CUDAError.invalidArgument("nothing to capture: the body launched no kernels") }
        do throws(CUDAError) {
            let graph = try CUDAGraph(context: context, launches: launches)
            graphStatistics.built += 1
            return graph
        } catch {
            deviceStep = nil
            throw error
        }
    }

    /// Queues one run of `graph` on the backend's stream.
    public func replay(_ graph: CUDAGraph) throws(CUDAError) {
        try refuseWhileRecording("replaying a graph")
        try context.makeCurrent()
        try cu.check(cu.graphLaunch(graph.exec, stream), "cuGraphLaunch")
        graphStatistics.launches += 1
        if synchronousLaunches {
            try cu.check(cu.streamSynchronize(stream), "cuStreamSynchronize (after cuGraphLaunch)")
        }
    }

    /// Drops the graphs `graphed` keeps (and the buffers they hold).
    public func removeGraphs() {
        graphs = [:]
        graphOrder = []
    }

    /// Runs `body` with launches recorded instead of queued; returns them.
    private func record(_ body: () throws -> Void) throws -> [KernelLaunch] {
        guard recording == nil else { throw CUDAError.notCapturable("graphed steps do not nest") }
        recording = []
        defer { recording = nil }
        do {
            try body()
        } catch {
            // the body's bookkeeping may assume launches that will never run
            deviceStep = nil
            throw error
        }
        let launches = recording ?? []
        graphStatistics.recordedKernels += launches.count
        return launches
    }
}

/// Steps of `TrainingSession.train` run as one graph launch each (see `graphed`).
extension CUDABackend: StepGraphCapable {}
