extension KernelSource {
    /// The fused loss gradients: one thread per row writes the row's gradient (already divided
    /// by `rows`) and its loss into `rowLoss[i]`; `sum_reduce` then totals the rows.
    ///
    /// Every loss kernel takes the same arguments: the output weights (`weighted`, `weights`: for
    /// cross-entropy each class's weight, for binary cross-entropy each label's positive weight,
    /// unused by MSE) and the row weights (`rowWeighted`, `rowWeights`: one per row of the
    /// batch, `train --weight-column`) between the targets and the gradient. A weighted row's loss
    /// and gradient are its unweighted ones times its weight (its class's times its own); with both
    /// flags off nothing is read and every bit is the unweighted kernel's.
    ///
    /// Targets are dense rows or one float per row holding a class index (one-hot implied). For
    /// dense cross-entropy targets the gradient is (Σ_j y_j · softmax − y)/rows, the exact gradient
    /// of −Σ y·log softmax, which is (softmax − y)/rows for probability rows. A class index outside
    /// [0, columns) makes the row's cross-entropy loss NaN (as on the CPU backend). Binary
    /// cross-entropy is computed from the logits, stably, as on the CPU backend (`mlp_sigmoid` is
    /// in `activation`, which precedes this text). The gradient may overwrite the output in place:
    /// each thread reads its row before writing it.
    public static let loss: String = """
    /* One output's MSE gradient (d·scale, into *g) and loss term ½d², d = z − y (loss_mse, loss_wide). */
    DEVICE_INLINE float mse_element(const float z, const float target, const float scale, GLOBAL float* g)
    {
        const float d = z - target;
        *g = d * scale;
        return 0.5f * d * d;
    }

    /* Softmax cross-entropy by log-sum-exp: rowLoss[i] = −w·Σ_j y·log softmax(z), grad = w·(Σy·softmax(z) − y)/rows,
       with w the row's class weight (weights[label], or Σ_j weights[j]·y_j for dense rows) when `weighted`,
       times its row weight rowWeights[i] when `rowWeighted`; 1 without either. */
    KERNEL_ANY void loss_softmax_cross_entropy(const int rows, const int columns, const int targetKind,
                                               const GLOBAL float* z, const int zOffset,
                                               const GLOBAL float* y, const int yOffset,
                                               const int weighted, const GLOBAL float* weights, const int weightsOffset,
                                               const int rowWeighted, const GLOBAL float* rowWeights, const int rowWeightsOffset,
                                               GLOBAL float* grad, const int gradOffset,
                                               GLOBAL float* rowLoss)
    {
        const float unit = 1.0f / (float)rows;
        const int anyWeight = weighted || rowWeighted;
        for (int i = GLOBAL_ID_X; i < rows; i += GLOBAL_SIZE_X) {
            const float r = rowWeighted ? rowWeights[rowWeightsOffset + i] : 1.0f;
            const GLOBAL float* zr = z + zOffset + i * columns;
            const GLOBAL float* yr = y + yOffset + i * columns;
            GLOBAL float* gr = grad + gradOffset + i * columns;
            float largest = zr[0];
            for (int j = 1; j < columns; ++j) {
                largest = fmaxf(largest, zr[j]);
            }
            float total = 0.0f;
            for (int j = 0; j < columns; ++j) {
                total += expf(zr[j] - largest);
            }
            const float logSumExp = largest + logf(total);
            if (targetKind == TARGET_CLASS_INDICES) {
                const int label = class_label(y[yOffset + i], columns);
                const float w = (weighted && label >= 0 ? weights[weightsOffset + label] : 1.0f) * r;
                const float scale = anyWeight ? unit * w : unit;
                rowLoss[i] = label >= 0 ? (anyWeight ? w * (logSumExp - zr[label]) : logSumExp - zr[label]) : NAN_F;
                for (int j = 0; j < columns; ++j) {
                    gr[j] = (expf(zr[j] - logSumExp) - (j == label ? 1.0f : 0.0f)) * scale;
                }
            } else {
                float targetSum = 0.0f;
                float loss = 0.0f;
                float w = 0.0f;
                for (int j = 0; j < columns; ++j) {
                    targetSum += yr[j];
                    loss += yr[j] * (logSumExp - zr[j]);
                    if (weighted) {
                        w += weights[weightsOffset + j] * yr[j];
                    }
                }
                w = (weighted ? w : 1.0f) * r;
                const float scale = anyWeight ? unit * w : unit;
                for (int j = 0; j < columns; ++j) {
                    gr[j] = (targetSum * expf(zr[j] - logSumExp) - yr[j]) * scale;
                }
                rowLoss[i] = anyWeight ? w * loss : loss;
            }
        }
    }

    FP_CONTRACT_OFF
    /* One output's binary cross-entropy gradient ((σ(z) − y)·scale, into *g) and loss term
       max(z, 0) − z·y + log1p(e^−|z|), stable from the logit (loss_binary_cross_entropy, loss_wide). */
    DEVICE_INLINE float bce_element(const float logit, const float target, const float scale, GLOBAL float* g)
    {
        *g = (mlp_sigmoid(logit) - target) * scale;
        return (0.0f >= logit ? 0.0f : logit) - MUL_RN(logit, target) + log1pf(expf(-fabsf(logit)));
    }

    /* The same with the positive term weighed by p (torch's BCEWithLogitsLoss pos_weight):
       −[p·y·log σ(z) + (1 − y)·log(1 − σ(z))] = (1 − y)·z + l·(log1p(e^−|z|) + max(−z, 0)),
       l = 1 + (p − 1)·y; gradient (σ(z)·l − p·y)·scale. */
    DEVICE_INLINE float bce_weighted_element(const float logit, const float target, const float p, const float scale,
                                             GLOBAL float* g)
    {
        const float l = 1.0f + MUL_RN(p - 1.0f, target);
        *g = (MUL_RN(mlp_sigmoid(logit), l) - MUL_RN(p, target)) * scale;
        return MUL_RN(1.0f - target, logit) + MUL_RN(l, log1pf(expf(-fabsf(logit))) + (0.0f >= logit ? -logit : 0.0f));
    }

    /* One thread per row for a loss that is a sum of per-output terms (MSE or binary
       cross-entropy, `loss` as LOSS_…): grad = the terms' gradients, rowLoss[i] = Σ_j the terms;
       y dense, or one-hot from a class index (NaN for a row whose index is no class); both times
       the row's weight rowWeights[i] when `rowWeighted`. Binary cross-entropy with `weighted`
       weighs output j's positive term by weights[j] (pos_weight). */
    DEVICE_INLINE void elementwise_loss_rows(const int loss, const int rows, const int columns, const int targetKind,
                                             const GLOBAL float* z, const int zOffset,
                                             const GLOBAL float* y, const int yOffset,
                                             const int weighted, const GLOBAL float* weights, const int weightsOffset,
                                             const int rowWeighted, const GLOBAL float* rowWeights, const int rowWeightsOffset,
                                             GLOBAL float* grad, const int gradOffset,
                                             GLOBAL float* rowLoss)
    {
        const float unit = 1.0f / (float)rows;
        for (int i = GLOBAL_ID_X; i < rows; i += GLOBAL_SIZE_X) {
            const float r = rowWeighted ? rowWeights[rowWeightsOffset + i] : 1.0f;
            const float scale = rowWeighted ? unit * r : unit;
            const GLOBAL float* zr = z + zOffset + i * columns;
            GLOBAL float* gr = grad + gradOffset + i * columns;
            const int label = targetKind == TARGET_CLASS_INDICES ? class_label(y[yOffset + i], columns) : -1;
            float sum = 0.0f;
            for (int j = 0; j < columns; ++j) {
                const float target = targetKind == TARGET_DENSE ? y[yOffset + i * columns + j]
                                                               : (j == label ? 1.0f : 0.0f);
                sum += loss == LOSS_MSE ? mse_element(zr[j], target, scale, gr + j)
                       : weighted       ? bce_weighted_element(zr[j], target, weights[weightsOffset + j], scale, gr + j)
                                        : bce_element(zr[j], target, scale, gr + j);
            }
            rowLoss[i] = (targetKind == TARGET_DENSE || label >= 0) ? (rowWeighted ? r * sum : sum) : NAN_F;
        }
    }

    /* Mean squared error: grad = (z − y)/rows, rowLoss[i] = Σ_j ½(z − y)² (`weighted` is 0). */
    KERNEL_ANY void loss_mse(const int rows, const int columns, const int targetKind,
                             const GLOBAL float* z, const int zOffset,
                             const GLOBAL float* y, const int yOffset,
                             const int weighted, const GLOBAL float* weights, const int weightsOffset,
                             const int rowWeighted, const GLOBAL float* rowWeights, const int rowWeightsOffset,
                             GLOBAL float* grad, const int gradOffset,
                             GLOBAL float* rowLoss)
    {
        elementwise_loss_rows(LOSS_MSE, rows, columns, targetKind, z, zOffset, y, yOffset, weighted, weights, weightsOffset,
                              rowWeighted, rowWeights, rowWeightsOffset, grad, gradOffset, rowLoss);
    }

    /* Binary cross-entropy from the logits (a sigmoid per output): grad = (σ(z) − y)/rows,
       rowLoss[i] = Σ_j max(z, 0) − z·y + log1p(exp(−|z|)); with `weighted`, output j's positive term
       weighed by weights[j] (pos_weight, bce_weighted_element). */
    KERNEL_ANY void loss_binary_cross_entropy(const int rows, const int columns, const int targetKind,
                                              const GLOBAL float* z, const int zOffset,
                                              const GLOBAL float* y, const int yOffset,
                                              const int weighted, const GLOBAL float* weights, const int weightsOffset,
                                              const int rowWeighted, const GLOBAL float* rowWeights, const int rowWeightsOffset,
                                              GLOBAL float* grad, const int gradOffset,
                                              GLOBAL float* rowLoss)
    {
        elementwise_loss_rows(LOSS_BINARY_CROSS_ENTROPY, rows, columns, targetKind, z, zOffset, y, yOffset,
                              weighted, weights, weightsOffset, rowWeighted, rowWeights, rowWeightsOffset, grad, gradOffset,
                              rowLoss);
    }
    FP_CONTRACT_DEFAULT

    """
}
