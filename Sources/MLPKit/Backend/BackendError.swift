/// Errors a backend raises.
public enum BackendError: Error, CustomStringConvertible, Equatable {
    /// An operation reached past the end of a buffer.
    case outOfBounds(operation: String, needed: Int, available: Int)
    /// A size or count was negative or otherwise impossible.
    case invalidArgument(operation: String, reason: String)
    /// The backend cannot run here, and why.
    case unavailable(backend: String, reason: String)
    /// A call into a driver or runtime failed.
    case callFailed(call: String, reason: String)
    /// The backend does not implement a feature (yet): an activation, a loss, weight decay, …
    case unsupported(backend: String, feature: String)

    public var description: String {
        switch self {
        case let .outOfBounds(operation, needed, available):
            return "\(operation): needs \(needed) elements but the buffer holds \(available)"
        case let .invalidArgument(operation, reason):
            return "\(operation): \(reason)"
        case let .unavailable(backend, reason):
            return "\(backend) is unavailable: \(reason)"
        case let .callFailed(call, reason):
            return "\(call) failed: \(reason)"
        case let .unsupported(backend, feature):
            return "the \(backend) backend does not support \(feature) yet"
        }
    }
}
