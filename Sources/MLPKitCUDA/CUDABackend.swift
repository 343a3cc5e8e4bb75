import MLPKit
import MLPKitKernels

/// The training step's operations on an NVIDIA GPU through the CUDA driver API, with the portable
/// kernels of `MLPKitKernels` compiled by NVRTC for the device's own architecture.
///
/// `libcuda.so.1` and NVRTC are loaded at run time; on a machine without them the initializer
/// throws a `CUDAError` saying what is missing, and `availability()` reports it without throwing.
/// Work is queued in order on one stream and nothing waits for it except `download` and
/// `synchronize`. `graphed(_:)` runs a whole training step as one CUDA graph launch.
///
/// ```swift
/// switch CUDABackend.availability() {
/// case let .success(devices): print(devices)             // [0] NVIDIA H100 80GB HBM3 (sm_90, …)
/// case let .failure(reason): print("cuda: unavailable: \(reason)")
/// }
/// let session = try TrainingSession(model: model, backend: try CUDABackend(), batchCapacity: 128)
/// ```
public final class CUDABackend: Backend {
    public typealias Buffer = CUDABuffer

    /// The device the backend runs on.
    public let device: CUDADeviceInfo
    /// The tile sizes the kernels were compiled with.
    public var tiles: KernelTiles { program.tiles }
    /// What NVRTC compiled the kernels to (a cubin for the device's architecture).
    public var compileTarget: CUDACompileTarget { program.compiled.target }
    /// NVRTC's log for the kernels, with ptxas' register and spill report.
    public var compileLog: String { program.compiled.log }

    let cu: CUDADriver
    let context: CUDAContext
    let stream: CUHandle
    let program: CUDAProgram
    /// The kernels' scratch buffers (`KernelLaunchingBackend.scratchBuffer`).
    public var scratchBuffers: [KernelScratch: CUDABuffer] = [:]
    /// Product blocks that keep the device busy, for `KernelLaunchPlanner.productGeometry`
    /// (default: one per multiprocessor; 0 always uses the main tile). Tests raise it to
    /// exercise the compact tile and split k on small products.
    public var productParallelism: Int?
    /// Adam's t in device memory (one Int32).
    let stepCounter: CUDABuffer
    /// The value `stepCounter` holds once queued work is done, when known.
    var deviceStep: Int?
    /// Launches queued by a graphed step's body, not yet run (nil outside `graphed`/`capture`).
    var recording: [KernelLaunch]?
    /// Graphs built by `graphed`, by the shape of their launches, and the order they were built in.
    var graphs: [[LaunchShape]: CUDAGraph] = [:]
    var graphOrder: [[LaunchShape]] = []
    /// Counts of graph work, for tests and benchmarks.
    public internal(set) var graphStatistics = GraphStatistics()
    /// `MLPKIT_CUDA_SYNC=1`: wait after every launch so that an asynchronous fault names its kernel.
    let synchronousLaunches: Bool

    /// Argument storage for `cuLaunchKernel`: one 8-byte slot per argument, and a pointer to each.
    let argumentSlots: UnsafeMutablePointer<UInt64>
    let argumentPointers: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    static let maxArguments = 20

    // MARK: - Discovery

    /// The CUDA devices on this machine, or why there are none: no driver library, `cuInit`
    /// failed, no device. Never throws and never crashes, with or without a GPU.
    public static func availability() -> Result<[CUDADeviceInfo], CUDAError> {
        Result { () throws(CUDAError) in try devices() }
    }

    /// The CUDA devices on this machine; throws when the driver or a device is missing.
    public static func devices() throws(CUDAError) -> [CUDADeviceInfo] {
        try CUDADiscovery.devices(CUDADriver.shared.get())
    }

    /// NVRTC as the backend would use it ("NVRTC 13.0 at …"), or why it is missing.
    public static func compilerAvailability() -> Result<String, CUDAError> {
        NVRTCCompiler.shared.map { "NVRTC \($0.version) at \($0.path)" }
    }

    // MARK: - Life cycle

    /// Opens `selection`'s device and compiles the kernels for it (once per process) with
    /// `tiles`, or with the largest preset the device runs when `tiles` is nil (or the preset or
    /// tuning variant `MLPKIT_CUDA_TILES` names, see `KernelTiles.named`).
    /// - Throws: `CUDAError` naming what is missing or which call failed.
    public convenience init(device selection: CUDADeviceSelection = .automatic, tiles: KernelTiles? = nil) throws(CUDAError) {
        var tiles = tiles
        if tiles == nil, let name = SharedLibrary.environment("MLPKIT_CUDA_TILES") {
            guard let named = KernelTiles.named[name] else {
                throw .invalidArgument("MLPKIT_CUDA_TILES=\(name) is none of \(KernelTiles.named.keys.sorted().joined(separator: ", "))")
            }
            tiles = named
        }
        try self.init(driver: CUDADriver.shared.get(), compiler: { () throws(CUDAError) in try NVRTCCompiler.shared.get() },
                      device: selection, tiles: tiles)
    }

