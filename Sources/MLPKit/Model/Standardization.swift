/// Per-feature standardisation: x′ = (x − mean) / deviation, with the mean and the (population)
/// standard deviation of each feature over the training rows, and a deviation of 0 replaced by
/// 1 (a constant feature becomes 0). Checkpoints store it as F32 tensors `standardize.mean` and
/// `standardize.std`, shape [inputs]; a model that has one applies it to every input row, in
/// training, evaluation and prediction alike.
public struct Standardization: Sendable, Equatable {
    /// Per feature.
    public let mean: [Float]
    /// Per feature, each positive and finite.
    public let deviation: [Float]

    /// The number of features.
    public var features: Int { mean.count }

    /// - Throws: `ModelError` unless both have the same non-zero length, the means are finite
    ///   and the deviations finite and positive.
    public init(mean: [Float], deviation: [Float]) throws {
        guard !mean.isEmpty, mean.count == deviation.count else {
            throw ModelError.dataShape("a standardisation needs one mean and one deviation per feature, got \(mean.count) and \(deviation.count)")
        }
        guard mean.allSatisfy(\.isFinite) else { throw ModelError.nonFinite("a standardisation mean is NaN or infinite") }
        guard deviation.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw ModelError.nonFinite("a standardisation deviation is not a positive finite number")
        }
        self.mean = mean
        self.deviation = deviation
    }

    /// The mean and population standard deviation of each column of `inputs` (row-major,
    /// `features` per row), accumulated in Float64 (two passes); a deviation of 0 becomes 1.
    public init(fitting inputs: [Float], features: Int) throws {
        guard features >= 1, !inputs.isEmpty, inputs.count % features == 0 else {
            throw ModelError.dataShape("\(inputs.count) values do not make rows of \(features) features")
        }
        let rows = inputs.count / features
        var sums = [Double](repeating: 0, count: features)
        for row in 0..<rows {
            for j in 0..<features { sums[j] += Double(inputs[row * features + j]) }
        }
        let means = sums.map { $0 / Double(rows) }
        var squares = [Double](repeating: 0, count: features)
        for row in 0..<rows {
            for j in 0..<features {
                let difference = Double(inputs[row * features + j]) - means[j]
                squares[j] += difference * difference
            }
        }
        let deviations = squares.map { (squares: Double) -> Float in
            let deviation = Float((squares / Double(rows)).squareRoot())
            return deviation > 0 && deviation.isFinite ? deviation : 1
        }
        try self.init(mean: means.map { Float($0) }, deviation: deviations)
    }

    /// (x − mean) / deviation for every row of `inputs`, in Float32.
    /// - Throws: `ModelError.dataShape` when the values do not make rows of `features`.
    public func apply(_ inputs: [Float]) throws -> [Float] {
        try eachValue(of: inputs, rowsOf: "features") { value, j in (value - mean[j]) / deviation[j] }
    }

    /// value · deviation + mean for every row of `values` (the inverse of ``apply(_:)``, for a
    /// model's standardised targets), in Float32: a product, then a sum, each rounded.
    /// - Throws: `ModelError.dataShape` when the values do not make rows of `features`.
    public func invert(_ values: [Float]) throws -> [Float] {
        try eachValue(of: values, rowsOf: "outputs") { value, j in
            let scaled = value * deviation[j]
            return scaled + mean[j]
        }
    }

    /// `transform(value, column)` of every value of `values`, rows of `features` columns.
    private func eachValue(of values: [Float], rowsOf noun: String, _ transform: (Float, Int) -> Float) throws -> [Float] {
        guard values.count % features == 0 else {
            throw ModelError.dataShape("\(values.count) values do not make rows of \(features) \(noun)")
        }
        var result = values
        result.withUnsafeMutableBufferPointer { values in
            var index = 0
            while index < values.count {
                for j in 0..<features { values[index + j] = transform(values[index + j], j) }
                index += features
            }
        }
        return result
    }
}
