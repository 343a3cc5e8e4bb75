#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Compares every operation of a candidate backend with the CPU backend on the same fresh,
/// seeded random inputs, and a short training run's parameters, for `mlp check` and the
/// kernel tests.
///
/// Each check draws new inputs (uniform in [−1, 1), never a zero-filled buffer), places them
/// in buffers padded with NaN (at a non-zero offset in every other case, so reading outside a
/// slice shows), fills the outputs with NaN (so an element a kernel forgets to write shows),
/// runs the operation on both backends and measures ‖candidate − reference‖ / ‖reference‖ with
/// Float64 accumulation (see `relativeError(_:_:)`).
///
/// ```swift
/// let rows = try BackendCheck(candidate: try OpenCLBackend()).run()
/// let failed = rows.filter { !$0.passed }
/// ```
public struct BackendCheck<Candidate: Backend> {
    /// The backend under test.
    public let candidate: Candidate
    /// The backend it is compared with.
    public let reference: CPUBackend
    /// Seeds every input, so a failing check can be rerun exactly.
    public let seed: UInt64

    /// - Parameters:
    ///   - candidate: the backend under test.
    ///   - reference: the CPU backend to compare with (BLAS when installed, by default).
    ///   - seed: seeds the random inputs and the training runs.
    public init(candidate: Candidate, reference: CPUBackend = CPUBackend(), seed: UInt64 = 0x5EED_C4EC) {
        self.candidate = candidate
        self.reference = reference
        self.seed = seed
    }

