/// One OpenCL device as `mlp devices` lists it.
public struct OpenCLDeviceInfo: Sendable, Equatable, CustomStringConvertible {
    /// Position in `OpenCLBackend.devices()`, the number `OpenCLDeviceSelection.index` takes.
    public var index: Int
    /// The platform's name, e.g. "Portable Computing Language".
    public var platformName: String
    /// The platform's version string.
    public var platformVersion: String
    /// The device's name.
    public var name: String
    /// The device's vendor.
    public var vendor: String
    /// The device's OpenCL version string.
    public var version: String
    /// "GPU", "CPU", "accelerator" or "other".
    public var kind: String
    /// Compute units (cores or multiprocessors).
    public var computeUnits: Int
    /// Global memory in bytes.
    public var globalMemoryBytes: Int
    /// Local (shared) memory per work-group in bytes.
    public var localMemoryBytes: Int
    /// The largest work-group the device runs.
    public var maxWorkGroupSize: Int
    /// Whether the device can divide and take square roots of `float`s correctly rounded
    /// (`CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT`). The program is then built with
    /// `-cl-fp32-correctly-rounded-divide-sqrt`, so that Adam's divisions and square roots give
    /// the CPU's bits; without it OpenCL allows 2.5 ulp for a division and 3 for a square root
    /// (NVIDIA's OpenCL on an H100 moved Adam's parameters by up to 1e-8 of themselves).
    public var correctlyRoundedDivideSqrt: Bool = false

    /// Whether the device is a GPU.
    public var isGPU: Bool { kind == "GPU" }

    public var description: String {
        let gib = Double(globalMemoryBytes) / Double(1 << 30)
        let memory = (gib * 10).rounded() / 10
        return "[\(index)] \(name) (\(kind), \(computeUnits) compute units, \(memory) GiB) on \(platformName), \(version)"
    }
}

/// Which OpenCL device a backend uses.
public enum OpenCLDeviceSelection: Sendable, Equatable {
    /// The first GPU, else the first device of any kind.
    case automatic
    /// The device at this position in `OpenCLBackend.devices()`.
    case index(Int)
}

/// A device handle with its platform and description.
struct OpenCLDeviceHandle {
    var platform: CLHandle
    var device: CLHandle
    var info: OpenCLDeviceInfo
}

/// Platform and device enumeration.
enum OpenCLDiscovery {
    /// Every device of every platform, in platform order.
    static func devices(_ cl: OpenCLLibrary) throws(OpenCLError) -> [OpenCLDeviceHandle] {
        var platformCount: UInt32 = 0
        let status = cl.getPlatformIDs(0, nil, &platformCount)
        if status == CL.platformNotFound || (status == CL.success && platformCount == 0) {
            throw .noPlatform
        }
        try cl.check(status, "clGetPlatformIDs")
        var platforms = [CLHandle?](repeating: nil, count: Int(platformCount))
        try cl.check(cl.getPlatformIDs(platformCount, &platforms, nil), "clGetPlatformIDs")

        var result: [OpenCLDeviceHandle] = []
        for case let platform? in platforms {
            let platformName = try string(cl.getPlatformInfo, platform, CL.platformName, "clGetPlatformInfo")
            let platformVersion = try string(cl.getPlatformInfo, platform, CL.platformVersion, "clGetPlatformInfo")
            var deviceCount: UInt32 = 0
            let countStatus = cl.getDeviceIDs(platform, CL.deviceTypeAll, 0, nil, &deviceCount)
            if countStatus == CL.deviceNotFound || deviceCount == 0 { continue }
            try cl.check(countStatus, "clGetDeviceIDs")
            var devices = [CLHandle?](repeating: nil, count: Int(deviceCount))
            try cl.check(cl.getDeviceIDs(platform, CL.deviceTypeAll, deviceCount, &devices, nil), "clGetDeviceIDs")
            for case let device? in devices {
                let info = try describe(cl, device, index: result.count,
                                        platformName: platformName, platformVersion: platformVersion)
                result.append(OpenCLDeviceHandle(platform: platform, device: device, info: info))
            }
        }
        return result
    }

