import MLPKitKernels

/// The kernel program built for one device with one set of tile sizes, and its kernel objects.
final class OpenCLProgram {
    /// The tile sizes compiled in.
    let tiles: KernelTiles
    private let cl: OpenCLLibrary
    private let program: CLHandle
    private var kernels: [KernelName: CLHandle] = [:]

    /// Compiles `KernelSource.program(tiles:)` for `device` and creates every kernel; throws
    /// `.buildFailed` with the build log, or when a kernel cannot run the block size it needs.
    init(cl: OpenCLLibrary, context: CLHandle, device: OpenCLDeviceHandle, tiles: KernelTiles) throws(OpenCLError) {
        self.cl = cl
        self.tiles = tiles
        do throws(KernelTilesError) {
            try tiles.validate()
        } catch {
            throw .invalidArgument(error.description)
        }
        let source = KernelSource.program(tiles: tiles)
        program = try cl.create("clCreateProgramWithSource") { status in
            source.withCString { text in
                var strings: [UnsafePointer<CChar>?] = [text]
                return cl.createProgramWithSource(context, 1, &strings, nil, status)
            }
        }
        var devices: [CLHandle?] = [device.device]
        let status = cl.buildProgram(program, 1, &devices, Self.buildOptions(for: device.info), nil, nil)
        if status != CL.success {
            let log = (try? buildLog(device.device)) ?? ""
            _ = cl.releaseProgram(program)
            throw .buildFailed(device: device.info.name, log: "\(OpenCLError.statusName(status)) (\(status))\n\(log)")
        }
        do throws(OpenCLError) {
            for name in KernelName.allCases {
                let kernel = try cl.create("clCreateKernel(\(name.rawValue))") { status in
                    cl.createKernel(program, name.rawValue, status)
                }
                kernels[name] = kernel
                let needed = requiredThreads(name)
                let allowed: Int = try OpenCLDiscovery.scalar(
                    { cl.getKernelWorkGroupInfo(kernel, device.device, CL.kernelWorkGroupSize, $0, $1, $2) },
                    "clGetKernelWorkGroupInfo")
                if needed > allowed {
                    throw OpenCLError.buildFailed(
                        device: device.info.name,
                        log: "\(name.rawValue) runs at most \(allowed) threads per work-group; tiles \(tiles) need \(needed)")
                }
            }
        } catch {
            release()
            throw error
        }
    }

    deinit {
        release()
    }

    /// The options the program is built with: correctly rounded division and square root where
    /// the device offers them (the CPU's IEEE operations, bit for bit).
    static func buildOptions(for device: OpenCLDeviceInfo) -> String {
        device.correctlyRoundedDivideSqrt ? "-cl-fp32-correctly-rounded-divide-sqrt" : ""
    }

    private func release() {
        for kernel in kernels.values { _ = cl.releaseKernel(kernel) }
        kernels = [:]
        _ = cl.releaseProgram(program)
    }

    /// The work-group size a kernel is compiled for (1 where any size works).
    func requiredThreads(_ name: KernelName) -> Int {
        name.requiredThreads(tiles)
    }

    /// One kernel argument.
    enum Argument {
        case buffer(OpenCLBuffer?)
        case int(Int32)
        case float(Float)
    }

    /// Sets `arguments` on the kernel and enqueues it over `global` work-items in groups of `local`.
    func launch(_ name: KernelName, queue: CLHandle, global: [Int], local: [Int], _ arguments: [Argument])
        throws(OpenCLError) {
        guard let kernel = kernels[name] else { throw .invalidArgument("no kernel \(name.rawValue)") }
        for (index, argument) in arguments.enumerated() {
            let status: Int32
            switch argument {
            case let .buffer(buffer):
                var memory: CLHandle? = buffer?.memory
                status = cl.setKernelArg(kernel, UInt32(index), MemoryLayout<CLHandle?>.size, &memory)
            case var .int(value):
                status = cl.setKernelArg(kernel, UInt32(index), MemoryLayout<Int32>.size, &value)
            case var .float(value):
                status = cl.setKernelArg(kernel, UInt32(index), MemoryLayout<Float>.size, &value)
            }
            try cl.check(status, "clSetKernelArg(\(name.rawValue), \(index))")
        }
        try cl.check(cl.enqueueNDRangeKernel(queue, kernel, UInt32(global.count), nil, global, local, 0, nil, nil),
                     "clEnqueueNDRangeKernel(\(name.rawValue))")
    }

    private func buildLog(_ device: CLHandle) throws(OpenCLError) -> String {
        try OpenCLDiscovery.string({ cl.getProgramBuildInfo(program, device, CL.programBuildLog, $0, $1, $2) },
                                   "clGetProgramBuildInfo")
    }
}
