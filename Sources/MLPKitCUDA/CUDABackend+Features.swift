import MLPKit
import MLPKitKernels

extension CUDABackend {
    /// Gradient clipping's scratch buffer (`KernelLaunchingBackend.clipScratchBuffer`), at least
    /// `count` floats: allocated once and reused by every step (one stream, in order; a graph
    /// keeps the buffer its nodes name alive).
    public func clipScratchBuffer(count: Int) throws(CUDAError) -> CUDABuffer {
        if let buffer = clipScratch, buffer.count >= count { return buffer }
        let buffer = try makeBuffer(count: count)
        clipScratch = buffer
        return buffer
    }
}
