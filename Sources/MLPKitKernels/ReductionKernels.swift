extension KernelSource {
    /// The bias-gradient column sums, the one-block sum that totals per-row losses, and the
    /// block-wide sum and maximum the other kernels reduce with (`loss_wide`).
    ///
    /// All reduce in a fixed order (strided partial sums, then a shared-memory tree), so results
    /// are deterministic run to run.
    public static let columnSums: String = """
    /* The block's total of each thread's value, by a fixed tree (every thread gets it). */
    DEVICE_INLINE float block_sum(SHARED_PTR float* scratch, const float value)
    {
        const int tid = THREAD_X;
        scratch[tid] = value;
        BARRIER();
        for (int s = REDUCE_THREADS / 2; s > 0; s >>= 1) {
            if (tid < s) {
                scratch[tid] += scratch[tid + s];
            }
            BARRIER();
        }
        const float total = scratch[0];
        BARRIER();
        return total;
    }

    /* The block's largest value (fmaxf: NaN loses, as in the one-thread kernel's chain). */
    DEVICE_INLINE float block_max(SHARED_PTR float* scratch, const float value)
    {
        const int tid = THREAD_X;
        scratch[tid] = value;
        BARRIER();
        for (int s = REDUCE_THREADS / 2; s > 0; s >>= 1) {
            if (tid < s) {
                scratch[tid] = fmaxf(scratch[tid], scratch[tid + s]);
            }
            BARRIER();
        }
        const float largest = scratch[0];
        BARRIER();
        return largest;
    }

    /* sums[j] = Σ_i M[i, j] over a rows×columns matrix (the bias gradient); one block per COLSUM_COLUMNS columns. */
    KERNEL(REDUCE_THREADS) void column_sums(const int rows, const int columns,
                                            const GLOBAL float* RESTRICT matrix, const int matrixOffset,
                                            GLOBAL float* RESTRICT sums, const int sumsOffset)
    {
        SHARED float partial[REDUCE_THREADS];
        const int tid = THREAD_X;
        const int lane = tid % COLSUM_COLUMNS;
        const int col = BLOCK_X * COLSUM_COLUMNS + lane;
        const GLOBAL float* m = matrix + matrixOffset;
        float sum = 0.0f;
        if (col < columns) {
            for (int i = tid / COLSUM_COLUMNS; i < rows; i += REDUCE_THREADS / COLSUM_COLUMNS) {
                sum += m[i * columns + col];
            }
        }
        partial[tid] = sum;
        BARRIER();
        for (int stride = REDUCE_THREADS / 2; stride >= COLSUM_COLUMNS; stride /= 2) {
            if (tid < stride) {
                partial[tid] += partial[tid + stride];
            }
            BARRIER();
        }
        if (tid < COLSUM_COLUMNS && col < columns) {
            sums[sumsOffset + col] = partial[tid];
        }
    }

    /* out[0] = Σ_i values[i] for i < count, in a fixed order by one block (the loss sum from per-row losses). */
    KERNEL(REDUCE_THREADS) void sum_reduce(const int count, const GLOBAL float* RESTRICT values,
                                           GLOBAL float* RESTRICT out, const int outOffset)
    {
        SHARED float partial[REDUCE_THREADS];
        const int tid = THREAD_X;
        float sum = 0.0f;
        for (int i = tid; i < count; i += REDUCE_THREADS) {
            sum += values[i];
        }
        const float total = block_sum(partial, sum);
        if (tid == 0) {
            out[outOffset] = total;
        }
    }

    """
}
