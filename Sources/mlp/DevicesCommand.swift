import ArgumentParser
import MLPKit
import MLPKitOpenCL

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "The backends available here: CPU (with its matrix product), OpenCL and CUDA devices.")

    func run() throws {
        let cpu = CPUBackend()
        switch cpu.productEngine {
        case .blas(let name):
            let threads = cpu.blas?.threads.map { ", \($0) threads" } ?? ""
            print("cpu: BLAS \(name)\(threads)")
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
        print("cuda: unavailable: this build has no CUDA backend yet")
    }
}
