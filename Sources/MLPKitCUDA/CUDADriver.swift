#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CUDA driver handles (`CUcontext`, `CUstream`, `CUfunction`, `CUgraphExec`, ...) are opaque pointers.
typealias CUHandle = OpaquePointer
/// A device address (`CUdeviceptr`).
typealias CUDeviceAddress = UInt64

/// The driver API (`libcuda.so.1`), resolved with `dlopen`/`dlsym` at run time so that building
/// MLPKit needs no CUDA. Every entry point has its C signature as a `@convention(c)` type and the
/// versioned name the headers map it to (`cuMemAlloc_v2`, ...). `check` turns a status into a
/// `CUDAError` naming the call, with CUDA's error name and string.
final class CUDADriver: @unchecked Sendable {
    typealias Status = Int32
    typealias Init = @convention(c) (UInt32) -> Status
    typealias GetInt = @convention(c) (UnsafeMutablePointer<Int32>?) -> Status
    typealias DeviceGet = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Status
    typealias DeviceGetName = @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32) -> Status
    typealias DeviceGetAttribute = @convention(c) (UnsafeMutablePointer<Int32>?, Int32, Int32) -> Status
    typealias DeviceTotalMemory = @convention(c) (UnsafeMutablePointer<Int>?, Int32) -> Status
    typealias PrimaryContextRetain = @convention(c) (UnsafeMutablePointer<CUHandle?>?, Int32) -> Status
    typealias DeviceCall = @convention(c) (Int32) -> Status
    typealias HandleCall = @convention(c) (CUHandle?) -> Status
    typealias VoidCall = @convention(c) () -> Status
    typealias CreateWithFlags = @convention(c) (UnsafeMutablePointer<CUHandle?>?, UInt32) -> Status
    typealias MemoryAllocate = @convention(c) (UnsafeMutablePointer<CUDeviceAddress>?, Int) -> Status
    typealias MemoryFree = @convention(c) (CUDeviceAddress) -> Status
    typealias MemorySet32 = @convention(c) (CUDeviceAddress, UInt32, Int, CUHandle?) -> Status
    typealias CopyHostToDevice = @convention(c) (CUDeviceAddress, UnsafeRawPointer?, Int, CUHandle?) -> Status
    typealias CopyDeviceToHost = @convention(c) (UnsafeMutableRawPointer?, CUDeviceAddress, Int, CUHandle?) -> Status
    typealias MemoryInfo = @convention(c) (UnsafeMutablePointer<Int>?, UnsafeMutablePointer<Int>?) -> Status
    typealias ModuleLoadData = @convention(c) (UnsafeMutablePointer<CUHandle?>?, UnsafeRawPointer?) -> Status
    typealias ModuleGetFunction = @convention(c) (UnsafeMutablePointer<CUHandle?>?, CUHandle?, UnsafePointer<CChar>?) -> Status
    typealias FunctionGetAttribute = @convention(c) (UnsafeMutablePointer<Int32>?, Int32, CUHandle?) -> Status
    typealias FunctionSetAttribute = @convention(c) (CUHandle?, Int32, Int32) -> Status
    typealias LaunchKernel = @convention(c) (
        CUHandle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUHandle?,
        UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Status
    typealias ErrorText = @convention(c) (Status, UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Status
    typealias EventRecord = @convention(c) (CUHandle?, CUHandle?) -> Status
    typealias EventElapsed = @convention(c) (UnsafeMutablePointer<Float>?, CUHandle?, CUHandle?) -> Status
    typealias GraphAddKernelNode = @convention(c) (
        UnsafeMutablePointer<CUHandle?>?, CUHandle?, UnsafePointer<CUHandle?>?, Int, UnsafeRawPointer?) -> Status
    typealias GraphInstantiate = @convention(c) (UnsafeMutablePointer<CUHandle?>?, CUHandle?, UInt64) -> Status
    typealias GraphExecKernelNodeSetParams = @convention(c) (CUHandle?, CUHandle?, UnsafeRawPointer?) -> Status
    typealias GraphLaunch = @convention(c) (CUHandle?, CUHandle?) -> Status

    /// The library that loaded.
    let path: String

    let initialize: Init
    let driverGetVersion: GetInt
    let deviceGetCount: GetInt
    let deviceGet: DeviceGet
    let deviceGetName: DeviceGetName
    let deviceGetAttribute: DeviceGetAttribute
    let deviceTotalMemory: DeviceTotalMemory
    let primaryContextRetain: PrimaryContextRetain
    let primaryContextRelease: DeviceCall
    let contextSetCurrent: HandleCall
    let contextSynchronize: VoidCall
    let memoryGetInfo: MemoryInfo
    let streamCreate: CreateWithFlags
    let streamDestroy: HandleCall
    let streamSynchronize: HandleCall
    let memoryAllocate: MemoryAllocate
    let memoryFree: MemoryFree
    let memorySet32Async: MemorySet32
    let copyHostToDeviceAsync: CopyHostToDevice
    let copyDeviceToHostAsync: CopyDeviceToHost
    let moduleLoadData: ModuleLoadData
    let moduleUnload: HandleCall
    let moduleGetFunction: ModuleGetFunction
    let functionGetAttribute: FunctionGetAttribute
    /// `cuFuncSetAttribute`, looked up only when a kernel needs more than 48 KB of shared memory.
    let functionSetAttribute: FunctionSetAttribute?
    let launchKernel: LaunchKernel
    let getErrorName: ErrorText
    let getErrorString: ErrorText
    let eventCreate: CreateWithFlags
    let eventDestroy: HandleCall
    let eventRecord: EventRecord
    let eventSynchronize: HandleCall
    let eventElapsedTime: EventElapsed
    let graphCreate: CreateWithFlags
    let graphAddKernelNode: GraphAddKernelNode
    let graphInstantiate: GraphInstantiate
    let graphExecKernelNodeSetParams: GraphExecKernelNodeSetParams
    let graphLaunch: GraphLaunch
    let graphExecDestroy: HandleCall
    let graphDestroy: HandleCall

    /// The process-wide driver, loaded and initialised (`cuInit`) on first use.
    static let shared: Result<CUDADriver, CUDAError> = Result { () throws(CUDAError) in try load() }

    /// Loads the driver from `candidates()` and initialises it (`cuInit`), without caching.
    static func load() throws(CUDAError) -> CUDADriver {
        let driver = try CUDADriver(library: SharedLibrary.open("libcuda", candidates: candidates()))
        try driver.check(driver.initialize(0), "cuInit")
        return driver
    }

    /// The library names and paths tried: `$MLPKIT_CUDA` alone when set (the library or its
    /// folder), else the default search path and the usual driver folders.
    static func candidates() -> [String] {
        if let override = SharedLibrary.environment("MLPKIT_CUDA") {
            return [SharedLibrary.override(override, fileName: "libcuda.so.1")]
        }
        let folders = ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/local/nvidia/lib64",
                       "/usr/lib64", "/usr/lib/aarch64-linux-gnu", "/usr/lib/wsl/lib"]
        return ["libcuda.so.1"] + folders.map { "\($0)/libcuda.so.1" }
    }

    /// Resolves every entry point of `library`; throws `.missingSymbol` naming the first one missing.
    init(library: SharedLibrary) throws(CUDAError) {
        path = library.path
        initialize = try library.symbol("cuInit")
        driverGetVersion = try library.symbol("cuDriverGetVersion")
        deviceGetCount = try library.symbol("cuDeviceGetCount")
        deviceGet = try library.symbol("cuDeviceGet")
        deviceGetName = try library.symbol("cuDeviceGetName")
        deviceGetAttribute = try library.symbol("cuDeviceGetAttribute")
        deviceTotalMemory = try library.symbol("cuDeviceTotalMem_v2")
        primaryContextRetain = try library.symbol("cuDevicePrimaryCtxRetain")
        primaryContextRelease = try library.symbol("cuDevicePrimaryCtxRelease_v2")
        contextSetCurrent = try library.symbol("cuCtxSetCurrent")
        contextSynchronize = try library.symbol("cuCtxSynchronize")
        memoryGetInfo = try library.symbol("cuMemGetInfo_v2")
        streamCreate = try library.symbol("cuStreamCreate")
        streamDestroy = try library.symbol("cuStreamDestroy_v2")
        streamSynchronize = try library.symbol("cuStreamSynchronize")
        memoryAllocate = try library.symbol("cuMemAlloc_v2")
        memoryFree = try library.symbol("cuMemFree_v2")
        memorySet32Async = try library.symbol("cuMemsetD32Async")
        copyHostToDeviceAsync = try library.symbol("cuMemcpyHtoDAsync_v2")
        copyDeviceToHostAsync = try library.symbol("cuMemcpyDtoHAsync_v2")
        moduleLoadData = try library.symbol("cuModuleLoadData")
        moduleUnload = try library.symbol("cuModuleUnload")
        moduleGetFunction = try library.symbol("cuModuleGetFunction")
        functionGetAttribute = try library.symbol("cuFuncGetAttribute")
        functionSetAttribute = try? library.symbol("cuFuncSetAttribute")
        launchKernel = try library.symbol("cuLaunchKernel")
        getErrorName = try library.symbol("cuGetErrorName")
        getErrorString = try library.symbol("cuGetErrorString")
        eventCreate = try library.symbol("cuEventCreate")
        eventDestroy = try library.symbol("cuEventDestroy_v2")
        eventRecord = try library.symbol("cuEventRecord")
        eventSynchronize = try library.symbol("cuEventSynchronize")
        eventElapsedTime = try library.symbol(firstOf: ["cuEventElapsedTime_v2", "cuEventElapsedTime"])
        graphCreate = try library.symbol("cuGraphCreate")
        graphAddKernelNode = try library.symbol("cuGraphAddKernelNode_v2")
        graphInstantiate = try library.symbol("cuGraphInstantiateWithFlags")
        graphExecKernelNodeSetParams = try library.symbol("cuGraphExecKernelNodeSetParams_v2")
        graphLaunch = try library.symbol("cuGraphLaunch")
        graphExecDestroy = try library.symbol("cuGraphExecDestroy")
        graphDestroy = try library.symbol("cuGraphDestroy")
    }

    /// Throws `.driver` naming `call` unless `status` is CUDA_SUCCESS.
    @inline(__always)
    func check(_ status: Status, _ call: @autoclosure () -> String) throws(CUDAError) {
        if status != 0 { throw error(status, call()) }
    }

    /// The error for `status` from `call`, with CUDA's name ("CUDA_ERROR_OUT_OF_MEMORY") and string.
    func error(_ status: Status, _ call: String) -> CUDAError {
        var name: UnsafePointer<CChar>?
        var message: UnsafePointer<CChar>?
        let knownName = getErrorName(status, &name) == 0 ? name.map { String(cString: $0) } : nil
        let knownMessage = getErrorString(status, &message) == 0 ? message.map { String(cString: $0) } : nil
        return .driver(call: call, code: status, name: knownName ?? "CUDA error \(status)",
                       message: knownMessage ?? "unrecognised error code")
    }

    /// The driver's CUDA version, "13.0".
    func version() throws(CUDAError) -> String {
        var version: Int32 = 0
        try check(driverGetVersion(&version), "cuDriverGetVersion")
        return "\(version / 1000).\(version % 1000 / 10)"
    }
}

