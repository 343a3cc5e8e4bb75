import Foundation
import XCTest
@testable import MLPKit

/// Safetensors checkpoints: round trips, a hand-made PyTorch-style file, and every corruption
/// rejected with its own message.
final class CheckpointTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mlpkit-checkpoint-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
    }

    // MARK: - Building files by hand

    /// Little-endian IEEE-754 bytes of `values`.
    static func littleEndian(_ values: [Float]) -> [UInt8] {
        values.flatMap { value -> [UInt8] in
            let bits = value.bitPattern
            return [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
        }
    }

    /// 8-byte little-endian header length, the header text, then the data.
    static func file(header: String, data: [UInt8]) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        var bytes: [UInt8] = (0..<8).map { UInt8(UInt64(headerBytes.count) >> (8 * UInt64($0)) & 0xFF) }
        bytes += headerBytes
        bytes += data
        return bytes
    }

    struct Tensor {
        var name: String
        var dtype = "F32"
        var shape: [Int]
        var offsets: (Int, Int)
    }

    static func header(_ tensors: [Tensor], metadata: [String: String]? = nil) -> String {
        var entries: [String] = []
        if let metadata {
            let pairs = metadata.keys.sorted().map { "\"\($0)\":\"\(metadata[$0]!)\"" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        for t in tensors {
            entries.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
                + "\"data_offsets\":[\(t.offsets.0),\(t.offsets.1)]}")
        }
        return "{" + entries.joined(separator: ", ") + "}"
    }

    /// A [3, 4, 2] network as a converted PyTorch state dict would store it: keys W1, b1, W2, b2,
    /// no metadata, tensors laid out in sorted key order (W1, W2, b1, b2).
    struct PyTorchFile {
        var w1: [Float], b1: [Float], w2: [Float], b2: [Float]
        var tensors: [Tensor]
        var data: [UInt8]

        init(seed: UInt64) {
            var random = TestData(seed: seed)
            w1 = random.normal(12)
            b1 = random.normal(4)
            w2 = random.normal(8)
            b2 = random.normal(2)
            tensors = [
                Tensor(name: "W1", shape: [4, 3], offsets: (0, 48)),
                Tensor(name: "W2", shape: [2, 4], offsets: (48, 80)),
                Tensor(name: "b1", shape: [4], offsets: (80, 96)),
                Tensor(name: "b2", shape: [2], offsets: (96, 104)),
            ]
            data = CheckpointTests.littleEndian(w1 + w2 + b1 + b2)
        }

        func bytes(metadata: [String: String]? = nil) -> [UInt8] {
            CheckpointTests.file(header: CheckpointTests.header(tensors, metadata: metadata), data: data)
        }

        /// The parameters in MLPKit's flat order.
        var parameters: [Float] { w1 + b1 + w2 + b2 }
    }

    /// `decode` throws `CheckpointError.invalid` whose reason contains `fragment`.
    func assertRejected(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.decode(bytes), file: file, line: line) { error in
            guard case .invalid(_, let reason)? = error as? CheckpointError else {
                return XCTFail("expected CheckpointError.invalid, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(reason.contains(fragment), "“\(reason)” does not contain “\(fragment)”", file: file, line: line)
        }
    }

    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    // MARK: - Round trips

    func makeModel(seed: UInt64) throws -> MLP {
        try MLP(layerSizes: [5, 7, 6, 3], loss: .crossEntropy, seed: seed)
    }

    func testRoundTripWithOptimizerStateAndMetadata() throws {
        let model = try makeModel(seed: 3)
        var random = TestData(seed: 4)
        let count = model.layout.parameterCount
        let optimizer = OptimizerState(step: 17, firstMoment: random.normal(count),
                                       secondMoment: random.normal(count).map { $0 * $0 * 1e-3 })
        let hyperparameters = AdamHyperparameters(learningRate: 3e-4, beta1: 0.85, beta2: 0.995, epsilon: 1e-7)
        let metadata = ["shuffle_seed": "7", "note": "a \"quoted\" word\nand a new line", "data": "digits.csv"]
        let checkpoint = Checkpoint(model: model, optimizer: optimizer, hyperparameters: hyperparameters, metadata: metadata)
        let bytes = try checkpoint.encoded()
        let decoded = try Checkpoint.decode(bytes)
        XCTAssertEqual(decoded, checkpoint)
        XCTAssertEqual(decoded.layerSizes, [5, 7, 6, 3])
        XCTAssertEqual(decoded.loss, .crossEntropy)
        XCTAssertEqual(decoded.activation, .relu)
        XCTAssertEqual(decoded.metadata, metadata)
        XCTAssertEqual(decoded.hyperparameters, hyperparameters)
        XCTAssertEqual(decoded.optimizer?.step, 17)
        XCTAssertEqual(bits(decoded.parameters), bits(model.parameters))
        XCTAssertEqual(bits(decoded.optimizer?.firstMoment ?? []), bits(optimizer.firstMoment))
        XCTAssertEqual(bits(decoded.optimizer?.secondMoment ?? []), bits(optimizer.secondMoment))
        XCTAssertEqual(try decoded.model(), model)

        // The bytes are standard safetensors, read here with Foundation's JSON parser.
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        XCTAssertEqual(headerLength % 8, 0, "the header is padded to 8 bytes")
        XCTAssertEqual(bytes.count, 8 + headerLength + 3 * count * 4)
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        let meta = try XCTUnwrap(header["__metadata__"] as? [String: String])
        XCTAssertEqual(meta["layers"], "5,7,6,3")
        XCTAssertEqual(meta["loss"], "cross-entropy")
        XCTAssertEqual(meta["adam.step"], "17")
        XCTAssertEqual(meta["shuffle_seed"], "7")
        let w2 = try XCTUnwrap(header["W2"] as? [String: Any])
        XCTAssertEqual(w2["dtype"] as? String, "F32")
        XCTAssertEqual(w2["shape"] as? [Int], [6, 7])
        let offsets = try XCTUnwrap(w2["data_offsets"] as? [Int])
        let start = 8 + headerLength + offsets[0]
        let stored = stride(from: start, to: 8 + headerLength + offsets[1], by: 4).map { at in
            Float(bitPattern: UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
        }
        XCTAssertEqual(bits(stored), bits(Array(try model.weights(layer: 2))))
        let mb3 = try XCTUnwrap(header["adam.m.b3"] as? [String: Any])
        XCTAssertEqual(mb3["shape"] as? [Int], [3])
    }

    func testRoundTripWithoutOptimizerState() throws {
        let model = try MLP(layerSizes: [4, 3], loss: .meanSquaredError, seed: 9)
        let checkpoint = Checkpoint(model: model)
        let decoded = try Checkpoint.decode(try checkpoint.encoded())
        XCTAssertEqual(decoded, checkpoint)
        XCTAssertNil(decoded.optimizer)
        XCTAssertNil(decoded.hyperparameters)
        XCTAssertEqual(decoded.metadata, [:])
        XCTAssertEqual(decoded.loss, .meanSquaredError)
        XCTAssertEqual(bits(try decoded.model().parameters), bits(model.parameters))
    }

    func testSaveAndLoadThroughAFile() throws {
        let model = try makeModel(seed: 5)
        let checkpoint = Checkpoint(model: model, optimizer: .zero(count: model.layout.parameterCount),
                                    hyperparameters: AdamHyperparameters(), metadata: ["k": "v"])
        let path = folder + "/model.safetensors"
        try checkpoint.save(to: path)
        XCTAssertEqual(try Checkpoint.load(from: path), checkpoint)
        XCTAssertEqual(try FileIO.read(path), try checkpoint.encoded())
    }

    // MARK: - A converted PyTorch state dict

    func testHandMadePyTorchFileLoads() throws {
        let source = PyTorchFile(seed: 41)
        let path = folder + "/converted.safetensors"
        try Data(source.bytes()).write(to: URL(fileURLWithPath: path))
        let checkpoint = try Checkpoint.load(from: path)
        XCTAssertEqual(checkpoint.layerSizes, [3, 4, 2])
        XCTAssertNil(checkpoint.loss)
        XCTAssertEqual(checkpoint.activation, .relu)
        XCTAssertNil(checkpoint.optimizer)
        XCTAssertNil(checkpoint.hyperparameters)
        XCTAssertEqual(checkpoint.metadata, [:])
        XCTAssertEqual(bits(checkpoint.parameters), bits(source.parameters))

        XCTAssertThrowsError(try checkpoint.model()) { error in
            XCTAssertEqual(error as? CheckpointError, .missingLoss)
            XCTAssertTrue("\(error)".contains("records no loss"), "\(error)")
        }
        let model = try checkpoint.model(defaultLoss: .crossEntropy)
        XCTAssertEqual(model.loss, .crossEntropy)
        XCTAssertEqual(model.layerSizes, [3, 4, 2])
        XCTAssertEqual(bits(Array(try model.weights(layer: 1))), bits(source.w1))
        XCTAssertEqual(bits(Array(try model.bias(layer: 1))), bits(source.b1))
        XCTAssertEqual(bits(Array(try model.weights(layer: 2))), bits(source.w2))
        XCTAssertEqual(bits(Array(try model.bias(layer: 2))), bits(source.b2))
        // a loss recorded in the file wins over the default
        var recorded = checkpoint
        recorded.loss = .meanSquaredError
        XCTAssertEqual(try recorded.model(defaultLoss: .crossEntropy).loss, .meanSquaredError)

        // The same file with only metadata the converter might add still loads.
        let withMetadata = try Checkpoint.decode(source.bytes(metadata: ["format": "pt"]))
        XCTAssertEqual(withMetadata.layerSizes, [3, 4, 2])
        XCTAssertEqual(withMetadata.metadata, [:])
    }

    /// A PyTorch nn.Sequential of Linear layers saved as its state dict (`save_file(model.state_dict())`):
    /// `0.weight`, `0.bias`, … under one prefix or none, the layers in the order of their indices
    /// (10 after 2, not before it as text sorts), a lone Linear's `weight` and `bias` as one layer.
    func testSequentialStateDictLoads() throws {
        var random = TestData(seed: 43)
        let (w1, b1, w2, b2, w3, b3) = (random.normal(12), random.normal(4), random.normal(8), random.normal(2),
                                        random.normal(6), random.normal(3))
        for prefix in ["", "net.", "model.layers."] {
            let tensors = [
                Tensor(name: "\(prefix)10.bias", shape: [3], offsets: (0, 12)),
                Tensor(name: "\(prefix)10.weight", shape: [3, 2], offsets: (12, 36)),
                Tensor(name: "\(prefix)2.weight", shape: [2, 4], offsets: (36, 68)),
                Tensor(name: "\(prefix)0.weight", shape: [4, 3], offsets: (68, 116)),
                Tensor(name: "\(prefix)0.bias", shape: [4], offsets: (116, 132)),
                Tensor(name: "\(prefix)2.bias", shape: [2], offsets: (132, 140)),
            ]
            let bytes = Self.file(header: Self.header(tensors), data: Self.littleEndian(b3 + w3 + w2 + w1 + b1 + b2))
            let checkpoint = try Checkpoint.decode(bytes)
            XCTAssertEqual(checkpoint.layerSizes, [3, 4, 2, 3], prefix)
            XCTAssertEqual(bits(checkpoint.parameters), bits(w1 + b1 + w2 + b2 + w3 + b3), prefix)
            XCTAssertNil(checkpoint.loss)
        }
        let linear = [Tensor(name: "weight", shape: [4, 3], offsets: (0, 48)), Tensor(name: "bias", shape: [4], offsets: (48, 64))]
        let single = try Checkpoint.decode(Self.file(header: Self.header(linear), data: Self.littleEndian(w1 + b1)))
        XCTAssertEqual(single.layerSizes, [3, 4])
        XCTAssertEqual(bits(single.parameters), bits(w1 + b1))
        // nn.Linear(…, bias=False) layers have no bias tensor: they read with a bias of zeros
        let unbiased = [Tensor(name: "net.0.weight", shape: [4, 3], offsets: (0, 48)),
                        Tensor(name: "net.2.weight", shape: [2, 4], offsets: (48, 80)),
                        Tensor(name: "net.2.bias", shape: [2], offsets: (80, 88))]
        let partly = try Checkpoint.decode(Self.file(header: Self.header(unbiased), data: Self.littleEndian(w1 + w2 + b2)))
        XCTAssertEqual(partly.layerSizes, [3, 4, 2])
        XCTAssertEqual(bits(partly.parameters), bits(w1 + [Float](repeating: 0, count: 4) + w2 + b2))
        let weightOnly = try Checkpoint.decode(Self.file(header: Self.header([linear[0]]), data: Self.littleEndian(w1)))
        XCTAssertEqual(bits(weightOnly.parameters), bits(w1 + [Float](repeating: 0, count: 4)))
        // an MLPKit or converted file (W1, b1, …) still needs every bias
        assertRejected(Self.file(header: Self.header([Tensor(name: "W1", shape: [4, 3], offsets: (0, 48))]), data: Self.littleEndian(w1)),
                       "W1 has no bias b1")
    }

    /// What is not an nn.Sequential of Linear layers with biases is refused, naming the forms that
    /// load; a 1-D "weight" (a normalisation layer's) is named as the file names it.
    func testOtherStateDictsRejected() {
        let data = Self.littleEndian([Float](repeating: 0.5, count: 26))
        func rejected(_ tensors: [Tensor], _ fragment: String, line: UInt = #line) {
            assertRejected(Self.file(header: Self.header(tensors), data: Array(data.prefix(tensors.map(\.offsets.1).max()!))),
                           fragment, line: line)
        }
        let sequential = "or an nn.Sequential of nn.Linear layers (0.weight, 0.bias, …)"
        // a bias without its Linear's weight
        rejected([Tensor(name: "0.bias", shape: [4], offsets: (0, 16))], sequential)
        rejected([Tensor(name: "0.weight", shape: [4, 3], offsets: (0, 48)), Tensor(name: "0.bias", shape: [4], offsets: (48, 64)),
                  Tensor(name: "2.bias", shape: [2], offsets: (64, 72))], sequential)
        // two prefixes
        rejected([Tensor(name: "a.0.weight", shape: [4, 3], offsets: (0, 48)), Tensor(name: "a.0.bias", shape: [4], offsets: (48, 64)),
                  Tensor(name: "b.1.weight", shape: [2, 4], offsets: (64, 96)), Tensor(name: "b.1.bias", shape: [2], offsets: (96, 104))],
                 sequential)
        // another module's tensor beside the Linear layers
        rejected([Tensor(name: "0.weight", shape: [4, 3], offsets: (0, 48)), Tensor(name: "0.bias", shape: [4], offsets: (48, 64)),
                  Tensor(name: "1.running_mean", shape: [4], offsets: (64, 80))], sequential)
        // two weights for one index: a lone Linear's beside a Sequential's first, and 0 written twice
        rejected([Tensor(name: "weight", shape: [4, 3], offsets: (0, 48)), Tensor(name: "bias", shape: [4], offsets: (48, 64)),
                  Tensor(name: "0.weight", shape: [2, 4], offsets: (64, 96)), Tensor(name: "0.bias", shape: [2], offsets: (96, 104))],
                 sequential)
        rejected([Tensor(name: "0.weight", shape: [4, 3], offsets: (0, 48)), Tensor(name: "0.bias", shape: [4], offsets: (48, 64)),
                  Tensor(name: "00.weight", shape: [2, 4], offsets: (64, 96)), Tensor(name: "00.bias", shape: [2], offsets: (96, 104))],
                 sequential)
        // a normalisation layer's weight and bias between two Linear layers
        rejected([Tensor(name: "0.weight", shape: [4, 3], offsets: (0, 48)), Tensor(name: "0.bias", shape: [4], offsets: (48, 64)),
                  Tensor(name: "1.weight", shape: [4], offsets: (64, 80)), Tensor(name: "1.bias", shape: [4], offsets: (80, 96))],
                 "1.weight is not a matrix")
    }

    // MARK: - Corruption

    func testShortFileRejected() {
        assertRejected([], "0 bytes, too short")
        assertRejected([8, 0, 0, 0, 0], "5 bytes, too short")
    }

    func testHeaderLengthLargerThanFileRejected() {
        var bytes = PyTorchFile(seed: 1).bytes()
        bytes[0] = 0xFF
        bytes[1] = 0xFF
        assertRejected(bytes, "the header length 65535 does not fit the file's \(bytes.count) bytes")
        var huge = bytes
        for i in 0..<8 { huge[i] = 0xFF }
        assertRejected(huge, "does not fit the file's")
    }

    func testInvalidJSONRejected() {
        assertRejected(Self.file(header: "{\"W1\": {\"dtype\": \"F32\",", data: [1, 2, 3, 4]), "not valid JSON")
        assertRejected(Self.file(header: "[1, 2]", data: []), "not a JSON object")
    }

    func testF16Rejected() {
        var source = PyTorchFile(seed: 2)
        source.tensors[0].dtype = "F16"
        assertRejected(source.bytes(), "tensor W1 is F16; MLPKit reads F32 only (from PyTorch, save each tensor as .float())")
    }

    func testDataOffsetsPastTheEndRejected() {
        var source = PyTorchFile(seed: 3)
        source.tensors[3].offsets = (96, 108)
        assertRejected(source.bytes(), "tensor b2's data_offsets [96, 108] lie outside the 104 data bytes")
    }

    func testShapeDisagreeingWithBytesRejected() {
        var source = PyTorchFile(seed: 4)
        source.tensors[0].shape = [4, 2]   // 32 bytes, but 48 are given
        assertRejected(source.bytes(), "tensor W1 has 48 bytes but its shape [4, 2] needs 32")
    }

    func testMismatchedLayerWidthsRejected() {
        var source = PyTorchFile(seed: 5)
        source.tensors[1].shape = [1, 8]   // 32 bytes still, but 8 inputs after a 4-output layer
        source.tensors[3] = Tensor(name: "b2", shape: [1], offsets: (96, 100))
        source.data.removeLast(4)
        assertRejected(source.bytes(), "W2 takes 8 inputs but layer 1 has 4 outputs")
    }

    func testMissingBiasRejected() {
        var source = PyTorchFile(seed: 6)
        source.tensors.remove(at: 2)   // b1
        assertRejected(source.bytes(), "W1 has no bias b1")
    }

    func testOverlappingTensorsRejected() {
        var source = PyTorchFile(seed: 7)
        source.tensors[2].offsets = (76, 92)   // b1 overlaps W2's last float
        assertRejected(source.bytes(), "tensors overlap in the data")
    }

    func testNaNParameterRejected() {
        var source = PyTorchFile(seed: 8)
        source.w2[5] = .nan
        source.data = Self.littleEndian(source.w1 + source.w2 + source.b1 + source.b2)
        assertRejected(source.bytes(), "a parameter is NaN or infinite")
        source.w2[5] = 1
        source.b1[0] = -.infinity
        source.data = Self.littleEndian(source.w1 + source.w2 + source.b1 + source.b2)
        assertRejected(source.bytes(), "a parameter is NaN or infinite")
    }

    /// The file with Adam tensors appended: m (and v unless `withoutV`).
    func withAdamTensors(_ source: PyTorchFile, withoutV: Bool, metadata: [String: String]?) -> [UInt8] {
        var tensors = source.tensors, data = source.data
        var random = TestData(seed: 99)
        for prefix in withoutV ? ["adam.m."] : ["adam.m.", "adam.v."] {
            for (name, shape) in [("W1", [4, 3]), ("b1", [4]), ("W2", [2, 4]), ("b2", [2])] {
                let count = shape.reduce(1, *)
                tensors.append(Tensor(name: prefix + name, shape: shape, offsets: (data.count, data.count + 4 * count)))
                data += Self.littleEndian(random.normal(count).map { abs($0) })
            }
        }
        return Self.file(header: Self.header(tensors, metadata: metadata), data: data)
    }

    func testAdamStateLoadsFromHandMadeFile() throws {
        let checkpoint = try Checkpoint.decode(withAdamTensors(PyTorchFile(seed: 9), withoutV: false, metadata: ["adam.step": "12"]))
        XCTAssertEqual(checkpoint.optimizer?.step, 12)
        // the moments were written in MLPKit's flat order (W1, b1, W2, b2), m then v
        var random = TestData(seed: 99)
        let m = random.normal(26).map { abs($0) }, v = random.normal(26).map { abs($0) }
        XCTAssertEqual(bits(checkpoint.optimizer?.firstMoment ?? []), bits(m))
        XCTAssertEqual(bits(checkpoint.optimizer?.secondMoment ?? []), bits(v))
        XCTAssertNil(checkpoint.hyperparameters)
        XCTAssertEqual(checkpoint.metadata, [:])
    }

    func testFirstMomentWithoutSecondRejected() {
        assertRejected(withAdamTensors(PyTorchFile(seed: 10), withoutV: true, metadata: ["adam.step": "3"]),
                       "the Adam state needs both adam.m.* and adam.v.*")
    }

    func testAdamStateWithoutStepRejected() {
        assertRejected(withAdamTensors(PyTorchFile(seed: 11), withoutV: false, metadata: nil),
                       "the Adam state has no valid adam.step in the metadata")
        assertRejected(withAdamTensors(PyTorchFile(seed: 11), withoutV: false, metadata: ["adam.step": "-2"]),
                       "no valid adam.step")
    }

    func testMetadataLayersDisagreeingWithShapesRejected() {
        let source = PyTorchFile(seed: 12)
        assertRejected(source.bytes(metadata: ["layers": "3,5,2"]),
                       "the metadata's layers 3,5,2 disagree with the tensors' shapes [3, 4, 2]")
    }

    func testTruncatedRealCheckpointRejected() throws {
        let model = try makeModel(seed: 13)
        let path = folder + "/truncated.safetensors"
        var bytes = try Checkpoint(model: model, optimizer: .zero(count: model.layout.parameterCount)).encoded()
        XCTAssertNoThrow(try Checkpoint.decode(bytes))
        bytes.removeLast(10)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Checkpoint.load(from: path)) { error in
            guard case let .invalid(errorPath, reason)? = error as? CheckpointError else {
                return XCTFail("expected CheckpointError.invalid, got \(error)")
            }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(reason.contains("adam.v.b3's data_offsets") && reason.contains("lie outside"), reason)
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    func testMissingFileIsAFileError() {
        let path = folder + "/absent.safetensors"
        XCTAssertThrowsError(try Checkpoint.load(from: path)) { error in
            guard case let .cannotOpen(errorPath, reason)? = error as? FileError else {
                return XCTFail("expected FileError.cannotOpen, got \(error)")
            }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(reason.contains("No such file"), reason)
        }
    }

    // MARK: - Saving

    func testSaveIntoMissingFolderFailsAndLeavesNothing() throws {
        let missing = folder + "/does-not-exist"
        let path = missing + "/model.safetensors"
        XCTAssertThrowsError(try Checkpoint(model: try makeModel(seed: 14)).save(to: path)) { error in
            guard case let .writeFailed(errorPath, reason)? = error as? FileError else {
                return XCTFail("expected FileError.writeFailed, got \(error)")
            }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(reason.contains("No such file"), reason)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testSaveReplacesAnExistingFileAndLeavesNoTemporaryFile() throws {
        let path = folder + "/model.safetensors"
        try Data("an older, unrelated file".utf8).write(to: URL(fileURLWithPath: path))
        let first = Checkpoint(model: try makeModel(seed: 15))
        try first.save(to: path)
        XCTAssertEqual(try Checkpoint.load(from: path), first)
        let second = Checkpoint(model: try makeModel(seed: 16), metadata: ["run": "2"])
        try second.save(to: path)
        XCTAssertEqual(try Checkpoint.load(from: path), second)
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model.safetensors"])
    }

    // MARK: - Column names (data.features, data.target)

    func testNamesRoundTripThroughACheckpoint() throws {
        var file = Checkpoint(model: try MLP(layerSizes: [3, 4, 2], loss: .crossEntropy, seed: 1))
        file.featureNames = ["x \"quoted\"", "y,z", "é"]
        file.targetName = "label"
        let read = try Checkpoint.decode(try file.encoded())
        XCTAssertEqual(read.featureNames, file.featureNames)
        XCTAssertEqual(read.targetName, "label")
        XCTAssertEqual(read, file)
        XCTAssertNil(read.metadata["data.features"], "kept in the typed fields, not among the other metadata")

        file.featureNames = ["a", "b"]
        XCTAssertThrowsError(try file.encoded()) { XCTAssertTrue("\($0)".contains("2 feature names for a model that takes 3 inputs")) }
    }

    /// `data.features` as it appears inside the header's JSON (its quotes escaped).
    func escaped(_ json: String) -> String { json.replacingOccurrences(of: "\"", with: "\\\"") }

    func testBadNamesRejected() {
        let source = PyTorchFile(seed: 3)  // [3, 4, 2]
        assertRejected(source.bytes(metadata: ["data.features": "a,b,c"]),
                       "data.features a,b,c is not a JSON array of column names")
        assertRejected(source.bytes(metadata: ["data.features": escaped(#"["a", 2, "c"]"#)]),
                       "is not a JSON array of column names")
        assertRejected(source.bytes(metadata: ["data.features": escaped(#"["a", "b"]"#)]),
                       "data.features names 2 columns but the model has 3 inputs")
        assertRejected(source.bytes(metadata: ["data.features": escaped(#"["a", "b", "a"]"#)]),
                       "data.features names the column a twice")
        assertRejected(source.bytes(metadata: ["data.features": escaped(#"["a", "b", "c"]"#), "data.target": "b"]),
                       "data.target b is also one of data.features")
        let good = try? Checkpoint.decode(source.bytes(metadata: ["data.features": escaped(#"["a", "b", "c"]"#), "data.target": "y"]))
        XCTAssertEqual(good?.featureNames, ["a", "b", "c"])
        XCTAssertEqual(good?.targetName, "y")
        XCTAssertEqual(good?.targetNames, ["y"])
        // several targets: one per output (the model has 2), distinct, none a feature, and not beside data.target
        let two = try? Checkpoint.decode(source.bytes(metadata: ["data.targets": escaped(#"["u", "v"]"#)]))
        XCTAssertEqual(two?.targetNames, ["u", "v"])
        XCTAssertNil(two?.targetName)
        assertRejected(source.bytes(metadata: ["data.targets": escaped(#"["u", "v", "w"]"#)]),
                       "data.targets names 3 targets but the model has 2 outputs")
        assertRejected(source.bytes(metadata: ["data.targets": escaped(#"["u", "u"]"#)]), "data.targets names the target u twice")
        assertRejected(source.bytes(metadata: ["data.targets": escaped(#"["u", "v"]"#), "data.target": "u"]),
                       "data.target and data.targets both name the targets")
        assertRejected(source.bytes(metadata: ["data.targets": escaped(#"["u", "b"]"#), "data.features": escaped(#"["a", "b", "c"]"#)]),
                       "data.targets names b, also one of data.features")
    }

    func testCategoriesRoundTripAndAreChecked() throws {
        var file = Checkpoint(model: try MLP(layerSizes: [5, 3, 2], loss: .meanSquaredError, seed: 1))
        file.featureNames = ["size", "color"]
        file.categories = [nil, ["red", "green", "blue, \"ish\"", "\u{1}"]]
        let read = try Checkpoint.decode(try file.encoded())
        XCTAssertEqual(read, file)
        XCTAssertNil(read.metadata["data.categories"], "kept in the typed fields, not among the other metadata")
        // by position: no names
        file.featureNames = nil
        XCTAssertEqual(try Checkpoint.decode(try file.encoded()).categories, file.categories)
        // categories that do not make the model's inputs are not written
        file.categories = [nil, ["red"]]
        XCTAssertThrowsError(try file.encoded()) { XCTAssertTrue("\($0)".contains("categories for 2 inputs")) }
        file.categories = [nil, nil, nil, nil, []]
        XCTAssertThrowsError(try file.encoded())
        file.categories = [nil, ["a", "b", "c", "d"]]
        file.featureNames = ["size"]
        XCTAssertThrowsError(try file.encoded()) { XCTAssertTrue("\($0)".contains("1 feature names for a model that takes 2 input columns")) }
    }

    func testBadCategoriesRejected() {
        let source = PyTorchFile(seed: 3)  // [3, 4, 2]
        assertRejected(source.bytes(metadata: ["data.categories": "{}"]), "data.categories {} is not a JSON array")
        assertRejected(source.bytes(metadata: ["data.categories": escaped(#"[null, ["a"]]"#)]),
                       "data.categories makes 2 inputs but the model has 3")
        assertRejected(source.bytes(metadata: ["data.categories": escaped(#"[null, null, null, []]"#)]),
                       "holds something other than null or a non-empty array of category names")
        assertRejected(source.bytes(metadata: ["data.categories": escaped(#"[1, ["a", "b"]]"#)]),
                       "holds something other than null or a non-empty array of category names")
        assertRejected(source.bytes(metadata: ["data.categories": escaped(#"[null, ["a", 2]]"#)]),
                       "holds something other than null or a non-empty array of category names")
        assertRejected(source.bytes(metadata: ["data.categories": escaped(#"[null, ["a", "a"]]"#)]),
                       "data.categories names the category a twice")
        assertRejected(source.bytes(metadata: ["data.categories": escaped(#"[null, ["a", "b"]]"#),
                                               "data.features": escaped(#"["x", "y", "z"]"#)]),
                       "data.features names 3 columns but the model has 2 input columns")
        let good = try? Checkpoint.decode(source.bytes(metadata: ["data.categories": escaped(#"[null, ["a", "b"]]"#),
                                                                  "data.features": escaped(#"["x", "y"]"#)]))
        XCTAssertEqual(good?.categories, [nil, ["a", "b"]])
        XCTAssertEqual(good?.featureNames, ["x", "y"])
    }

    func testFillsRoundTripAndAreChecked() throws {
        var file = Checkpoint(model: try MLP(layerSizes: [5, 3, 2], loss: .meanSquaredError, seed: 1))
        file.featureNames = ["size", "color"]
        file.categories = [nil, ["red", "green", "blue", "grey"]]
        file.fills = [Float(1) / 3, nil]
        let read = try Checkpoint.decode(try file.encoded())
        XCTAssertEqual(read, file)
        XCTAssertEqual(read.fills?[0]?.bitPattern, (Float(1) / 3).bitPattern)
        XCTAssertNil(read.metadata["data.fill"])
        // without categories, one number per input
        var plain = Checkpoint(model: try MLP(layerSizes: [2, 3, 1], loss: .meanSquaredError, seed: 1))
        plain.fills = [-2.5e-7, 1e30]
        XCTAssertEqual(try Checkpoint.decode(try plain.encoded()).fills, [-2.5e-7, 1e30])
        plain.fills = [1]
        XCTAssertThrowsError(try plain.encoded())
        plain.fills = [1, nil]
        XCTAssertThrowsError(try plain.encoded())
        file.fills = [nil, 1]
        XCTAssertThrowsError(try file.encoded())
    }

    func testBadFillsRejected() {
        let source = PyTorchFile(seed: 3)  // [3, 4, 2]
        assertRejected(source.bytes(metadata: ["data.fill": "1,2,3"]), "data.fill 1,2,3 is not a JSON array")
        assertRejected(source.bytes(metadata: ["data.fill": "[1,2]"]), "data.fill [1,2] has 2 entries but the model has 3 input columns")
        assertRejected(source.bytes(metadata: ["data.fill": "[1,null,3]"]), "has no finite number for input column 2")
        assertRejected(source.bytes(metadata: ["data.fill": escaped(#"[1,"2",3]"#)]), "has no finite number for input column 2")
        assertRejected(source.bytes(metadata: ["data.fill": "[1,2,1e39]"]), "has no finite number for input column 3")
        assertRejected(source.bytes(metadata: ["data.fill": "[1,5]", "data.categories": escaped(#"[null, ["a", "b"]]"#)]),
                       "has a value for input column 2, a column of categories (null: no category)")
        let good = try? Checkpoint.decode(source.bytes(metadata: ["data.fill": "[1.5,null]",
                                                                  "data.categories": escaped(#"[null, ["a", "b"]]"#)]))
        XCTAssertEqual(good?.fills, [1.5, nil])
    }

    func testClassNamesRoundTripAndAreChecked() throws {
        var file = Checkpoint(model: try MLP(layerSizes: [3, 4, 2], loss: .crossEntropy, seed: 2))
        file.classNames = ["cat", "dog, big"]
        let read = try Checkpoint.decode(try file.encoded())
        XCTAssertEqual(read.classNames, ["cat", "dog, big"])
        XCTAssertEqual(read, file)
        file.classNames = ["cat"]
        XCTAssertThrowsError(try file.encoded()) { XCTAssertTrue("\($0)".contains("1 class names for a model with 2 outputs")) }

        let source = PyTorchFile(seed: 5)  // [3, 4, 2]
        assertRejected(source.bytes(metadata: ["data.classes": escaped(#"["cat"]"#)]),
                       "data.classes names 1 class but the model has 2 outputs")
        assertRejected(source.bytes(metadata: ["data.classes": escaped(#"["cat", "cat"]"#)]),
                       "data.classes names the class cat twice")
        assertRejected(source.bytes(metadata: ["data.classes": "cat"]), "data.classes cat is not a JSON array of class names")
    }
}
