import Foundation
import XCTest
@testable import MLPKit

/// Input standardisation: the statistics, the checkpoint round trip, and the session applying
/// it to everything it trains on, evaluates and predicts.
final class StandardizeTests: XCTestCase {
    /// Columns (1, 2, 3), (5, 5, 5), (−2, 0, 2): means 2, 5, 0; population deviations √(2/3),
    /// 0 → 1, √(8/3).
    func testStatistics() throws {
        let inputs: [Float] = [1, 5, -2, 2, 5, 0, 3, 5, 2]
        let s = try Standardization(fitting: inputs, features: 3)
        XCTAssertEqual(s.mean, [2, 5, 0])
        XCTAssertEqual(s.deviation, [Float((2.0 / 3).squareRoot()), 1, Float((8.0 / 3).squareRoot())])
        let applied = try s.apply(inputs)
        XCTAssertEqual(applied[0], (1 - 2) / Float((2.0 / 3).squareRoot()))
        XCTAssertEqual(Array(applied[1...2]), [0, -2 / Float((8.0 / 3).squareRoot())])
        // each column now has mean 0 and deviation 1 (or is constant 0)
        let again = try Standardization(fitting: applied, features: 3)
        for j in [0, 2] {
            XCTAssertEqual(again.mean[j], 0, accuracy: 1e-6)
            XCTAssertEqual(again.deviation[j], 1, accuracy: 1e-6)
        }
        XCTAssertEqual(again.deviation[1], 1)
        XCTAssertThrowsError(try s.apply([1, 2]))
        XCTAssertThrowsError(try Standardization(mean: [0, 1], deviation: [1, 0]))
        XCTAssertThrowsError(try Standardization(mean: [0], deviation: [1, 2]))
        XCTAssertThrowsError(try Standardization(fitting: [], features: 2))
    }

    func model(_ standardization: Standardization?) throws -> MLP {
        var model = try MLP(layerSizes: [3, 5, 2], loss: .meanSquaredError, seed: 9)
        model.standardization = standardization
        return model
    }

    /// Stored as F32 tensors `standardize.mean` and `standardize.std` of shape [inputs], loaded
    /// back exactly, and a file with a bad one is refused naming it.
    func testCheckpointRoundTrip() throws {
        let s = try Standardization(mean: [0.5, -3, 1e6], deviation: [2, 0.25, 1e-3])
        let original = try model(s)
        let bytes = try Checkpoint(model: original, optimizer: .zero(count: original.parameters.count)).encoded()
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        let text = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        /// The file with its header edited (and its length updated; the data is unchanged).
        func edited(_ from: String, _ to: String) -> [UInt8] {
            let header = Array(text.replacingOccurrences(of: from, with: to).utf8)
            return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + bytes[(8 + headerLength)...]
        }
        XCTAssertTrue(text.contains("\"standardize.mean\":{\"dtype\":\"F32\",\"shape\":[3]"), text)
        XCTAssertTrue(text.contains("\"standardize.std\":{\"dtype\":\"F32\",\"shape\":[3]"), text)
        let decoded = try Checkpoint.decode(bytes)
        XCTAssertEqual(decoded.standardization, s)
        XCTAssertEqual(try decoded.model(), original)
        XCTAssertNotNil(decoded.optimizer)
        // without one, none
        XCTAssertNil(try Checkpoint.decode(try Checkpoint(model: try model(nil)).encoded()).standardization)

        // one tensor without the other, a wrong shape, a zero deviation, another dtype
        for (from, to, expected) in [
            ("\"standardize.std\"", "\"standardise.std\"", "both"),
            ("\"standardize.mean\":{\"dtype\":\"F32\",\"shape\":[3]", "\"standardize.mean\":{\"dtype\":\"F32\",\"shape\":[1,3]", "shape"),
            ("\"standardize.mean\":{\"dtype\":\"F32\"", "\"standardize.mean\":{\"dtype\":\"I32\"", "F32"),
        ] {
            XCTAssertTrue(text.contains(from), from)
            XCTAssertThrowsError(try Checkpoint.decode(edited(from, to))) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
        }
        var zeroed = bytes
        let deviationStart = bytes.count - 3 * 4   // the last tensor written: standardize.std
        XCTAssertEqual(Array(zeroed[deviationStart..<(deviationStart + 4)]), withUnsafeBytes(of: Float(2).bitPattern.littleEndian, Array.init))
        for i in deviationStart..<(deviationStart + 4) { zeroed[i] = 0 }
        XCTAssertThrowsError(try Checkpoint.decode(zeroed)) { XCTAssertTrue("\($0)".contains("deviation"), "\($0)") }
        // a model whose standardisation does not fit its inputs
        XCTAssertThrowsError(try MLP(layerSizes: [2, 1], loss: .meanSquaredError, parameters: [0, 0, 0], standardization: s))
    }

