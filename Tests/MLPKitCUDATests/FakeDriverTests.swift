import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// The backend against the fake driver (`FakeDriver`): everything up to the GPU itself.
final class FakeDriverTests: XCTestCase {
    override func setUpWithError() throws {
        _ = try sharedNVRTC()
        try FakeDriver.reset()
    }

    /// A backend on the fake driver with the real NVRTC's cubin.
    /// A backend on the fake driver, with `.large` tiles unless told (the geometry below is its).
    func fakeBackend(tiles: KernelTiles? = .large) throws -> CUDABackend {
        let driver = try FakeDriver.driver()
        return try CUDABackend(driver: driver, compiler: { () throws(CUDAError) in try NVRTCCompiler.shared.get() },
                               device: .automatic, tiles: tiles)
    }

    /// Each kernel's parameter kinds read from the kernel source (i int, f float, p pointer);
    /// the products' entry points from the parameter list of the `GEMM_ENTRY` macro that defines them.
    static func sourceSignatures() -> [String: String] {
        var result: [String: String] = [:]
        for name in KernelName.allCases {
            let defined = KernelSource.kernels.contains("GEMM_ENTRY(\(name.rawValue),") ? "NAME" : name.rawValue
            guard let start = KernelSource.kernels.firstRange(of: "void \(defined)(") else { continue }
            let rest = KernelSource.kernels[start.upperBound...]
            guard let end = rest.firstIndex(of: ")") else { continue }
            result[name.rawValue] = rest[..<end].split(separator: ",").map { parameter in
                parameter.contains("*") ? "p" : parameter.contains("float") ? "f" : "i"
            }.joined()
        }
        return result
    }

    func testFakeSignaturesMatchTheKernelSource() throws {
        let signatures = Self.sourceSignatures()
        XCTAssertEqual(signatures.count, KernelName.allCases.count)
        for (kernel, signature) in signatures {
            XCTAssertEqual(try FakeDriver.signature(kernel), signature, kernel)
        }
    }

    func testDeviceDiscovery() throws {
        let devices = try CUDADiscovery.devices(FakeDriver.driver())
        XCTAssertEqual(devices.count, 1)
        let device = try XCTUnwrap(devices.first)
        XCTAssertEqual(device.name, "MLPKit Fake GPU")
        XCTAssertEqual(device.computeCapability, ComputeCapability(major: 9, minor: 0))
        XCTAssertEqual(device.multiprocessors, 132)
        XCTAssertEqual(device.memoryBytes, 80 << 30)
        XCTAssertEqual(device.driverVersion, "13.0")
        XCTAssertEqual(device.description, "[0] MLPKit Fake GPU (sm_90, 132 SMs, 80.0 GiB), driver CUDA 13.0")
    }

    func testInitFailureNamesTheCallAndCUDAsError() throws {
        let driver = try FakeDriver.driver()
        try FakeDriver.setInitFailure(100)
        XCTAssertThrowsError(try driver.check(driver.initialize(0), "cuInit")) { error in
            XCTAssertEqual("\(error)", "cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected")
            XCTAssertEqual((error as? CUDAError)?.meansUnavailable, true)
        }
        XCTAssertEqual("\(driver.error(12345, "cuSomething"))", "cuSomething failed: CUDA error 12345 (12345): unrecognised error code")
    }

    func testNoDeviceIsReported() throws {
        try FakeDriver.setDeviceCount(0)
        XCTAssertThrowsError(try fakeBackend()) {
            guard case CUDAError.noDevice = $0 else { return XCTFail("unexpected \($0)") }
        }
        try FakeDriver.setDeviceCount(1)
        XCTAssertThrowsError(try CUDABackend(driver: FakeDriver.driver(), compiler: { () throws(CUDAError) in
            try NVRTCCompiler.shared.get()
        }, device: .index(3), tiles: nil)) {
            XCTAssertEqual("\($0)", "no CUDA device: no device 3 (there are 1)")
        }
    }