/// The driver API's constants that the backend uses (values from cuda.h).
enum CU {
    static let deviceAttributeMaxThreadsPerBlock: Int32 = 1
    static let deviceAttributeMaxGridDimY: Int32 = 6
    static let deviceAttributeMaxSharedMemoryPerBlock: Int32 = 8
    static let deviceAttributeClockRate: Int32 = 13
    static let deviceAttributeMultiprocessorCount: Int32 = 16
    static let deviceAttributeMemoryClockRate: Int32 = 36
    static let deviceAttributeGlobalMemoryBusWidth: Int32 = 37
    static let deviceAttributeL2CacheSize: Int32 = 38
    static let deviceAttributeComputeCapabilityMajor: Int32 = 75
    static let deviceAttributeComputeCapabilityMinor: Int32 = 76
    static let deviceAttributeMaxSharedMemoryPerBlockOptin: Int32 = 97

    static let functionAttributeMaxThreadsPerBlock: Int32 = 0
    static let functionAttributeNumRegisters: Int32 = 4
    static let functionAttributeMaxDynamicSharedSizeBytes: Int32 = 8

    static let streamNonBlocking: UInt32 = 1
    static let eventDefault: UInt32 = 0

    /// CUDA_ERROR_NO_DEVICE.
    static let errorNoDevice: Int32 = 100
}
