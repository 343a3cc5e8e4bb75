/// A checkpoint's network as an ONNX model (opset 17, IR version 8), for ONNX Runtime and the
/// other runtimes that read ONNX: the same forward pass `mlp predict` runs, from a row of the
/// model's float32 inputs to its predictions.
///
/// The graph takes one input, `input`: float32 rows of the model's inputs, `[batch, inputs]`
/// with the batch dimension left free. In order, it
/// - fills missing values (NaN) with the means the checkpoint records (`train --fill-missing`;
///   an input of a category column takes 0), when it records them: `IsNaN`, `Where`;
/// - standardises the inputs, (x − mean) / std, when the checkpoint records a standardisation:
///   `Sub`, `Div`;
/// - runs each layer, x·Wᵀ + b (`Gemm` with `transB`), with the hidden activation after every
///   layer but the last: `Relu`, `LeakyRelu`, `Tanh`, `Sigmoid`, or GELU's tanh form written out
///   in `Mul`, `Add` and `Tanh` (opset 17 has no `Gelu`);
/// - gives the outputs the checkpoint's loss calls for. Cross-entropy: `logits`,
///   `probabilities` (`Softmax` over each row) and `class` (int64, `ArgMax`: the first largest
///   output, as `mlp eval` counts a row's class). Binary cross-entropy: `logits` and
///   `probabilities` (`Sigmoid` of each output). Mean squared error: `prediction`, in the
///   targets' units (z·std + mean where the targets were standardised: `Mul`, `Add`). A
///   checkpoint that records no loss: `output`, the last layer's values.
///
/// The model's `metadata_props` name what the graph cannot: `inputs` (a JSON array: each input's
/// column name, an input of a category `column=value`), `classes` (JSON array), `target` (or `targets`, a JSON array, for several), `loss`
/// and `activation`, where the checkpoint records them. Text columns are not encoded by the graph:
/// its inputs are the one-hot inputs the model takes.
public enum ONNXModel {
    /// The operator set the graph uses.
    public static let opset = 17
    /// ONNX's IR version for opset 17 (IR_VERSION_2021_7_30).
    public static let irVersion = 8

    /// The names of the graph's outputs for a model with `loss` (nil: none recorded).
    public static func outputNames(loss: Loss?) -> [String] {
        switch loss {
        case .crossEntropy: return ["class", "probabilities", "logits"]
        case .binaryCrossEntropy: return ["probabilities", "logits"]
        case .meanSquaredError: return ["prediction"]
        case nil: return ["output"]
        }
    }

    /// What the last layer's values are called in the graph.
    private static func lastLayerName(loss: Loss?, standardizedTargets: Bool) -> String {
        switch loss {
        case .crossEntropy, .binaryCrossEntropy: return "logits"
        case .meanSquaredError: return standardizedTargets ? "standardized_prediction" : "prediction"
        case nil: return "output"
        }
    }

    /// The input names `inputs` lists for `checkpoint`: each feature column's name, and for a
    /// column of categories one `column=value` per category; nil when it records no names (a
    /// model trained from arrays) or they do not add up to the model's inputs.
    public static func inputNames(_ checkpoint: Checkpoint) -> [String]? {
        guard let columns = checkpoint.featureNames else { return nil }
        var names: [String] = []
        for (index, column) in columns.enumerated() {
            if let categories = checkpoint.categories?[safe: index] ?? nil {
                names += categories.map { "\(column)=\($0)" }
            } else {
                names.append(column)
            }
        }
        return names.count == checkpoint.layerSizes.first ? names : nil
    }

    /// The value each input takes where it is NaN: the recorded fill of its column, 0 for the
    /// inputs of a column of categories (no category); nil when the checkpoint records no fills.
    static func inputFills(_ checkpoint: Checkpoint) -> [Float]? {
        guard let fills = checkpoint.fills else { return nil }
        var values: [Float] = []
        for (index, fill) in fills.enumerated() {
            if let categories = checkpoint.categories?[safe: index] ?? nil {
                values += [Float](repeating: 0, count: categories.count)
            } else {
                values.append(fill ?? 0)
            }
        }
        return values.count == checkpoint.layerSizes.first ? values : nil
    }

