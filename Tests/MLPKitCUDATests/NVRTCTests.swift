import Foundation
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// The whole kernel program through the library's NVRTC loader, as the backend compiles it for a
/// Hopper GPU (sm_90), without a GPU: a cubin with every kernel, no spills.
final class NVRTCTests: XCTestCase {
    func testFullProgramCompilesToAnSM90Cubin() throws {
        let nvrtc = try sharedNVRTC()
        print("NVRTC \(nvrtc.version) at \(nvrtc.path); sm_\(nvrtc.supportedArchitectures.map(String.init).joined(separator: ", sm_"))")
        XCTAssert(nvrtc.supportedArchitectures.contains(90), "NVRTC \(nvrtc.version) compiles for sm_90")
        let target = try CUDACompileTarget.choose(for: ComputeCapability(major: 9, minor: 0),
                                                  supported: nvrtc.supportedArchitectures)
        XCTAssertEqual(target, .cubin(90))
        // one preset here, the quickest to compile (7 s here; .xlarge, an H100's, takes about five times as
        // long); NVRTCCompileTests compiles every preset with these options and checks the same reports
        for tiles in [KernelTiles.small] {
            // compiled here, not through CUDAKernelCompiler's per-process cache, and with a device
            // variable (in the source and the PTX) no earlier compilation had: on the GPU machine
            // the program `mlp check` had just compiled in another process came back from NVRTC
            // in a tenth of the time with an empty log, so without the ptxas report read here
            let fresh = UUID().uuidString.replacingOccurrences(of: "-", with: "")
            let source = KernelSource.program(tiles: tiles) + "\n__device__ int mlpkit_fresh_\(fresh);\n"
            let compiled = try nvrtc.compile(source, name: CUDAKernelCompiler.programName,
                                             options: [target.option] + CUDAKernelCompiler.baseOptions)
            XCTAssert(compiled.succeeded, compiled.log)
            XCTAssertEqual(Array(compiled.cubin.prefix(4)), [0x7F, 0x45, 0x4C, 0x46], "a cubin is an ELF file")
            let reports = PTXASReport.parse(compiled.log)
            XCTAssertEqual(Set(reports.map(\.kernel)), Set(KernelName.allCases.map(\.rawValue)),
                           "every kernel, with its unmangled name")
            print("sm_90 cubin, tiles \(tiles): \(compiled.cubin.count) bytes")
            for report in reports.sorted(by: { $0.kernel < $1.kernel }) {
                print("  \(report)")
                XCTAssertEqual(report.spillStores + report.spillLoads, 0, "\(report.kernel) spills with tiles \(tiles)")
                XCTAssertEqual(report.stackBytes, 0, "\(report.kernel) uses a stack frame with tiles \(tiles)")
            }
            let gemm = reports.first { $0.kernel == "gemm_nt" }
            XCTAssertEqual(gemm?.sharedBytes, tiles.gemmSharedBytes - tiles.dynamicGemmSharedBytes,
                           "the product's static shared tiles (none when they are dynamic)")
        }
    }

    /// Compiled once per process: the second request is the cached image.
    func testCompiledOncePerProcess() throws {
        let nvrtc = try sharedNVRTC()
        let first = try CUDAKernelCompiler.compile(tiles: .small, target: .cubin(90), compiler: nvrtc)
        let compilations = CUDAKernelCompiler.compilationCount
        let second = try CUDAKernelCompiler.compile(tiles: .small, target: .cubin(90), compiler: nvrtc)
        XCTAssertEqual(CUDAKernelCompiler.compilationCount, compilations, "the second request compiled again")
        XCTAssertEqual(first.image, second.image)
    }

    /// A device newer than NVRTC gets PTX for the newest architecture NVRTC knows.
    func testPTXForADeviceNewerThanNVRTC() throws {
        let nvrtc = try sharedNVRTC()
        let newest = try XCTUnwrap(nvrtc.supportedArchitectures.max())
        let target = try CUDACompileTarget.choose(for: ComputeCapability(major: newest / 10 + 5, minor: 0),
                                                  supported: nvrtc.supportedArchitectures)
        XCTAssertEqual(target, .ptx(newest))
        let compiled = try CUDAKernelCompiler.compile(tiles: .medium, target: .ptx(90), compiler: nvrtc)
        let text = String(decoding: compiled.image.dropLast(), as: UTF8.self)
        XCTAssertEqual(compiled.image.last, 0, "PTX is passed to the driver as a C string")
        XCTAssert(text.contains(".target sm_90"), "PTX for compute_90")
        for name in KernelName.allCases {
            XCTAssert(text.contains(".entry \(name.rawValue)("), "\(name.rawValue) in the PTX")
        }
    }

    func testTargetChoice() throws {
        let supported = [75, 80, 86, 87, 89, 90, 100, 103, 110, 120, 121]
        XCTAssertEqual(try CUDACompileTarget.choose(for: .init(major: 9, minor: 0), supported: supported), .cubin(90))
        XCTAssertEqual(try CUDACompileTarget.choose(for: .init(major: 8, minor: 9), supported: supported), .cubin(89))
        XCTAssertEqual(try CUDACompileTarget.choose(for: .init(major: 13, minor: 0), supported: supported), .ptx(121))
        XCTAssertEqual(try CUDACompileTarget.choose(for: .init(major: 9, minor: 0), supported: []), .cubin(90))
        XCTAssertThrowsError(try CUDACompileTarget.choose(for: .init(major: 6, minor: 1), supported: supported)) {
            guard case CUDAError.compileFailed = $0 else { return XCTFail("unexpected \($0)") }
        }
        XCTAssertEqual(CUDACompileTarget.cubin(90).option, "--gpu-architecture=sm_90")
        XCTAssertEqual(CUDACompileTarget.ptx(90).option, "--gpu-architecture=compute_90")
    }

    func testCompileErrorsComeBackWithTheLog() throws {
        let nvrtc = try sharedNVRTC()
        let result = try nvrtc.compile("extern \"C\" __global__ void broken() { undefined_thing(); }", name: "broken.cu",
                                       options: ["--gpu-architecture=sm_90"])
        XCTAssertFalse(result.succeeded)
        XCTAssert(result.log.contains("undefined_thing"), result.log)
        XCTAssertThrowsError(try CUDAKernelCompiler.compile(tiles: KernelTiles(bm: 64, bn: 64, bk: 8, tm: 3, tn: 4),
                                                            target: .cubin(90), compiler: nvrtc)) {
            guard case CUDAError.invalidArgument = $0 else { return XCTFail("unexpected \($0)") }
        }
    }

    func testReportParsing() {
        let log = """
        ptxas info    : Compiling entry function 'gemm_nt' for 'sm_90'
        ptxas info    : Function properties for gemm_nt
        ptxas         .     8 bytes stack frame, 12 bytes spill stores, 4 bytes spill loads
        ptxas info    : Used 101 registers, used 1 barriers, 16512 bytes smem, 400 bytes cmem[0]
        """
        let reports = PTXASReport.parse(log)
        XCTAssertEqual(reports.count, 1)
        XCTAssertEqual(reports.first?.kernel, "gemm_nt")
        XCTAssertEqual(reports.first?.registers, 101)
        XCTAssertEqual(reports.first?.sharedBytes, 16512)
        XCTAssertEqual(reports.first?.spillStores, 12)
        XCTAssertEqual(reports.first?.spillLoads, 4)
        XCTAssertEqual(reports.first?.stackBytes, 8)
    }
}
