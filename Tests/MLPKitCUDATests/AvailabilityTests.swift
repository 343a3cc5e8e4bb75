import BackendTestSupport
import MLPKit
import XCTest
@testable import MLPKitCUDA

/// Without a GPU the backend says why it is unavailable and never crashes; a bad override names
/// the path; every error names the call and CUDA's error.
final class AvailabilityTests: XCTestCase {
    /// On a machine without a GPU (CI, development), the reason; on a GPU machine, the devices.
    func testAvailabilityReportsDevicesOrTheReason() throws {
        switch CUDABackend.availability() {
        case let .success(devices):
            XCTAssertFalse(devices.isEmpty)
            for device in devices {
                print("cuda: \(device)")
                XCTAssertGreaterThan(device.multiprocessors, 0)
                XCTAssertGreaterThan(device.memoryBytes, 0)
                XCTAssertGreaterThanOrEqual(device.computeCapability.major, 3)
            }
        case let .failure(error):
            print("cuda: unavailable: \(error)")
            XCTAssert(error.meansUnavailable, "no GPU must read as unavailable, got \(error)")
            XCTAssertFalse(error.description.isEmpty)
            // the initializer reports the same reason, as an error (no crash, no partial state)
            XCTAssertThrowsError(try CUDABackend()) {
                XCTAssertEqual(($0 as? CUDAError)?.meansUnavailable, true, "\($0)")
            }
        }
        switch CUDABackend.compilerAvailability() {
        case let .success(text): print("nvrtc: \(text)")
        case let .failure(error): print("nvrtc: unavailable: \(error)")
        }
    }

    func testOverrideWithAMissingFileNamesIt() throws {
        let path = "/nonexistent/mlpkit/libcuda.so.1"
        try withEnvironment("MLPKIT_CUDA", path) {
            XCTAssertEqual(CUDADriver.candidates(), [path], "an override is the only place tried")
            XCTAssertThrowsError(try CUDADriver.load()) { error in
                guard case let CUDAError.libraryUnavailable(library, tried, _) = error else {
                    return XCTFail("unexpected \(error)")
                }
                XCTAssertEqual(library, "libcuda")
                XCTAssertEqual(tried, [path])
                let message = "\(error)"
                XCTAssert(message.contains(path), message)
                XCTAssert(message.contains("MLPKIT_CUDA"), message)
                XCTAssert((error as? CUDAError)?.meansUnavailable == true)
                print(message)
            }
        }
    }

    func testOverrideWithAFolderLooksForTheLibraryInIt() {
        withEnvironment("MLPKIT_CUDA", "/tmp") {
            XCTAssertEqual(CUDADriver.candidates(), ["/tmp/libcuda.so.1"])
        }
    }

    func testDefaultSearchPlaces() {
        withEnvironment("MLPKIT_CUDA", nil) {
            let candidates = CUDADriver.candidates()
            XCTAssertEqual(candidates.first, "libcuda.so.1", "the default search path first")
            for folder in ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/local/nvidia/lib64"] {
                XCTAssert(candidates.contains("\(folder)/libcuda.so.1"), "\(folder) missing from \(candidates)")
            }
        }
    }

    /// A library that loads but is not the driver: the first missing entry point is named.
    func testALibraryWithoutTheDriverAPIIsRefused() throws {
        try withEnvironment("MLPKIT_CUDA", "libm.so.6") {
            XCTAssertThrowsError(try CUDADriver.load()) { error in
                XCTAssertEqual(error as? CUDAError, .missingSymbol(library: "libcuda", symbol: "cuInit"))
                print(error)
            }
        }
    }

    func testMissingNVRTCOverrideNamesItAndSaysWhatToInstall() throws {
        let path = "/nonexistent/mlpkit/libnvrtc.so.13"
        try withEnvironment("MLPKIT_NVRTC", path) {
            XCTAssertEqual(NVRTCCompiler.candidates(), [path])
            XCTAssertThrowsError(try NVRTCCompiler()) { error in
                guard case let CUDAError.libraryUnavailable(library, tried, _) = error else {
                    return XCTFail("unexpected \(error)")
                }
                XCTAssertEqual(library, "NVRTC")
                XCTAssertEqual(tried, [path])
                XCTAssert("\(error)".contains("pip install nvidia-cuda-nvrtc==13.0.88"), "\(error)")
            }
            XCTAssertThrowsError(try NVRTCCompiler(path: "/nonexistent/folder-or-file"))
        }
    }

    func testNVRTCSearchWithoutOverride() {
        withEnvironment("MLPKIT_NVRTC", nil) {
            let candidates = NVRTCCompiler.candidates(includingPython: false)
            XCTAssertEqual(candidates.first, "libnvrtc.so.13", "the default search path first")
            for path in candidates.dropFirst() where path.contains("/") {
                XCTAssert(SharedLibrary.exists(path), "only existing files are listed: \(path)")
            }
            print("NVRTC candidates: \(candidates)")
        }
    }

    func testErrorsNameTheCallAndCUDAsError() {
        let error = CUDAError.driver(call: "cuMemAlloc_v2", code: 2, name: "CUDA_ERROR_OUT_OF_MEMORY", message: "out of memory")
        XCTAssertEqual(error.description, "cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory")
        XCTAssertFalse(error.meansUnavailable)
        XCTAssert(CUDAError.driver(call: "cuInit", code: 100, name: "CUDA_ERROR_NO_DEVICE", message: "").meansUnavailable)
        XCTAssertEqual(CUDAError.nvrtc(call: "nvrtcCompileProgram", code: 6, message: "NVRTC_ERROR_COMPILATION").description,
                       "nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION (6)")
        XCTAssert(CUDAError.notCapturable("download").description.contains("graphed step"))
    }
}
