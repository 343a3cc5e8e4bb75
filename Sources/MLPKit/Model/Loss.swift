/// The training objective applied to the output layer's pre-activation Z_L (SEED.md §2–3).
public enum Loss: String, Sendable, CaseIterable, Codable {
    /// L = 1/(2B) · ΣΣ (ŷ − y)², with ŷ = Z_L; dL/dZ_L = (ŷ − y)/B.
    case meanSquaredError = "mse"
    /// L = −1/B · ΣΣ y · log softmax(Z_L), computed with log-sum-exp; dL/dZ_L = (softmax(Z_L) − y)/B.
    case crossEntropy = "cross-entropy"

    /// Whether the outputs are class scores (accuracy is meaningful).
    public var isClassification: Bool { self == .crossEntropy }
}

/// The hidden layers' activation function.
public enum Activation: String, Sendable, CaseIterable, Codable {
    /// ReLU(z) = max(0, z)
    case relu
}
