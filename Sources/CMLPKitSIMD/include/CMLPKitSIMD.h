#ifndef CMLPKITSIMD_H
#define CMLPKITSIMD_H

/// The CPU backend's AVX2 paths, chosen at run time: the package is built for the baseline
/// x86-64 (SSE2), and these functions carry their own target attribute, so they run only where
/// `mlpkit_simd_available` says the processor has AVX2 and FMA. Elsewhere (other processors,
/// other architectures) they are never called and the Swift code does the work.

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this processor runs the AVX2 + FMA functions below, else 0.
int mlpkit_simd_available(void);

/// 2 when this processor (and its operating system) runs AVX-512 F, DQ, CD, BW and VL and also
/// AVX512_BF16 instructions, 1 without AVX512_BF16, 0 without AVX-512 (or off x86-64).
int mlpkit_avx512_level(void);

/// One Adam update's operands and constants (`ElementwiseKernels.AdamJob` on the Swift side,
/// which is this struct, for the Swift loops too).
typedef struct {
    float *theta;
    const float *g;
    float *m;
    float *v;
    float beta1, beta2, alpha, epsilon, correction1, correction2, gradientScale, decay;
    /// Booleans (0 or 1): scale the gradient by `gradientScale`; decay θ by `decay`. (A bias
    /// correction of exactly 1 divides nothing, as in the Swift loop.)
    int clips, decays;
} MLPKitAdamJob;

/// Adam over parameters start..<end, eight at a time, with exactly the IEEE operations, in the
/// same order, of the Swift loop (no fused multiply-add), so the bits are the same.
void mlpkit_adam_avx2(const MLPKitAdamJob *job, long start, long end);

/// `mlpkit_adam_avx2` sixteen parameters at a time with AVX-512, the same bits: v̂'s and m̂'s
/// divisions by the bias corrections and the square root without the divider (correctly rounded
/// by fused multiply-add corrections; see simd.c), so that one division per parameter is left.
/// Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_adam_avx512(const MLPKitAdamJob *job, long start, long end);

/// How many x with bits in low...high (positive, below infinity) the AVX-512 Adam's square root
/// gets wrong against the correctly rounded √x: 0 over {0} ∪ [2⁻¹⁰⁰, FLT_MAX], its whole range.
long mlpkit_check_sqrt_avx512(unsigned low, unsigned high);

/// How many x with bits in low...high the AVX-512 Adam's division by the constant c (by its
/// rounded reciprocal and two corrections) gets wrong against the correctly rounded x / c.
long mlpkit_check_divide_avx512(float c, unsigned low, unsigned high);

/// C[m×n] = op(A)·op(B), row-major, overwriting C, for small products (the layouts of
/// `ProductLayout`: 0 NT, 1 TN, 2 NN). Returns 0, touching nothing, when the product is not one
/// it takes (NT with k·n above `MLPKIT_SMALL_NT_LIMIT`); then BLAS does it.
int mlpkit_small_product_avx2(int layout, long m, long n, long k, const float *a, const float *b, float *c);

/// `mlpkit_small_product_avx2` with sixteen-lane AVX-512 registers (six rows by 32 columns of C at
/// a time): the same bits. Only where `mlpkit_avx512_level()` is at least 1.
int mlpkit_small_product_avx512(int layout, long m, long n, long k, const float *a, const float *b, float *c);

/// C = A·B for any size, the way a BLAS does it (packed panels, blocked for the caches, a 6×16
/// kernel of fused multiply-adds): the CPU backend's product where no BLAS is installed. A(i, p) is
/// a[i·aRow + p·aDepth], B(p, j) is b[p·bDepth + j·bColumn], C row-major with leading dimension
/// ldc, overwritten. Each element is the in-order sum of one chain of fused multiply-adds from
/// zero per block of 512 along the depth, so a block of C's rows computed alone has the bits it
/// has in the whole product. Each thread's first call allocates its packing buffers (2.1 MiB,
/// kept); where that fails it computes the same sums element by element.
void mlpkit_packed_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const float *b,
                                long bDepth, long bColumn, float *c, long ldc);

