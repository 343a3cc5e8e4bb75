/// Where each layer's parameters sit in the one flat Float32 buffer: W1, b1, W2, b2, …, each
/// W_i [out × in] row-major (the seed's and PyTorch nn.Linear's layout) followed by b_i [out].
public struct LayerLayout: Sendable, Equatable, Hashable {
    /// Layer sizes [inputs, hidden…, outputs].
    public let sizes: [Int]
    /// Offsets of W_i (index i − 1) in the flat buffer.
    public let weightOffsets: [Int]
    /// Offsets of b_i (index i − 1) in the flat buffer.
    public let biasOffsets: [Int]
    /// The number of Float32 parameters.
    public let parameterCount: Int

    /// - Throws: `ModelError.invalidLayerSizes` unless there are at least two sizes, all ≥ 1.
    public init(sizes: [Int]) throws {
        guard sizes.count >= 2 else {
            throw ModelError.invalidLayerSizes("need at least an input and an output size, got \(sizes)")
        }
        guard sizes.allSatisfy({ $0 >= 1 && $0 <= 1 << 24 }) else {
            throw ModelError.invalidLayerSizes("every layer size must be between 1 and 16777216, got \(sizes)")
        }
        self.sizes = sizes
        var weightOffsets: [Int] = [], biasOffsets: [Int] = []
        var offset = 0
        // each layer adds at most 2^48 + 2^24 (sizes are at most 2^24), so checking the running
        // total against the limit after every layer keeps it far from overflowing Int, however
        // many layers there are
        for layer in 1..<sizes.count {
            weightOffsets.append(offset)
            offset += sizes[layer] * sizes[layer - 1]
            biasOffsets.append(offset)
            offset += sizes[layer]
            guard offset <= Int(Int32.max) else {
                throw ModelError.invalidLayerSizes(
                    "\(offset) parameters (by layer \(layer) of \(sizes.count - 1)) is more than the \(Int32.max) this tool supports")
            }
        }
        self.weightOffsets = weightOffsets
        self.biasOffsets = biasOffsets
        parameterCount = offset
    }

    /// The number of linear layers L.
    public var layerCount: Int { sizes.count - 1 }
    /// Inputs per row (h1 in the seed).
    public var inputs: Int { sizes[0] }
    /// Outputs per row.
    public var outputs: Int { sizes[sizes.count - 1] }

    /// The floating-point operations of one training step on `batch` rows:
    /// 2·B·(3·Σ in·out − in₁·out₁) (forward, weight gradient, and input gradient for every layer
    /// but the first).
    public func trainingFlops(batch: Int) -> Double {
        var sum = 0.0
        for layer in 1..<sizes.count { sum += Double(sizes[layer - 1] * sizes[layer]) }
        return 2 * Double(batch) * (3 * sum - Double(sizes[0] * sizes[1]))
    }
}

/// Errors about a model's shape or contents.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case invalidLayerSizes(String)
    case parameterCount(expected: Int, got: Int)
    case dataShape(String)
    case invalidHyperparameter(String)
    case nonFinite(String)

    public var description: String {
        switch self {
        case .invalidLayerSizes(let reason): return "invalid layer sizes: \(reason)"
        case let .parameterCount(expected, got): return "expected \(expected) parameters, got \(got)"
        case .dataShape(let reason): return reason
        case .invalidHyperparameter(let reason): return reason
        case .nonFinite(let reason): return reason
        }
    }
}
