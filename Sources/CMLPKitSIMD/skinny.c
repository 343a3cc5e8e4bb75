#include "CMLPKitSIMD.h"

// Products with one dimension of at most 16 (a field's coordinates, a table's dozen columns, a
// regression's few outputs), where the packed product's 8×32 tiles would be mostly padding: the
// same sums in the same order, so the same bits as the packed product. Its element is a chain of fused multiply-adds from zero over
// each block of PACKED_KC depths in order, the blocks' chains added to C one after another; here
// too, with the vector's lanes along the dimension that is long instead.

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))

enum { SKINNY_KC = 512 };  // the packed product's depth block (PACKED_KC)

// The lanes of a vector with `left` values to go (none for left ≤ 0).
static inline AVX512 __mmask16 lanes_left(long left) {
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

// Rows start..<end of C (m×n, row-major) = A·B̃ for a shallow depth k (at most SKINNY_KC): A is
// m×k row-major, B̃ is k×n row-major (NN's B, or NT's B transposed by the caller). Each element's
// chain runs over p in order from zero.
AVX512 void mlpkit_shallow_product_avx512(long n, long k, const float *a, const float *bt, float *c, long start, long end) {
    for (long i = start; i < end; ++i) {
        const float *row = a + i * k;
        float *out = c + i * n;
        long j = 0;
        // four vectors of C's row at a time, then one at a time (the last under a mask)
        for (; j + 64 <= n; j += 64) {
            __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
            for (long p = 0; p < k; ++p) {
                const __m512 x = _mm512_set1_ps(row[p]);
                const float *line = bt + p * n + j;
                s0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(line), s0);
                s1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(line + 16), s1);
                s2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(line + 32), s2);
                s3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(line + 48), s3);
            }
            _mm512_storeu_ps(out + j, s0);
            _mm512_storeu_ps(out + j + 16, s1);
            _mm512_storeu_ps(out + j + 32, s2);
            _mm512_storeu_ps(out + j + 48, s3);
        }
        for (; j < n; j += 16) {
            const __mmask16 mask = lanes_left(n - j);
            __m512 s = _mm512_setzero_ps();
            for (long p = 0; p < k; ++p) s = _mm512_fmadd_ps(_mm512_set1_ps(row[p]), _mm512_maskz_loadu_ps(mask, bt + p * n + j), s);
            _mm512_mask_storeu_ps(out + j, mask, s);
        }
    }
}

enum { FEW_MOST = 16, FEW_SUMS = 4096 };  // the most rows `few_sums` takes, and the sums it holds

// How many lanes of the long operand a pass of `few_sums` takes for `rows` sums each: as many
// whole vectors as FEW_SUMS floats hold (16 KB: the cache's), 256 for 16 rows, 4096 for one.
static inline long few_group(long rows) { return FEW_SUMS / rows / 16 * 16; }

// totals[r·group + l] = Σ_p long[p, start + l]·few[p, r] for r < rows (at most FEW_MOST) and
// l < width (at most few_group(rows)), over each depth block in order from zero, the blocks added
// in turn: `longer` is k×ldLong and `few` k×rows, both row-major. Each depth's row of the long
// operand is read once, in order; the sums stay in a block on the stack (the cache's, not the
// registers').
static inline AVX512 void few_sums(long rows, long k, const float *longer, long ldLong, long start, long width,
                                   const float *few, float *totals) {
    float sums[FEW_SUMS];
    const long group = few_group(rows), vectors = (width + 15) / 16;
    for (long p0 = 0; p0 < k; p0 += SKINNY_KC) {
        const long depth = k - p0 < SKINNY_KC ? k - p0 : SKINNY_KC;
        for (long r = 0; r < rows; ++r)
            for (long v = 0; v < vectors; ++v) _mm512_storeu_ps(sums + r * group + 16 * v, _mm512_setzero_ps());
        for (long p = p0; p < p0 + depth; ++p) {
            const float *line = longer + p * ldLong + start;
            for (long v = 0; v < vectors; ++v) {
                const __m512 x = _mm512_maskz_loadu_ps(lanes_left(width - 16 * v), line + 16 * v);
                for (long r = 0; r < rows; ++r) {
                    float *sum = sums + r * group + 16 * v;
                    _mm512_storeu_ps(sum, _mm512_fmadd_ps(x, _mm512_set1_ps(few[p * rows + r]), _mm512_loadu_ps(sum)));
                }
            }
        }
        // the first block's chain, then each next block's added, as the packed product stores them
        for (long r = 0; r < rows; ++r)
            for (long v = 0; v < vectors; ++v) {
                float *total = totals + r * group + 16 * v;
                const __m512 block = _mm512_loadu_ps(sums + r * group + 16 * v);
                _mm512_storeu_ps(total, p0 == 0 ? block : _mm512_add_ps(_mm512_loadu_ps(total), block));
            }
    }
}

// C (m×n) = Aᵀ·B for a thin B (n at most FEW_MOST): A is k×m, B is k×n, both row-major; C's rows
// start..<end. The lanes run along C's rows (A's columns).
AVX512 void mlpkit_thin_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start,
                                          long end) {
    float totals[FEW_SUMS];
    const long group = few_group(n);
    for (long i0 = start; i0 < end; i0 += group) {
        const long width = end - i0 < group ? end - i0 : group;
        few_sums(n, k, a, m, i0, width, b, totals);
        for (long i = 0; i < width; ++i)
            for (long j = 0; j < n; ++j) c[(i0 + i) * n + j] = totals[j * group + i];
    }
}

// C (m×n) = Aᵀ·B for a short A (m at most FEW_MOST): A is k×m, B is k×n, both row-major; C's
// columns start..<end. The lanes run along C's rows (B's columns).
AVX512 void mlpkit_short_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start,
                                           long end) {
    float totals[FEW_SUMS];
    const long group = few_group(m);
    for (long j0 = start; j0 < end; j0 += group) {
        const long width = end - j0 < group ? end - j0 : group;
        few_sums(m, k, b, n, j0, width, a, totals);
        for (long i = 0; i < m; ++i)
            for (long j = 0; j < width; ++j) c[i * n + j0 + j] = totals[i * group + j];
    }
}

#else

void mlpkit_shallow_product_avx512(long n, long k, const float *a, const float *bt, float *c, long start, long end) {
    (void)n; (void)k; (void)a; (void)bt; (void)c; (void)start; (void)end;
}
void mlpkit_thin_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start, long end) {
    (void)m; (void)n; (void)k; (void)a; (void)b; (void)c; (void)start; (void)end;
}
void mlpkit_short_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start, long end) {
    (void)m; (void)n; (void)k; (void)a; (void)b; (void)c; (void)start; (void)end;
}

#endif
