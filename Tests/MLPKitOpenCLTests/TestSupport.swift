import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// OpenCL backends shared across tests: building the program on PoCL takes seconds.
enum SharedBackends {
    nonisolated(unsafe) private static var cache: [KernelTiles?: Result<OpenCLBackend, OpenCLError>] = [:]

    /// The backend for the default device, with `tiles` or the device's own choice.
    static func backend(tiles: KernelTiles? = nil) throws -> OpenCLBackend {
        let result = cache[tiles] ?? Result { () throws(OpenCLError) in try OpenCLBackend(tiles: tiles) }
        cache[tiles] = result
        switch result {
        case let .success(backend):
            return backend
        case let .failure(error):
            switch error {
            case .libraryUnavailable, .missingSymbol, .noPlatform, .noDevice:
                try missingTool("\(error)")
            default:
                throw error
            }
        }
    }
}
