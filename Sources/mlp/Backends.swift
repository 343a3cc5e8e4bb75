import MLPKit
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
        case .cpu, .auto:
            // auto: CUDA would come first; there is no CUDA backend in this build, so the CPU.
            return try task.run(on: CPUBackend())
        case .opencl:
            let backend: OpenCLBackend
            do { backend = try OpenCLBackend() } catch { throw CommandError("OpenCL is unavailable: \(error)") }
            return try task.run(on: backend)
        case .cuda:
            throw CommandError("CUDA is unavailable: this build of mlp has no CUDA backend yet; use --device cpu or --device opencl")
        }
    }
}
