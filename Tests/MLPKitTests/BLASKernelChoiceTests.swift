import CMLPKitSIMD
import Foundation
import XCTest
@testable import MLPKit

/// OpenBLAS's kernels on processors with AVX-512: MLPKit asks for SkylakeX's (Cooperlake's with
/// AVX512_BF16) before OpenBLAS loads, because OpenBLAS 0.3.21 takes the Xeons after Ice Lake for
/// a Prescott and runs SSE3 kernels there. The processor's features are read here from
/// /proc/cpuinfo, independently of the CPUID code that MLPKit uses.
final class BLASKernelChoiceTests: XCTestCase {
    /// The flags the kernel lists for the first processor.
    func cpuFlags() throws -> Set<String> {
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try XCTUnwrap(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        return Set(line.split(separator: ":", maxSplits: 1).last!.split(separator: " ").map(String.init))
    }

    func testTheLevelMatchesTheProcessorsFlags() throws {
        #if arch(x86_64) && os(Linux)
        let flags = try cpuFlags()
        let avx512 = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        let expected = !avx512 ? 0 : flags.contains("avx512_bf16") ? 2 : 1
        XCTAssertEqual(Int(mlpkit_avx512_level()), expected, "flags: \(flags.sorted().filter { $0.hasPrefix("avx") })")
        XCTAssertEqual(BLASLibrary.openBLASCoreType, [nil, "SkylakeX", "Cooperlake"][expected])
        #else
        XCTAssertEqual(mlpkit_avx512_level(), 0)
        XCTAssertNil(BLASLibrary.openBLASCoreType)
        #endif
    }

    /// Where OpenBLAS is installed and the kernels were not chosen by the user, OpenBLAS runs the
    /// ones MLPKit asked for; the backend names them.
    func testOpenBLASRunsTheChosenKernels() throws {
        guard let blas = BLASLibrary.shared, let core = blas.coreName else {
            throw XCTSkip("no OpenBLAS here (apt-get install libopenblas0-pthread)")
        }
        XCTAssertTrue(CPUBackend().summary.contains("(\(core) kernels)"), CPUBackend().summary)
        // asked for where the user did not choose (OPENBLAS_CORETYPE) and the processor has AVX-512
        // (a build for one processor, not DYNAMIC_ARCH, runs its own kernels whatever is asked)
        if let requested = blas.requestedCore, blas.configuration?.contains("DYNAMIC_ARCH") ?? false {
            XCTAssertEqual(requested, BLASLibrary.openBLASCoreType)
            XCTAssertEqual(core, requested)
        }
    }
}