/// `mlpkit_packed_product_avx2` with AVX-512 (B in panels of 32 columns, A in panels of eight rows,
/// an 8×32 kernel in sixteen-lane registers): the same sums and bits. Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_packed_product_avx512(long m, long n, long k, const float *a, long aRow, long aDepth, const float *b,
                                  long bDepth, long bColumn, float *c, long ldc);

/// `mlpkit_packed_product_avx2` split into chunks of C that threads claim one at a time: each
/// calling thread takes the next chunk from `*next` (an atomic counter starting at zero, shared by
/// the threads of one product) until none is left. Chunks are `chunk` columns of C (a multiple of
/// 16; of 32 with AVX-512) when `splitsColumns`, each thread packing all of A once, else `chunk`
/// rows (best a multiple of 6, or of 8 with AVX-512), each packing all of B. A chunk above 1024
/// columns or 72 rows is taken as that many (the packing buffers' size), one below 1 as 1. The same sums and bits as one call, whichever thread takes
/// which chunk. A thread that finds no chunk left returns at once.
/// `aRows` (NULL: rows 0..<m): op(A)'s row i is row aRows[i] of `a` (at a + aRows[i]·aRow), fast
/// where A is read where it lies (AVX-512, aDepth = 1: NT and NN), element by element elsewhere.
/// `bDepths` (NULL: depths 0..<k): op(B)'s depth p is depth bDepths[p] of `b` (at b + bDepths[p]·bDepth).
/// A batch's rows are so read where they lie in the data: the bits of the product of their gathered copy.
void mlpkit_claimed_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                 const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc, long chunk,
                                 long *next, int splitsColumns);

/// The product's epilogue (as `mlpkit_claimed_product_avx512` applies it) over a rows×columns
/// block of C already computed (leading dimension ldc; `bias` the block's first column's, `source`
/// its first element's, ldc floats a row). Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_epilogue_block_avx512(float *c, long ldc, long rows, long columns, const float *bias, int function,
                                  const float *source);

/// `mlpkit_claimed_product_avx2` with the AVX-512 kernel (column chunks a multiple of 32), and the
/// product's epilogue on C's final sums, as the CPU backend's passes compute it (`epilogue16.h`):
/// f(C + bias) with `bias` (n floats), or C·f′(source) with `source` (m×n, leading dimension ldc),
/// f by `function` (0 none, 1 ReLU, 2 MLPKit's tanh); neither (NULL, NULL): C alone.
void mlpkit_claimed_product_avx512(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                   const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc, long chunk,
                                   long *next, int splitsColumns, const float *bias, int function, const float *source);

/// `mlpkit_claimed_product_avx512` with operands kept in panels of 32 (a weight the CPU backend keeps in
/// its forward product's packed order, and that weight's gradient), and TN's A with picked depths:
/// with `bPanel` > 0, B's line j at depth p is b[(j / 32)·bPanel + p·32 + j % 32] (never packed);
/// with `cPanel` > 0, C(i, j) is c[(j / 32)·cPanel + i·ldc + j % 32]; either needs column chunks of a
/// multiple of 32. `aDepths` (NULL: depths 0..<k): op(A)'s depth p is depth aDepths[p] of `a` (at
/// a + aDepths[p]·aDepth). 0, 0 and NULL: `mlpkit_claimed_product_avx512`. The same bits.
void mlpkit_panel_product_avx512(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                 const long *aDepths, const float *b, long bDepth, long bColumn, const long *bDepths, long bPanel,
                                 float *c, long ldc, long cPanel, long chunk, long *next, int splitsColumns, const float *bias,
                                 int function, const float *source);

/// The same sums as `mlpkit_packed_product_avx2`, element by element with no buffers: what it
/// falls back to when its packing buffers cannot be allocated (and what the tests check that
/// fallback with). `aRows` and `bDepths` as for `mlpkit_claimed_product_avx2`.
void mlpkit_unpacked_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                  const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc);

/// out[i] = e^x[i] for i in 0..<count (out may be x): the bits of glibc's expf (2.28 and later)
/// on every float, eight at a time. Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_expf_avx512(const float *x, float *out, long count);