    /// Runs every check, in a fixed order: products (three layouts × four epilogues × six
    /// sizes), column sums, loss gradients and loss sums (for each loss the candidate
    /// implements), batch gathers, Adam, the hidden activations' epilogues and AdamW with
    /// clipping (when the candidate implements them), a 100-step training run for MSE and for
    /// cross-entropy, and one for each feature beyond the seed the candidate implements (binary
    /// cross-entropy, each activation, AdamW, clipping, all together).
    ///
    /// - Parameter onResult: called with each row as soon as it is measured.
    /// - Returns: one row per check; a mismatch is a row that did not pass, not an error.
    /// - Throws: `BackendCheckError` when either backend throws while running a check.
    @discardableResult
    public func run(onResult: (BackendCheckResult) -> Void = { _ in }) throws(BackendCheckError) -> [BackendCheckResult] {
        var results: [BackendCheckResult] = []
        func record(_ result: BackendCheckResult) {
            results.append(result)
            onResult(result)
        }
        var random = SeededGenerator(seed: seed)
        for (index, size) in BackendCheckShapes.products.enumerated() {
            for layout in ProductLayout.allCases {
                for epilogue in ProductEpilogueKind.allCases {
                    record(try checkProduct(layout, epilogue, size, offset: index % 2 == 1, random: &random))
                }
            }
        }
        for (index, shape) in BackendCheckShapes.columnSums.enumerated() {
            record(try checkColumnSums(shape, offset: index % 2 == 1, random: &random))
        }
        // the losses the candidate implements (every backend has MSE and cross-entropy)
        for loss in Loss.allCases where (try? candidate.requireSupport(.loss(loss))) != nil {
            for encoding in [TargetEncoding.classIndices, .dense] {
                for (index, shape) in BackendCheckShapes.losses.enumerated() {
                    let rows = try checkLoss(loss, encoding, shape, variant: index, random: &random)
                    record(rows.gradient)
                    record(rows.sum)
                }
            }
        }
        // cross-entropy with class weights (train --class-weight), every loss with row weights
        // (train --weight-column), cross-entropy with both, and binary cross-entropy's positive
        // weights (train --pos-weight) alone and with row weights
        var weightings: [(Loss, LossWeighting)] = [(.crossEntropy, .classes), (.crossEntropy, .classesAndRows)]
        let losses = Loss.allCases.filter { (try? candidate.requireSupport(.loss($0))) != nil }
        weightings += losses.map { ($0, .rows) }
        if losses.contains(.binaryCrossEntropy) {
            weightings += [(.binaryCrossEntropy, .classes), (.binaryCrossEntropy, .classesAndRows)]
        }
        for (loss, weighting) in weightings {
            for encoding in [TargetEncoding.classIndices, .dense] {
                for (index, shape) in BackendCheckShapes.losses.enumerated() {
                    let rows = try checkLoss(loss, encoding, shape, variant: index, weighting: weighting, random: &random)
                    record(rows.gradient)
                    record(rows.sum)
                }
            }
        }
        for (index, shape) in BackendCheckShapes.gathers.enumerated() {
            record(try checkGather(shape, offset: index % 2 == 1, random: &random))
        }
        for (index, count) in BackendCheckShapes.adamCounts.enumerated() {
            let firstStep = index % 2 == 0 ? 1 : 1000
            record(try checkAdam(count: count, steps: firstStep...(firstStep + 4), offset: index % 2 == 1, random: &random))
        }
        // beyond the seed, for the features the candidate implements: the hidden activations'
        // epilogues and AdamW with clipping
        for function in BackendCheckShapes.activations where (try? candidate.requireSupport(.activation(function))) != nil {
            for (index, size) in BackendCheckShapes.activationProducts.enumerated() {
                for derivative in [false, true] {
                    record(try checkActivationProduct(function, derivative: derivative, size, offset: index % 2 == 1, random: &random))
                }
            }
        }
        let decays = (try? candidate.requireSupport(.weightDecay)) != nil
        let clips = (try? candidate.requireSupport(.gradientClipping)) != nil
        if decays, clips {
            for (index, count) in BackendCheckShapes.adamCounts.enumerated() {
                record(try checkAdam(count: count, steps: 1...5, offset: index % 2 == 1, random: &random,
                                     hyperparameters: AdamHyperparameters(learningRate: 0.01, weightDecay: 0.1, clipNorm: 4)))
            }
        }
        // each option alone (c = 1 clips at every count but 1)
        if decays {
            record(try checkAdam(count: 4099, steps: 1...5, offset: true, random: &random,
                                 hyperparameters: AdamHyperparameters(learningRate: 0.01, weightDecay: 0.1)))
        }
        if clips {
            record(try checkAdam(count: 4099, steps: 1...5, offset: false, random: &random,
                                 hyperparameters: AdamHyperparameters(learningRate: 0.01, clipNorm: 1)))
        }
        record(try checkTraining(.crossEntropy))
        record(try checkTraining(.meanSquaredError))
        // beyond the seed, for the features the candidate implements: a run with each
        for run in BackendCheckShapes.featureRuns {
            let features = BackendFeature.used(activation: run.activation, loss: run.loss, hyperparameters: run.hyperparameters)
            guard features.allSatisfy({ (try? candidate.requireSupport($0)) != nil }) else { continue }
            record(try checkTraining(run.loss, activation: run.activation, hyperparameters: run.hyperparameters, name: run.name))
        }
        return results
    }

    /// ‖candidate − reference‖ / ‖reference‖ (Euclidean norms, accumulated in Float64).
    ///
    /// A reference that is all zeros is compared absolutely (‖candidate − reference‖). A NaN or
    /// infinity in the difference (an unwritten, NaN-poisoned element, for instance), or
    /// arrays of different lengths, give +∞, which fails every threshold.
    public static func relativeError(_ candidate: [Float], _ reference: [Float]) -> Double {
        guard candidate.count == reference.count else { return .infinity }
        var difference = 0.0, norm = 0.0
        for (x, r) in zip(candidate, reference) {
            let d = Double(x) - Double(r)
            difference += d * d
            norm += Double(r) * Double(r)
        }
        guard difference.isFinite, norm.isFinite else { return .infinity }
        return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
    }

    // MARK: - The checks