    init(driver cu: CUDADriver, compiler: () throws(CUDAError) -> NVRTCCompiler, device selection: CUDADeviceSelection,
         tiles: KernelTiles?) throws(CUDAError) {
        let devices = try CUDADiscovery.devices(cu)
        let index: Int
        switch selection {
        case .automatic: index = 0
        case let .index(requested): index = requested
        }
        guard devices.indices.contains(index) else {
            throw .noDevice("no device \(index) (there are \(devices.count))")
        }
        let info = devices[index]
        let context = try CUDAContext(cu, device: CUDADiscovery.device(cu, index: index))
        try context.makeCurrent()
        let nvrtc = try compiler()
        let target = try CUDACompileTarget.choose(for: info.computeCapability, supported: nvrtc.supportedArchitectures)
        let program = try Self.loadProgram(context: context, device: info, compiler: nvrtc, target: target, tiles: tiles)
        var stream: CUHandle?
        try cu.check(cu.streamCreate(&stream, CU.streamNonBlocking), "cuStreamCreate")
        guard let stream else { throw .invalidArgument("cuStreamCreate returned no stream") }
        self.cu = cu
        self.context = context
        self.stream = stream
        self.program = program
        device = info
        synchronousLaunches = SharedLibrary.environment("MLPKIT_CUDA_SYNC") == "1"
        argumentSlots = .allocate(capacity: Self.maxArguments)
        argumentSlots.initialize(repeating: 0, count: Self.maxArguments)
        argumentPointers = .allocate(capacity: Self.maxArguments)
        for index in 0..<Self.maxArguments {
            argumentPointers[index] = UnsafeMutableRawPointer(argumentSlots + index)
        }
        do throws(CUDAError) {
            stepCounter = try Self.allocate(cu: cu, context: context, stream: stream, count: 1)
        } catch {
            _ = cu.streamDestroy(stream)
            argumentSlots.deallocate()
            argumentPointers.deallocate()
            throw error
        }
    }

    deinit {
        graphs = [:]
        if (try? context.makeCurrent()) != nil {
            _ = cu.streamSynchronize(stream)
            _ = cu.streamDestroy(stream)
        }
        argumentSlots.deallocate()
        argumentPointers.deallocate()
    }

    /// "CUDA: <device> (sm_90, 132 SMs, 79.1 GiB), driver CUDA 13.0; NVRTC 13.0 sm_90 cubin; tiles …".
    public var summary: String {
        "CUDA: \(device.name) (\(device.computeCapability.architecture), \(device.multiprocessors) SMs, "
            + "\(Self.gibibytes(device.memoryBytes)) GiB), driver CUDA \(device.driverVersion); "
            + "\(program.compiled.compiler) \(compileTarget); tiles \(tiles)"
    }

    static func gibibytes(_ bytes: Int) -> Double {
        (Double(bytes) / Double(1 << 30) * 10).rounded() / 10
    }

    /// The shared memory a block may use: up to the opt-in limit (stages past 48 KB are dynamic
    /// shared memory).
    static func sharedMemoryLimit(_ device: CUDADeviceInfo) -> Int {
        max(device.sharedMemoryPerBlock, device.sharedMemoryPerBlockOptIn)
    }

    /// Tile presets the device can run, largest first.
    static func candidateTiles(for device: CUDADeviceInfo) -> [KernelTiles] {
        [KernelTiles.xlarge, .large, .medium, .small].filter {
            $0.maxThreads <= device.maxThreadsPerBlock && $0.gemmSharedBytes <= sharedMemoryLimit(device)
        }
    }