    func testBackendSetUp() throws {
        let backend = try fakeBackend(tiles: nil)
        XCTAssertEqual(backend.tiles, .xlarge, "the largest preset on an sm_90 device (227 KB opt-in shared memory)")
        XCTAssertEqual(backend.compileTarget, .cubin(90))
        XCTAssert(backend.summary.hasPrefix("CUDA: MLPKit Fake GPU (sm_90, 132 SMs, 80.0 GiB), driver CUDA 13.0; NVRTC "),
                  backend.summary)
        XCTAssert(backend.summary.hasSuffix("sm_90 cubin; tiles 128x256x16 / 8x16 (256 threads)"), backend.summary)
        XCTAssertEqual(try fakeBackend(tiles: .small).tiles, .small)
    }
    /// `.xlarge`'s stages (50,176 bytes) are dynamic shared memory: the main product kernels are
    /// opted in to exactly that and launched with it (the fake refuses more than 48 KB without
    /// the opt-in), the compact ones and every other kernel with none.
    func testDynamicSharedMemory() throws {
        let backend = try fakeBackend(tiles: .xlarge)
        XCTAssertEqual(KernelTiles.xlarge.dynamicGemmSharedBytes, 50_176)
        for kernel in ["gemm_nt", "gemm_tn", "gemm_nn"] {
            XCTAssertEqual(try FakeDriver.dynamicShared(kernel), 50_176, kernel)
        }
        XCTAssertEqual(try FakeDriver.dynamicShared("gemm_nt_compact"), 0)
        XCTAssertEqual(try FakeDriver.dynamicShared("adam_update"), 0)
        backend.productParallelism = 0
        defer { backend.productParallelism = nil }
        let a = try backend.poisoned(300 * 40), b = try backend.poisoned(260 * 40), c = try backend.poisoned(300 * 260)
        try FakeDriver.reset()
        try backend.matrixProduct(.nt, m: 300, n: 260, k: 40, a: a, b: b, c: c, epilogue: .none)
        try backend.columnSums(c, rows: 300, columns: 260, into: a)
        try backend.graphed {
            try backend.matrixProduct(.nt, m: 300, n: 260, k: 40, a: a, b: b, c: c, epilogue: .none)
        }
        let launches = try FakeDriver.launches()
        XCTAssertEqual(launches.map(\.kernel), ["gemm_nt", "column_sums", "gemm_nt"])
        XCTAssertEqual(launches.map(\.sharedBytes), [50_176, 0, 50_176])
        XCTAssertEqual(launches[0].grid, [2, 3, 1], "128×256 tiles: ⌈260/256⌉ × ⌈300/128⌉")
        XCTAssertEqual(launches[2].fromGraph, true)
    }


    func testBuffersAreZeroFilledAndRoundTrip() throws {
        let backend = try fakeBackend()
        let buffer = try backend.makeBuffer(count: 1000)
        XCTAssertEqual(try backend.read(BufferSlice(buffer), 1000), [Float](repeating: 0, count: 1000),
                       "the fake fills new memory with NaN; the backend clears it")
        var random = SeededGenerator(seed: 1)
        let values = random.values(37)
        let slice = try backend.buffer(values, offset: 5)
        XCTAssertEqual(try backend.read(slice, 37), values)
        XCTAssertThrowsError(try backend.read(slice, 41)) {
            guard case CUDAError.invalidArgument = $0 else { return XCTFail("unexpected \($0)") }
        }
        XCTAssertEqual(try backend.makeBuffer(count: 0).count, 0)
        try backend.synchronize()
    }

    func testBuffersAreFreed() throws {
        let live = try FakeDriver.counter("live_allocations")
        do {
            let backend = try fakeBackend()
            _ = try backend.makeBuffer(count: 10)
            let kept = try backend.makeBuffer(count: 10)
            XCTAssertEqual(try FakeDriver.counter("live_allocations"), live + 2, "the step counter, and one buffer kept")
            _ = kept
        }
        XCTAssertEqual(try FakeDriver.counter("live_allocations"), live, "everything freed with the backend")
    }

    func testOutOfMemoryNamesTheCall() throws {
        let backend = try fakeBackend()
        XCTAssertThrowsError(try backend.makeBuffer(count: 1 << 29)) {
            XCTAssertEqual("\($0)", "cuMemAlloc_v2(2147483648 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory")
        }
    }

