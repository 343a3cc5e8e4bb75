import Foundation
import XCTest
@testable import MLPKit

/// A saved checkpoint with its metadata or its data section corrupted: each corruption is refused
/// when the file is loaded, by a `CheckpointError` naming the key and the recorded value (never
/// accepted, to fail later without naming the file, and never a trap).
final class CheckpointHardeningTests: FileTestCase {
    var folder: String { directory.path }

    // MARK: - A real checkpoint, and its bytes mutated

    /// The bytes of a checkpoint saved as `mlp train` saves one: Adam's state at step 40, the
    /// hyperparameters with AdamW's decay and clipping, a cosine schedule and the `training.*` keys.
    func savedCheckpoint(schedule: LearningRateSchedule = .cosine(warmupSteps: 5, totalSteps: 100, start: 0)) throws -> [UInt8] {
        let model = try MLP(layerSizes: [4, 6, 3], loss: .crossEntropy, seed: 21)
        var random = TestData(seed: 22)
        let count = model.layout.parameterCount
        let optimizer = OptimizerState(step: 40, firstMoment: random.normal(count),
                                       secondMoment: random.normal(count).map { $0 * $0 })
        let checkpoint = Checkpoint(
            model: model, optimizer: optimizer,
            hyperparameters: AdamHyperparameters(learningRate: 0.01, beta1: 0.85, beta2: 0.99, epsilon: 1e-7,
                                                 weightDecay: 0.1, clipNorm: 2),
            schedule: schedule,
            metadata: ["training.seed": "7", "training.batch_size": "16", "training.shuffle": "true",
                       "training.validation_split": "0.2"])
        let path = folder + "/saved.safetensors"
        try checkpoint.save(to: path)
        let bytes = try FileIO.read(path)
        XCTAssertEqual(try Checkpoint.decode(bytes), checkpoint, "the unmutated file loads")
        return bytes
    }

    /// `bytes` with the header's metadata changed: each key set to its value, or removed for nil.
    func mutatingMetadata(_ bytes: [UInt8], _ changes: [String: String?]) throws -> [UInt8] {
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        var metadata = try XCTUnwrap(header["__metadata__"] as? [String: String])
        for (key, value) in changes { metadata[key] = value }
        header["__metadata__"] = metadata
        let headerBytes = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var result: [UInt8] = (0..<8).map { UInt8(UInt64(headerBytes.count) >> (8 * UInt64($0)) & 0xFF) }
        result += headerBytes
        result += bytes[(8 + headerLength)...]
        return result
    }