    /// The ONNX model of `checkpoint`, encoded (a `.onnx` file's bytes).
    /// - Throws: `ModelError` when the checkpoint's parameters do not fit its layers.
    public static func encode(_ checkpoint: Checkpoint) throws -> [UInt8] {
        let model = try checkpoint.model(defaultLoss: checkpoint.loss ?? .meanSquaredError)
        var graph = GraphBuilder()
        let inputs = model.layerSizes[0]
        var current = "input"
        if let fills = inputFills(checkpoint) {
            graph.initializer("fill", fills, shape: [inputs])
            graph.node("IsNaN", [current], "missing")
            graph.node("Where", ["missing", "fill", current], "filled")
            current = "filled"
        }
        if let standardization = model.standardization {
            graph.initializer("standardize.mean", standardization.mean, shape: [inputs])
            graph.initializer("standardize.std", standardization.deviation, shape: [inputs])
            graph.node("Sub", [current, "standardize.mean"], "centered")
            graph.node("Div", ["centered", "standardize.std"], "standardized")
            current = "standardized"
        }
        let layers = model.layerSizes.count - 1
        let last = layers - 1
        for layer in 0..<layers {
            let (fanIn, fanOut) = (model.layerSizes[layer], model.layerSizes[layer + 1])
            let weight = "layers.\(layer).weight", bias = "layers.\(layer).bias"
            graph.initializer(weight, Array(try model.weights(layer: layer + 1)), shape: [fanOut, fanIn])
            graph.initializer(bias, Array(try model.bias(layer: layer + 1)), shape: [fanOut])
            let z = layer < last ? "z\(layer)" : lastLayerName(loss: checkpoint.loss, standardizedTargets: model.targetStandardization != nil)
            graph.node("Gemm", [current, weight, bias], z, attributes: [.int("transB", 1)])
            current = layer < last ? graph.activation(model.activation, of: z, into: "a\(layer)") : z
        }
        switch checkpoint.loss {
        case .crossEntropy:
            graph.node("Softmax", [current], "probabilities", attributes: [.int("axis", 1)])
            graph.node("ArgMax", [current], "class", attributes: [.int("axis", 1), .int("keepdims", 0), .int("select_last_index", 0)])
        case .binaryCrossEntropy:
            graph.node("Sigmoid", [current], "probabilities")
        case .meanSquaredError:
            if let targets = model.targetStandardization {
                graph.initializer("standardize.target.std", targets.deviation, shape: [targets.features])
                graph.initializer("standardize.target.mean", targets.mean, shape: [targets.features])
                graph.node("Mul", [current, "standardize.target.std"], "scaled")
                graph.node("Add", ["scaled", "standardize.target.mean"], "prediction")
            }
        case nil:
            break
        }
        let outputs = model.layerSizes[layers]
        let inputType = ProtoWriter.tensorType(element: ProtoWriter.float, dimensions: [.named("batch"), .size(inputs)])
        var metadata: [(String, String)] = []
        func jsonList(_ names: [String]) -> String { JSONValue.array(names.map { .string($0) }).serialized }
        if let names = inputNames(checkpoint) { metadata.append(("inputs", jsonList(names))) }
        if let classes = checkpoint.classNames { metadata.append(("classes", jsonList(classes))) }
        if let target = checkpoint.targetName { metadata.append(("target", target)) }
        if let targets = checkpoint.targetNames, targets.count > 1 { metadata.append(("targets", jsonList(targets))) }
        if let loss = checkpoint.loss { metadata.append(("loss", loss.rawValue)) }
        metadata.append(("activation", model.activation.description))
        let layerList = model.layerSizes.map(String.init).joined(separator: ",")
        metadata.append(("layers", layerList))

        var graphBytes = ProtoWriter()
        for node in graph.nodes { graphBytes.message(1, node) }
        graphBytes.string(2, "mlpkit")
        for tensor in graph.initializers { graphBytes.message(5, tensor) }
        graphBytes.message(11, ProtoWriter.valueInfo("input", type: inputType))
        for name in outputNames(loss: checkpoint.loss) {
            let type = name == "class"
                ? ProtoWriter.tensorType(element: ProtoWriter.int64, dimensions: [.named("batch")])
                : ProtoWriter.tensorType(element: ProtoWriter.float, dimensions: [.named("batch"), .size(outputs)])
            graphBytes.message(12, ProtoWriter.valueInfo(name, type: type))
        }

        var file = ProtoWriter()
        file.varint(1, UInt64(irVersion))
        file.string(2, "MLPKit")
        file.string(6, "An MLPKit multi-layer perceptron, layers \(layerList): rows of \(inputs) float32 inputs "
            + "('input') to \(outputNames(loss: checkpoint.loss).joined(separator: ", ")).")
        file.message(7, graphBytes)
        var opset = ProtoWriter()
        opset.string(1, "")
        opset.varint(2, UInt64(Self.opset))
        file.message(8, opset)
        for (key, value) in metadata {
            var entry = ProtoWriter()
            entry.string(1, key)
            entry.string(2, value)
            file.message(14, entry)
        }
        return file.bytes
    }
}

