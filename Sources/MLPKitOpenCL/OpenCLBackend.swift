import MLPKit
import MLPKitKernels

/// The training step's operations on any OpenCL device, through the portable kernels of
/// `MLPKitKernels`. `libOpenCL.so.1` is loaded at run time; on a machine without OpenCL the
/// initializer throws an `OpenCLError` saying what is missing.
///
/// Work is queued in order on one command queue; `download` and `synchronize` wait for it.
public final class OpenCLBackend: Backend {
    public typealias Buffer = OpenCLBuffer

    /// The device the backend runs on.
    public let device: OpenCLDeviceInfo
    /// The tile sizes the program was compiled with.
    public var tiles: KernelTiles { program.tiles }

    let cl: OpenCLLibrary
    let context: CLHandle
    let queue: CLHandle
    let program: OpenCLProgram
    /// The kernels' scratch buffers (`KernelLaunchingBackend.scratchBuffer`).
    public var scratchBuffers: [KernelScratch: OpenCLBuffer] = [:]
    /// Product blocks that keep the device busy, for `KernelLaunchPlanner.productGeometry`
    /// (default: one per multiprocessor; 0 always uses the main tile). Tests raise it to
    /// exercise the compact tile and split k on small products.
    public var productParallelism: Int?
    /// Adam's t in device memory (one Int32).
    let stepCounter: OpenCLBuffer
    /// The value `stepCounter` holds once queued work is done, when known.
    var deviceStep: Int?

    /// Every OpenCL device on this machine; throws when OpenCL itself is unavailable.
    public static func devices() throws(OpenCLError) -> [OpenCLDeviceInfo] {
        let cl = try OpenCLLibrary.shared.get()
        return try OpenCLDiscovery.devices(cl).map(\.info)
    }

    /// Opens `selection`'s device and builds the kernels for it with `tiles`, or with the largest
    /// preset the device runs when `tiles` is nil.
    public init(device selection: OpenCLDeviceSelection = .automatic, tiles: KernelTiles? = nil) throws(OpenCLError) {
        let cl = try OpenCLLibrary.shared.get()
        let handle = try OpenCLDiscovery.select(selection, from: OpenCLDiscovery.devices(cl))
        self.cl = cl
        device = handle.info

        var properties: [Int] = [0x1084, Int(bitPattern: UnsafeRawPointer(handle.platform)), 0]
        var devices: [CLHandle?] = [handle.device]
        let context = try cl.create("clCreateContext") { cl.createContext(&properties, 1, &devices, nil, nil, $0) }
        let queue: CLHandle
        do throws(OpenCLError) {
            queue = try cl.create("clCreateCommandQueue") { cl.createCommandQueue(context, handle.device, 0, $0) }
        } catch {
            _ = cl.releaseContext(context)
            throw error
        }
        do throws(OpenCLError) {
            program = try Self.buildProgram(cl: cl, context: context, device: handle, tiles: tiles)
            stepCounter = try Self.allocate(cl: cl, context: context, queue: queue, count: 1)
        } catch {
            _ = cl.releaseCommandQueue(queue)
            _ = cl.releaseContext(context)
            throw error
        }
        self.context = context
        self.queue = queue
    }

    deinit {
        _ = cl.finish(queue)
        _ = cl.releaseCommandQueue(queue)
        _ = cl.releaseContext(context)
    }

    /// "OpenCL: <device> (<kind>) on <platform>, tiles ...".
    public var summary: String {
        "OpenCL: \(device.name) (\(device.kind), \(device.computeUnits) compute units) on \(device.platformName), "
            + "\(device.version); tiles \(tiles)"
    }

    /// Tile presets the device can run, largest first.
    static func candidateTiles(for device: OpenCLDeviceInfo) -> [KernelTiles] {
        let presets: [KernelTiles] = device.isGPU ? [.large, .medium, .small] : [.medium, .small]
        return presets.filter {
            $0.maxThreads <= device.maxWorkGroupSize && $0.gemmSharedBytes <= device.localMemoryBytes
        }
    }

    private static func buildProgram(cl: OpenCLLibrary, context: CLHandle, device: OpenCLDeviceHandle,
                                     tiles: KernelTiles?) throws(OpenCLError) -> OpenCLProgram {
        if let tiles {
            return try OpenCLProgram(cl: cl, context: context, device: device, tiles: tiles)
        }
        var lastError = OpenCLError.noDevice("tiles that fit \(device.info.name)")
        for candidate in candidateTiles(for: device.info) {
            do throws(OpenCLError) {
                return try OpenCLProgram(cl: cl, context: context, device: device, tiles: candidate)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    static func allocate(cl: OpenCLLibrary, context: CLHandle, queue: CLHandle, count: Int) throws(OpenCLError)
        -> OpenCLBuffer {
        guard count >= 0, count <= Self.maximumBufferCount else { throw .invalidArgument("buffer of \(count) elements") }
        let bytes = max(count, 1) * MemoryLayout<Float>.size
        let memory = try cl.create("clCreateBuffer") { cl.createBuffer(context, CL.memReadWrite, bytes, nil, $0) }
        let buffer = OpenCLBuffer(memory: memory, count: count, library: cl)
        var zero: Float = 0
        try cl.check(cl.enqueueFillBuffer(queue, memory, &zero, MemoryLayout<Float>.size, 0, bytes, 0, nil, nil),
                     "clEnqueueFillBuffer")
        return buffer
    }

    // MARK: Buffers

    public func makeBuffer(count: Int) throws(OpenCLError) -> OpenCLBuffer {
        try Self.allocate(cl: cl, context: context, queue: queue, count: count)
    }

    public func upload(_ values: UnsafeBufferPointer<Float>, to destination: BufferSlice<OpenCLBuffer>)
        throws(OpenCLError) {
        try checkRange(destination, values.count, "upload destination")
        guard let base = values.baseAddress, values.count > 0 else { return }
        try cl.check(cl.enqueueWriteBuffer(queue, destination.buffer.memory, CL.trueValue,
                                           destination.offset * MemoryLayout<Float>.size,
                                           values.count * MemoryLayout<Float>.size, base, 0, nil, nil),
                     "clEnqueueWriteBuffer")
    }

    public func download(_ source: BufferSlice<OpenCLBuffer>, count: Int, into values: UnsafeMutableBufferPointer<Float>)
        throws(OpenCLError) {
        try checkRange(source, count, "download source")
        guard count <= values.count else {
            throw .invalidArgument("download of \(count) elements into \(values.count)")
        }
        guard let base = values.baseAddress, count > 0 else { return }
        try cl.check(cl.enqueueReadBuffer(queue, source.buffer.memory, CL.trueValue,
                                          source.offset * MemoryLayout<Float>.size,
                                          count * MemoryLayout<Float>.size, base, 0, nil, nil),
                     "clEnqueueReadBuffer")
    }

    public func synchronize() throws(OpenCLError) {
        try cl.check(cl.finish(queue), "clFinish")
    }

    /// Throws unless `count` elements from `slice` lie inside its buffer; returns the offset as Int32.
    @discardableResult
    func checkRange(_ slice: BufferSlice<OpenCLBuffer>, _ count: Int, _ what: String) throws(OpenCLError) -> Int32 {
        guard slice.holds(count, of: slice.buffer.count),
              let offset = Int32(exactly: slice.offset) else {
            throw .invalidArgument("\(what): \(count) elements at offset \(slice.offset) of a \(slice.buffer.count)-element buffer")
        }
        return offset
    }
}
