import ArgumentParser
import MLPKit

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train the seed's network on the bundled digits data and print the held-out test accuracy.",
        discussion: """
            The 1,797 8×8 handwritten digits (UCI, CC BY 4.0) ship inside MLPKit. Pixels are scaled to \
            0…1, a seeded 20% of the rows is held out for testing, and the network [64, 256, 128, 10] is \
            trained with softmax cross-entropy and Adam.
            """)

    @Option(parsing: .unconditional, help: "Passes over the training rows.")
    var epochs: Int = 30

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Rows per step.")
    var batchSize: Int = 64

    @Option(parsing: .unconditional, help: "Seeds the initialisation, shuffling and the test split.")
    var seed: UInt64 = 0

    @Option(help: "auto, cpu, opencl or cuda.")
    var device: DeviceChoice = .auto

    func validate() throws {
        try require(epochs >= 1, "--epochs must be at least 1, got \(epochs)")
        try require(batchSize >= 1, "--batch-size must be at least 1, got \(batchSize)")
    }

    func run() throws {
        let start = Clock.now
        let table = try CSVFile.decode(Array(BundledData.digitsCSV.utf8), name: "digits.csv", hasHeader: true)
        let matrix = table.matrix
        let features = matrix.columns - 1
        var inputs: [Float] = [], labels: [Float] = []
        for row in 0..<matrix.rows {
            let values = matrix.values[(row * matrix.columns)..<((row + 1) * matrix.columns)]
            inputs += values.prefix(features).map { $0 / 16 }
            labels.append(values.last ?? 0)
        }
        let dataset = try Dataset(inputs: inputs, features: features, targets: labels, encoding: .classIndices, targetWidth: 1)
        let (training, test) = try dataset.split(validationFraction: 0.2, seed: seed)
        let model = try MLP(layerSizes: [features, 256, 128, 10], loss: .crossEntropy, seed: seed)
        Terminal.writeError("digits: \(training.rows) training rows, \(test.rows) test rows; layers 64,256,128,10")
        let task = TrainTask(
            model: model, optimizer: nil, hyperparameters: AdamHyperparameters(), training: training, validation: test,
            configuration: TrainingConfiguration(batchSize: batchSize, length: .epochs(epochs), shuffle: true, seed: seed),
            wantsTrainingAccuracy: false, quiet: false)
        let result = try device.run(task)
        let accuracy = result.history.last?.point.validationAccuracy ?? 0
        Terminal.writeError("trained \(Format.counted(result.stepsTaken, "step")) in \(Format.fixed(Clock.seconds(since: start), 2)) s on \(result.deviceSummary)")
        print("accuracy: \(Format.fixed(accuracy, 4))")
    }
}