    /// The device a selection names.
    static func select(_ selection: OpenCLDeviceSelection, from devices: [OpenCLDeviceHandle])
        throws(OpenCLError) -> OpenCLDeviceHandle {
        switch selection {
        case .automatic:
            guard let device = devices.first(where: { $0.info.isGPU }) ?? devices.first else {
                throw .noDevice("any kind (the platforms list no devices)")
            }
            return device
        case let .index(index):
            guard devices.indices.contains(index) else {
                throw .noDevice("index \(index) (there are \(devices.count))")
            }
            return devices[index]
        }
    }

    private static func describe(_ cl: OpenCLLibrary, _ device: CLHandle, index: Int,
                                 platformName: String, platformVersion: String) throws(OpenCLError) -> OpenCLDeviceInfo {
        let name = "clGetDeviceInfo"
        let type: UInt64 = try scalar(cl.getDeviceInfo, device, CL.deviceType, name)
        let kind = type & CL.deviceTypeGPU != 0 ? "GPU"
            : type & CL.deviceTypeCPU != 0 ? "CPU"
            : type & CL.deviceTypeAccelerator != 0 ? "accelerator" : "other"
        let computeUnits: UInt32 = try scalar(cl.getDeviceInfo, device, CL.deviceMaxComputeUnits, name)
        let globalMemory: UInt64 = try scalar(cl.getDeviceInfo, device, CL.deviceGlobalMemSize, name)
        let localMemory: UInt64 = try scalar(cl.getDeviceInfo, device, CL.deviceLocalMemSize, name)
        let maxWorkGroup: Int = try scalar(cl.getDeviceInfo, device, CL.deviceMaxWorkGroupSize, name)
        let singleFP: UInt64 = try scalar(cl.getDeviceInfo, device, CL.deviceSingleFPConfig, name)
        return OpenCLDeviceInfo(
            index: index, platformName: platformName, platformVersion: platformVersion,
            name: try string(cl.getDeviceInfo, device, CL.deviceName, name),
            vendor: try string(cl.getDeviceInfo, device, CL.deviceVendor, name),
            version: try string(cl.getDeviceInfo, device, CL.deviceVersion, name),
            kind: kind, computeUnits: Int(computeUnits), globalMemoryBytes: Int(clamping: globalMemory),
            localMemoryBytes: Int(clamping: localMemory), maxWorkGroupSize: maxWorkGroup,
            correctlyRoundedDivideSqrt: singleFP & CL.fpCorrectlyRoundedDivideSqrt != 0)
    }

    /// One `clGet*Info` call with its object and parameter bound: (size, value, size returned).
    typealias InfoQuery = (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Int32

    /// A string-valued info query of `clGetPlatformInfo` or `clGetDeviceInfo`.
    static func string(_ query: OpenCLLibrary.GetInfo, _ object: CLHandle, _ parameter: UInt32,
                       _ name: String) throws(OpenCLError) -> String {
        try string({ query(object, parameter, $0, $1, $2) }, name)
    }

    /// A fixed-size info query of `clGetPlatformInfo` or `clGetDeviceInfo`.
    static func scalar<T: FixedWidthInteger>(_ query: OpenCLLibrary.GetInfo, _ object: CLHandle,
                                             _ parameter: UInt32, _ name: String) throws(OpenCLError) -> T {
        try scalar({ query(object, parameter, $0, $1, $2) }, name)
    }

    /// A string-valued info query (size first, then the bytes).
    static func string(_ query: InfoQuery, _ name: String) throws(OpenCLError) -> String {
        var size = 0
        var status = query(0, nil, &size)
        guard status == CL.success else { throw .call(name, status: status) }
        var bytes = [UInt8](repeating: 0, count: max(size, 1))
        status = bytes.withUnsafeMutableBytes { query(size, $0.baseAddress, nil) }
        guard status == CL.success else { throw .call(name, status: status) }
        let text = bytes.prefix { $0 != 0 }
        return String(decoding: text, as: UTF8.self).trimmingSpaces()
    }

    /// A fixed-size info query.
    static func scalar<T: FixedWidthInteger>(_ query: InfoQuery, _ name: String) throws(OpenCLError) -> T {
        var value: T = 0
        let status = withUnsafeMutableBytes(of: &value) { query($0.count, $0.baseAddress, nil) }
        guard status == CL.success else { throw .call(name, status: status) }
        return value
    }
}

extension String {
    /// The string without leading and trailing spaces (device names are often padded).
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars.removeFirst() }
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}
