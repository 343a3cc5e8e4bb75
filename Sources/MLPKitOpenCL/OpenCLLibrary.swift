#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// OpenCL handles (`cl_platform_id`, `cl_context`, `cl_mem`, ...) are opaque pointers.
typealias CLHandle = OpaquePointer

/// The OpenCL entry points the backend uses, resolved with `dlopen`/`dlsym` at run time so that
/// building MLPKit needs no OpenCL headers or libraries.
final class OpenCLLibrary: @unchecked Sendable {
    typealias GetPlatformIDs = @convention(c) (
        UInt32, UnsafeMutablePointer<CLHandle?>?, UnsafeMutablePointer<UInt32>?) -> Int32
    typealias GetInfo = @convention(c) (
        CLHandle?, UInt32, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Int32
    typealias GetDeviceIDs = @convention(c) (
        CLHandle?, UInt64, UInt32, UnsafeMutablePointer<CLHandle?>?, UnsafeMutablePointer<UInt32>?) -> Int32
    typealias CreateContext = @convention(c) (
        UnsafePointer<Int>?, UInt32, UnsafePointer<CLHandle?>?, OpaquePointer?, UnsafeMutableRawPointer?,
        UnsafeMutablePointer<Int32>?) -> CLHandle?
    typealias CreateCommandQueue = @convention(c) (
        CLHandle?, CLHandle?, UInt64, UnsafeMutablePointer<Int32>?) -> CLHandle?
    typealias CreateBuffer = @convention(c) (
        CLHandle?, UInt64, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?) -> CLHandle?
    typealias EnqueueFillBuffer = @convention(c) (
        CLHandle?, CLHandle?, UnsafeRawPointer?, Int, Int, Int, UInt32, UnsafePointer<CLHandle?>?,
        UnsafeMutablePointer<CLHandle?>?) -> Int32
    typealias EnqueueWriteBuffer = @convention(c) (
        CLHandle?, CLHandle?, UInt32, Int, Int, UnsafeRawPointer?, UInt32, UnsafePointer<CLHandle?>?,
        UnsafeMutablePointer<CLHandle?>?) -> Int32
    typealias EnqueueReadBuffer = @convention(c) (
        CLHandle?, CLHandle?, UInt32, Int, Int, UnsafeMutableRawPointer?, UInt32, UnsafePointer<CLHandle?>?,
        UnsafeMutablePointer<CLHandle?>?) -> Int32
    typealias CreateProgramWithSource = @convention(c) (
        CLHandle?, UInt32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int>?,
        UnsafeMutablePointer<Int32>?) -> CLHandle?
    typealias BuildProgram = @convention(c) (
        CLHandle?, UInt32, UnsafePointer<CLHandle?>?, UnsafePointer<CChar>?, OpaquePointer?,
        UnsafeMutableRawPointer?) -> Int32
    typealias GetObjectDeviceInfo = @convention(c) (
        CLHandle?, CLHandle?, UInt32, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Int32
    typealias CreateKernel = @convention(c) (
        CLHandle?, UnsafePointer<CChar>?, UnsafeMutablePointer<Int32>?) -> CLHandle?
    typealias SetKernelArg = @convention(c) (CLHandle?, UInt32, Int, UnsafeRawPointer?) -> Int32
    typealias EnqueueNDRangeKernel = @convention(c) (
        CLHandle?, CLHandle?, UInt32, UnsafePointer<Int>?, UnsafePointer<Int>?, UnsafePointer<Int>?, UInt32,
        UnsafePointer<CLHandle?>?, UnsafeMutablePointer<CLHandle?>?) -> Int32
    typealias HandleCall = @convention(c) (CLHandle?) -> Int32

    let getPlatformIDs: GetPlatformIDs
    let getPlatformInfo: GetInfo
    let getDeviceIDs: GetDeviceIDs
    let getDeviceInfo: GetInfo
    let createContext: CreateContext
    let createCommandQueue: CreateCommandQueue
    let createBuffer: CreateBuffer
    let enqueueFillBuffer: EnqueueFillBuffer
    let enqueueWriteBuffer: EnqueueWriteBuffer
    let enqueueReadBuffer: EnqueueReadBuffer
    let createProgramWithSource: CreateProgramWithSource
    let buildProgram: BuildProgram
    let getProgramBuildInfo: GetObjectDeviceInfo
    let createKernel: CreateKernel
    let getKernelWorkGroupInfo: GetObjectDeviceInfo
    let setKernelArg: SetKernelArg
    let enqueueNDRangeKernel: EnqueueNDRangeKernel
    let flush: HandleCall
    let finish: HandleCall
    let releaseMemObject: HandleCall
    let releaseKernel: HandleCall
    let releaseProgram: HandleCall
    let releaseCommandQueue: HandleCall
    let releaseContext: HandleCall

    /// The library names tried in order: `$MLPKIT_OPENCL` first when set.
    static var candidateNames: [String] {
        var names: [String] = []
        if let override = getenv("MLPKIT_OPENCL").map({ String(cString: $0) }), !override.isEmpty {
            names.append(override)
        }
        #if os(macOS)
        names.append("/System/Library/Frameworks/OpenCL.framework/OpenCL")
        #endif
        names += ["libOpenCL.so.1", "libOpenCL.so"]
        return names
    }

    /// The process-wide library, loaded on first use.
    static let shared: Result<OpenCLLibrary, OpenCLError> = Result { () throws(OpenCLError) in
        try OpenCLLibrary()
    }

    private init() throws(OpenCLError) {
        let names = Self.candidateNames
        var handle: UnsafeMutableRawPointer?
        var reason = "not found"
        for name in names {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
            if let message = dlerror() { reason = String(cString: message) }
        }
        guard let handle else { throw .libraryUnavailable(tried: names, reason: reason) }

        func symbol<T>(_ name: String, as type: T.Type = T.self) throws(OpenCLError) -> T {
            guard let address = dlsym(handle, name) else { throw .missingSymbol(name) }
            return unsafeBitCast(address, to: T.self)
        }
        getPlatformIDs = try symbol("clGetPlatformIDs")
        getPlatformInfo = try symbol("clGetPlatformInfo")
        getDeviceIDs = try symbol("clGetDeviceIDs")
        getDeviceInfo = try symbol("clGetDeviceInfo")
        createContext = try symbol("clCreateContext")
        createCommandQueue = try symbol("clCreateCommandQueue")
        createBuffer = try symbol("clCreateBuffer")
        enqueueFillBuffer = try symbol("clEnqueueFillBuffer")
        enqueueWriteBuffer = try symbol("clEnqueueWriteBuffer")
        enqueueReadBuffer = try symbol("clEnqueueReadBuffer")
        createProgramWithSource = try symbol("clCreateProgramWithSource")
        buildProgram = try symbol("clBuildProgram")
        getProgramBuildInfo = try symbol("clGetProgramBuildInfo")
        createKernel = try symbol("clCreateKernel")
        getKernelWorkGroupInfo = try symbol("clGetKernelWorkGroupInfo")
        setKernelArg = try symbol("clSetKernelArg")
        enqueueNDRangeKernel = try symbol("clEnqueueNDRangeKernel")
        flush = try symbol("clFlush")
        finish = try symbol("clFinish")
        releaseMemObject = try symbol("clReleaseMemObject")
        releaseKernel = try symbol("clReleaseKernel")
        releaseProgram = try symbol("clReleaseProgram")
        releaseCommandQueue = try symbol("clReleaseCommandQueue")
        releaseContext = try symbol("clReleaseContext")
    }

    /// Throws `.call(name, status)` unless `status` is CL_SUCCESS.
    @inline(__always)
    func check(_ status: Int32, _ name: String) throws(OpenCLError) {
        if status != CL.success { throw .call(name, status: status) }
    }

    /// Runs a creating call that reports its status through an out-parameter; throws unless it
    /// succeeded and returned a handle.
    func create(_ name: String, _ body: (UnsafeMutablePointer<Int32>) -> CLHandle?) throws(OpenCLError) -> CLHandle {
        var status: Int32 = CL.success
        let handle = body(&status)
        try check(status, name)
        guard let handle else { throw .call(name, status: CL.invalidValue) }
        return handle
    }
}

/// The OpenCL constants the backend uses (values from the Khronos headers).
enum CL {
    static let success: Int32 = 0
    static let invalidValue: Int32 = -30
    static let platformNotFound: Int32 = -1001
    static let deviceNotFound: Int32 = -1
    static let trueValue: UInt32 = 1

    static let platformVersion: UInt32 = 0x0901
    static let platformName: UInt32 = 0x0902
    static let platformVendor: UInt32 = 0x0903

    static let deviceTypeCPU: UInt64 = 1 << 1
    static let deviceTypeGPU: UInt64 = 1 << 2
    static let deviceTypeAccelerator: UInt64 = 1 << 3
    static let deviceTypeAll: UInt64 = 0xFFFF_FFFF

    static let deviceType: UInt32 = 0x1000
    static let deviceMaxComputeUnits: UInt32 = 0x1002
    static let deviceMaxWorkGroupSize: UInt32 = 0x1004
    static let deviceMaxMemAllocSize: UInt32 = 0x1010
    static let deviceSingleFPConfig: UInt32 = 0x101B
    static let deviceGlobalMemSize: UInt32 = 0x101F
    static let deviceLocalMemSize: UInt32 = 0x1023
    static let deviceName: UInt32 = 0x102B
    static let deviceVendor: UInt32 = 0x102C
    static let driverVersion: UInt32 = 0x102D
    static let deviceVersion: UInt32 = 0x102F

    static let fpCorrectlyRoundedDivideSqrt: UInt64 = 1 << 7

    static let memReadWrite: UInt64 = 1 << 0
    static let programBuildLog: UInt32 = 0x1183
    static let kernelWorkGroupSize: UInt32 = 0x11B0
}
