import ArgumentParser
import MLPKit

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's network as an ONNX model (opset 17) for ONNX Runtime and other runtimes.",
        discussion: """
            The graph takes 'input', float32 rows of the model's inputs, and runs what mlp predict runs: the recorded \
            fills for NaN inputs (train --fill-missing), the standardisation, every layer and activation, then for \
            cross-entropy 'class' (int64), 'probabilities' and 'logits'; for binary cross-entropy 'probabilities' and \
            'logits'; for mse 'prediction' (in the targets' units); without a recorded loss 'output'. The model's \
            metadata names the inputs, classes and target.
            """)

    @Option(help: ArgumentHelp("The checkpoint to export.", valueName: "checkpoint"))
    var model: String

    @Option(help: ArgumentHelp("The ONNX file to write.", valueName: "file"))
    var out: String

    func run() throws {
        try OutputPaths(outputs: [("--out", out)], inputs: [("--model", model)]).check()
        let checkpoint = try Checkpoint.load(from: model)
        let bytes = try ONNXModel.encode(checkpoint)
        try FileIO.writeAtomically(bytes, to: out)
        let inputs = checkpoint.layerSizes[0]
        print("wrote \(out): ONNX opset \(ONNXModel.opset), input 'input' [batch, \(inputs)], outputs "
            + ONNXModel.outputNames(loss: checkpoint.loss).map { "'\($0)'" }.joined(separator: ", "))
    }
}
