import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// Device listing, the backend's description, and error reporting.
final class DeviceTests: XCTestCase {
    func testDevicesAreListed() throws {
        let backend = try SharedBackends.backend()
        let devices = try OpenCLBackend.devices()
        XCTAssertFalse(devices.isEmpty)
        XCTAssert(devices.contains(backend.device))
        for device in devices { print("OpenCL device \(device)") }
        XCTAssert(backend.summary.contains(backend.device.name))
        XCTAssert(backend.summary.contains(backend.device.platformName))
        print(backend.summary)
    }

    func testChosenTilesFitTheDevice() throws {
        let backend = try SharedBackends.backend()
        XCTAssertLessThanOrEqual(backend.tiles.maxThreads, backend.device.maxWorkGroupSize)
        XCTAssertLessThanOrEqual(backend.tiles.gemmSharedBytes, backend.device.localMemoryBytes)
    }

    /// Adam's divisions and square roots give the CPU's bits only when the program asks for
    /// correct rounding (OpenCL allows 2.5 and 3 ulp otherwise; NVIDIA's OpenCL takes them).
    func testCorrectRoundingIsAskedForWhereTheDeviceOffersIt() throws {
        let backend = try SharedBackends.backend()
        var device = backend.device
        print("OpenCL device \(device.name): correctly rounded division and square root \(device.correctlyRoundedDivideSqrt)")
        device.correctlyRoundedDivideSqrt = true
        XCTAssertEqual(OpenCLProgram.buildOptions(for: device), "-cl-fp32-correctly-rounded-divide-sqrt")
        device.correctlyRoundedDivideSqrt = false
        XCTAssertEqual(OpenCLProgram.buildOptions(for: device), "")
    }

    func testMissingDeviceIsReported() throws {
        _ = try SharedBackends.backend()
        XCTAssertThrowsError(try OpenCLBackend(device: .index(1000))) {
            guard case OpenCLError.noDevice = $0 else { return XCTFail("unexpected \($0)") }
        }
    }

    func testErrorsNameTheCallAndStatus() {
        let error = OpenCLError.call("clBuildProgram", status: -11)
        XCTAssertEqual(error.description, "clBuildProgram failed: CL_BUILD_PROGRAM_FAILURE (-11)")
        XCTAssertEqual(OpenCLError.statusName(-1001), "CL_PLATFORM_NOT_FOUND_KHR")
        XCTAssert(OpenCLError.noPlatform.description.contains("apt-get install pocl-opencl-icd ocl-icd-libopencl1"))
    }

    func testInvalidTilesAreRefused() throws {
        _ = try SharedBackends.backend()
        XCTAssertThrowsError(try OpenCLBackend(tiles: KernelTiles(bm: 64, bn: 64, bk: 8, tm: 3, tn: 4))) {
            guard case OpenCLError.invalidArgument = $0 else { return XCTFail("unexpected \($0)") }
        }
    }

    func testBuffersAreZeroFilled() throws {
        let backend = try SharedBackends.backend()
        let buffer = try backend.makeBuffer(count: 1000)
        XCTAssertEqual(try backend.read(BufferSlice(buffer), 1000), [Float](repeating: 0, count: 1000))
    }
}