    /// Runs `body` on one backend, turning anything it throws into `BackendCheckError`.
    private func attempt<T>(_ name: String, _ sizes: String, on backend: String,
                            _ body: () throws -> T) throws(BackendCheckError) -> T {
        do {
            return try body()
        } catch {
            throw .operationFailed(check: name, sizes: sizes, backend: backend, reason: "\(error)")
        }
    }

    /// Runs `body` on the reference and on the candidate.
    private func both<T>(_ name: String, _ sizes: String,
                         _ body: (any BackendCheckRunner) throws -> T) throws(BackendCheckError) -> (candidate: T, reference: T) {
        let expected = try attempt(name, sizes, on: "the reference (\(reference.summary))") {
            try body(Runner(backend: reference))
        }
        let actual = try attempt(name, sizes, on: "the candidate (\(candidate.summary))") {
            try body(Runner(backend: candidate))
        }
        return (actual, expected)
    }

    private func row(_ name: String, _ sizes: String, _ actual: [Float], _ expected: [Float],
                     threshold: Double) -> BackendCheckResult {
        BackendCheckResult(name: name, sizes: sizes, relativeError: Self.relativeError(actual, expected), threshold: threshold)
    }

    private func checkProduct(
        _ layout: ProductLayout, _ epilogue: ProductEpilogueKind, _ size: (m: Int, n: Int, k: Int),
        offset: Bool, random: inout SeededGenerator
    ) throws(BackendCheckError) -> BackendCheckResult {
        let (m, n, k) = size
        let a = random.checkValues(m * k), b = random.checkValues(k * n)
        // the ReLU mask's activation: positive, negative and exact zeros, as A = ReLU(Z) has
        let auxiliary = epilogue == .reluMask
            ? random.checkValues(m * n).enumerated().map { $0.offset % 5 == 2 ? 0 : $0.element }
            : random.checkValues(n)
        let name = "matrixProduct \(layout.rawValue) \(epilogue.rawValue)"
        let sizes = "\(m)×\(n)×\(k)"
        let (actual, expected) = try both(name, sizes) {
            try $0.product(layout, m: m, n: n, k: k, a: a, b: b, epilogue: epilogue, auxiliary: auxiliary, offset: offset)
        }
        return row(name, sizes, actual, expected, threshold: BackendCheckThreshold.product)
    }

    private func checkColumnSums(_ shape: (rows: Int, columns: Int), offset: Bool,
                                 random: inout SeededGenerator) throws(BackendCheckError) -> BackendCheckResult {
        let matrix = random.checkValues(shape.rows * shape.columns)
        let sizes = "\(shape.rows)×\(shape.columns)"
        let (actual, expected) = try both("columnSums", sizes) {
            try $0.columnSums(matrix, rows: shape.rows, columns: shape.columns, offset: offset)
        }
        return row("columnSums", sizes, actual, expected, threshold: BackendCheckThreshold.elementwise)
    }

    /// Which weights a loss row of the check applies.
    enum LossWeighting { case none, classes, rows, classesAndRows }

