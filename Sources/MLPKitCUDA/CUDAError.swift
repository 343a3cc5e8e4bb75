/// Why a CUDA operation failed. Every driver and NVRTC call's status becomes `.driver` or
/// `.nvrtc`, which name the call and CUDA's own error name and string.
public enum CUDAError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No library of `library` ("libcuda", "NVRTC") could be opened; `tried` lists the paths.
    case libraryUnavailable(library: String, tried: [String], reason: String)
    /// A library lacks an entry point the backend needs.
    case missingSymbol(library: String, symbol: String)
    /// A driver call returned something other than CUDA_SUCCESS.
    case driver(call: String, code: Int32, name: String, message: String)
    /// An NVRTC call returned something other than NVRTC_SUCCESS.
    case nvrtc(call: String, code: Int32, message: String)
    /// The driver loaded but there is no usable device (or not the one asked for).
    case noDevice(String)
    /// NVRTC rejected the kernel program; its log.
    case compileFailed(target: String, log: String)
    /// An operation's arguments are out of range (sizes, offsets past a buffer's end).
    case invalidArgument(String)
    /// Something that cannot happen inside a graphed step (a download, a synchronize, an
    /// upload, nesting).
    case notCapturable(String)

    /// What to install or set to get the CUDA backend.
    public static let driverHint = "needs an NVIDIA GPU with its driver (libcuda.so.1); "
        + "set MLPKIT_CUDA to the library or its folder if it is installed elsewhere"
    public static let nvrtcHint = "install NVRTC (pip install nvidia-cuda-nvrtc==13.0.88, or the CUDA toolkit); "
        + "set MLPKIT_NVRTC to libnvrtc.so.13 or its folder if it is installed elsewhere"

    public var description: String {
        switch self {
        case let .libraryUnavailable(library, tried, reason):
            let hint = library == "NVRTC" ? Self.nvrtcHint : Self.driverHint
            return "\(library) not found: tried \(tried.joined(separator: ", ")) (\(reason)); \(hint)"
        case let .missingSymbol(library, symbol):
            return "\(library) lacks \(symbol) (too old a version?)"
        case let .driver(call, code, name, message):
            return "\(call) failed: \(name) (\(code)): \(message)"
        case let .nvrtc(call, code, message):
            return "\(call) failed: \(message) (\(code))"
        case let .noDevice(reason):
            return "no CUDA device: \(reason)"
        case let .compileFailed(target, log):
            return "the kernels did not compile for \(target):\n\(log)"
        case let .invalidArgument(reason):
            return "invalid argument: \(reason)"
        case let .notCapturable(reason):
            return "not allowed inside a graphed step: \(reason)"
        }
    }

    /// Whether the error means "there is no CUDA here" (no driver, no device, no NVRTC), as
    /// opposed to a failure of a CUDA that is present.
    public var meansUnavailable: Bool {
        switch self {
        case .libraryUnavailable, .missingSymbol, .noDevice: true
        // not initialized, stub library, insufficient driver, device unavailable, no device, unknown (cuInit in a container)
        case let .driver(_, code, _, _): [3, 34, 35, 46, 100, 999].contains(code)
        default: false
        }
    }
}