    private static func loadProgram(context: CUDAContext, device: CUDADeviceInfo, compiler: NVRTCCompiler,
                                    target: CUDACompileTarget, tiles: KernelTiles?) throws(CUDAError) -> CUDAProgram {
        if let tiles {
            guard tiles.gemmSharedBytes <= sharedMemoryLimit(device) else {
                throw .invalidArgument("tiles \(tiles) need \(tiles.gemmSharedBytes) bytes of shared memory per block; "
                                       + "\(device.name) allows \(sharedMemoryLimit(device))")
            }
            let compiled = try CUDAKernelCompiler.compile(tiles: tiles, target: target, compiler: compiler)
            return try CUDAProgram(context: context, compiled: compiled)
        }
        var lastError = CUDAError.noDevice("no tile preset fits \(device.name)")
        for candidate in candidateTiles(for: device) {
            do throws(CUDAError) {
                let compiled = try CUDAKernelCompiler.compile(tiles: candidate, target: target, compiler: compiler)
                return try CUDAProgram(context: context, compiled: compiled)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    static func allocate(cu: CUDADriver, context: CUDAContext, stream: CUHandle, count: Int) throws(CUDAError) -> CUDABuffer {
        guard count >= 0, count <= Self.maximumBufferCount else { throw .invalidArgument("buffer of \(count) elements") }
        let elements = max(count, 1)
        var address: CUDeviceAddress = 0
        try cu.check(cu.memoryAllocate(&address, elements * MemoryLayout<Float>.size),
                     "cuMemAlloc_v2(\(elements * MemoryLayout<Float>.size) bytes)")
        let buffer = CUDABuffer(address: address, count: count, context: context)
        try cu.check(cu.memorySet32Async(address, 0, elements, stream), "cuMemsetD32Async")
        return buffer
    }

    // MARK: - Buffers

    /// A zero-filled buffer. Allowed inside a graphed step (the fill is queued ahead of the graph).
    public func makeBuffer(count: Int) throws(CUDAError) -> CUDABuffer {
        try context.makeCurrent()
        return try Self.allocate(cu: cu, context: context, stream: stream, count: count)
    }

    /// Copies host values into the buffer; returns once the host memory may be reused.
    public func upload(_ values: UnsafeBufferPointer<Float>, to destination: BufferSlice<CUDABuffer>) throws(CUDAError) {
        try refuseWhileRecording("upload")
        try checkRange(destination, values.count, "upload destination")
        guard let base = values.baseAddress, values.count > 0 else { return }
        try context.makeCurrent()
        try cu.check(cu.copyHostToDeviceAsync(address(destination), base, values.count * MemoryLayout<Float>.size, stream),
                     "cuMemcpyHtoDAsync_v2")
        try cu.check(cu.streamSynchronize(stream), "cuStreamSynchronize (after an upload)")
    }

    /// Waits for the queued work, then copies `count` elements to the host.
    public func download(_ source: BufferSlice<CUDABuffer>, count: Int, into values: UnsafeMutableBufferPointer<Float>)
        throws(CUDAError) {
        try refuseWhileRecording("download")
        try checkRange(source, count, "download source")
        guard count <= values.count else {
            throw .invalidArgument("download of \(count) elements into \(values.count)")
        }
        guard let base = values.baseAddress, count > 0 else { return }
        try context.makeCurrent()
        try cu.check(cu.copyDeviceToHostAsync(base, address(source), count * MemoryLayout<Float>.size, stream),
                     "cuMemcpyDtoHAsync_v2")
        try cu.check(cu.streamSynchronize(stream), "cuStreamSynchronize (after a download)")
    }

    /// Waits until all queued work is done; reports an asynchronous fault of any of it.
    public func synchronize() throws(CUDAError) {
        try refuseWhileRecording("synchronize")
        try context.makeCurrent()
        try cu.check(cu.streamSynchronize(stream), "cuStreamSynchronize")
    }

    /// The device address of a slice.
    @inline(__always)
    func address(_ slice: BufferSlice<CUDABuffer>) -> CUDeviceAddress {
        slice.buffer.address + CUDeviceAddress(slice.offset * MemoryLayout<Float>.size)
    }

    /// Throws unless `count` elements from `slice` lie inside its buffer; returns the offset as Int32.
    @discardableResult
    func checkRange(_ slice: BufferSlice<CUDABuffer>, _ count: Int, _ what: String) throws(CUDAError) -> Int32 {
        guard slice.holds(count, of: slice.buffer.count),
              let offset = Int32(exactly: slice.offset) else {
            throw .invalidArgument("\(what): \(count) elements at offset \(slice.offset) of a \(slice.buffer.count)-element buffer")
        }
        return offset
    }

    func refuseWhileRecording(_ what: String) throws(CUDAError) {
        if recording != nil {
            throw .notCapturable("\(what) (a graphed step only queues device work; read results after it)")
        }
    }
}

/// Counts of the graph work done by `CUDABackend.graphed(_:)`.
public struct GraphStatistics: Sendable, Equatable {
    /// Graphs captured and instantiated.
    public var built = 0
    /// Graph launches.
    public var launches = 0
    /// Kernel nodes whose arguments were patched in place before a launch.
    public var patchedNodes = 0
    /// Kernel launches recorded into graphed steps.
    public var recordedKernels = 0
}