    private func checkLoss(
        _ loss: Loss, _ encoding: TargetEncoding, _ shape: (rows: Int, columns: Int), variant: Int,
        weighting: LossWeighting = .none, random: inout SeededGenerator
    ) throws(BackendCheckError) -> (gradient: BackendCheckResult, sum: BackendCheckResult) {
        let (rows, columns) = shape
        // weights from 0.25 to 4, one per class; one per row, every fifth 0
        let classWeights = weighting == .classes || weighting == .classesAndRows
            ? random.checkValues(columns).map { exp2f(2 * $0) } : nil
        let rowWeights = weighting == .rows || weighting == .classesAndRows
            ? random.checkValues(rows).enumerated().map { $0.offset % 5 == 4 ? 0 : exp2f(2 * $0.element) } : nil
        let output = random.checkValues(rows * columns).map { $0 * 4 }
        let targets: [Float]
        switch (loss, encoding) {
        case (_, .classIndices):
            targets = random.checkLabels(rows, classes: columns)
        case (.meanSquaredError, .dense):
            targets = random.checkValues(rows * columns)
        case (.crossEntropy, .dense):
            // positive rows, summing to 1 in every other case (else the gradient's Σy factor shows)
            targets = random.checkProbabilityRows(rows: rows, columns: columns, normalized: variant % 2 == 0)
        case (.binaryCrossEntropy, .dense):
            // labels of 0 and 1, and soft targets in every other case
            targets = random.checkValues(rows * columns).map { variant % 2 == 0 ? ($0 > 0 ? 1 : 0) : abs($0) }
        }
        let weights = switch weighting {
        case .none: ""
        case .classes: " weighted"
        case .rows: " row-weighted"
        case .classesAndRows: " weighted row-weighted"
        }
        let name = "lossGradient \(loss.rawValue)\(weights) \(encoding == .classIndices ? "indices" : "dense")"
        let sizes = "\(rows)×\(columns)"
        let (actual, expected) = try both(name, sizes) {
            try $0.lossGradient(loss, encoding, output: output, targets: targets, rows: rows, columns: columns,
                                offset: variant % 2 == 1, classWeights: classWeights, rowWeights: rowWeights)
        }
        return (row(name + " gradient", sizes, actual.gradient, expected.gradient, threshold: BackendCheckThreshold.elementwise),
                row(name + " loss sum", sizes, [actual.sum], [expected.sum], threshold: BackendCheckThreshold.elementwise))
    }

    private func checkGather(_ shape: (sourceRows: Int, width: Int, count: Int), offset: Bool,
                             random: inout SeededGenerator) throws(BackendCheckError) -> BackendCheckResult {
        let source = random.checkValues(shape.sourceRows * shape.width)
        let indices = random.checkLabels(shape.count, classes: shape.sourceRows)
        let sizes = "\(shape.count) of \(shape.sourceRows)×\(shape.width)"
        let (actual, expected) = try both("gatherRows", sizes) {
            try $0.gather(source, width: shape.width, indices: indices, offset: offset)
        }
        return row("gatherRows", sizes, actual, expected, threshold: BackendCheckThreshold.copy)
    }

    private func checkAdam(count: Int, steps: ClosedRange<Int>, offset: Bool, random: inout SeededGenerator,
                           hyperparameters: AdamHyperparameters = AdamHyperparameters()) throws(BackendCheckError) -> BackendCheckResult {
        let parameters = random.checkValues(count)
        let firstMoment = random.checkValues(count).map { $0 * 0.1 }
        let secondMoment = random.checkValues(count).map { abs($0) * 0.01 }
        let gradients = steps.map { _ in random.checkValues(count) }
        let sizes = "\(count), t \(steps.lowerBound)…\(steps.upperBound)"
        let name = hyperparameters.isPlainAdam ? "adamUpdate" : "adamWUpdate λ \(hyperparameters.weightDecay), clip \(hyperparameters.clipNorm.map { "\($0)" } ?? "off")"
        let (actual, expected) = try both(name, sizes) {
            try $0.adam(parameters: parameters, firstMoment: firstMoment, secondMoment: secondMoment,
                        gradients: gradients, steps: steps, offset: offset, hyperparameters: hyperparameters)
        }
        let error = zip(actual, expected).map { Self.relativeError($0, $1) }.max() ?? .infinity
        return BackendCheckResult(name: name, sizes: sizes, relativeError: error,
                                  threshold: BackendCheckThreshold.elementwise)
    }

