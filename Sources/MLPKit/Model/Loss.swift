import CMLPKitSIMD
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The training objective applied to the output layer's pre-activation Z_L (SEED.md §2–3).
public enum Loss: String, Sendable, CaseIterable, Codable {
    /// L = 1/(2B) · ΣΣ (ŷ − y)², with ŷ = Z_L; dL/dZ_L = (ŷ − y)/B.
    case meanSquaredError = "mse"
    /// L = −1/B · ΣΣ y · log softmax(Z_L), computed with log-sum-exp; dL/dZ_L = (softmax(Z_L) − y)/B.
    case crossEntropy = "cross-entropy"
    /// A sigmoid per output with binary cross-entropy, for binary and multi-label targets (each
    /// y in [0, 1], usually 0 or 1): L = −1/B · ΣΣ [y·log σ(z) + (1−y)·log(1−σ(z))], computed
    /// from the logits as max(z, 0) − z·y + log1p(exp(−|z|)); dL/dZ_L = (σ(Z_L) − y)/B.
    case binaryCrossEntropy = "binary-cross-entropy"

    /// Whether the outputs are class or label scores (accuracy is meaningful): for cross-entropy
    /// the fraction of rows whose largest output is the target class, for binary cross-entropy
    /// the fraction of labels on the right side of σ = 0.5.
    public var isClassification: Bool { self != .meanSquaredError }
}

/// The hidden layers' activation function, by name (as `--activation` and the checkpoint's
/// `activation` metadata spell it). `ActivationFunction` adds leaky ReLU's slope.
public enum Activation: String, Sendable, CaseIterable, Codable {
    /// ReLU(z) = max(0, z)
    case relu
    /// max(z, 0) + slope · min(z, 0)
    case leakyReLU = "leaky-relu"
    /// tanh(z)
    case tanh
    /// σ(z) = 1 / (1 + exp(−z))
    case sigmoid
    /// GELU, tanh form: 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))
    case gelu
}

/// A hidden activation with its parameters: what the forward pass applies after each hidden
/// layer's bias, and whose derivative the backward pass multiplies in.
///
/// The derivative is taken from the activation A = f(Z) where that determines it (ReLU and
/// leaky ReLU from A's sign, tanh as 1 − A², sigmoid as A·(1 − A)); GELU needs Z itself, so a
/// training step keeps Z for it (see `derivativeNeedsPreActivation`).
public enum ActivationFunction: Sendable, Equatable, Hashable, CustomStringConvertible {
    case relu
    /// Leaky ReLU with slope ≥ 0 for negative inputs (PyTorch's default is 0.01).
    case leakyReLU(slope: Float)
    case tanh
    case sigmoid
    case gelu

    /// Leaky ReLU's default negative slope, PyTorch's.
    public static let defaultLeakySlope: Float = 0.01

    /// The function `kind` names, with `leakySlope` for leaky ReLU.
    public init(_ kind: Activation, leakySlope: Float = ActivationFunction.defaultLeakySlope) {
        switch kind {
        case .relu: self = .relu
        case .leakyReLU: self = .leakyReLU(slope: leakySlope)
        case .tanh: self = .tanh
        case .sigmoid: self = .sigmoid
        case .gelu: self = .gelu
        }
    }

    /// The name without parameters.
    public var kind: Activation {
        switch self {
        case .relu: return .relu
        case .leakyReLU: return .leakyReLU
        case .tanh: return .tanh
        case .sigmoid: return .sigmoid
        case .gelu: return .gelu
        }
    }

    /// Leaky ReLU's slope, nil for the others.
    public var leakySlope: Float? {
        if case .leakyReLU(let slope) = self { return slope }
        return nil
    }

    /// Whether the backward pass needs Z (not only A = f(Z)) for the derivative: GELU.
    public var derivativeNeedsPreActivation: Bool { self == .gelu }

    /// "tanh", "leaky-relu (slope 0.01)", …
    public var description: String {
        if let slope = leakySlope { return "\(kind.rawValue) (slope \(slope))" }
        return kind.rawValue
    }

    /// Throws unless the parameters are usable: leaky ReLU's slope finite and ≥ 0 (the backward
    /// pass reads the derivative from A's sign, which a negative slope would flip).
    public func validate() throws {
        if let slope = leakySlope, !(slope.isFinite && slope >= 0) {
            throw ModelError.invalidHyperparameter("the leaky ReLU slope must be a non-negative number, got \(slope)")
        }
    }

    /// √(2/π), GELU's constant.
    @usableFromInline static let geluScale: Float = 0.7978845608028654

    /// f(z), in Float32 as the CPU backend computes it.
    @inlinable
    public func apply(_ z: Float) -> Float {
        switch self {
        case .relu: return max(z, 0)
        case .leakyReLU(let slope): return z > 0 ? z : slope * z
        case .tanh: return mlpkit_tanh(z)
        case .sigmoid: return Self.sigmoid(z)
        case .gelu: return Self.gelu(z, tanh: mlpkit_tanh(Self.geluArgument(z)))
        }
    }

    /// GELU's u = √(2/π)·(z + 0.044715·z³), whose tanh GELU and its derivative take.
    @inlinable
    public static func geluArgument(_ z: Float) -> Float { geluScale * (z + 0.044715 * z * z * z) }

    /// GELU(z) = 0.5·z·(1 + t) from t = tanh(`geluArgument(z)`).
    @inlinable
    public static func gelu(_ z: Float, tanh t: Float) -> Float { 0.5 * z * (1 + t) }

    /// GELU'(z) from t = tanh(`geluArgument(z)`).
    @inlinable
    public static func geluDerivative(_ z: Float, tanh t: Float) -> Float {
        0.5 * (1 + t) + 0.5 * z * (1 - t * t) * geluScale * (1 + 3 * 0.044715 * z * z)
    }

    /// f'(z) from A = f(z), or from z itself when `derivativeNeedsPreActivation` (GELU).
    @inlinable
    public func derivative(from source: Float) -> Float {
        switch self {
        case .relu: return source > 0 ? 1 : 0
        case .leakyReLU(let slope): return source > 0 ? 1 : slope
        case .tanh: return 1 - source * source
        case .sigmoid: return source * (1 - source)
        case .gelu: return Self.geluDerivative(source, tanh: mlpkit_tanh(Self.geluArgument(source)))
        }
    }

    /// σ(z) without overflow: 1/(1 + e^−z) for z ≥ 0, e^z/(1 + e^z) below.
    @inlinable
    public static func sigmoid(_ z: Float) -> Float {
        if z >= 0 { return 1 / (1 + expf(-z)) }
        let e = expf(z)
        return e / (1 + e)
    }
}