    /// A target standardisation: `invert` by hand, stored as `standardize.target.mean` and
    /// `standardize.target.std` of shape [outputs], loaded back exactly, refused beside another
    /// loss or in a wrong shape; a session standardises targets on upload and predicts in the
    /// targets' units.
    func testTargetStandardization() throws {
        let scaling = try Standardization(mean: [1000, -2], deviation: [250, 0.5])
        XCTAssertEqual(try scaling.invert([1, 2, -0.5, 0]), [1250, -1, 875, -2])
        var original = try model(nil)
        original.targetStandardization = scaling
        let bytes = try Checkpoint(model: original).encoded()
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        let text = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        XCTAssertTrue(text.contains("\"standardize.target.mean\":{\"dtype\":\"F32\",\"shape\":[2]"), text)
        let decoded = try Checkpoint.decode(bytes)
        XCTAssertEqual(decoded.targetStandardization, scaling)
        XCTAssertNil(decoded.standardization)
        XCTAssertEqual(try decoded.model(), original)
        func edited(_ from: String, _ to: String) -> [UInt8] {
            let header = Array(text.replacingOccurrences(of: from, with: to).utf8)
            return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + bytes[(8 + headerLength)...]
        }
        for (from, to, expected) in [
            ("\"loss\":\"mse\"", "\"loss\":\"cross-entropy\"", "go with the mse loss"),
            ("\"standardize.target.std\"", "\"standardize.target.sd\"", "needs both"),
            ("\"standardize.target.mean\":{\"dtype\":\"F32\",\"shape\":[2]", "\"standardize.target.mean\":{\"dtype\":\"F32\",\"shape\":[1,2]", "the model's outputs"),
        ] {
            XCTAssertTrue(text.contains(from), from)
            XCTAssertThrowsError(try Checkpoint.decode(edited(from, to))) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        // a session trains on (y − mean) / deviation and predicts z · deviation + mean
        let backend = CPUBackend()
        let session = try TrainingSession(model: original, backend: backend, batchCapacity: 4)
        let raw = try Dataset(inputs: [1, 2, 3, -1, 0, 1], features: 3, targets: [1500, -1, 500, -3], encoding: .dense, targetWidth: 2)
        let scaled = try Dataset(inputs: [1, 2, 3, -1, 0, 1], features: 3, targets: [2, 2, -2, -2], encoding: .dense, targetWidth: 2)
        let plain = try TrainingSession(model: try model(nil), backend: backend, batchCapacity: 4)
        XCTAssertEqual(try session.evaluate(try session.upload(raw)).loss, try plain.evaluate(try plain.upload(scaled)).loss)
        let z = try plain.predict(raw.inputs)
        XCTAssertEqual(try session.predict(raw.inputs), try scaling.invert(z))
        XCTAssertEqual(try session.model().targetStandardization, scaling)
        var classifier = try MLP(layerSizes: [3, 2], loss: .crossEntropy, seed: 1)
        classifier.targetStandardization = scaling
        XCTAssertThrowsError(try TrainingSession(model: classifier, backend: backend, batchCapacity: 4))
    }

    /// A model with a standardisation evaluates and predicts raw inputs as the same model without
    /// one does the standardised inputs, bit for bit; training likewise.
    func testSessionAppliesIt() throws {
        var random = TestData(seed: 4)
        let scales: [Float] = [1, 100, 0.01], offsets: [Float] = [5, -300, 0]
        let raw = random.normal(20 * 3).enumerated().map { index, value in value * scales[index % 3] + offsets[index % 3] }
        let targets = random.normal(20 * 2)
        let s = try Standardization(fitting: raw, features: 3)
        let standardized = try s.apply(raw)
        let withIt = try TrainingSession(model: try model(s), backend: CPUBackend(), batchCapacity: 8)
        let without = try TrainingSession(model: try model(nil), backend: CPUBackend(), batchCapacity: 8)
        XCTAssertEqual(try withIt.predict(raw).map(\.bitPattern), try without.predict(standardized).map(\.bitPattern))
        XCTAssertNotEqual(try without.predict(raw), try without.predict(standardized))
        let rawData = try Dataset(inputs: raw, features: 3, targets: targets, encoding: .dense, targetWidth: 2)
        let standardData = try Dataset(inputs: standardized, features: 3, targets: targets, encoding: .dense, targetWidth: 2)
        let (a, b) = (try withIt.upload(rawData), try without.upload(standardData))
        XCTAssertEqual(try withIt.evaluate(a).loss, try without.evaluate(b).loss)
        try withIt.train(on: a, configuration: TrainingConfiguration(batchSize: 8, length: .steps(6)))
        try without.train(on: b, configuration: TrainingConfiguration(batchSize: 8, length: .steps(6)))
        XCTAssertEqual(try withIt.model().parameters.map(\.bitPattern), try without.model().parameters.map(\.bitPattern))
        XCTAssertEqual(try withIt.model().standardization, s)
    }
}
