import ArgumentParser
import MLPKit
import MLPKitCUDA
import MLPKitOpenCL

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "The backends available here: CPU (with its matrix product), OpenCL and CUDA devices.")

    func run() throws {
        let cpu = CPUBackend()
        switch cpu.productEngine {
        case .blas(let name):
            let threads = cpu.blas.map { ", " + CPUBackend.threadCount($0.maximumThreads) } ?? ""
            let kernels = cpu.blas?.coreName.map { " (\($0) kernels)" } ?? ""
            print("cpu: BLAS \(name)\(kernels)\(threads)")
        case .packed:
            print("cpu: built-in AVX2 product, \(CPUBackend.threadCount(CPUBackend.packedThreads)) (no BLAS found; OpenBLAS is faster: apt-get install libopenblas0-pthread)")
        case .swift:
            print("cpu: Swift matrix product (no BLAS found; install OpenBLAS, e.g. apt-get install libopenblas0-pthread)")
        }
        do {
            let devices = try OpenCLBackend.devices()
            if devices.isEmpty { print("opencl: no devices") }
            for device in devices { print("opencl: \(device)") }
        } catch {
            print("opencl: unavailable: \(error)")
        }
        switch CUDABackend.availability() {
        case .success(let devices):
            if devices.isEmpty { print("cuda: no devices") }
            for device in devices { print("cuda: \(device)") }
            switch CUDABackend.compilerAvailability() {
            case .success(let compiler): print("cuda: kernels compiled by \(compiler)")
            case .failure(let error): print("cuda: no kernel compiler: \(error)")
            }
        case .failure(let error):
            print("cuda: unavailable: \(error)")
        }
        for problem in EnvironmentSettings.problems() { print("environment: \(problem)") }
    }
}
