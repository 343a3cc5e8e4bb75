extension KernelSource {
    /// The bias-gradient column sums, the one-block sum that totals per-row losses, and the
    /// block-wide sums and maximum the other kernels reduce with (`loss_wide`, the gradient norm).
    ///
    /// All reduce in a fixed order (strided partial sums, then a shared-memory tree), so results
    /// are deterministic run to run.
    public static let columnSums: String = """
    /* NAME(scratch, value): the block's COMBINE of each thread's value of type T, by a fixed
       shared-memory tree (every thread gets it; REDUCE_THREADS entries of scratch). */
    #define DEFINE_BLOCK_REDUCE(NAME, T, COMBINE) \
    DEVICE_INLINE T NAME(SHARED_PTR T* scratch, const T value) \
    { \
        const int tid = THREAD_X; \
        scratch[tid] = value; \
        BARRIER(); \
        for (int s = REDUCE_THREADS / 2; s > 0; s >>= 1) { \
            if (tid < s) { \
                scratch[tid] = COMBINE(scratch[tid], scratch[tid + s]); \
            } \
            BARRIER(); \
        } \
        const T result = scratch[0]; \
        BARRIER(); \
        return result; \
    }
    #define REDUCE_ADD(a, b) ((a) + (b))
    /* the block's total; the same in NORM_FLOAT (the gradient norm's sums of squares) */
    DEFINE_BLOCK_REDUCE(block_sum, float, REDUCE_ADD)
    DEFINE_BLOCK_REDUCE(block_sum_norm, NORM_FLOAT, REDUCE_ADD)
    /* the block's largest value (fmaxf: NaN loses, as in the one-thread kernel's chain) */
    DEFINE_BLOCK_REDUCE(block_max, float, fmaxf)

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
