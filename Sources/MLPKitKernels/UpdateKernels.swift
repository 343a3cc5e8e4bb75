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
