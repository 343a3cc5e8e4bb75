extension KernelSource {
    /// The batch gather from a device-resident data set.
    public static let gather: String = """
    /* dst[i, :] = src[indices[i], :] for i < count (indices stored as floats); rows outside [0, sourceRows) give zeros. */
    KERNEL_ANY void gather_rows(const int count, const int width, const int sourceRows,
                                const GLOBAL float* RESTRICT src, const int srcOffset,
                                const GLOBAL float* RESTRICT indices, const int indicesOffset,
                                GLOBAL float* RESTRICT dst, const int dstOffset)
    {
        const int total = count * width;
        for (int e = GLOBAL_ID_X; e < total; e += GLOBAL_SIZE_X) {
            const int i = e / width;
            const int column = e - i * width;
            const int row = (int)indices[indicesOffset + i];
            dst[dstOffset + e] = (row >= 0 && row < sourceRows) ? src[srcOffset + (INT64)row * width + column] : 0.0f;
        }
    }

    """

    /// Adam over the whole flat parameter buffer, and the device-side step counter.
    public static let adam: String = """
    /* Adam and AdamW follow the CPU's order of operations and roundings: no FMA contraction
       (MUL_RN where a product meets a sum), so θ, m and v are the CPU backend's bits. */
    FP_CONTRACT_OFF

    /* 1 − βᵗ as −expm1(t·log1p(β − 1)) in NORM_FLOAT (Float64 where the device has it, as the
       CPU's 1 − pow(β, t)), rounded once. */
    DEVICE_INLINE float adam_correction(const int step, const float beta)
    {
        return (float)(-expm1((NORM_FLOAT)step * log1p((NORM_FLOAT)beta - (NORM_FLOAT)1)));
    }

    /* One parameter's Adam step (SEED §4): m, v updated in place, the new θ returned, from its
       gradient g and its θ (AdamW passes them scaled and decayed). */
    DEVICE_INLINE float adam_step(GLOBAL float* m, GLOBAL float* v, const float theta, const float g,
                                  const float learningRate, const float beta1, const float beta2, const float epsilon,
                                  const float correction1, const float correction2)
    {
        const float first = MUL_RN(beta1, *m) + MUL_RN(1.0f - beta1, g);
        const float second = MUL_RN(beta2, *v) + MUL_RN((1.0f - beta2) * g, g);
        *m = first;
        *v = second;
        const float firstHat = first / correction1;
        const float secondHat = second / correction2;
        return theta - learningRate * firstHat / (sqrtf(secondHat) + epsilon);
    }

    /* One Adam step over a flat buffer: moments m, v; bias corrections from t = step[0] in device memory. */
    KERNEL_ANY void adam_update(const int count,
                                GLOBAL float* RESTRICT theta, const int thetaOffset,
                                const GLOBAL float* RESTRICT g, const int gOffset,
                                GLOBAL float* RESTRICT m, const int mOffset,
                                GLOBAL float* RESTRICT v, const int vOffset,
                                const float learningRate, const float beta1, const float beta2, const float epsilon,
                                const GLOBAL int* RESTRICT step)
    {
        const float correction1 = adam_correction(step[0], beta1);
        const float correction2 = adam_correction(step[0], beta2);
        for (int e = GLOBAL_ID_X; e < count; e += GLOBAL_SIZE_X) {
            theta[thetaOffset + e] = adam_step(m + mOffset + e, v + vOffset + e, theta[thetaOffset + e], g[gOffset + e],
                                               learningRate, beta1, beta2, epsilon, correction1, correction2);
        }
    }
    FP_CONTRACT_DEFAULT

    /* step[0] += 1: advances Adam's t on the device, so a replayed step needs no host write. */
    KERNEL_ANY void advance_step(GLOBAL int* step)
    {
        if (GLOBAL_ID_X == 0) {
            step[0] += 1;
        }
    }

    """
}