/// The most columns `mlpkit_softmax_cross_entropy_avx512` takes.
#define MLPKIT_SOFTMAX_COLUMNS 64

/// Softmax cross-entropy's gradient over class labels, without weights, for a rows×columns
/// output `z` (1 ≤ columns ≤ MLPKIT_SOFTMAX_COLUMNS, every label in 0..<columns, `d` apart from
/// `z`): d = (softmax(z) − onehot)·scale and each row's loss lse − z_label in `losses`, sixteen
/// rows at a time with the bits of the scalar loops. Only where `mlpkit_avx512_level()` is at
/// least 1.
void mlpkit_softmax_cross_entropy_avx512(const float *z, const int *labels, long rows, long columns, float scale,
                                         float *d, float *losses);

/// out[i] = σ(x[i]) for i in 0..<count (out may be x), the bits of `ActivationFunction.sigmoid`
/// (whose e^x is glibc's expf), eight at a time. Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_sigmoid_avx512(const float *x, float *out, long count);

/// tanh(x): MLPKit's own (`tanh.c`: a polynomial below 0.9, 1 − 2/(e^{2|x|} + 1) above, every
/// operation a rounded float operation, none fused), within 1.14 ulp of the exact tanh on every
/// float (`Scripts/check-avx512-functions.sh tanh`).
float mlpkit_tanh(float x);

/// out[i] = mlpkit_tanh(x[i]) for i in 0..<count (out may be x), sixteen at a time: the same bits
/// on every float. Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_tanh_avx512(const float *x, float *out, long count);

/// out[i] = log(1 + x[i]) for i in 0..<count (out may be x): the bits of this machine's log1pf
/// (glibc 2.36's) on every float, sixteen at a time (`log1p.c`; lanes with x ≤ −1 call log1pf).
/// Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_log1pf_avx512(const float *x, float *out, long count);

/// Rows start..<end of C (m×n) = A·B̃ for a shallow depth k ≤ 512: A m×k, B̃ k×n, row-major
/// (`skinny.c`: the packed product's bits), then the epilogue on each row while it is in the
/// registers, with the CPU backend's passes' bits: f(C + bias) with `bias` (n floats), or
/// C·f′(source) with `source` (m×n: for ReLU, C where source > 0, else +0), f by `function` (0
/// none, 1 ReLU, 2 tanh); both NULL for none. Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_shallow_product_avx512(long n, long k, const float *a, const float *bt, float *c, long start, long end,
                                   const float *bias, int function, const float *source);
/// Rows start..<end of C (m×n, n ≤ 16) = Aᵀ·B: A k×m, B k×n (the packed product's bits).
void mlpkit_thin_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start, long end);
/// Columns start..<end of C (m×n, m ≤ 16) = Aᵀ·B: A k×m, B k×n (the packed product's bits).
void mlpkit_short_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start, long end);
/// Rows start..<end of C (m×n, n ≤ 8) = A·Bᵀ: A m×k, B n×k (the packed product's bits).
void mlpkit_narrow_nt_product_avx512(long n, long k, const float *a, const float *b, float *c, long start, long end);

/// sums[j] = Σ matrix[i·ld + j] over rows start..<end, from zero in row order, for each j < columns
/// (`sums.c`). Only where `mlpkit_avx512_level()` is at least 1.
void mlpkit_column_sums_avx512(const float *matrix, long ld, long columns, long start, long end, float *sums);

/// The mean squared error's rows start..<end of a `columns`-wide output: d = (z − y)·scale, and
/// rowSums[i] = Σ_j (z − y)² for each row, accumulated in column order (the Swift row loop's
/// bits), eight rows at a time with the rows in the lanes.
void mlpkit_mse_rows_avx2(const float *z, const float *y, float *d, long start, long end, long columns, float scale,
                          float *rowSums);

/// The most k·n elements of an NT product's B that `mlpkit_small_product_avx2` transposes (on
/// the stack).
#define MLPKIT_SMALL_NT_LIMIT 16384

#ifdef __cplusplus
}
#endif

#endif
