import BackendTestSupport
import MLPKit
import MLPKitKernels
import XCTest
@testable import MLPKitOpenCL

/// Column sums, the fused loss gradients and the batch gather, against the CPU backend.
final class ElementwiseTests: XCTestCase {
    func testColumnSums() throws {
        let shapes = [(1, 1), (5, 31), (64, 32), (300, 33), (7, 100), (1000, 3)]
        try OperationChecks.checkColumnSums(SharedBackends.backend(), shapes: shapes, group: "column sums")
    }

    /// Every loss, both target encodings, odd and even shapes: gradient and loss sum.
    func testLossGradients() throws {
        // from 64 columns the loss runs as loss_wide (a block per row)
        let shapes = [(1, 1), (1, 10), (7, 3), (64, 10), (257, 33), (1000, 2), (1, 64), (3, 77), (9, 1024), (130, 300)]
        try OperationChecks.checkLossGradients(SharedBackends.backend(), shapes: shapes, group: "loss")
    }

    /// The gradient written over the logits gives the bits of the gradient written apart.
    func testLossInPlace() throws {
        try OperationChecks.checkInPlaceLoss(SharedBackends.backend(), group: "OpenCL")
    }

    /// A class index outside the classes makes the cross-entropy loss NaN, as on the CPU.
    func testInvalidLabelPoisonsLoss() throws {
        try OperationChecks.checkInvalidLabelPoisonsLoss(SharedBackends.backend())
    }

    func testGatherRows() throws {
        let shapes = [(1, 1, 1), (50, 13, 17), (300, 1, 64), (97, 784, 33)]
        try OperationChecks.checkGatherRows(SharedBackends.backend(), shapes: shapes)
    }

    override class func tearDown() {
        ErrorLog.printWorst(prefix: "column sums")
        ErrorLog.printWorst(prefix: "loss")
        super.tearDown()
    }
}
