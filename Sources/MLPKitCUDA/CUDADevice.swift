/// One CUDA device as `mlp devices` lists it.
public struct CUDADeviceInfo: Sendable, Equatable, CustomStringConvertible {
    /// The device ordinal (`CUdevice`), the number `CUDABackend(device:)` takes.
    public var index: Int
    /// "NVIDIA H100 80GB HBM3".
    public var name: String
    /// Compute capability (9, 0) for Hopper.
    public var computeCapability: ComputeCapability
    /// Streaming multiprocessors.
    public var multiprocessors: Int
    /// Device memory in bytes.
    public var memoryBytes: Int
    /// The largest thread block.
    public var maxThreadsPerBlock: Int
    /// Static shared memory a block may use (48 KB), and what it may opt in to.
    public var sharedMemoryPerBlock: Int
    public var sharedMemoryPerBlockOptIn: Int
    /// L2 cache in bytes.
    public var l2CacheBytes: Int
    /// The driver's CUDA version, "13.0".
    public var driverVersion: String

    public var description: String {
        let gib = (Double(memoryBytes) / Double(1 << 30) * 10).rounded() / 10
        return "[\(index)] \(name) (\(computeCapability.architecture), \(multiprocessors) SMs, \(gib) GiB), "
            + "driver CUDA \(driverVersion)"
    }
}

/// A device's compute capability, major.minor.
public struct ComputeCapability: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// The number NVRTC lists for it: 90 for 9.0 (saturating at `Int.max` / `Int.min` for a
    /// major beyond any device's, instead of overflowing).
    public var number: Int {
        let (tens, overflow1) = major.multipliedReportingOverflow(by: 10)
        if overflow1 { return major > 0 ? Int.max : Int.min }
        let (sum, overflow2) = tens.addingReportingOverflow(minor)
        if overflow2 { return minor > 0 ? Int.max : Int.min }
        return sum
    }
    /// "sm_90".
    public var architecture: String { "sm_\(number)" }
    public var description: String { "\(major).\(minor)" }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.number < rhs.number }
}

/// Which CUDA device a backend uses.
public enum CUDADeviceSelection: Sendable, Equatable {
    /// Device 0.
    case automatic
    /// The device with this ordinal.
    case index(Int)
}

/// Device enumeration through the driver.
enum CUDADiscovery {
    /// Every device the driver reports; throws `.noDevice` when there is none.
    static func devices(_ cu: CUDADriver) throws(CUDAError) -> [CUDADeviceInfo] {
        var count: Int32 = 0
        try cu.check(cu.deviceGetCount(&count), "cuDeviceGetCount")
        guard count > 0 else { throw .noDevice("the driver loaded (\(cu.path)) but reports no devices") }
        let driverVersion = try cu.version()
        return try (0..<Int(count)).map { (index) throws(CUDAError) in
            try describe(cu, index: index, driverVersion: driverVersion)
        }
    }

    /// The device handle (`CUdevice`) of ordinal `index`.
    static func device(_ cu: CUDADriver, index: Int) throws(CUDAError) -> Int32 {
        var device: Int32 = 0
        try cu.check(cu.deviceGet(&device, Int32(index)), "cuDeviceGet(\(index))")
        return device
    }

    static func describe(_ cu: CUDADriver, index: Int, driverVersion: String) throws(CUDAError) -> CUDADeviceInfo {
        let device = try Self.device(cu, index: index)
        var name = [CChar](repeating: 0, count: 256)
        try cu.check(cu.deviceGetName(&name, Int32(name.count), device), "cuDeviceGetName")
        var memory = 0
        try cu.check(cu.deviceTotalMemory(&memory, device), "cuDeviceTotalMem_v2")
        func attribute(_ attribute: Int32) throws(CUDAError) -> Int {
            var value: Int32 = 0
            try cu.check(cu.deviceGetAttribute(&value, attribute, device), "cuDeviceGetAttribute(\(attribute))")
            return Int(value)
        }
        return CUDADeviceInfo(
            index: index,
            name: String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
            computeCapability: ComputeCapability(major: try attribute(CU.deviceAttributeComputeCapabilityMajor),
                                                 minor: try attribute(CU.deviceAttributeComputeCapabilityMinor)),
            multiprocessors: try attribute(CU.deviceAttributeMultiprocessorCount),
            memoryBytes: memory,
            maxThreadsPerBlock: try attribute(CU.deviceAttributeMaxThreadsPerBlock),
            sharedMemoryPerBlock: try attribute(CU.deviceAttributeMaxSharedMemoryPerBlock),
            sharedMemoryPerBlockOptIn: try attribute(CU.deviceAttributeMaxSharedMemoryPerBlockOptin),
            l2CacheBytes: try attribute(CU.deviceAttributeL2CacheSize),
            driverVersion: driverVersion)
    }
}

/// A device's primary context, retained while any backend, buffer or graph on it lives.
final class CUDAContext: @unchecked Sendable {
    let cu: CUDADriver
    let device: Int32
    let handle: CUHandle

    init(_ cu: CUDADriver, device: Int32) throws(CUDAError) {
        var context: CUHandle?
        try cu.check(cu.primaryContextRetain(&context, device), "cuDevicePrimaryCtxRetain")
        guard let context else { throw .noDevice("cuDevicePrimaryCtxRetain returned no context") }
        self.cu = cu
        self.device = device
        handle = context
    }

    deinit {
        _ = cu.primaryContextRelease(device)
    }

    /// Makes the context current on the calling thread (driver calls act on the current one).
    @inline(__always)
    func makeCurrent() throws(CUDAError) {
        try cu.check(cu.contextSetCurrent(handle), "cuCtxSetCurrent")
    }
}