    /// A product with a hidden activation's epilogue: C = f(C + bias) (and Z for GELU), or
    /// C ⊙ f'(source) with source A = f(Z) (Z for GELU).
    private func checkActivationProduct(
        _ function: ActivationFunction, derivative: Bool, _ size: (m: Int, n: Int, k: Int), offset: Bool,
        random: inout SeededGenerator
    ) throws(BackendCheckError) -> BackendCheckResult {
        let (m, n, k) = size
        let layout: ProductLayout = derivative ? .nn : .nt
        let a = random.checkValues(m * k), b = random.checkValues(k * n)
        var auxiliary = derivative ? random.checkValues(m * n).map { $0 * 3 } : random.checkValues(n)
        if derivative, !function.derivativeNeedsPreActivation {
            // a source that is some A = f(Z), exact zeros included
            auxiliary = auxiliary.enumerated().map { $0.offset % 5 == 2 ? function.apply(0) : function.apply($0.element) }
        }
        let name = "matrixProduct \(layout.rawValue) \(derivative ? "derivative" : "bias+activation") \(function)"
        let sizes = "\(m)×\(n)×\(k)"
        let (actual, expected) = try both(name, sizes) {
            try $0.activationProduct(layout, m: m, n: n, k: k, a: a, b: b, function: function, derivative: derivative,
                                     auxiliary: auxiliary, offset: offset)
        }
        return row(name, sizes, actual, expected, threshold: BackendCheckThreshold.product)
    }

    /// `TrainingSession` on both backends from the same model and data: 100 steps of shuffled
    /// batches of 32 from 203 rows (so every epoch ends with a partial batch). Binary
    /// cross-entropy trains on 0/1 labels, one per output.
    ///
    /// A run past its threshold is run once more on other data from another initialisation, and
    /// the row fails only if that run does too (its sizes then name both errors). Two correct
    /// backends can part ways: when a ReLU's input lands within rounding of 0 at some step, the
    /// backend whose product rounds it to the other side gates that row's gradient differently,
    /// and Adam turns the unit's small gradient into a full step. With seed 124 a first-layer
    /// unit's input was 3.4e-8 at step 50, and the AdamW run's parameters ended 9.0e-4 apart on
    /// PoCL and with the Swift product alike (4e-8 to 8e-8 in the other runs). It happened in 12
    /// of 8,400 runs on PoCL (seeds 61–900) and 3 of 1,500 with the Swift product (seeds 1–150),
    /// each a ReLU or leaky-ReLU run, never a smooth activation's. A wrong kernel fails on any data.
    private func checkTraining(
        _ loss: Loss, activation: ActivationFunction = .relu, hyperparameters: AdamHyperparameters = AdamHyperparameters(),
        name runName: String? = nil
    ) throws(BackendCheckError) -> BackendCheckResult {
        let first = try checkTraining(loss, activation: activation, hyperparameters: hyperparameters, name: runName, dataSet: 0)
        guard !first.passed else { return first }
        var second = try checkTraining(loss, activation: activation, hyperparameters: hyperparameters, name: runName, dataSet: 1)
        second.sizes += " (2nd data set; 1st: \(BackendCheckResult.scientific(first.relativeError)))"
        return second
    }

