/// Turns data files into matrices and matrices into a `Dataset` a model can train on.
public enum DataLoader {
    /// Why data could not be used.
    public enum LoadError: Error, CustomStringConvertible, Equatable {
        case unknownColumn(path: String, column: String, available: [String])
        case mismatch(String)

        public var description: String {
            switch self {
            case let .unknownColumn(path, column, available):
                let names = available.prefix(8).joined(separator: ", ") + (available.count > 8 ? ", …" : "")
                return "\(path) has no column named '\(column)' (columns: \(names))"
            case .mismatch(let reason):
                return reason
            }
        }
    }

    /// Reads a matrix from `.npy`, a `.csv` without a header, or an MNIST IDX file (recognised by
    /// its magic number, whatever its name).
    public static func readMatrix(path: String) throws -> DataMatrix {
        let lowercased = path.lowercased()
        if lowercased.hasSuffix(".npy") { return try NumpyFile.read(path: path) }
        if lowercased.hasSuffix(".csv") || lowercased.hasSuffix(".txt") {
            return try CSVFile.read(path: path, hasHeader: false).matrix
        }
        let bytes = try FileIO.read(path)
        if bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08, bytes[3] == 1 || bytes[3] == 3 {
            return try IDXFile.decode(bytes, name: path)
        }
        if bytes.starts(with: [0x93] + Array("NUMPY".utf8)) { return try NumpyFile.decode(bytes, name: path) }
        return try CSVFile.decode(bytes, name: path, hasHeader: false).matrix
    }

    /// Reads a CSV with a header row and splits off the column named `target` (when given and,
    /// unless `targetRequired`, when present): every other column is a feature.
    public static func readTable(path: String, target: String?, targetRequired: Bool = true)
        throws -> (features: DataMatrix, target: DataMatrix?, featureNames: [String])
    {
        let (headerOrNil, matrix) = try CSVFile.read(path: path, hasHeader: true)
        let header = headerOrNil ?? []
        guard let target else { return (matrix, nil, header) }
        guard let targetIndex = header.firstIndex(of: target) else {
            if targetRequired { throw LoadError.unknownColumn(path: path, column: target, available: header) }
            return (matrix, nil, header)
        }
        guard matrix.columns >= 2 else {
            throw LoadError.mismatch("\(path): the target '\(target)' is the only column; there are no features")
        }
        var features: [Float] = [], targets: [Float] = []
        features.reserveCapacity(matrix.rows * (matrix.columns - 1))
        targets.reserveCapacity(matrix.rows)
        for row in 0..<matrix.rows {
            let start = row * matrix.columns
            features.append(contentsOf: matrix.values[start..<(start + targetIndex)])
            targets.append(matrix.values[start + targetIndex])
            features.append(contentsOf: matrix.values[(start + targetIndex + 1)..<(start + matrix.columns)])
        }
        let targetMatrix = DataMatrix(rows: matrix.rows, columns: 1, values: targets,
                                      isIntegral: targets.allSatisfy { $0.rounded() == $0 })
        let featureMatrix = DataMatrix(rows: matrix.rows, columns: matrix.columns - 1, values: features,
                                       isIntegral: features.allSatisfy { $0.rounded() == $0 })
        var names = header
        names.remove(at: targetIndex)
        return (featureMatrix, targetMatrix, names)
    }

    /// The loss a target suggests: cross-entropy for one integer-valued column or integer
    /// one-hot rows, else MSE.
    public static func defaultLoss(for target: DataMatrix) -> Loss {
        if target.columns == 1 { return target.isIntegral && target.values.allSatisfy { $0 >= 0 } ? .crossEntropy : .meanSquaredError }
        return target.isIntegral && isOneHot(target) ? .crossEntropy : .meanSquaredError
    }

    static func isOneHot(_ target: DataMatrix) -> Bool {
        for row in 0..<target.rows {
            let values = target.values[(row * target.columns)..<((row + 1) * target.columns)]
            guard values.allSatisfy({ $0 == 0 || $0 == 1 }), values.reduce(0, +) == 1 else { return false }
        }
        return true
    }

    /// Pairs inputs with targets for `loss`: one integer column becomes class indices for
    /// cross-entropy, anything else dense rows (for binary cross-entropy, one 0/1 column or rows
    /// of 0/1 labels, one output each).
    /// - Parameters:
    ///   - outputs: the model's output count when known (from a checkpoint); else it comes
    ///     from the data (the largest label + 1, or the target's columns).
    /// - Returns: the data set and the number of outputs the model needs.
    public static func dataset(inputs: DataMatrix, targets: DataMatrix, loss: Loss, outputs: Int? = nil)
        throws -> (dataset: Dataset, outputs: Int)
    {
        guard inputs.rows == targets.rows else {
            throw LoadError.mismatch("the inputs have \(inputs.rows) rows but the targets have \(targets.rows)")
        }
        if loss == .crossEntropy, targets.columns == 1 {
            guard targets.values.allSatisfy({ $0 >= 0 && $0.rounded() == $0 }) else {
                throw LoadError.mismatch("cross-entropy needs class labels 0, 1, 2, … in the target column")
            }
            let classes = Int(targets.values.max() ?? 0) + 1
            if let outputs, classes > outputs {
                throw LoadError.mismatch("class label \(classes - 1) is outside the model's \(outputs) classes (0…\(outputs - 1))")
            }
            let count = outputs ?? max(classes, 2)
            let dataset = try Dataset(inputs: inputs.values, features: inputs.columns, targets: targets.values,
                                      encoding: .classIndices, targetWidth: 1)
            return (dataset, count)
        }
        if let outputs, targets.columns != outputs {
            throw LoadError.mismatch("the targets have \(targets.columns) columns but the model has \(outputs) outputs")
        }
        if loss == .crossEntropy {
            for row in 0..<targets.rows {
                let values = targets.values[(row * targets.columns)..<((row + 1) * targets.columns)]
                let sum = values.reduce(0, +)
                guard values.allSatisfy({ $0 >= 0 }), abs(sum - 1) < 1e-3 else {
                    throw LoadError.mismatch("target row \(row + 1) is not one-hot or a row of probabilities (it sums to \(sum))")
                }
            }
        }
        if loss == .binaryCrossEntropy, let bad = targets.values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw LoadError.mismatch("binary cross-entropy needs targets of 0 and 1 (or probabilities in [0, 1]); target row \(bad / targets.columns + 1), column \(bad % targets.columns + 1) is \(targets.values[bad])")
        }
        let dataset = try Dataset(inputs: inputs.values, features: inputs.columns, targets: targets.values,
                                  encoding: .dense, targetWidth: targets.columns)
        return (dataset, targets.columns)
    }
}
