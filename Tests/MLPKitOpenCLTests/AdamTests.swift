import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// The Adam kernel over several steps, with t read from device memory, against the CPU backend.
final class AdamTests: XCTestCase {
    func testAdamSteps() throws {
        let backend = try OpenCLBackend(tiles: SharedBackends.backend().tiles)
        let reference = CPUBackend()
        var random = SeededGenerator(seed: 21)
        let count = 1031, offset = 5
        let hyperparameters = AdamHyperparameters(learningRate: 0.01)
        let initial = random.values(count)
        let onDevice = (θ: try backend.buffer(initial, offset: offset), m: try backend.buffer(.init(repeating: 0, count: count), offset: offset),
                        v: try backend.buffer(.init(repeating: 0, count: count), offset: offset))
        let onCPU = (θ: try reference.buffer(initial, offset: offset), m: try reference.buffer(.init(repeating: 0, count: count), offset: offset),
                     v: try reference.buffer(.init(repeating: 0, count: count), offset: offset))
        // 1...4 advance t on the device; 9 is a jump (a resumed run), written from the host.
        for step in [1, 2, 3, 4, 9, 10] {
            let gradient = random.values(count)
            try backend.adamUpdate(parameters: onDevice.θ, gradients: backend.buffer(gradient, offset: offset),
                                   firstMoment: onDevice.m, secondMoment: onDevice.v, count: count,
                                   hyperparameters: hyperparameters, step: step)
            try reference.adamUpdate(parameters: onCPU.θ, gradients: reference.buffer(gradient, offset: offset),
                                     firstMoment: onCPU.m, secondMoment: onCPU.v, count: count,
                                     hyperparameters: hyperparameters, step: step)
            let counter = try backend.read(BufferSlice(backend.stepCounter), 1)[0].bitPattern
            XCTAssertEqual(Int(Int32(bitPattern: counter)), step, "t in device memory")
            for (name, device, host) in [("θ", onDevice.θ, onCPU.θ), ("m", onDevice.m, onCPU.m), ("v", onDevice.v, onCPU.v)] {
                assertClose(try backend.read(device, count), try reference.read(host, count), "Adam \(name) after step \(step)",
                            group: "adam")
            }
        }
        print("max relative error adam: \(ErrorLog.worst["adam"] ?? 0)")
    }

    func testStepZeroIsRefused() throws {
        let backend = try SharedBackends.backend()
        let buffer = try backend.buffer([1])
        XCTAssertThrowsError(try backend.adamUpdate(parameters: buffer, gradients: buffer, firstMoment: buffer,
                                                    secondMoment: buffer, count: 1, hyperparameters: .init(), step: 0))
    }
}