    /// One training run of `checkTraining`: `dataSet` 0 is the seed's data and model, 1 another.
    private func checkTraining(
        _ loss: Loss, activation: ActivationFunction, hyperparameters: AdamHyperparameters, name runName: String?,
        dataSet: UInt64
    ) throws(BackendCheckError) -> BackendCheckResult {
        let seed = self.seed &+ dataSet &* 0x9E37_79B9_7F4A_7C15
        let sizes = BackendCheckShapes.trainingLayers, rows = 203, batch = 32, steps = 100
        let name = "training \(runName ?? loss.rawValue)"
        let description = "[\(sizes.map(String.init).joined(separator: ","))] batch \(batch), \(steps) steps"
        var random = SeededGenerator(seed: seed ^ (loss == .crossEntropy ? 0xC0FFEE : 0xBEEF))
        let outputs = sizes[sizes.count - 1]
        let inputs = random.checkValues(rows * sizes[0])
        let encoding: TargetEncoding = loss == .crossEntropy ? .classIndices : .dense
        let targets = encoding == .classIndices ? random.checkLabels(rows, classes: outputs)
            : loss == .binaryCrossEntropy ? random.checkValues(rows * outputs).map { $0 > 0 ? 1 : 0 }
            : random.checkValues(rows * outputs)
        let model: MLP, dataset: Dataset
        do {
            model = try MLP(layerSizes: sizes, activation: activation, loss: loss, seed: seed)
            dataset = try Dataset(inputs: inputs, features: sizes[0], targets: targets, encoding: encoding,
                                  targetWidth: encoding.width(outputs: outputs))
        } catch {
            throw .operationFailed(check: name, sizes: description, backend: "setup", reason: "\(error)")
        }
        let configuration = TrainingConfiguration(batchSize: batch, length: .steps(steps), shuffle: true, seed: seed)
        func train<X: Backend>(_ backend: X) throws -> [Float]? {
            let session = try TrainingSession(model: model, backend: backend, hyperparameters: hyperparameters,
                                              batchCapacity: batch)
            let data = try session.upload(dataset)
            do {
                try session.train(on: data, configuration: configuration)
            } catch ModelError.nonFinite {
                return nil  // the loss became NaN or infinite: a mismatch, reported as +∞
            }
            return try session.model().parameters
        }
        let expected = try attempt(name, description, on: "the reference (\(reference.summary))") { try train(reference) }
        let actual = try attempt(name, description, on: "the candidate (\(candidate.summary))") { try train(candidate) }
        let error: Double
        if let actual, let expected { error = Self.relativeError(actual, expected) } else { error = .infinity }
        return BackendCheckResult(name: name, sizes: description, relativeError: error, threshold: BackendCheckThreshold.training)
    }
}

/// One row of a `BackendCheck`: an operation at one size, and how far the candidate's result
/// lies from the reference's.
public struct BackendCheckResult: Sendable, Equatable {
    /// The operation and its variant, e.g. "matrixProduct tn biasReLU" or "training mse".
    public var name: String
    /// The shapes, e.g. "37×53×29" (m×n×k) for a product or "257×33" (rows×columns).
    public var sizes: String
    /// ‖candidate − reference‖ / ‖reference‖ (see `BackendCheck.relativeError(_:_:)`).
    public var relativeError: Double
    /// The largest relative error that passes.
    public var threshold: Double

    public init(name: String, sizes: String, relativeError: Double, threshold: Double) {
        self.name = name
        self.sizes = sizes
        self.relativeError = relativeError
        self.threshold = threshold
    }

    /// Whether the relative error is within the threshold (false for NaN).
    public var passed: Bool { relativeError <= threshold }

    /// `value` as "1.23e-07" (`digits` after the point), or "inf"/"nan".
    public static func scientific(_ value: Double, _ digits: Int = 2) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : "inf" }
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([value]) { vsnprintf(&buffer, 64, "%.\(digits)e", $0) }
        return String(cString: buffer)
    }

    /// The operation's kind: the name's first word ("matrixProduct", "lossGradient", "training", …).
    public var kind: String {
        name.split(separator: " ").first.map(String.init) ?? name
    }
}

/// The thresholds `BackendCheck` applies.
public enum BackendCheckThreshold {
    /// Float32 matrix products (with their fused epilogues).
    public static let product = 1e-5
    /// Element-wise operations and reductions: column sums, loss gradients and sums, Adam.
    public static let elementwise = 1e-5
    /// The batch gather, a copy: it must be exact.
    public static let copy = 0.0
    /// Parameters after the 100-step training runs.
    public static let training = 1e-4
}

/// Why `BackendCheck` could not finish.
public enum BackendCheckError: Error, CustomStringConvertible, Equatable {
    /// A backend threw while running a check (or the check's own setup failed).
    case operationFailed(check: String, sizes: String, backend: String, reason: String)

    public var description: String {
        switch self {
        case let .operationFailed(check, sizes, backend, reason):
            return "\(check) at \(sizes) failed on \(backend): \(reason)"
        }
    }
}

