import ArgumentParser
import MLPKit

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "The seed's loss over every row of a data set and, for classification, the accuracy.")

    @Option(help: ArgumentHelp("The checkpoint to evaluate.", valueName: "checkpoint"))
    var model: String

    @OptionGroup var data: DataOptions

    @OptionGroup var inference: InferenceOptions

    @Flag(help: "Print {\"loss\": …, \"accuracy\": …, \"rows\": …}.")
    var json = false

    func run() throws {
        let checkpoint = try Checkpoint.load(from: model)
        let network = try inference.network(from: checkpoint, path: model)
        let loaded = try data.load(columnsOf: checkpoint)
        let inputs = loaded.inputs
        guard let targets = loaded.targets else { throw CommandError("no targets") }
        // text labels need the model's own class names: sorting them would only guess its classes' order
        if loaded.classNames != nil, checkpoint.classNames == nil {
            throw CommandError("\(loaded.targetSource) holds text labels, but \(model) records no class names (it was trained on numbered "
                + "classes): give the labels as their numbers 0…\(network.layout.outputs - 1)")
        }
        try checkInputs(inputs, fit: network)
        let (dataset, _) = try DataLoader.dataset(inputs: inputs, targets: targets, loss: network.loss,
                                                  outputs: network.layout.outputs)
        let result = try inference.device.run(EvalTask(model: network, dataset: dataset, batchSize: inference.batchSize))
        guard result.loss.isFinite else {
            throw CommandError("the loss is \(describeNonFinite(result.loss)): the outputs or their errors overflow Float32 "
                + "(inputs or targets too large for this model?)")
        }
        if json {
            var object: [(String, JSONValue)] = [("loss", .number(result.loss))]
            object.append(("accuracy", result.accuracy.map { .number($0) } ?? .null))
            object.append(("rows", .number(Double(dataset.rows))))
            print(JSONValue.object(object).serialized)
        } else {
            print("loss: \(Format.fixed(result.loss, 6))")
            if let accuracy = result.accuracy { print("accuracy: \(Format.fixed(accuracy, 4))") }
            print("rows: \(dataset.rows)")
        }
    }
}

/// Throws unless the data's feature count matches the model's inputs.
func checkInputs(_ inputs: DataMatrix, fit model: MLP) throws {
    guard inputs.columns == model.layout.inputs else {
        throw CommandError("the model takes \(model.layout.inputs) inputs but the data has \(inputs.columns) features")
    }
}

struct EvalTask: BackendTask {
    let model: MLP
    let dataset: Dataset
    let batchSize: Int

    func run<B: Backend>(on backend: B) throws -> (loss: Double, accuracy: Double?) {
        let session = try TrainingSession(model: model, backend: backend, batchCapacity: min(batchSize, dataset.rows))
        return try session.evaluate(try session.upload(dataset))
    }
}
