import ArgumentParser
import MLPKit

/// `train --weight-column COLUMN` (beside `--data`) and `--weights FILE` (beside `--x/--y`): one
/// weight per row, by which training scales each row's loss and gradient (`Dataset.weighted(by:)`).
extension TrainingFeatureOptions {
    /// Where the weights come from, as checked against the data flags.
    enum RowWeightSource: Equatable {
        case column(String)
        case file(String)
    }

    /// The run's weights: `--weight-column` or `--weights`, else for `--data` the column a resumed
    /// checkpoint records (`training.weight_column`); nil for none. A column must not be a target
    /// (`--target`'s, else `checkpoint`'s).
    func rowWeightSource(data: DataOptions, recorded: TrainingRecord, checkpoint: Checkpoint?) throws -> RowWeightSource? {
        if let source = try Self.rowWeightSource(weightColumn: weightColumn, weights: weights, data: data, checkpoint: checkpoint) {
            return source
        }
        if data.data != nil, let column = recorded.weightColumn { return .column(column) }
        if data.x != nil, let file = recorded.weightsFile {
            Terminal.writeError("note: the checkpoint was trained with --weights \(file); this run weighs every row 1 (--weights keeps them)")
        }
        return nil
    }

    /// `--weight-column` (beside `--data`, not a target: `--target`'s, else `checkpoint`'s) or
    /// `--weights` (beside `--x/--y`), as given to train or eval; nil for neither.
    static func rowWeightSource(weightColumn: String?, weights: String?, data: DataOptions, checkpoint: Checkpoint?) throws
        -> RowWeightSource?
    {
        if weightColumn != nil, weights != nil {
            throw ValidationError("give --weight-column (a column of --data) or --weights (a file beside --x/--y), not both")
        }
        if let weightColumn {
            guard let file = data.data else {
                throw ValidationError("--weight-column names a column of --data; beside --x/--y give --weights FILE")
            }
            let column = DataOptions.trimmingSpaces(weightColumn[...])
            if data.noHeader, (Int(column) ?? 0) < 1 {
                throw ValidationError("with --no-header, --weight-column is a column number from 1, got '\(weightColumn)'")
            }
            if try (data.targetColumns(in: file) ?? checkpoint?.targetNames ?? []).contains(column) {
                throw ValidationError("--weight-column \(DataOptions.label(column, numbered: data.noHeader)) is the target; "
                    + "weights are a column of their own")
            }
            return .column(column)
        }
        if let weights {
            guard data.x != nil else {
                throw ValidationError("--weights goes with --x/--y; beside --data name the column with --weight-column")
            }
            return .file(weights)
        }
        return nil
    }

    /// One weight per row of `loaded` (read from `data`): the weight column's cells, or the
    /// `--weights` file's single column, each a number ≥ 0 (train's and eval's).
    static func rowWeights(_ source: RowWeightSource, data: DataOptions, loaded: LoadedData) throws -> [Float] {
        switch source {
        case .column(let column):
            // the column's cells, read with the rest of --data (DataOptions.load(rawColumns:))
            guard let file = data.data, let cells = loaded.rawColumns[column] else {
                throw ValidationError("--weight-column \(column) was not read from --data")
            }
            let label = DataOptions.label(column, numbered: data.noHeader)
            return try cells.enumerated().map { row, cell in
                let text = DataOptions.trimmingSpaces(cell[...])
                if let weight = Float(text), weight.isFinite, weight >= 0 { return weight }
                // the column's place, for the message (the file read again, on this error path only)
                let position = (DataLoader.columnNames(path: file, hasHeader: !data.noHeader)?.firstIndex(of: column)).map { $0 + 1 }
                let line = loaded.inputs.origin?.line(ofRow: row) ?? row + 1
                let at = "\(DataLoader.displayName(file)), line \(line)" + (position.map { ", column \($0)" } ?? "")
                    + (data.noHeader ? "" : " (\(label))")
                throw CommandError("\(at): \(text.isEmpty ? "an empty weight" : "'\(Excerpt.escape(text))' is not a weight"); "
                    + "--weight-column takes numbers ≥ 0, one in every row")
            }
        case .file(let path):
            let matrix = try DataLoader.readMatrix(path: path)
            guard matrix.columns == 1 else {
                throw CommandError("--weights \(path) has \(matrix.columns) columns; it needs one weight per row, in one column")
            }
            guard matrix.rows == loaded.inputs.rows else {
                throw CommandError("--weights \(path) has \(Format.counted(matrix.rows, "row")) but the inputs have \(loaded.inputs.rows)")
            }
            if let bad = matrix.values.firstIndex(where: { !($0 >= 0) }) {
                throw CommandError("--weights \(path): row \(bad + 1)'s weight is \(matrix.values[bad]); weights are numbers ≥ 0")
            }
            return matrix.values
        }
    }

    /// `dataset` with `weights`, or the library's error as one line naming the flag.
    static func weighted(_ dataset: Dataset, by weights: [Float]?, source: RowWeightSource?) throws -> Dataset {
        do {
            return try dataset.weighted(by: weights)
        } catch let error as ModelError {
            let flag = switch source {
            case .column(let column)?: "--weight-column \(column)"
            case .file(let path)?: "--weights \(path)"
            case nil: "the row weights"
            }
            throw CommandError("\(flag): \(error)")
        }
    }
}