/// The sizes `BackendCheck` runs.
enum BackendCheckShapes {
    /// m, n, k: ones, a single row and a single column, primes, a tile multiple, and larger
    /// sizes just past tile multiples.
    static let products: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 97, 13), (41, 1, 7), (37, 53, 29), (128, 128, 64), (257, 130, 200),
    ]
    static let columnSums: [(rows: Int, columns: Int)] = [(1, 1), (1, 37), (37, 53), (128, 64), (257, 130), (1000, 3)]
    static let losses: [(rows: Int, columns: Int)] = [(1, 1), (1, 10), (37, 5), (128, 10), (257, 33), (1, 64), (9, 1024), (130, 300)]
    static let gathers: [(sourceRows: Int, width: Int, count: Int)] = [(1, 1, 1), (50, 13, 17), (300, 1, 64), (97, 784, 33)]
    static let adamCounts = [1, 37, 4099, 100_003]
    static let activations: [ActivationFunction] = [.leakyReLU(slope: 0.01), .tanh, .sigmoid, .gelu]
    static let activationProducts: [(m: Int, n: Int, k: Int)] = [(1, 97, 13), (37, 53, 29), (257, 130, 200)]
    static let trainingLayers = [13, 32, 24, 5]
    /// The training runs beyond the seed: each feature in a run of its own, then all together.
    static let featureRuns: [(name: String, activation: ActivationFunction, loss: Loss, hyperparameters: AdamHyperparameters)] = [
        ("binary-cross-entropy", .relu, .binaryCrossEntropy, AdamHyperparameters()),
        ("tanh", .tanh, .meanSquaredError, AdamHyperparameters()),
        ("sigmoid", .sigmoid, .crossEntropy, AdamHyperparameters()),
        ("gelu", .gelu, .meanSquaredError, AdamHyperparameters()),
        ("leaky-relu", .leakyReLU(slope: 0.01), .crossEntropy, AdamHyperparameters()),
        ("adamw λ 0.1", .relu, .meanSquaredError, AdamHyperparameters(weightDecay: 0.1)),
        ("clip 0.1", .relu, .crossEntropy, AdamHyperparameters(clipNorm: 0.1)),
        ("gelu binary-cross-entropy adamw clip", .gelu, .binaryCrossEntropy, AdamHyperparameters(weightDecay: 0.01, clipNorm: 0.5)),
    ]
}

// MARK: - Running one check on one backend

/// One check's operation on one backend, from host arrays to host arrays. An existential, so
/// `BackendCheck.both` can hand the same closure each backend in turn.
private protocol BackendCheckRunner {
    func product(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float],
                 epilogue: ProductEpilogueKind, auxiliary: [Float], offset: Bool) throws -> [Float]
    func columnSums(_ matrix: [Float], rows: Int, columns: Int, offset: Bool) throws -> [Float]
    func lossGradient(_ loss: Loss, _ encoding: TargetEncoding, output: [Float], targets: [Float], rows: Int,
                      columns: Int, offset: Bool, classWeights: [Float]?, rowWeights: [Float]?) throws -> (gradient: [Float], sum: Float)
    func gather(_ source: [Float], width: Int, indices: [Float], offset: Bool) throws -> [Float]
    func adam(parameters: [Float], firstMoment: [Float], secondMoment: [Float], gradients: [[Float]],
              steps: ClosedRange<Int>, offset: Bool, hyperparameters: AdamHyperparameters) throws -> [[Float]]
    func activationProduct(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float], function: ActivationFunction,
                           derivative: Bool, auxiliary: [Float], offset: Bool) throws -> [Float]
}

private struct Runner<B: Backend>: BackendCheckRunner {
    let backend: B