    /// Grids, blocks and arguments of every operation, as NOTES.md gives them.
    func testLaunchGeometryAndArguments() throws {
        let backend = try fakeBackend()
        backend.productParallelism = 0  // the main tile whatever the size (the split is tested below)
        defer { backend.productParallelism = nil }
        let a = try backend.poisoned(200 * 257, offset: 7), b = try backend.poisoned(130 * 257, offset: 3)
        let c = try backend.poisoned(200 * 130, offset: 5), bias = try backend.poisoned(130, offset: 2)
        try FakeDriver.reset()
        try backend.matrixProduct(.nt, m: 200, n: 130, k: 257, a: a, b: b, c: c, epilogue: .biasReLU(bias))
        try backend.matrixProduct(.tn, m: 130, n: 257, k: 200, a: c, b: a, c: b, epilogue: .none)
        try backend.matrixProduct(.nn, m: 200, n: 257, k: 130, a: c, b: b, c: a, epilogue: .reluMask(a))
        try backend.columnSums(c, rows: 200, columns: 130, into: bias)
        try backend.lossGradient(.crossEntropy, targets: .classIndices, output: c, target: bias, rows: 100, columns: 2,
                                 gradient: c, lossSum: bias)
        try backend.gatherRows(a, width: 13, indices: bias, count: 100, into: c)
        try backend.adamUpdate(parameters: a, gradients: b, firstMoment: c, secondMoment: c, count: 1000,
                               hyperparameters: AdamHyperparameters(), step: 1)
        let launches = try FakeDriver.launches()
        XCTAssertEqual(launches.map(\.kernel), ["gemm_nt", "gemm_tn", "gemm_nn", "column_sums", "loss_softmax_cross_entropy",
                                                "sum_reduce", "gather_rows", "adam_update"])
        XCTAssertEqual(try FakeDriver.counter("bad_pointers"), 0, "every pointer is a live allocation")
        XCTAssert(launches.allSatisfy { !$0.fromGraph && $0.sharedBytes == 0 })
        let (ax, bx, cx, biasx) = (a.buffer.address, b.buffer.address, c.buffer.address, bias.buffer.address)
        // products: grid (⌈n/128⌉, ⌈m/128⌉), 256 threads; arguments m, n, k, A, offset, B, offset, C, offset,
        // epilogue, aux, offset, k per slice (k: no split)
        XCTAssertEqual(launches[0].grid, [2, 2, 1])
        XCTAssertEqual(launches[0].block, [256, 1, 1])
        XCTAssertEqual(launches[0].arguments, [200, 130, 257, ax, 7, bx, 3, cx, 5, 2, biasx, 2, 257])
        XCTAssertEqual(launches[1].grid, [3, 2, 1])
        XCTAssertEqual(launches[1].arguments, [130, 257, 200, cx, 5, ax, 7, bx, 3, 0, 0, 0, 200])
        XCTAssertEqual(launches[2].grid, [3, 2, 1])
        XCTAssertEqual(launches[2].arguments, [200, 257, 130, cx, 5, bx, 3, ax, 7, 3, ax, 7, 130])
        // column sums: ⌈columns/32⌉ blocks of 256
        XCTAssertEqual(launches[3].grid, [5, 1, 1])
        XCTAssertEqual(launches[3].block, [256, 1, 1])
        XCTAssertEqual(launches[3].arguments, [200, 130, cx, 5, biasx, 2])
        // loss: one thread per row in blocks of 256, then one block sums the rows' losses; no class
        // or row weights (flags 0, the targets' buffer in the weights' places, offsets 0)
        XCTAssertEqual(launches[4].grid, [1, 1, 1])
        XCTAssertEqual(launches[4].block, [256, 1, 1])
        XCTAssertEqual(Array(launches[4].arguments.prefix(15)), [100, 2, 0, cx, 5, biasx, 2, 0, biasx, 0, 0, biasx, 0, cx, 5])
        XCTAssertEqual(launches[5].grid, [1, 1, 1])
        XCTAssertEqual(launches[5].arguments, [100, launches[4].arguments[15], biasx, 2])
        // gather: count·width items, grid-stride
        XCTAssertEqual(launches[6].grid, [6, 1, 1])
        XCTAssertEqual(launches[6].arguments, [100, 13, UInt64((200 * 257 + 3) / 13), ax, 7, biasx, 2, cx, 5])
        // Adam: hyperparameters as float bits, t from the device counter
        let h = AdamHyperparameters()
        XCTAssertEqual(Array(launches[7].arguments.suffix(5)),
                       [UInt64(h.learningRate.bitPattern), UInt64(h.beta1.bitPattern), UInt64(h.beta2.bitPattern),
                        UInt64(h.epsilon.bitPattern), backend.stepCounter.address])
    }