/// The nodes and initializers of a graph under construction, each already encoded.
private struct GraphBuilder {
    var nodes: [ProtoWriter] = []
    var initializers: [ProtoWriter] = []
    /// Scalar constants already added, by value.
    private var constants: [UInt32: String] = [:]

    enum Attribute {
        case int(String, Int)
        case float(String, Float)
    }

    mutating func node(_ operation: String, _ inputs: [String], _ output: String, attributes: [Attribute] = []) {
        var node = ProtoWriter()
        for input in inputs { node.string(1, input) }
        node.string(2, output)
        node.string(3, "\(operation.lowercased())_\(nodes.count)")
        node.string(4, operation)
        for attribute in attributes {
            var encoded = ProtoWriter()
            switch attribute {
            case let .int(name, value):
                encoded.string(1, name)
                encoded.varint(3, UInt64(bitPattern: Int64(value)))
                encoded.varint(20, 2)  // INT
            case let .float(name, value):
                encoded.string(1, name)
                encoded.float(2, value)
                encoded.varint(20, 1)  // FLOAT
            }
            node.message(5, encoded)
        }
        nodes.append(node)
    }

    mutating func initializer(_ name: String, _ values: [Float], shape: [Int]) {
        var tensor = ProtoWriter()
        for dimension in shape { tensor.varint(1, UInt64(dimension)) }
        tensor.varint(2, UInt64(ProtoWriter.float))
        tensor.string(8, name)
        var raw: [UInt8] = []
        raw.reserveCapacity(values.count * 4)
        for value in values {
            let bits = value.bitPattern
            raw += [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                    UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24)]
        }
        tensor.bytes(9, raw)
        initializers.append(tensor)
    }

    /// The name of a scalar initializer holding `value` (added once).
    mutating func constant(_ value: Float) -> String {
        if let name = constants[value.bitPattern] { return name }
        let name = "constant.\(constants.count)"
        initializer(name, [value], shape: [])
        constants[value.bitPattern] = name
        return name
    }

    /// Nodes applying `activation` to `input`; returns the output's name (`output`).
    mutating func activation(_ activation: ActivationFunction, of input: String, into output: String) -> String {
        switch activation {
        case .relu: node("Relu", [input], output)
        case .leakyReLU(let slope): node("LeakyRelu", [input], output, attributes: [.float("alpha", slope)])
        case .tanh: node("Tanh", [input], output)
        case .sigmoid: node("Sigmoid", [input], output)
        case .gelu:
            // 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))
            let p = output + ".gelu"
            node("Mul", [input, input], p + ".square")
            node("Mul", [p + ".square", input], p + ".cube")
            node("Mul", [constant(0.044715), p + ".cube"], p + ".cubic")
            node("Add", [input, p + ".cubic"], p + ".inner")
            node("Mul", [constant(Float((2 / Double.pi).squareRoot())), p + ".inner"], p + ".scaled")
            node("Tanh", [p + ".scaled"], p + ".tanh")
            node("Add", [constant(1), p + ".tanh"], p + ".factor")
            node("Mul", [constant(0.5), input], p + ".half")
            node("Mul", [p + ".half", p + ".factor"], output)
        }
        return output
    }
}

/// Protocol Buffers' wire format, as much of it as an ONNX model needs: varints (wire type 0),
/// fixed 32-bit floats (5), and length-delimited strings, bytes and messages (2).
private struct ProtoWriter {
    static let float = 1, int64 = 7

    var bytes: [UInt8] = []

    enum Dimension {
        case size(Int)
        case named(String)
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) {
        appendVarint(UInt64(field) << 3 | wireType)
    }

    private mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        key(field, 0)
        appendVarint(value)
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        let bits = value.bitPattern
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        appendVarint(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ value: ProtoWriter) { bytes(field, value.bytes) }

    /// A TypeProto of a tensor of `element` with `dimensions`.
    static func tensorType(element: Int, dimensions: [Dimension]) -> ProtoWriter {
        var shape = ProtoWriter()
        for dimension in dimensions {
            var encoded = ProtoWriter()
            switch dimension {
            case .size(let size): encoded.varint(1, UInt64(size))
            case .named(let name): encoded.string(2, name)
            }
            shape.message(1, encoded)
        }
        var tensor = ProtoWriter()
        tensor.varint(1, UInt64(element))
        tensor.message(2, shape)
        var type = ProtoWriter()
        type.message(1, tensor)
        return type
    }

    /// A ValueInfoProto: a graph input's or output's name and type.
    static func valueInfo(_ name: String, type: ProtoWriter) -> ProtoWriter {
        var info = ProtoWriter()
        info.string(1, name)
        info.message(2, type)
        return info
    }
}

private extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