    func product(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float],
                 epilogue: ProductEpilogueKind, auxiliary: [Float], offset: Bool) throws -> [Float] {
        try backend.product(layout, m: m, n: n, k: k, a: a, b: b, epilogue: epilogue, auxiliary: auxiliary,
                            offsets: offset ? .odd : .none)
    }

    func columnSums(_ matrix: [Float], rows: Int, columns: Int, offset: Bool) throws -> [Float] {
        try backend.columnSums(matrix, rows: rows, columns: columns, offset: offset ? 9 : 0)
    }

    func lossGradient(_ loss: Loss, _ encoding: TargetEncoding, output: [Float], targets: [Float], rows: Int,
                      columns: Int, offset: Bool, classWeights: [Float]?, rowWeights: [Float]?) throws -> (gradient: [Float], sum: Float) {
        try backend.lossGradient(loss, encoding, output: output, targets: targets, rows: rows, columns: columns,
                                 offset: offset ? 4 : 0, classWeights: classWeights, rowWeights: rowWeights)
    }

    func gather(_ source: [Float], width: Int, indices: [Float], offset: Bool) throws -> [Float] {
        try backend.gatherRows(source, width: width, indices: indices, offset: offset ? 6 : 0)
    }

    /// C, then Z after it when the epilogue keeps Z.
    func activationProduct(_ layout: ProductLayout, m: Int, n: Int, k: Int, a: [Float], b: [Float], function: ActivationFunction,
                           derivative: Bool, auxiliary: [Float], offset: Bool) throws -> [Float] {
        try backend.activationProduct(layout, m: m, n: n, k: k, a: a, b: b, function: function, derivative: derivative,
                                      auxiliary: auxiliary, keepsPreActivation: function.derivativeNeedsPreActivation,
                                      offsets: offset ? .odd : .none, preActivationOffset: offset ? 1 : 0)
    }

    func adam(parameters: [Float], firstMoment: [Float], secondMoment: [Float], gradients: [[Float]],
              steps: ClosedRange<Int>, offset: Bool, hyperparameters: AdamHyperparameters) throws -> [[Float]] {
        let shift = offset ? 5 : 0
        let count = parameters.count
        let theta = try backend.buffer(parameters, offset: shift)
        let m = try backend.buffer(firstMoment, offset: shift)
        let v = try backend.buffer(secondMoment, offset: shift)
        let g = try backend.poisoned(count, offset: shift)
        for (step, values) in zip(steps, gradients) {
            try values.withUnsafeBufferPointer { try backend.upload($0, to: g) }
            if hyperparameters.isPlainAdam {
                try backend.adamUpdate(parameters: theta, gradients: g, firstMoment: m, secondMoment: v, count: count,
                                       hyperparameters: hyperparameters, step: step)
            } else {
                try backend.adamWUpdate(parameters: theta, gradients: g, firstMoment: m, secondMoment: v, count: count,
                                        hyperparameters: hyperparameters, step: step)
            }
        }
        return [try backend.read(theta, count), try backend.read(m, count), try backend.read(v, count)]
    }
}

// MARK: - Inputs

extension SeededGenerator {
    /// `count` values uniform in [−1, 1).
    fileprivate mutating func checkValues(_ count: Int) -> [Float] {
        (0..<count).map { _ in nextUniform(bound: 1) }
    }

    /// `count` class indices in 0..<classes, as Float32.
    fileprivate mutating func checkLabels(_ count: Int, classes: Int) -> [Float] {
        (0..<count).map { _ in Float(next() % UInt64(max(classes, 1))) }
    }

    /// Positive target rows, each summing to 1 when `normalized`.
    fileprivate mutating func checkProbabilityRows(rows: Int, columns: Int, normalized: Bool) -> [Float] {
        var values = checkValues(rows * columns).map { abs($0) + 0.01 }
        guard normalized else { return values }
        for i in 0..<rows {
            let total = values[(i * columns)..<((i + 1) * columns)].reduce(0, +)
            for j in 0..<columns { values[i * columns + j] /= total }
        }
        return values
    }
}
