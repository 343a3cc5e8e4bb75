import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// The Adam kernel over several steps, with t read from device memory, against the CPU backend.
final class AdamTests: XCTestCase {
    /// 1...4 advance t on the device; 9 is a jump (a resumed run), written from the host.
    func testAdamSteps() throws {
        let backend = try OpenCLBackend(tiles: SharedBackends.backend().tiles)
        try OperationChecks.checkAdamSteps(backend, count: 1031, steps: [1, 2, 3, 4, 9, 10], deviceStep: {
            let counter = try backend.read(BufferSlice(backend.stepCounter), 1)[0].bitPattern
            return Int(Int32(bitPattern: counter))
        }, group: "adam")
        ErrorLog.printWorst(prefix: "adam")
    }

    func testStepZeroIsRefused() throws {
        let backend = try SharedBackends.backend()
        let buffer = try backend.buffer([1])
        XCTAssertThrowsError(try backend.adamUpdate(parameters: buffer, gradients: buffer, firstMoment: buffer,
                                                    secondMoment: buffer, count: 1, hyperparameters: .init(), step: 0))
    }
}
