import MLPKitKernels

/// What NVRTC compiles the kernels to for one device: machine code for its own architecture
/// (a cubin, `sm_XY`) whenever NVRTC knows it, else PTX for the newest older architecture NVRTC
/// knows, which the driver compiles when it loads (only when the driver is at least as new as NVRTC).
public enum CUDACompileTarget: Hashable, Sendable, CustomStringConvertible {
    /// A cubin for `sm_<number>`.
    case cubin(Int)
    /// PTX for `compute_<number>`.
    case ptx(Int)

    /// The NVRTC option that selects it.
    public var option: String {
        switch self {
        case let .cubin(number): "--gpu-architecture=sm_\(number)"
        case let .ptx(number): "--gpu-architecture=compute_\(number)"
        }
    }

    public var description: String {
        switch self {
        case let .cubin(number): "sm_\(number) cubin"
        case let .ptx(number): "compute_\(number) PTX"
        }
    }

    /// The target for a device of `capability`, given the real architectures NVRTC supports.
    /// - Throws: `.compileFailed` when NVRTC knows no architecture at or below the device's.
    public static func choose(for capability: ComputeCapability, supported: [Int]) throws(CUDAError) -> CUDACompileTarget {
        if supported.isEmpty || supported.contains(capability.number) { return .cubin(capability.number) }
        if let older = supported.filter({ $0 < capability.number }).max() { return .ptx(older) }
        throw .compileFailed(target: capability.architecture,
                             log: "this NVRTC compiles for \(supported.map { "sm_\($0)" }.joined(separator: ", ")) only")
    }
}

/// The kernel program compiled by NVRTC: a cubin (or PTX) image and the compiler's log.
public struct CUDACompiledKernels: Sendable {
    public var target: CUDACompileTarget
    public var tiles: KernelTiles
    /// The cubin, or the PTX text with its terminating NUL.
    public var image: [UInt8]
    /// NVRTC's log, with ptxas' register and spill report.
    public var log: String
    /// "NVRTC 13.0".
    public var compiler: String
}

/// Compiles `KernelSource` with NVRTC, once per process for each target and tile set.
public enum CUDAKernelCompiler {
    /// The options every compilation uses besides the architecture: C++17, line information
    /// for compute-sanitizer and profilers (no effect on the code), ptxas' resource report.
    public static let baseOptions = ["--std=c++17", "-lineinfo", "--ptxas-options=-v"]

    /// The file name NVRTC reports in messages.
    public static let programName = "mlpkit_kernels.cu"

    private static let lock = Lock()
    nonisolated(unsafe) private static var cache: [Key: CUDACompiledKernels] = [:]
    nonisolated(unsafe) private static var compilations = 0

    /// How many programs NVRTC has compiled in this process (a cached image is not counted).
    public static var compilationCount: Int { lock.withLock { compilations } }

    private struct Key: Hashable {
        var target: CUDACompileTarget
        var tiles: KernelTiles
    }

    /// The kernels for `target` with `tiles`, compiled on first use and kept for the process.
    /// - Throws: `.compileFailed` with NVRTC's log; NVRTC's own errors.
    public static func compile(tiles: KernelTiles, target: CUDACompileTarget,
                               compiler: NVRTCCompiler) throws(CUDAError) -> CUDACompiledKernels {
        do throws(KernelTilesError) {
            try tiles.validate()
        } catch {
            throw .invalidArgument(error.description)
        }
        return try lock.withLock { () throws(CUDAError) -> CUDACompiledKernels in
            let key = Key(target: target, tiles: tiles)
            if let compiled = cache[key] { return compiled }
            let options = [target.option] + baseOptions
            let result = try compiler.compile(KernelSource.program(tiles: tiles), name: programName, options: options)
            guard result.succeeded else {
                throw .compileFailed(target: "\(target) with tiles \(tiles)", log: result.log)
            }
            let image: [UInt8] = result.ptx.map { Array($0.utf8) + [0] } ?? result.cubin
            guard !image.isEmpty else {
                throw .compileFailed(target: "\(target) with tiles \(tiles)", log: "NVRTC produced an empty image")
            }
            let compiled = CUDACompiledKernels(target: target, tiles: tiles, image: image, log: result.log,
                                               compiler: "NVRTC \(compiler.version)")
            cache[key] = compiled
            compilations += 1
            return compiled
        }
    }
}