    /// Decoding `bytes` throws `CheckpointError.invalid` with exactly `reason`.
    func assertRefused(_ bytes: [UInt8], _ reason: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.decode(bytes), file: file, line: line) { error in
            XCTAssertEqual(error as? CheckpointError, .invalid(path: "", reason: reason), file: file, line: line)
        }
    }

    /// Loading the file throws an error whose one line names the file and `reason`.
    func assertLoadRefused(_ bytes: [UInt8], _ reason: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = folder + "/mutated.safetensors"
        try FileIO.writeAtomically(bytes, to: path)
        XCTAssertThrowsError(try Checkpoint.load(from: path), file: file, line: line) { error in
            XCTAssertEqual("\(error)", "invalid checkpoint \(path): \(reason)", file: file, line: line)
            XCTAssertFalse("\(error)".contains("\n"), "one line", file: file, line: line)
        }
    }

    // MARK: - adam.step (bounded by 2^53)

    func testAHugeAdamStepIsRefusedNamingTheValue() throws {
        let saved = try savedCheckpoint()
        for value in ["9223372036854775807", "9223372036854775806", "9007199254740993", "9223372036854775808",
                      "-1", "12.0", "1e3", "", " 3"] {
            let bytes = try mutatingMetadata(saved, ["adam.step": value])
            let shown = value.isEmpty ? "\"\"" : value
            assertRefused(bytes, "the Adam state has no valid adam.step in the metadata: \(shown) is not an integer from 0 to 9007199254740992 (2^53)")
        }
        try assertLoadRefused(
            try mutatingMetadata(saved, ["adam.step": "9223372036854775807"]),
            "the Adam state has no valid adam.step in the metadata: 9223372036854775807 is not an integer from 0 to 9007199254740992 (2^53)")
        // the limit itself loads
        let atLimit = try Checkpoint.decode(try mutatingMetadata(saved, ["adam.step": "9007199254740992"]))
        XCTAssertEqual(atLimit.optimizer?.step, OptimizerState.maximumStep)
        XCTAssertEqual(OptimizerState.maximumStep, 9_007_199_254_740_992)
    }

    // MARK: - Adam's moments (finite; v not negative)

    /// `bytes` with the first element of tensor `name` replaced by `value`.
    func mutatingFirstElement(_ bytes: [UInt8], of name: String, to value: Float) throws -> [UInt8] {
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        let tensor = try XCTUnwrap(header[name] as? [String: Any], name)
        let start = try XCTUnwrap((tensor["data_offsets"] as? [Int])?.first) + 8 + headerLength
        var result = bytes
        for i in 0..<4 { result[start + i] = UInt8(value.bitPattern >> (8 * UInt32(i)) & 0xFF) }
        return result
    }

    /// A first moment that is NaN or infinite, or a second moment that is negative, NaN or
    /// infinite, cannot come from Adam (v is a running mean of squares): such a file is refused
    /// naming the value and its parameter (in the order W1, b1, W2, b2: [4,6,3] has 24, 6, 18, 3),
    /// where training from it would turn the parameters to NaN. A zero v (−0 too) still loads.
    func testAdamMomentsThatAdamCannotMakeAreRefused() throws {
        let saved = try savedCheckpoint()
        let cases: [(String, Float, String)] = [
            ("adam.v.W1", -0.25, "adam.v holds -0.25 at parameter 0: Adam's second moments must be finite and not negative"),
            ("adam.v.b2", .nan, "adam.v holds nan at parameter 48: Adam's second moments must be finite and not negative"),
            ("adam.v.W2", .infinity, "adam.v holds inf at parameter 30: Adam's second moments must be finite and not negative"),
            ("adam.m.b1", -.infinity, "adam.m holds -inf at parameter 24: Adam's first moments must be finite"),
            ("adam.m.W1", .nan, "adam.m holds nan at parameter 0: Adam's first moments must be finite"),
        ]
        for (name, value, reason) in cases {
            assertRefused(try mutatingFirstElement(saved, of: name, to: value), reason)
        }
        try assertLoadRefused(try mutatingFirstElement(saved, of: "adam.v.W1", to: -0.25), cases[0].2)
        for zero: Float in [0, -0.0] {
            let loaded = try Checkpoint.decode(try mutatingFirstElement(saved, of: "adam.v.W1", to: zero))
            XCTAssertEqual(loaded.optimizer?.secondMoment.first?.bitPattern, zero.bitPattern)
        }
        // a negative m is an ordinary first moment
        XCTAssertEqual(try Checkpoint.decode(try mutatingFirstElement(saved, of: "adam.m.W1", to: -3)).optimizer?.firstMoment.first, -3)
    }

    func tinySession(step: Int) throws -> (TrainingSession<CPUBackend>, DeviceDataset<CPUBackend>) {
        let model = try MLP(layerSizes: [3, 4, 2], loss: .meanSquaredError, seed: 5)
        var random = TestData(seed: 6)
        let dataset = try Dataset(inputs: random.normal(12), features: 3, targets: random.normal(8), encoding: .dense, targetWidth: 2)
        let count = model.layout.parameterCount
        let state = OptimizerState(step: step, firstMoment: [Float](repeating: 0, count: count),
                                   secondMoment: [Float](repeating: 0, count: count))
        let session = try TrainingSession(model: model, backend: CPUBackend(), optimizerState: state, batchCapacity: 4)
        return (session, try session.upload(dataset))
    }

    func testASessionRefusesAStepCountPastTheLimit() throws {
        let model = try MLP(layerSizes: [3, 4, 2], loss: .meanSquaredError, seed: 5)
        let count = model.layout.parameterCount
        for step in [Int.max, Int.max - 1, OptimizerState.maximumStep + 1] {
            let state = OptimizerState(step: step, firstMoment: [Float](repeating: 0, count: count),
                                       secondMoment: [Float](repeating: 0, count: count))
            XCTAssertThrowsError(try TrainingSession(model: model, backend: CPUBackend(), optimizerState: state, batchCapacity: 4)) { error in
                XCTAssertEqual(error as? ModelError, .invalidHyperparameter(
                    "Adam's step count \(step) is past the limit of 9007199254740992 (2^53) steps"))
            }
        }
    }

    func testASessionAtTheLimitThrowsInsteadOfStepping() throws {
        let (session, data) = try tinySession(step: OptimizerState.maximumStep - 1)
        try session.trainStep(on: data, positions: 0..<4, gathered: false)
        XCTAssertEqual(session.step, OptimizerState.maximumStep)
        let before = try session.model().parameters
        XCTAssertThrowsError(try session.trainStep(on: data, positions: 0..<4, gathered: false)) { error in
            XCTAssertEqual(error as? ModelError, .invalidHyperparameter(
                "Adam's step count is at its limit of 9007199254740992 (2^53) steps; no further step can be taken"))
        }
        XCTAssertEqual(session.step, OptimizerState.maximumStep, "the refused step counts nothing")
        XCTAssertEqual(try session.model().parameters, before, "and changes nothing")
        // through train: the same error, not a trap
        XCTAssertThrowsError(try session.train(on: data, configuration: TrainingConfiguration(
            batchSize: 4, length: .steps(2), shuffle: false, seed: 0), onEpoch: { _ in true }))
    }

    // MARK: - Adam's hyperparameters (the trainer's rules)

    func testBadAdamHyperparametersAreRefusedNamingKeyAndValue() throws {
        let saved = try savedCheckpoint()
        let cases: [(key: String, value: String, expected: String)] = [
            ("adam.learning_rate", "nan", "a non-negative number"),
            ("adam.learning_rate", "inf", "a non-negative number"),
            ("adam.learning_rate", "-0.001", "a non-negative number"),
            ("adam.learning_rate", "fast", "a non-negative number"),
            ("adam.learning_rate", "1e39", "a non-negative number"),  // past Float's range
            ("adam.beta1", "1", "a number in [0, 1)"),
            ("adam.beta1", "-0.1", "a number in [0, 1)"),
            ("adam.beta1", "nan", "a number in [0, 1)"),
            ("adam.beta2", "1.5", "a number in [0, 1)"),
            ("adam.beta2", "", "a number in [0, 1)"),
            ("adam.epsilon", "0", "a positive number"),
            ("adam.epsilon", "-1e-8", "a positive number"),
            ("adam.epsilon", "inf", "a positive number"),
            ("adam.epsilon", "nan", "a positive number"),
            ("adam.weight_decay", "-1", "a non-negative number"),
            ("adam.weight_decay", "nan", "a non-negative number"),
            ("adam.clip_norm", "0", "a positive number"),
            ("adam.clip_norm", "inf", "a positive number"),
        ]
        for (key, value, expected) in cases {
            let shown = value.isEmpty ? "\"\"" : value
            assertRefused(try mutatingMetadata(saved, [key: value]), "\(key) \(shown) is not \(expected)")
        }
        try assertLoadRefused(try mutatingMetadata(saved, ["adam.learning_rate": "nan"]),
                              "adam.learning_rate nan is not a non-negative number")
        try assertLoadRefused(try mutatingMetadata(saved, ["adam.beta1": "1"]), "adam.beta1 1 is not a number in [0, 1)")
        try assertLoadRefused(try mutatingMetadata(saved, ["adam.epsilon": "0"]), "adam.epsilon 0 is not a positive number")
    }

    func testAdamHyperparametersMissingOneOfTheFourAreRefused() throws {
        let saved = try savedCheckpoint()
        for key in ["adam.learning_rate", "adam.beta1", "adam.beta2", "adam.epsilon"] {
            assertRefused(try mutatingMetadata(saved, [key: nil]), "the metadata records Adam's hyperparameters without \(key)")
        }
        // AdamW's keys alone are no set of hyperparameters either
        let onlyDecay = try mutatingMetadata(saved, ["adam.learning_rate": nil, "adam.beta1": nil, "adam.beta2": nil,
                                                     "adam.epsilon": nil, "adam.clip_norm": nil])
        assertRefused(onlyDecay, "the metadata records Adam's hyperparameters without adam.learning_rate")
        // none at all is a file without hyperparameters
        let none = try Checkpoint.decode(try mutatingMetadata(saved, [
            "adam.learning_rate": nil, "adam.beta1": nil, "adam.beta2": nil, "adam.epsilon": nil,
            "adam.weight_decay": nil, "adam.clip_norm": nil]))
        XCTAssertNil(none.hyperparameters)
    }

    func testEdgeValuesTheTrainerAcceptsStillLoad() throws {
        let saved = try savedCheckpoint()
        let decoded = try Checkpoint.decode(try mutatingMetadata(saved, [
            "adam.learning_rate": "0", "adam.beta1": "0", "adam.beta2": "0.9999999", "adam.epsilon": "1e-30",
            "adam.weight_decay": "0", "adam.clip_norm": nil]))
        let h = try XCTUnwrap(decoded.hyperparameters)
        XCTAssertEqual(h, AdamHyperparameters(learningRate: 0, beta1: 0, beta2: 0.9999999, epsilon: 1e-30))
        let model = try decoded.model()
        XCTAssertNoThrow(try TrainingSession(model: model, backend: CPUBackend(), hyperparameters: h,
                                             optimizerState: decoded.optimizer, batchCapacity: 2))
    }

    // MARK: - training.* and schedule.*

    func testBadTrainingMetadataIsRefusedWithTheRecordedValue() throws {
        let saved = try savedCheckpoint()
        let cases: [(key: String, value: String, expected: String)] = [
            ("training.batch_size", "-5", "an integer from 1 to 9223372036854775807"),
            ("training.batch_size", "0", "an integer from 1 to 9223372036854775807"),
            ("training.batch_size", "99999999999999999999", "an integer from 1 to 9223372036854775807"),
            ("training.batch_size", "sixteen", "an integer from 1 to 9223372036854775807"),
            ("training.batch_size", "16.0", "an integer from 1 to 9223372036854775807"),
            ("training.seed", "-1", "an integer from 0 to 18446744073709551615"),
            ("training.seed", "18446744073709551616", "an integer from 0 to 18446744073709551615"),
            ("training.seed", "0x10", "an integer from 0 to 18446744073709551615"),
            ("training.shuffle", "yes", "true or false"),
            ("training.shuffle", "1", "true or false"),
            ("training.validation_split", "0", "a number strictly between 0 and 1"),
            ("training.validation_split", "1", "a number strictly between 0 and 1"),
            ("training.validation_split", "nan", "a number strictly between 0 and 1"),
            ("training.validation_split", "-0.2", "a number strictly between 0 and 1"),
            // the model has 3 outputs
            ("training.class_weights", "1,2", "3 non-negative numbers separated by commas, one per output"),
            ("training.class_weights", "1,x,2", "3 non-negative numbers separated by commas, one per output"),
            ("training.class_weights", "1,-2,2", "3 non-negative numbers separated by commas, one per output"),
            ("training.class_weights", "1,inf,2", "3 non-negative numbers separated by commas, one per output"),
            ("training.pos_weights", "1,2", "3 non-negative numbers separated by commas, one per output"),
            ("training.pos_weights", "1,-0.5,2", "3 non-negative numbers separated by commas, one per output"),
        ]
        for (key, value, expected) in cases {
            assertRefused(try mutatingMetadata(saved, [key: value]), "\(key) \(value) is not \(expected)")
        }
        try assertLoadRefused(try mutatingMetadata(saved, ["training.batch_size": "-5"]),
                              "training.batch_size -5 is not an integer from 1 to 9223372036854775807")
        // the extremes a run can record load, and reach the command line unchanged
        let extremes = try Checkpoint.decode(try mutatingMetadata(saved, [
            "training.batch_size": "1", "training.seed": "18446744073709551615", "training.shuffle": "false"]))
        XCTAssertEqual(extremes.metadata["training.batch_size"], "1")
        XCTAssertEqual(extremes.metadata["training.seed"], "18446744073709551615")
        XCTAssertNoThrow(try Checkpoint.decode(try mutatingMetadata(saved, ["training.class_weights": "0.5,2,1.25"])))
        XCTAssertNoThrow(try Checkpoint.decode(try mutatingMetadata(saved, ["training.pos_weights": "0.5,2,1.25"])))
    }

    func testBadScheduleMetadataIsRefusedNamingKeyAndValue() throws {
        let cosine = try savedCheckpoint()
        let step = try savedCheckpoint(schedule: .step(stepSize: 10, gamma: 0.5, start: 40))
        let integers = "an integer from"
        let cases: [(bytes: [UInt8], changes: [String: String?], reason: String)] = [
            (cosine, ["schedule.warmup_steps": "-1"], "schedule.warmup_steps -1 is not \(integers) 0 to 9223372036854775807"),
            (cosine, ["schedule.total_steps": "0"], "schedule.total_steps 0 is not \(integers) 1 to 9223372036854775807"),
            (cosine, ["schedule.total_steps": "99999999999999999999"],
             "schedule.total_steps 99999999999999999999 is not \(integers) 1 to 9223372036854775807"),
            (cosine, ["schedule.warmup_steps": "100"],
             "schedule.warmup_steps 100 is not less than schedule.total_steps 100: the warm-up must be shorter than the schedule"),
            (cosine, ["schedule.start_step": "-4"], "schedule.start_step -4 is not \(integers) 0 to 9007199254740992"),
            (cosine, ["schedule.start_step": "9223372036854775807"],
             "schedule.start_step 9223372036854775807 is not \(integers) 0 to 9007199254740992"),
            (cosine, ["schedule.total_steps": nil], "the cosine schedule has no schedule.total_steps"),
            (step, ["schedule.step_size": "0"], "schedule.step_size 0 is not \(integers) 1 to 9223372036854775807"),
            (step, ["schedule.step_size": "ten"], "schedule.step_size ten is not \(integers) 1 to 9223372036854775807"),
            (step, ["schedule.gamma": "0"], "schedule.gamma 0 is not a positive number"),
            (step, ["schedule.gamma": "nan"], "schedule.gamma nan is not a positive number"),
            (step, ["schedule.gamma": "-inf"], "schedule.gamma -inf is not a positive number"),
            (step, ["schedule.gamma": nil], "the step schedule has no schedule.gamma"),
            (step, ["schedule": "exponential"], "schedule exponential is not constant, step or cosine"),
        ]
        for (bytes, changes, reason) in cases {
            assertRefused(try mutatingMetadata(bytes, changes), reason)
        }
        try assertLoadRefused(try mutatingMetadata(cosine, ["schedule.total_steps": "-5"]),
                              "schedule.total_steps -5 is not an integer from 1 to 9223372036854775807")
        XCTAssertEqual(try Checkpoint.decode(step).schedule, .step(stepSize: 10, gamma: 0.5, start: 40))
    }

    /// A value with a newline or control characters stays on the error's one line, and a long one is cut.
    func testRecordedValuesAreShownOnOneLineAndCut() throws {
        let saved = try savedCheckpoint()
        assertRefused(try mutatingMetadata(saved, ["adam.beta1": "0.9\nrm -rf"]), "adam.beta1 0.9\\nrm -rf is not a number in [0, 1)")
        assertRefused(try mutatingMetadata(saved, ["activation": "re\u{1b}[31mlu"]), "unknown activation re\\u{1b}[31mlu")
        let long = String(repeating: "9", count: 5000)
        assertRefused(try mutatingMetadata(saved, ["training.batch_size": long]),
                      "training.batch_size \(String(repeating: "9", count: 40))… is not an integer from 1 to 9223372036854775807")
    }

    // MARK: - The data section ends with the last tensor

    func testTrailingBytesAfterTheLastTensorAreRefused() throws {
        let saved = try savedCheckpoint()
        let headerLength = (0..<8).reduce(0) { $0 | Int(saved[$1]) << (8 * $1) }
        let dataLength = saved.count - 8 - headerLength
        assertRefused(saved + [UInt8](repeating: 0, count: 16),
                      "16 bytes follow the last tensor's data (the tensors end at byte \(dataLength) of the \(dataLength + 16) data bytes)")
        assertRefused(saved + [0x41], "1 byte follows the last tensor's data (the tensors end at byte \(dataLength) of the \(dataLength + 1) data bytes)")
        try assertLoadRefused(saved + [UInt8](repeating: 0, count: 16),
                              "16 bytes follow the last tensor's data (the tensors end at byte \(dataLength) of the \(dataLength + 16) data bytes)")
        // an extra tensor that is not the model's still counts as data
        let model = try MLP(layerSizes: [2, 1], loss: .meanSquaredError, seed: 1)
        let w = CheckpointTests.littleEndian(model.parameters)
        let header = #"{"W1":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b1":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"#
            + #""extra":{"dtype":"U8","shape":[4],"data_offsets":[12,16]}}"#
        XCTAssertNoThrow(try Checkpoint.decode(CheckpointTests.file(header: header, data: w + [1, 2, 3, 4])))
        assertRefused(CheckpointTests.file(header: header, data: w + [1, 2, 3, 4, 5]),
                      "1 byte follows the last tensor's data (the tensors end at byte 16 of the 17 data bytes)")
    }

    /// The tensors' data follow one another from byte 0: bytes between two tensors, or before the
    /// first, are refused (as the reference loader refuses them), after the shapes are checked.
    func testGapsBetweenTensorsAreRefused() throws {
        let model = try MLP(layerSizes: [2, 1], loss: .meanSquaredError, seed: 1)
        let w = CheckpointTests.littleEndian(model.parameters)
        let gap = #"{"W1":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b1":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#
        assertRefused(CheckpointTests.file(header: gap, data: Array(w[0..<8]) + [0, 0, 0, 0] + Array(w[8..<12])),
                      "the data has 4 bytes at byte 8 that no tensor's data_offsets cover")
        let before = #"{"W1":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]},"b1":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#
        assertRefused(CheckpointTests.file(header: before, data: [0, 0, 0, 0] + w),
                      "the data has 4 bytes at byte 0 that no tensor's data_offsets cover")
    }

    /// A tensor name with a newline or escape sequence is shown escaped, so the message stays one line.
    func testTensorNamesAreShownOnOneLine() throws {
        let header = #"{"W1":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b\n1\u001b":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}"#
        let bytes = CheckpointTests.file(header: header, data: [UInt8](repeating: 0, count: 10))
        XCTAssertThrowsError(try Checkpoint.decode(bytes)) { error in
            XCTAssertEqual("\(error)".contains("\n"), false, "\(error)")
            XCTAssertTrue("\(error)".contains(#"tensor b\n1\u{1b} is F16"#), "\(error)")
        }
    }

    /// A schedule's settings without the `schedule` key are refused, not dropped.
    func testScheduleSettingsWithoutTheScheduleAreRefused() throws {
        let saved = try savedCheckpoint()
        assertRefused(try mutatingMetadata(saved, ["schedule": nil]),
                      "schedule.start_step is recorded without the schedule key it belongs to")
    }
}
