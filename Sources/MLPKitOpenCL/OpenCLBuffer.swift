/// A device buffer of Float32 elements (a `cl_mem`), released when the last reference goes.
public final class OpenCLBuffer {
    /// The number of Float32 elements.
    public let count: Int
    let memory: CLHandle
    private let library: OpenCLLibrary

    init(memory: CLHandle, count: Int, library: OpenCLLibrary) {
        self.memory = memory
        self.count = count
        self.library = library
    }

    deinit {
        _ = library.releaseMemObject(memory)
    }
}