/// The kernel program loaded into a context (`cuModuleLoadData`), and its functions.
final class CUDAProgram {
    let compiled: CUDACompiledKernels
    private let context: CUDAContext
    private let module: CUHandle
    /// Every kernel's `CUfunction`, indexed by `KernelName`.
    private let functions: [KernelName: CUHandle]

    var tiles: KernelTiles { compiled.tiles }

    /// Loads `compiled` and looks up every kernel; throws when one cannot run the block size it needs.
    init(context: CUDAContext, compiled: CUDACompiledKernels) throws(CUDAError) {
        let cu = context.cu
        try context.makeCurrent()
        var module: CUHandle?
        let status = compiled.image.withUnsafeBytes { cu.moduleLoadData(&module, $0.baseAddress) }
        try cu.check(status, "cuModuleLoadData(\(compiled.target))")
        guard let module else { throw .invalidArgument("cuModuleLoadData returned no module") }
        var functions: [KernelName: CUHandle] = [:]
        var elementThreads = 256
        do throws(CUDAError) {
            for name in KernelName.allCases {
                var function: CUHandle?
                try cu.check(cu.moduleGetFunction(&function, module, name.rawValue), "cuModuleGetFunction(\(name.rawValue))")
                guard let function else { throw .invalidArgument("no function \(name.rawValue)") }
                var allowed: Int32 = 0
                try cu.check(cu.functionGetAttribute(&allowed, CU.functionAttributeMaxThreadsPerBlock, function),
                             "cuFuncGetAttribute(\(name.rawValue))")
                let needed = Self.requiredThreads(name, tiles: compiled.tiles)
                if needed > Int(allowed) {
                    throw .compileFailed(target: "\(compiled.target)",
                                         log: "\(name.rawValue) runs at most \(allowed) threads per block; tiles \(compiled.tiles) need \(needed)")
                }
                if needed == 1 { elementThreads = min(elementThreads, Int(allowed)) }
                let shared = name.dynamicSharedBytes(compiled.tiles)
                if shared > 0 {
                    guard let setAttribute = cu.functionSetAttribute else {
                        throw .missingSymbol(library: "libcuda", symbol: "cuFuncSetAttribute")
                    }
                    try cu.check(setAttribute(function, CU.functionAttributeMaxDynamicSharedSizeBytes, Int32(shared)),
                                 "cuFuncSetAttribute(\(name.rawValue), max dynamic shared memory \(shared) bytes)")
                }
                functions[name] = function
            }
        } catch {
            _ = cu.moduleUnload(module)
            throw error
        }
        self.compiled = compiled
        self.context = context
        self.module = module
        self.functions = functions
        self.elementThreads = elementThreads
    }

    deinit {
        if (try? context.makeCurrent()) != nil {
            _ = context.cu.moduleUnload(module)
        }
    }

    /// The largest block the element-wise kernels (any block size) run, at most 256.
    let elementThreads: Int

    /// The function of `kernel` (every kernel is looked up at load).
    @inline(__always)
    func function(_ kernel: KernelName) throws(CUDAError) -> CUHandle {
        guard let function = functions[kernel] else { throw .invalidArgument("no kernel \(kernel.rawValue)") }
        return function
    }

    /// The block size a kernel is compiled for (1 where any size works).
    static func requiredThreads(_ name: KernelName, tiles: KernelTiles) -> Int {
        name.requiredThreads(tiles)
    }
}
