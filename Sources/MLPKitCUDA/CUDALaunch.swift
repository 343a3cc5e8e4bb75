import MLPKitKernels

/// A grid or block size.
struct Dim3: Hashable, Sendable {
    var x: UInt32
    var y: UInt32 = 1
    var z: UInt32 = 1
}

/// One kernel argument, as the kernels declare them: a buffer (its base address), an int, a float.
enum KernelArgument {
    case buffer(CUDABuffer?)
    case int(Int32)
    case float(Float)

    /// The argument in an 8-byte slot, little-endian, so the driver reads 4 or 8 bytes from its start.
    @inline(__always)
    var slot: UInt64 {
        switch self {
        case let .buffer(buffer): buffer?.address ?? 0
        case let .int(value): UInt64(UInt32(bitPattern: value))
        case let .float(value): UInt64(value.bitPattern)
        }
    }
}

/// What makes two launches interchangeable in a graph: the same function on the same grid.
/// Only arguments differ between launches of one shape, and those are patched in place.
struct LaunchShape: Hashable, Sendable {
    var function: UInt
    var grid: Dim3
    var block: Dim3
    var sharedBytes: UInt32
}

/// A kernel launch recorded inside a graphed step instead of being queued.
struct KernelLaunch {
    var kernel: KernelName
    var function: CUHandle
    var grid: Dim3
    var block: Dim3
    var sharedBytes: UInt32
    /// One 8-byte slot per argument.
    var arguments: [UInt64]
    /// The buffers the arguments name, kept alive as long as a graph uses them.
    var buffers: [CUDABuffer]

    var shape: LaunchShape {
        LaunchShape(function: UInt(bitPattern: function), grid: grid, block: block, sharedBytes: sharedBytes)
    }
}

/// The byte layout of `CUDA_KERNEL_NODE_PARAMS_v2` (cuda.h, CUDA 12 and 13) on 64-bit targets:
/// func @0, gridDimX/Y/Z @8/12/16, blockDimX/Y/Z @20/24/28, sharedMemBytes @32, kernelParams @40,
/// extra @48, kern @56, ctx @64; 72 bytes.
enum KernelNodeParameters {
    static let size = 72
    static let functionOffset = 0
    static let gridOffset = 8
    static let blockOffset = 20
    static let sharedBytesOffset = 32
    static let kernelParamsOffset = 40
    static let extraOffset = 48
    static let kernelOffset = 56
    static let contextOffset = 64

    /// Fills `bytes` (72 bytes, 8-aligned) for `launch` with `kernelParams` pointing at its arguments;
    /// `kern` and `ctx` are NULL (the function's own context).
    static func write(_ launch: KernelLaunch, kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                      into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= size)
        for index in 0..<size { bytes[index] = 0 }
        bytes.storeBytes(of: UInt(bitPattern: launch.function), toByteOffset: functionOffset, as: UInt.self)
        let dimensions = [launch.grid.x, launch.grid.y, launch.grid.z, launch.block.x, launch.block.y, launch.block.z,
                          launch.sharedBytes]
        for (index, value) in dimensions.enumerated() {
            bytes.storeBytes(of: value, toByteOffset: gridOffset + 4 * index, as: UInt32.self)
        }
        bytes.storeBytes(of: UInt(bitPattern: kernelParams), toByteOffset: kernelParamsOffset, as: UInt.self)
    }

    /// Runs `body` with the parameters of `launch` laid out as the driver reads them (the driver
    /// copies them, so they need to live only during the call).
    static func with<R>(_ launch: KernelLaunch, _ body: (UnsafeRawPointer) -> R) -> R {
        let count = max(launch.arguments.count, 1)
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
        slots.initialize(repeating: 0, count: count)
        for (index, value) in launch.arguments.enumerated() { slots[index] = value }
        let pointers = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: count)
        for index in 0..<count { pointers[index] = UnsafeMutableRawPointer(slots + index) }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer {
            bytes.deallocate()
            pointers.deallocate()
            slots.deallocate()
        }
        write(launch, kernelParams: pointers, into: UnsafeMutableRawBufferPointer(start: bytes, count: size))
        return body(UnsafeRawPointer(bytes))
    }
}

extension CUDABackend {
    /// Queues `kernel` on the stream, or records it when a graphed step is being recorded.
    func launch(_ kernel: KernelName, grid: Dim3, block: Dim3, sharedBytes: UInt32 = 0,
                _ arguments: [KernelArgument]) throws(CUDAError) {
        let function = try program.function(kernel)
        guard arguments.count <= Self.maxArguments else {
            throw .invalidArgument("\(kernel.rawValue) takes at most \(Self.maxArguments) arguments")
        }
        guard grid.x >= 1, grid.y >= 1, grid.y <= 65535, grid.z >= 1 else {
            throw .invalidArgument("\(kernel.rawValue): grid \(grid.x)×\(grid.y)×\(grid.z) outside the device's limits")
        }
        if recording != nil {
            var buffers: [CUDABuffer] = []
            for case let .buffer(buffer?) in arguments { buffers.append(buffer) }
            recording?.append(KernelLaunch(kernel: kernel, function: function, grid: grid, block: block,
                                           sharedBytes: sharedBytes, arguments: arguments.map(\.slot), buffers: buffers))
            return
        }
        for (index, argument) in arguments.enumerated() {
            argumentSlots[index] = argument.slot
        }
        try context.makeCurrent()
        try cu.check(cu.launchKernel(function, grid.x, grid.y, grid.z, block.x, block.y, block.z, sharedBytes, stream,
                                     argumentPointers, nil),
                     "cuLaunchKernel(\(kernel.rawValue))")
        if synchronousLaunches {
            try cu.check(cu.streamSynchronize(stream), "cuStreamSynchronize (after \(kernel.rawValue))")
        }
    }
}