    /// On 132 SMs a 200×130 product (4 main tiles) runs with compact tiles (64×64: 12) and k = 257
    /// in 4 slices of 80 into the workspace, then `gemm_splitk_sum` adds them with the epilogue.
    func testSmallProductSplitsK() throws {
        let backend = try fakeBackend()
        let a = try backend.poisoned(200 * 257, offset: 7), b = try backend.poisoned(130 * 257, offset: 3)
        let c = try backend.poisoned(200 * 130, offset: 5), bias = try backend.poisoned(130, offset: 2)
        try FakeDriver.reset()
        try backend.matrixProduct(.nt, m: 200, n: 130, k: 257, a: a, b: b, c: c, epilogue: .biasReLU(bias))
        let launches = try FakeDriver.launches()
        XCTAssertEqual(launches.map(\.kernel), ["gemm_nt_compact", "gemm_splitk_sum"])
        XCTAssertEqual(try FakeDriver.counter("bad_pointers"), 0)
        let workspace = try XCTUnwrap(backend.scratchBuffers[.productWorkspace])
        XCTAssertGreaterThanOrEqual(workspace.count, 4 * 200 * 130)
        let (ax, bx, cx, biasx, wx) = (a.buffer.address, b.buffer.address, c.buffer.address, bias.buffer.address,
                                       workspace.address)
        XCTAssertEqual(launches[0].grid, [3, 16, 1], "3 column tiles × (4 row tiles × 4 slices)")
        XCTAssertEqual(launches[0].block, [256, 1, 1])
        XCTAssertEqual(launches[0].arguments, [200, 130, 257, ax, 7, bx, 3, wx, 0, 0, 0, 0, 80])
        XCTAssertEqual(launches[1].grid, [102, 1, 1], "⌈200·130/256⌉")
        XCTAssertEqual(launches[1].arguments, [200, 130, 4, wx, 0, cx, 5, 2, biasx, 2])
    }

    /// Large element-wise work is capped at 32 blocks per SM (the kernels loop); huge grids are refused.
    func testElementGridIsCapped() throws {
        let backend = try fakeBackend()
        let big = try backend.makeBuffer(count: 4_000_000)
        try FakeDriver.reset()
        try backend.adamUpdate(parameters: BufferSlice(big), gradients: BufferSlice(big), firstMoment: BufferSlice(big),
                               secondMoment: BufferSlice(big), count: 4_000_000, hyperparameters: .init(), step: 5)
        XCTAssertEqual(try FakeDriver.launches().last?.grid, [132 * 32, 1, 1])
    }

    /// Adam's t: advanced on the device by one launch per step; a jump (a resumed run) is a memset.
    func testStepCounterLivesOnTheDevice() throws {
        let backend = try fakeBackend()
        let buffer = try backend.buffer([1, 2, 3])
        for step in [1, 2, 3, 9, 10] {
            try FakeDriver.reset()
            try backend.adamUpdate(parameters: buffer, gradients: buffer, firstMoment: buffer, secondMoment: buffer,
                                   count: 3, hyperparameters: .init(), step: step)
            let kernels = try FakeDriver.launches().map(\.kernel)
            XCTAssertEqual(kernels, [2, 3, 10].contains(step) ? ["advance_step", "adam_update"] : ["adam_update"], "step \(step)")
            XCTAssertEqual(try backend.deviceStepCounter(), step)
        }
        XCTAssertThrowsError(try backend.adamUpdate(parameters: buffer, gradients: buffer, firstMoment: buffer,
                                                    secondMoment: buffer, count: 3, hyperparameters: .init(), step: 0))
    }

