/// Which rows each training step uses: a pure function of the step number, so a run resumed
/// from a checkpoint at step t continues with exactly the batches an uninterrupted run uses.
///
/// Epochs are `ceil(rows / batchSize)` steps. In order, batches are consecutive rows and the
/// last batch of an epoch has the remaining rows; shuffled, each epoch draws its own
/// permutation from (seed, epoch).
public struct BatchSchedule: Sendable, Equatable {
    public let rows: Int
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64

    public init(rows: Int, batchSize: Int, shuffle: Bool, seed: UInt64) throws {
        guard rows >= 1 else { throw ModelError.dataShape("the training data has no rows") }
        // a data set's own limit; it also bounds `order(epoch:)`'s array and the steps per epoch
        guard rows <= Dataset.maximumRows else {
            throw ModelError.dataShape("\(rows) rows is more than the \(Dataset.maximumRows) a data set may have")
        }
        guard batchSize >= 1 else { throw ModelError.invalidHyperparameter("batch size must be at least 1, got \(batchSize)") }
        self.rows = rows
        self.batchSize = min(batchSize, rows)
        self.shuffle = shuffle
        self.seed = seed
    }

    /// Steps in one pass over the data.
    public var stepsPerEpoch: Int { (rows - 1) / batchSize + 1 }

    /// The batch of 0-based step `index` (Adam's t − 1): its epoch, and the range of positions
    /// in that epoch's row order.
    public func batch(step index: Int) -> (epoch: Int, positions: Range<Int>) {
        let epoch = index / stepsPerEpoch
        let start = (index % stepsPerEpoch) * batchSize
        return (epoch, start..<min(start + batchSize, rows))
    }

    /// The row order of `epoch`: a seeded permutation, or 0..<rows in order.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<rows) }
        var generator = SeededGenerator(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
        return generator.permutation(rows)
    }
}
