import BackendTestSupport
import Foundation
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitCUDA

/// NVRTC through the library's loader, or a skip (a failure in CI) saying what to install.
func sharedNVRTC() throws -> NVRTCCompiler {
    switch NVRTCCompiler.shared {
    case let .success(compiler): return compiler
    case let .failure(error): try missingTool("\(error)")
    }
}

/// CUDA backends on the real driver, shared across tests (compiling and loading take time).
enum SharedCUDA {
    nonisolated(unsafe) private static var cache: [KernelTiles?: Result<CUDABackend, CUDAError>] = [:]

    /// The first line of the reason, without the list of paths tried.
    static func shortReason(_ error: CUDAError) -> String {
        if case let .libraryUnavailable(library, tried, _) = error { return "\(library) not found in \(tried.count) places" }
        return "\(error)"
    }

    /// The backend on device 0, or a skip naming why there is no GPU here.
    static func backend(tiles: KernelTiles? = nil) throws -> CUDABackend {
        let result = cache[tiles] ?? Result { () throws(CUDAError) in try CUDABackend(tiles: tiles) }
        cache[tiles] = result
        switch result {
        case let .success(backend):
            return backend
        case let .failure(error) where error.meansUnavailable:
            throw XCTSkip("needs an NVIDIA GPU (\(Self.shortReason(error)))")
        case let .failure(error):
            throw error
        }
    }
}