    /// Every launch passes exactly the arguments its kernel declares.
    func testEveryOperationPassesTheKernelsArity() throws {
        let backend = try fakeBackend()
        let signatures = Self.sourceSignatures()
        let x = try backend.poisoned(4096)
        backend.recording = []
        defer { backend.recording = nil }
        try backend.matrixProduct(.nn, m: 3, n: 4, k: 5, a: x, b: x, c: x, epilogue: .bias(x))
        try backend.matrixProduct(.nt, m: 3, n: 4, k: 300, a: x, b: x, c: x, epilogue: .bias(x))  // split k
        try backend.columnSums(x, rows: 3, columns: 4, into: x)
        try backend.lossGradient(.meanSquaredError, targets: .dense, output: x, target: x, rows: 3, columns: 4, gradient: x, lossSum: x)
        try backend.lossGradient(.crossEntropy, targets: .dense, output: x, target: x, rows: 3, columns: 64, gradient: x,
                                 lossSum: x)  // loss_wide
        try backend.lossGradient(.crossEntropy, targets: .classIndices, output: x, target: x, rows: 3, columns: 4, gradient: x,
                                 lossSum: x, classWeights: x)  // class weights
        try backend.lossGradient(.crossEntropy, targets: .dense, output: x, target: x, rows: 3, columns: 64, gradient: x,
                                 lossSum: x, classWeights: x)  // loss_wide, class weights
        try backend.lossGradient(.meanSquaredError, targets: .dense, output: x, target: x, rows: 3, columns: 4, gradient: x,
                                 lossSum: x, classWeights: nil, rowWeights: x)  // row weights
        try backend.lossGradient(.crossEntropy, targets: .classIndices, output: x, target: x, rows: 3, columns: 64, gradient: x,
                                 lossSum: x, classWeights: x, rowWeights: x)  // loss_wide, both weights
        try backend.gatherRows(x, width: 4, indices: x, count: 3, into: x)
        try backend.adamUpdate(parameters: x, gradients: x, firstMoment: x, secondMoment: x, count: 10,
                               hyperparameters: .init(), step: 1)
        try backend.adamUpdate(parameters: x, gradients: x, firstMoment: x, secondMoment: x, count: 10,
                               hyperparameters: .init(), step: 2)
        let recorded = try XCTUnwrap(backend.recording)
        XCTAssertEqual(Set(recorded.map(\.kernel.rawValue)),
                       ["gemm_nn_compact", "gemm_nt_compact", "gemm_splitk_sum", "column_sums", "loss_mse", "loss_wide",
                        "loss_softmax_cross_entropy", "sum_reduce", "gather_rows", "adam_update", "advance_step"])
        for launch in recorded {
            XCTAssertEqual(launch.arguments.count, signatures[launch.kernel.rawValue]?.count, launch.kernel.rawValue)
        }
    }

    /// Whole training steps graphed: one graph per launch shape, arguments patched in place, and
    /// exactly the launches the eager steps make.
    func testGraphedStepsReplayTheEagerLaunches() throws {
        let backend = try fakeBackend()
        let sizes = [13, 32, 24, 5], rows = 75, batch = 32   // 3 steps per epoch, the last of 11 rows
        var random = SeededGenerator(seed: 3)
        let dataset = try Dataset(inputs: random.values(rows * 13), features: 13, targets: random.labels(rows, classes: 5),
                                  encoding: .classIndices, targetWidth: 1)
        let model = try MLP(layerSizes: sizes, loss: .crossEntropy, seed: 4)
        let schedule = try BatchSchedule(rows: rows, batchSize: batch, shuffle: true, seed: 5)

        func run(graphed: Bool) throws -> (launches: [FakeDriver.Launch], session: TrainingSession<CUDABackend>) {
            let session = try TrainingSession(model: model, backend: backend, batchCapacity: batch)
            let data = try session.upload(dataset)
            try session.reserveLossSums(schedule.stepsPerEpoch)
            try FakeDriver.reset()
            for index in 0..<(3 * schedule.stepsPerEpoch) {
                let (epoch, positions) = schedule.batch(step: index)
                if index % schedule.stepsPerEpoch == 0 { try session.setRowOrder(schedule.order(epoch: epoch)) }
                let slot = index % schedule.stepsPerEpoch
                if graphed {
                    try backend.graphed { try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot) }
                } else {
                    try session.trainStep(on: data, positions: positions, gathered: true, lossSlot: slot)
                }
            }
            XCTAssertEqual(try backend.deviceStepCounter(), 3 * schedule.stepsPerEpoch, "Adam's t on the device")
            return (try FakeDriver.launches(), session)
        }

