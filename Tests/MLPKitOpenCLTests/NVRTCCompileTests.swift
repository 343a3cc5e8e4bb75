import BackendTestSupport
import MLPKitCUDA
import MLPKitKernels
import XCTest

/// Every kernel compiles with NVRTC for sm_90 (Hopper), for every tile preset, with the options
/// the CUDA backend uses, with no register spills and no stack frame; ptxas' register and
/// shared-memory report is printed. (`NVRTCTests` compiles one preset through the backend's own
/// path; the presets are compiled here alone, each compile taking 20–30 s on 2 cores.)
final class NVRTCCompileTests: XCTestCase {
    static let options = ["--gpu-architecture=sm_90"] + CUDAKernelCompiler.baseOptions

    func testKernelsCompileForSM90WithoutSpills() throws {
        let compiler: NVRTCCompiler
        do {
            compiler = try NVRTCCompiler()
        } catch {
            try missingTool("\(error). Install NVRTC: pip install nvidia-cuda-nvrtc==13.0.88 (or set MLPKIT_NVRTC)")
        }
        print("NVRTC \(compiler.version) from \(compiler.path), options \(Self.options.joined(separator: " "))")
        for tiles in KernelTiles.presets {
            let result = try compiler.compile(KernelSource.program(tiles: tiles), name: "mlpkit_kernels.cu",
                                              options: Self.options)
            XCTAssert(result.succeeded, "NVRTC failed for tiles \(tiles):\n\(result.log)")
            guard result.succeeded else { continue }
            XCTAssertGreaterThan(result.cubinBytes, 0)
            let reports = PTXASReport.parse(result.log)
            print("ptxas sm_90, tiles \(tiles), cubin \(result.cubinBytes) bytes:")
            for report in reports.sorted(by: { $0.kernel < $1.kernel }) {
                print("  \(report)")
                XCTAssertEqual(report.spillStores + report.spillLoads, 0, "\(report.kernel) spills with tiles \(tiles)")
                XCTAssertEqual(report.stackBytes, 0, "\(report.kernel) uses a stack frame with tiles \(tiles)")
            }
            XCTAssertEqual(Set(reports.map(\.kernel)), Set(KernelName.allCases.map(\.rawValue)),
                           "every kernel is compiled, with its unmangled name")
            let gemm = reports.first { $0.kernel == "gemm_nt" }
            XCTAssertEqual(gemm?.sharedBytes, tiles.gemmSharedBytes - tiles.dynamicGemmSharedBytes,
                           "the product's static shared tiles (none when they are dynamic)")
        }
    }

    /// The tuning variants (`MLPKIT_CUDA_TILES`) that are not presets compile too; their
    /// products' report is printed (a variant held to fewer registers may spill: that is what it
    /// is there to measure).
    func testTuningVariantsCompile() throws {
        let compiler: NVRTCCompiler
        do {
            compiler = try NVRTCCompiler()
        } catch {
            try missingTool("\(error). Install NVRTC: pip install nvidia-cuda-nvrtc==13.0.88 (or set MLPKIT_NVRTC)")
        }
        let variants = KernelTiles.named.filter { !KernelTiles.presets.contains($0.value) }
        XCTAssertEqual(variants.count, KernelTiles.named.count - KernelTiles.presets.count, "every preset is named")
        for (name, tiles) in variants.sorted(by: { $0.key < $1.key }) {
            XCTAssertNoThrow(try tiles.validate(), name)
            // the optimisation passes on both cores (--split-compile): the variants only need to compile
            let result = try compiler.compile(KernelSource.program(tiles: tiles), name: "mlpkit_kernels.cu",
                                              options: Self.options + ["--split-compile=0"])
            XCTAssert(result.succeeded, "NVRTC failed for \(name):\n\(result.log)")
            for report in PTXASReport.parse(result.log).sorted(by: { $0.kernel < $1.kernel })
            where report.kernel.hasPrefix("gemm_") && !report.kernel.hasSuffix("_sum") {
                print("  \(name): \(report)")
            }
        }
    }
}
