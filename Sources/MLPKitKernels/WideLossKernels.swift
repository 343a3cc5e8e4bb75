extension KernelSource {
    /// The loss gradients for wide output layers: one block of `REDUCE_THREADS` threads per row
    /// (grid-stride over rows), the threads striding over the row's columns, so reads and writes
    /// are coalesced and a 1,024-column row is not one thread's serial loop. Each element's
    /// gradient and loss term come from the same functions as in `loss` (`mse_element`,
    /// `bce_element`; one thread per row, used for narrow outputs); the row's loss is the block's
    /// sum in a fixed tree order (`block_sum`: deterministic).
    /// `loss` selects MSE (0), softmax cross-entropy (1) or binary cross-entropy (2), as
    /// `KernelLossKind`. The gradient may overwrite the output in place: an element is read and
    /// written by one thread, and the reads other threads share (z[0], the reductions) come
    /// before the barriers that precede the first write.
    public static let wideLoss: String = """
    FP_CONTRACT_OFF
    KERNEL(REDUCE_THREADS) void loss_wide(const int loss, const int rows, const int columns, const int targetKind,
                                          const GLOBAL float* z, const int zOffset,
                                          const GLOBAL float* y, const int yOffset,
                                          const int weighted, const GLOBAL float* weights, const int weightsOffset,
                                          const int rowWeighted, const GLOBAL float* rowWeights, const int rowWeightsOffset,
                                          GLOBAL float* grad, const int gradOffset,
                                          GLOBAL float* rowLoss)
    {
        SHARED float scratch[REDUCE_THREADS];
        const int tid = THREAD_X;
        const float unit = 1.0f / (float)rows;
        for (int i = BLOCK_X; i < rows; i += GRID_BLOCKS_X) {
            const float r = rowWeighted ? rowWeights[rowWeightsOffset + i] : 1.0f;
            const GLOBAL float* zr = z + zOffset + i * columns;
            const GLOBAL float* yr = y + yOffset + i * columns;
            GLOBAL float* gr = grad + gradOffset + i * columns;
            const int label = targetKind == TARGET_CLASS_INDICES ? class_label(y[yOffset + i], columns) : -1;
            if (loss == LOSS_CROSS_ENTROPY) {
                float largest = zr[0];
                for (int j = tid; j < columns; j += REDUCE_THREADS) {
                    largest = fmaxf(largest, zr[j]);
                }
                largest = block_max(scratch, largest);
                float total = 0.0f;
                for (int j = tid; j < columns; j += REDUCE_THREADS) {
                    total += expf(zr[j] - largest);
                }
                total = block_sum(scratch, total);
                const float logSumExp = largest + logf(total);
                float partial = 0.0f;
                float targetSum = 0.0f;
                float weightPartial = 0.0f;
                for (int j = tid; j < columns; j += REDUCE_THREADS) {
                    if (targetKind == TARGET_CLASS_INDICES) {
                        partial += j == label ? logSumExp - zr[j] : 0.0f;
                    } else {
                        targetSum += yr[j];
                        partial += yr[j] * (logSumExp - zr[j]);
                        if (weighted) {
                            weightPartial += weights[weightsOffset + j] * yr[j];
                        }
                    }
                }
                const float rowTotal = block_sum(scratch, partial);
                if (targetKind == TARGET_DENSE) {
                    targetSum = block_sum(scratch, targetSum);
                }
                /* the row's class weight (its label's, or Σ_j weights[j]·y_j for a dense row) times its row weight */
                float w = 1.0f;
                if (weighted) {
                    w = targetKind == TARGET_CLASS_INDICES ? (label >= 0 ? weights[weightsOffset + label] : 1.0f)
                                                           : block_sum(scratch, weightPartial);
                }
                w *= r;
                const int anyWeight = weighted || rowWeighted;
                const float rowScale = anyWeight ? unit * w : unit;
                for (int j = tid; j < columns; j += REDUCE_THREADS) {
                    if (targetKind == TARGET_CLASS_INDICES) {
                        gr[j] = (expf(zr[j] - logSumExp) - (j == label ? 1.0f : 0.0f)) * rowScale;
                    } else {
                        gr[j] = (targetSum * expf(zr[j] - logSumExp) - yr[j]) * rowScale;
                    }
                }
                if (tid == 0) {
                    rowLoss[i] = (targetKind == TARGET_DENSE || label >= 0) ? (anyWeight ? w * rowTotal : rowTotal) : NAN_F;
                }
            } else {
                const float scale = rowWeighted ? unit * r : unit;
                float partial = 0.0f;
                for (int j = tid; j < columns; j += REDUCE_THREADS) {
                    const float target = targetKind == TARGET_DENSE ? yr[j] : (j == label ? 1.0f : 0.0f);
                    partial += loss == LOSS_MSE ? mse_element(zr[j], target, scale, gr + j)
                               : weighted       ? bce_weighted_element(zr[j], target, weights[weightsOffset + j], scale, gr + j)
                                                : bce_element(zr[j], target, scale, gr + j);
                }
                const float rowTotal = block_sum(scratch, partial);
                if (tid == 0) {
                    rowLoss[i] = (targetKind == TARGET_DENSE || label >= 0) ? (rowWeighted ? r * rowTotal : rowTotal) : NAN_F;
                }
            }
            BARRIER();
        }
    }
    FP_CONTRACT_DEFAULT

    """
}
