import Foundation
import MLPKit
import XCTest

/// The installed BLAS, or a skip (a failure under CI, which must install it).
func requireBLAS() throws -> BLASLibrary {
    if let blas = BLASLibrary.shared { return blas }
    if ProcessInfo.processInfo.environment["CI"] != nil {
        XCTFail("CI must install OpenBLAS: apt-get install libopenblas0-pthread")
    }
    throw XCTSkip("no BLAS library found (apt-get install libopenblas0-pthread)")
}
