import MLPKit
import MLPKitCUDA
import MLPKitOpenCL

/// Something to do with whichever backend `--device` names.
protocol BackendTask {
    associatedtype Output
    func run<B: Backend>(on backend: B) throws -> Output
}

extension DeviceChoice {
    /// Runs `task` on the chosen backend: `auto` takes a GPU when one is usable, else the CPU.
    func run<T: BackendTask>(_ task: T) throws -> T.Output {
        switch self {
        case .auto:
            // a CUDA GPU when one is usable, else the CPU
            if let backend = try? CUDABackend() { return try task.run(on: backend) }
            return try task.run(on: CPUBackend())
        case .cpu:
            return try task.run(on: CPUBackend())
        case .opencl:
            let backend: OpenCLBackend
            do { backend = try OpenCLBackend() } catch { throw CommandError("OpenCL is unavailable: \(error)") }
            return try task.run(on: backend)
        case .cuda:
            let backend: CUDABackend
            do { backend = try CUDABackend() } catch { throw CommandError("CUDA is unavailable: \(error)") }
            return try task.run(on: backend)
        }
    }
}
