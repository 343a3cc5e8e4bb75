#include "CMLPKitSIMD.h"

// Products with one dimension of a few (a field's 2 inputs, a regression's 1 to 4 outputs), where
// the packed product's 8×32 tiles would be mostly padding: the same sums in the same order, so the
// same bits as the packed product. Its element is a chain of fused multiply-adds from zero over
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

// C (m×n) = Aᵀ·B for a thin B (n at most 4): A is k×m, B is k×n, both row-major; C's rows
// start..<end. The lanes run along C's rows (A's columns), up to 256 at a time, each depth's row of
// A read once, in order, with the sums in a block on the stack (the cache's, not the registers').
AVX512 void mlpkit_thin_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start,
                                          long end) {
    enum { GROUP = 256 };
    float sums[4][GROUP], total[4][GROUP];
    for (long i0 = start; i0 < end; i0 += GROUP) {
        const long width = end - i0 < GROUP ? end - i0 : GROUP;
        const long vectors = (width + 15) / 16;
        for (long p0 = 0; p0 < k; p0 += SKINNY_KC) {
            const long depth = k - p0 < SKINNY_KC ? k - p0 : SKINNY_KC;
            for (long j = 0; j < n; ++j)
                for (long v = 0; v < vectors; ++v) _mm512_storeu_ps(sums[j] + 16 * v, _mm512_setzero_ps());
            for (long p = p0; p < p0 + depth; ++p) {
                const float *line = a + p * m + i0;
                for (long v = 0; v < vectors; ++v) {
                    const __m512 x = _mm512_maskz_loadu_ps(lanes_left(width - 16 * v), line + 16 * v);
                    for (long j = 0; j < n; ++j) {
                        float *sum = sums[j] + 16 * v;
                        _mm512_storeu_ps(sum, _mm512_fmadd_ps(x, _mm512_set1_ps(b[p * n + j]), _mm512_loadu_ps(sum)));
                    }
                }
            }
            // the first block's chain, then each next block's added, as the packed product stores them
            for (long j = 0; j < n; ++j)
                for (long v = 0; v < vectors; ++v) {
                    const __m512 block = _mm512_loadu_ps(sums[j] + 16 * v);
                    _mm512_storeu_ps(total[j] + 16 * v, p0 == 0 ? block : _mm512_add_ps(_mm512_loadu_ps(total[j] + 16 * v), block));
                }
        }
        for (long i = 0; i < width; ++i)
            for (long j = 0; j < n; ++j) c[(i0 + i) * n + j] = total[j][i];
    }
}

// C (m×n) = Aᵀ·B for a short A (m at most 4): A is k×m, B is k×n, both row-major; C's columns
// start..<end. The lanes run along C's rows (B's rows), up to 512 columns at a time, each depth's
// row of B read once, in order, with the sums in a block on the stack; C holds the blocks' totals.
AVX512 void mlpkit_short_tn_product_avx512(long m, long n, long k, const float *a, const float *b, float *c, long start,
                                           long end) {
    enum { GROUP = 512 };
    float sums[4][GROUP];
    for (long j0 = start; j0 < end; j0 += GROUP) {
        const long width = end - j0 < GROUP ? end - j0 : GROUP;
        const long vectors = (width + 15) / 16;
        for (long p0 = 0; p0 < k; p0 += SKINNY_KC) {
            const long depth = k - p0 < SKINNY_KC ? k - p0 : SKINNY_KC;
            for (long i = 0; i < m; ++i)
                for (long v = 0; v < vectors; ++v) _mm512_storeu_ps(sums[i] + 16 * v, _mm512_setzero_ps());
            for (long p = p0; p < p0 + depth; ++p) {
                const float *line = b + p * n + j0;
                for (long v = 0; v < vectors; ++v) {
                    const __m512 y = _mm512_maskz_loadu_ps(lanes_left(width - 16 * v), line + 16 * v);
                    for (long i = 0; i < m; ++i) {
                        float *sum = sums[i] + 16 * v;
                        _mm512_storeu_ps(sum, _mm512_fmadd_ps(_mm512_set1_ps(a[p * m + i]), y, _mm512_loadu_ps(sum)));
                    }
                }
            }
            // the first block's chain, then each next block's added, as the packed product stores them
            for (long i = 0; i < m; ++i)
                for (long v = 0; v < vectors; ++v) {
                    const __mmask16 mask = lanes_left(width - 16 * v);
                    float *out = c + i * n + j0 + 16 * v;
                    const __m512 block = _mm512_loadu_ps(sums[i] + 16 * v);
                    _mm512_mask_storeu_ps(out, mask, p0 == 0 ? block : _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out), block));
                }
        }
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