extension KernelSource {
    /// AdamW's decoupled weight decay and gradient clipping by global norm, entirely on the device
    /// (a graphed step downloads nothing): `gradient_norm_partials` sums g² per block into the
    /// clip scratch buffer, `clip_scale` totals the blocks' sums in a fixed order in one block and
    /// stores min(1, c/(‖g‖ + 1e-6)) at scratch[0], and `adamw_update` reads it. The sums of
    /// squares are Float64 where the device has it (`NORM_FLOAT`), as on the CPU backend; the
    /// order of the sums depends only on the gradient count and the launch geometry, so a result
    /// is the same run to run.
    ///
    /// Scratch layout (floats): [0] the scale, [1] unused, then one `NORM_FLOAT` per block from
    /// float `CLIP_PARTIALS` (8-byte aligned for doubles).
    public static let adamW: String = """
    #define CLIP_PARTIALS 2
    /* No FMA contraction in AdamW's update (MUL_RN where a product meets a sum): the CPU's roundings. */
    FP_CONTRACT_OFF

    /* scratch's per-block sums: partials[BLOCK_X] = Σ g² over this block's share of the grid-stride loop. */
    KERNEL(REDUCE_THREADS) void gradient_norm_partials(const int count, const GLOBAL float* RESTRICT g, const int gOffset,
                                                       GLOBAL float* RESTRICT scratch)
    {
        SHARED NORM_FLOAT partial[REDUCE_THREADS];
        const int tid = THREAD_X;
        NORM_FLOAT sum = 0;
        for (int e = GLOBAL_ID_X; e < count; e += GLOBAL_SIZE_X) {
            const NORM_FLOAT x = (NORM_FLOAT)g[gOffset + e];
            sum += x * x;
        }
        const NORM_FLOAT total = block_sum_norm(partial, sum);
        if (tid == 0) {
            ((GLOBAL NORM_FLOAT*)(scratch + CLIP_PARTIALS))[BLOCK_X] = total;
        }
    }

    /* scratch[0] = min(1, clipNorm / (‖g‖ + 1e-6)) from `blocks` partial sums, totalled in a fixed order by one block; NaN when ‖g‖ is NaN. */
    KERNEL(REDUCE_THREADS) void clip_scale(const int blocks, const float clipNorm, GLOBAL float* RESTRICT scratch)
    {
        SHARED NORM_FLOAT partial[REDUCE_THREADS];
        const GLOBAL NORM_FLOAT* sums = (const GLOBAL NORM_FLOAT*)(scratch + CLIP_PARTIALS);
        const int tid = THREAD_X;
        NORM_FLOAT sum = 0;
        for (int i = tid; i < blocks; i += REDUCE_THREADS) {
            sum += sums[i];
        }
        const NORM_FLOAT total = block_sum_norm(partial, sum);
        if (tid == 0) {
            const NORM_FLOAT scale = (NORM_FLOAT)clipNorm / (sqrt(total) + (NORM_FLOAT)1e-6);
            scratch[0] = scale < (NORM_FLOAT)1 ? (float)scale : (scale != scale ? NAN_F : 1.0f);
        }
    }

    /* AdamW (Backend.adamWUpdate's order): g ← g·scale (scale = clip[0], or 1 when clip is NULL);
       m, v as SEED §4; θ ← θ·decay − α·m̂/(√v̂ + ε), decay = 1 − α·λ from the host; t = step[0]. */
    KERNEL_ANY void adamw_update(const int count,
                                 GLOBAL float* RESTRICT theta, const int thetaOffset,
                                 const GLOBAL float* RESTRICT g, const int gOffset,
                                 GLOBAL float* RESTRICT m, const int mOffset,
                                 GLOBAL float* RESTRICT v, const int vOffset,
                                 const float learningRate, const float beta1, const float beta2, const float epsilon,
                                 const float decay, const GLOBAL int* RESTRICT step, const GLOBAL float* RESTRICT clip)
    {
        const float correction1 = adam_correction(step[0], beta1);
        const float correction2 = adam_correction(step[0], beta2);
        const float scale = clip ? clip[0] : 1.0f;
        for (int e = GLOBAL_ID_X; e < count; e += GLOBAL_SIZE_X) {
            theta[thetaOffset + e] = adam_step(m + mOffset + e, v + vOffset + e, MUL_RN(theta[thetaOffset + e], decay),
                                               g[gOffset + e] * scale, learningRate, beta1, beta2, epsilon,
                                               correction1, correction2);
        }
    }
    FP_CONTRACT_DEFAULT

    """
}
