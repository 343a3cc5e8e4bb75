import ArgumentParser
import MLPKit
#if canImport(Glibc)
import Glibc
#endif

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predictions for every row: values (regression), the class and class probabilities, or label probabilities.",
        discussion: """
            Regression writes one column per output. Classification writes the predicted class in the \
            first column, then one probability per class (CSV header: class,p0,p1,…; for a model trained on \
            text labels, the class by name and the header class,p_NAME,…; .npy keeps the index). Binary \
            cross-entropy writes σ(z), the probability of each label being 1 (CSV header: p0,p1,…, or p_NAME \
            for named targets). A checkpoint with a standardisation applies it to the inputs first.
            """)

    @Option(help: ArgumentHelp("The checkpoint to run.", valueName: "checkpoint"))
    var model: String

    @OptionGroup var data: DataOptions

    @Option(help: ArgumentHelp("Where to write the predictions: .npy or .csv; - writes CSV to standard output.", valueName: "file"))
    var out: String

    @Option(help: ArgumentHelp("Columns of --data to copy into a CSV output before the predictions, comma-separated (an id; by number with --no-header).",
                               valueName: "columns"))
    var keep: String?

    @OptionGroup var inference: InferenceOptions

    func validate() throws {
        let lowercased = out == "-" ? "-.csv" : out.lowercased()
        try require(lowercased.hasSuffix(".npy") || lowercased.hasSuffix(".csv"), "--out must end in .npy or .csv (or be - for standard output), got \(out)")
        try require(data.y == nil, "predict takes inputs only: drop --y")
        if keep != nil {
            try require(data.data != nil, "--keep copies columns of --data")
            try require(lowercased.hasSuffix(".csv"), "--keep copies columns of text into a .csv output, not \(out)")
        }
    }

    func run() throws {
        try OutputPaths(outputs: [("--out", out)], inputs: data.files + [("--model", model)]).check()
        let checkpoint = try Checkpoint.load(from: model)
        // a network saved without its loss (from PyTorch, say) runs as regression: its raw outputs
        let network = try inference.network(from: checkpoint, path: model, fallback: .meanSquaredError)
        // the columns to copy through, read as written (ids may be text, empty, anything)
        let keptNames = try keep.map { try DataOptions.columnList($0, flag: "--keep", byNumber: data.noHeader) } ?? []
        // read with the inputs where the model names its input columns and a kept one is none of
        // them (an id), else from the file again (a kept input, or columns taken by position)
        let named = data.noHeader ? [] : checkpoint.featureNames.map { inputs in
            keptNames.filter { !inputs.contains($0) && !(checkpoint.targetNames ?? []).contains($0) }
        } ?? []
        let loaded = try data.load(requireTargets: false, columnsOf: checkpoint, rawColumns: named)
        let reread = keptNames.filter { loaded.rawColumns[$0] == nil }
        let again = reread.isEmpty ? []
            : try data.data.map { try DataLoader.readTextColumns(path: $0, columns: reread, hasHeader: !data.noHeader) } ?? []
        let columns = loaded.rawColumns.merging(zip(reread, again)) { first, _ in first }
        let kept = keptNames.map { columns[$0] ?? [] }
        let inputs = loaded.inputs
        try checkInputs(inputs, fit: network)
        guard inputs.values.allSatisfy(\.isFinite) else { throw CommandError("the inputs contain NaN or infinity") }
        let outputs = try inference.device.run(PredictTask(model: network, inputs: inputs.values, batchSize: inference.batchSize))
        if let index = outputs.firstIndex(where: { !$0.isFinite }) {
            throw CommandError("the model's outputs overflow to \(describeNonFinite(outputs[index])) on row \(index / network.layout.outputs + 1) "
                + "(inputs too large for this model?); did not write \(out)")
        }
        let classes = network.layout.outputs
        var header: [String]
        var matrix: DataMatrix
        // a classifier trained on text labels writes its classes by name in a CSV
        var labels: [String]?
        // several named targets (one per output) name the columns
        let targetNames = checkpoint.targetNames.flatMap { $0.count == classes && classes > 1 ? $0 : nil }
        if network.loss == .binaryCrossEntropy {
            // one probability σ(z) per label, headed p_NAME for named targets
            if let names = targetNames {
                header = names.map { "p_\($0)" }
            } else {
                header = (0..<classes).map { "p\($0)" }
            }
            matrix = DataMatrix(rows: inputs.rows, columns: classes, values: outputs.map(ActivationFunction.sigmoid),
                                isIntegral: false)
        } else if network.loss.isClassification {
            // the class, then softmax probabilities
            header = ["class"] + (0..<classes).map { "p\($0)" }
            var values: [Float] = []
            values.reserveCapacity(inputs.rows * (classes + 1))
            for row in 0..<inputs.rows {
                let logits = outputs[(row * classes)..<((row + 1) * classes)]
                let largest = logits.max() ?? 0
                let exponentials = logits.map { expf($0 - largest) }
                let sum = exponentials.reduce(0, +)
                let best = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) } ?? logits.startIndex
                values.append(Float(best - logits.startIndex))
                values.append(contentsOf: exponentials.map { $0 / sum })
            }
            matrix = DataMatrix(rows: inputs.rows, columns: classes + 1, values: values, isIntegral: false)
            if let names = checkpoint.classNames, names.count == classes, !out.lowercased().hasSuffix(".npy") {
                // the class by name, then the probabilities headed p_NAME
                header = ["class"] + names.map { "p_\($0)" }
                labels = (0..<inputs.rows).map { names[Int(values[$0 * (classes + 1)])] }
                var probabilities: [Float] = []
                probabilities.reserveCapacity(inputs.rows * classes)
                for row in 0..<inputs.rows {
                    let start = row * (classes + 1) + 1
                    probabilities += values[start..<(start + classes)]
                }
                matrix = DataMatrix(rows: inputs.rows, columns: classes, values: probabilities, isIntegral: false)
            }
        } else {
            // several named targets: their names; else prediction, or y0, y1, …
            if let names = targetNames {
                header = names
            } else {
                header = classes == 1 ? ["prediction"] : (0..<classes).map { "y\($0)" }
            }
            matrix = DataMatrix(rows: inputs.rows, columns: classes, values: outputs, isIntegral: false)
        }
        let bytes = out.lowercased().hasSuffix(".npy")
            ? NumpyFile.encode(matrix)
            : Array(CSVFile.encode(header: keptNames + header, matrix: matrix, text: kept + (labels.map { [$0] } ?? [])).utf8)
        if out == "-" {
            try Terminal.writeOutput(bytes)
        } else {
            try FileIO.writeAtomically(bytes, to: out)
        }
        let raw = checkpoint.loss == nil && inference.loss == nil
        Terminal.writeError("wrote \(inputs.rows) predictions to \(out == "-" ? "standard output" : out)"
            + (raw ? " (\(model) records no loss: the raw outputs; --loss gives classes or probabilities)" : ""))
    }
}

struct PredictTask: BackendTask {
    let model: MLP
    let inputs: [Float]
    let batchSize: Int

    func run<B: Backend>(on backend: B) throws -> [Float] {
        let rows = inputs.count / model.layout.inputs
        let session = try TrainingSession(model: model, backend: backend, batchCapacity: max(1, min(batchSize, rows)))
        return try session.predict(inputs)
    }
}