        let before = backend.graphStatistics
        let graphedRun = try run(graphed: true)
        let statistics = backend.graphStatistics
        XCTAssertEqual(statistics.built - before.built, 3, "the first step (t written), full batches, the partial batch")
        XCTAssertEqual(try FakeDriver.counter("graphs_created"), 3)
        XCTAssertEqual(try FakeDriver.counter("instantiations"), 3)
        XCTAssertEqual(try FakeDriver.counter("graph_launches"), 9)
        XCTAssertGreaterThan(statistics.patchedNodes - before.patchedNodes, 0, "batch offsets and loss slots patched")
        XCTAssert(graphedRun.launches.allSatisfy(\.fromGraph))
        XCTAssertEqual(try FakeDriver.counter("bad_pointers"), 0)
        XCTAssertEqual(graphedRun.session.step, 9)

        let eagerRun = try run(graphed: false)
        XCTAssertEqual(graphedRun.launches.count, eagerRun.launches.count)
        // same kernels, grids and arguments, up to which buffers the two sessions own
        var addresses: [UInt64: UInt64] = [:]
        let signatures = Self.sourceSignatures()
        for (graphLaunch, eagerLaunch) in zip(graphedRun.launches, eagerRun.launches) {
            XCTAssertEqual(graphLaunch.kernel, eagerLaunch.kernel)
            XCTAssertEqual(graphLaunch.grid, eagerLaunch.grid, graphLaunch.kernel)
            XCTAssertEqual(graphLaunch.block, eagerLaunch.block, graphLaunch.kernel)
            let kinds = Array(signatures[graphLaunch.kernel] ?? "")
            for (index, (g, e)) in zip(graphLaunch.arguments, eagerLaunch.arguments).enumerated() {
                if kinds[index] == "p" {
                    // a consistent one-to-one map between the two sessions' buffers
                    XCTAssertEqual(addresses[g, default: e], e, "\(graphLaunch.kernel) argument \(index)")
                    addresses[g] = e
                } else {
                    XCTAssertEqual(g, e, "\(graphLaunch.kernel) argument \(index)")
                }
            }
        }
    }

    /// `TrainingSession.train` runs every step as one graph launch on CUDA, and queues the
    /// launches one by one when `usesStepGraphs` is off; Adam's t advances on the device either way.
    func testTrainReplaysEveryStepAsAGraph() throws {
        let backend = try fakeBackend()
        var random = SeededGenerator(seed: 8)
        let dataset = try Dataset(inputs: random.values(75 * 13), features: 13, targets: random.labels(75, classes: 5),
                                  encoding: .classIndices, targetWidth: 1)
        let model = try MLP(layerSizes: [13, 32, 24, 5], loss: .crossEntropy, seed: 4)
        for graphs in [true, false] {
            let session = try TrainingSession(model: model, backend: backend, batchCapacity: 32)
            session.usesStepGraphs = graphs
            let data = try session.upload(dataset)
            try FakeDriver.reset()
            try session.train(on: data, configuration: TrainingConfiguration(batchSize: 32, length: .epochs(2), shuffle: true, seed: 1))
            XCTAssertEqual(session.step, 6)
            XCTAssertEqual(try backend.deviceStepCounter(), 6, "Adam's t on the device")
            XCTAssertEqual(try FakeDriver.counter("graph_launches"), graphs ? 6 : 0)
            XCTAssertEqual(try FakeDriver.counter("bad_pointers"), 0)
        }
    }

    /// Inside a graphed step only device work may be queued.
    func testHostWorkInsideAGraphedStepIsRefused() throws {
        let backend = try fakeBackend()
        let buffer = try backend.buffer([1, 2, 3])
        for (name, body) in [("download", { _ = try backend.read(buffer, 3) }), ("synchronize", { try backend.synchronize() }),
                             ("upload", { _ = try backend.buffer([1]) }),
                             ("nesting", { try backend.graphed {} })] as [(String, () throws -> Void)] {
            XCTAssertThrowsError(try backend.graphed(body), name) {
                guard case CUDAError.notCapturable = $0 else { return XCTFail("\(name): unexpected \($0)") }
            }
        }
        XCTAssertNil(backend.recording, "recording ends with the error")
        XCTAssertNoThrow(try backend.graphed {})
        XCTAssertNoThrow(try backend.graphed { _ = try backend.makeBuffer(count: 4) })
        XCTAssertEqual(try backend.read(buffer, 3), [1, 2, 3])
    }

    /// `capture` builds once; `replay` launches the same nodes again.
    func testCaptureAndReplay() throws {
        let backend = try fakeBackend()
        let a = try backend.buffer([1, 2, 3, 4]), c = try backend.poisoned(4)
        let graph = try backend.capture {
            try backend.matrixProduct(.nn, m: 2, n: 2, k: 2, a: a, b: a, c: c, epilogue: .none)
            try backend.columnSums(c, rows: 2, columns: 2, into: a)
        }
        XCTAssertEqual(graph.nodeCount, 2)
        try FakeDriver.reset()
        try backend.replay(graph)
        try backend.replay(graph)
        XCTAssertEqual(try FakeDriver.launches().map(\.kernel),
                       ["gemm_nn_compact", "column_sums", "gemm_nn_compact", "column_sums"])
        XCTAssertThrowsError(try backend.capture {}) {
            guard case CUDAError.invalidArgument = $0 else { return XCTFail("unexpected \($0)") }
        }
    }

    /// The graph check runs end to end (the fake computes nothing, so both runs agree trivially).
    func testGraphReplayCheckRuns() throws {
        let backend = try fakeBackend()
        let result = try backend.graphReplayCheck(loss: .meanSquaredError, steps: 16)
        print(result)
        XCTAssertEqual(result.graphsBuilt, 3)
        XCTAssert(result.stepsAgree)
    }

    /// The byte layout of CUDA_KERNEL_NODE_PARAMS_v2 that the fake reads with cuda.h's struct.
    func testKernelNodeParameterLayout() throws {
        let backend = try fakeBackend()
        let function = try backend.program.function(.gemmNT)
        let launch = KernelLaunch(kernel: .gemmNT, function: function, grid: Dim3(x: 3, y: 5, z: 7),
                                  block: Dim3(x: 256, y: 2, z: 1), sharedBytes: 99, arguments: [1, 2], buffers: [])
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 72, alignment: 8)
        defer { bytes.deallocate() }
        let pointers = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 2)
        defer { pointers.deallocate() }
        KernelNodeParameters.write(launch, kernelParams: pointers, into: bytes)
        XCTAssertEqual(bytes.load(fromByteOffset: 0, as: UInt.self), UInt(bitPattern: function))
        XCTAssertEqual((0..<7).map { bytes.load(fromByteOffset: 8 + 4 * $0, as: UInt32.self) }, [3, 5, 7, 256, 2, 1, 99])
        XCTAssertEqual(bytes.load(fromByteOffset: 40, as: UInt.self), UInt(bitPattern: pointers))
        XCTAssertEqual(bytes.load(fromByteOffset: 48, as: UInt.self), 0, "extra")
        XCTAssertEqual(bytes.load(fromByteOffset: 56, as: UInt.self), 0, "kern")
        XCTAssertEqual(bytes.load(fromByteOffset: 64, as: UInt.self), 0, "ctx")
    }
}
