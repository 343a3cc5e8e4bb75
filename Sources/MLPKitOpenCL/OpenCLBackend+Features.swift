import MLPKit
import MLPKitKernels

extension OpenCLBackend {
    /// Gradient clipping's scratch buffer (`KernelLaunchingBackend.clipScratchBuffer`), at least
    /// `count` floats: allocated once and reused by every step (the queue runs in order).
    public func clipScratchBuffer(count: Int) throws(OpenCLError) -> OpenCLBuffer {
        if let buffer = clipScratch, buffer.count >= count { return buffer }
        let buffer = try makeBuffer(count: count)
        clipScratch = buffer
        return buffer
    }
}
