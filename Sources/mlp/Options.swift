import ArgumentParser
import MLPKit

/// What `eval` and `predict` share besides the data: the loss for a checkpoint that does not
/// record one, the rows per forward pass, and the device.
struct InferenceOptions: ParsableArguments {
    @Option(help: "mse, cross-entropy or binary-cross-entropy, for a checkpoint that does not record its loss.")
    var loss: Loss?

    @Option(name: .customLong("batch-size"), help: "Rows per forward pass.")
    var batchSize: Int = 1024

    @Option(help: "auto (a CUDA GPU when one is usable, else the CPU), cpu, opencl or cuda.")
    var device: DeviceChoice = .auto

    func validate() throws {
        try require(batchSize >= 1, "--batch-size must be at least 1, got \(batchSize)")
    }

    /// The network of `checkpoint` (read from `path`) with its recorded loss, or `--loss` where it
    /// records none. `--loss` disagreeing with a recorded loss is an error, and so is no loss at
    /// all unless `fallback` is given.
    func network(from checkpoint: Checkpoint, path: String, fallback: Loss? = nil) throws -> MLP {
        if let recorded = checkpoint.loss, let loss, loss != recorded {
            throw ValidationError("--loss \(loss.rawValue) disagrees with \(path)'s loss \(recorded.rawValue)")
        }
        guard let chosen = loss ?? checkpoint.loss ?? fallback else {
            throw ValidationError("\(path) records no loss: pass --loss mse, cross-entropy or binary-cross-entropy")
        }
        return try checkpoint.model(defaultLoss: chosen)
    }
}

/// Where the data comes from: `--x FILE --y FILE`, or `--data FILE.csv --target COLUMN`.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Inputs: .npy, .csv without a header, or an MNIST IDX images file.", valueName: "file"))
    var x: String?

    @Option(help: ArgumentHelp("Targets: .npy, .csv without a header, or an MNIST IDX labels file.", valueName: "file"))
    var y: String?

    @Option(help: ArgumentHelp("A CSV with a header row; every column but --target is a feature.", valueName: "file"))
    var data: String?

    @Option(help: ArgumentHelp("The target column of --data, by name.", valueName: "column"))
    var target: String?

    /// Inputs and targets, read and checked.
    func load(requireTargets: Bool = true) throws -> (inputs: DataMatrix, targets: DataMatrix?) {
        if let data {
            guard x == nil, y == nil else { throw ValidationError("use either --data/--target or --x/--y, not both") }
            if requireTargets, target == nil { throw ValidationError("--data needs --target COLUMN naming the target column") }
            let table = try DataLoader.readTable(path: data, target: target, targetRequired: requireTargets)
            return (table.features, table.target)
        }
        guard let x else { throw ValidationError("no data: pass --x FILE --y FILE, or --data FILE.csv --target COLUMN") }
        if target != nil { throw ValidationError("--target goes with --data, not with --x") }
        let inputs = try DataLoader.readMatrix(path: x)
        guard let y else {
            if requireTargets { throw ValidationError("--x needs --y FILE with the targets") }
            return (inputs, nil)
        }
        let targets = try DataLoader.readMatrix(path: y)
        guard targets.rows == inputs.rows else {
            throw CommandError("\(x) has \(inputs.rows) rows but \(y) has \(targets.rows)")
        }
        return (inputs, targets)
    }
}

/// `--device auto|cpu|opencl|cuda`.
enum DeviceChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, cpu, opencl, cuda
}

extension Loss: ExpressibleByArgument {}

/// Checks a flag's value, throwing `ValidationError` naming the flag.
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw ValidationError(message()) }
}

/// Parses `--hidden 256,128` (an empty string for no hidden layer).
func parseHiddenSizes(_ text: String) throws -> [Int] {
    if text.trimmed.isEmpty { return [] }
    return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
        let trimmed = part.trimmed
        guard let size = Int(trimmed), size >= 1 else {
            throw ValidationError("--hidden takes positive sizes separated by commas, like 256,128; '\(trimmed)' is not one")
        }
        return size
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmed: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
