/// A device buffer of Float32 elements (`cuMemAlloc_v2`), freed when the last reference goes.
///
/// Graphs that use a buffer hold a reference to it, so its memory outlives every replay.
public final class CUDABuffer {
    /// The number of Float32 elements.
    public let count: Int
    /// The device address.
    let address: CUDeviceAddress
    private let context: CUDAContext

    init(address: CUDeviceAddress, count: Int, context: CUDAContext) {
        self.address = address
        self.count = count
        self.context = context
    }

    deinit {
        // queued work may still read it: wait for the context's work, then free
        if (try? context.makeCurrent()) != nil {
            _ = context.cu.contextSynchronize()
            _ = context.cu.memoryFree(address)
        }
    }
}
