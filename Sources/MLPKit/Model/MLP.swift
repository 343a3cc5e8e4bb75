/// A multi-layer perceptron: linear layers with an activation between them and a linear
/// output, its parameters in one flat Float32 buffer (see `LayerLayout`).
///
/// ```swift
/// var model = try MLP(layerSizes: [64, 256, 128, 10], loss: .crossEntropy, seed: 0)
/// ```
public struct MLP: Sendable, Equatable {
    /// How fresh parameters are drawn.
    public enum Initialization: String, Sendable, CaseIterable {
        /// PyTorch nn.Linear's default: W and b uniform in ±1/√fan_in.
        case pytorch
        /// He normal: W with standard deviation √(2/fan_in), b zero.
        case heNormal = "he"
    }

    /// Where each layer's parameters sit.
    public let layout: LayerLayout
    /// The hidden layers' activation.
    public var activation: ActivationFunction
    /// The loss the model is trained with.
    public var loss: Loss
    /// Per-feature standardisation applied to every input row before the first layer (when
    /// the model was trained with it; see `Standardization`).
    public var standardization: Standardization?
    /// Per-output standardisation of the targets (regression with MSE only): the model is
    /// trained on (y − mean) / deviation and its outputs z are read as z · deviation + mean
    /// (``TrainingSession/predict(_:)``). Checked against the outputs when a session is made.
    public var targetStandardization: Standardization?
    /// W1, b1, W2, b2, … (see `LayerLayout`).
    public var parameters: [Float]

    /// Layer sizes [inputs, hidden…, outputs].
    public var layerSizes: [Int] { layout.sizes }

    /// A fresh model, deterministic from `seed`: the same seed gives the same bits every run.
    public init(
        layerSizes: [Int], activation: ActivationFunction = .relu, loss: Loss,
        initialization: Initialization = .pytorch, seed: UInt64 = 0
    ) throws {
        layout = try LayerLayout(sizes: layerSizes)
        try activation.validate()
        self.activation = activation
        self.loss = loss
        var generator = SeededGenerator(seed: seed)
        var values = [Float](repeating: 0, count: layout.parameterCount)
        for layer in 1...layout.layerCount {
            let fanIn = layerSizes[layer - 1], fanOut = layerSizes[layer]
            let weights = layout.weightOffsets[layer - 1], biases = layout.biasOffsets[layer - 1]
            switch initialization {
            case .pytorch:
                let bound = 1 / Double(fanIn).squareRoot()
                for i in 0..<(fanOut * fanIn) { values[weights + i] = generator.nextUniform(bound: bound) }
                for i in 0..<fanOut { values[biases + i] = generator.nextUniform(bound: bound) }
            case .heNormal:
                let deviation = (2 / Double(fanIn)).squareRoot()
                for i in 0..<(fanOut * fanIn) { values[weights + i] = Float(generator.nextNormal() * deviation) }
            }
        }
        parameters = values
    }

    /// A model with the given parameters (W1, b1, W2, b2, … flat).
    /// - Throws: `ModelError` when the sizes are invalid or the count does not match them.
    public init(layerSizes: [Int], activation: ActivationFunction = .relu, loss: Loss, parameters: [Float],
                standardization: Standardization? = nil) throws {
        layout = try LayerLayout(sizes: layerSizes)
        guard parameters.count == layout.parameterCount else {
            throw ModelError.parameterCount(expected: layout.parameterCount, got: parameters.count)
        }
        try activation.validate()
        if let standardization, standardization.features != layout.inputs {
            throw ModelError.dataShape("the standardisation has \(standardization.features) features but the model takes \(layout.inputs) inputs")
        }
        self.activation = activation
        self.loss = loss
        self.parameters = parameters
        self.standardization = standardization
    }

    /// W_i as a flat row-major [out × in] array, for layer i in 1...L.
    /// - Throws: `ModelError.dataShape` when `layer` is not in 1...L, and
    ///   `ModelError.parameterCount` when `parameters` no longer has the layout's count.
    public func weights(layer: Int) throws -> ArraySlice<Float> {
        try checkLayer(layer)
        let start = layout.weightOffsets[layer - 1]
        return parameters[start..<(start + layerSizes[layer] * layerSizes[layer - 1])]
    }

    /// b_i, for layer i in 1...L.
    /// - Throws: `ModelError.dataShape` when `layer` is not in 1...L, and
    ///   `ModelError.parameterCount` when `parameters` no longer has the layout's count.
    public func bias(layer: Int) throws -> ArraySlice<Float> {
        try checkLayer(layer)
        let start = layout.biasOffsets[layer - 1]
        return parameters[start..<(start + layerSizes[layer])]
    }

    /// `parameters` is public and mutable, so its count is checked at every read by layer.
    private func checkLayer(_ layer: Int) throws {
        guard layer >= 1, layer <= layout.layerCount else {
            throw ModelError.dataShape("layer \(layer) is not one of the model's layers 1…\(layout.layerCount)")
        }
        guard parameters.count == layout.parameterCount else {
            throw ModelError.parameterCount(expected: layout.parameterCount, got: parameters.count)
        }
    }
}
