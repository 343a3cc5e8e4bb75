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
    /* One Adam step (SEED §4) over a flat buffer: moments m, v; bias corrections from t = step[0] in device memory. */
    KERNEL_ANY void adam_update(const int count,
                                GLOBAL float* RESTRICT theta, const int thetaOffset,
                                const GLOBAL float* RESTRICT g, const int gOffset,
                                GLOBAL float* RESTRICT m, const int mOffset,
                                GLOBAL float* RESTRICT v, const int vOffset,
                                const float learningRate, const float beta1, const float beta2, const float epsilon,
                                const GLOBAL int* RESTRICT step)
    {
        const float t = (float)step[0];
        /* 1 − βᵗ as −expm1(t·log1p(β − 1)): accurate where βᵗ is near 1 (β − 1 is exact in float). */
        const float correction1 = -expm1f(t * log1pf(beta1 - 1.0f));
        const float correction2 = -expm1f(t * log1pf(beta2 - 1.0f));
        for (int e = GLOBAL_ID_X; e < count; e += GLOBAL_SIZE_X) {
            const float gradient = g[gOffset + e];
            const float first = beta1 * m[mOffset + e] + (1.0f - beta1) * gradient;
            const float second = beta2 * v[vOffset + e] + (1.0f - beta2) * gradient * gradient;
            m[mOffset + e] = first;
            v[vOffset + e] = second;
            const float firstHat = first / correction1;
            const float secondHat = second / correction2;
            theta[thetaOffset + e] -= learningRate * firstHat / (sqrtf(secondHat) + epsilon);
        }
    }

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
        /* 1 − βᵗ as −expm1(t·log1p(β − 1)) in NORM_FLOAT (Float64 where the device has it, as the
           CPU's 1 − pow(β, t)), rounded once */
        const NORM_FLOAT t = (NORM_FLOAT)step[0];
        const float correction1 = (float)(-expm1(t * log1p((NORM_FLOAT)beta1 - (NORM_FLOAT)1)));
        const float correction2 = (float)(-expm1(t * log1p((NORM_FLOAT)beta2 - (NORM_FLOAT)1)));
        const float scale = clip ? clip[0] : 1.0f;
        for (int e = GLOBAL_ID_X; e < count; e += GLOBAL_SIZE_X) {
            const float gradient = g[gOffset + e] * scale;
            const float first = MUL_RN(beta1, m[mOffset + e]) + MUL_RN(1.0f - beta1, gradient);
            const float second = MUL_RN(beta2, v[vOffset + e]) + MUL_RN((1.0f - beta2) * gradient, gradient);
            m[mOffset + e] = first;
            v[vOffset + e] = second;
            const float firstHat = first / correction1;
            const float secondHat = second / correction2;
            theta[thetaOffset + e] = MUL_RN(theta[thetaOffset + e], decay) - learningRate * firstHat / (sqrtf(secondHat) + epsilon);
        }
    }
    FP_CONTRACT_DEFAULT

    """
}
